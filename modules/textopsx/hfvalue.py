"""Header-value addressing for textopsx's *_hf_value functions: `NAME[IDX].PARAM`.

Runs in: the master (spec parsing at compile time) and SIP workers (value spans).
Shared state: none.

A header like `Foo: a;x=1, b` has the values `a;x=1` and `b` (comma split, quote and <>
aware). IDX is 1-based over all values of all NAME headers in order; negative counts from
the end; `*` (or no index) means every value. The `*_value2` functions do not split at commas:
each header occurrence is one value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

_SPEC_RE = re.compile(r"^\s*([A-Za-z0-9!%*_+`'~.\-]+?)\s*(?:\[\s*(\*|-?\d+)\s*\])?"
                      r"(?:\.([A-Za-z0-9!%*_+`'~\-]+))?\s*$")


@dataclass(frozen=True)
class HfSpec:
    name: str
    idx: Optional[int]          # 1-based, negative from the end, None = all / not given
    has_idx: bool
    param: Optional[str]

    def __str__(self) -> str:
        s = self.name
        if self.has_idx:
            s += "[*]" if self.idx is None else f"[{self.idx}]"
        if self.param:
            s += "." + self.param
        return s


def parse_hf_spec(text: str) -> HfSpec:
    m = _SPEC_RE.match(text)
    if m is None:
        raise ValueError(f"invalid header value spec \"{text}\" (NAME[IDX].PARAM expected)")
    name, idx, param = m.group(1), m.group(2), m.group(3)
    if idx is not None and idx != "*" and int(idx) == 0:
        raise ValueError(f"header value index starts at 1 (or -1 from the end): \"{text}\"")
    return HfSpec(name, None if idx in (None, "*") else int(idx), idx is not None, param)


@dataclass
class ValueSpan:
    """One value of a header, as absolute offsets in msg.buf."""

    hdr: Any              # sipcore.msg Header
    start: int
    end: int
    n_in_hdr: int         # values in the same header line
    pos_in_hdr: int       # 0-based position in that header
    prev_end: int         # end of the previous value in the same header (or -1)
    next_start: int       # start of the next value in the same header (or -1)

    def text(self, buf: bytes) -> str:
        return buf[self.start:self.end].decode("latin-1")


def _split_commas(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each trimmed comma-separated item (quote and <> aware)."""
    spans: list[tuple[int, int]] = []
    quoted, angle, start, i = False, 0, 0, 0
    n = len(data)
    while i <= n:
        c = data[i:i + 1]
        if i == n or (c == b"," and not quoted and angle == 0):
            s, e = start, i
            while s < e and data[s:s + 1] in (b" ", b"\t"):
                s += 1
            while e > s and data[e - 1:e] in (b" ", b"\t"):
                e -= 1
            spans.append((s, e))
            start = i + 1
        elif quoted:
            if c == b"\\":
                i += 1
            elif c == b'"':
                quoted = False
        elif c == b'"':
            quoted = True
        elif c == b"<":
            angle += 1
        elif c == b">":
            angle = max(0, angle - 1)
        i += 1
    return spans


def value_spans(msg: Any, name: str, split: bool = True) -> list[ValueSpan]:
    out: list[ValueSpan] = []
    for h in msg.header_all(name):
        data = msg.buf[h.value_start:h.value_end]
        items = _split_commas(data) if split else [(0, len(data))]
        items = [it for it in items if it[1] > it[0]] or ([] if split else [(0, 0)])
        for k, (s, e) in enumerate(items):
            out.append(ValueSpan(
                h, h.value_start + s, h.value_start + e, len(items), k,
                h.value_start + items[k - 1][1] if k > 0 else -1,
                h.value_start + items[k + 1][0] if k + 1 < len(items) else -1))
    return out


def select(spans: list[ValueSpan], idx: Optional[int]) -> list[ValueSpan]:
    if idx is None:
        return spans
    try:
        return [spans[idx - 1 if idx > 0 else idx]]
    except IndexError:
        return []


def param_span(buf: bytes, v: ValueSpan, param: str) -> Optional[tuple[int, int, int, int]]:
    """(start of ';', end of param, value start, value end) of PARAM inside value V."""
    data = buf[v.start:v.end]
    pname = param.lower().encode("latin-1")
    i = 0
    quoted = False
    angle = 0                       # ';' inside <...> belongs to the URI, not to the value
    while i < len(data):
        c = data[i:i + 1]
        if c == b'"':
            quoted = not quoted
        elif c == b"<" and not quoted:
            angle += 1
        elif c == b">" and not quoted:
            angle = max(0, angle - 1)
        elif c == b";" and not quoted and angle == 0:
            j = i + 1
            while j < len(data) and data[j:j + 1] in (b" ", b"\t"):
                j += 1
            k = j
            while k < len(data) and data[k:k + 1] not in (b"=", b";", b" ", b"\t"):
                k += 1
            if data[j:k].lower() == pname:
                end = k
                vs = ve = k
                if data[k:k + 1] == b"=":
                    vs = k + 1
                    end = vs
                    q = False
                    while end < len(data):
                        ch = data[end:end + 1]
                        if ch == b'"':
                            q = not q
                        elif ch == b";" and not q:
                            break
                        end += 1
                    ve = end
                return v.start + i, v.start + end, v.start + vs, v.start + ve
        i += 1
    return None
