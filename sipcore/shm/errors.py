"""Exceptions of the shared-memory layer.

Runs in: every process (raised by sipcore.shm.* when a C call fails). Touches no shared state.
ShmOutOfMemory is the one a caller is expected to handle on the message path (reply 500, log,
count); the others mean misuse or a damaged segment.
"""
from __future__ import annotations

from sipcore.errors import PykamError


class ShmError(PykamError):
    """A shared-memory operation failed (bad argument, damaged structure, pthread error)."""


class ShmOutOfMemory(ShmError):
    """The segment has no free block large enough (size it with -m): a handled error."""


class ShmCorrupt(ShmError):
    """A structure in the segment failed its consistency check (bad magic, broken heap)."""


class LockError(ShmError):
    """A lock operation failed: releasing a lock this process does not hold, or a timeout."""
