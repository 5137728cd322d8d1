"""ShmContext: the one shared-memory segment of a PyKam instance and what lives in it.

Runs in: the master, which creates it before forking (`ShmContext.create(size_mb, instance)`,
size from -m) and destroys it on stop after every child is reaped; every child inherits the
object through fork and calls `set_process_slot(i)` once. Tools may `open()` a running
instance. Shared state: the segment, its arena, the statistics counters block (arena root 0)
and the directory of named module objects (arena roots 1 and 2: a small hash table name ->
offset and the lock that serialises creation).

Module objects: `ctx.named("htable:blacklist", create, attach)` returns the process's object for
that name: created with create(arena) the first time any process asks (normally the master in
mod_init), attached with attach(arena, offset) when another process created it after fork.
The object must have an `offset` attribute (ShmHashTable, LockSet and ShmCounters do).
"""
from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any, TypeVar

from sipcore.shm.alloc import ROOT_COUNTERS, ROOT_NAMED, ShmArena
from sipcore.shm.counters import ShmCounters
from sipcore.shm.errors import ShmCorrupt, ShmError
from sipcore.shm.hashtable import ShmHashTable
from sipcore.shm.locks import Lock
from sipcore.shm.segment import Segment

T = TypeVar("T")
ROOT_NAMED_LOCK = 2
_OFF = struct.Struct("=Q")


class ShmContext:
    """Segment + arena + counters + named-object directory of one instance."""

    def __init__(self, segment: Segment, arena: ShmArena) -> None:
        self.segment = segment
        self.arena = arena
        offs = [arena.root(r) for r in (ROOT_COUNTERS, ROOT_NAMED, ROOT_NAMED_LOCK)]
        if not all(offs):
            raise ShmCorrupt(f"{segment.name}: context roots missing")
        self.counters = ShmCounters.attach(arena, offs[0])
        self._dir = ShmHashTable.attach(arena, offs[1])
        self._dir_lock = Lock(arena, offs[2])
        self._named: dict[str, Any] = {}

    @classmethod
    def create(cls, size_mb: float, instance: str | None = None, *, name: str = "main",
               max_procs: int = 64, max_counters: int = 2048) -> ShmContext:
        """Create and format the segment "/pykam.<instance>.<name>" of size_mb MiB (master,
        pre-fork). max_procs: process slots for counters (>= size of the process table).
        The creating process becomes counters slot 0 (the master)."""
        seg = Segment.create(name, int(size_mb * 1024 * 1024), instance)
        try:
            arena = ShmArena.create(seg)
            counters = ShmCounters.create(arena, max_counters, max_procs)
            arena.set_root(ROOT_COUNTERS, counters.offset)
            arena.set_root(ROOT_NAMED, ShmHashTable.create(arena, 64).offset)
            arena.set_root(ROOT_NAMED_LOCK, Lock.create(arena).offset)
            ctx = cls(seg, arena)
            ctx.counters.set_process_slot(0)
        except BaseException:
            seg.unlink()
            seg.close()
            raise
        return ctx

    @classmethod
    def private(cls, size_mb: float = 32) -> ShmContext:
        """A real segment for one process tree that nobody else opens (the in-process harness,
        tools): unlinked at once, so nothing is left in /dev/shm; the mapping lives as long as
        the object."""
        cls._private_seq += 1
        ctx = cls.create(size_mb, f"h{os.getpid()}x{cls._private_seq}", max_procs=8)
        ctx.unlink()
        return ctx

    _private_seq = 0

    @classmethod
    def open(cls, instance: str, name: str = "main") -> ShmContext:
        """Attach to the segment of a running instance (tools, tests). No counters slot."""
        seg = Segment.open(name, instance)
        try:
            return cls(seg, ShmArena.attach(seg))
        except BaseException:
            seg.close()
            raise

    def set_process_slot(self, slot: int) -> None:
        """After fork, in the child: its process-table index (counters row)."""
        self.counters.set_process_slot(slot)

    def named(self, name: str, create: Callable[[ShmArena], T],
              attach: Callable[[ShmArena, int], T] | None = None) -> T:
        """The shm object registered under `name` (see the module docstring)."""
        obj = self._named.get(name)
        if obj is not None:
            return obj
        key = name.encode()
        with self._dir_lock:
            raw = self._dir.get(key)
            if raw is None:
                obj = create(self.arena)
                off = getattr(obj, "offset", None)
                if not isinstance(off, int):
                    raise ShmError(f"named object {name!r}: {type(obj).__name__} has no offset")
                self._dir.set(key, _OFF.pack(off))
            else:
                if attach is None:
                    raise ShmError(f"named object {name!r} was created by another process "
                                   "after fork: pass attach= to use it here")
                obj = attach(self.arena, _OFF.unpack(raw)[0])
        self._named[name] = obj
        return obj

    def named_offsets(self) -> dict[str, int]:
        """name -> offset of every registered object (diagnostics)."""
        return {c.key.decode(): _OFF.unpack(c.value)[0] for c in self._dir.items()}

    def stats(self) -> dict[str, int]:
        """core.shmmem: total, used, real_used, free, max_used, fragments (+ extras)."""
        return self.arena.stats()

    def close(self) -> None:
        """Unmap in this process (children need not: exit unmaps)."""
        self.segment.close()

    def unlink(self) -> None:
        """Remove the segment name (master, on stop)."""
        self.segment.unlink()

    def destroy(self) -> None:
        """Master on stop, after every child is reaped: unlink and unmap."""
        self.unlink()
        self.close()

    def __repr__(self) -> str:
        return f"<ShmContext {self.segment.name}>"
