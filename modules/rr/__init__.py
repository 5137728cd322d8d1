"""rr: Record-Route insertion and Route processing (RFC 3261 16.6 step 4, 16.12; RFC 5658
double Record-Route).

Runs in: SIP workers. Shared state: none; everything lives on the RouteCtx (the RR lines are
send-time lumps rendered for the outgoing socket, see sipcore.route.sendlumps).
Kamailio equivalent: modules/rr (rr_mod.c, record.c, loose.c).
Not supported (as in a Kamailio build without outbound): RFC 5626 flow tokens, so
loose_route() never returns 2 or -2.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Optional

from modules.rr import loose, record
from modules.rr.state import RR
from sipcore.errors import ParseError
from sipcore.mod import ANY_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE, REQUEST_ROUTE, Custom, Fx, Module
from sipcore.route.ctx import RouteCtx

log = logging.getLogger(__name__)

mod = Module("rr", summary="Record-Route and Route header processing (RFC 3261 16.6, 16.12).")

RBF = REQUEST_ROUTE | BRANCH_ROUTE | FAILURE_ROUTE

mod.param("enable_full_lr", int, 0, doc="Write ;lr=on instead of ;lr.")
mod.param("append_fromtag", int, 1, doc="Add ftag=<From-tag> to the RR URI (is_direction).")
mod.param("enable_double_rr", int, 1,
          doc="1: two RRs when the in/out socket or protocol differ; 2: always two.")
mod.param("add_username", int, 0, doc="Put the R-URI user into the RR URI.")
mod.param("enable_socket_mismatch_warning", int, 1,
          doc="Warn when the second RR of a double RR is not a local socket.")
mod.param("custom_user_avp", str, None, doc="AVP used as RR user when add_username=1.")
mod.param("force_send_socket", int, 0,
          doc="On loose routing, send from the socket our (single) Route URI names.")
mod.param("ignore_sips", int, 0, doc="Always build RR with sip:.")
mod.param("sockname_mode", int, 0, doc="Put the socket name into the sn RR param.")


def _cfg() -> record.RRConfig:
    p = mod.p
    return record.RRConfig(full_lr=bool(p.enable_full_lr), append_fromtag=bool(p.append_fromtag),
                           double_rr=int(p.enable_double_rr), add_username=bool(p.add_username),
                           custom_user_avp=p.custom_user_avp, ignore_sips=bool(p.ignore_sips),
                           sockname_mode=bool(p.sockname_mode))


def _settings() -> loose.RRSettings:
    p = mod.p
    return loose.RRSettings(double_rr=bool(p.enable_double_rr),
                            force_send_socket=bool(p.force_send_socket),
                            sockname_mode=bool(p.sockname_mode),
                            socket_mismatch_warning=bool(p.enable_socket_mismatch_warning))


def _request_only(ctx: RouteCtx, what: str) -> bool:
    if not ctx.msg.is_request:
        log.error("%s: only requests can be record-routed", what)
        return False
    return True


# ---- Route processing ----------------------------------------------------------------------

@mod.function("loose_route", args=(), routes=REQUEST_ROUTE)
def ki_loose_route(ctx: RouteCtx) -> int:
    """Process the Route set: drop our Route URI(s), next hop into $du (loose) or R-URI
    (strict). 1 routed, -1 no Route/failure, -3 preloaded Route set that held only us."""
    return loose.loose_route(ctx, _settings(), 0)


@mod.function("loose_route_mode", args=(Fx.IGP,), routes=REQUEST_ROUTE)
def ki_loose_route_mode(ctx: RouteCtx, vmode: int) -> int:
    """vmode 1: loose routing only (no R-URI==myself strict-routing test)."""
    return loose.loose_route(ctx, _settings(), 1 if vmode & 1 else 0)


@mod.function("loose_route_preloaded", args=(), routes=REQUEST_ROUTE)
def ki_loose_route_preloaded(ctx: RouteCtx) -> int:
    """Like loose_route(), but 1 only for a preloaded Route set (initial request)."""
    try:
        preloaded = ctx.msg.to_tag is None
    except ParseError:
        return -1
    if not preloaded:
        return -1
    rc = loose.loose_route(ctx, _settings(), 0)
    return 1 if rc in (loose.RR_DRIVEN, loose.RR_PRELOADED) else -1


@mod.function("rr_next_hop_route", args=(), routes=ANY_ROUTE)
def ki_rr_next_hop_route(ctx: RouteCtx) -> int:
    """1 if a Route header remains for the next hop (after loose_route), else -1."""
    st = RR.peek(ctx)
    if st is not None and st.next_hop_route is not None:
        return 1 if st.next_hop_route else -1
    from sipcore.msg import HdrType

    return 1 if ctx.msg.header(HdrType.ROUTE) is not None else -1


@mod.function("check_route_param", args=(Fx.REGEX,), routes=REQUEST_ROUTE)
def ki_check_route_param(ctx: RouteCtx, rx: "re.Pattern[str]") -> int:
    """After loose_route: 1 if RX matches the params of our Route URI (";lr;ftag=..")."""
    params = loose.routed_params(ctx)
    if not params:
        return -1
    return 1 if rx.search(params) else -1


def _direction(text: str) -> str:
    t = text.strip().lower()
    if t not in ("upstream", "downstream"):
        raise ValueError(f"is_direction: \"{text}\" (upstream or downstream expected)")
    return t


@mod.function("is_direction", args=(Custom(_direction, dynamic=True, name="direction"),),
              routes=REQUEST_ROUTE)
def ki_is_direction(ctx: RouteCtx, direction: str) -> int:
    """After loose_route: downstream when the From-tag equals our Route's ftag (the request
    goes the way the dialog-creating request went), upstream otherwise."""
    if not mod.p.append_fromtag:
        log.error("is_direction() requires the append_fromtag parameter enabled")
        return -1
    found, ftag = loose.route_param(ctx, "ftag")
    flow = "downstream"
    if found and ftag:
        try:
            tag = ctx.msg.from_tag
        except ParseError:
            tag = None
        if tag and tag != ftag:
            flow = "upstream"
    return 1 if flow == direction else -1


# ---- Record-Route ---------------------------------------------------------------------------

@mod.function("record_route", args=(), routes=RBF)
def ki_record_route(ctx: RouteCtx) -> int:
    """Add Record-Route (two when the request leaves by another socket/protocol)."""
    return _record_route(ctx, "")


@mod.function("record_route", args=(Fx.SPVE,), routes=RBF, kemi_name="record_route_params")
def ki_record_route_params(ctx: RouteCtx, params: str) -> int:
    """Add Record-Route with PARAMS (";a=b") appended to its URI."""
    return _record_route(ctx, params)


def _record_route(ctx: RouteCtx, params: str) -> int:
    if not _request_only(ctx, "record_route"):
        return -1
    record.add(ctx, record.new_record_route(ctx, _cfg(), params))
    return 1


@mod.function("record_route_preset", args=(Fx.SPVE,), routes=RBF)
def ki_record_route_preset(ctx: RouteCtx, addr: str) -> int:
    """Add Record-Route with ADDR ("host[:port][;params]" or a full URI)."""
    return _preset(ctx, addr, None)


@mod.function("record_route_preset", args=(Fx.SPVE, Fx.SPVE), routes=RBF,
              kemi_name="record_route_preset_double")
def ki_record_route_preset_double(ctx: RouteCtx, addr: str, addr2: str) -> int:
    """Add two Record-Routes (double RR, both with ;r2=on): ADDR on top, then ADDR2."""
    return _preset(ctx, addr, addr2)


def _preset(ctx: RouteCtx, addr: str, addr2: Optional[str]) -> int:
    if not _request_only(ctx, "record_route_preset"):
        return -1
    if not addr.strip():
        log.error("record_route_preset: empty address")
        return -1
    rr = record.new_record_route(ctx, _cfg())
    rr.preset = (addr, addr2)
    if mod.p.enable_socket_mismatch_warning:
        _warn_if_not_local(ctx, addr)
    record.add(ctx, rr)
    return 1


def _warn_if_not_local(ctx: RouteCtx, addr: str) -> None:
    from sipcore.msg import parse_uri

    text = addr if addr.startswith(("sip:", "sips:")) else "sip:" + addr
    try:
        uri = parse_uri(text)
    except ParseError:
        return
    if not ctx.core.is_myself(uri.host, uri.port or None):
        log.warning('record_route_preset: "%s" is not a local address', addr)


@mod.function("record_route_advertised_address", args=(Fx.SPVE,), routes=RBF)
def ki_record_route_advertised_address(ctx: RouteCtx, addr: str) -> int:
    """Add Record-Route naming ADDR ("host[:port]") instead of the socket address."""
    if not _request_only(ctx, "record_route_advertised_address"):
        return -1
    rr = record.new_record_route(ctx, _cfg())
    rr.advertised = addr.strip()
    record.add(ctx, rr)
    return 1


@mod.function("remove_record_route", args=(), routes=REQUEST_ROUTE | FAILURE_ROUTE)
def ki_remove_record_route(ctx: RouteCtx) -> int:
    """Undo the record_route*() calls made for this message."""
    record.remove_all(ctx)
    return 1


@mod.function("add_rr_param", args=(Fx.SPVE,), routes=RBF)
def ki_add_rr_param(ctx: RouteCtx, param: str) -> int:
    """Add ";name=value" to our Record-Route URI (before or after record_route())."""
    if not param.strip():
        return -1
    record.add_param(ctx, param.strip())
    return 1


# ---- $route_uri -----------------------------------------------------------------------------

def _route_uri_pv(inner: Optional[str]) -> Any:
    from sipcore.pv.spec import FuncPv

    if inner:
        raise ValueError("$route_uri takes no inner name")

    def get(ctx: RouteCtx) -> Optional[str]:
        try:
            routes = ctx.msg.routes
        except ParseError:
            return None
        return routes[0].uri if routes else None

    return FuncPv(get, text="$route_uri")


mod.pv("route_uri", _route_uri_pv, doc="URI of the top Route header.")


class RRApi:
    """API for other modules (Kamailio rr_binds): record-route and route params."""

    @staticmethod
    def record_route(ctx: RouteCtx, params: str = "") -> int:
        return _record_route(ctx, params)

    @staticmethod
    def loose_route(ctx: RouteCtx) -> int:
        return loose.loose_route(ctx, _settings(), 0)

    @staticmethod
    def get_route_param(ctx: RouteCtx, name: str) -> tuple[bool, Optional[str]]:
        return loose.route_param(ctx, name)

    @staticmethod
    def is_direction(ctx: RouteCtx, direction: str) -> int:
        return ki_is_direction(ctx, direction)


mod.provides_api(RRApi())
