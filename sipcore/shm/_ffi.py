"""The only importer of the sipcore._cshm cffi extension (the C shared-memory library).

Runs in: every process that touches shm (master pre-fork, workers, timer, ctl). Touches no
shared state by itself: it re-exports `ffi`/`lib` to the sipcore.shm modules and turns C return
codes into exceptions with `check()`. cdata never leaves the sipcore.shm package.
"""
from __future__ import annotations

try:
    from sipcore._cshm import ffi, lib  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "sipcore._cshm is not built: run `python3 cffi_build/build_shm.py` (development) or "
        "install the package (setup.py builds it)") from exc

from sipcore.shm.errors import LockError, ShmCorrupt, ShmError, ShmOutOfMemory

__all__ = ["RECOVERED", "check", "ffi", "lib"]

RECOVERED: int = lib.SHM_RECOVERED

_ERRORS: dict[int, tuple[type[ShmError], str]] = {
    lib.SHM_E_NOMEM: (ShmOutOfMemory, "out of shared memory"),
    lib.SHM_E_NOTFOUND: (ShmError, "not found"),
    lib.SHM_E_EXISTS: (ShmError, "already exists"),
    lib.SHM_E_TOOSMALL: (ShmError, "buffer too small"),
    lib.SHM_E_BADVALUE: (ShmError, "value is not an 8-byte integer"),
    lib.SHM_E_CORRUPT: (ShmCorrupt, "corrupt shared-memory structure"),
    lib.SHM_E_LOCK: (LockError, "lock operation failed (not the owner, or unrecoverable)"),
    lib.SHM_E_INVAL: (ShmError, "invalid argument"),
    lib.SHM_E_FULL: (ShmError, "directory full"),
    lib.SHM_E_BUSY: (LockError, "lock busy"),
}


def error(rc: int, what: str) -> ShmError:
    """The exception for a negative return code `rc` of the C call described by `what`."""
    cls, text = _ERRORS.get(rc, (ShmError, f"error {rc}"))
    return cls(f"{what}: {text}")


def check(rc: int, what: str) -> int:
    """Return rc if it is a success code (>= 0), else raise the matching ShmError."""
    if rc < 0:
        raise error(rc, what)
    return rc
