"""Shared memory and locks (the Python side of the C library built by cffi_build/build_shm.py).

Runs in: every process. The master creates one ShmContext before forking (ShmContext.create
with the -m size); children inherit it and call ctx.set_process_slot(i). Shared state: the
posix_ipc segment "/pykam.<instance>.<name>" and everything allocated in it.

Public names:
  Segment         posix_ipc segment + mmap (create/open/unlink/close)
  ShmArena        allocator: alloc(n) -> offset, free(offset), stats() (core.shmmem shape)
  Lock, LockSet   robust process-shared mutexes as context managers (lock order in locks.py)
  ShmHashTable    generic byte-cell hash table with per-bucket locks and expiry
  ShmCounters     statistics counters with per-process rows
  ShmRing         multi-producer, single-consumer queue of byte records (the timer queue)
  ShmContext      segment + arena + counters + named(name, create, attach) directory
  ShmError, ShmOutOfMemory, ShmCorrupt, LockError
"""
from __future__ import annotations

from sipcore.shm.alloc import ShmArena
from sipcore.shm.context import ShmContext
from sipcore.shm.counters import ShmCounters
from sipcore.shm.errors import LockError, ShmCorrupt, ShmError, ShmOutOfMemory
from sipcore.shm.hashtable import Cell, ShmHashTable
from sipcore.shm.locks import LOCK_ORDER, Lock, LockSet
from sipcore.shm.ring import ShmRing
from sipcore.shm.segment import Segment

__all__ = [
           "LOCK_ORDER",
           "Cell",
           "Lock",
           "LockError",
           "LockSet",
           "Segment",
           "ShmArena",
           "ShmContext",
           "ShmCorrupt",
           "ShmCounters",
           "ShmError",
           "ShmHashTable",
           "ShmOutOfMemory",
           "ShmRing",
]
