/* Shared definitions of the PyKam shared-memory library (shm_*.c).
 *
 * Everything in the segment is addressed by byte OFFSETS from the segment base, never by
 * pointers: every process maps the segment itself, and although forked children inherit the
 * master's mapping at the same address, a tool attaching later would not. Each entry point
 * therefore takes (base, offset) and converts with SHM_AT().
 *
 * Return codes: >= 0 success (SHM_RECOVERED: a lock was taken over from a dead owner),
 * < 0 an SHM_E_* error that sipcore/shm/_ffi.py turns into an exception. */
#ifndef PYKAM_SHM_COMMON_H
#define PYKAM_SHM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define SHM_OK 0
#define SHM_RECOVERED 1          /* lock acquired after its owner died (EOWNERDEAD) */
#define SHM_E_NOMEM (-1)         /* the arena has no free block large enough */
#define SHM_E_NOTFOUND (-2)
#define SHM_E_EXISTS (-3)
#define SHM_E_TOOSMALL (-4)      /* output buffer too small; the needed size is reported */
#define SHM_E_BADVALUE (-5)      /* e.g. incr on a value that is not an 8-byte integer */
#define SHM_E_CORRUPT (-6)       /* a structure failed its consistency check */
#define SHM_E_LOCK (-7)          /* pthread error (not owner, not recoverable, ...) */
#define SHM_E_INVAL (-8)         /* bad argument (offset outside the heap, double free, ...) */
#define SHM_E_FULL (-9)          /* a fixed-size directory is full */
#define SHM_E_BUSY (-10)         /* trylock/timedlock did not get the lock */

#define SHM_AT(base, off) ((void *)((char *)(base) + (off)))
#define SHM_OFF(base, ptr) ((uint64_t)((char *)(ptr) - (char *)(base)))
#define SHM_ALIGN 16
#define SHM_ROUND(n, a) (((n) + (a) - 1) & ~((uint64_t)(a) - 1))

#endif
