"""Statistics counters in shm without contention: per-process slots summed on read.

Runs in: every process. Workers, timer and master increment (hot path: one dict lookup and
an add to this process's own row through a memoryview, no lock, no C call); the ctl process
reads (sums) and resets for stats.* RPCs. Shared state: one counters block in the arena:
a name directory (append-only, robust lock for registration/reset) and one int64 row per
process slot, plus a shared row for processes without a slot.

Slots: slot i is the process-table index of the process; the master is slot 0
(ShmContext.create sets it) and every child calls `set_process_slot(i)` right after fork. A
respawned process reuses its predecessor's slot, so nothing it counted is lost. Until a
child calls set_process_slot() it adds atomically to the shared row (correct, just slower):
an at-fork hook moves every child there, so two processes never write one row.

Names are "group:name" (Kamailio style, e.g. "sl:404_replies"), at most 63 bytes. A name
created in any process after fork is visible to all: lookups that miss the per-process cache
re-read the directory. reset() does not write other processes' rows: it records the current
sum as a base that reads subtract; counters registered with no_reset=True (gauges) ignore it.
"""
from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Union

from sipcore.shm._ffi import check, ffi, lib
from sipcore.shm.alloc import ShmArena
from sipcore.shm.errors import ShmError

NAME_MAX: int = lib.SHM_CNT_NAME_MAX - 1
_NORESET: int = lib.SHM_CNT_NORESET


class _SharedRow:
    """Row stand-in for a process without a slot: `row[i] += n` becomes an atomic add."""

    __slots__ = ("base", "offset")

    def __init__(self, base: object, offset: int) -> None:
        self.base = base
        self.offset = offset

    def __getitem__(self, i: int) -> int:
        return 0

    def __setitem__(self, i: int, n: int) -> None:
        lib.shm_cnt_add_shared(self.base, self.offset, i, n)


Row = Union[memoryview, _SharedRow]  # noqa: UP007 (runtime alias, py3.10 compatible)


class ShmCounters:
    """The counters block. `inc(name)`, `get(name)`, `snapshot()`, `reset(name)`."""

    def __init__(self, arena: ShmArena, offset: int) -> None:
        pmax, pslots = ffi.new("uint32_t *"), ffi.new("uint32_t *")
        check(lib.shm_cnt_attach(arena.base, offset, pmax, pslots), f"counters at {offset}")
        self.arena = arena
        self.base = arena.base
        self.offset = offset
        self.max = int(pmax[0])
        self.nslots = int(pslots[0])
        self.slot: int | None = None
        # per-process cache of the append-only directory: entries [0, len(_names))
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._flags: list[int] = []
        self._namebuf = ffi.new("char[]", lib.SHM_CNT_NAME_MAX)
        self._u32 = ffi.new("uint32_t *")
        self._i64 = ffi.new("int64_t *")
        self._listeners: list[Callable[[Row], None]] = []
        self.row: Row = _SharedRow(self.base, offset)
        _LIVE.add(self)

    @classmethod
    def create(cls, arena: ShmArena, max_counters: int = 2048, nslots: int = 64) -> ShmCounters:
        """Allocate a block for `max_counters` names and `nslots` process rows."""
        if not (1 <= max_counters <= 1 << 20 and 1 <= nslots <= 1 << 16):
            raise ShmError(f"counters size out of range ({max_counters}, {nslots})")
        off = arena.alloc(lib.shm_cnt_size(max_counters, nslots))
        check(lib.shm_cnt_init(arena.base, off, max_counters, nslots), "counters init")
        return cls(arena, off)

    @classmethod
    def attach(cls, arena: ShmArena, offset: int) -> ShmCounters:
        return cls(arena, offset)

    # ---- process slot -------------------------------------------------------------------

    def set_process_slot(self, slot: int) -> None:
        """Make this process the owner of row `slot` (its process-table index). Call once
        after fork, before counting; two live processes must never share a slot."""
        if not 0 <= slot < self.nslots:
            raise ShmError(f"process slot {slot} out of range (0..{self.nslots - 1}); "
                           "size the counters with more slots")
        off = int(lib.shm_cnt_row_off(self.base, self.offset, slot))
        self._set_row(self.arena.segment.view(off, self.max * 8, "q"), slot)

    def _unslot(self) -> None:
        """At fork, in the child: the parent's row is not ours."""
        if self.slot is not None:
            self._set_row(_SharedRow(self.base, self.offset), None)

    def _set_row(self, row: Row, slot: int | None) -> None:
        self.row = row
        self.slot = slot
        for cb in self._listeners:
            cb(row)

    def on_row_change(self, cb: Callable[[Row], None]) -> None:
        """cb(row) runs whenever this process's row object changes (slot set, fork)."""
        self._listeners.append(cb)

    # ---- names --------------------------------------------------------------------------

    def _sync(self) -> None:
        """Read directory entries created (by any process) since the last sync."""
        n = int(lib.shm_cnt_count(self.base, self.offset))
        for i in range(len(self._names), n):
            check(lib.shm_cnt_entry(self.base, self.offset, i, self._namebuf, self._u32),
                  "counter entry")
            name = ffi.string(self._namebuf).decode()
            self._names.append(name)
            self._flags.append(int(self._u32[0]))
            self._index[name] = i

    def find(self, name: str) -> int | None:
        """Index of an existing counter, or None."""
        i = self._index.get(name)
        if i is None:
            self._sync()
            i = self._index.get(name)
        return i

    def index(self, name: str, no_reset: bool = False) -> int:
        """Index of `name`, creating the counter (value 0) if needed."""
        i = self._index.get(name)
        if i is not None:
            return i
        raw = name.encode()
        if not 0 < len(raw) <= NAME_MAX:
            raise ShmError(f"counter name {name!r}: 1..{NAME_MAX} bytes")
        rc = lib.shm_cnt_register(self.base, self.offset, raw, len(raw),
                                  _NORESET if no_reset else 0)
        if rc == lib.SHM_E_FULL:
            raise ShmError(f"counter directory full ({self.max} names): cannot add {name!r}")
        check(rc, f"register counter {name!r}")
        self._sync()
        return rc

    def names(self) -> list[str]:
        """Every counter name, in creation order."""
        self._sync()
        return list(self._names)

    def is_no_reset(self, name: str) -> bool:
        i = self.find(name)
        return i is not None and bool(self._flags[i] & _NORESET)

    # ---- values -------------------------------------------------------------------------

    def add(self, idx: int, n: int = 1) -> None:
        self.row[idx] += n

    def inc(self, name: str, n: int = 1) -> None:
        i = self._index.get(name)
        if i is None:
            i = self.index(name)
        self.row[i] += n

    def value(self, idx: int) -> int:
        check(lib.shm_cnt_get(self.base, self.offset, idx, self._i64), "counter get")
        return int(self._i64[0])

    def get(self, name: str) -> int:
        """Sum over all processes (0 for an unknown name)."""
        i = self.find(name)
        return 0 if i is None else self.value(i)

    def reset(self, name: str) -> int:
        """Reset to 0 (no-op for no_reset counters); returns the value before."""
        i = self.find(name)
        if i is None:
            return 0
        check(lib.shm_cnt_reset(self.base, self.offset, i, self._i64), "counter reset")
        return int(self._i64[0])

    def snapshot(self, prefix: str = "") -> dict[str, int]:
        """{name: value} for every counter whose name starts with prefix."""
        self._sync()
        n = len(self._names)
        if n == 0:
            return {}
        out = ffi.new("int64_t[]", n)
        got = lib.shm_cnt_get_all(self.base, self.offset, out, n)
        return {self._names[i]: int(out[i]) for i in range(got)
                if self._names[i].startswith(prefix)}


_LIVE: weakref.WeakSet[ShmCounters] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for c in list(_LIVE):
        c._unslot()


os.register_at_fork(after_in_child=_after_fork_in_child)
