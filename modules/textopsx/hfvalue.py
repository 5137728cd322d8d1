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

from sipcore.msg import spans

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


def value_spans(msg: Any, name: str, split: bool = True) -> list[ValueSpan]:
    out: list[ValueSpan] = []
    for h in msg.header_all(name):
        items = spans.value_spans(msg.buf, h.value_start, h.value_end, angle=True) if split \
            else [(h.value_start, h.value_end)]
        for k, (s, e) in enumerate(items):
            out.append(ValueSpan(
                h, s, e, len(items), k,
                items[k - 1][1] if k > 0 else -1,
                items[k + 1][0] if k + 1 < len(items) else -1))
    return out


def select(spans: list[ValueSpan], idx: Optional[int]) -> list[ValueSpan]:
    if idx is None:
        return spans
    try:
        return [spans[idx - 1 if idx > 0 else idx]]
    except IndexError:
        return []


def param_span(buf: bytes, v: ValueSpan, param: str) -> Optional[tuple[int, int, int, int]]:
    """(start of ';', end of param, value start, value end) of PARAM inside value V (a ';'
    inside the value's <URI> belongs to the URI)."""
    pname = param.lower()
    for name, s, e in spans.param_spans(buf, v.start, v.end, angle=True):
        if name != pname:
            continue
        eq = buf.find(b"=", s, e)
        if eq >= 0:
            return s, e, eq + 1, e
        while e > s and buf[e - 1] in b" \t\r\n":
            e -= 1
        return s, e, e, e
    return None
