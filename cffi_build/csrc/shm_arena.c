/* Offset-based allocator for the shared segment.
 *
 * Layout: [shm_arena_t header][block][block]...[sentinel]. Every block starts with a
 * 16-byte header {prev_size, size|USED}: `size` includes the header and is a multiple of 16,
 * `prev_size` is the size of the physically previous block (0 for the first), so free()
 * coalesces with both neighbours in O(1). Free blocks keep {next_free, prev_free} offsets in
 * their payload and sit in segregated lists: exact classes of 16 bytes below 1 KiB, then one
 * list per power of two; a bitmap finds the next non-empty list. Payloads are 16-aligned.
 *
 * One robust lock guards the heap. Writes are ordered so that a walk from heap_start by
 * `size` always sees a valid tiling even if the writer died mid-operation; when the lock is
 * recovered from a dead holder, arena_repair() rebuilds prev_size links, free lists and the
 * statistics from that walk (a block that was being allocated may leak, nothing worse). */
#include <stddef.h>
#include <string.h>

#include "shm_api.h"
#include "shm_arena.h"

typedef struct blk {
    uint64_t prev_size;
    uint64_t size;               /* low bit: USED */
    uint64_t next_free;          /* only while free */
    uint64_t prev_free;
} blk_t;

#define BLK_HDR 16u
#define BLK_MIN 32u
#define USED 1u
#define BSIZE(b) ((b)->size & ~(uint64_t)USED)
#define BLK(base, off) ((blk_t *)SHM_AT(base, off))

static unsigned bin_of(uint64_t size)
{
    if (size < 1024)
        return (unsigned)(size >> 4);
    return 64u + (unsigned)(63 - __builtin_clzll(size)) - 10u;
}

static void bin_push(char *base, shm_arena_t *a, uint64_t off)
{
    blk_t *b = BLK(base, off);
    unsigned i = bin_of(BSIZE(b));

    b->prev_free = 0;
    b->next_free = a->bins[i];
    if (a->bins[i])
        BLK(base, a->bins[i])->prev_free = off;
    a->bins[i] = off;
    a->binmap[i / 64] |= 1ull << (i % 64);
    a->frags++;
}

static void bin_remove(char *base, shm_arena_t *a, uint64_t off)
{
    blk_t *b = BLK(base, off);
    unsigned i = bin_of(BSIZE(b));

    if (b->prev_free)
        BLK(base, b->prev_free)->next_free = b->next_free;
    else
        a->bins[i] = b->next_free;
    if (b->next_free)
        BLK(base, b->next_free)->prev_free = b->prev_free;
    if (!a->bins[i])
        a->binmap[i / 64] &= ~(1ull << (i % 64));
    a->frags--;
}

/* First non-empty bin with index >= i, or SHM_NBINS. */
static unsigned bin_next(const shm_arena_t *a, unsigned i)
{
    while (i < SHM_NBINS) {
        uint64_t m = a->binmap[i / 64] & (~0ull << (i % 64));
        if (m)
            return (i / 64) * 64 + (unsigned)__builtin_ctzll(m);
        i = (i / 64 + 1) * 64;
    }
    return SHM_NBINS;
}

/* Rebuild links, lists and statistics from a walk of the heap (lock held). */
static int arena_repair(char *base, shm_arena_t *a)
{
    uint64_t off, prev = 0, last_free = 0;

    /* pass 1: validate the tiling and merge neighbouring free blocks */
    for (off = a->heap_start; off < a->heap_end;) {
        blk_t *b = BLK(base, off);
        uint64_t sz = BSIZE(b);
        if (sz < BLK_MIN || sz % SHM_ALIGN || off + sz > a->heap_end)
            return SHM_E_CORRUPT;
        if (!(b->size & USED) && last_free) {
            BLK(base, last_free)->size += sz;
        } else {
            last_free = (b->size & USED) ? 0 : off;
        }
        off += sz;
    }
    /* pass 2: prev_size links, free lists, statistics */
    memset(a->bins, 0, sizeof(a->bins));
    memset(a->binmap, 0, sizeof(a->binmap));
    a->frags = a->nallocs = a->used = 0;
    a->real_used = a->size;
    for (off = a->heap_start; off < a->heap_end;) {
        blk_t *b = BLK(base, off);
        uint64_t sz = BSIZE(b);
        b->prev_size = prev;
        if (b->size & USED) {
            a->nallocs++;
            a->used += sz - BLK_HDR;
        } else {
            a->real_used -= sz;
            bin_push(base, a, off);
        }
        prev = sz;
        off += sz;
    }
    BLK(base, a->heap_end)->prev_size = prev;
    if (a->real_used > a->max_used)
        a->max_used = a->real_used;
    return SHM_OK;
}

static int arena_lock(char *base, shm_arena_t *a)
{
    int rc = shm_lock_acquire_ptr(base, &a->lock);
    if (rc == SHM_RECOVERED) {
        if (arena_repair(base, a) != SHM_OK) {
            shm_lock_release_ptr(&a->lock);
            return SHM_E_CORRUPT;
        }
        rc = SHM_OK;
    }
    return rc;
}

int shm_arena_init(char *base, uint64_t size)
{
    shm_arena_t *a = (shm_arena_t *)base;
    uint64_t start = SHM_ROUND(sizeof(shm_arena_t), SHM_ALIGN);
    uint64_t end = (size - BLK_HDR) & ~(uint64_t)(SHM_ALIGN - 1);
    blk_t *first, *sentinel;

    if (size < start + BLK_MIN + BLK_HDR || end - start < BLK_MIN)
        return SHM_E_INVAL;
    memset(a, 0, sizeof(*a));
    if (shm_lock_init_ptr(&a->lock) != SHM_OK)
        return SHM_E_LOCK;
    a->size = size;
    a->heap_start = start;
    a->heap_end = end;
    first = BLK(base, start);
    first->prev_size = 0;
    first->size = end - start;
    sentinel = BLK(base, end);
    sentinel->prev_size = end - start;
    sentinel->size = USED;                 /* size 0, in use: coalescing stops here */
    a->real_used = size - (end - start);
    a->max_used = a->real_used;
    bin_push(base, a, start);
    a->version = SHM_ARENA_VERSION;
    __atomic_store_n(&a->magic, SHM_ARENA_MAGIC, __ATOMIC_RELEASE);   /* published last */
    return SHM_OK;
}

int shm_arena_attach(char *base, uint64_t size)
{
    shm_arena_t *a = (shm_arena_t *)base;
    if (a->magic != SHM_ARENA_MAGIC || a->version != SHM_ARENA_VERSION)
        return SHM_E_CORRUPT;
    return a->size == size ? SHM_OK : SHM_E_INVAL;
}

int shm_alloc(char *base, uint64_t size, uint64_t *out_off)
{
    shm_arena_t *a = (shm_arena_t *)base;
    uint64_t need, off = 0;
    unsigned i;
    int rc;

    if (size > a->size) {
        __atomic_fetch_add(&a->oom, 1, __ATOMIC_RELAXED);
        return SHM_E_NOMEM;
    }
    need = SHM_ROUND(size + BLK_HDR, SHM_ALIGN);
    if (need < BLK_MIN)
        need = BLK_MIN;
    if ((rc = arena_lock(base, a)) < 0)
        return rc;
    i = bin_of(need);
    if (i >= 64) {                         /* power-of-two class: first fit inside it */
        for (off = a->bins[i]; off; off = BLK(base, off)->next_free)
            if (BSIZE(BLK(base, off)) >= need)
                break;
        i++;
    }
    if (!off) {                            /* any block of a larger class fits */
        i = bin_next(a, i);
        if (i == SHM_NBINS) {
            __atomic_fetch_add(&a->oom, 1, __ATOMIC_RELAXED);
            shm_lock_release_ptr(&a->lock);
            return SHM_E_NOMEM;
        }
        off = a->bins[i];
    }
    {
        blk_t *b = BLK(base, off);
        uint64_t bsz = BSIZE(b);
        bin_remove(base, a, off);
        if (bsz - need >= BLK_MIN) {       /* split: the tail stays free */
            blk_t *rest = BLK(base, off + need);
            rest->prev_size = need;
            rest->size = bsz - need;       /* written before b shrinks: the walk stays valid */
            BLK(base, off + bsz)->prev_size = bsz - need;
            b->size = need | USED;
            bin_push(base, a, off + need);
        } else {
            need = bsz;
            b->size = bsz | USED;
        }
    }
    a->used += need - BLK_HDR;
    a->real_used += need;
    a->nallocs++;
    if (a->real_used > a->max_used)
        a->max_used = a->real_used;
    shm_lock_release_ptr(&a->lock);
    *out_off = off + BLK_HDR;
    return SHM_OK;
}

int shm_free(char *base, uint64_t off)
{
    shm_arena_t *a = (shm_arena_t *)base;
    uint64_t boff, sz;
    blk_t *b, *next;
    int rc;

    if (off < a->heap_start + BLK_HDR || off >= a->heap_end || off % SHM_ALIGN)
        return SHM_E_INVAL;
    if ((rc = arena_lock(base, a)) < 0)
        return rc;
    boff = off - BLK_HDR;
    b = BLK(base, boff);
    if (!(b->size & USED) || BSIZE(b) < BLK_MIN || boff + BSIZE(b) > a->heap_end) {
        shm_lock_release_ptr(&a->lock);    /* double free or not a block start */
        return SHM_E_INVAL;
    }
    sz = BSIZE(b);
    a->used -= sz - BLK_HDR;
    a->real_used -= sz;
    a->nallocs--;
    b->size = sz;                          /* now free */
    next = BLK(base, boff + sz);
    if (!(next->size & USED)) {            /* merge the following block */
        bin_remove(base, a, boff + sz);
        sz += BSIZE(next);
        b->size = sz;
    }
    if (b->prev_size) {                    /* merge into the preceding block */
        uint64_t poff = boff - b->prev_size;
        blk_t *p = BLK(base, poff);
        if (!(p->size & USED)) {
            bin_remove(base, a, poff);
            sz += BSIZE(p);
            p->size = sz;
            boff = poff;
        }
    }
    BLK(base, boff + sz)->prev_size = sz;
    bin_push(base, a, boff);
    shm_lock_release_ptr(&a->lock);
    return SHM_OK;
}

uint64_t shm_usable_size(char *base, uint64_t off)
{
    return BSIZE(BLK(base, off - BLK_HDR)) - BLK_HDR;
}

int shm_arena_stats(char *base, shm_arena_stats_t *out)
{
    shm_arena_t *a = (shm_arena_t *)base;
    int rc = arena_lock(base, a);
    if (rc < 0)
        return rc;
    out->total = a->size;
    out->used = a->used;
    out->real_used = a->real_used;
    out->free = a->size - a->real_used;
    out->max_used = a->max_used;
    out->fragments = a->frags;
    out->allocs = a->nallocs;
    out->oom = __atomic_load_n(&a->oom, __ATOMIC_RELAXED);
    out->lock_recoveries = __atomic_load_n(&a->lock_recoveries, __ATOMIC_RELAXED);
    shm_lock_release_ptr(&a->lock);
    return SHM_OK;
}

/* Full consistency check (tests, debugging): the tiling, prev_size links, no two free
 * neighbours, and the counters agree with a walk. Read-only. */
int shm_arena_check(char *base)
{
    shm_arena_t *a = (shm_arena_t *)base;
    uint64_t off, prev = 0, frags = 0, nallocs = 0, used = 0, freeb = 0;
    int prev_free = 0, rc = arena_lock(base, a);

    if (rc < 0)
        return rc;
    rc = SHM_OK;
    for (off = a->heap_start; off < a->heap_end;) {
        blk_t *b = BLK(base, off);
        uint64_t sz = BSIZE(b);
        if (sz < BLK_MIN || sz % SHM_ALIGN || off + sz > a->heap_end || b->prev_size != prev ||
            (prev_free && !(b->size & USED))) {
            rc = SHM_E_CORRUPT;
            break;
        }
        prev_free = !(b->size & USED);
        if (prev_free) {
            frags++;
            freeb += sz;
        } else {
            nallocs++;
            used += sz - BLK_HDR;
        }
        prev = sz;
        off += sz;
    }
    if (rc == SHM_OK && (off != a->heap_end || BLK(base, off)->prev_size != prev ||
                         frags != a->frags || nallocs != a->nallocs || used != a->used ||
                         a->size - freeb != a->real_used))
        rc = SHM_E_CORRUPT;
    shm_lock_release_ptr(&a->lock);
    return rc;
}

/* Where the allocator lock sits (diagnostics: who holds it; tests: kill a holder). */
uint64_t shm_arena_lock_offset(void) { return offsetof(shm_arena_t, lock); }

uint64_t shm_arena_root(char *base, unsigned i)
{
    return i < SHM_NROOTS ? __atomic_load_n(&((shm_arena_t *)base)->roots[i], __ATOMIC_ACQUIRE) : 0;
}

/* Set root i to off if it is still `expect` (compare-and-swap): two processes racing to
 * create the same well-known object cannot both win. */
int shm_arena_set_root(char *base, unsigned i, uint64_t expect, uint64_t off)
{
    if (i >= SHM_NROOTS)
        return SHM_E_INVAL;
    return __atomic_compare_exchange_n(&((shm_arena_t *)base)->roots[i], &expect, off, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ? SHM_OK : SHM_E_EXISTS;
}
