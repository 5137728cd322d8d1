"""The process table in shared memory (Kamailio pt[]): one slot per process.

Runs in: the master creates it before forking (anonymous MAP_SHARED memory, inherited by every
child, gone when the last process exits); each child writes its own slot after fork; the ctl
process reads all slots for core.psx/core.ps. Also holds the few runtime-changeable core values
(the `debug` level) that every process reads.

Layout: a header (magic, slot count, debug level, cfg generation) then fixed-size slots:
pid i32, rank i32, status i32, restarts i32, started f64, desc 96 bytes. Single-writer per slot
(the child itself, or the master before fork / after reaping), so no lock is needed: readers
may see a slot mid-update, which only affects a listing.
"""
from __future__ import annotations

import mmap
import struct
import time
from dataclasses import dataclass

_HDR = struct.Struct("<8sii q")          # magic, nslots, debug, cfg generation
_SLOT = struct.Struct("<iiiid96s")
MAGIC = b"PYKAMPT1"

STATUS_FREE = 0
STATUS_STARTING = 1
STATUS_READY = 2
STATUS_EXITED = 3


@dataclass(frozen=True)
class ProcEntry:
    idx: int
    pid: int
    rank: int
    status: int
    restarts: int
    started: float
    desc: str


class ProcTable:
    def __init__(self, nslots: int, debug: int = 0) -> None:
        self.nslots = nslots
        size = _HDR.size + nslots * _SLOT.size
        self._mm = mmap.mmap(-1, size, flags=mmap.MAP_SHARED,
                             prot=mmap.PROT_READ | mmap.PROT_WRITE)
        _HDR.pack_into(self._mm, 0, MAGIC, nslots, debug, 0)

    def _off(self, idx: int) -> int:
        if not 0 <= idx < self.nslots:
            raise IndexError(f"process slot {idx} out of range 0..{self.nslots - 1}")
        return _HDR.size + idx * _SLOT.size

    def set(self, idx: int, pid: int, rank: int, desc: str, status: int = STATUS_STARTING,
            restarts: int | None = None) -> None:
        off = self._off(idx)
        if restarts is None:
            restarts = _SLOT.unpack_from(self._mm, off)[3]
        _SLOT.pack_into(self._mm, off, pid, rank, status, restarts, time.time(),
                        desc.encode("utf-8")[:96])

    def set_status(self, idx: int, status: int) -> None:
        struct.pack_into("<i", self._mm, self._off(idx) + 8, status)

    def set_pid(self, idx: int, pid: int) -> None:
        struct.pack_into("<i", self._mm, self._off(idx), pid)

    def add_restart(self, idx: int) -> int:
        off = self._off(idx) + 12
        n = struct.unpack_from("<i", self._mm, off)[0] + 1
        struct.pack_into("<i", self._mm, off, n)
        return n

    def get(self, idx: int) -> ProcEntry:
        pid, rank, status, restarts, started, desc = _SLOT.unpack_from(self._mm, self._off(idx))
        return ProcEntry(idx, pid, rank, status, restarts, started,
                         desc.rstrip(b"\0").decode("utf-8", "replace"))

    def entries(self) -> list[ProcEntry]:
        """Every used slot, in index order (slot 0 is the master)."""
        out = []
        for i in range(self.nslots):
            e = self.get(i)
            if e.status != STATUS_FREE:
                out.append(e)
        return out

    # ---- runtime-changeable core values --------------------------------------------------
    @property
    def debug(self) -> int:
        return _HDR.unpack_from(self._mm, 0)[2]

    @debug.setter
    def debug(self, value: int) -> None:
        struct.pack_into("<i", self._mm, 12, int(value))
        self.bump_generation()

    @property
    def generation(self) -> int:
        return struct.unpack_from("<q", self._mm, 16)[0]

    def bump_generation(self) -> None:
        struct.pack_into("<q", self._mm, 16, self.generation + 1)

    def total_restarts(self) -> int:
        return sum(self.get(i).restarts for i in range(self.nslots))
