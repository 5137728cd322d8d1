/* Process-shared robust mutexes living inside the segment. */
#ifndef PYKAM_SHM_LOCK_H
#define PYKAM_SHM_LOCK_H

#include <pthread.h>
#include <stdint.h>

typedef struct shm_lock {
    pthread_mutex_t mtx;         /* PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST */
    volatile int32_t owner;      /* pid of the holder, 0 when free (diagnostics only) */
    uint32_t recoveries;         /* times this lock was taken over from a dead holder */
} shm_lock_t;

int shm_lock_init_ptr(shm_lock_t *l);
/* Acquire; returns SHM_OK, SHM_RECOVERED (the caller must check the guarded data) or
 * SHM_E_LOCK. `base` is the arena base: recoveries are also counted there. */
int shm_lock_acquire_ptr(char *base, shm_lock_t *l);
int shm_lock_release_ptr(shm_lock_t *l);
int32_t shm_self_pid(void);

#endif
