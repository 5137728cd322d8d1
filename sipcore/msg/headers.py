"""Header types, the Header object, and the per-header body parsers.

Runs in: every process that parses SIP (workers, timer, tests). Touches no shared state.
HdrType ids come from sipcore.msg.hdrdefs, the one table the C scanner is generated from.
Body parsers take the header value (str, folding already replaced) and raise ParseError.
The structured parsers live in their own modules (via, nameaddr, digest, uri) and are
re-exported here so callers need one import.
"""
from __future__ import annotations

import enum
import re
from typing import NamedTuple

from sipcore.errors import ParseError
from sipcore.msg.digest import DigestCredentials, parse_digest
from sipcore.msg.hdrdefs import HDR_TABLE, name_map
from sipcore.msg.limits import MAX_CSEQ, MAX_DELTA_SECONDS, MAX_MAX_FORWARDS
from sipcore.msg.nameaddr import (
    ContactList, NameAddr, parse_contacts, parse_nameaddr, parse_nameaddr_list,
)
from sipcore.msg.params import (
    TOKEN_RE, Params, parse_params, parse_params_at, skip_ws, split_commas,
)
from sipcore.msg.uri import SipURI, parse_uri
from sipcore.msg.via import Via, parse_via

__all__ = [
    "HdrType", "Header", "CSeq", "ContentType", "NameAddr", "ContactList", "Via", "SipURI",
    "DigestCredentials", "parse_cseq", "parse_content_type", "parse_expires",
    "parse_max_forwards", "parse_delta_seconds", "parse_date", "parse_warning", "parse_via",
    "parse_nameaddr", "parse_nameaddr_list", "parse_contacts", "parse_digest", "parse_uri",
    "parse_params", "hdr_type_of", "canonical_name",
]

HdrType = enum.IntEnum("HdrType", [(e[0], i) for i, e in enumerate(HDR_TABLE)])  # type: ignore[misc]
HdrType.__doc__ = "Known SIP header types (ids shared with the C scanner)."
HdrType.__module__ = __name__

_NAME_TYPE = name_map()
_CANONICAL = [e[1] for e in HDR_TABLE]
_TYPES = list(HdrType)
COMPACT_FORMS: dict[str, HdrType] = {e[2]: HdrType(i) for i, e in enumerate(HDR_TABLE) if e[2]}


def hdr_type_of(name: str) -> HdrType:
    """Type of a header name (long or compact form, any case); OTHER if unknown."""
    return _TYPES[_NAME_TYPE.get(name.lower(), 0)]


def canonical_name(t: int) -> str:
    return _CANONICAL[t]


_FOLD_RE = re.compile(rb"[ \t]*\r?\n[ \t]*")


class Header:
    """One header line of a message (folded continuation lines joined)."""

    __slots__ = ("name", "type", "value", "name_start", "start", "end", "value_start",
                 "value_end", "parsed")

    def __init__(self, buf: bytes, htype: int, folded: int, ns: int, ne: int, vs: int, ve: int,
                 end: int) -> None:
        self.name = buf[ns:ne].decode("ascii")
        self.type = _TYPES[htype]
        raw = buf[vs:ve]
        if folded:
            raw = _FOLD_RE.sub(b" ", raw)
        self.value = raw.decode("utf-8", "surrogateescape")
        self.name_start = self.start = ns
        self.end = end
        self.value_start = vs
        self.value_end = ve
        # cache for the parsed body (filled by SipMsg accessors)
        self.parsed: object = None

    @property
    def canonical_name(self) -> str:
        return _CANONICAL[self.type] if self.type else self.name

    def __repr__(self) -> str:
        return f"Header({self.name!r}: {self.value!r})"


class CSeq(NamedTuple):
    """CSeq value: sequence number and method (a tuple, cheap to build on the hot path)."""

    num: int
    method: str

    def __str__(self) -> str:
        return f"{self.num} {self.method}"


_CSEQ_RE = re.compile(r"[ \t]*([0-9]+)[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*")


def parse_cseq(s: str) -> CSeq:
    """`CSeq: 1*DIGIT LWS Method`; the number must be < 2**31 (RFC 3261 8.1.1.5)."""
    m = _CSEQ_RE.fullmatch(s)
    if m is None:
        raise ParseError("malformed CSeq", 0)
    digits = m.group(1)
    if len(digits.lstrip("0")) > 10 or int(digits) > MAX_CSEQ:
        raise ParseError("CSeq number too large", m.start(1))
    return CSeq(int(digits), m.group(2))


def parse_delta_seconds(s: str, what: str = "delta-seconds") -> int:
    t = s.strip(" \t")
    if not t.isdigit() or not t.isascii():
        raise ParseError(f"malformed {what}", 0)
    if len(t.lstrip("0")) > 10 or int(t) > MAX_DELTA_SECONDS:
        raise ParseError(f"{what} too large", 0)
    return int(t)


def parse_expires(s: str) -> int:
    """Expires header value (delta-seconds)."""
    return parse_delta_seconds(s, "Expires")


def parse_retry_after(s: str) -> int:
    """Retry-After: delta-seconds [comment] *(SEMI retry-param); returns the seconds."""
    m = re.match(r"[ \t]*([0-9]+)", s)
    if m is None:
        raise ParseError("malformed Retry-After", 0)
    return parse_delta_seconds(m.group(1), "Retry-After")


def parse_max_forwards(s: str) -> int:
    t = s.strip(" \t")
    if not t.isdigit() or not t.isascii():
        raise ParseError("malformed Max-Forwards", 0)
    if len(t.lstrip("0")) > 3 or int(t) > MAX_MAX_FORWARDS:
        raise ParseError("Max-Forwards too large", 0)
    return int(t)


class ContentType:
    __slots__ = ("type", "subtype", "params")

    def __init__(self, type_: str, subtype: str, params: Params) -> None:
        self.type = type_
        self.subtype = subtype
        self.params = params

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}".lower()

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}" + "".join(
            f";{k}" if v is None else f";{k}={v}" for k, v in self.params
        )

    def __repr__(self) -> str:
        return f"ContentType({str(self)!r})"


def parse_content_type(s: str) -> ContentType:
    """media-type = m-type SLASH m-subtype *(SEMI m-parameter)."""
    i = skip_ws(s, 0)
    m = TOKEN_RE.match(s, i)
    if m is None:
        raise ParseError("malformed Content-Type", i)
    i = skip_ws(s, m.end())
    if i >= len(s) or s[i] != "/":
        raise ParseError("Content-Type without subtype", i)
    i = skip_ws(s, i + 1)
    m2 = TOKEN_RE.match(s, i)
    if m2 is None:
        raise ParseError("malformed Content-Type subtype", i)
    params, i = parse_params_at(s, m2.end())
    if skip_ws(s, i) != len(s):
        raise ParseError("junk in Content-Type", i)
    return ContentType(m.group(), m2.group(), params)


# RFC 3261 25.1 SIP-date = rfc1123-date: wkday "," SP date1 SP time SP "GMT"
_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)


def parse_date(s: str) -> str:
    """Validate a Date value (RFC 1123 date in GMT); returns it stripped."""
    t = s.strip(" \t")
    if _DATE_RE.fullmatch(t) is None:
        raise ParseError("malformed Date (RFC 1123, GMT)", 0)
    return t


# warning-value = warn-code SP warn-agent SP warn-text ; warn-code = 3DIGIT
_WARNING_RE = re.compile(r'[0-9]{3} [^ \t]+ "')


def parse_warning(value: str) -> list[str]:
    """Validate each Warning value (3-digit code, agent, quoted text); returns the values."""
    out = split_commas(value)
    for v in out:
        if _WARNING_RE.match(v) is None or not v.endswith('"'):
            raise ParseError("malformed Warning", 0)
    return out
