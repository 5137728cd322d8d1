"""One POSIX shared-memory segment (posix_ipc.SharedMemory + mmap).

Runs in: the master, which creates the segment before forking (children inherit the mapping
and use it at the same address), and any process that attaches by name (tests, tools).
Shared state: the whole segment; this module only maps it and hands out views and the C base
pointer, it never interprets the bytes.

Naming: "/pykam.<instance>.<name>", visible as /dev/shm/pykam.<instance>.<name>. The master
unlinks it on stop (after every child is reaped); a process may keep using a mapping after
unlink, the memory goes away with the last mapping.
"""
from __future__ import annotations

import logging
import mmap
import os
import re
from typing import Any

import posix_ipc

from sipcore.shm._ffi import ffi
from sipcore.shm.errors import ShmError

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def segment_name(name: str, instance: str | None = None) -> str:
    """The posix_ipc name for segment `name` of PyKam instance `instance` (default: our pid)."""
    inst = instance if instance is not None else str(os.getpid())
    for part in (inst, name):
        if not _NAME_RE.match(part):
            raise ShmError(f"bad shm name part {part!r} (letters, digits, '_', '-')")
    return f"/pykam.{inst}.{name}"


class Segment:
    """A mapped shared-memory segment. `base` is the C pointer the shm library works on."""

    def __init__(self, name: str, mm: mmap.mmap, size: int, owner: bool) -> None:
        self.name = name          # posix_ipc name, "/pykam.<instance>.<name>"
        self.size = size
        self.owner = owner        # created by this process (it unlinks on stop)
        self._mm: mmap.mmap | None = mm
        self.base: Any = ffi.from_buffer("char[]", mm, require_writable=True)
        self._views: list[memoryview] = []

    @classmethod
    def create(cls, name: str, size: int, instance: str | None = None) -> Segment:
        """Create and map a new segment of `size` bytes (zero-filled). Master, pre-fork."""
        full = segment_name(name, instance)
        if size < 4096:
            raise ShmError(f"shm segment size {size} too small")
        size = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        try:
            shm = posix_ipc.SharedMemory(full, posix_ipc.O_CREX, mode=0o600, size=size)
        except posix_ipc.ExistentialError as exc:
            raise ShmError(f"shm segment {full} already exists (another instance, or left "
                           f"by a crashed one: remove /dev/shm{full})") from exc
        try:
            mm = mmap.mmap(shm.fd, size)
        except OSError as exc:
            shm.close_fd()
            posix_ipc.unlink_shared_memory(full)
            raise ShmError(f"cannot map shm segment {full}: {exc}") from exc
        shm.close_fd()
        log.debug("created shm segment %s (%d bytes)", full, size)
        return cls(full, mm, size, owner=True)

    @classmethod
    def open(cls, name: str, instance: str) -> Segment:
        """Map an existing segment (a tool or test attaching to a running instance)."""
        full = segment_name(name, instance)
        try:
            shm = posix_ipc.SharedMemory(full)
        except posix_ipc.ExistentialError as exc:
            raise ShmError(f"shm segment {full} does not exist") from exc
        size = shm.size
        try:
            mm = mmap.mmap(shm.fd, size)
        finally:
            shm.close_fd()
        return cls(full, mm, size, owner=False)

    @property
    def mm(self) -> mmap.mmap:
        if self._mm is None:
            raise ShmError(f"shm segment {self.name} is closed")
        return self._mm

    def view(self, offset: int, length: int, fmt: str = "B") -> memoryview:
        """A memoryview on [offset, offset+length), cast to `fmt`; released by close()."""
        if offset < 0 or offset + length > self.size:
            raise ShmError(f"view [{offset}, {offset + length}) outside {self.name}")
        mv = memoryview(self.mm)[offset:offset + length]
        if fmt != "B":
            mv = mv.cast(fmt)  # type: ignore[call-overload]
        self._views.append(mv)
        return mv

    def unlink(self) -> None:
        """Remove the name (master on stop). Mappings stay valid until closed. Idempotent."""
        try:
            posix_ipc.unlink_shared_memory(self.name)
            log.debug("unlinked shm segment %s", self.name)
        except posix_ipc.ExistentialError:
            pass

    def close(self) -> None:
        """Unmap in this process. Views handed out are released first. Idempotent."""
        if self._mm is None:
            return
        for mv in self._views:
            mv.release()
        self._views.clear()
        ffi.release(self.base)
        try:
            self._mm.close()
        except BufferError:
            # someone still holds a view we did not hand out: the mapping goes with the process
            log.warning("shm segment %s still has exported buffers; not unmapped", self.name)
        self._mm = None

    def __repr__(self) -> str:
        return f"<Segment {self.name} {self.size} bytes{' closed' if self._mm is None else ''}>"
