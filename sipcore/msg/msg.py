"""SipMsg: an immutable received buffer, its scan index, lazy parsed views and an edit list.

Runs in: SIP workers (one SipMsg per received message, dropped after routing), the timer process
(replies/requests it rebuilds), tests. Touches no shared state; a SipMsg is never shared between
processes (tm copies what it needs into shm as bytes).

Invariants:
* `buf` is exactly one message: leading CRLFs and bytes after Content-Length are cut off by
  parse_msg, so offsets in the scan list are offsets into `buf`;
* parsed views (From, To, Via, CSeq, R-URI...) are computed on first access and cached; edits
  never change them (Kamailio semantics: the script sees the received message, except the R-URI
  and the body, which have "current" views after set_ruri/set_body);
* edits are recorded in a LumpList and applied once by build().
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence, Union

from sipcore.errors import ParseError
from sipcore.msg import scandefs as sd
from sipcore.msg.headers import (
    ContactList, ContentType, CSeq, DigestCredentials, HdrType, Header, NameAddr, Via,
    canonical_name, hdr_type_of, parse_contacts, parse_content_type, parse_cseq, parse_date, parse_delta_seconds,
    parse_digest, parse_expires, parse_max_forwards, parse_nameaddr, parse_nameaddr_list,
    parse_retry_after, parse_via, parse_warning,
)
from sipcore.msg.lumps import (
    BAND_CONTENT_LENGTH, BAND_CONTENT_TYPE, BAND_REPLACE_FIRST, BAND_REPLACE_LAST, Edit, LumpList,
    apply_ops, make_edit,
)
from sipcore.msg.limits import MAX_VIAS
from sipcore.msg.params import split_commas
from sipcore.msg.uri import SipURI, parse_uri

# Method ids: bit flags as in Kamailio parser/msg_parser.h (METHOD_*), so masks like
# INVITE|ACK work the same way.
METHOD_UNDEF = 0
METHOD_INVITE = 1
METHOD_CANCEL = 2
METHOD_ACK = 4
METHOD_BYE = 8
METHOD_INFO = 16
METHOD_REGISTER = 32
METHOD_SUBSCRIBE = 64
METHOD_NOTIFY = 128
METHOD_MESSAGE = 256
METHOD_OPTIONS = 512
METHOD_PRACK = 1024
METHOD_UPDATE = 2048
METHOD_REFER = 4096
METHOD_PUBLISH = 8192
METHOD_KDMQ = 16384
METHOD_GET = 32768
METHOD_POST = 65536
METHOD_PUT = 131072
METHOD_DELETE = 262144
METHOD_OTHER = 524288

METHOD_IDS: dict[str, int] = {
    "INVITE": METHOD_INVITE, "CANCEL": METHOD_CANCEL, "ACK": METHOD_ACK, "BYE": METHOD_BYE,
    "INFO": METHOD_INFO, "REGISTER": METHOD_REGISTER, "SUBSCRIBE": METHOD_SUBSCRIBE,
    "NOTIFY": METHOD_NOTIFY, "MESSAGE": METHOD_MESSAGE, "OPTIONS": METHOD_OPTIONS,
    "PRACK": METHOD_PRACK, "UPDATE": METHOD_UPDATE, "REFER": METHOD_REFER,
    "PUBLISH": METHOD_PUBLISH, "KDMQ": METHOD_KDMQ, "GET": METHOD_GET, "POST": METHOD_POST,
    "PUT": METHOD_PUT, "DELETE": METHOD_DELETE,
}

_HOT_FROMTAG = sd.S_FROMTAG_S
_HOT_TOTAG = sd.S_TOTAG_S
_HOT_BRANCH = sd.S_BRANCH_S
_HOT_CONTACT = sd.S_CONTACT_S
_HOT_CALLID = sd.S_CALLID_S
_CSEQ_M_S = sd.S_CSEQ_M_S
_new_tuple = tuple.__new__
_FIXED = sd.FIXED
_STRIDE = sd.HDR_STRIDE
_T_VIA = int(HdrType.VIA)
_T_FROM = int(HdrType.FROM)
_T_TO = int(HdrType.TO)
_T_CALLID = int(HdrType.CALLID)
_T_CSEQ = int(HdrType.CSEQ)
_T_CONTACT = int(HdrType.CONTACT)
_T_CL = int(HdrType.CONTENTLENGTH)
_T_CT = int(HdrType.CONTENTTYPE)
_T_MAXFWD = int(HdrType.MAXFORWARDS)
_T_ROUTE = int(HdrType.ROUTE)
_T_RR = int(HdrType.RECORDROUTE)

HeaderKey = Union[str, int]

# RFC 3261 8.1.1: mandatory in every request (and echoed in every reply)
_MANDATORY = (HdrType.VIA, HdrType.FROM, HdrType.TO, HdrType.CALLID, HdrType.CSEQ)
# RFC 3261 7.3.1: only list-valued headers may appear more than once
_SINGLE = (HdrType.FROM, HdrType.TO, HdrType.CALLID, HdrType.CSEQ, HdrType.MAXFORWARDS,
           HdrType.CONTENTTYPE)
_NAMEADDR_LISTS = (HdrType.ROUTE, HdrType.RECORDROUTE, HdrType.PATH, HdrType.PAI,
                   HdrType.PPI, HdrType.DIVERSION, HdrType.RPID)
_NAMEADDR_ONE = (HdrType.REFERTO, HdrType.REFERREDBY)


def _check_uri_of(na: NameAddr) -> None:
    """Parse a name-addr's URI when it is one we route on (sip/sips/tel); others stay opaque."""
    scheme = na.uri.split(":", 1)[0].lower()
    if scheme in ("sip", "sips", "tel", "tels"):
        na.parsed_uri  # noqa: B018 - raises ParseError


def _split_at_body(ops: list[Edit], body_off: int) -> tuple[list[Edit], list[Edit]]:
    """OPS as (header edits, body edits); an edit spanning into the body is cut in two there."""
    hops: list[Edit] = []
    bops: list[Edit] = []
    for op in ops:
        if op.pos < body_off:
            if op.end > body_off:
                hops.append(op._replace(end=body_off))
                bops.append(make_edit(body_off, op.band, op.seq, op.end, b""))
            else:
                hops.append(op)
        else:
            bops.append(op)
    return hops, bops


class SipMsg:
    """One SIP request or reply. Build with sipcore.msg.parse_msg(buf)."""

    __slots__ = ("buf", "_sc", "_tcache", "_hdrs", "_c", "_cseq", "_method", "_lumps",
                 "_new_ruri", "_new_body", "_new_ctype", "_built", "scanner", "_via1")

    def __init__(self, buf: bytes, sc: Sequence[int], scanner: str = "py") -> None:
        self.buf = buf
        self._sc = sc
        self._tcache: Sequence[int] | None = None  # header type ids, see _types
        self._hdrs: list[Header | None] | None = None  # Header objects, built on demand
        self._c: dict[str, object] | None = None  # cache of parsed views (vias, contacts)
        self._cseq: CSeq | None = None
        self._method: str | None = None
        self._lumps: LumpList | None = None
        self._new_ruri: str | None = None
        self._new_body: bytes | None = None
        self._new_ctype: str | None = None
        self._built: bytes | None = None
        self.scanner = scanner  # "c" or "py": which scanner indexed this message
        self._via1: Via | None | bool = False  # the first Via once parsed (False: not yet)

    def _cache(self) -> dict[str, object]:
        c = self._c
        if c is None:
            c = self._c = {}
        return c

    # ---------------------------------------------------------------- first line
    @property
    def is_request(self) -> bool:
        return self._sc[0] == sd.KIND_REQUEST

    @property
    def is_reply(self) -> bool:
        return self._sc[0] == sd.KIND_REPLY

    def _span(self, s: int, e: int) -> str:
        return self.buf[s:e].decode("utf-8", "surrogateescape")

    @property
    def method(self) -> str:
        v = self._method
        if v is None:
            sc = self._sc
            if sc[0] == sd.KIND_REQUEST:
                v = self.buf[sc[sd.S_M_S] : sc[sd.S_M_E]].decode("ascii")
            else:
                v = self.cseq.method
            self._method = v
        return v

    @property
    def method_id(self) -> int:
        return METHOD_IDS.get(self.method, METHOD_OTHER)

    @property
    def orig_ruri(self) -> str:
        sc = self._sc
        return self._span(sc[sd.S_U_S], sc[sd.S_U_E])

    @property
    def ruri(self) -> str:
        return self._new_ruri if self._new_ruri is not None else self.orig_ruri

    @property
    def parsed_orig_ruri(self) -> SipURI:
        if not self.is_request:
            raise ParseError("reply has no Request-URI", 0)
        return parse_uri(self.orig_ruri)

    @property
    def parsed_ruri(self) -> SipURI:
        if self._new_ruri is not None:
            return parse_uri(self._new_ruri)
        return self.parsed_orig_ruri

    @property
    def version(self) -> str:
        sc = self._sc
        return self.buf[sc[sd.S_V_S] : sc[sd.S_V_E]].decode("ascii")

    @property
    def status(self) -> int:
        return self._sc[sd.S_STATUS]

    @property
    def reason(self) -> str:
        sc = self._sc
        return self._span(sc[sd.S_R_S], sc[sd.S_R_E]) if sc[0] == sd.KIND_REPLY else ""

    @property
    def first_line(self) -> str:
        sc = self._sc
        return self._span(sc[sd.S_FL_START], sc[sd.S_FL_END]).rstrip("\r\n")

    # ---------------------------------------------------------------- headers
    @property
    def _types(self) -> Sequence[int]:
        """Type id of every header line, in order (a slice of the scan list, made on demand)."""
        t = self._tcache
        if t is None:
            t = self._tcache = self._sc[_FIXED::_STRIDE]
        return t

    def _hdr(self, i: int) -> Header:
        hdrs = self._hdrs
        if hdrs is None:
            hdrs = self._hdrs = [None] * len(self._types)
        h = hdrs[i]
        if h is None:
            b = _FIXED + _STRIDE * i
            h = hdrs[i] = Header(self.buf, *self._sc[b : b + _STRIDE])
        return h

    @property
    def headers(self) -> list[Header]:
        """Every header line in order (a new list; the Header objects are cached)."""
        hdrs = self._hdrs
        if hdrs is None or None in hdrs:
            n = len(self._types)
            if n == 0:
                return []
            for i in range(n):
                self._hdr(i)
            hdrs = self._hdrs
        return list(hdrs)  # type: ignore[arg-type]

    def has_header(self, t: int) -> bool:
        """Whether a header of known type T is present (no Header object is made)."""
        return t in self._types

    def header(self, key: HeaderKey) -> Header | None:
        """First header of a type or name (case-insensitive, compact forms included)."""
        t = key if isinstance(key, int) else int(hdr_type_of(key))
        if t:
            try:
                return self._hdr(self._types.index(t))
            except ValueError:
                return None
        if isinstance(key, int):
            return None
        lname = key.lower()
        for i, ht in enumerate(self._types):
            if ht == 0:
                h = self._hdr(i)
                if h.name.lower() == lname:
                    return h
        return None

    def header_all(self, key: HeaderKey) -> list[Header]:
        t = key if isinstance(key, int) else int(hdr_type_of(key))
        if t:
            return [self._hdr(i) for i, ht in enumerate(self._types) if ht == t]
        if isinstance(key, int):
            return []
        lname = key.lower()
        return [h for i, ht in enumerate(self._types) if ht == 0
                for h in (self._hdr(i),) if h.name.lower() == lname]

    def header_values(self, key: HeaderKey) -> list[str]:
        """Comma-split values over all such headers (quote and <> aware)."""
        out: list[str] = []
        for h in self.header_all(key):
            out += split_commas(h.value)
        return out

    def _required(self, t: int, what: str) -> Header:
        try:
            return self._hdr(self._types.index(t))
        except ValueError:
            raise ParseError(f"missing {what} header", -1) from None

    # ---------------------------------------------------------------- parsed views
    @property
    def from_(self) -> NameAddr:
        h = self._required(_T_FROM, "From")
        if h.parsed is None:
            h.parsed = parse_nameaddr(h.value)
        return h.parsed  # type: ignore[return-value]

    @property
    def to(self) -> NameAddr:
        h = self._required(_T_TO, "To")
        if h.parsed is None:
            h.parsed = parse_nameaddr(h.value)
        return h.parsed  # type: ignore[return-value]

    # The *_tag / via1_branch / contact_uri / cseq fast paths read the C scanner's hot slots
    # (scandefs): >= 0 a span, -2 known absent, -1 not computed -> the Python parser decides.
    # The C code only fills tag/branch/contact spans made of printable ASCII, hence "ascii".
    @property
    def from_tag(self) -> str | None:
        sc = self._sc
        s = sc[_HOT_FROMTAG]
        if s >= 0:
            return self.buf[s : sc[_HOT_FROMTAG + 1]].decode("ascii")
        return None if s == -2 else self.from_.tag

    @property
    def to_tag(self) -> str | None:
        sc = self._sc
        s = sc[_HOT_TOTAG]
        if s >= 0:
            return self.buf[s : sc[_HOT_TOTAG + 1]].decode("ascii")
        return None if s == -2 else self.to.tag

    @property
    def callid(self) -> str:
        """Call-ID value; "" when the header is missing (logging and $ci never raise)."""
        sc = self._sc
        s = sc[_HOT_CALLID]
        if s >= 0:
            return self.buf[s : sc[_HOT_CALLID + 1]].decode("utf-8", "surrogateescape")
        if s == -2:
            return ""
        h = self.header(_T_CALLID)
        return h.value if h is not None else ""

    @property
    def cseq(self) -> CSeq:
        v = self._cseq
        if v is None:
            sc = self._sc
            num = sc[sd.S_CSEQ_NUM]
            if num >= 0:
                v = _new_tuple(CSeq, (num, self.buf[sc[_CSEQ_M_S] : sc[_CSEQ_M_S + 1]].decode()))
            else:
                h = self._required(_T_CSEQ, "CSeq")
                if h.parsed is None:
                    h.parsed = parse_cseq(h.value)
                v = h.parsed  # type: ignore[assignment]
            self._cseq = v
        return v  # type: ignore[return-value]

    @property
    def via1_branch(self) -> str | None:
        """Branch of the first Via (fast path for transaction matching)."""
        sc = self._sc
        s = sc[_HOT_BRANCH]
        if s >= 0:
            return self.buf[s : sc[_HOT_BRANCH + 1]].decode("ascii")
        if s == -2:
            return None
        via = self.via1
        return via.branch if via is not None else None

    def _via_list(self, h: Header) -> list[Via]:
        if h.parsed is None:
            h.parsed = parse_via(h.value)
        return h.parsed  # type: ignore[return-value]

    @property
    def via1(self) -> Via | None:
        v = self._via1
        if v is False:
            try:
                i = self._types.index(_T_VIA)
            except ValueError:
                v = None
            else:
                v = self._via_list(self._hdr(i))[0]
            self._via1 = v
        return v  # type: ignore[return-value]

    @property
    def via2(self) -> Via | None:
        vias = self.vias
        return vias[1] if len(vias) > 1 else None

    @property
    def vias(self) -> list[Via]:
        c = self._cache()
        v = c.get("vias")
        if v is None:
            out: list[Via] = []
            for h in self.header_all(_T_VIA):
                out += self._via_list(h)
                if len(out) > MAX_VIAS:
                    raise ParseError("too many Via values", h.start)
            v = c["vias"] = out
        return v  # type: ignore[return-value]

    @property
    def contacts(self) -> ContactList:
        c = self._cache()
        v = c.get("contacts")
        if v is None:
            star = False
            lst: list[NameAddr] = []
            for h in self.header_all(_T_CONTACT):
                if h.parsed is None:
                    h.parsed = parse_contacts(h.value)
                cl: ContactList = h.parsed  # type: ignore[assignment]
                star = star or cl.star
                lst += cl.contacts
            if star and lst:
                raise ParseError("Contact '*' mixed with other contacts", -1)
            v = c["contacts"] = ContactList(star, lst)
        return v  # type: ignore[return-value]

    @property
    def contact_uri(self) -> str | None:
        """URI of the first Contact (fast path; None if there is none or it is '*')."""
        sc = self._sc
        s = sc[_HOT_CONTACT]
        if s >= 0:
            return self.buf[s : sc[_HOT_CONTACT + 1]].decode("ascii")
        if s == -2:
            return None
        cl = self.contacts
        return cl.contacts[0].uri if cl.contacts else None

    def _single_int(self, t: int, parse) -> int | None:  # type: ignore[no-untyped-def]
        h = self.header(t)
        if h is None:
            return None
        if h.parsed is None:
            h.parsed = parse(h.value)
        return h.parsed  # type: ignore[return-value]

    @property
    def max_forwards(self) -> int | None:
        return self._single_int(_T_MAXFWD, parse_max_forwards)

    @property
    def expires(self) -> int | None:
        return self._single_int(HdrType.EXPIRES, parse_expires)

    @property
    def content_type(self) -> ContentType | None:
        h = self.header(_T_CT)
        if h is None:
            return None
        if h.parsed is None:
            h.parsed = parse_content_type(h.value)
        return h.parsed  # type: ignore[return-value]

    def _nameaddr_lists(self, t: int) -> list[NameAddr]:
        out: list[NameAddr] = []
        for h in self.header_all(t):
            if h.parsed is None:
                h.parsed = parse_nameaddr_list(h.value)
            out += h.parsed  # type: ignore[arg-type]
        return out

    @property
    def routes(self) -> list[NameAddr]:
        return self._nameaddr_lists(_T_ROUTE)

    @property
    def record_routes(self) -> list[NameAddr]:
        return self._nameaddr_lists(_T_RR)

    @property
    def user_agent(self) -> str | None:
        h = self.header(HdrType.USERAGENT)
        return h.value if h is not None else None

    def auth_credentials(self, hdr_type: int = HdrType.AUTHORIZATION) -> list[DigestCredentials]:
        out: list[DigestCredentials] = []
        for h in self.header_all(hdr_type):
            if h.parsed is None:
                h.parsed = parse_digest(h.value)
            out.append(h.parsed)  # type: ignore[arg-type]
        return out

    # ---------------------------------------------------------------- body / sizes
    @property
    def content_length(self) -> int | None:
        v = self._sc[sd.S_CLEN]
        return None if v < 0 else v

    @property
    def orig_body(self) -> bytes:
        sc = self._sc
        return self.buf[sc[sd.S_BODY] : sc[sd.S_MSG_END]]

    @property
    def body(self) -> bytes:
        return self._new_body if self._new_body is not None else self.orig_body

    @property
    def body_offset(self) -> int:
        return self._sc[sd.S_BODY]

    @property
    def headers_end(self) -> int:
        """Offset of the empty line that ends the header block."""
        return self._sc[sd.S_HDR_END]

    @property
    def len(self) -> int:
        return len(self.buf)

    def __len__(self) -> int:
        return len(self.buf)

    # ---------------------------------------------------------------- full parse
    def parse_all(self) -> None:
        """Parse the R-URI and every known header body, then the message-level rules.

        Raises ParseError on the first defect. Used by sanity checks and the torture tests.
        Message-level rules (beyond single-header syntax), each from the RFC named:
        mandatory headers (RFC 3261 8.1.1), single-instance headers (7.3.1), CSeq method equal
        to the request method (8.1.1.5; RFC 4475 3.1.2.17/18), no headers in the Request-URI
        (19.1.1 table; RFC 4475 3.1.2.11).
        """
        if self.is_request:
            ruri = self.parsed_orig_ruri
            if ruri.headers:
                raise ParseError("headers not allowed in Request-URI", self._sc[sd.S_U_S])
        counts = [0] * len(HdrType)
        for h in self.headers:
            counts[h.type] += 1
            self._parse_header(h)
        for t in _MANDATORY:
            if not counts[t]:
                raise ParseError(f"missing {canonical_name(t)} header", -1)
        for t in _SINGLE:
            if counts[t] > 1:
                raise ParseError(f"more than one {canonical_name(t)} header", -1)
        if self.is_request and self.cseq.method != self.method:
            raise ParseError("CSeq method does not match the request method", -1)
        self.vias  # noqa: B018 - Via count limit
        self.contacts  # noqa: B018 - '*' mixed with contacts

    def _parse_header(self, h: Header) -> None:
        t = h.type
        try:
            if t == HdrType.VIA:
                self._via_list(h)
            elif t == HdrType.FROM or t == HdrType.TO:
                if h.parsed is None:
                    h.parsed = parse_nameaddr(h.value)
                _check_uri_of(h.parsed)  # type: ignore[arg-type]
            elif t == HdrType.CALLID:
                if not h.value or any(c in h.value for c in " \t"):
                    raise ParseError("malformed Call-ID", 0)
            elif t == HdrType.CSEQ:
                if h.parsed is None:
                    h.parsed = parse_cseq(h.value)
            elif t == HdrType.CONTACT:
                if h.parsed is None:
                    h.parsed = parse_contacts(h.value)
                for na in h.parsed.contacts:  # type: ignore[attr-defined]
                    _check_uri_of(na)
                    for pname in ("expires",):
                        pv = na.param(pname)
                        if pv is not None:
                            parse_delta_seconds(pv, "Contact expires")
            elif t == HdrType.MAXFORWARDS:
                h.parsed = parse_max_forwards(h.value)
            elif t == HdrType.EXPIRES or t == HdrType.MINEXPIRES:
                h.parsed = parse_expires(h.value)
            elif t == HdrType.CONTENTTYPE:
                if h.parsed is None:
                    h.parsed = parse_content_type(h.value)
            elif t in _NAMEADDR_LISTS:
                if h.parsed is None:
                    h.parsed = parse_nameaddr_list(h.value)
                for na in h.parsed:  # type: ignore[attr-defined]
                    _check_uri_of(na)
            elif t in _NAMEADDR_ONE:
                h.parsed = parse_nameaddr(h.value)
            elif t == HdrType.AUTHORIZATION or t == HdrType.PROXYAUTH:
                if h.parsed is None:
                    h.parsed = parse_digest(h.value)
            elif t == HdrType.RETRYAFTER:
                parse_retry_after(h.value)
            elif t == HdrType.DATE:
                parse_date(h.value)
            elif t == HdrType.WARNING:
                parse_warning(h.value)
            elif t == HdrType.SESSIONEXPIRES or t == HdrType.MINSE:
                parse_delta_seconds(h.value.split(";", 1)[0], h.canonical_name)
        except ParseError as e:
            off = h.value_start + e.offset if e.offset >= 0 and "\n" not in h.value else h.value_start
            raise ParseError(f"{h.canonical_name}: {e.reason}", off, e.status_hint) from e

    # ---------------------------------------------------------------- edits (lumps)
    @property
    def lumps(self) -> LumpList:
        if self._lumps is None:
            self._lumps = LumpList()
        return self._lumps

    @property
    def lumps_pending(self) -> bool:
        return bool(self._lumps) or self._new_ruri is not None or self._new_body is not None

    def _dirty(self) -> None:
        self._built = None

    def set_ruri(self, uri: str) -> None:
        """Rewrite the Request-URI (orig_ruri keeps the received one)."""
        if not self.is_request:
            raise ValueError("set_ruri on a reply")
        if not uri or any(c in uri for c in " \t\r\n"):
            raise ValueError(f"bad Request-URI {uri!r}")
        self._new_ruri = uri
        self._dirty()

    @staticmethod
    def _line(text: str | bytes) -> bytes:
        b = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        b = b.rstrip(b"\r\n")
        if b":" not in b:
            raise ValueError(f"header line without ':': {b!r}")
        return b + b"\r\n"

    # The edit methods run for every forwarded request (Max-Forwards, Via received/rport,
    # Record-Route...): they check offsets, make the LumpList and reset _built inline instead
    # of calling helpers, the `lumps` property and _dirty() (a Python call each).
    def add_header(self, text: str, *, before: Header | None = None,
                   after: Header | None = None, first: bool = False) -> None:
        """Add a complete header line; default position: after the last header (append_hf)."""
        line = self._line(text)
        lumps = self._lumps
        if lumps is None:
            lumps = self._lumps = LumpList()
        if before is not None:
            lumps.insert_before(before.start, line)
        elif after is not None:
            lumps.insert_after(after.end, line)
        elif first:
            lumps.insert_before(self._sc[sd.S_FL_END], line)
        else:
            lumps.insert_before(self._sc[sd.S_HDR_END], line)
        self._built = None

    def remove_header(self, h: Header) -> None:
        lumps = self._lumps
        if lumps is None:
            lumps = self._lumps = LumpList()
        lumps.delete(h.start, h.end)
        self._built = None

    def replace_header(self, h: Header, text: str) -> None:
        lumps = self._lumps
        if lumps is None:
            lumps = self._lumps = LumpList()
        lumps.replace(h.start, h.end, self._line(text))
        self._built = None

    def _bad_offset(self, *offsets: int) -> ValueError:
        bad = next(o for o in offsets if not 0 <= o <= len(self.buf))
        return ValueError(f"offset {bad} outside the message")

    def insert_before(self, offset: int, text: bytes) -> None:
        if not 0 <= offset <= len(self.buf):
            raise self._bad_offset(offset)
        lumps = self._lumps
        if lumps is None:
            lumps = self._lumps = LumpList()
        lumps.insert_before(offset, bytes(text))
        self._built = None

    def insert_after(self, offset: int, text: bytes) -> None:
        if not 0 <= offset <= len(self.buf):
            raise self._bad_offset(offset)
        lumps = self._lumps
        if lumps is None:
            lumps = self._lumps = LumpList()
        lumps.insert_after(offset, bytes(text))
        self._built = None

    def delete_range(self, start: int, end: int) -> None:
        n = len(self.buf)
        if not (0 <= start <= n and 0 <= end <= n):
            raise self._bad_offset(start, end)
        lumps = self._lumps
        if lumps is None:
            lumps = self._lumps = LumpList()
        lumps.delete(start, end)
        self._built = None

    def replace_range(self, start: int, end: int, text: bytes) -> None:
        n = len(self.buf)
        if not (0 <= start <= n and 0 <= end <= n):
            raise self._bad_offset(start, end)
        lumps = self._lumps
        if lumps is None:
            lumps = self._lumps = LumpList()
        lumps.replace(start, end, bytes(text))
        self._built = None

    def set_body(self, body: bytes, content_type: str | None = None) -> None:
        """Replace the body; Content-Length (and Content-Type if given) fixed by build()."""
        self._new_body = bytes(body)
        self._new_ctype = content_type
        self._dirty()

    def clear_lumps(self) -> None:
        self._lumps = None
        self._new_ruri = None
        self._new_body = None
        self._new_ctype = None
        self._dirty()

    def build(self, extra_ops: Iterable[Edit] = ()) -> bytes:
        """The message with every edit applied once; Content-Length fixed if the body changed.
        EXTRA_OPS: edits for this build only (our Via, send-time lines), not remembered."""
        extra = list(extra_ops)
        if not extra and self._built is not None:
            return self._built
        if not extra and not self.lumps_pending:
            return self.buf
        buf = self.buf
        sc = self._sc
        body_off = sc[sd.S_BODY]
        msg_end = sc[sd.S_MSG_END]
        ops = self._lumps.ops + extra if self._lumps is not None else extra
        if self._new_ruri is not None:
            ops.append(make_edit(sc[sd.S_U_S], BAND_REPLACE_FIRST, 0, sc[sd.S_U_E],
                                 self._new_ruri.encode()))
        hops, bops = _split_at_body(ops, body_off)
        if not bops and self._new_body is None and self._new_ctype is None:
            out = apply_ops(buf, hops, 0, msg_end)      # body untouched: one pass, one copy
            if not extra:
                self._built = out
            return out
        if self._new_body is not None:
            body = self._new_body
        else:
            body = apply_ops(buf, bops, body_off, msg_end)
        hdr_end = sc[sd.S_HDR_END]
        if self._new_body is not None or bops:
            # every Content-Length copy gets the new value (the scanner accepts equal copies)
            cls = self.header_all(_T_CL)
            clen = str(len(body)).encode()
            if not cls:
                hops.append(make_edit(hdr_end, BAND_CONTENT_LENGTH, 0, hdr_end,
                                      b"Content-Length: " + clen + b"\r\n"))
            for cl in cls:
                if not any(o.pos < cl.end and o.end > cl.start for o in hops):
                    hops.append(make_edit(cl.value_start, BAND_REPLACE_LAST, 0, cl.value_end,
                                          clen))
        if self._new_ctype is not None:
            ct = self.header(_T_CT)
            line = self._line("Content-Type: " + self._new_ctype)
            if ct is None:
                hops.append(make_edit(hdr_end, BAND_CONTENT_TYPE, 0, hdr_end, line))
            else:
                hops.append(make_edit(ct.start, BAND_REPLACE_LAST, 0, ct.end, line))
        head = apply_ops(buf, hops, 0, body_off)
        out = head + body
        if not extra:
            self._built = out
        return out

    def current_body(self) -> bytes:
        """The body as build() will send it: set_body()'s, or the received body with the byte
        edits recorded inside it (textops subst, sdpops...)."""
        if self._new_body is not None:
            return self._new_body
        if not self._lumps:
            return self.orig_body
        sc = self._sc
        _hops, bops = _split_at_body(self._lumps.ops, sc[sd.S_BODY])
        return apply_ops(self.buf, bops, sc[sd.S_BODY], sc[sd.S_MSG_END])

    def prebuilt(self) -> bytes | None:
        """The message with its edits applied when that is known without building it (no
        edits, or build() ran since the last one) and no edit touches the first line but a
        new R-URI: an insertion right after its first line's LF is then an insertion at
        S_FL_END ahead of every edit there. None otherwise."""
        if self._new_body is not None or self._new_ctype is not None:
            return None
        lumps = self._lumps
        if (lumps is None or not lumps.ops) and self._new_ruri is None:
            return self.buf
        built = self._built
        if built is None:
            return None
        if lumps is not None:
            fl_end = self._sc[sd.S_FL_END]
            for e in lumps.ops:
                if e.pos < fl_end:
                    return None
        return built

    def current_headers(self) -> list[tuple[str, str]]:
        """(name, value) of every header after the edits (is_present_hf after append_hf)."""
        if not self.lumps_pending:
            return [(h.name, h.value) for h in self.headers]
        from sipcore.msg.pyparser import ScanError, scan

        out = self.build()
        try:
            sc = scan(out)
        except ScanError as e:
            raise ParseError("edits produced an unparsable message", e.offset) from None
        return [(h.name, h.value) for h in SipMsg(out, sc).headers]

    # ---------------------------------------------------------------- misc
    def summary(self) -> dict[str, object]:
        """Key fields as plain values (tests compare scanners and expectations with it)."""
        d: dict[str, object] = {
            "kind": "request" if self.is_request else "reply",
            "method": self.method if self.is_request else None,
            "ruri": self.orig_ruri,
            "status": self.status,
            "reason": self.reason,
            "headers": [(h.name, int(h.type), h.value) for h in self.headers],
            "body": self.body,
        }
        return d

    def hash_text(self) -> str:
        """The fields that identify a request for stateless branches/to-tags (Call-ID, CSeq
        number, From tag, top Via branch or sent-by), NUL-separated."""
        try:
            ftag = self.from_tag or ""
        except ParseError:
            ftag = ""
        via = self.via1
        return "\x00".join((self.callid, str(self.cseq.num), ftag,
                            (via.branch or via.sent_by) if via is not None else ""))

    def hash_key(self) -> str:
        """md5 over hash_text(): stateless to-tags (and tm's local to-tags) are made of it."""
        return hashlib.md5(self.hash_text().encode("utf-8", "surrogateescape")).hexdigest()

    def __repr__(self) -> str:
        return f"<SipMsg {self.first_line!r} {len(self.buf)}B>"
