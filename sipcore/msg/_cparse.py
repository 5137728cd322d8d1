"""The only importer of the sipcore._csipparse cffi extension (the C scanner).

Runs in: every process that parses SIP when the extension is built (imported by
sipcore.msg.parser). Touches no shared state. Hazard: cdata never leaves this module; callers
get a list of ints (layout in sipcore.msg.scandefs) or a ScanError with the same code and
offset the Python scanner would give.

At import the compiled constants (limits, layout, error codes, header ids) are checked against
the Python definitions: a stale build raises ImportError with a rebuild hint instead of
silently mis-indexing messages.
"""
from __future__ import annotations

from array import array

from sipcore._csipparse import ffi, lib  # type: ignore[import-not-found]
from sipcore.msg import limits
from sipcore.msg import scandefs as sd
from sipcore.msg.hdrdefs import HDR_TABLE
from sipcore.msg.pyparser import ScanError


def _check_build() -> None:
    expect: dict[str, int] = {}
    for name in dir(limits):
        if name.startswith("MAX_"):
            expect["SP_" + name] = getattr(limits, name)
    for name in ("FIXED", "HDR_STRIDE", "HOT_FIRST", "KIND_REQUEST", "KIND_REPLY"):
        expect["SP_" + name] = getattr(sd, name)
    for name in dir(sd):
        if name[:2] in ("S_", "H_"):
            expect["SP_" + name] = getattr(sd, name)
    for i, (ename, _r, _s) in enumerate(sd.ERRORS):
        expect["SP_E_" + ename] = -(i + 1)
    for i, entry in enumerate(HDR_TABLE):
        expect["SP_HDR_" + entry[0]] = i
    bad = [k for k, v in expect.items() if getattr(lib, k, None) != v]
    if bad:
        raise ImportError(
            f"sipcore._csipparse is stale ({', '.join(sorted(bad)[:5])} differ): "
            "rebuild with `python3 cffi_build/build_sipparse.py` or `pip install -e .`"
        )


_check_build()

_OUT_INTS: int = lib.SP_OUT_INTS
_FIXED = sd.FIXED
_STRIDE = sd.HDR_STRIDE
_scan = lib.sp_scan
# Reusable output buffers: an array.array the C code writes into through ffi.from_buffer, so
# the result is copied out with one array slice (a memcpy) instead of boxing every int.
# A worker scans one message at a time, so the pool holds one entry; list.pop/append are
# atomic under the GIL, so concurrent threads (tests, tools) each get their own buffer.
_pool: list[tuple[array, object, object]] = []


def _new_buffers() -> tuple[array, object, object]:
    arr = array("i", bytes(4 * _OUT_INTS))
    if arr.itemsize != 4:  # pragma: no cover - every supported platform has 32-bit int
        raise ImportError("array('i') is not 32-bit on this platform")
    return arr, ffi.from_buffer("int32_t[]", arr), ffi.new("int32_t *")


_pop = _pool.pop
_push = _pool.append


def scan(buf: bytes) -> "array[int]":
    """C twin of sipcore.msg.pyparser.scan: the same ints (as an array('i')), same ScanError."""
    try:
        entry = _pop()
    except IndexError:
        entry = _new_buffers()
    arr, out, err = entry
    # (if sp_scan raised - only for a non-bytes argument - the entry is simply not reused)
    nh = _scan(buf, len(buf), out, err)
    if nh < 0:
        off = err[0]
        _push(entry)
        raise ScanError(nh, off)
    res = arr[: _FIXED + _STRIDE * nh]
    _push(entry)
    return res


def hdr_type(name: bytes) -> int:
    """Header type id of a name, from the C lookup table (tests compare it with hdrdefs)."""
    return int(lib.sp_hdr_type(name, len(name)))
