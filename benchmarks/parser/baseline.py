"""Pure-Python regex baseline for benchmarks/parser/run.py: extracts the same fields as the
C path (From/To tags, Call-ID, CSeq, top Via branch, Contact URI) the way a straightforward
regex-based SIP parser would: unfold, split the header block, map compact names, regex the values.

Runs in: the benchmark only. Touches no shared state.
"""
from __future__ import annotations

import re

_FOLD = re.compile(rb"\r?\n[ \t]+")
_HDR = re.compile(rb"^([!-9;-~]+)[ \t]*:[ \t]*(.*?)[ \t]*\r?$", re.M)
_FIRST = re.compile(rb"^(?:([A-Za-z]+) (\S+) SIP/2\.0|SIP/2\.0 ([1-6][0-9][0-9]) (.*?))\r?$")
_TAG = re.compile(rb";[ \t]*tag[ \t]*=[ \t]*([^;,\s>]+)", re.I)
_BRANCH = re.compile(rb";[ \t]*branch[ \t]*=[ \t]*([^;,\s]+)", re.I)
_CSEQ = re.compile(rb"^([0-9]+)[ \t]+([A-Za-z]+)$")
_CONTACT = re.compile(rb"<([^>]+)>|^([^;,\s]+)")
_COMPACT = {b"f": b"from", b"t": b"to", b"i": b"call-id", b"v": b"via", b"m": b"contact",
            b"l": b"content-length"}


def extract(buf: bytes) -> tuple:
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no header end")
    head = _FOLD.sub(b" ", head)
    first, _, rest = head.partition(b"\n")
    fl = _FIRST.match(first)
    if fl is None:
        raise ValueError("bad first line")
    hdrs: dict[bytes, bytes] = {}
    for m in _HDR.finditer(rest):
        name = m.group(1).lower()
        name = _COMPACT.get(name, name)
        if name not in hdrs:
            hdrs[name] = m.group(2)
    ftag = _TAG.search(hdrs[b"from"])
    ttag = _TAG.search(hdrs[b"to"])
    cseq = _CSEQ.match(hdrs[b"cseq"])
    br = _BRANCH.search(hdrs[b"via"])
    ct = hdrs.get(b"contact")
    cm = _CONTACT.search(ct) if ct is not None else None
    return (
        ftag.group(1).decode() if ftag else None,
        ttag.group(1).decode() if ttag else None,
        hdrs[b"call-id"].decode(),
        int(cseq.group(1)), cseq.group(2).decode(),
        br.group(1).decode() if br else None,
        (cm.group(1) or cm.group(2)).decode() if cm else None,
    )
