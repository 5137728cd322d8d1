"""Builders: replies from requests, forwarded requests, stateless branches and to-tags.

Runs in: SIP workers (sl_send_reply, t_reply, forward, t_relay), the timer process (local
replies/CANCELs it builds on timeout), tests. Touches no shared state.
Header lines from the request are copied byte for byte (never re-serialized); only the lines we
add are rendered here.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable

from sipcore.errors import ParseError

from sipcore.msg import scandefs as sd
from sipcore.msg.headers import HdrType
from sipcore.msg.lumps import (
    BAND_EXTRA_HEADERS, BAND_MAXFWD_ADDED, BAND_OUR_VIA, BAND_REPLACE_FIRST, Edit, make_edit,
)
from sipcore.msg.msg import METHOD_INVITE, METHOD_REFER, METHOD_SUBSCRIBE, SipMsg
from sipcore.msg.params import read_quoted

DEFAULT_SERVER_HEADER = "Server: pykam"
# RFC 3261 12.1.1 (INVITE), RFC 6665 4.1.2.2 (SUBSCRIBE), RFC 3515 (REFER: implicit subscription)
_DIALOG_CREATING = METHOD_INVITE | METHOD_SUBSCRIBE | METHOD_REFER
_CRLF = b"\r\n"


def _text_line(text: str) -> bytes:
    b = text.encode("utf-8", "surrogateescape").rstrip(b"\r\n")
    if b":" not in b or b"\n" in b or b"\r" in b:
        raise ValueError(f"not a single header line: {text!r}")
    return b + _CRLF


def gen_to_tag(msg: SipMsg) -> str:
    """Stateless to-tag: a hash of From-tag, Call-ID, CSeq number and top Via branch.

    Stable for retransmissions of the same request (same inputs), different per request.
    """
    return msg.hash_key()


def make_branch(msg: SipMsg) -> str:
    """Stateless branch for forwarding (RFC 3261 16.11): derived from the request so that a
    retransmission, and the CANCEL of the request (same top branch, same CSeq number), get the
    same branch. Starts with the magic cookie "z9hG4bK"."""
    h = hashlib.md5(("sl\x00" + msg.hash_text() + "\x00" + msg.orig_ruri).encode(
        "utf-8", "surrogateescape")).hexdigest()
    return "z9hG4bK" + h[:24] + ".0"


# a valueless rport parameter in the first via-parm (RFC 3581 "rport" without "=port")
_RPORT_EMPTY_RE = re.compile(r";[ \t]*rport(?=[ \t]*(?:;|,|$))", re.I)


def _first_via_parm_end(value: str) -> int:
    """End of the first via-parm in a Via value (first comma outside quotes)."""
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == '"':
            try:
                i = read_quoted(value, i)
            except ParseError:
                return n
            continue
        if c == ",":
            return i
        i += 1
    return n


def via_with_received(value: str, received: str | None, rport: int | None) -> str:
    """The Via value with `received=` / `rport=` set on its first via-parm (RFC 3261 18.2.1,
    RFC 3581 4): a valueless rport gets the port, else rport=port is appended."""
    end = _first_via_parm_end(value)
    seg, rest = value[:end].rstrip(" \t"), value[end:]
    if rport is not None:
        m = _RPORT_EMPTY_RE.search(seg)
        if m is not None:
            seg = seg[: m.end()] + f"={rport}" + seg[m.end() :]
        else:
            seg += f";rport={rport}"
    if received is not None:
        seg += f";received={received}"
    return seg + rest


_FIXED = sd.FIXED
_STRIDE = sd.HDR_STRIDE
_H_START, _H_VALUE_END, _H_END = sd.H_NS, sd.H_VE, sd.H_END
_T_VIA, _T_TO, _T_RR = int(HdrType.VIA), int(HdrType.TO), int(HdrType.RECORDROUTE)

_T_MAXFWD = int(HdrType.MAXFORWARDS)
_REPLY_COPIED = frozenset(int(t) for t in (HdrType.VIA, HdrType.FROM, HdrType.TO,
                                            HdrType.CALLID, HdrType.CSEQ,
                                            HdrType.RECORDROUTE))


def build_reply(req: SipMsg, code: int, reason: str, *, to_tag: str | None = None,
                extra_headers: Iterable[str] = (), body: bytes = b"",
                content_type: str | None = None,
                server_header: str | None = DEFAULT_SERVER_HEADER,
                via_received: str | None = None, via_rport: int | None = None) -> bytes:
    """Build a reply to `req` (RFC 3261 8.2.6): Via stack, From, To (+tag), Call-ID, CSeq
    copied from the request as received; Record-Route copied for 101-299 replies to
    dialog-creating requests (RFC 3261 12.1.1); extra headers; Content-Length.
    via_received / via_rport: the transport's source address, added to the top Via value as
    received= / rport= (RFC 3261 18.2.1, RFC 3581); the caller decides when they apply."""
    if not req.is_request:
        raise ValueError("build_reply needs a request")
    if not 100 <= code <= 699:
        raise ValueError(f"bad status code {code}")
    if any(c in reason for c in "\r\n"):
        raise ValueError("reason phrase with CR/LF")
    buf = req.buf
    out = [b"SIP/2.0 %d " % code + reason.encode("utf-8") + _CRLF]
    copy_rr = 100 < code < 300 and bool(req.method_id & _DIALOG_CREATING)
    first_via = via_received is not None or via_rport is not None
    tag_to = code > 100 and req.to_tag is None
    # header lines are sliced from the scan list's spans (start, value end, end): only the
    # first Via, when it gets received/rport, needs its Header object
    sc = req._sc  # noqa: SLF001 - builder is part of the message layer
    b = _FIXED - _STRIDE
    for i, t in enumerate(req._types):  # noqa: SLF001
        b += _STRIDE
        if t not in _REPLY_COPIED or (t == _T_RR and not copy_rr):
            continue
        if t == _T_VIA and first_via:
            first_via = False
            h = req._hdr(i)  # noqa: SLF001
            value = via_with_received(h.value, via_received, via_rport)
            out.append(buf[h.start : h.value_start] + value.encode("utf-8", "surrogateescape")
                       + buf[h.value_end : h.end])
        elif t == _T_TO and tag_to:
            tag = to_tag if to_tag is not None else gen_to_tag(req)
            ve = sc[b + _H_VALUE_END]
            out.append(buf[sc[b + _H_START] : ve] + b";tag=" + tag.encode()
                       + buf[ve : sc[b + _H_END]])
        else:
            out.append(buf[sc[b + _H_START] : sc[b + _H_END]])
    for line in extra_headers:
        out.append(_text_line(line))
    if server_header:
        out.append(_text_line(server_header))
    if content_type is not None:
        out.append(_text_line("Content-Type: " + content_type))
    out.append(b"Content-Length: %d\r\n\r\n" % len(body))
    out.append(body)
    return b"".join(out)


def _via_line(via: str) -> str:
    """VIA as a whole header line: a Via value gets "Via: ", a whole line stays as it is."""
    return via if via.split(":", 1)[0].strip().lower() in ("via", "v") and ":" in via \
        else "Via: " + via


def build_request(msg: SipMsg, *, via: str | None, extra_headers: Iterable[str] = (),
                  decrement_max_forwards: bool = False) -> bytes:
    """The request with its edits applied and `via` (a Via value, or a whole "Via: ..." line)
    prepended as the first header; extra_headers appended after the last header.
    decrement_max_forwards: rewrite Max-Forwards to value-1 (or add "Max-Forwards: 70" when
    absent, RFC 3261 16.6 step 3) - the caller checks for 0 before forwarding."""
    if not msg.is_request:
        raise ValueError("build_request needs a request")
    sc = msg._sc  # noqa: SLF001 - builder is part of the message layer
    if via is not None and not extra_headers and not decrement_max_forwards:
        built = msg.prebuilt()
        if built is not None:
            # the message is built already (t_relay's copy): our Via goes in after its
            # first line, which is where the edit list would put it
            i = built.index(b"\n") + 1
            return built[:i] + _text_line(_via_line(via)) + built[i:]
    extra: list[Edit] = []
    fl_end = sc[sd.S_FL_END]
    hdr_end = sc[sd.S_HDR_END]
    if via is not None:
        extra.append(make_edit(fl_end, BAND_OUR_VIA, 0, fl_end, _text_line(_via_line(via))))
    for i, line in enumerate(extra_headers):
        extra.append(make_edit(hdr_end, BAND_EXTRA_HEADERS, i, hdr_end, _text_line(line)))
    if decrement_max_forwards:
        mf = msg.header(_T_MAXFWD)
        if mf is None:
            extra.append(make_edit(hdr_end, BAND_MAXFWD_ADDED, 0, hdr_end,
                                   b"Max-Forwards: 70\r\n"))
        else:
            value = msg.max_forwards or 0
            extra.append(make_edit(mf.value_start, BAND_REPLACE_FIRST, 0, mf.value_end,
                                   b"%d" % max(value - 1, 0)))
    return msg.build(extra)
