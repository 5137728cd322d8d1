"""cfgutils state (probability, global flags, lock set) and Kamailio's core_hash.

Runs in: every process. Process-local for now: the runtime issue replaces the storage with shm
slots and a robust-mutex lock set behind these same methods (callers do not change). Until
then a lock taken in one process is not seen by another.
"""
from __future__ import annotations

import os
from typing import Optional

_M32 = 0xFFFFFFFF


class CfgutilsState:
    """Probability, gflags and lock slots of the cfgutils module."""

    def __init__(self) -> None:
        self._prob = 10
        self._gflags = 0
        self._lock_size = 0
        self._held: dict[int, int] = {}     # slot -> pid holding it

    def init(self, probability: int, gflags: int, lock_set_size: int) -> None:
        self._prob = probability
        self._gflags = gflags & _M32
        self._lock_size = lock_set_size
        self._held.clear()

    # probability
    def probability(self) -> int:
        return self._prob

    def set_probability(self, p: int) -> None:
        self._prob = p

    # global flags
    def gflags(self) -> int:
        return self._gflags

    def gflags_or(self, mask: int) -> None:
        self._gflags = (self._gflags | mask) & _M32

    def gflags_and_not(self, mask: int) -> None:
        self._gflags &= ~mask & _M32

    # lock set
    def lock_set_size(self) -> int:
        return self._lock_size

    def lock(self, slot: int) -> bool:
        """Take SLOT; False if this process already holds it (Kamailio would deadlock)."""
        if slot in self._held:
            return False
        self._held[slot] = os.getpid()
        return True

    def trylock(self, slot: int) -> bool:
        return self.lock(slot)

    def unlock(self, slot: int) -> bool:
        return self._held.pop(slot, None) is not None


STATE = CfgutilsState()


def _signed(b: int) -> int:
    """C `char` on x86 is signed: bytes >= 0x80 sign-extend in core_hash's shifts."""
    return b - 256 if b >= 128 else b


def _hash_str(h: int, data: bytes, icase: bool) -> int:
    n = len(data)
    i = 0
    while i + 4 <= n:
        b = data[i:i + 4]
        v = ((_signed(b[0]) << 24) + (_signed(b[1]) << 16) + (_signed(b[2]) << 8)
             + _signed(b[3])) & _M32
        if icase:
            v |= 0x20202020
        h = (h + (v ^ (v >> 3))) & _M32
        i += 4
    v = 0
    while i < n:
        c = _signed(data[i]) | (0x20 if icase else 0)
        v = ((v << 8) + c) & _M32
        i += 1
    return (h + (v ^ (v >> 3))) & _M32


def _finish(h: int, size: int) -> int:
    h = ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & _M32
    return h & (size - 1) if size else h


def core_hash(s1: str, s2: Optional[str], size: int) -> int:
    """Kamailio core_hash() (src/core/hashes.h): SIZE must be a power of 2 (0: full value)."""
    h = _hash_str(0, s1.encode("utf-8"), False)
    if s2:
        h = _hash_str(h, s2.encode("utf-8"), False)
    return _finish(h, size)


def core_case_hash(s1: str, s2: Optional[str], size: int) -> int:
    """Case-insensitive variant (core_case_hash), used to pick lock slots."""
    h = _hash_str(0, s1.encode("utf-8"), True)
    if s2:
        h = _hash_str(h, s2.encode("utf-8"), True)
    return _finish(h, size)
