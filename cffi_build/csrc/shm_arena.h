/* Offset-based allocator inside one mapped region (the whole posix_ipc segment). */
#ifndef PYKAM_SHM_ARENA_H
#define PYKAM_SHM_ARENA_H

#include <stdint.h>
#include "shm_lock.h"

#define SHM_ARENA_MAGIC 0x4D4B5950u  /* "PYKM" */
#define SHM_ARENA_VERSION 1u
#define SHM_NROOTS 8                 /* well-known offsets (counters, named directory, ...) */
#define SHM_NBINS 128

/* The header at offset 0 of the segment. */
typedef struct shm_arena {
    uint32_t magic, version;
    uint64_t size;               /* bytes in the region */
    uint64_t heap_start;         /* offset of the first block */
    uint64_t heap_end;           /* offset of the end sentinel (a used block of size 0) */
    shm_lock_t lock;             /* guards the heap and the fields below it */
    uint64_t used;               /* payload bytes of live blocks */
    uint64_t real_used;          /* region size minus free block bytes */
    uint64_t max_used;           /* high-water mark of real_used */
    uint64_t frags;              /* number of free blocks */
    uint64_t nallocs;            /* number of live blocks */
    uint64_t oom;                /* failed allocations (atomic) */
    uint64_t lock_recoveries;    /* locks of this segment taken from a dead owner (atomic) */
    uint64_t roots[SHM_NROOTS];
    uint64_t binmap[SHM_NBINS / 64];   /* bit set = bin non-empty */
    uint64_t bins[SHM_NBINS];          /* free list heads (block offsets, 0 = empty) */
} shm_arena_t;

typedef struct shm_arena_stats {
    uint64_t total, used, real_used, free, max_used, fragments, allocs, oom, lock_recoveries;
} shm_arena_stats_t;

int shm_alloc(char *base, uint64_t size, uint64_t *out_off);
int shm_free(char *base, uint64_t off);

#endif
