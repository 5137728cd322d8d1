"""Process-shared robust mutexes in shm, as context managers.

Runs in: every process that takes a shm lock (workers, timer, ctl, master pre-fork).
Shared state: the pthread mutexes inside the segment, each with its holder's pid and a count
of recoveries; the arena header counts all recoveries of the segment
(`ShmArena.stats()["lock_recoveries"]`).

Robustness: a process killed while holding a lock does not block the others. The next
locker gets the lock (pthread EOWNERDEAD), marks it consistent, counts the recovery, logs a
warning and runs the lock's `on_recover` callback while holding it, so the owner of the data
can check/repair what the dead process may have left half-written.

Rules (STYLE rule 4): hold a lock only around copying bytes in or out; never across I/O, DB
access, script execution or another module's callback; collect under the lock, act after.

Lock order (outer first; never take an earlier one while holding a later one):
  1. module structure locks, in this order: tm slot -> dialog slot -> usrloc slot ->
     htable slot (one slot of a table at a time; a LockSet's locks in increasing index)
  2. ShmHashTable bucket locks (taken inside the C calls; one bucket at a time)
  3. the counters directory lock (registration and reset only)
  4. the arena lock (innermost: allocation runs under bucket locks; the arena calls nothing)
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

from sipcore.shm._ffi import RECOVERED, check, ffi, lib
from sipcore.shm.alloc import ShmArena
from sipcore.shm.errors import LockError, ShmError

log = logging.getLogger(__name__)

LOCK_SIZE: int = lib.shm_lock_size()
_STRIDE = (LOCK_SIZE + 15) // 16 * 16
_SET_HDR = 16            # LockSet header: u64 count, padding

LOCK_ORDER = ("tm", "dialog", "usrloc", "htable", "bucket", "counters", "arena")
"""Lock classes from outermost to innermost (see the module docstring)."""


class Lock:
    """A robust process-shared mutex at `offset`. `with lock:` acquires and releases."""

    __slots__ = ("arena", "base", "offset", "on_recover")

    def __init__(self, arena: ShmArena, offset: int,
                 on_recover: Callable[[], None] | None = None) -> None:
        self.arena = arena
        self.base = arena.base
        self.offset = offset
        self.on_recover = on_recover

    @classmethod
    def create(cls, arena: ShmArena, on_recover: Callable[[], None] | None = None) -> Lock:
        """Allocate and initialise a lock in the arena."""
        off = arena.alloc(LOCK_SIZE)
        check(lib.shm_lock_init(arena.base, off), "lock init")
        return cls(arena, off, on_recover)

    def acquire(self, timeout: float | None = None) -> bool:
        """Block until held (timeout None), or wait at most `timeout` seconds (0 = try).
        Returns False when the timeout expires."""
        if timeout is None:
            rc = lib.shm_lock_get(self.base, self.offset)
        elif timeout <= 0:
            rc = lib.shm_lock_try(self.base, self.offset)
        else:
            rc = lib.shm_lock_timed(self.base, self.offset, int(timeout * 1000))
        if rc == RECOVERED:
            self._recovered()
        elif rc == lib.SHM_E_BUSY:
            return False
        elif rc < 0:
            check(rc, f"lock {self.offset}")
        return True

    def _recovered(self) -> None:
        log.warning("shm lock at offset %d recovered from a dead holder (recovery #%d)",
                    self.offset, self.recoveries)
        if self.on_recover is not None:
            self.on_recover()

    def release(self) -> None:
        """Release; raises LockError if this process does not hold the lock."""
        rc = lib.shm_lock_release(self.base, self.offset)
        if rc < 0:
            raise LockError(f"release of shm lock {self.offset} not held by this process")

    def __enter__(self) -> Lock:  # noqa: PYI034 (typing.Self needs 3.11)
        rc = lib.shm_lock_get(self.base, self.offset)
        if rc != 0:
            if rc == RECOVERED:
                self._recovered()
            else:
                check(rc, f"lock {self.offset}")
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if lib.shm_lock_release(self.base, self.offset) < 0:
            raise LockError(f"release of shm lock {self.offset} not held by this process")

    @property
    def owner(self) -> int:
        """pid of the holder, 0 when free (diagnostics: may be stale for a dead holder)."""
        return int(lib.shm_lock_owner(self.base, self.offset))

    @property
    def recoveries(self) -> int:
        """How many times this lock was taken over from a dead holder."""
        return int(lib.shm_lock_recoveries(self.base, self.offset))

    def destroy(self) -> None:
        """Free the lock's memory (nobody may use it afterwards)."""
        self.arena.free(self.offset)

    def __repr__(self) -> str:
        return f"<Lock @{self.offset} owner={self.owner}>"


class LockSet:
    """`n` locks in one block, picked by index or hash (Kamailio gen_lock_set_t).

    Use it to guard the slots of a module table: `with locks.for_hash(h): ...`. Never hold two
    locks of a set unless taken in increasing index order.
    """

    def __init__(self, arena: ShmArena, offset: int,
                 on_recover: Callable[[int], None] | None = None) -> None:
        self.arena = arena
        self.offset = offset
        n = int(ffi.cast("uint64_t *", arena.base + offset)[0])
        if n <= 0:
            raise ShmError(f"no lock set at offset {offset}")
        self.n = n
        self._locks = [Lock(arena, offset + _SET_HDR + i * _STRIDE,
                            None if on_recover is None else _bind(on_recover, i))
                       for i in range(n)]

    @classmethod
    def create(cls, arena: ShmArena, n: int,
               on_recover: Callable[[int], None] | None = None) -> LockSet:
        """Allocate `n` locks. on_recover(i) runs when lock i is taken from a dead holder."""
        if n <= 0:
            raise ShmError(f"lock set size must be positive, not {n}")
        off = arena.alloc(_SET_HDR + n * _STRIDE)
        for i in range(n):
            check(lib.shm_lock_init(arena.base, off + _SET_HDR + i * _STRIDE), "lock init")
        ffi.cast("uint64_t *", arena.base + off)[0] = n
        return cls(arena, off, on_recover)

    @classmethod
    def attach(cls, arena: ShmArena, offset: int) -> LockSet:
        return cls(arena, offset)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Lock:
        return self._locks[i]

    def for_hash(self, h: int) -> Lock:
        return self._locks[h % self.n]

    def for_key(self, key: bytes) -> Lock:
        """The lock for a byte key (same hash as ShmHashTable)."""
        return self._locks[lib.sht_hash(key, len(key)) % self.n]

    def recoveries(self) -> int:
        return sum(lk.recoveries for lk in self._locks)

    def destroy(self) -> None:
        self.arena.free(self.offset)


def _bind(fn: Callable[[int], None], i: int) -> Callable[[], None]:
    return lambda: fn(i)
