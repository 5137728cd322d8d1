/* Ring of length-prefixed byte records, see shm_ring.h.
 *
 * Layout: header, then `cap` data bytes. A record is a uint32 length followed by that many
 * bytes, written at head % cap and wrapping around the end of the data area. head and tail
 * only grow (64-bit, no wrap in practice); head - tail is the number of bytes queued.
 *
 * Robustness: a producer copies the record, then advances head; the consumer copies records
 * out, then advances tail. A process killed in between leaves the indexes as they were, so a
 * half-written record is never visible and the next locker (SHM_RECOVERED) needs no repair. */
#include <string.h>

#include "shm_api.h"
#include "shm_ring.h"

#define RING(base, off) ((shm_ring_t *)SHM_AT(base, off))
#define DATA(r) ((char *)(r) + SHM_ROUND(sizeof(shm_ring_t), 64))

size_t shm_ring_size(uint64_t cap)
{
    return SHM_ROUND(sizeof(shm_ring_t), 64) + cap;
}

int shm_ring_init(char *base, uint64_t off, uint64_t cap)
{
    shm_ring_t *r = RING(base, off);

    if (cap < 64)
        return SHM_E_INVAL;
    memset(r, 0, sizeof(*r));
    if (shm_lock_init_ptr(&r->lock) != SHM_OK)
        return SHM_E_LOCK;
    r->cap = cap;
    r->magic = SHM_RING_MAGIC;
    return SHM_OK;
}

int shm_ring_attach(char *base, uint64_t off)
{
    return RING(base, off)->magic == SHM_RING_MAGIC ? SHM_OK : SHM_E_CORRUPT;
}

/* copy n bytes into / out of the data area at logical position pos, wrapping at cap */
static void put(shm_ring_t *r, uint64_t pos, const char *src, uint64_t n)
{
    uint64_t at = pos % r->cap, first = r->cap - at < n ? r->cap - at : n;
    memcpy(DATA(r) + at, src, first);
    memcpy(DATA(r), src + first, n - first);
}

static void get(shm_ring_t *r, uint64_t pos, char *dst, uint64_t n)
{
    uint64_t at = pos % r->cap, first = r->cap - at < n ? r->cap - at : n;
    memcpy(dst, DATA(r) + at, first);
    memcpy(dst + first, DATA(r), n - first);
}

/* Append one record; SHM_E_FULL (and a counted drop) when it does not fit. */
int shm_ring_push(char *base, uint64_t off, const char *rec, uint32_t len)
{
    shm_ring_t *r = RING(base, off);
    uint64_t need = (uint64_t)len + 4;
    int rc = shm_lock_acquire_ptr(base, &r->lock);

    if (rc < 0)
        return rc;
    if (r->cap - (r->head - r->tail) < need) {
        r->dropped++;
        shm_lock_release_ptr(&r->lock);
        return SHM_E_FULL;
    }
    put(r, r->head, (const char *)&len, 4);
    put(r, r->head + 4, rec, len);
    r->head += need;
    shm_lock_release_ptr(&r->lock);
    return SHM_OK;
}

/* Move whole records (each still length-prefixed) into out, at most outcap bytes; *used gets
 * the byte count. Records that do not fit stay queued for the next call. */
int shm_ring_drain(char *base, uint64_t off, char *out, uint64_t outcap, uint64_t *used)
{
    shm_ring_t *r = RING(base, off);
    uint64_t n = 0;
    uint32_t len;
    int rc;

    *used = 0;
    if (r->head == r->tail)          /* racy peek: a push seen late is taken next tick */
        return SHM_OK;
    rc = shm_lock_acquire_ptr(base, &r->lock);
    if (rc < 0)
        return rc;
    while (r->head - r->tail >= 4) {
        get(r, r->tail, (char *)&len, 4);
        if (n + 4 + len > outcap)
            break;
        get(r, r->tail, out + n, 4 + (uint64_t)len);
        n += 4 + (uint64_t)len;
        r->tail += 4 + (uint64_t)len;
    }
    shm_lock_release_ptr(&r->lock);
    *used = n;
    return SHM_OK;
}

/* The consumer's planned next look (see shm_ring.h); plain aligned 64-bit loads and stores,
 * with a full barrier so a producer reads it after its push is visible. */
void shm_ring_set_wake(char *base, uint64_t off, int64_t when)
{
    RING(base, off)->wake_at = when;
    __sync_synchronize();
}

int64_t shm_ring_get_wake(char *base, uint64_t off)
{
    __sync_synchronize();
    return RING(base, off)->wake_at;
}

uint64_t shm_ring_dropped(char *base, uint64_t off)
{
    return RING(base, off)->dropped;
}
