"""Core cfg functions (config-language.md section 11): forward, flags, R-URI rewriting,
destination set, Via/socket controls, legacy logging and cfg group selection.

Runs in: SIP workers (the functions) and the master (the declaration is read by the cfg
compiler through ModuleRegistry.core). Shared state: none; everything acts on the RouteCtx.
Statement-like keywords (route, return, exit, drop, break) belong to the compiler, not here.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

from sipcore import log as klog
from sipcore.errors import ParseError
from sipcore.mod import ANY_ROUTE, Custom, Fx, Module
from sipcore.net.sockspec import SocketSpec, find_socket, parse_socket_spec
from sipcore.route import errcodes as E
from sipcore.route import ruri
from sipcore.route.ctx import RouteCtx

log = logging.getLogger(__name__)

core_module = Module("core", summary="Functions built into the configuration language.")
mod = core_module

MAX_FLAG = 31
_PROTO_NAMES = frozenset({"udp", "tcp", "tls", "sctp"})


def _parse_proto(text: str) -> str:
    p = text.strip().lower()
    if p not in _PROTO_NAMES:
        raise ValueError(f"unknown protocol \"{text}\" (expected UDP, TCP, TLS or SCTP)")
    return p


# ---- forwarding ---------------------------------------------------------------------------

def _forward(ctx: RouteCtx, host: Optional[str], port: Optional[str], proto: Optional[str]
             ) -> int:
    """forward(), forward(host), forward(host, port): "uri:host"/"uri:port" take the R-URI's
    (or $du's) part, as Kamailio's URIHOST/URIPORT tokens do; a host without a port uses the
    default port of the transport."""
    from sipcore import forward

    if ctx.msg.is_reply:
        return forward.forward_reply(ctx)
    use_uri_host = host is None or host.strip().lower() == "uri:host"
    use_uri_port = port is not None and port.strip().lower() == "uri:port"
    port_no: Optional[int] = None
    if port is not None and not use_uri_port:
        try:
            port_no = int(port)
        except ValueError:
            log.error('forward: bad port "%s"', port)
            return E.E_BAD_ADDRESS
        if not 0 < port_no < 65536:
            log.error('forward: port out of range "%s"', port)
            return E.E_BAD_ADDRESS
    if use_uri_port and not use_uri_host:
        from sipcore.msg import parse_uri

        try:
            port_no = (parse_uri(ctx.dst_uri) if ctx.dst_uri else ctx.msg.parsed_ruri).port
        except ParseError as exc:
            log.error("forward: bad request URI: %s", exc)
            return E.E_BAD_URI
    if host is None or use_uri_host:
        # forward() and forward(uri:host, uri:port) keep the URI port; forward(uri:host)
        # alone uses the default port (Kamailio: port 0).
        keep = host is None or use_uri_port
        return forward.forward_request(ctx, host=None, port=port_no, proto=proto,
                                       uri_port=keep)
    return forward.forward_request(ctx, host=host.strip(), port=port_no, proto=proto)


def _def_forward(name: str, proto: Optional[str]) -> None:
    routes = ANY_ROUTE

    def f0(ctx: RouteCtx) -> int:
        return _forward(ctx, None, None, proto)

    def f1(ctx: RouteCtx, host: str) -> int:
        return _forward(ctx, host, None, proto)

    def f2(ctx: RouteCtx, host: str, port: str) -> int:
        return _forward(ctx, host, port, proto)

    via = f" over {proto.upper()}" if proto else ""
    f0.__doc__ = f"Forward statelessly{via} to $du if set, else to the R-URI."
    f1.__doc__ = f"Forward statelessly{via} to HOST (\"uri:host\": the R-URI host), default port."
    f2.__doc__ = f"Forward statelessly{via} to HOST:PORT (\"uri:port\" = R-URI port)."
    mod.function(name, args=(), routes=routes, kemi_name=name)(f0)
    mod.function(name, args=(Fx.SPVE,), routes=routes, kemi_name=f"{name}_uri")(f1)
    mod.function(name, args=(Fx.SPVE, Fx.SPVE), routes=routes, kemi_name=f"{name}_to")(f2)


for _name, _proto in (("forward", None), ("forward_udp", "udp"), ("forward_tcp", "tcp"),
                      ("forward_tls", "tls"), ("forward_sctp", "sctp")):
    _def_forward(_name, _proto)


# ---- message flags ------------------------------------------------------------------------

def _flag_ok(ctx: RouteCtx, flag: int) -> bool:
    if not 0 <= flag <= MAX_FLAG:
        log.error("flag %s out of range 0..%s", flag, MAX_FLAG)
        return False
    return True


@mod.function("setflag", args=(Fx.FLAG,))
def ki_setflag(ctx: RouteCtx, flag: int) -> int:
    """Set message flag FLAG (0..31)."""
    if not _flag_ok(ctx, flag):
        return E.E_CFG
    ctx.flags |= 1 << flag
    return 1


@mod.function("resetflag", args=(Fx.FLAG,))
def ki_resetflag(ctx: RouteCtx, flag: int) -> int:
    """Clear message flag FLAG (0..31)."""
    if not _flag_ok(ctx, flag):
        return E.E_CFG
    ctx.flags &= ~(1 << flag)
    return 1


@mod.function("isflagset", args=(Fx.FLAG,))
def ki_isflagset(ctx: RouteCtx, flag: int) -> int:
    """True (1) if message flag FLAG is set, else -1."""
    if not _flag_ok(ctx, flag):
        return E.E_CFG
    return 1 if ctx.flags & (1 << flag) else -1


# ---- R-URI rewriting ----------------------------------------------------------------------

def _rewrite(ctx: RouteCtx, what: str, op: Callable[[ruri.UriParts], None]) -> int:
    msg = ctx.msg
    if not msg.is_request:
        log.error("%s: not a request", what)
        return E.E_UNSPEC
    try:
        parts = ruri.UriParts.from_uri(msg.parsed_ruri)
        op(parts)
        msg.set_ruri(parts.text())
    except ParseError as exc:
        log.error("%s: bad request URI: %s", what, exc)
        return E.E_UNSPEC
    except ValueError as exc:           # the new URI is not a valid Request-URI
        log.error("%s: %s", what, exc)
        return E.E_UNSPEC
    return 1


def _alias(names: tuple[str, ...], args: tuple, doc: str,
           fn: Callable[..., int]) -> None:
    for n in names:
        mod.function(n, args=args, doc=doc, kemi=(n == names[0]))(fn)


def ki_rewriteuri(ctx: RouteCtx, uri: str) -> int:
    if not ctx.msg.is_request:
        log.error("rewriteuri: not a request")
        return E.E_UNSPEC
    try:
        ctx.msg.set_ruri(uri)
    except ValueError as exc:
        log.error("rewriteuri: %s", exc)
        return E.E_UNSPEC
    return 1


def ki_rewritehost(ctx: RouteCtx, host: str) -> int:
    return _rewrite(ctx, "rewritehost", lambda p: ruri.set_host(p, host))


def ki_rewritehostport(ctx: RouteCtx, hp: str) -> int:
    return _rewrite(ctx, "rewritehostport", lambda p: ruri.set_hostport(p, hp))


def ki_rewritehostporttrans(ctx: RouteCtx, hpt: str) -> int:
    return _rewrite(ctx, "rewritehostporttrans", lambda p: ruri.set_hostporttrans(p, hpt))


def ki_rewriteuser(ctx: RouteCtx, user: str) -> int:
    return _rewrite(ctx, "rewriteuser", lambda p: ruri.set_user(p, user))


def ki_rewriteuserpass(ctx: RouteCtx, up: str) -> int:
    return _rewrite(ctx, "rewriteuserpass", lambda p: ruri.set_userpass(p, up))


def ki_rewriteport(ctx: RouteCtx, port: str) -> int:
    return _rewrite(ctx, "rewriteport", lambda p: ruri.set_port(p, port))


_alias(("rewriteuri", "seturi"), (Fx.SPVE,), "Replace the whole R-URI.", ki_rewriteuri)
_alias(("rewritehost", "sethost", "seth"), (Fx.SPVE,), "Replace the R-URI host.",
       ki_rewritehost)
_alias(("rewritehostport", "sethostport", "sethp"), (Fx.SPVE,),
       "Replace the R-URI host:port.", ki_rewritehostport)
_alias(("rewritehostporttrans", "sethostporttrans", "sethpt"), (Fx.SPVE,),
       "Replace the R-URI host:port;transport=proto.", ki_rewritehostporttrans)
_alias(("rewriteuser", "setuser", "setu"), (Fx.SPVE,), "Replace the R-URI user.",
       ki_rewriteuser)
_alias(("rewriteuserpass", "setuserpass", "setup"), (Fx.SPVE,),
       "Replace the R-URI user:password.", ki_rewriteuserpass)
_alias(("rewriteport", "setport", "setp"), (Fx.SPVE,), "Replace the R-URI port.",
       ki_rewriteport)


@mod.function("prefix", args=(Fx.SPVE,))
def ki_prefix(ctx: RouteCtx, pfx: str) -> int:
    """Prepend PFX to the R-URI user."""
    return _rewrite(ctx, "prefix", lambda p: ruri.prefix(p, pfx))


@mod.function("strip", args=(Fx.IGP,))
def ki_strip(ctx: RouteCtx, n: int) -> int:
    """Remove the first N characters of the R-URI user."""
    if n < 0:
        log.error("strip: negative length %s", n)
        return E.E_UNSPEC
    return _rewrite(ctx, "strip", lambda p: ruri.strip(p, n))


@mod.function("strip_tail", args=(Fx.IGP,))
def ki_strip_tail(ctx: RouteCtx, n: int) -> int:
    """Remove the last N characters of the R-URI user."""
    if n < 0:
        log.error("strip_tail: negative length %s", n)
        return E.E_UNSPEC
    return _rewrite(ctx, "strip_tail", lambda p: ruri.strip_tail(p, n))


@mod.function("userphone", args=())
def ki_userphone(ctx: RouteCtx) -> int:
    """Add ;user=phone to the R-URI."""
    return _rewrite(ctx, "userphone", ruri.userphone)


@mod.function("revert_uri", args=())
def ki_revert_uri(ctx: RouteCtx) -> int:
    """Restore the R-URI as received."""
    msg = ctx.msg
    if not msg.is_request:
        return E.E_UNSPEC
    if msg.ruri != msg.orig_ruri:
        msg.set_ruri(msg.orig_ruri)
    return 1


# ---- destination set ------------------------------------------------------------------------

def _remove_branch(ctx: RouteCtx, idx: int) -> int:
    if not 0 <= idx < len(ctx.branches):
        return -1
    del ctx.branches[idx]
    return 1


@mod.function("remove_branch", args=(), kemi_name="remove_branch_first")
def ki_remove_branch_first(ctx: RouteCtx) -> int:
    """Remove the first appended branch; -1 if there is none."""
    return _remove_branch(ctx, 0)


@mod.function("remove_branch", args=(Fx.IGP,))
def ki_remove_branch(ctx: RouteCtx, idx: int) -> int:
    """Remove appended branch IDX (0 = first appended); -1 if there is no such branch."""
    return _remove_branch(ctx, idx)


@mod.function("clear_branches", args=())
def ki_clear_branches(ctx: RouteCtx) -> int:
    """Remove every appended branch (the R-URI stays)."""
    ctx.branches.clear()
    return 1


# ---- Via / reply routing controls -----------------------------------------------------------

@mod.function("force_rport", args=())
def ki_force_rport(ctx: RouteCtx) -> int:
    """Add received=/rport= to the sender's Via as if it had asked with ;rport (RFC 3581)."""
    ctx.force_rport = True
    return 1


mod.function("add_rport", args=(), kemi=False,
             doc="Alias of force_rport().")(ki_force_rport)


@mod.function("add_local_rport", args=())
def ki_add_local_rport(ctx: RouteCtx) -> int:
    """Add an empty ;rport to the Via we insert when forwarding."""
    ctx.local_rport = True
    return 1


@mod.function("set_advertised_address", args=(Fx.SPVE,))
def ki_set_advertised_address(ctx: RouteCtx, addr: str) -> int:
    """Use ADDR in our Via and Record-Route for this message."""
    ctx.advertised_address = addr.strip() or None
    return 1


@mod.function("set_advertised_port", args=(Fx.IGP,))
def ki_set_advertised_port(ctx: RouteCtx, port: int) -> int:
    """Use PORT in our Via and Record-Route for this message."""
    if not 0 < port < 65536:
        log.error("set_advertised_port: port out of range %s", port)
        return E.E_UNSPEC
    ctx.advertised_port = port
    return 1


def force_socket(ctx: RouteCtx, spec: SocketSpec, what: str) -> int:
    """Set ctx.force_socket to the listen socket SPEC names; -1 if it is not local."""
    sock = find_socket(ctx.core, spec)
    if sock is None:
        log.warning('%s: no listen socket matches "%s"', what, spec)
        return E.E_UNSPEC
    ctx.force_socket = sock
    return 1


@mod.function("force_send_socket", args=(Custom(parse_socket_spec, name="socket"),),
              routes=ANY_ROUTE)
def ki_force_send_socket(ctx: RouteCtx, spec: SocketSpec) -> int:
    """Send through the listen socket [proto:]addr[:port]."""
    return force_socket(ctx, spec, "force_send_socket")


def _add_tcp_alias(ctx: RouteCtx, port: Optional[int]) -> int:
    """Kamailio FORCE_TCP_ALIAS_T: only acts on stream connections, always returns 1."""
    if ctx.rcv.proto not in ("tcp", "tls", "ws", "wss"):
        return 1
    if port is None:
        via = ctx.msg.via1
        port = via.port if via is not None and via.port else 0
    if not port:
        port = 5061 if ctx.rcv.proto in ("tls", "wss") else 5060
    if not ctx.core.add_tcp_alias(ctx.rcv.conn_id, port, ctx.rcv.proto):
        log.error("force_tcp_alias: adding the alias failed")
        return E.E_UNSPEC
    return 1


@mod.function("force_tcp_alias", args=())
def ki_force_tcp_alias(ctx: RouteCtx) -> int:
    """Alias this TCP/TLS connection with the Via sent-by port (RFC 5923-like reuse)."""
    return _add_tcp_alias(ctx, None)


@mod.function("force_tcp_alias", args=(Fx.IGP,), kemi_name="force_tcp_alias_port")
def ki_force_tcp_alias_port(ctx: RouteCtx, port: int) -> int:
    """Alias this TCP/TLS connection with PORT."""
    return _add_tcp_alias(ctx, port)


mod.function("add_tcp_alias", args=(), kemi=False,
             doc="Alias of force_tcp_alias().")(ki_force_tcp_alias)
mod.function("add_tcp_alias", args=(Fx.IGP,), kemi=False,
             doc="Alias of force_tcp_alias(port).")(ki_force_tcp_alias_port)


@mod.function("set_forward_no_connect", args=())
def ki_set_forward_no_connect(ctx: RouteCtx) -> int:
    """Forward only over an existing TCP/TLS connection; never open a new one."""
    ctx.forward_no_connect = True
    return 1


@mod.function("set_reply_no_connect", args=())
def ki_set_reply_no_connect(ctx: RouteCtx) -> int:
    """Send replies only over an existing connection; never open a new one."""
    ctx.reply_no_connect = True
    return 1


@mod.function("set_forward_close", args=())
def ki_set_forward_close(ctx: RouteCtx) -> int:
    """Close the TCP/TLS connection after the forwarded request is sent."""
    ctx.forward_close = True
    return 1


@mod.function("set_reply_close", args=())
def ki_set_reply_close(ctx: RouteCtx) -> int:
    """Close the TCP/TLS connection after the reply is sent."""
    ctx.reply_close = True
    return 1


@mod.function("udp_mtu_try_proto", args=(Custom(_parse_proto, name="proto"),))
def ki_udp_mtu_try_proto(ctx: RouteCtx, proto: str) -> int:
    """Transport to switch to when a UDP message would exceed udp_mtu."""
    ctx.udp_mtu_try_proto = proto
    return 1


# ---- legacy logging -------------------------------------------------------------------------

_LOG_DEFAULT_LEVEL = klog.L_DBG + 1     # cfg.y: log("text") logs at L_DBG+1


@mod.function("log", args=(Fx.STR,), kemi=False)
def ki_log(ctx: RouteCtx, text: str) -> int:
    """Log TEXT at level L_DBG+1 (only shown with debug>=4)."""
    return ki_log_level(ctx, _LOG_DEFAULT_LEVEL, text)


@mod.function("log", args=(Fx.INT, Fx.STR), kemi=False)
def ki_log_level(ctx: RouteCtx, level: int, text: str) -> int:
    """Log TEXT at LEVEL (-5 alert .. 3 debug; above 3 only with a higher debug=)."""
    if klog.enabled(level):
        log.log(klog.py_level(level), "<script>: %s", text, extra=klog.log_record_extra(ctx))
    return 1


@mod.function("error", args=(Fx.STR, Fx.STR), kemi=False)
def ki_error(ctx: RouteCtx, a: str, b: str) -> int:
    """Legacy: Kamailio only logs a notice that error() is not implemented; so do we."""
    log.log(klog.NOTICE, 'error("%s", "%s") not implemented yet', a, b)
    return 1


# ---- runtime cfg group instances ------------------------------------------------------------

def _group_instances(ctx: RouteCtx) -> dict:
    """{group: set(instance ids)} published by the cfg framework (runtime issue)."""
    return ctx.core.get_global("cfg_group_instances", {}) or {}


@mod.function("cfg_select", args=(Fx.STR, Fx.IGP))
def ki_cfg_select(ctx: RouteCtx, group: str, inst: int) -> int:
    """Use instance INST of cfg group GROUP for the rest of this message; -1 if unknown."""
    if inst not in _group_instances(ctx).get(group, ()):
        log.error("cfg_select: group instance %s[%s] not found", group, inst)
        return -1
    if ctx.cfg_select is None:
        ctx.cfg_select = {}
    ctx.cfg_select[group] = inst
    return 1


@mod.function("cfg_reset", args=(Fx.STR,))
def ki_cfg_reset(ctx: RouteCtx, group: str) -> int:
    """Go back to the default values of cfg group GROUP."""
    if ctx.cfg_select:
        ctx.cfg_select.pop(group, None)
    return 1
