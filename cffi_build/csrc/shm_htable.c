/* Generic shared-memory hash table: buckets with their own robust lock, chained cells
 * holding key bytes + value bytes + expiry, cells allocated from the arena.
 *
 * Lock order: a bucket lock, then the arena lock (allocation happens under a bucket lock);
 * never two buckets at once, never a bucket while holding the arena lock.
 * Crash safety: a cell is fully written before it is linked (one 8-byte store publishes it)
 * and unlinked before it is freed, so a chain is always walkable; when a bucket lock is
 * recovered from a dead holder the chain is re-validated and re-counted (bucket_repair). A
 * holder killed between unlink and free leaks one cell; one killed while copying a value
 * in place leaves that value garbled (the key and chain stay sound).
 * Expiry: `expires` is an absolute time in the caller's clock (PyKam passes CLOCK_MONOTONIC
 * milliseconds, which all processes on the host share); 0 means never. Expired cells are
 * invisible to get/add/incr and are sliced off by sht_expire(). */
#include <string.h>

#include "shm_api.h"
#include "shm_arena.h"
#include "shm_htable.h"

#define KEY(c) ((char *)(c) + sizeof(sht_cell_t))
#define VAL(c) (KEY(c) + (c)->klen)
#define CELL(base, off) ((sht_cell_t *)SHM_AT(base, off))
#define REC_HDR 16u
#define REC_SIZE(c) (REC_HDR + SHM_ROUND((uint64_t)(c)->klen + (c)->vlen, 8))

/* FNV-1a, 32 bit: short keys, good spread, no state. */
uint32_t sht_hash(const char *key, uint32_t klen)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < klen; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    return h;
}

static int alive(const sht_cell_t *c, int64_t now) { return c->expires == 0 || c->expires > now; }

size_t sht_size(uint32_t nbuckets)
{
    return sizeof(sht_t) + (size_t)nbuckets * sizeof(sht_bucket_t);
}

int sht_init(char *base, uint64_t off, uint32_t nbuckets)
{
    sht_t *t = SHM_AT(base, off);
    if (nbuckets == 0 || (nbuckets & (nbuckets - 1)))
        return SHM_E_INVAL;
    memset(t, 0, sht_size(nbuckets));
    for (uint32_t i = 0; i < nbuckets; i++)
        if (shm_lock_init_ptr(&t->b[i].lock) != SHM_OK)
            return SHM_E_LOCK;
    t->nbuckets = nbuckets;
    t->magic = SHT_MAGIC;
    return SHM_OK;
}

int sht_attach(char *base, uint64_t off)
{
    sht_t *t = SHM_AT(base, off);
    return t->magic == SHT_MAGIC ? (int)t->nbuckets : SHM_E_CORRUPT;
}

uint32_t sht_bucket_of(char *base, uint64_t off, const char *key, uint32_t klen)
{
    sht_t *t = SHM_AT(base, off);
    return sht_hash(key, klen) & (t->nbuckets - 1);
}

/* After taking over a bucket lock from a dead holder: keep the walkable prefix of the chain
 * (cut at the first offset that is not a plausible cell) and recount it. */
static void bucket_repair(char *base, sht_bucket_t *bk)
{
    shm_arena_t *a = (shm_arena_t *)base;
    uint64_t *link = &bk->head, steps = 0, limit = a->size / sizeof(sht_cell_t);
    uint32_t n = 0;

    while (*link) {
        uint64_t off = *link;
        if (off < a->heap_start || off + sizeof(sht_cell_t) > a->heap_end || off % 8 ||
            ++steps > limit) {
            *link = 0;
            break;
        }
        n++;
        link = &CELL(base, off)->next;
    }
    bk->count = n;
}

static int bucket_lock(char *base, sht_bucket_t *bk)
{
    int rc = shm_lock_acquire_ptr(base, &bk->lock);
    if (rc == SHM_RECOVERED) {
        bucket_repair(base, bk);
        rc = SHM_OK;
    }
    return rc;
}

int sht_lock_bucket(char *base, uint64_t off, uint32_t b)
{
    sht_t *t = SHM_AT(base, off);
    return b < t->nbuckets ? bucket_lock(base, &t->b[b]) : SHM_E_INVAL;
}

int sht_unlock_bucket(char *base, uint64_t off, uint32_t b)
{
    sht_t *t = SHM_AT(base, off);
    return b < t->nbuckets ? shm_lock_release_ptr(&t->b[b].lock) : SHM_E_INVAL;
}

/* Find key in bucket; *linkp receives the link (head or a cell's next) pointing at it. */
static sht_cell_t *find(char *base, sht_bucket_t *bk, uint32_t h, const char *key, uint32_t klen,
                        uint64_t **linkp)
{
    uint64_t *link = &bk->head;
    while (*link) {
        sht_cell_t *c = CELL(base, *link);
        if (c->hash == h && c->klen == klen && memcmp(KEY(c), key, klen) == 0) {
            *linkp = link;
            return c;
        }
        link = &c->next;
    }
    return NULL;
}

/* A new cell holding key/value, not yet linked. */
static int new_cell(char *base, uint32_t h, const char *key, uint32_t klen, const char *val,
                    uint32_t vlen, int64_t expires, uint64_t next, uint64_t *out)
{
    uint32_t vcap = (uint32_t)SHM_ROUND(vlen, 8);
    uint64_t off;
    int rc = shm_alloc(base, sizeof(sht_cell_t) + (uint64_t)klen + vcap, &off);
    sht_cell_t *c;

    if (rc < 0)
        return rc;
    c = CELL(base, off);
    c->next = next;
    c->expires = expires;
    c->hash = h;
    c->klen = klen;
    c->vlen = vlen;
    c->vcap = vcap;
    memcpy(KEY(c), key, klen);
    memcpy(VAL(c), val, vlen);
    *out = off;
    return SHM_OK;
}

/* Store value in the cell at *link (replacing it by a bigger one if needed). */
static int store(char *base, uint64_t *link, const char *val, uint32_t vlen, int64_t expires)
{
    sht_cell_t *c = CELL(base, *link);
    uint64_t old = *link, off;
    int rc;

    if (vlen <= c->vcap) {
        memmove(VAL(c), val, vlen);
        c->vlen = vlen;
        c->expires = expires;
        return SHM_OK;
    }
    rc = new_cell(base, c->hash, KEY(c), c->klen, val, vlen, expires, c->next, &off);
    if (rc < 0)
        return rc;
    *link = off;                         /* publish the new cell, then drop the old one */
    return shm_free(base, old);
}

#define LOCK_BUCKET(base, bk, flags)                                  \
    do {                                                              \
        if (!((flags) & SHT_NOLOCK)) {                                \
            int lrc_ = bucket_lock(base, bk);                         \
            if (lrc_ < 0)                                             \
                return lrc_;                                          \
        }                                                             \
    } while (0)
#define UNLOCK_BUCKET(bk, flags) \
    do { if (!((flags) & SHT_NOLOCK)) shm_lock_release_ptr(&(bk)->lock); } while (0)

int sht_set(char *base, uint64_t off, const char *key, uint32_t klen, const char *val,
            uint32_t vlen, int64_t expires, int64_t now, int mode, int flags)
{
    sht_t *t = SHM_AT(base, off);
    uint32_t h = sht_hash(key, klen);
    sht_bucket_t *bk = &t->b[h & (t->nbuckets - 1)];
    uint64_t *link, coff;
    sht_cell_t *c;
    int rc;

    LOCK_BUCKET(base, bk, flags);
    c = find(base, bk, h, key, klen, &link);
    if (c && !alive(c, now) && mode != SHT_SET) {
        /* an expired cell counts as absent for ADD/REPLACE; ADD reuses it */
        if (mode == SHT_REPLACE) {
            rc = SHM_E_NOTFOUND;
            goto out;
        }
        rc = store(base, link, val, vlen, expires);
        goto out;
    }
    if (c) {
        rc = mode == SHT_ADD ? SHM_E_EXISTS : store(base, link, val, vlen, expires);
    } else if (mode == SHT_REPLACE) {
        rc = SHM_E_NOTFOUND;
    } else {
        rc = new_cell(base, h, key, klen, val, vlen, expires, bk->head, &coff);
        if (rc == SHM_OK) {
            bk->head = coff;
            bk->count++;
        }
    }
out:
    UNLOCK_BUCKET(bk, flags);
    return rc;
}

int sht_get(char *base, uint64_t off, const char *key, uint32_t klen, int64_t now, char *out,
            uint32_t outcap, uint32_t *vlen, int64_t *expires, int flags)
{
    sht_t *t = SHM_AT(base, off);
    uint32_t h = sht_hash(key, klen);
    sht_bucket_t *bk = &t->b[h & (t->nbuckets - 1)];
    uint64_t *link;
    sht_cell_t *c;
    int rc = SHM_OK;

    LOCK_BUCKET(base, bk, flags);
    c = find(base, bk, h, key, klen, &link);
    if (!c || !alive(c, now)) {
        rc = SHM_E_NOTFOUND;
    } else {
        *vlen = c->vlen;
        *expires = c->expires;
        if (c->vlen > outcap)
            rc = SHM_E_TOOSMALL;
        else
            memcpy(out, VAL(c), c->vlen);
    }
    UNLOCK_BUCKET(bk, flags);
    return rc;
}

int sht_delete(char *base, uint64_t off, const char *key, uint32_t klen, int flags)
{
    sht_t *t = SHM_AT(base, off);
    uint32_t h = sht_hash(key, klen);
    sht_bucket_t *bk = &t->b[h & (t->nbuckets - 1)];
    uint64_t *link, coff;
    sht_cell_t *c;
    int rc = SHM_E_NOTFOUND;

    LOCK_BUCKET(base, bk, flags);
    c = find(base, bk, h, key, klen, &link);
    if (c) {
        coff = *link;
        *link = c->next;                     /* unlink, then free */
        bk->count--;
        rc = shm_free(base, coff);
    }
    UNLOCK_BUCKET(bk, flags);
    return rc;
}

/* Add delta to an 8-byte native-endian signed integer value; an absent or expired key starts
 * at 0 (and gets `expires`). A present key keeps its expiry. */
int sht_incr(char *base, uint64_t off, const char *key, uint32_t klen, int64_t delta,
             int64_t expires, int64_t now, int64_t *result, int flags)
{
    sht_t *t = SHM_AT(base, off);
    uint32_t h = sht_hash(key, klen);
    sht_bucket_t *bk = &t->b[h & (t->nbuckets - 1)];
    uint64_t *link, coff;
    sht_cell_t *c;
    int64_t v;
    int rc = SHM_OK;

    LOCK_BUCKET(base, bk, flags);
    c = find(base, bk, h, key, klen, &link);
    if (c && alive(c, now)) {
        if (c->vlen != sizeof(int64_t)) {
            rc = SHM_E_BADVALUE;
        } else {
            memcpy(&v, VAL(c), sizeof(v));
            v = (int64_t)((uint64_t)v + (uint64_t)delta);   /* wraps like C, never UB */
            memcpy(VAL(c), &v, sizeof(v));
            *result = v;
        }
    } else if (c) {
        rc = store(base, link, (const char *)&delta, sizeof(delta), expires);
        *result = delta;
    } else {
        rc = new_cell(base, h, key, klen, (const char *)&delta, sizeof(delta), expires, bk->head,
                      &coff);
        if (rc == SHM_OK) {
            bk->head = coff;
            bk->count++;
            *result = delta;
        }
    }
    UNLOCK_BUCKET(bk, flags);
    return rc;
}

/* Serialize one cell as {u32 klen, u32 vlen, i64 expires, key, value, pad to 8}. */
static char *put_rec(char *p, const sht_cell_t *c)
{
    memcpy(p, &c->klen, 4);
    memcpy(p + 4, &c->vlen, 4);
    memcpy(p + 8, &c->expires, 8);
    memcpy(p + REC_HDR, KEY(c), (size_t)c->klen + c->vlen);
    return p + REC_SIZE(c);
}

/* Copy every live cell of bucket b into out. SHM_E_TOOSMALL with *used = bytes needed. */
int sht_dump(char *base, uint64_t off, uint32_t b, int64_t now, char *out, uint64_t outcap,
             uint64_t *used, uint32_t *n, int flags)
{
    sht_t *t = SHM_AT(base, off);
    sht_bucket_t *bk;
    uint64_t need = 0, coff;
    uint32_t cnt = 0;
    int rc = SHM_OK;

    if (b >= t->nbuckets)
        return SHM_E_INVAL;
    bk = &t->b[b];
    LOCK_BUCKET(base, bk, flags);
    for (coff = bk->head; coff; coff = CELL(base, coff)->next)
        if (alive(CELL(base, coff), now))
            need += REC_SIZE(CELL(base, coff));
    if (need > outcap) {
        rc = SHM_E_TOOSMALL;
    } else {
        char *p = out;
        for (coff = bk->head; coff; coff = CELL(base, coff)->next)
            if (alive(CELL(base, coff), now)) {
                p = put_rec(p, CELL(base, coff));
                cnt++;
            }
    }
    UNLOCK_BUCKET(bk, flags);
    *used = need;
    *n = cnt;
    return rc;
}

/* Slice the expired cells off bucket b: each is unlinked, copied into out and freed, all
 * under the bucket lock, so the caller acts on plain bytes after release. Stops early (and
 * sets *more) when out is full. */
int sht_expire(char *base, uint64_t off, uint32_t b, int64_t now, char *out, uint64_t outcap,
               uint64_t *used, uint32_t *n, int *more)
{
    sht_t *t = SHM_AT(base, off);
    sht_bucket_t *bk;
    uint64_t *link, coff;
    char *p = out;
    uint32_t cnt = 0;
    int rc = SHM_OK;

    if (b >= t->nbuckets)
        return SHM_E_INVAL;
    bk = &t->b[b];
    *more = 0;
    LOCK_BUCKET(base, bk, 0);
    link = &bk->head;
    while ((coff = *link) != 0) {
        sht_cell_t *c = CELL(base, coff);
        if (alive(c, now)) {
            link = &c->next;
            continue;
        }
        if ((uint64_t)(p - out) + REC_SIZE(c) > outcap) {
            *more = 1;
            break;
        }
        p = put_rec(p, c);
        *link = c->next;
        bk->count--;
        cnt++;
        if ((rc = shm_free(base, coff)) < 0)
            break;
    }
    UNLOCK_BUCKET(bk, 0);
    *used = (uint64_t)(p - out);
    *n = cnt;
    return rc;
}

/* Remove every cell of bucket b. */
int sht_clear(char *base, uint64_t off, uint32_t b, uint32_t *n)
{
    sht_t *t = SHM_AT(base, off);
    sht_bucket_t *bk;
    uint64_t coff;
    uint32_t cnt = 0;
    int rc = SHM_OK;

    if (b >= t->nbuckets)
        return SHM_E_INVAL;
    bk = &t->b[b];
    LOCK_BUCKET(base, bk, 0);
    while ((coff = bk->head) != 0 && rc == SHM_OK) {
        bk->head = CELL(base, coff)->next;
        bk->count--;
        cnt++;
        rc = shm_free(base, coff);
    }
    UNLOCK_BUCKET(bk, 0);
    *n = cnt;
    return rc;
}

/* Number of cells (expired ones included), read without locks: exact when quiescent. */
uint64_t sht_count(char *base, uint64_t off)
{
    sht_t *t = SHM_AT(base, off);
    uint64_t n = 0;
    for (uint32_t i = 0; i < t->nbuckets; i++)
        n += __atomic_load_n(&t->b[i].count, __ATOMIC_RELAXED);
    return n;
}
