"""ShmRing: a multi-producer, single-consumer queue of byte records in shm.

Runs in: any process pushes (workers, ctl, TCP workers: the timer's schedule requests); one
process drains (the timer process, on its tick). Shared state: one ring in the arena (the C
side, cffi_build/csrc/shm_ring.c), guarded by a robust lock held only while bytes are copied.
A push costs one C call and no system call; when the ring is full the record is refused and
counted (`dropped`), never blocking the pusher.
"""
from __future__ import annotations

import struct

from sipcore.shm._ffi import check, ffi, lib
from sipcore.shm.alloc import ShmArena

_LEN = struct.Struct("=I")


class ShmRing:
    """`push(record) -> bool`, `drain() -> list[bytes]` (single consumer), `dropped`."""

    __slots__ = ("arena", "base", "offset", "_buf", "_bufcap", "_used")

    def __init__(self, arena: ShmArena, offset: int, drain_cap: int = 1 << 20) -> None:
        check(lib.shm_ring_attach(arena.base, offset), f"ring at {offset}")
        self.arena = arena
        self.base = arena.base
        self.offset = offset
        self._bufcap = drain_cap
        self._buf = None            # the consumer's drain buffer, made on first drain()
        self._used = ffi.new("uint64_t *")

    @classmethod
    def create(cls, arena: ShmArena, capacity: int = 1 << 21) -> ShmRing:
        """Allocate a ring of `capacity` data bytes."""
        off = arena.alloc(int(lib.shm_ring_size(capacity)))
        check(lib.shm_ring_init(arena.base, off, capacity), "ring init")
        return cls(arena, off)

    @classmethod
    def attach(cls, arena: ShmArena, offset: int) -> ShmRing:
        return cls(arena, offset)

    def push(self, record: bytes) -> bool:
        """Queue one record; False (and counted in `dropped`) when the ring is full."""
        rc = lib.shm_ring_push(self.base, self.offset, record, len(record))
        if rc == lib.SHM_E_FULL:
            return False
        check(rc, "ring push")
        return True

    def drain(self) -> list[bytes]:
        """Every queued record, oldest first (the single consumer only)."""
        if self._buf is None:
            self._buf = ffi.new("char[]", self._bufcap)
        out: list[bytes] = []
        while True:
            check(lib.shm_ring_drain(self.base, self.offset, self._buf, self._bufcap,
                                     self._used), "ring drain")
            n = int(self._used[0])
            if not n:
                return out
            data = ffi.buffer(self._buf, n)[:]
            pos = 0
            while pos < n:
                (ln,) = _LEN.unpack_from(data, pos)
                out.append(data[pos + 4:pos + 4 + ln])
                pos += 4 + ln

    @property
    def wake_at(self) -> int:
        """When the consumer plans to look next (an int on the consumer's clock; 0 at
        first: every push is sooner)."""
        return int(lib.shm_ring_get_wake(self.base, self.offset))

    @wake_at.setter
    def wake_at(self, when: int) -> None:
        lib.shm_ring_set_wake(self.base, self.offset, when)

    @property
    def dropped(self) -> int:
        return int(lib.shm_ring_dropped(self.base, self.offset))
