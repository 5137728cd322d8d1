"""parse_msg: the facade over the two scanners (C when built, else pure Python).

Runs in: every process that receives or replays SIP (workers, tests, tools). Touches no shared
state. Which scanner runs is decided once at import: sipcore.msg._cparse when the
sipcore._csipparse extension is built, else sipcore.msg.pyparser. Both return the same scan list
(sipcore.msg.scandefs) or the same error (code, offset); tests hold them to it.
"""
from __future__ import annotations

import importlib.util
from typing import Callable

from sipcore.errors import ParseError
from sipcore.msg import scandefs as sd
from sipcore.msg import pyparser
from sipcore.msg.msg import SipMsg
from sipcore.msg.pyparser import ScanError

Scanner = Callable[[bytes], list[int]]

# a missing extension is normal (pure-Python install); a built but broken one must fail loudly
if importlib.util.find_spec("sipcore._csipparse") is not None:
    from sipcore.msg import _cparse

    c_scan: Scanner | None = _cparse.scan
else:
    c_scan = None

py_scan: Scanner = pyparser.scan
SCANNER = "c" if c_scan is not None else "py"
_default_scan: Scanner = c_scan if c_scan is not None else py_scan
_S_FL_START = sd.S_FL_START
_S_MSG_END = sd.S_MSG_END


def scan_error(e: ScanError) -> ParseError:
    name, reason, status = sd.ERRORS[-e.code - 1]
    return ParseError(reason, e.offset, status)


def parse_msg(buf: bytes, *, scanner: str | None = None) -> SipMsg:
    """Parse one SIP message. scanner: None (best available), "c" or "py" (tests, benchmarks).

    Leading CRLFs and trailing bytes beyond Content-Length are cut, so msg.buf is exactly the
    message. Raises ParseError(reason, offset, status_hint).
    """
    if scanner is None:
        fn, name = _default_scan, SCANNER
    elif scanner == "py":
        fn, name = py_scan, "py"
    elif scanner == "c":
        if c_scan is None:
            raise RuntimeError("C scanner not built (python3 cffi_build/build_sipparse.py)")
        fn, name = c_scan, "c"
    else:
        raise ValueError(f"unknown scanner {scanner!r}")
    if type(buf) is not bytes:
        buf = bytes(buf)
    try:
        sc = fn(buf)
        if sc[_S_FL_START] or sc[_S_MSG_END] != len(buf):
            buf = buf[sc[_S_FL_START] : sc[_S_MSG_END]]
            sc = fn(buf)
    except ScanError as e:
        raise scan_error(e) from None
    return SipMsg(buf, sc, name)
