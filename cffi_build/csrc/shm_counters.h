/* Statistics counters: a name directory plus one row of int64 values per process. */
#ifndef PYKAM_SHM_COUNTERS_H
#define PYKAM_SHM_COUNTERS_H

#include <stdint.h>
#include "shm_lock.h"

#define SHM_CNT_MAGIC 0x52544E43u    /* "CNTR" */
#define SHM_CNT_NAME_MAX 64          /* bytes including the terminating NUL */
#define SHM_CNT_NORESET 1u           /* flag: reset leaves the value alone (gauges) */

typedef struct shm_cnt_entry {
    char name[SHM_CNT_NAME_MAX];
    uint32_t flags;
    uint32_t _pad;
    int64_t reset_base;              /* value = sum(rows) - reset_base */
} shm_cnt_entry_t;

typedef struct shm_cnt {
    uint32_t magic;
    uint32_t max;                    /* directory capacity */
    uint32_t nslots;                 /* process rows; row nslots is the shared (atomic) row */
    uint32_t count;                  /* entries in use; published after the entry is written */
    shm_lock_t lock;                 /* serialises registration and reset */
    uint64_t entries_off;            /* segment offsets */
    uint64_t values_off;
    uint64_t row_stride;             /* bytes per row, a multiple of 64 (no shared cache lines) */
} shm_cnt_t;

#endif
