"""Pure-Python reference scanner: first line, header boundaries, type ids, body offset.

Runs in: SIP workers when the C scanner (sipcore._csipparse) is not built, and in tests, which
hold the C scanner to produce exactly the same scan list (layout in sipcore.msg.scandefs).
Touches no shared state. Sans-I/O: bytes in, list of ints out, ScanError on defects.

Rules (mirrored line by line in cffi_build/csrc/sipparse.c):
* leading CR/LF before the start line are skipped (RFC 3261 7.5);
* lines end with LF, an optional CR before it is part of the terminator;
* request line: token SP uri SP "SIP/2.0" with exactly one SP between the parts (RFC 4475
  3.1.2.9/3.1.2.10); reply line: "SIP/2.0" SP 3DIGIT [SP reason]; version case-insensitive;
  another "SIP/x" version -> BAD_VERSION (505);
* header line: token *(SP/HT) ":" value; lines starting with SP/HT continue the previous header
  (folding); the header block ends with an empty line;
* Content-Length: digits only, every copy equal; the message ends at body + Content-Length and
  trailing bytes are dropped; a shorter body is an error; without it the body is the rest.
"""
from __future__ import annotations

import re

from sipcore.msg import scandefs as sd
from sipcore.msg.hdrdefs import name_map
from sipcore.msg.limits import MAX_CL_DIGITS, MAX_HEADERS, MAX_MSG_SIZE

_NAME_TYPE = name_map()
_NAME_TYPE_B = {k.encode("ascii"): v for k, v in _NAME_TYPE.items()}
_CL_TYPE = _NAME_TYPE["content-length"]
_ERR_CODE = {name: -(i + 1) for i, (name, _r, _s) in enumerate(sd.ERRORS)}

# RFC 3261 25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN = re.compile(rb"[A-Za-z0-9\-.!%*_+`'~]+")
# header-name HCOLON: token *(SP/HT) ":"
_NAME_COLON = re.compile(rb"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:")
# a whole unfolded header line: name, value (trailing SP/HT stripped by the caller), CRLF or LF
_SIMPLE_LINE = re.compile(rb"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:[ \t]*([^\r\n]*)\r?\n(?![ \t])")
# bytes not allowed anywhere in the first line (CTL except HT; HT is refused too in the line)
_FL_BAD = re.compile(rb"[\x00-\x1f\x7f]")
_LWS_CHARS = b" \t\r\n"
_NO_HOT = [-1] * (sd.FIXED - sd.HOT_FIRST)


class ScanError(Exception):
    """Scanner failure: error code (negative, index into scandefs.ERRORS) and byte offset."""

    def __init__(self, code: int, offset: int) -> None:
        super().__init__(code, offset)
        self.code = code
        self.offset = offset


def _fail(name: str, offset: int) -> ScanError:
    return ScanError(_ERR_CODE[name], offset)


def scan(buf: bytes) -> list[int]:
    """Scan one SIP message; return the flat scan list (see scandefs) or raise ScanError."""
    n = len(buf)
    if n > MAX_MSG_SIZE:
        raise _fail("TOO_BIG", MAX_MSG_SIZE)
    p = 0
    while p < n and buf[p] in (13, 10):
        p += 1
    if p >= n:
        raise _fail("EMPTY", p)
    fl_start = p
    lf = buf.find(b"\n", p)
    if lf < 0:
        raise _fail("NO_FIRST_LINE_END", n)
    le = lf - 1 if buf[lf - 1] == 13 else lf
    bad = _FL_BAD.search(buf, p, le)
    if bad is not None:
        raise _fail("BAD_CHAR", bad.start())
    out = [0] * sd.FIXED
    out[sd.S_FL_START] = fl_start
    if buf[p : p + 4].upper() == b"SIP/":
        # reply: SIP-Version SP Status-Code [SP Reason-Phrase]
        out[sd.S_KIND] = sd.KIND_REPLY
        if le - p < 8 or buf[p : p + 8].upper() != b"SIP/2.0 ":
            raise _fail("BAD_VERSION", p)
        out[sd.S_M_S] = out[sd.S_M_E] = p
        out[sd.S_U_S] = out[sd.S_U_E] = p
        out[sd.S_V_S] = p
        out[sd.S_V_E] = p + 7
        q = p + 8
        code = buf[q : q + 3]
        if len(code) != 3 or not code.isdigit() or code[0] < 0x31 or code[0] > 0x36:
            raise _fail("BAD_STATUS", q)
        q += 3
        if q < le and buf[q] != 0x20:
            raise _fail("BAD_STATUS", q)
        out[sd.S_STATUS] = int(code)
        rs = q + 1 if q < le else q
        out[sd.S_R_S] = rs
        out[sd.S_R_E] = le
    else:
        out[sd.S_KIND] = sd.KIND_REQUEST
        m = _TOKEN.match(buf, p, le)
        if m is None or m.end() >= le or buf[m.end()] != 0x20:
            raise _fail("BAD_METHOD", p if m is None else m.end())
        out[sd.S_M_S] = p
        out[sd.S_M_E] = q = m.end()
        us = q + 1
        ue = buf.find(b" ", us, le)
        if ue <= us:
            raise _fail("BAD_RURI", us)
        out[sd.S_U_S] = us
        out[sd.S_U_E] = ue
        vs = ue + 1
        ver = buf[vs:le].upper()
        if ver != b"SIP/2.0":
            if ver.startswith(b"SIP/") and b" " not in ver:
                raise _fail("BAD_VERSION", vs)
            raise _fail("BAD_FIRST_LINE", vs)
        out[sd.S_V_S] = vs
        out[sd.S_V_E] = le
        out[sd.S_R_S] = out[sd.S_R_E] = le
    out[sd.S_FL_END] = p = lf + 1

    hv: list[int] = []
    nh = 0
    clen = -1
    cl_off = 0
    while True:
        if p >= n:
            raise _fail("NO_HDR_END", n)
        c = buf[p]
        if c == 10:
            hdr_end, body = p, p + 1
            break
        if c == 13:
            if p + 1 < n and buf[p + 1] == 10:
                hdr_end, body = p, p + 2
                break
            raise _fail("BAD_EOL", p)
        if c == 32 or c == 9:
            raise _fail("BAD_HDR_LINE", p)
        m = _SIMPLE_LINE.match(buf, p)
        val = m.group(2).rstrip(b" \t") if m is not None else b""
        if val:
            # common case: one physical line, non-empty value, no bare CR (same result as below)
            if nh >= MAX_HEADERS:
                raise _fail("TOO_MANY_HDRS", p)
            vs = m.start(2)  # type: ignore[union-attr]
            ve = vs + len(val)
            htype = _NAME_TYPE_B.get(m.group(1).lower(), 0)  # type: ignore[union-attr]
            if htype == _CL_TYPE:
                if not val.isdigit() or len(val.lstrip(b"0")) > MAX_CL_DIGITS:
                    raise _fail("BAD_CL", vs)
                cl = int(val)
                if clen >= 0 and cl != clen:
                    raise _fail("MULTI_CL", p)
                clen, cl_off = cl, vs
            end = m.end()  # type: ignore[union-attr]
            hv += (htype, 0, p, m.end(1), vs, ve, end)  # type: ignore[union-attr]
            nh += 1
            p = end
            continue
        m = _NAME_COLON.match(buf, p)
        if m is None:
            m = _TOKEN.match(buf, p)
            if m is None:
                raise _fail("BAD_HDR_NAME", p)
            q = m.end()
            while q < n and buf[q] in (32, 9):
                q += 1
            raise _fail("BAD_HDR_NAME", q)
        ne = m.end(1)
        q = m.end()
        lf = buf.find(b"\n", q)
        while lf >= 0 and lf + 1 < n and buf[lf + 1] in (32, 9):
            lf = buf.find(b"\n", lf + 1)
        if lf < 0:
            raise _fail("NO_HDR_END", n)
        # value span: [q, lf) without LWS at either end (bytes methods, no Python loops)
        val = buf[q:lf].lstrip(_LWS_CHARS)
        vs = lf - len(val)
        val = val.rstrip(_LWS_CHARS)
        ve = vs + len(val)
        if nh >= MAX_HEADERS:
            raise _fail("TOO_MANY_HDRS", p)
        htype = _NAME_TYPE_B.get(m.group(1).lower(), 0)
        folded = 1 if b"\n" in val else 0
        if htype == _CL_TYPE:
            if not val or not val.isdigit() or len(val.lstrip(b"0")) > MAX_CL_DIGITS:
                raise _fail("BAD_CL", vs)
            cl = int(val)
            if clen >= 0 and cl != clen:
                raise _fail("MULTI_CL", p)
            clen, cl_off = cl, vs
        hv += (htype, folded, p, ne, vs, ve, lf + 1)
        nh += 1
        p = lf + 1

    if clen >= 0:
        if n - body < clen:
            raise _fail("SHORT_BODY", cl_off)
        msg_end = body + clen
    else:
        msg_end = n
    out[sd.S_HDR_END] = hdr_end
    out[sd.S_BODY] = body
    out[sd.S_MSG_END] = msg_end
    out[sd.S_CLEN] = clen
    out[sd.S_NHDRS] = nh
    out[sd.HOT_FIRST : sd.FIXED] = _NO_HOT
    out += hv
    return out

