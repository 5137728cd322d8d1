/* Statistics counters without contention.
 *
 * Each process owns one row of int64 values (its process-table index) and is the only
 * writer of that row, so the per-message increment is a plain add by the owner (done from
 * Python through a memoryview on the row, no call into C). Readers sum a column over all
 * rows. Reset does not write other processes' rows: it records the current sum as the
 * counter's reset_base and readers subtract it. A process without a row yet (just forked,
 * set_process_slot() not called) adds atomically to the extra shared row.
 *
 * The name directory is append-only: an entry is written, then `count` is published with a
 * release store, so lookups scan [0, count) without the lock; registration takes the lock
 * and re-checks so two processes creating the same name get the same index. */
#include <string.h>

#include "shm_api.h"
#include "shm_arena.h"
#include "shm_counters.h"

#define CNT(base, off) ((shm_cnt_t *)SHM_AT(base, off))
#define ENTRY(base, c, i) ((shm_cnt_entry_t *)SHM_AT(base, (c)->entries_off) + (i))
#define ROW(base, c, r) ((int64_t *)SHM_AT(base, (c)->values_off + (uint64_t)(r) * (c)->row_stride))

static uint64_t stride_of(uint32_t max) { return SHM_ROUND((uint64_t)max * 8, 64); }

size_t shm_cnt_size(uint32_t max, uint32_t nslots)
{
    return SHM_ROUND(sizeof(shm_cnt_t), 64) +
           SHM_ROUND((uint64_t)max * sizeof(shm_cnt_entry_t), 64) +
           (uint64_t)(nslots + 1) * stride_of(max);
}

int shm_cnt_init(char *base, uint64_t off, uint32_t max, uint32_t nslots)
{
    shm_cnt_t *c = CNT(base, off);

    if (max == 0 || nslots == 0)
        return SHM_E_INVAL;
    memset(c, 0, shm_cnt_size(max, nslots));
    if (shm_lock_init_ptr(&c->lock) != SHM_OK)
        return SHM_E_LOCK;
    c->max = max;
    c->nslots = nslots;
    c->entries_off = off + SHM_ROUND(sizeof(shm_cnt_t), 64);
    c->values_off = c->entries_off + SHM_ROUND((uint64_t)max * sizeof(shm_cnt_entry_t), 64);
    c->row_stride = stride_of(max);
    c->magic = SHM_CNT_MAGIC;
    return SHM_OK;
}

int shm_cnt_attach(char *base, uint64_t off, uint32_t *max, uint32_t *nslots)
{
    shm_cnt_t *c = CNT(base, off);
    if (c->magic != SHM_CNT_MAGIC)
        return SHM_E_CORRUPT;
    *max = c->max;
    *nslots = c->nslots;
    return SHM_OK;
}

/* Offset of row `slot` (slot == nslots: the shared row). */
uint64_t shm_cnt_row_off(char *base, uint64_t off, uint32_t slot)
{
    shm_cnt_t *c = CNT(base, off);
    return c->values_off + (uint64_t)slot * c->row_stride;
}

uint32_t shm_cnt_count(char *base, uint64_t off)
{
    return __atomic_load_n(&CNT(base, off)->count, __ATOMIC_ACQUIRE);
}

static int lookup(char *base, shm_cnt_t *c, uint32_t n, const char *name, uint32_t len)
{
    for (uint32_t i = 0; i < n; i++) {
        shm_cnt_entry_t *e = ENTRY(base, c, i);
        if (memcmp(e->name, name, len) == 0 && e->name[len] == '\0')
            return (int)i;
    }
    return SHM_E_NOTFOUND;
}

int shm_cnt_find(char *base, uint64_t off, const char *name, uint32_t len)
{
    shm_cnt_t *c = CNT(base, off);
    if (len == 0 || len >= SHM_CNT_NAME_MAX)
        return SHM_E_NOTFOUND;
    return lookup(base, c, __atomic_load_n(&c->count, __ATOMIC_ACQUIRE), name, len);
}

/* Index of `name`, creating it (value 0, `flags`) if needed. */
int shm_cnt_register(char *base, uint64_t off, const char *name, uint32_t len, uint32_t flags)
{
    shm_cnt_t *c = CNT(base, off);
    int rc;

    if (len == 0 || len >= SHM_CNT_NAME_MAX || memchr(name, '\0', len))
        return SHM_E_INVAL;
    if ((rc = shm_cnt_find(base, off, name, len)) >= 0)
        return rc;
    if (shm_lock_acquire_ptr(base, &c->lock) < 0)   /* a recovered lock needs no repair: */
        return SHM_E_LOCK;                           /* count is published last */
    rc = lookup(base, c, c->count, name, len);
    if (rc < 0) {
        if (c->count >= c->max) {
            rc = SHM_E_FULL;
        } else {
            shm_cnt_entry_t *e = ENTRY(base, c, c->count);
            uint32_t i;
            memset(e, 0, sizeof(*e));
            memcpy(e->name, name, len);
            e->flags = flags;
            /* rows may hold leftovers only if a registrant died after writing them: clear */
            for (i = 0; i <= c->nslots; i++)
                ROW(base, c, i)[c->count] = 0;
            rc = (int)c->count;
            __atomic_store_n(&c->count, c->count + 1, __ATOMIC_RELEASE);
        }
    }
    shm_lock_release_ptr(&c->lock);
    return rc;
}

int shm_cnt_entry(char *base, uint64_t off, uint32_t idx, char *name_out, uint32_t *flags)
{
    shm_cnt_t *c = CNT(base, off);
    if (idx >= shm_cnt_count(base, off))
        return SHM_E_NOTFOUND;
    memcpy(name_out, ENTRY(base, c, idx)->name, SHM_CNT_NAME_MAX);
    *flags = ENTRY(base, c, idx)->flags;
    return SHM_OK;
}

static int64_t column_sum(char *base, shm_cnt_t *c, uint32_t idx)
{
    uint64_t s = 0;                      /* unsigned: wrap-around instead of UB */
    for (uint32_t r = 0; r <= c->nslots; r++)
        s += (uint64_t)__atomic_load_n(&ROW(base, c, r)[idx], __ATOMIC_RELAXED);
    return (int64_t)s;
}

int shm_cnt_get(char *base, uint64_t off, uint32_t idx, int64_t *out)
{
    shm_cnt_t *c = CNT(base, off);
    if (idx >= shm_cnt_count(base, off))
        return SHM_E_NOTFOUND;
    *out = (int64_t)((uint64_t)column_sum(base, c, idx) -
                     (uint64_t)__atomic_load_n(&ENTRY(base, c, idx)->reset_base, __ATOMIC_RELAXED));
    return SHM_OK;
}

/* Values of counters [0, n) into out; returns how many were filled. */
int shm_cnt_get_all(char *base, uint64_t off, int64_t *out, uint32_t n)
{
    uint32_t cnt = shm_cnt_count(base, off);
    if (n > cnt)
        n = cnt;
    for (uint32_t i = 0; i < n; i++)
        shm_cnt_get(base, off, i, &out[i]);
    return (int)n;
}

/* Reset to 0 (unless the counter is NORESET); *old receives the value before. */
int shm_cnt_reset(char *base, uint64_t off, uint32_t idx, int64_t *old)
{
    shm_cnt_t *c = CNT(base, off);
    shm_cnt_entry_t *e;
    int64_t sum;

    if (idx >= shm_cnt_count(base, off))
        return SHM_E_NOTFOUND;
    if (shm_lock_acquire_ptr(base, &c->lock) < 0)
        return SHM_E_LOCK;
    e = ENTRY(base, c, idx);
    sum = column_sum(base, c, idx);
    *old = (int64_t)((uint64_t)sum - (uint64_t)e->reset_base);
    if (!(e->flags & SHM_CNT_NORESET))
        __atomic_store_n(&e->reset_base, sum, __ATOMIC_RELAXED);
    shm_lock_release_ptr(&c->lock);
    return SHM_OK;
}

/* Add for a process that has no row of its own: atomic, on the shared row. */
void shm_cnt_add_shared(char *base, uint64_t off, uint32_t idx, int64_t delta)
{
    shm_cnt_t *c = CNT(base, off);
    __atomic_fetch_add(&ROW(base, c, c->nslots)[idx], delta, __ATOMIC_RELAXED);
}
