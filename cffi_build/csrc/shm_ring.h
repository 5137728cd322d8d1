/* A multi-producer, single-consumer queue of byte records in the segment (a ring buffer
 * under one robust lock). Used by the timer: any process pushes schedule requests, the timer
 * process drains them on its tick. Replaces a pipe so that scheduling costs no system call
 * and does not wake the timer process for every request. */
#ifndef PYKAM_SHM_RING_H
#define PYKAM_SHM_RING_H

#include <stdint.h>
#include "shm_lock.h"

#define SHM_RING_MAGIC 0x474E4952u   /* "RING" */

typedef struct shm_ring {
    uint32_t magic, pad;
    shm_lock_t lock;
    uint64_t cap;                /* bytes of data area (after this header) */
    uint64_t head;               /* total bytes ever written (producers, under the lock) */
    uint64_t tail;               /* total bytes ever consumed (consumer, under the lock) */
    uint64_t dropped;            /* pushes refused because the ring was full */
    volatile int64_t wake_at;    /* when the consumer plans to look next (its clock, e.g.
                                    CLOCK_MONOTONIC us): a producer whose record is due
                                    sooner wakes it; written by the consumer only */
} shm_ring_t;

#endif
