"""corex: core extensions - append_branch, raw sends, extended flags, socket selection,
internal message flags, file I/O, Via building controls.

Runs in: SIP workers (functions), the RPC process (corex.* RPCs).
Shared state: none (everything acts on the RouteCtx or on this process).
Kamailio equivalent: modules/corex (corex_mod.c, corex_lib.c, corex_rpc.c).
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from sipcore import log as klog
from sipcore.errors import RpcFault
from sipcore.mod import FAILURE_ROUTE, ONREPLY_ROUTE, REQUEST_ROUTE, Fx, ModContext, Module
from sipcore.net.addr import Dest
from sipcore.net.sockspec import find_socket, find_socket_by_name, parse_socket_spec
from sipcore.route.ctx import (
    VIA_SRVID,
    VIA_XAVP_FIELDS,
    VIA_XAVP_PARAMS,
    Branch,
    RouteCtx,
)

log = logging.getLogger(__name__)

mod = Module("corex", summary="Core extensions: branches, raw sends, xflags, sockets, "
             "file I/O.")


Q_UNSPECIFIED = -1
MAX_XFLAG = 63
REQ_FAIL = REQUEST_ROUTE | FAILURE_ROUTE

# ---- parameters ---------------------------------------------------------------------------------


def _alias_subdomains(value: str) -> str:
    """`[proto:]domain[:port]`: the domain and every sub-domain match `myself`."""
    v = value.strip()
    if not v:
        raise ValueError("alias_subdomains: empty value")
    parse_socket_spec(v)            # same syntax: validates proto and port
    return v


def _dns_cache_record(value: str) -> str:
    """`type=A;name=...;addr=...;ttl=...[;flags=1]` static DNS entry (checked here)."""
    fields = {}
    for item in value.strip().rstrip(";").split(";"):
        k, eq, v = item.partition("=")
        if not eq:
            raise ValueError(f"dns_cache: bad field \"{item}\"")
        fields[k.strip().lower()] = v.strip()
    if "name" not in fields:
        raise ValueError("dns_cache: name= is required")
    rtype = fields.get("type", "A").upper()
    if rtype not in ("A", "AAAA", "SRV"):
        raise ValueError(f"dns_cache: unsupported type \"{rtype}\"")
    return value


mod.param("alias_subdomains", str, None, multi=True, validator=_alias_subdomains,
          doc="[proto:]domain[:port] whose sub-domains also match myself (repeatable).")
mod.param("dns_cache", str, None, multi=True, validator=_dns_cache_record,
          doc="Static DNS cache entry 'type=A;name=...;addr=...;ttl=...' (repeatable).")
mod.param("nio_intercept", int, 0,
          doc="1 = run event_route[network:msg] for raw network I/O.")
mod.param("nio_min_msg_len", int, 0, doc="Minimum packet size for network:msg.")
mod.param("nio_msg_avp", str, "", doc="AVP holding replacement packet content.")
mod.param("evcb_reply_out", str, "", doc="KEMI callback for corex:reply-out.")
mod.event_routes.extend(["network:msg", "corex:reply-out"])


_subdomains: list[tuple[str, Optional[int], Optional[str]]] = []   # (domain, port, proto)


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master: parse alias_subdomains once (Kamailio corex_register_check_self)."""
    _subdomains.clear()
    for spec in mod.p.alias_subdomains:
        s = parse_socket_spec(spec)
        _subdomains.append((s.host.lower().rstrip("."), s.port, s.proto))


def check_self_subdomain(host: str, port: Optional[int], proto: Optional[str]) -> bool:
    """True if HOST is an alias_subdomains domain or one of its sub-domains (and the port
    and protocol match when both sides name them): corex's check_self callback."""
    h = host.strip().lower().rstrip(".")
    for dom, dport, dproto in _subdomains:
        if not (h == dom or h.endswith("." + dom)):
            continue
        if dport and port and dport != port:
            continue
        if dproto and proto and dproto != proto:
            continue
        return True
    return False


class CorexApi:
    """bind_api("corex"): the check_self callback the core consults for `myself`."""

    check_self = staticmethod(check_self_subdomain)


mod.provides_api(CorexApi())


# ---- append_branch ------------------------------------------------------------------------------

def parse_q(text: str) -> int:
    """Kamailio str2q(): "0".."1" with up to 3 decimals -> 0..1000; ValueError otherwise."""
    t = text.strip()
    if not t:
        raise ValueError("empty q value")
    whole, dot, frac = t.partition(".")
    if not whole.isdigit() or (dot and frac and not frac.isdigit()) or len(frac) > 3:
        raise ValueError(f"invalid q value \"{text}\"")
    q = int(whole) * 1000 + int((frac or "0").ljust(3, "0"))
    if q > 1000:
        raise ValueError(f"q value too big \"{text}\"")
    return q


def append_branch(ctx: RouteCtx, uri: Optional[str], q: Optional[str]) -> int:
    """corex_append_branch(): URI (or the current R-URI) with $du, path, q, branch-0 flags and
    the forced socket becomes a new branch. With no URI the R-URI is moved into the branch,
    with the connection lookup() chose for it: $du, branch-0 flags, forced socket, that
    connection and R-URI q are reset and the R-URI is marked consumed."""
    limit = int(ctx.core.get_global("max_branches", 12) or 12)
    if len(ctx.branches) + 1 >= limit:
        log.error("append_branch: max nr of branches exceeded")
        return -1
    qv = ctx.ruri_q
    if q:
        try:
            qv = parse_q(q)
        except ValueError as exc:
            log.error("append_branch: %s", exc)
            return -1
    branch_uri = uri if uri else ctx.msg.ruri
    ctx.branches.append(Branch(uri=branch_uri, dst_uri=ctx.dst_uri, path=ctx.path_vec, q=qv,
                               bflags=ctx.bflags, force_socket=ctx.force_socket,
                               otcpid=0 if uri else ctx.otcpid))
    if not uri:
        ctx.force_socket = None
        ctx.otcpid = 0
        ctx.bflags = 0
        ctx.dst_uri = None
        ctx.path_vec = None
        ctx.ruri_q = Q_UNSPECIFIED
        ctx.ruri_consumed = True   # tm must not send the R-URI branch again
    return 1


@mod.function("append_branch", args=(), routes=REQ_FAIL)
def ki_append_branch(ctx: RouteCtx) -> int:
    """Move the current R-URI (with $du, flags, socket) into a new branch."""
    return append_branch(ctx, None, None)


@mod.function("append_branch", args=(Fx.SPVE,), routes=REQ_FAIL, kemi_name="append_branch_uri")
def ki_append_branch_uri(ctx: RouteCtx, uri: str) -> int:
    """Add URI as a new branch."""
    return append_branch(ctx, uri, None)


@mod.function("append_branch", args=(Fx.SPVE, Fx.SPVE), routes=REQ_FAIL,
              kemi_name="append_branch_uri_q")
def ki_append_branch_uri_q(ctx: RouteCtx, uri: str, q: str) -> int:
    """Add URI as a new branch with q value Q ("0.5")."""
    return append_branch(ctx, uri, q)


# ---- raw sends (the message as received: no Via added, no lumps applied) ------------------------

def _hostport(text: str) -> tuple[str, Optional[int]]:
    """"host", "host:port", "[v6]:port" or a bare IPv6 address -> (host, port or None)."""
    t = text.strip()
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise ValueError(f"bad IPv6 address \"{text}\"")
        host, rest = t[1:end], t[end + 1:]
        return host, int(rest[1:]) if rest.startswith(":") else None
    if t.count(":") > 1:
        return t, None
    host, sep, port = t.partition(":")
    return host, int(port) if sep else None


def corex_send(ctx: RouteCtx, target: Optional[str], proto: str) -> int:
    """Send ctx.msg.buf unchanged to TARGET ("host[:port]" or a SIP URI) or to $du / the
    R-URI, over PROTO."""
    from sipcore import forward

    try:
        if target and not target.startswith(("sip:", "sips:")):
            host, port = _hostport(target)
            hop = forward.NextHop(host, port, proto)
        else:
            hop = forward.uri_next_hop(target or ctx.dst_uri or ctx.msg.ruri)
            hop.proto = proto
        ip, port, p = forward.resolve(hop)
        sock = forward.choose_send_socket(ctx, p, ip)
    except forward.ForwardError as exc:
        log.error("send: %s", exc.reason)
        return -1
    except ValueError as exc:
        log.error('send: bad destination "%s": %s', target, exc)
        return -1
    if not ctx.core.send(Dest(p, ip, port, sock), ctx.msg.buf):
        log.error("send: sending to %s:%s:%s failed", p, ip, port)
        return -1
    return 1


def _def_send(name: str, proto: str) -> None:
    def s0(ctx: RouteCtx) -> int:
        return corex_send(ctx, None, proto)

    def s1(ctx: RouteCtx, target: str) -> int:
        return corex_send(ctx, target, proto)

    s0.__doc__ = f"Send the received message unchanged over {proto.upper()} to $du/R-URI."
    s1.__doc__ = f"Send the received message unchanged over {proto.upper()} to host[:port]."
    mod.function(name, args=(), routes=REQ_FAIL)(s0)
    mod.function(name, args=(Fx.SPVE,), routes=REQ_FAIL, kemi_name=f"{name}_dst")(s1)


_def_send("send", "udp")
_def_send("send_udp", "udp")
_def_send("send_tcp", "tcp")


def send_data(ctx: RouteCtx, uri: str, sock_spec: Optional[str], data: str) -> int:
    """corex_send_data(): DATA to the address of SIP URI, optionally from socket SOCK_SPEC."""
    from sipcore import forward

    try:
        hop = forward.uri_next_hop(uri)
        ip, port, proto = forward.resolve(hop)
        if sock_spec:
            sock = find_socket(ctx.core, parse_socket_spec(sock_spec))
            if sock is None:
                log.error('sendx: no local socket "%s"', sock_spec)
                return -1
            proto = sock.proto
        else:
            sock = forward.choose_send_socket(ctx, proto, ip)
    except (forward.ForwardError, ValueError) as exc:
        log.error("send_data: %s", getattr(exc, 'reason', exc))
        return -1
    if not ctx.core.send(Dest(proto, ip, port, sock), data.encode("utf-8")):
        return -1
    return 1


@mod.function("send_data", args=(Fx.SPVE, Fx.SPVE))
def ki_send_data(ctx: RouteCtx, uri: str, data: str) -> int:
    """Send DATA (raw) to the address of the SIP URI."""
    return send_data(ctx, uri, None, data)


@mod.function("sendx", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE))
def ki_sendx(ctx: RouteCtx, uri: str, sock: str, data: str) -> int:
    """Send DATA (raw) to the address of the SIP URI from local socket SOCK."""
    return send_data(ctx, uri, sock, data)


@mod.function("forward_reply", args=(), routes=ONREPLY_ROUTE)
def ki_forward_reply(ctx: RouteCtx) -> int:
    """Forward the current reply statelessly now (core reply_route)."""
    from sipcore import forward

    return forward.forward_reply(ctx)


# ---- extended flags -----------------------------------------------------------------------------

def _xflag_ok(flag: int) -> bool:
    return 0 <= flag <= MAX_XFLAG


@mod.function("setxflag", args=(Fx.IGP,))
def ki_setxflag(ctx: RouteCtx, flag: int) -> int:
    """Set extended flag FLAG (0..63)."""
    if not _xflag_ok(flag):
        return -1
    ctx.xflags |= 1 << flag
    return 1


@mod.function("resetxflag", args=(Fx.IGP,))
def ki_resetxflag(ctx: RouteCtx, flag: int) -> int:
    """Clear extended flag FLAG."""
    if not _xflag_ok(flag):
        return -1
    ctx.xflags &= ~(1 << flag)
    return 1


@mod.function("isxflagset", args=(Fx.IGP,))
def ki_isxflagset(ctx: RouteCtx, flag: int) -> int:
    """1 if extended flag FLAG is set, else -1."""
    if not _xflag_ok(flag):
        return -1
    return 1 if ctx.xflags & (1 << flag) else -1


# ---- internal message flags ---------------------------------------------------------------------

MSG_IFLAGS = ("USE_UAC_FROM", "USE_UAC_TO", "UAC_AUTH")


def _iflags(ctx: RouteCtx) -> set[str]:
    if ctx.msg_iflags is None:
        ctx.msg_iflags = set()
    return ctx.msg_iflags


def _iflag_name(ctx: RouteCtx, name: str) -> Optional[str]:
    n = name.strip().upper()
    if n not in MSG_IFLAGS:
        log.error("unsupported flag name [%s]", name)
        return None
    return n


@mod.function("msg_iflag_set", args=(Fx.SPVE,))
def ki_msg_iflag_set(ctx: RouteCtx, name: str) -> int:
    """Set internal flag USE_UAC_FROM, USE_UAC_TO or UAC_AUTH."""
    n = _iflag_name(ctx, name)
    if n is None:
        return -1
    _iflags(ctx).add(n)
    return 1


@mod.function("msg_iflag_reset", args=(Fx.SPVE,))
def ki_msg_iflag_reset(ctx: RouteCtx, name: str) -> int:
    """Clear an internal flag."""
    n = _iflag_name(ctx, name)
    if n is None:
        return -1
    _iflags(ctx).discard(n)
    return 1


@mod.function("msg_iflag_is_set", args=(Fx.SPVE,))
def ki_msg_iflag_is_set(ctx: RouteCtx, name: str) -> int:
    """1 if the internal flag is set, -2 if not, -1 for an unknown name."""
    n = _iflag_name(ctx, name)
    if n is None:
        return -1
    return 1 if n in _iflags(ctx) else -2


# ---- file I/O -----------------------------------------------------------------------------------

@mod.function("file_read", args=(Fx.SPVE, Fx.PVAR))
def ki_file_read(ctx: RouteCtx, path: str, var: Any) -> int:
    """Read the whole file PATH into VAR."""
    if not path:
        log.error("file_read: cannot get file path")
        return -1
    if not getattr(var, "writable", False):
        log.error("file_read: result pvar is not writable")
        return -1
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape") as fh:
            content = fh.read()
    except OSError as exc:
        log.error("file_read: cannot open file: %s: %s", path, exc.strerror)
        return -1
    var.set(ctx, content)
    return 1


@mod.function("file_write", args=(Fx.SPVE, Fx.SPVE))
def ki_file_write(ctx: RouteCtx, path: str, content: str) -> int:
    """Write CONTENT to file PATH (truncating it)."""
    if not path:
        log.error("file_write: cannot get file path")
        return -1
    if not content:
        log.error("file_write: cannot get the content")
        return -1
    try:
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(content)
    except OSError as exc:
        log.error("file_write: cannot open file: %s: %s", path, exc.strerror)
        return -1
    return 1


# ---- sockets ------------------------------------------------------------------------------------

@mod.function("set_send_socket", args=(Fx.SPVE,))
def ki_set_send_socket(ctx: RouteCtx, spec: str) -> int:
    """Send through the listen socket [proto:]addr[:port] (like force_send_socket)."""
    try:
        s = parse_socket_spec(spec)
    except ValueError as exc:
        log.error("set_send_socket: %s", exc)
        return -1
    sock = find_socket(ctx.core, s)
    if sock is None:
        log.error('set_send_socket: no local socket "%s"', spec)
        return -1
    ctx.force_socket = sock
    return 1


@mod.function("set_send_socket_name", args=(Fx.SPVE,))
def ki_set_send_socket_name(ctx: RouteCtx, name: str) -> int:
    """Send through the listen socket named NAME."""
    sock = find_socket_by_name(ctx.core, name)
    if sock is None:
        log.error('set_send_socket_name: no socket named "%s"', name)
        return -1
    ctx.force_socket = sock
    return 1


def _set_recv(ctx: RouteCtx, sock: Any) -> int:
    ctx.rcv.sock = sock
    ctx.rcv.dst_ip = sock.ip
    ctx.rcv.dst_port = sock.port
    return 1


@mod.function("set_recv_socket", args=(Fx.SPVE,))
def ki_set_recv_socket(ctx: RouteCtx, spec: str) -> int:
    """Treat the message as received on listen socket [proto:]addr[:port]."""
    try:
        s = parse_socket_spec(spec)
    except ValueError as exc:
        log.error("set_recv_socket: %s", exc)
        return -1
    sock = find_socket(ctx.core, s)
    if sock is None:
        log.error('set_recv_socket: no local socket "%s"', spec)
        return -1
    return _set_recv(ctx, sock)


@mod.function("set_recv_socket_name", args=(Fx.SPVE,))
def ki_set_recv_socket_name(ctx: RouteCtx, name: str) -> int:
    """Treat the message as received on the listen socket named NAME."""
    sock = find_socket_by_name(ctx.core, name)
    if sock is None:
        log.error('set_recv_socket_name: no socket named "%s"', name)
        return -1
    return _set_recv(ctx, sock)


@mod.function("set_source_address", args=(Fx.SPVE,))
def ki_set_source_address(ctx: RouteCtx, addr: str) -> int:
    """Pretend the message came from [proto:]ip:port."""
    try:
        s = parse_socket_spec(addr)
    except ValueError as exc:
        log.error("set_source_address: %s", exc)
        return -1
    ctx.rcv.src_ip = s.host
    if s.port:
        ctx.rcv.src_port = s.port
    ctx.rcv.af = 6 if ":" in s.host else 4
    return 1


@mod.function("is_socket_name", args=(Fx.SPVE,))
def ki_is_socket_name(ctx: RouteCtx, name: str) -> int:
    """1 if NAME is the name of a listen socket, else -1."""
    return 1 if find_socket_by_name(ctx.core, name) is not None else -1


# ---- Via building controls (honoured by sipcore.forward when it builds our Via) ------------------

def _via_flag(bit: int):
    def impl(ctx: RouteCtx, on: int) -> int:
        ctx.via_ctl = ctx.via_ctl | bit if on else ctx.via_ctl & ~bit
        return 1
    return impl


mod.function("via_add_srvid", args=(Fx.IGP,),
             doc="1: add ;srvid=<server_id> to the Via we insert; 0: don't.")(
    _via_flag(VIA_SRVID))
mod.function("via_add_xavp_params", args=(Fx.IGP,),
             doc="1: add the xavp_via_params fields as params of our Via.")(
    _via_flag(VIA_XAVP_PARAMS))
mod.function("via_use_xavp_fields", args=(Fx.IGP,),
             doc="1: take Via fields from the xavp_via_fields xavp.")(
    _via_flag(VIA_XAVP_FIELDS))


# ---- message kind -------------------------------------------------------------------------------

@mod.function("is_faked_msg", args=())
def ki_is_faked_msg(ctx: RouteCtx) -> int:
    """1 while running on the internal faked message (timer and event routes)."""
    return 1 if ctx.faked else -1


@mod.function("is_incoming", args=())
def ki_is_incoming(ctx: RouteCtx) -> int:
    """In event_route[network:msg]: 1 if the data is inbound, -1 if outbound."""
    return -1          # PyKam runs no event_route[network:msg]: no message is "incoming" data


# ---- RPC ----------------------------------------------------------------------------------------

def rpc_debug(*args: Any) -> Any:
    """corex.debug [level]: read or set the log level of the answering process."""
    if args:
        try:
            klog.set_debug(int(args[0]))
        except ValueError:
            raise RpcFault(400, "invalid debug level") from None
        return {}
    return klog.get_debug()


def _pending(name: str):
    def handler(*_args: Any) -> Any:
        raise RpcFault(500, f"{name} needs the RPC process and shm (runtime issue)")
    handler.__doc__ = f"{name}: wired by the runtime issue."
    return handler


mod.rpc("corex.debug", rpc_debug, params="[level]", doc="Get or set the debug level.")
for _n in ("corex.list_sockets", "corex.list_aliases", "corex.shm_status",
           "corex.shm_summary", "corex.pkg_summary", "corex.shm.info", "corex.shm.report",
           "corex.shm.stats"):
    mod.rpc(_n, _pending(_n), doc="Wired by the runtime issue (needs core state / shm).")
