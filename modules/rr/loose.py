"""Route header processing: loose and strict routing (RFC 3261 16.4, 16.12; Kamailio
rr/loose.c after_loose / after_strict / handle_sr).

Runs in: SIP workers. Per-message state only: the params of our own Route URI are kept in
the message's rr slot for check_route_param() and is_direction() (Kamailio's routed_params
hook).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from sipcore.errors import ParseError
from sipcore.msg.spans import value_spans
from sipcore.route.ruri import params_text

from .state import RR

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg import Header, NameAddr, SipURI
    from sipcore.net.addr import SocketInfo
    from sipcore.route.ctx import RouteCtx

RR_DRIVEN = 1
RR_OB_DRIVEN = 2
RR_ERROR = -1
RR_NOT_DRIVEN = -1
RR_FLOW_TOKEN_BROKEN = -2
RR_PRELOADED = -3



@dataclass
class RouteEntry:
    """One Route value: the header line it sits in and its raw text."""

    hdr: "Header"
    text: str
    na: "NameAddr"

    @property
    def uri(self) -> str:
        return self.na.uri


def route_set(ctx: "RouteCtx") -> list[RouteEntry]:
    from sipcore.msg import HdrType, parse_nameaddr

    buf = ctx.msg.buf
    out: list[RouteEntry] = []
    for h in ctx.msg.header_all(HdrType.ROUTE):
        for s, e in value_spans(buf, h.value_start, h.value_end, angle=True):
            part = buf[s:e].decode("utf-8", "surrogateescape")
            out.append(RouteEntry(h, part, parse_nameaddr(part)))
    return out


class RouteEdit:
    """Removals from the Route set plus an optional appended Route, applied once."""

    def __init__(self, entries: list[RouteEntry]) -> None:
        self.entries = entries
        self.removed: set[int] = set()
        self.append: Optional[str] = None

    def apply(self, ctx: "RouteCtx") -> None:
        msg = ctx.msg
        headers: list["Header"] = []
        for e in self.entries:
            if not any(e.hdr is h for h in headers):
                headers.append(e.hdr)
        for h in headers:
            idx = [i for i, e in enumerate(self.entries) if e.hdr is h]
            if not any(i in self.removed for i in idx):
                continue
            keep = [self.entries[i].text for i in idx if i not in self.removed]
            if keep:
                msg.replace_header(h, f"{h.name}: {', '.join(keep)}")
            else:
                msg.remove_header(h)
        if self.append is not None:
            msg.add_header(f"Route: <{self.append}>", after=headers[-1])
        RR.of(ctx).next_hop_route = (len(self.entries) - len(self.removed)
                                     + (1 if self.append is not None else 0)) > 0


def is_myself(ctx: "RouteCtx", uri: "SipURI") -> bool:
    """Kamailio rr is_myself(): host and port (default 5060) local, any protocol; a GRUU
    (;gr) is never us."""
    if uri.param("gr") is not None:
        return False
    return ctx.core.is_myself(uri.host, uri.port or 5060, None)


def is_strict(uri: "SipURI") -> bool:
    return uri.param("lr") is None


def is_2rr(uri: "SipURI") -> bool:
    return uri.param("r2") is not None


def socket_of(ctx: "RouteCtx", uri: "SipURI", sockname_mode: bool) -> Optional["SocketInfo"]:
    """The local socket a Route URI of ours names (sn= param, else host/port/transport)."""
    from sipcore.net.sockspec import SocketSpec, find_socket, find_socket_by_name

    if sockname_mode:
        name = uri.param("sn")
        if name:
            return find_socket_by_name(ctx.core, name)
    proto = uri.transport or None
    if uri.scheme.lower() == "sips" and proto is None:
        proto = "tls"
    host = uri.host[1:-1] if uri.host.startswith("[") else uri.host
    return find_socket(ctx.core, SocketSpec(proto, host, uri.port or None))


@dataclass
class RRSettings:
    double_rr: bool
    force_send_socket: bool
    sockname_mode: bool
    socket_mismatch_warning: bool


def _force_socket(ctx: "RouteCtx", uri: "SipURI", st: RRSettings, second: bool) -> None:
    sock = socket_of(ctx, uri, st.sockname_mode)
    if sock is not None:
        ctx.force_socket = sock
    elif second and st.socket_mismatch_warning:
        log.warning("rr: no socket found to match second RR (%s)", uri.raw)


def loose_route(ctx: "RouteCtx", st: RRSettings, mode: int = 0) -> int:
    """loose_route() / loose_route_mode(MODE): 1 routed, -1 no Route or error, -3 preloaded
    Route set that held only us."""
    rst = RR.peek(ctx)
    if rst is not None:
        rst.routed_params = None
    msg = ctx.msg
    try:
        entries = route_set(ctx)
    except ParseError as exc:
        log.error("rr: failed to parse Route header: %s", exc)
        return RR_ERROR
    if not entries:
        return RR_NOT_DRIVEN
    try:
        ruri = msg.parsed_ruri
        preloaded = msg.to_tag is None
    except ParseError as exc:
        log.error("rr: failed to parse the request: %s", exc)
        return RR_ERROR
    if preloaded:
        return after_loose(ctx, entries, st, True)
    if mode == 0 and is_myself(ctx, ruri):
        return after_strict(ctx, entries, st)
    return after_loose(ctx, entries, st, False)


def _parse(ctx: "RouteCtx", e: RouteEntry, what: str) -> Optional["SipURI"]:
    try:
        return e.na.parsed_uri
    except ParseError as exc:
        log.error("rr: failed to parse the %s route URI (%s): %s", what, e.uri, exc)
        return None


def after_loose(ctx: "RouteCtx", entries: list[RouteEntry], st: RRSettings,
                preloaded: bool) -> int:
    """The previous hop was a loose router: drop our Route URI(s), next hop = next Route."""
    edit = RouteEdit(entries)
    puri = _parse(ctx, entries[0], "first")
    if puri is None:
        return RR_ERROR
    i = 0
    if is_myself(ctx, puri):
        RR.of(ctx).routed_params = params_text(puri.params)
        if st.force_send_socket and not (st.double_rr and is_2rr(puri)):
            _force_socket(ctx, puri, st, False)
        edit.removed.add(0)
        i = 1
        if i < len(entries) and st.double_rr and is_2rr(puri):
            second = _parse(ctx, entries[1], "double")
            if second is None:
                return RR_ERROR
            _force_socket(ctx, second, st, True)
            edit.removed.add(1)
            i = 2
        if i >= len(entries):
            edit.apply(ctx)
            return RR_PRELOADED if preloaded else RR_DRIVEN
        nxt = _parse(ctx, entries[i], "next")
        if nxt is None:
            return RR_ERROR
    else:
        nxt = puri
    if is_strict(nxt):
        handle_sr(ctx, edit, i)
    else:
        ctx.dst_uri = entries[i].uri
    edit.apply(ctx)
    return RR_DRIVEN


def handle_sr(ctx: "RouteCtx", edit: RouteEdit, i: int) -> None:
    """Next hop is a strict router: the R-URI goes to the end of the Route set, the next
    Route URI becomes the R-URI and leaves the Route set (RFC 3261 16.12)."""
    msg = ctx.msg
    edit.append = msg.ruri
    msg.set_ruri(edit.entries[i].uri)
    edit.removed.add(i)


def after_strict(ctx: "RouteCtx", entries: list[RouteEntry], st: RRSettings) -> int:
    """The previous hop was a strict router: the R-URI is our (Record-)Route URI. The top
    Route is the next hop; if that is a loose router, the last Route URI (the original
    R-URI saved by the strict router) goes back into the R-URI."""
    msg = ctx.msg
    edit = RouteEdit(entries)
    RR.of(ctx).routed_params = params_text(msg.parsed_ruri.params)
    i = 0
    puri = _parse(ctx, entries[0], "first")
    if puri is None:
        return RR_ERROR
    if st.double_rr and is_2rr(puri) and is_myself(ctx, puri):
        _force_socket(ctx, puri, st, True)
        edit.removed.add(0)
        i = 1
        if i >= len(entries):
            log.error("rr: only one route in 2rr")
            edit.apply(ctx)
            return RR_DRIVEN
        puri = _parse(ctx, entries[i], "next")
        if puri is None:
            return RR_ERROR
    if is_strict(puri):
        # next hop strict too (or the endpoint): behave as a strict router
        msg.set_ruri(entries[i].uri)
        edit.removed.add(i)
    else:
        ctx.dst_uri = entries[i].uri
        last = len(entries) - 1
        if last > i:
            msg.set_ruri(entries[last].uri)
            edit.removed.add(last)
    edit.apply(ctx)
    return RR_DRIVEN


def routed_params(ctx: "RouteCtx") -> Optional[str]:
    rst = RR.peek(ctx)
    return rst.routed_params if rst is not None else None


def route_param(ctx: "RouteCtx", name: str) -> tuple[bool, Optional[str]]:
    """(found, value) of param NAME of our Route URI (after loose_route)."""
    params = routed_params(ctx)
    if not params:
        return False, None
    from sipcore.msg import parse_params

    for n, v in parse_params(params):
        if n.lower() == name.lower():
            return True, v
    return False, None
