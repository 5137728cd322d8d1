"""Stateless forwarding (Kamailio forward.c + the Via parts of msg_translator.c).

Runs in: SIP workers. Shared state: none (sockets and aliases are read through CoreApi; the
forwarded/error counters go through sipcore.stats).

* `forward_request(ctx, ...)`: the core `forward()` family. Destination = the given host, else
  `$du`, else the R-URI (transport param, maddr, sips -> TLS, default ports 5060/5061). Our Via
  goes on top with a stateless branch (RFC 3261 16.11); the sender's Via gets `received=` and
  `rport=` (RFC 3261 18.2.1, RFC 3581); the script's edits (lumps) are applied once.
* `forward_reply(ctx)`: a reply that is not ours to absorb: our Via is removed and the reply
  goes to the next Via (received/rport/maddr/sent-by, Kamailio update_sock_struct_from_via).
"""
from __future__ import annotations

import functools
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from sipcore import stats
from sipcore.errors import ParseError, PykamError
from sipcore.msg import parse_uri
from sipcore.msg.builder import build_request, make_branch
from sipcore.msg.lumps import BAND_SEND_LINES, make_edit
from sipcore.msg.spans import remove_via1, set_via1_received_rport
from sipcore.net.addr import RELIABLE_PROTOS as _RELIABLE
from sipcore.net.addr import Dest, SocketInfo, default_port
from sipcore.pv.vars import xavp_root_fields, xavp_serialize_fields
from sipcore.route import errcodes as E
from sipcore.route import sendlumps
from sipcore.route.ctx import VIA_SRVID, VIA_XAVP_FIELDS, VIA_XAVP_PARAMS

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg import Via
    from sipcore.route.ctx import RouteCtx

_KNOWN_PROTOS = frozenset({"udp", "tcp", "tls", "sctp", "ws", "wss"})


# ---- destinations ---------------------------------------------------------------------------

@dataclass(slots=True)
class NextHop:
    """A destination before name resolution."""

    host: str                   # without IPv6 brackets
    port: Optional[int]         # None: not given (default port / SRV decide)
    proto: Optional[str]        # None: not given (NAPTR would decide; UDP otherwise)
    secure: bool = False        # sips: URI


class ForwardError(PykamError):
    """A destination or socket problem; `code` is the Kamailio error code for $rc."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@functools.lru_cache(maxsize=4096)
def canonical_ip(host: str) -> Optional[str]:
    """The canonical text of HOST when it is an IP address ("[::01]" -> "::1"), else None.
    Cached: the same few peer addresses come back on every message."""
    try:
        return str(ipaddress.ip_address(strip_brackets(host)))
    except ValueError:
        return None


def is_ip(host: str) -> bool:
    return canonical_ip(host) is not None


def same_ip(a: str, b: str) -> bool:
    """True if A and B are the same IP address (text forms may differ, e.g. IPv6 zeros)."""
    ca = canonical_ip(a)
    return ca is not None and ca == canonical_ip(b)


def uri_next_hop(uri_text: str) -> NextHop:
    """Next hop named by a SIP URI: maddr, else host; port; transport param; sips."""
    try:
        uri = parse_uri(uri_text)
    except ParseError as exc:
        raise ForwardError(E.E_BAD_URI, f"bad URI \"{uri_text}\": {exc}") from None
    scheme = (uri.scheme or "sip").lower()
    if scheme not in ("sip", "sips"):
        raise ForwardError(E.E_BAD_URI, f"cannot forward to a {scheme}: URI")
    secure = scheme == "sips"
    transport = (uri.transport or "").lower() or None
    if transport is not None and transport not in _KNOWN_PROTOS:
        raise ForwardError(E.E_BAD_URI, f"unsupported transport \"{transport}\" in {uri_text}")
    if secure and transport == "udp":
        raise ForwardError(E.E_BAD_URI, f"secure URI with transport=udp: {uri_text}")
    if secure and transport in (None, "tcp"):
        transport = "tls"
    maddr = uri.param("maddr")
    host = maddr if maddr else uri.host
    if not host:
        raise ForwardError(E.E_BAD_URI, f"no host in URI {uri_text}")
    return NextHop(strip_brackets(host), uri.port, transport, secure)


def resolve(hop: NextHop) -> tuple[str, int, str]:
    """(ip, port, proto) of HOP. Numeric hosts are used as they are; names via getaddrinfo.

    RFC 3263 NAPTR/SRV selection belongs here (a name without port/transport); until the DNS
    resolver exists, names resolve with A/AAAA and the default port of the transport.
    """
    proto = hop.proto or ("tls" if hop.secure else "udp")
    port = hop.port or default_port(proto, hop.secure)
    host = hop.host
    ip = canonical_ip(host)
    if ip is not None:
        return ip, port, proto
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ForwardError(E.E_BAD_ADDRESS, f"cannot resolve \"{host}\": {exc}") from None
    v4 = [i for i in infos if i[0] == socket.AF_INET]
    chosen = (v4 or infos)[0]
    return str(chosen[4][0]), port, proto


def choose_send_socket(ctx: "RouteCtx", proto: str, ip: str) -> SocketInfo:
    """Outgoing socket: the forced one (same address, matching proto) or CoreApi's choice.

    Kamailio get_send_socket2(): a forced socket of another protocol is swapped for the
    listen socket with the same address and the wanted protocol; if there is none the forced
    socket is ignored with a warning.
    """
    forced: Optional[SocketInfo] = ctx.force_socket
    if forced is not None:
        if forced.proto == proto:
            return forced
        for s in ctx.core.sockets:
            if s.proto == proto and same_ip(s.ip, forced.ip) and s.port == forced.port:
                return s
        for s in ctx.core.sockets:
            if s.proto == proto and same_ip(s.ip, forced.ip):
                return s
        log.warning("protocol mismatch: forced socket %s, destination %s:%s", forced, proto, ip)
    sock = ctx.core.choose_socket(proto, ip)
    if sock is None:
        raise ForwardError(E.E_NO_SOCKET, f"no {proto} socket to send to {ip}")
    if is_ip(ip) and sock.af != (6 if ":" in ip else 4):
        raise ForwardError(E.E_NO_SOCKET, f"no {proto} socket of the address family of {ip}")
    return sock


# ---- Via handling ---------------------------------------------------------------------------

def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _via_field(ctx: "RouteCtx", name: str) -> Optional[str]:
    """$xavp(<xavp_via_fields>=>NAME) when corex via_use_xavp_fields(1) is on (Kamailio
    FL_USE_XAVP_VIA_FIELDS), else None."""
    if not ctx.via_ctl & VIA_XAVP_FIELDS:
        return None
    root = ctx.core.get_global("xavp_via_fields")
    if not root:
        return None
    for f in xavp_root_fields(ctx, root):
        if f.name == name and f.value not in (None, ""):
            return str(f.value)
    return None


_VIA_PROTOS = ("udp", "tcp", "tls", "sctp", "ws", "wss")


def via_sent_by(ctx: "RouteCtx", sock: SocketInfo) -> tuple[str, int | str]:
    """Host and port for our Via: the xavp_via_fields address/port (via_use_xavp_fields) >
    set_advertised_* > global advertised_* > socket advertise."""
    xhost, xport = _via_field(ctx, "address"), _via_field(ctx, "port")
    host = xhost or ctx.advertised_address or ctx.core.get_global("advertised_address") or None
    port = ctx.advertised_port or ctx.core.get_global("advertised_port") or None
    return (_bracket(host) if host else sock.via_host(),
            xport if xport else int(port) if port else sock.via_port())


def build_via_value(ctx: "RouteCtx", sock: SocketInfo, proto: str, branch: str) -> str:
    host, port = via_sent_by(ctx, sock)
    xproto = _via_field(ctx, "proto")
    if xproto is not None and xproto.lower() in _VIA_PROTOS:
        proto = xproto
    value = f"SIP/2.0/{proto.upper()} {host}:{port};branch={branch}"
    if ctx.local_rport:
        value += ";rport"
    rcv = ctx.rcv
    if rcv.conn_id and rcv.proto in _RELIABLE:
        # Kamailio id_builder(): the connection the request came on, so that a reply (which
        # Via 2 would send to the peer's advertised port) goes back on that connection
        value += f";i={rcv.conn_id:x}"
    if ctx.via_ctl & VIA_SRVID:             # corex via_add_srvid(1)
        value += f";srvid={int(ctx.core.get_global('server_id', 0) or 0)}"
    if ctx.via_ctl & VIA_XAVP_PARAMS:       # corex via_add_xavp_params(1)
        root = ctx.core.get_global("xavp_via_params")
        params = xavp_serialize_fields(xavp_root_fields(ctx, root)) if root else ""
        if params:
            value += ";" + params[:-1]
    return value


def add_via1_received_rport(ctx: "RouteCtx") -> None:
    """RFC 3261 18.2.1 / RFC 3581 on the request's top Via, as Kamailio does when forwarding:
    received=<src ip> when the sent-by host is not the source IP (or received= was already
    there: it is rewritten); rport=<src port> when the Via had ;rport or force_rport() ran.
    The old received/rport params are deleted and the new ones appended after the others."""
    msg, rcv = ctx.msg, ctx.rcv
    if ctx.via1_rcv_params_added:
        return          # already edited for an earlier forward of this message
    via = msg.via1
    if via is None:
        raise ForwardError(E.E_BAD_VIA, "no Via header")
    add_received = via.received is not None or not same_ip(via.host, rcv.src_ip)
    add_rport = ctx.force_rport or via.rport is not None
    if not (add_received or add_rport):
        return
    set_via1_received_rport(msg, rcv.src_ip if add_received else None,
                            rcv.src_port if add_rport else None)
    ctx.via1_rcv_params_added = True


def build_forwarded(ctx: "RouteCtx", sock: SocketInfo, proto: str, branch: str) -> bytes:
    """The request as it leaves by SOCK: send-time lines (Record-Route), our Via, the
    message's edits. The send-time lines are rendered for this socket and not stored."""
    msg = ctx.msg
    via = build_via_value(ctx, sock, proto, branch)
    top = sendlumps.render(ctx, sock)
    if not top:
        return build_request(msg, via=via)
    # the send-time lines with our Via under them, as one insertion at the first header:
    # above the script's insertions there (insert_hf), as Kamailio puts them
    pos = msg.headers[0].start
    lines = b"".join([_crlf_line(line) for line in top]) + _crlf_line("Via: " + via)
    return msg.build([make_edit(pos, BAND_SEND_LINES, 0, pos, lines)])


def _crlf_line(text: str) -> bytes:
    b = text.encode("utf-8", "surrogateescape").rstrip(b"\r\n")
    if b"\r" in b or b"\n" in b:
        raise ParseError(f"header line with CR/LF: {text!r}")
    return b + b"\r\n"


def run_onsend(ctx: "RouteCtx", dest: Dest, buf: bytes) -> bool:
    """Kamailio run_onsend(): run onsend_route (if the config has one) with the destination
    and buffer about to be sent (ctx.send_dest, ctx.send_buf: snd_ip, $snd...).
    False when the route dropped the message. The route type, route name and the message's
    dropped state are restored afterwards: `drop` there only cancels this send."""
    routes = ctx.core.routes
    if routes is None or not routes.has_route("onsend"):
        return True
    saved = (ctx.route_type, ctx.route_name, ctx.dropped)
    ctx.send_dest = dest
    ctx.send_buf = buf
    ctx.dropped = False
    try:
        routes.run("onsend", None, ctx)
        dropped = ctx.dropped
    finally:
        ctx.route_type, ctx.route_name, ctx.dropped = saved
        ctx.send_dest = None
        ctx.send_buf = None
    return not dropped


# ---- requests -------------------------------------------------------------------------------

def forward_request(ctx: "RouteCtx", host: Optional[str] = None, port: Optional[int] = None,
                    proto: Optional[str] = None, uri_port: bool = True) -> int:
    """Forward ctx.msg statelessly; 1 on success, a negative Kamailio error code otherwise.

    HOST None: next hop from $du if set, else from the R-URI (with its port when URI_PORT,
    else the default port), PORT overriding the port. PROTO forces the transport.
    """
    msg = ctx.msg
    try:
        if host is None:
            target = ctx.dst_uri or msg.ruri
            hop = uri_next_hop(target)
            if not uri_port:
                hop.port = None
        else:
            hop = NextHop(strip_brackets(host), None, None)
        if port is not None:
            hop.port = port
        if proto is not None:
            if hop.secure and proto == "udp":
                raise ForwardError(E.E_BAD_URI, "secure URI forwarded over UDP")
            hop.proto = proto
        ip, dport, dproto = resolve(hop)
        sock = choose_send_socket(ctx, dproto, ip)
        add_via1_received_rport(ctx)
        branch = make_branch(msg)
        buf = build_forwarded(ctx, sock, dproto, branch)
        mtu = int(ctx.core.get_global("udp_mtu", 0) or 0)
        try_proto = (ctx.udp_mtu_try_proto
                     or ctx.core.get_global("udp_mtu_try_proto"))
        if dproto == "udp" and mtu and len(buf) > mtu and try_proto and try_proto != "udp":
            # Kamailio forward_request(): too big for UDP, rebuild for the fallback transport
            dproto = str(try_proto).lower()
            sock = choose_send_socket(ctx, dproto, ip)
            buf = build_forwarded(ctx, sock, dproto, branch)
    except ForwardError as exc:
        log.error("forward: %s", exc.reason)
        stats.inc("core:err_requests")
        return exc.code
    except (ParseError, ValueError) as exc:
        log.error("forward: cannot build the request: %s", exc)
        stats.inc("core:err_requests")
        return E.E_BAD_REQ
    dest = Dest(dproto, ip, dport, sock, conn_id=ctx.otcpid if host is None and dproto in _RELIABLE else 0,
                no_connect=ctx.forward_no_connect,
                close_after=ctx.forward_close)
    if not run_onsend(ctx, dest, buf):
        log.info("request to %s:%s:%s dropped by onsend_route", dproto, _bracket(ip), dport)
        stats.inc("core:drop_requests")
        return E.E_UNSPEC
    if not ctx.core.send(dest, buf):
        log.error("forward: send to %s:%s:%s failed", dproto, _bracket(ip), dport)
        stats.inc("core:err_requests")
        return E.E_SEND
    stats.inc("core:fwd_requests")
    return 1


# ---- replies --------------------------------------------------------------------------------

def via_reply_hop(via: "Via") -> NextHop:
    """Kamailio update_sock_struct_from_via() for a Via below ours: host from maddr, else
    received, else the sent-by host; port from rport=, else the Via port, else the default."""
    host = via.maddr or via.received or via.host
    port = _port_value(via.rport) or via.port or None
    return NextHop(strip_brackets(host), port, (via.transport or "udp").lower())


def forward_reply(ctx: "RouteCtx") -> int:
    """Forward a received reply statelessly to the next Via; 1 or a negative error code."""
    msg = ctx.msg
    via1 = msg.via1
    if via1 is None:
        log.error("forward_reply: reply without Via")
        stats.inc("core:err_replies")
        return E.E_BAD_VIA
    v1proto = (via1.transport or "udp").lower()
    if not ctx.core.is_myself(via1.host, via1.port or default_port(v1proto), v1proto):
        log.error("forward_reply: host in first Via is not me: %s:%s - reply dropped",
                  via1.host, via1.port or '')
        ctx.dropped = True
        stats.inc("core:drop_replies")
        return E.E_BAD_VIA
    via2 = msg.via2
    if via2 is None:
        log.debug("reply cannot be forwarded - no 2nd Via")
        stats.inc("core:drop_replies")
        return E.E_BAD_VIA
    try:
        ip, port, proto = resolve(via_reply_hop(via2))
        sock = choose_send_socket(ctx, proto, ip)
        remove_via1(msg)
        buf = msg.build()
    except ForwardError as exc:
        log.error("forward_reply: %s", exc.reason)
        stats.inc("core:err_replies")
        return exc.code
    dest = Dest(proto, ip, port, sock, conn_id=_via_conn_id(via1) if proto in _RELIABLE else 0)
    if ctx.core.get_global("onsend_route_reply") and not run_onsend(ctx, dest, buf):
        log.info("reply to %s:%s:%s dropped by onsend_route", proto, _bracket(ip), port)
        stats.inc("core:drop_replies")
        return E.E_UNSPEC
    if not ctx.core.send(dest, buf):
        log.error("forward_reply: send to %s:%s:%s failed", proto, _bracket(ip), port)
        stats.inc("core:err_replies")
        return E.E_SEND
    stats.inc("core:fwd_replies")
    return 1


def _via_conn_id(via: "Via") -> int:
    """The connection id our Via carries in `;i=` (see build_via_value), or 0."""
    raw = via.param("i")
    if not raw:
        return 0
    try:
        return int(raw, 16)
    except ValueError:
        return 0


def _port_value(value: Optional[str]) -> Optional[int]:
    if not value:
        return None
    try:
        port = int(value)
    except ValueError:
        return None
    return port if 0 < port < 65536 else None
