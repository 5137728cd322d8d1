/* Generic hash table of byte cells in shared memory, one robust lock per bucket. */
#ifndef PYKAM_SHM_HTABLE_H
#define PYKAM_SHM_HTABLE_H

#include <stdint.h>
#include "shm_lock.h"

#define SHT_MAGIC 0x54485348u        /* "HSHT" */

/* set modes */
#define SHT_SET 0                    /* insert or overwrite */
#define SHT_ADD 1                    /* insert only: SHM_E_EXISTS if a live cell has the key */
#define SHT_REPLACE 2                /* overwrite only: SHM_E_NOTFOUND if absent */
/* flags */
#define SHT_NOLOCK 1                 /* caller holds the bucket lock (sht_lock_bucket) */

typedef struct sht_bucket {
    shm_lock_t lock;
    uint64_t head;                   /* offset of the first cell, 0 = empty */
    uint32_t count;
    uint32_t _pad;
} sht_bucket_t;

typedef struct sht {
    uint32_t magic;
    uint32_t nbuckets;               /* a power of two */
    uint64_t _pad;
    sht_bucket_t b[];
} sht_t;

/* A cell: header, then klen key bytes, then vlen value bytes (vcap bytes reserved). */
typedef struct sht_cell {
    uint64_t next;
    int64_t expires;                 /* absolute; PyKam: CLOCK_MONOTONIC ms; 0 = never */
    uint32_t hash;
    uint32_t klen;
    uint32_t vlen;
    uint32_t vcap;
} sht_cell_t;

#endif
