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
_DQUOTE, _BACKSLASH, _COMMA, _SEMI, _LT, _GT = 0x22, 0x5C, 0x2C, 0x3B, 0x3C, 0x3E
_BYTE = [bytes((b,)) for b in range(256)]


_T_VIA = int(HdrType.VIA)


def _scan_to(buf: bytes, start: int, end: int, stop: int, angle: bool = False) -> int:
    """Index of the first byte STOP outside a quoted string in buf[start:end], else END;
    with ANGLE, also outside <...> (a name-addr's URI may hold ',' and ';')."""
    first = buf.find(_BYTE[stop], start, end)
    lim = end if first < 0 else first
    if buf.find(b'"', start, lim) < 0 and (not angle or buf.find(b"<", start, lim) < 0):
        return lim                              # nothing to skip before it: C-speed find
    i, quoted, depth = start, False, 0
    while i < end:
        c = buf[i]
        if quoted:
            if c == _BACKSLASH:
                i += 1
            elif c == _DQUOTE:
                quoted = False
        elif c == _DQUOTE:
            quoted = True
        elif angle and c == _LT:
            depth += 1
        elif angle and c == _GT:
            depth = max(0, depth - 1)
        elif c == stop and depth == 0:
            return i
        i += 1
    return end


def find_unquoted(buf: bytes, start: int, end: int, byte: bytes) -> int:
    """Index of the first BYTE (one byte) outside a quoted string in buf[start:end], -1 when
    there is none: where a name-addr's '<' is when its display name may hold one."""
    i = _scan_to(buf, start, end, byte[0])
    return i if i < end else -1


def _trim(buf: bytes, start: int, end: int) -> tuple[int, int]:
    while start < end and buf[start] in _WS:
        start += 1
    while end > start and buf[end - 1] in _WS:
        end -= 1
    return start, end


def value_spans(buf: bytes, start: int, end: int,
                angle: bool = False) -> list[tuple[int, int]]:
    """(start, end) of each comma-separated value of a header body buf[start:end], without
    the surrounding whitespace; empty values are skipped. ANGLE: the values are name-addrs,
    whose <URI> may hold commas (Contact, Route, Record-Route...)."""
    out: list[tuple[int, int]] = []
    i = start
    while i <= end:
        j = _scan_to(buf, i, end, _COMMA, angle)
        s, e = _trim(buf, i, j)
        if e > s:
            out.append((s, e))
        i = j + 1
    return out


def first_value_span(buf: bytes, start: int, end: int,
                     angle: bool = False) -> tuple[int, int]:
    """(start, end) of the first comma-separated value of buf[start:end], trimmed at its end
    (start stays where the header value starts); ANGLE as in value_spans."""
    j = _scan_to(buf, start, end, _COMMA, angle)
    while j > start and buf[j - 1] in _WS:
        j -= 1
    return start, j


def param_spans(buf: bytes, start: int, end: int,
                angle: bool = False) -> list[tuple[str, int, int]]:
    """(lowercase name, start, end) of each `;name[=value]` in buf[start:end]: from its ';'
    to the end of its value (the next ';' or END), quotes respected; with ANGLE, the ';'s
    inside a <URI> are the URI's, not the value's."""
    out: list[tuple[str, int, int]] = []
    i = _scan_to(buf, start, end, _SEMI, angle)
    while i < end:
        j = _scan_to(buf, i + 1, end, _SEMI, angle)
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
