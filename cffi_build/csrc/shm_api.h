/* Entry points of the PyKam shared-memory library (what sipcore._cshm exposes; the cdef in
 * cffi_build/cdefs/shm.h is the Python-visible copy). Every function takes the segment base
 * and byte offsets inside the segment; int results are SHM_OK/SHM_RECOVERED or SHM_E_*. */
#ifndef PYKAM_SHM_API_H
#define PYKAM_SHM_API_H

#include <stddef.h>
#include <stdint.h>

#include "shm_common.h"
#include "shm_arena.h"
#include "shm_lock.h"
#include "shm_htable.h"
#include "shm_counters.h"
#include "shm_ring.h"

int shm_arena_init(char *base, uint64_t size);
int shm_arena_attach(char *base, uint64_t size);
uint64_t shm_usable_size(char *base, uint64_t off);
int shm_arena_stats(char *base, shm_arena_stats_t *out);
int shm_arena_check(char *base);
uint64_t shm_arena_lock_offset(void);
uint64_t shm_arena_root(char *base, unsigned i);
int shm_arena_set_root(char *base, unsigned i, uint64_t expect, uint64_t off);
size_t shm_lock_size(void);
int shm_lock_init(char *base, uint64_t off);
int shm_lock_get(char *base, uint64_t off);
int shm_lock_try(char *base, uint64_t off);
int shm_lock_timed(char *base, uint64_t off, int64_t timeout_ms);
int shm_lock_release(char *base, uint64_t off);
int32_t shm_lock_owner(char *base, uint64_t off);
uint32_t shm_lock_recoveries(char *base, uint64_t off);
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
size_t shm_ring_size(uint64_t cap);
int shm_ring_init(char *base, uint64_t off, uint64_t cap);
int shm_ring_attach(char *base, uint64_t off);
int shm_ring_push(char *base, uint64_t off, const char *rec, uint32_t len);
int shm_ring_drain(char *base, uint64_t off, char *out, uint64_t outcap, uint64_t *used);
uint64_t shm_ring_dropped(char *base, uint64_t off);
void shm_ring_set_wake(char *base, uint64_t off, int64_t when);
int64_t shm_ring_get_wake(char *base, uint64_t off);

#endif
