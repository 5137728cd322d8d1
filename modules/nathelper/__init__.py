"""nathelper: NAT detection and traversal helpers, and NAT keepalives for usrloc contacts.

Runs in: SIP workers (functions; absorbing replies to SIP pings), the timer process (the
natping job every natping_interval seconds), the ctl process (nathelper.enable_ping), the
master (mod_init: shm state, timer registration, usrloc binding check).
Shared state: the shm table "nathelper:state" (ping enable flag); usrloc's domains are read
through its API. Everything else is per message (edit lumps, the NH message slot).

Kamailio equivalent: modules/nathelper (nathelper.c, nhelpr_funcs.c). Return codes follow it;
see docs/modules/nathelper.md for what is not supported.
"""
from __future__ import annotations

from typing import Any

from sipcore.errors import ModuleError, RpcFault
from sipcore.mod import (
    ANY_ROUTE,
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    Fx,
    ModContext,
    Module,
)
from sipcore.pv import PvSpec
from sipcore.route.ctx import RouteCtx
from sipcore.shm import ShmHashTable

from . import natping
from . import nh_funcs as nf

mod = Module("nathelper", summary="NAT detection, Contact/SDP fixing and NAT keepalives.")

RFOB = REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE | BRANCH_ROUTE
RBF = REQUEST_ROUTE | BRANCH_ROUTE | FAILURE_ROUTE

mod.param("natping_interval", int, 0,
          doc="Seconds between NAT pings of usrloc contacts (0: no pinging).")
mod.param("ping_nated_only", int, 0,
          doc="1: ping only contacts marked with usrloc's nat_bflag.")
mod.param("natping_processes", int, 1,
          doc="Kamailio's pinger process count; accepted (>= 1), pings run in the timer "
              "process.")
mod.param("natping_socket", str, None,
          doc="Local socket \"proto:ip:port\" the pings are sent from.")
mod.param("force_socket", str, None, doc="Deprecated name of natping_socket.")
mod.param("received_avp", str, None,
          doc="AVP fix_nated_register() fills with the source URI (registrar's received_avp).")
mod.param("sipping_bflag", int, -1,
          doc="Branch flag: contacts with it get SIP requests instead of 4-byte UDP pings.")
mod.param("sipping_from", str, None, doc="From URI of SIP pings (required for SIP pings).")
mod.param("sipping_method", str, "OPTIONS", doc="Method of SIP pings.")
mod.param("natping_disable_bflag", int, -1, doc="Contacts with this branch flag are not pinged.")
mod.param("nortpproxy_str", str, "a=nortpproxy:yes\r\n",
          doc="SDP line fix_nated_sdp(0x04) adds to mark handled SDP.")
mod.param("append_sdp_oldmediaip", int, 1,
          doc="1: add a=oldmediaip:<old> after each c= line fix_nated_sdp rewrites.")
mod.param("nat_addr_mode", int, 1,
          doc="Private ranges: 0 RFC 1918 only, 1 also RFC 6598 (100.64/10) and 192.0.0.0/29.")
mod.param("alias_name", str, "alias", doc="Contact/R-URI parameter name of the alias.")
mod.param("keepalive_timeout", int, 0,
          doc="Kamailio: remove contacts not answering SIP pings for N s. Only 0 (never) is "
              "supported.")
mod.param("udpping_from_path", int, 0,
          doc="Kamailio: ping via the first Path hop. Only 0 is supported.")
mod.param("filter_server_id", int, 0,
          doc="Only ping contacts with our server_id (one server here: no effect).")

_state: dict[str, Any] = {"ping": natping.PingState(None)}


def _cfg() -> nf.NhConfig:
    p = mod.p
    return nf.NhConfig(nat_addr_mode=int(p.nat_addr_mode), received_avp=p.received_avp,
                       nortpproxy_str=str(p.nortpproxy_str or ""),
                       append_sdp_oldmediaip=int(p.append_sdp_oldmediaip),
                       alias_name=str(p.alias_name or "alias"))


def _ping_cfg(nat_bflag: int) -> natping.PingConfig:
    p = mod.p
    return natping.PingConfig(
        ping_nated_only=bool(p.ping_nated_only), nat_bflag=nat_bflag,
        sipping_bflag=int(p.sipping_bflag), sipping_from=p.sipping_from,
        sipping_method=str(p.sipping_method or "OPTIONS"),
        disable_bflag=int(p.natping_disable_bflag),
        socket=p.natping_socket or p.force_socket)


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Validate params, create the shm state, register the pinger (master, pre-fork)."""
    p = mod.p
    if p.received_avp:
        from sipcore.pv import PvError, parse_pv

        try:
            parse_pv(str(p.received_avp), ctx.cfg.modules)
        except PvError as exc:
            raise ModuleError(f"nathelper: bad received_avp: {exc}") from None
    if int(p.natping_processes) < 1:
        raise ModuleError("nathelper: natping_processes must be >= 1")
    if int(p.keepalive_timeout) != 0 or int(p.udpping_from_path) != 0:
        raise ModuleError("nathelper: keepalive_timeout and udpping_from_path are not "
                          "supported (leave them 0)")
    if int(p.sipping_bflag) >= 0 and not p.sipping_from:
        raise ModuleError("nathelper: sipping_bflag needs sipping_from")
    shm = ctx.shm
    table = shm.named("nathelper:state", lambda a: ShmHashTable.create(a, 4),
                      ShmHashTable.attach) if shm is not None else None
    _state["ping"] = natping.PingState(table)
    interval = int(p.natping_interval)
    if interval > 0:
        _state["ul"] = ctx.bind_api("usrloc")        # pinging reads usrloc
        ctx.timers.register_timer("nathelper:natping", _natping_timer, interval * 1000)


def _natping_timer() -> None:
    """Timer process: one round of keepalives."""
    if not _state["ping"].enabled():
        return
    mc = mod.context
    ul = _state["ul"]
    natping.ping_contacts(mc.core, _ping_cfg(ul.nat_bflag), natping.iter_contacts(ul, mc.shm))


@mod.response
def _absorb_ping_reply(ctx: RouteCtx) -> bool:
    """Replies to our SIP pings end here (True: consumed, not relayed)."""
    return natping.is_ping_reply(ctx.msg, str(mod.p.sipping_method or "OPTIONS"))


# ---- NAT detection ---------------------------------------------------------------------------

@mod.function("nat_uac_test", args=(Fx.IGP,), routes=ANY_ROUTE)
def ki_nat_uac_test(ctx: RouteCtx, tests: int) -> int:
    """1 if any selected test detects NAT: 1 Contact private, 2 Via address != source,
    4 Via private, 8 SDP private, 16 source port != Via port, 32 source private, 64 WebSocket,
    128 Contact port != source port, 256 SDP c= != source. -1 otherwise."""
    return nf.nat_uac_test(ctx, _cfg(), tests)


@mod.function("is_rfc1918", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_is_rfc1918(ctx: RouteCtx, ip: str) -> int:
    """1 if IP is a private address (per nat_addr_mode), -1 otherwise."""
    return nf.is_rfc1918(_cfg(), ip)


# ---- Contact and R-URI -----------------------------------------------------------------------

@mod.function("fix_nated_contact", args=(), routes=RFOB)
def ki_fix_nated_contact(ctx: RouteCtx) -> int:
    """Rewrite the first Contact URI host:port with the source ip:port."""
    return nf.fix_nated_contact(ctx)


@mod.function("fix_nated_register", args=(), routes=REQUEST_ROUTE)
def ki_fix_nated_register(ctx: RouteCtx) -> int:
    """REGISTER: store "sip:srcip:srcport[;transport=x]" in received_avp (saved by registrar
    as the contact's received address). -1 without received_avp or for other methods."""
    return nf.fix_nated_register(ctx, _cfg())


@mod.function("add_rcv_param", args=(), routes=REQUEST_ROUTE)
def ki_add_rcv_param(ctx: RouteCtx) -> int:
    """Add ;received="<source URI>" to every Contact."""
    return nf.add_rcv_param(ctx, 0)


@mod.function("add_rcv_param", args=(Fx.IGP,), routes=REQUEST_ROUTE)
def ki_add_rcv_param_flag(ctx: RouteCtx, flag: int) -> int:
    """Same; FLAG 1 puts the parameter into the Contact URI (escaped) instead."""
    return nf.add_rcv_param(ctx, flag)


@mod.function("add_contact_alias", args=(), routes=RBF | ONREPLY_ROUTE)
def ki_add_contact_alias(ctx: RouteCtx) -> int:
    """Add ;alias=srcip~srcport~proto to the first Contact URI when it differs from the
    source. 1 added, 2 not needed, -1 error."""
    return nf.add_contact_alias(ctx, _cfg())


@mod.function("add_contact_alias", args=(Fx.SPVE, Fx.IGP, Fx.SPVE),
              routes=RBF | ONREPLY_ROUTE)
def ki_add_contact_alias_addr(ctx: RouteCtx, ip: str, port: int, proto: str) -> int:
    """Same with the given address, port and protocol name (udp, tcp, tls, sctp, ws, wss)."""
    return nf.add_contact_alias(ctx, _cfg(), ip, port, proto)


@mod.function("set_contact_alias", args=(), routes=RBF | ONREPLY_ROUTE)
def ki_set_contact_alias(ctx: RouteCtx) -> int:
    """Like add_contact_alias(), and later nathelper calls see the changed Contact."""
    return nf.add_contact_alias(ctx, _cfg())


@mod.function("set_contact_alias", args=(Fx.IGP,), routes=RBF | ONREPLY_ROUTE)
def ki_set_contact_alias_trim(ctx: RouteCtx, trim: int) -> int:
    """Same; TRIM 1 first removes existing alias parameters."""
    return nf.add_contact_alias(ctx, _cfg(), trim=bool(trim))


@mod.function("handle_ruri_alias", args=(), routes=REQUEST_ROUTE | BRANCH_ROUTE)
def ki_handle_ruri_alias(ctx: RouteCtx) -> int:
    """R-URI with ;alias=ip~port~proto: $du from it, the parameter removed. 1 done, 2 no
    alias, -1 error."""
    return nf.handle_ruri_alias(ctx, _cfg(), 0)


@mod.function("handle_ruri_alias", args=(Fx.IGP,), routes=REQUEST_ROUTE | BRANCH_ROUTE)
def ki_handle_ruri_alias_mode(ctx: RouteCtx, mode: int) -> int:
    """Same; MODE 0 uses the first alias, other values the last and remove them all."""
    return nf.handle_ruri_alias(ctx, _cfg(), mode)


@mod.function("set_alias_to_pv", args=(Fx.PVAR,), routes=ANY_ROUTE)
def ki_set_alias_to_pv(ctx: RouteCtx, pv: PvSpec) -> int:
    """Store the first Contact URI, rebuilt from its alias parameter, into PV. -1 no alias."""
    try:
        uri = nf.alias_to_uri(ctx, _cfg())
    except ValueError:
        return -1
    if uri is None:
        return -1
    pv.set(ctx, uri)
    return 1


# ---- SDP -------------------------------------------------------------------------------------

@mod.function("fix_nated_sdp", args=(Fx.IGP,), routes=RFOB)
def ki_fix_nated_sdp(ctx: RouteCtx, flags: int) -> int:
    """Rewrite SDP: 0x01 add a=direction:active, 0x02 c= (and a=rtcp) := source address,
    0x04 add nortpproxy_str, 0x08 o= := source address. 1 changed, 2 nothing changed,
    -1 no SDP."""
    return nf.fix_nated_sdp(ctx, _cfg(), flags, None)


@mod.function("fix_nated_sdp", args=(Fx.IGP, Fx.SPVE), routes=RFOB)
def ki_fix_nated_sdp_ip(ctx: RouteCtx, flags: int, ip: str) -> int:
    """Same with IP instead of the source address."""
    return nf.fix_nated_sdp(ctx, _cfg(), flags, ip or None)


# ---- RPC -------------------------------------------------------------------------------------

def rpc_enable_ping(value: int | None = None) -> dict[str, Any]:
    """nathelper.enable_ping [0|1]: switch NAT pinging off/on; without a value, show it."""
    st: natping.PingState = _state["ping"]
    if value is not None:
        try:
            st.set_enabled(bool(int(value)))
        except (TypeError, ValueError):
            raise RpcFault(400, "nathelper.enable_ping expects 0 or 1") from None
    return {"enabled": 1 if st.enabled() else 0}


mod.rpc("nathelper.enable_ping", rpc_enable_ping, params="[value:int]",
        doc="Enable (1) or disable (0) NAT pinging (Kamailio's nh_enable_ping); "
            "without a value, show the state.")

__all__ = ["mod"]
