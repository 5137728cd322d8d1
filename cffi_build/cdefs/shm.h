/* cdef surface of sipcore._cshm: only what sipcore/shm/_ffi.py may see.
 * Every function takes the segment base (char *) and byte offsets inside the segment.
 * int results: >= 0 success (SHM_RECOVERED = lock taken over from a dead holder),
 * < 0 an SHM_E_* code. Constants are `...`: their values come from the C headers. */

#define SHM_OK ...
#define SHM_RECOVERED ...
#define SHM_E_NOMEM ...
#define SHM_E_NOTFOUND ...
#define SHM_E_EXISTS ...
#define SHM_E_TOOSMALL ...
#define SHM_E_BADVALUE ...
#define SHM_E_CORRUPT ...
#define SHM_E_LOCK ...
#define SHM_E_INVAL ...
#define SHM_E_FULL ...
#define SHM_E_BUSY ...
#define SHM_NROOTS ...
#define SHT_SET ...
#define SHT_ADD ...
#define SHT_REPLACE ...
#define SHT_NOLOCK ...
#define SHM_CNT_NAME_MAX ...
#define SHM_CNT_NORESET ...

/* ---- arena (shm_arena.c) ---- */
typedef struct shm_arena_stats {
    uint64_t total, used, real_used, free, max_used, fragments, allocs, oom, lock_recoveries;
} shm_arena_stats_t;

int shm_arena_init(char *base, uint64_t size);
int shm_arena_attach(char *base, uint64_t size);
int shm_alloc(char *base, uint64_t size, uint64_t *out_off);
int shm_free(char *base, uint64_t off);
uint64_t shm_usable_size(char *base, uint64_t off);
int shm_arena_stats(char *base, shm_arena_stats_t *out);
int shm_arena_check(char *base);
uint64_t shm_arena_lock_offset(void);
uint64_t shm_arena_root(char *base, unsigned i);
int shm_arena_set_root(char *base, unsigned i, uint64_t expect, uint64_t off);

/* ---- locks (shm_lock.c) ---- */
size_t shm_lock_size(void);
int shm_lock_init(char *base, uint64_t off);
int shm_lock_get(char *base, uint64_t off);
int shm_lock_try(char *base, uint64_t off);
int shm_lock_timed(char *base, uint64_t off, int64_t timeout_ms);
int shm_lock_release(char *base, uint64_t off);
int32_t shm_lock_owner(char *base, uint64_t off);
uint32_t shm_lock_recoveries(char *base, uint64_t off);

/* ---- hash table (shm_htable.c) ---- */
uint32_t sht_hash(const char *key, uint32_t klen);
size_t sht_size(uint32_t nbuckets);
int sht_init(char *base, uint64_t off, uint32_t nbuckets);
int sht_attach(char *base, uint64_t off);
uint32_t sht_bucket_of(char *base, uint64_t off, const char *key, uint32_t klen);
int sht_lock_bucket(char *base, uint64_t off, uint32_t b);
int sht_unlock_bucket(char *base, uint64_t off, uint32_t b);
int sht_set(char *base, uint64_t off, const char *key, uint32_t klen, const char *val,
            uint32_t vlen, int64_t expires, int64_t now, int mode, int flags);
int sht_get(char *base, uint64_t off, const char *key, uint32_t klen, int64_t now, char *out,
            uint32_t outcap, uint32_t *vlen, int64_t *expires, int flags);
int sht_delete(char *base, uint64_t off, const char *key, uint32_t klen, int flags);
int sht_incr(char *base, uint64_t off, const char *key, uint32_t klen, int64_t delta,
             int64_t expires, int64_t now, int64_t *result, int flags);
int sht_dump(char *base, uint64_t off, uint32_t b, int64_t now, char *out, uint64_t outcap,
             uint64_t *used, uint32_t *n, int flags);
int sht_expire(char *base, uint64_t off, uint32_t b, int64_t now, char *out, uint64_t outcap,
               uint64_t *used, uint32_t *n, int *more);
int sht_clear(char *base, uint64_t off, uint32_t b, uint32_t *n);
uint64_t sht_count(char *base, uint64_t off);

/* ---- counters (shm_counters.c) ---- */
size_t shm_cnt_size(uint32_t max, uint32_t nslots);
int shm_cnt_init(char *base, uint64_t off, uint32_t max, uint32_t nslots);
int shm_cnt_attach(char *base, uint64_t off, uint32_t *max, uint32_t *nslots);
uint64_t shm_cnt_row_off(char *base, uint64_t off, uint32_t slot);
uint32_t shm_cnt_count(char *base, uint64_t off);
int shm_cnt_find(char *base, uint64_t off, const char *name, uint32_t len);
int shm_cnt_register(char *base, uint64_t off, const char *name, uint32_t len, uint32_t flags);
int shm_cnt_entry(char *base, uint64_t off, uint32_t idx, char *name_out, uint32_t *flags);
int shm_cnt_get(char *base, uint64_t off, uint32_t idx, int64_t *out);
int shm_cnt_get_all(char *base, uint64_t off, int64_t *out, uint32_t n);
int shm_cnt_reset(char *base, uint64_t off, uint32_t idx, int64_t *old);
void shm_cnt_add_shared(char *base, uint64_t off, uint32_t idx, int64_t delta);

/* ---- record ring (shm_ring.c) ---- */
size_t shm_ring_size(uint64_t cap);
int shm_ring_init(char *base, uint64_t off, uint64_t cap);
int shm_ring_attach(char *base, uint64_t off);
int shm_ring_push(char *base, uint64_t off, const char *rec, uint32_t len);
int shm_ring_drain(char *base, uint64_t off, char *out, uint64_t outcap, uint64_t *used);
uint64_t shm_ring_dropped(char *base, uint64_t off);
void shm_ring_set_wake(char *base, uint64_t off, int64_t when);
int64_t shm_ring_get_wake(char *base, uint64_t off);
