"""Message PVs: request line and URIs, destination and branches, From/To, headers, body.

Runs in: SIP workers. Reads `ctx.msg` (sipcore.msg.SipMsg, lazily parsed) and routing state on
`ctx` (dst_uri, branches); writes go through the message edit list (`set_ruri`,
`replace_header`, byte lumps) or the ctx fields. No shared state.

Getters are plain functions picked when the PV is parsed; a malformed part of the message
reads as $null (Kamailio logs and returns null), it never raises out of `get`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from sipcore.errors import ParseError
from sipcore.msg import NameAddr, SipURI, parse_digest, parse_nameaddr, parse_uri
from sipcore.msg.hdrdefs import HDR_TABLE, name_map
from sipcore.msg.params import format_params, quote
from sipcore.pv import registry
from sipcore.pv.msgstate import PV
from sipcore.pv.errors import PvError
from sipcore.pv.registry import Inner
from sipcore.pv.spec import ALL, FuncPv, Getter, Index, PvSpec, PvValue, Setter, pick, to_str
from sipcore.route.ruri import UriParts

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.route.ctx import RouteCtx

_NAME_MAP = name_map()


def _hkey(name: str) -> Any:
    """Lookup key for msg.header(): the type id of a known header (no per-call name mapping),
    else the name as written."""
    return _NAME_MAP.get(name.lower(), 0) or name


# Kamailio proto ids (ip_addr.h PROTO_*), used by $prid, $nh(i), $via0(protoid), $K(...)
PROTO_IDS = {"udp": 1, "tcp": 2, "tls": 3, "sctp": 4, "ws": 5, "wss": 6}


def reg(name: str, getter: Getter, setter: Optional[Setter] = None, *,
        aliases: tuple[str, ...] = (), doc: str = "") -> None:
    """Register a PV without inner name backed by one getter (and setter)."""
    registry.register(name, lambda _inner, _m: FuncPv(getter, setter), Inner.NONE,
                      aliases=aliases, doc=doc)


def reg_attrs(name: str, table: dict[str, Getter], *, aliases: tuple[str, ...] = (),
              doc: str = "") -> None:
    """Register `$name(attr)` where attr picks one getter at parse time."""
    def factory(inner: Optional[str], _m: Any) -> PvSpec:
        attr = (inner or "").strip()
        g = table.get(attr)
        if g is None:
            raise PvError(f"unknown attribute ${name}({attr}); expected one of "
                          f"{'|'.join(table)}")
        return FuncPv(g)

    registry.register(name, factory, Inner.REQUIRED, aliases=aliases, doc=doc)


def _need_str(value: PvValue, what: str) -> str:
    if value is None:
        raise PvError(f"cannot assign $null to {what}")
    return value if isinstance(value, str) else str(value)


# ---- R-URI ----------------------------------------------------------------------------------

def _ruri(ctx: "RouteCtx") -> Optional[SipURI]:
    msg = ctx.msg
    if not msg.is_request:
        return None
    try:
        return msg.parsed_ruri
    except ParseError:
        return None


def _ouri(ctx: "RouteCtx") -> Optional[SipURI]:
    msg = ctx.msg
    if not msg.is_request:
        return None
    try:
        return msg.parsed_orig_ruri
    except ParseError:
        return None


def default_port(u: SipURI) -> int:
    """Port of a URI, or 5061 for sips:/transport=tls, else 5060 (Kamailio $rp)."""
    if u.port:
        return u.port
    return 5061 if u.scheme == "sips" or u.transport == "tls" else 5060


def _uri_getters(src: Callable[["RouteCtx"], Optional[SipURI]]) -> dict[str, Getter]:
    def user(ctx: "RouteCtx") -> PvValue:
        u = src(ctx)
        return (u.user or None) if u is not None else None

    def host(ctx: "RouteCtx") -> PvValue:
        u = src(ctx)
        return (u.host or None) if u is not None else None

    def port(ctx: "RouteCtx") -> PvValue:
        u = src(ctx)
        return default_port(u) if u is not None else None

    def proto(ctx: "RouteCtx") -> PvValue:
        u = src(ctx)
        # the transport param as written; "UDP" when absent (Kamailio pv_get_udp)
        return (u.param("transport") or "UDP") if u is not None else None

    def scheme(ctx: "RouteCtx") -> PvValue:
        u = src(ctx)
        return u.scheme if u is not None else None

    def user_len(ctx: "RouteCtx") -> PvValue:
        u = src(ctx)
        return len(u.user) if u is not None else 0

    return {"user": user, "host": host, "port": port, "proto": proto, "scheme": scheme,
            "ulen": user_len}


def _get_ru(ctx: "RouteCtx") -> PvValue:
    return ctx.msg.ruri or None


def _get_ou(ctx: "RouteCtx") -> PvValue:
    return ctx.msg.orig_ruri or None


def _ruri_parts(ctx: "RouteCtx") -> UriParts:
    if not ctx.msg.is_request:
        raise PvError("the R-URI can only be changed in a request")
    try:
        return UriParts.from_uri(ctx.msg.parsed_ruri)
    except ParseError as e:
        raise PvError(f"cannot rewrite a malformed R-URI: {e}") from None


def _check_uri(text: str, what: str) -> str:
    try:
        parse_uri(text)
    except ParseError as e:
        raise PvError(f"invalid URI for {what}: {text!r} ({e})") from None
    return text


def _set_ru(ctx: "RouteCtx", value: PvValue) -> None:
    if not ctx.msg.is_request:
        raise PvError("$ru can only be set for a request")
    ctx.msg.set_ruri(_check_uri(_need_str(value, "$ru").strip(), "$ru"))


def _set_rU(ctx: "RouteCtx", value: PvValue) -> None:
    p = _ruri_parts(ctx)
    p.user = "" if value is None else to_str(value)
    if not p.user:
        p.password = None
    ctx.msg.set_ruri(p.text())


def _set_rd(ctx: "RouteCtx", value: PvValue) -> None:
    p = _ruri_parts(ctx)
    host = _need_str(value, "$rd").strip()
    if not host:
        raise PvError("cannot set an empty R-URI host")
    p.host = host
    ctx.msg.set_ruri(p.text())


def _set_rp(ctx: "RouteCtx", value: PvValue) -> None:
    p = _ruri_parts(ctx)
    port = "" if value in (None, 0, "0") else to_str(value).strip()
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise PvError(f"invalid port {port!r} for $rp")
    p.port = port
    ctx.msg.set_ruri(p.text())


_RU = _uri_getters(_ruri)
_OU = _uri_getters(_ouri)

reg("ru", _get_ru, _set_ru, aliases=("ruri",), doc="request URI")
reg("rU", _RU["user"], _set_rU, aliases=("ruri.user",), doc="R-URI user")
reg("rd", _RU["host"], _set_rd, aliases=("ruri.domain",), doc="R-URI host")
reg("rp", _RU["port"], _set_rp, doc="R-URI port (5060/5061 when absent)")
reg("rP", _RU["proto"], doc="R-URI transport param (UDP when absent)")
reg("rz", _RU["scheme"], doc="R-URI scheme")
reg("rUl", _RU["ulen"], doc="length of the R-URI user")
reg("ou", _get_ou, aliases=("ouri",), doc="original R-URI")
reg("oU", _OU["user"], doc="original R-URI user")
reg("od", _OU["host"], doc="original R-URI host")
reg("op", _OU["port"], doc="original R-URI port")
reg("oP", _OU["proto"], doc="original R-URI transport")
reg("oUl", _OU["ulen"], doc="length of the original R-URI user")


# ---- destination URI, next hop ---------------------------------------------------------------

def _duri(ctx: "RouteCtx") -> Optional[SipURI]:
    du = ctx.dst_uri
    if not du:
        return None
    try:
        return parse_uri(du)
    except ParseError:
        return None


def _get_du(ctx: "RouteCtx") -> PvValue:
    return ctx.dst_uri or None


def _set_du(ctx: "RouteCtx", value: PvValue) -> None:
    if value is None or value == "":
        ctx.dst_uri = None
        return
    ctx.dst_uri = _check_uri(to_str(value).strip(), "$du")


_DU = _uri_getters(_duri)
reg("du", _get_du, _set_du, aliases=("duri",), doc="destination URI ($null if unset)")
reg("dd", _DU["host"], doc="host of $du")
reg("dp", _DU["port"], doc="port of $du")
reg("dP", _DU["proto"], doc="transport of $du")


def _nexthop(ctx: "RouteCtx") -> Optional[SipURI]:
    return _duri(ctx) if ctx.dst_uri else _ruri(ctx)


def _nh_uri(ctx: "RouteCtx") -> PvValue:
    return ctx.dst_uri or ctx.msg.ruri or None


def _nh_protoid(ctx: "RouteCtx") -> PvValue:
    u = _nexthop(ctx)
    return PROTO_IDS.get(u.transport or "udp", 0) if u is not None else None


_NH = _uri_getters(_nexthop)
reg_attrs("nh", {"u": _nh_uri, "U": _NH["user"], "d": _NH["host"], "p": _NH["port"],
                 "P": _NH["proto"], "i": _nh_protoid}, doc="next hop: $du if set, else R-URI")


# ---- branches --------------------------------------------------------------------------------

def _get_br(ctx: "RouteCtx") -> PvValue:
    return ctx.branches[0].uri if ctx.branches else None


def _set_br(ctx: "RouteCtx", value: PvValue) -> None:
    from sipcore.route.ctx import Branch

    uri = _check_uri(_need_str(value, "$br").strip(), "$br")
    if ctx.branches:
        ctx.branches[0].uri = uri
    else:
        ctx.branches.append(Branch(uri=uri))


def _get_bR(ctx: "RouteCtx") -> PvValue:
    if not ctx.branches:
        return None
    return ", ".join(b.uri for b in ctx.branches)


def _q_text(q: int) -> str:
    """q in 0..1000 -> "0.5" style, as in a Contact q= parameter."""
    if q >= 1000:
        return "1"
    return ("0.%03d" % q).rstrip("0") if q > 0 else "0"


def _get_ds(ctx: "RouteCtx") -> PvValue:
    """Destination set as a Contact list: the R-URI, then every branch (Kamailio print_dset)."""
    items = []
    if ctx.msg.is_request and ctx.msg.ruri:
        items.append(f"<{ctx.msg.ruri}>")
    for b in ctx.branches:
        items.append(f"<{b.uri}>" + (f";q={_q_text(b.q)}" if b.q >= 0 else ""))
    return ", ".join(items) if items else None


reg("br", _get_br, _set_br, doc="URI of the first additional branch")
reg("bR", _get_bR, doc="all branch URIs, comma separated")
reg("ds", _get_ds, doc="destination set")


class BranchPv(PvSpec):
    """$(branch(attr)[i]): attributes of additional branch i (default 0)."""

    writable = True
    ATTRS = ("uri", "dst_uri", "path", "q", "send_socket", "count", "flags", "ruid",
             "location_ua", "instance", "otcpid")

    def __init__(self, attr: str, index: Optional[Index] = None) -> None:
        if attr not in self.ATTRS:
            raise PvError(f"unknown attribute $branch({attr}); expected one of "
                          f"{'|'.join(self.ATTRS)}")
        self.attr = attr
        self.index = index
        self.writable = attr not in ("count", "otcpid")

    def with_index(self, idx: Index) -> PvSpec:
        if idx.is_all:
            raise PvError("$branch does not take [*]")
        return BranchPv(self.attr, idx)

    def _branch(self, ctx: "RouteCtx") -> Any:
        i = 0 if self.index is None else self.index.resolve(ctx)
        return pick(ctx.branches, i)

    def get(self, ctx: "RouteCtx") -> PvValue:
        a = self.attr
        if a == "count":
            return len(ctx.branches)
        b = self._branch(ctx)
        if b is None:
            return None
        if a == "q":
            return b.q
        if a == "flags":
            return b.bflags
        if a == "send_socket":
            return str(b.force_socket) if b.force_socket is not None else None
        if a == "otcpid":
            return b.otcpid
        return getattr(b, a)

    def set(self, ctx: "RouteCtx", value: PvValue) -> None:
        if not self.writable:
            raise PvError(f"$branch({self.attr}) is read only")
        b = self._branch(ctx)
        if b is None:
            raise PvError(f"{self.text or '$branch'}: no such branch")
        a = self.attr
        if a == "uri":
            b.uri = _check_uri(_need_str(value, "$branch(uri)").strip(), "$branch(uri)")
        elif a == "q":
            b.q = -1 if value is None else _parse_q(value)
        elif a == "flags":
            b.bflags = 0 if value is None else int(value)
        elif a == "send_socket":
            from sipcore.pv.netpv import socket_from_value

            b.force_socket = socket_from_value(ctx, value)
        else:
            setattr(b, a, None if value in (None, "") else to_str(value))


def _parse_q(value: PvValue) -> int:
    """q as int 0..1000, or as text "0.5"."""
    if isinstance(value, int):
        q = value
    else:
        t = to_str(value).strip()
        try:
            q = int(round(float(t) * 1000)) if "." in t else int(t)
        except ValueError:
            raise PvError(f"invalid q value {t!r}") from None
    if not -1 <= q <= 1000:
        raise PvError(f"q value {q} out of range 0..1000")
    return q


registry.register("branch", lambda inner, _m: BranchPv((inner or "").strip()), Inner.REQUIRED,
                  doc="attributes of additional branches")


# ---- From / To -------------------------------------------------------------------------------

def _from(ctx: "RouteCtx") -> Optional[NameAddr]:
    try:
        return ctx.msg.from_
    except (ParseError, AttributeError):
        return None


def _to(ctx: "RouteCtx") -> Optional[NameAddr]:
    try:
        return ctx.msg.to
    except (ParseError, AttributeError):
        return None


def _display_of(key: str) -> Getter:
    """Display name of the first KEY header value, as written (Kamailio to_body.display)."""
    hkey = _hkey(key)

    def get(ctx: "RouteCtx") -> PvValue:
        vals = ctx.msg.header_values(hkey)
        return raw_display(vals[0]) if vals else None
    return get


def _na_getters(src: Callable[["RouteCtx"], Optional[NameAddr]]) -> dict[str, Getter]:
    def puri(ctx: "RouteCtx") -> Optional[SipURI]:
        na = src(ctx)
        if na is None:
            return None
        try:
            return na.parsed_uri
        except ParseError:
            return None

    def uri(ctx: "RouteCtx") -> PvValue:
        na = src(ctx)
        return na.uri if na is not None else None

    def user(ctx: "RouteCtx") -> PvValue:
        u = puri(ctx)
        return (u.user or None) if u is not None else None

    def host(ctx: "RouteCtx") -> PvValue:
        u = puri(ctx)
        return (u.host or None) if u is not None else None


    def tag(ctx: "RouteCtx") -> PvValue:
        na = src(ctx)
        return na.tag if na is not None else None

    def ulen(ctx: "RouteCtx") -> PvValue:
        u = puri(ctx)
        return len(u.user) if u is not None else 0

    return {"uri": uri, "user": user, "host": host, "tag": tag, "ulen": ulen}


def raw_display(value: str) -> Optional[str]:
    """The display name of a name-addr value exactly as written ('"Bob B"', 'Bob')."""
    from sipcore.pv.transforms import TrFail, raw_nameaddr

    try:
        return raw_nameaddr(value).name or None
    except TrFail:
        return None


def rewrite_nameaddr_header(ctx: "RouteCtx", hdr_name: str, *, uri: Optional[str] = None,
                            display: Optional[str] = None, drop_display: bool = False) -> None:
    """Replace the URI and/or display name of the first HDR_NAME header (From/To...).

    The header line is rebuilt as `Name: "display" <uri>;params` (params, including the tag,
    kept) and stored as an edit; reading the PV again returns the old value until the message
    is rebuilt, exactly as in Kamailio. Several writes to one header ($fU then $fd) combine:
    each starts from the text of the previous write, whose edit it supersedes.
    """
    msg = ctx.msg
    h, na = current_nameaddr(ctx, hdr_name)
    pending = PV.of(ctx).hdr_edits
    prev = pending.get(h.start)
    new_uri = na.uri if uri is None else uri
    new_disp = "" if drop_display else (na.display if display is None else display)
    disp = (quote(new_disp) + " ") if new_disp else ""
    new_value = f"{disp}<{new_uri}>{format_params(na.params)}"
    if prev is not None:
        _drop_edit(msg, prev[0])
    msg.replace_header(h, f"{h.name}: {new_value}")
    pending[h.start] = (_last_edit(msg), new_value)


def current_nameaddr(ctx: "RouteCtx", hdr_name: str) -> tuple[Any, NameAddr]:
    """(header, its name-addr) including our not-yet-applied writes to it."""
    h = ctx.msg.header(hdr_name)
    if h is None:
        raise PvError(f"the message has no {hdr_name} header")
    st = PV.peek(ctx)
    prev = st.hdr_edits.get(h.start) if st is not None else None
    if prev is not None and not _edit_pending(ctx.msg, prev[0]):
        prev = None                       # the edits were dropped (clear_lumps): start over
    try:
        return h, parse_nameaddr(prev[1] if prev is not None else h.value)
    except ParseError as e:
        raise PvError(f"cannot rewrite a malformed {hdr_name} header: {e}") from None


def _last_edit(msg: Any) -> Any:
    """The edit just recorded by replace_header() (an entry of the message's lump list)."""
    ops = getattr(getattr(msg, "lumps", None), "ops", None)
    return ops[-1] if ops else None


def _edit_pending(msg: Any, op: Any) -> bool:
    ops = getattr(getattr(msg, "lumps", None), "ops", None)
    return op is not None and ops is not None and op in ops


def _drop_edit(msg: Any, op: Any) -> None:
    """Withdraw an earlier header replacement of ours, so two writes do not emit two lines."""
    ops = getattr(getattr(msg, "lumps", None), "ops", None)
    if op is not None and ops is not None and op in ops:
        ops.remove(op)


def _uri_setters(hdr: str, pv: str) -> dict[str, Setter]:
    def cur_parts(ctx: "RouteCtx") -> UriParts:
        _h, na = current_nameaddr(ctx, hdr)
        try:
            return UriParts.from_uri(na.parsed_uri)
        except ParseError as e:
            raise PvError(f"cannot rewrite a malformed {hdr} URI: {e}") from None

    def set_uri(ctx: "RouteCtx", value: PvValue) -> None:
        v = _check_uri(_need_str(value, f"${pv}u").strip(), f"${pv}u")
        rewrite_nameaddr_header(ctx, hdr, uri=v)

    def set_user(ctx: "RouteCtx", value: PvValue) -> None:
        p = cur_parts(ctx)
        p.user = "" if value is None else to_str(value)
        if not p.user:
            p.password = None
        rewrite_nameaddr_header(ctx, hdr, uri=p.text())

    def set_host(ctx: "RouteCtx", value: PvValue) -> None:
        p = cur_parts(ctx)
        host = _need_str(value, f"${pv}d").strip()
        if not host:
            raise PvError(f"cannot set an empty {hdr} host")
        p.host = host
        rewrite_nameaddr_header(ctx, hdr, uri=p.text())

    def set_display(ctx: "RouteCtx", value: PvValue) -> None:
        d = "" if value is None else to_str(value)
        if len(d) >= 2 and d[0] == '"' and d[-1] == '"':
            d = d[1:-1]
        rewrite_nameaddr_header(ctx, hdr, display=d, drop_display=not d)

    return {"uri": set_uri, "user": set_user, "host": set_host, "display": set_display}


_F = _na_getters(_from)
_FS = _uri_setters("From", "f")
_T = _na_getters(_to)
_TS = _uri_setters("To", "t")
reg("fu", _F["uri"], _FS["uri"], aliases=("from",), doc="From URI")
reg("fU", _F["user"], _FS["user"], aliases=("from.user",), doc="From user")
reg("fd", _F["host"], _FS["host"], aliases=("from.domain",), doc="From host")
reg("fn", _display_of("From"), _FS["display"], doc="From display name as written")
reg("ft", _F["tag"], doc="From tag")
reg("fUl", _F["ulen"], doc="length of the From user")
reg("tu", _T["uri"], _TS["uri"], aliases=("to",), doc="To URI")
reg("tU", _T["user"], _TS["user"], aliases=("to.user",), doc="To user")
reg("td", _T["host"], _TS["host"], aliases=("to.domain",), doc="To host")
reg("tn", _display_of("To"), _TS["display"], doc="To display name as written")
reg("tt", _T["tag"], doc="To tag ($null if none)")
reg("tUl", _T["ulen"], doc="length of the To user")


# ---- first line, CSeq, Call-ID, well-known headers ------------------------------------------

def _hval(name: str) -> Getter:
    key = _hkey(name)

    def get(ctx: "RouteCtx") -> PvValue:
        h = ctx.msg.header(key)
        return h.value if h is not None else None
    return get


def _get_cs(ctx: "RouteCtx") -> PvValue:
    try:
        return ctx.msg.cseq.num
    except (ParseError, AttributeError):
        return None


def _get_rm(ctx: "RouteCtx") -> PvValue:
    try:
        return ctx.msg.method or None
    except ParseError:
        return None


def _get_rmid(ctx: "RouteCtx") -> PvValue:
    try:
        return ctx.msg.method_id
    except ParseError:
        return None


def _get_cl(ctx: "RouteCtx") -> PvValue:
    return ctx.msg.content_length


def _get_rs(ctx: "RouteCtx") -> PvValue:
    return ctx.msg.status if ctx.msg.is_reply else None


def _get_rr(ctx: "RouteCtx") -> PvValue:
    return ctx.msg.reason if ctx.msg.is_reply else None


def _status_line_span(ctx: "RouteCtx") -> tuple[int, int, int, int]:
    """Offsets of the status code and reason phrase in a reply's first line."""
    buf = ctx.msg.buf
    sp1 = buf.index(b" ")
    cs = sp1 + 1
    while buf[cs:cs + 1] == b" ":
        cs += 1
    ce = cs + 3
    eol = buf.index(b"\n")
    re_ = eol - 1 if buf[eol - 1:eol] == b"\r" else eol
    rs = ce + 1 if buf[ce:ce + 1] == b" " else ce
    return cs, ce, rs, re_


def _set_rs(ctx: "RouteCtx", value: PvValue) -> None:
    if not ctx.msg.is_reply:
        raise PvError("$rs can only be set for a reply")
    try:
        code = int(_need_str(value, "$rs").strip())
    except ValueError:
        raise PvError(f"invalid status code {value!r}") from None
    if not 100 <= code <= 699:
        raise PvError(f"status code {code} out of range 100..699")
    cs, ce, _rs, _re = _status_line_span(ctx)
    _replace_once(ctx, "rs", cs, ce, str(code).encode())


def _set_rr(ctx: "RouteCtx", value: PvValue) -> None:
    if not ctx.msg.is_reply:
        raise PvError("$rr can only be set for a reply")
    reason = _need_str(value, "$rr")
    if "\r" in reason or "\n" in reason:
        raise PvError("a reason phrase cannot contain line breaks")
    _cs, ce, rs, re_ = _status_line_span(ctx)
    data = reason.encode("utf-8", "surrogateescape")
    _replace_once(ctx, "rr", rs, re_, data if rs > ce else b" " + data)


def _replace_once(ctx: "RouteCtx", key: str, start: int, end: int, data: bytes) -> None:
    """replace_range() that supersedes our previous edit of the same span (KEY: which span,
    in the message's PV state)."""
    edits = PV.of(ctx).span_edits
    _drop_edit(ctx.msg, edits.get(key))
    ctx.msg.replace_range(start, end, data)
    edits[key] = _last_edit(ctx.msg)


def _get_rv(ctx: "RouteCtx") -> PvValue:
    return ctx.msg.version or None


def _get_mb(ctx: "RouteCtx") -> PvValue:
    return ctx.msg.buf.decode("utf-8", "replace")


def _get_mbu(ctx: "RouteCtx") -> PvValue:
    return ctx.msg.build().decode("utf-8", "replace")


def _get_ml(ctx: "RouteCtx") -> PvValue:
    return len(ctx.msg.buf)


def _get_rb(ctx: "RouteCtx") -> PvValue:
    body = ctx.msg.body
    return body.decode("utf-8", "replace") if body else None


def _get_bs(ctx: "RouteCtx") -> PvValue:
    return len(ctx.msg.body or b"")


def _get_mt(ctx: "RouteCtx") -> PvValue:
    return 1 if ctx.msg.is_request else 2


def _get_mts(ctx: "RouteCtx") -> PvValue:
    return "rq" if ctx.msg.is_request else "rp"


reg("ci", _hval("Call-ID"), doc="Call-ID")
reg("cs", _get_cs, doc="CSeq number")
reg("csb", _hval("CSeq"), doc="CSeq body")
reg("rm", _get_rm, doc="method (from CSeq for replies)")
reg("rmid", _get_rmid, doc="method id bit")
reg("ct", _hval("Contact"), doc="body of the first Contact header")
reg("cT", _hval("Content-Type"), doc="Content-Type")
reg("cl", _get_cl, doc="Content-Length")
reg("ua", _hval("User-Agent"), doc="User-Agent")
reg("rs", _get_rs, _set_rs, doc="reply status code")
reg("rr", _get_rr, _set_rr, doc="reply reason phrase")
reg("rv", _get_rv, doc="SIP version")
reg("mb", _get_mb, doc="message buffer as received")
reg("mbu", _get_mbu, doc="message buffer with pending changes")
reg("ml", _get_ml, doc="message length")
reg("rb", _get_rb, doc="message body")
reg("bs", _get_bs, doc="body size")
reg("mt", _get_mt, doc="message type: 1 request, 2 reply")
reg("mts", _get_mts, doc="message type as text")


def _first_nameaddr(name: str) -> Callable[["RouteCtx"], Optional[NameAddr]]:
    key = _hkey(name)

    def get(ctx: "RouteCtx") -> Optional[NameAddr]:
        vals = ctx.msg.header_values(key)
        if not vals:
            return None
        try:
            return parse_nameaddr(vals[0])
        except ParseError:
            return None
    return get


def _na_param(src: Callable[["RouteCtx"], Optional[NameAddr]], param: str) -> Getter:
    def get(ctx: "RouteCtx") -> PvValue:
        na = src(ctx)
        return na.param(param) if na is not None else None
    return get


_PAI = _na_getters(_first_nameaddr("P-Asserted-Identity"))
_PPI = _na_getters(_first_nameaddr("P-Preferred-Identity"))
_RPID = _na_getters(_first_nameaddr("Remote-Party-ID"))
_DIV_SRC = _first_nameaddr("Diversion")
_DIV = _na_getters(_DIV_SRC)
_REFER = _na_getters(_first_nameaddr("Refer-To"))
reg("ai", _PAI["uri"], doc="P-Asserted-Identity URI")
reg("pu", _PPI["uri"], doc="P-Preferred-Identity URI")
reg("pU", _PPI["user"], doc="P-Preferred-Identity user")
reg("pd", _PPI["host"], doc="P-Preferred-Identity host")
reg("pn", _display_of("P-Preferred-Identity"), doc="P-Preferred-Identity display name")
reg("re", _RPID["uri"], doc="Remote-Party-ID URI")
reg("di", _DIV["uri"], doc="Diversion URI")
reg("dir", _na_param(_DIV_SRC, "reason"), doc="Diversion reason")
reg("dip", _na_param(_DIV_SRC, "privacy"), doc="Diversion privacy")
reg("dic", _na_param(_DIV_SRC, "counter"), doc="Diversion counter")
reg("rt", _REFER["uri"], doc="Refer-To URI")


_CONTACT = _hkey("Contact")


def _expires(pick_fn: Callable[[list[int]], int]) -> Getter:
    def get(ctx: "RouteCtx") -> PvValue:
        msg = ctx.msg
        vals: list[int] = []
        try:
            hexp = msg.expires
        except ParseError:
            hexp = None
        try:
            contacts = list(msg.contacts) if msg.header(_CONTACT) is not None else []
        except ParseError:
            contacts = []
        for c in contacts:
            e = c.param("expires")
            if e is not None and e.strip().isdigit():
                vals.append(int(e))
            elif hexp is not None:
                vals.append(hexp)
        if not contacts and hexp is not None:
            vals.append(hexp)
        return pick_fn(vals) if vals else None
    return get


reg_attrs("expires", {"min": _expires(min), "max": _expires(max)},
          doc="min/max expires of Contact params and Expires header")


# ---- $hdr / $hdrc / $hfl / $hflc ----------------------------------------------------------------

# Headers whose values are comma-separated lists of items that $hfl walks one by one.
_LIST_TYPES = frozenset(_NAME_MAP[n] for n in ("via", "contact", "route", "record-route"))


def canonical_header_name(name: str) -> tuple[str, int]:
    """("v" -> ("Via", VIA id)); unknown names stay as written with id 0."""
    tid = _NAME_MAP.get(name.strip().lower(), 0)
    return (HDR_TABLE[tid][1] if tid else name.strip()), tid


def _hdr_name(inner: Optional[str]) -> str:
    n = (inner or "").strip()
    if not n or any(c in n for c in " \t:\r\n"):
        raise PvError(f"invalid header name {inner!r}")
    return n


class HdrPv(PvSpec):
    """$hdr(Name), $(hdr(Name)[i]), $(hdr(Name)[*]); Name `*` = any header."""

    def __init__(self, name: str, index: Optional[Index] = None, items: bool = False) -> None:
        self.name, self.tid = canonical_header_name(name)
        self.key: Any = self.tid or self.name     # type id is the fast lookup
        self.index = index
        # $hfl: walk the comma-separated items of list headers instead of header lines
        self.items = items and self.tid in _LIST_TYPES

    def with_index(self, idx: Index) -> PvSpec:
        spec = HdrPv(self.name, idx, self.items)
        spec.text = self.text
        return spec

    def _values(self, ctx: "RouteCtx", items: bool) -> list[str]:
        msg = ctx.msg
        if self.name == "*":
            return [h.value for h in msg.headers]
        if items:
            return msg.header_values(self.key)
        return [h.value for h in msg.header_all(self.key)]

    def get(self, ctx: "RouteCtx") -> PvValue:
        if self.index is None:
            if self.name == "*":
                hs = ctx.msg.headers
                return hs[0].value if hs else None
            if self.items:
                vals = ctx.msg.header_values(self.key)
                return vals[0] if vals else None
            h = ctx.msg.header(self.key)
            return h.value if h is not None else None
        idx = self.index.resolve(ctx)
        if idx == ALL:
            # [*]: every header line joined with "," (also for $hfl, as in Kamailio)
            vals = self._values(ctx, False)
            return ",".join(vals) if vals else None
        return pick(self._values(ctx, self.items), idx)

    def count(self, ctx: "RouteCtx") -> int:
        return len(self._values(ctx, self.items))


class HdrCountPv(PvSpec):
    def __init__(self, name: str, items: bool = False) -> None:
        self.hdr = HdrPv(name, None, items)

    def get(self, ctx: "RouteCtx") -> PvValue:
        return self.hdr.count(ctx)


registry.register("hdr", lambda inner, _m: HdrPv(_hdr_name(inner)), Inner.REQUIRED,
                  dyn_name=True, doc="header body by name")
registry.register("hdrc", lambda inner, _m: HdrCountPv(_hdr_name(inner)), Inner.REQUIRED,
                  dyn_name=True, doc="number of headers with that name")
registry.register("hfl", lambda inner, _m: HdrPv(_hdr_name(inner), items=True),
                  Inner.REQUIRED, dyn_name=True, doc="header body items (Via, Contact, Route...)")
registry.register("hflc", lambda inner, _m: HdrCountPv(_hdr_name(inner), items=True),
                  Inner.REQUIRED, dyn_name=True, doc="number of header body items")


# ---- $via0 / $via1 / $viaZ -------------------------------------------------------------------

def _via_getters(which: Callable[["RouteCtx"], Any]) -> dict[str, Getter]:
    def attr(fn: Callable[[Any], PvValue]) -> Getter:
        def get(ctx: "RouteCtx") -> PvValue:
            try:
                v = which(ctx)
            except ParseError:
                return None
            return fn(v) if v is not None else None
        return get

    return {
        "host": attr(lambda v: v.host),
        "port": attr(lambda v: v.port or 5060),
        "proto": attr(lambda v: v.proto),
        "protoid": attr(lambda v: PROTO_IDS.get(v.transport, 0)),
        "branch": attr(lambda v: v.branch),
        "received": attr(lambda v: v.received),
        "rport": attr(lambda v: v.rport),
        "i": attr(lambda v: v.param("i")),
        "params": attr(lambda v: format_params(v.params).lstrip(";") or None),
    }


def _via_n(n: int) -> Callable[["RouteCtx"], Any]:
    def which(ctx: "RouteCtx") -> Any:
        vias = ctx.msg.vias
        return vias[n] if -len(vias) <= n < len(vias) else None
    return which


reg_attrs("via0", _via_getters(_via_n(0)), doc="attributes of the first Via")
reg_attrs("via1", _via_getters(_via_n(1)), doc="attributes of the second Via")
reg_attrs("viaZ", _via_getters(_via_n(-1)), doc="attributes of the last Via")


# ---- $msg(attr) -----------------------------------------------------------------------------

def _hdrs_span(ctx: "RouteCtx") -> tuple[int, int, int]:
    """(end of first line, start of body, end) offsets in the buffer."""
    buf = ctx.msg.buf
    fl_end = buf.index(b"\n") + 1
    sep = buf.find(b"\r\n\r\n")
    body = sep + 4 if sep >= 0 else (buf.find(b"\n\n") + 2 if b"\n\n" in buf else len(buf))
    return fl_end, body, len(buf)


def _msg_part(fn: Callable[[bytes, tuple[int, int, int]], PvValue]) -> Getter:
    def get(ctx: "RouteCtx") -> PvValue:
        buf = ctx.msg.buf
        return fn(buf, _hdrs_span(ctx))
    return get


def _dec(b: bytes) -> str:
    return b.decode("utf-8", "replace")


reg_attrs("msg", {
    "len": lambda ctx: len(ctx.msg.buf),
    "buf": _get_mb,
    "body": lambda ctx: _dec(ctx.msg.body or b""),
    "body_len": _get_bs,
    "hdrs": _msg_part(lambda b, s: _dec(b[s[0]:s[1]])),
    "hdrs_len": _msg_part(lambda b, s: s[1] - s[0]),
    "hdrc": lambda ctx: len(ctx.msg.headers),
    "fline": _msg_part(lambda b, s: _dec(b[:s[0]]).rstrip("\r\n")),
    "fpart": _msg_part(lambda b, s: _dec(b[:s[1]])),
    "lpart": _msg_part(lambda b, s: _dec(b[s[0]:])),
}, doc="parts of the raw message")


# ---- $msgbuf(i): one byte of the received buffer ----------------------------------------------

class MsgBufPv(PvSpec):
    """$msgbuf(i): the character at offset I; assigning replaces that one byte (an edit)."""

    writable = True

    def __init__(self, inner: Optional[str]) -> None:
        try:
            self.offset = int((inner or "").strip())
        except ValueError:
            raise PvError(f"$msgbuf needs a byte offset, got {inner!r}") from None
        if self.offset < 0:
            raise PvError("$msgbuf offset must not be negative")

    def get(self, ctx: "RouteCtx") -> PvValue:
        buf = ctx.msg.buf
        return chr(buf[self.offset]) if self.offset < len(buf) else None

    def set(self, ctx: "RouteCtx", value: PvValue) -> None:
        data = _need_str(value, "$msgbuf").encode("utf-8", "surrogateescape")
        if len(data) != 1:
            raise PvError("$msgbuf takes exactly one character")
        if self.offset >= len(ctx.msg.buf):
            raise PvError(f"$msgbuf({self.offset}) is past the end of the message")
        _replace_once(ctx, f"msgbuf:{self.offset}", self.offset, self.offset + 1, data)


registry.register("msgbuf", lambda inner, _m: MsgBufPv(inner), Inner.REQUIRED,
                  doc="one byte of the message buffer")


# ---- credentials ($au ...) ---------------------------------------------------------------------

_AUTH = _hkey("Authorization")
_PROXY_AUTH = _hkey("Proxy-Authorization")


def _creds(ctx: "RouteCtx") -> Any:
    msg = ctx.msg
    # Kamailio: REGISTER/PUBLISH carry Authorization, everything else Proxy-Authorization.
    h = msg.header(_AUTH if msg.method in ("REGISTER", "PUBLISH") else _PROXY_AUTH)
    if h is None:
        return None
    try:
        return parse_digest(h.value)
    except ParseError:
        return None


def _cred(field: str, part: Optional[str] = None) -> Getter:
    def get(ctx: "RouteCtx") -> PvValue:
        c = _creds(ctx)
        if c is None:
            return None
        v = getattr(c, field, None)
        if v is None or part is None:
            return v
        user, at, dom = v.partition("@")
        if part == "user":
            return user
        return dom if at else c.realm
    return get


reg("au", _cred("username", "user"), doc="auth username, user part")
reg("aU", _cred("username"), doc="auth username as sent")
reg("ad", _cred("username", "domain"), doc="auth username domain (or realm)")
reg("ar", _cred("realm"), doc="auth realm")
reg("adu", _cred("uri"), doc="digest uri")
reg("aa", _cred("algorithm"), doc="digest algorithm")
reg("adn", _cred("nonce"), doc="digest nonce")
reg("adc", _cred("cnonce"), doc="digest cnonce")
reg("adr", _cred("response"), doc="digest response")
reg("ado", _cred("opaque"), doc="digest opaque")
