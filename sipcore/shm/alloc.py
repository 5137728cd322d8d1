"""The arena allocator over a Segment: offsets in, offsets out, never pointers.

Runs in: every process that allocates shm (master pre-fork for module tables; workers and the
timer for cells); core.shmmem (ctl process) reads stats(). Shared state: the arena header at
offset 0 of the segment (robust lock, free lists, statistics, root offsets) and the heap.

Running out of memory raises ShmOutOfMemory (a ShmError); the segment stays usable and the
failure is counted in stats()["oom"]. The C allocator is described in
cffi_build/csrc/shm_arena.c (segregated free lists, O(1) coalescing, 16-byte alignment).
"""
from __future__ import annotations

from sipcore.shm._ffi import check, ffi, lib
from sipcore.shm.errors import ShmCorrupt, ShmError
from sipcore.shm.segment import Segment

# Well-known root slots in the arena header (offsets of objects every process can find).
ROOT_COUNTERS = 0
ROOT_NAMED = 1
NROOTS: int = lib.SHM_NROOTS


class ShmArena:
    """Allocator facade. `alloc(n) -> offset`, `free(offset)`, `stats() -> dict`."""

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
        self.base = segment.base
        self._off = ffi.new("uint64_t *")
        self._st = ffi.new("shm_arena_stats_t *")

    @classmethod
    def create(cls, segment: Segment) -> ShmArena:
        """Format a fresh segment (master, pre-fork)."""
        check(lib.shm_arena_init(segment.base, segment.size), f"init arena in {segment.name}")
        return cls(segment)

    @classmethod
    def attach(cls, segment: Segment) -> ShmArena:
        """Use an arena formatted by another process (checks magic, version and size)."""
        rc = lib.shm_arena_attach(segment.base, segment.size)
        if rc < 0:
            raise ShmCorrupt(f"{segment.name} holds no PyKam arena of this version/size")
        return cls(segment)

    def alloc(self, size: int) -> int:
        """Offset of a new 16-aligned block of at least `size` bytes (contents undefined)."""
        if size < 0:
            raise ShmError(f"alloc: negative size {size}")
        rc = lib.shm_alloc(self.base, size, self._off)
        if rc < 0:
            check(rc, f"alloc({size})")
        return int(self._off[0])

    def free(self, offset: int) -> None:
        """Return a block; a double free or a foreign offset raises ShmError."""
        check(lib.shm_free(self.base, offset), f"free({offset})")

    def usable_size(self, offset: int) -> int:
        """Bytes actually available in the block at `offset` (>= the size asked for)."""
        return int(lib.shm_usable_size(self.base, offset))

    def stats(self) -> dict[str, int]:
        """core.shmmem shape: total, used, real_used, free, max_used, fragments (+ allocs,
        oom = failed allocations, lock_recoveries = locks taken over from dead processes)."""
        st = self._st
        check(lib.shm_arena_stats(self.base, st), "arena stats")
        return {"total": st.total, "used": st.used, "real_used": st.real_used,
                "free": st.free, "max_used": st.max_used, "fragments": st.fragments,
                "allocs": st.allocs, "oom": st.oom, "lock_recoveries": st.lock_recoveries}

    @property
    def lock_offset(self) -> int:
        """Offset of the allocator's own lock (wrap it in locks.Lock to see its owner)."""
        return int(lib.shm_arena_lock_offset())

    def check(self) -> None:
        """Walk the whole heap and verify it (tests, debugging); raises ShmCorrupt."""
        check(lib.shm_arena_check(self.base), "arena check")

    # ---- raw bytes at offsets (for packed records of module tables) ---------------------

    def read(self, offset: int, length: int) -> bytes:
        return self.segment.mm[offset:offset + length]

    def write(self, offset: int, data: bytes) -> None:
        self.segment.mm[offset:offset + len(data)] = data

    # ---- root slots ---------------------------------------------------------------------

    def root(self, index: int) -> int:
        """Offset stored in root slot `index` (0 = unset)."""
        return int(lib.shm_arena_root(self.base, index))

    def set_root(self, index: int, offset: int, expect: int = 0) -> bool:
        """Store `offset` in root slot `index` if it still holds `expect`; False if not."""
        if not 0 <= index < NROOTS:
            raise ShmError(f"root index {index} out of range")
        return lib.shm_arena_set_root(self.base, index, expect, offset) == lib.SHM_OK
