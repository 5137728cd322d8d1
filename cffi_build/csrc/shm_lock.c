/* Process-shared ROBUST pthread mutexes in shared memory.
 *
 * A worker SIGKILLed while holding a lock must not freeze the server: with
 * PTHREAD_MUTEX_ROBUST the kernel marks the mutex when its holder dies, and the next
 * pthread_mutex_lock() returns EOWNERDEAD with the lock held. We then call
 * pthread_mutex_consistent(), count the recovery (per lock and in the arena header) and
 * return SHM_RECOVERED, so the caller can check/repair the data the lock guarded.
 * The holder pid is recorded beside the mutex for diagnostics (core.psx, lock dumps). */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "shm_api.h"
#include "shm_lock.h"
#include "shm_arena.h"

/* getpid() is a real system call; cache it and refresh it in the child after fork(). */
static int32_t cached_pid;
static int atfork_registered;

static void after_fork_child(void) { cached_pid = (int32_t)getpid(); }

int32_t shm_self_pid(void)
{
    if (!atfork_registered) {
        pthread_atfork(NULL, NULL, after_fork_child);
        atfork_registered = 1;
        cached_pid = (int32_t)getpid();
    }
    return cached_pid;
}

int shm_lock_init_ptr(shm_lock_t *l)
{
    pthread_mutexattr_t a;
    int rc = SHM_OK;

    if (pthread_mutexattr_init(&a) != 0)
        return SHM_E_LOCK;
    if (pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
        pthread_mutex_init(&l->mtx, &a) != 0)
        rc = SHM_E_LOCK;
    pthread_mutexattr_destroy(&a);
    l->owner = 0;
    l->recoveries = 0;
    return rc;
}

/* Common tail of every acquire: r is the pthread result. */
static int took(char *base, shm_lock_t *l, int r)
{
    if (r == EOWNERDEAD) {
        /* we hold the lock; the previous holder died inside its critical section */
        if (pthread_mutex_consistent(&l->mtx) != 0) {
            pthread_mutex_unlock(&l->mtx);
            return SHM_E_LOCK;
        }
        l->recoveries++;
        if (base != NULL)
            __atomic_fetch_add(&((shm_arena_t *)base)->lock_recoveries, 1, __ATOMIC_RELAXED);
        l->owner = shm_self_pid();
        return SHM_RECOVERED;
    }
    if (r == EBUSY || r == ETIMEDOUT)
        return SHM_E_BUSY;
    if (r != 0)
        return SHM_E_LOCK;       /* ENOTRECOVERABLE, EDEADLK, EINVAL */
    l->owner = shm_self_pid();
    return SHM_OK;
}

int shm_lock_acquire_ptr(char *base, shm_lock_t *l)
{
    return took(base, l, pthread_mutex_lock(&l->mtx));
}

int shm_lock_release_ptr(shm_lock_t *l)
{
    int32_t prev = l->owner;

    l->owner = 0;
    if (pthread_mutex_unlock(&l->mtx) != 0) {
        l->owner = prev;         /* not ours (EPERM): leave the record alone */
        return SHM_E_LOCK;
    }
    return SHM_OK;
}

/* ---- entry points by offset (cdef) ---------------------------------------------------- */

size_t shm_lock_size(void) { return sizeof(shm_lock_t); }

int shm_lock_init(char *base, uint64_t off) { return shm_lock_init_ptr(SHM_AT(base, off)); }

int shm_lock_get(char *base, uint64_t off)
{
    return shm_lock_acquire_ptr(base, SHM_AT(base, off));
}

int shm_lock_try(char *base, uint64_t off)
{
    shm_lock_t *l = SHM_AT(base, off);
    return took(base, l, pthread_mutex_trylock(&l->mtx));
}

int shm_lock_timed(char *base, uint64_t off, int64_t timeout_ms)
{
    shm_lock_t *l = SHM_AT(base, off);
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);          /* timedlock takes a CLOCK_REALTIME deadline */
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return took(base, l, pthread_mutex_timedlock(&l->mtx, &ts));
}

int shm_lock_release(char *base, uint64_t off) { return shm_lock_release_ptr(SHM_AT(base, off)); }

int32_t shm_lock_owner(char *base, uint64_t off)
{
    return ((shm_lock_t *)SHM_AT(base, off))->owner;
}

uint32_t shm_lock_recoveries(char *base, uint64_t off)
{
    return ((shm_lock_t *)SHM_AT(base, off))->recoveries;
}
