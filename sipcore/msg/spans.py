"""Offsets into a message buffer: header values and ;parameters found quote-aware, and the
top-Via received/rport edit.

Runs in: any process (pure functions over bytes and SipMsg; no I/O, no shared state). The
functions return offsets into `msg.buf`, so callers edit by span through the message's edit
list (sipcore.msg.lumps) instead of re-serialising text; a quoted string (`"a,b;c"`) never
ends a value or starts a parameter, and a backslash escapes the next byte inside one
(RFC 3261 25.1 quoted-pair).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from sipcore.msg.headers import HdrType

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg.headers import Header
    from sipcore.msg.msg import SipMsg

_WS = b" \t\r\n"
_DQUOTE, _BACKSLASH, _COMMA, _SEMI = 0x22, 0x5C, 0x2C, 0x3B


_T_VIA = int(HdrType.VIA)


def _scan_to(buf: bytes, start: int, end: int, stop: int) -> int:
    """Index of the first byte STOP outside a quoted string in buf[start:end], else END."""
    first = buf.find(bytes((stop,)), start, end)
    if buf.find(b'"', start, end if first < 0 else first) < 0:
        return end if first < 0 else first      # no quote before it: C-speed find
    i, quoted = start, False
    while i < end:
        c = buf[i]
        if quoted and c == _BACKSLASH:
            i += 2
            continue
        if c == _DQUOTE:
            quoted = not quoted
        elif c == stop and not quoted:
            return i
        i += 1
    return end


def _trim(buf: bytes, start: int, end: int) -> tuple[int, int]:
    while start < end and buf[start] in _WS:
        start += 1
    while end > start and buf[end - 1] in _WS:
        end -= 1
    return start, end


def value_spans(buf: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each comma-separated value of a header body buf[start:end], without
    the surrounding whitespace; empty values are skipped."""
    out: list[tuple[int, int]] = []
    i = start
    while i <= end:
        j = _scan_to(buf, i, end, _COMMA)
        s, e = _trim(buf, i, j)
        if e > s:
            out.append((s, e))
        i = j + 1
    return out


def first_value_span(buf: bytes, start: int, end: int) -> tuple[int, int]:
    """(start, end) of the first comma-separated value of buf[start:end], trimmed at its end
    (start stays where the header value starts)."""
    j = _scan_to(buf, start, end, _COMMA)
    while j > start and buf[j - 1] in _WS:
        j -= 1
    return start, j


def param_spans(buf: bytes, start: int, end: int) -> list[tuple[str, int, int]]:
    """(lowercase name, start, end) of each `;name[=value]` in buf[start:end]: from its ';'
    to the end of its value (the next ';' or END), quotes respected."""
    out: list[tuple[str, int, int]] = []
    i = _scan_to(buf, start, end, _SEMI)
    while i < end:
        j = _scan_to(buf, i + 1, end, _SEMI)
        name = buf[i + 1:j].split(b"=", 1)[0].strip().decode("latin-1").lower()
        out.append((name, i, j))
        i = j
    return out


def via1_value_span(msg: "SipMsg") -> Optional[tuple["Header", int, int]]:
    """(header, start, end) of the top Via *value* in msg.buf (ending before a comma and the
    whitespace before it), None when the message has no Via."""
    h = msg.header(_T_VIA)
    if h is None:
        return None
    s, e = first_value_span(msg.buf, h.value_start, h.value_end)
    return h, s, e


def set_via1_received_rport(msg: "SipMsg", received: Optional[str],
                            rport: Optional[int]) -> bool:
    """RFC 3261 18.2.1 / RFC 3581 on the top Via: delete its received (when RECEIVED is given)
    and rport (when RPORT is given) params and append `;received=RECEIVED;rport=RPORT` after
    the others, through the edit list. False when there is no Via."""
    span = via1_value_span(msg)
    if span is None:
        return False
    _h, vstart, vend = span
    for name, s, e in param_spans(msg.buf, vstart, vend):
        if (name == "received" and received is not None) or \
                (name == "rport" and rport is not None):
            msg.delete_range(s, e)
    extra = ""
    if received is not None:
        extra += f";received={received}"
    if rport is not None:
        extra += f";rport={rport}"
    if extra:
        msg.insert_before(vend, extra.encode("ascii"))
    return True


def remove_via1(msg: "SipMsg") -> bool:
    """Delete the top Via through the edit list: its whole header line when it holds one
    value, else the value and the comma after it. False when there is no Via."""
    span = via1_value_span(msg)
    if span is None:
        return False
    h, vstart, vend = span
    buf = msg.buf
    if buf[vend:h.value_end].strip() == b"":
        msg.remove_header(h)
        return True
    i = vend
    while i < h.value_end and buf[i] in _WS:
        i += 1
    if i < h.value_end and buf[i] == _COMMA:        # the comma after the value
        i += 1
    while i < h.value_end and buf[i] in _WS:
        i += 1
    msg.delete_range(vstart, i)
    return True
