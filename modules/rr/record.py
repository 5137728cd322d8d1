"""Record-Route insertion (Kamailio rr/record.c).

Runs in: SIP workers. Per-message state only (the rr slot, send-time lumps). The Record-Route lines are
send-time lumps (sipcore.route.sendlumps): the inbound RR names the socket the request came
in on, the outbound RR (double RR) the socket it leaves by, and the outbound one appears only
when the two differ (Kamailio COND_IF_DIFF_REALMS) or when enable_double_rr=2.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from sipcore.errors import ParseError
from sipcore.route import sendlumps

from .state import RR

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.net.addr import SocketInfo
    from sipcore.route.ctx import RouteCtx

KIND = "rr"
_TRANSPORT = {"udp": "", "tcp": "tcp", "tls": "tls", "sctp": "sctp", "ws": "ws", "wss": "wss"}


@dataclass
class RRConfig:
    """The module parameters record.py needs (read once per call from mod.p)."""

    full_lr: bool = False
    append_fromtag: bool = True
    double_rr: int = 1
    add_username: bool = False
    custom_user_avp: Optional[str] = None
    ignore_sips: bool = False
    sockname_mode: bool = False


@dataclass
class RecordRoute:
    """One record_route*() call: rendered when the request is sent."""

    cfg: RRConfig
    user: str
    ftag: Optional[str]
    sips: bool
    params: list[str] = field(default_factory=list)     # ";a=b" items (call + add_rr_param)
    preset: Optional[tuple[str, Optional[str]]] = None  # record_route_preset addresses
    advertised: Optional[str] = None                   # record_route_advertised_address
    kind: str = KIND

    # ---- rendering ----------------------------------------------------------------------
    def _uri(self, hostport: str, r2: bool, sockname: Optional[str] = None) -> str:
        scheme = "sips" if self.sips and not self.cfg.ignore_sips else "sip"
        user = f"{self.user}@" if self.user else ""
        out = f"{scheme}:{user}{hostport}"
        if r2:
            out += ";r2=on"
        out += ";lr=on" if self.cfg.full_lr else ";lr"
        if self.ftag is not None and self.cfg.append_fromtag:
            out += f";ftag={self.ftag}"
        if sockname and self.cfg.sockname_mode:
            out += f";sn={sockname}"
        return out + "".join(self.params)

    def lines(self, ctx: "RouteCtx", sock: "SocketInfo") -> list[str]:
        if self.preset is not None:
            first, second = self.preset
            if second is None:
                return [f"Record-Route: <{self._preset_uri(first, False)}>"]
            return [f"Record-Route: <{self._preset_uri(first, True)}>",
                    f"Record-Route: <{self._preset_uri(second, True)}>"]
        inbound = inbound_socket(ctx)
        if self.advertised is not None:
            hp = self.advertised + _transport(sock.proto)
            return [f"Record-Route: <{self._uri(hp, False)}>"]
        double = self.cfg.double_rr == 2 or (self.cfg.double_rr == 1 and inbound is not None
                                             and _realm(inbound) != _realm(sock))
        in_hp = address(ctx, inbound) if inbound is not None else _rcv_hostport(ctx)
        in_name = inbound.name if inbound is not None else None
        if not double:
            return [f"Record-Route: <{self._uri(in_hp, False, in_name)}>"]
        return [f"Record-Route: <{self._uri(address(ctx, sock), True, sock.name)}>",
                f"Record-Route: <{self._uri(in_hp, True, in_name)}>"]

    def _preset_uri(self, text: str, r2: bool) -> str:
        t = text.strip()
        if t.startswith(("sip:", "sips:")):
            base = t
        else:
            scheme = "sips" if self.sips and not self.cfg.ignore_sips else "sip"
            user = f"{self.user}@" if self.user else ""
            base = f"{scheme}:{user}{t}"
        out = base + (";r2=on" if r2 else "")
        out += ";lr=on" if self.cfg.full_lr else ";lr"
        if self.ftag is not None and self.cfg.append_fromtag:
            out += f";ftag={self.ftag}"
        return out + "".join(self.params)


def _realm(s: "SocketInfo") -> tuple[str, str, int]:
    return (s.proto, s.ip, s.port)


def _transport(proto: str) -> str:
    t = _TRANSPORT.get(proto, proto)
    return f";transport={t}" if t else ""


def address(ctx: "RouteCtx", sock: "SocketInfo") -> str:
    """host[:port][;transport=x] for SOCK as Kamailio's SUBST_*_ALL renders it: the port is
    left out when it is 5060 and not advertised; UDP gets no transport param."""
    host = ctx.advertised_address or sock.advertise_host or sock.ip
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = ctx.advertised_port or sock.advertise_port
    advertised = port is not None
    port = port or sock.port
    hp = host if (port == 5060 and not advertised) else f"{host}:{port}"
    return hp + _transport(sock.proto)


def inbound_socket(ctx: "RouteCtx") -> Optional["SocketInfo"]:
    """The listen socket the message came in on."""
    if ctx.rcv.sock is not None:
        return ctx.rcv.sock
    for s in ctx.core.sockets:
        if s.proto == ctx.rcv.proto and s.port == ctx.rcv.dst_port and s.ip == ctx.rcv.dst_ip:
            return s
    for s in ctx.core.sockets:
        if s.proto == ctx.rcv.proto and s.port == ctx.rcv.dst_port:
            return s
    return None


def _rcv_hostport(ctx: "RouteCtx") -> str:
    ip = ctx.rcv.dst_ip
    host = f"[{ip}]" if ":" in ip else ip
    hp = host if ctx.rcv.dst_port == 5060 else f"{host}:{ctx.rcv.dst_port}"
    return hp + _transport(ctx.rcv.proto)


def rr_user(ctx: "RouteCtx", cfg: RRConfig) -> str:
    """add_username=1: custom_user_avp value, else the R-URI user."""
    if not cfg.add_username:
        return ""
    if cfg.custom_user_avp:
        from sipcore.pv import parse_pv

        v = parse_pv(cfg.custom_user_avp).get(ctx)
        if v is not None and str(v):
            return str(v)
    try:
        return ctx.msg.parsed_ruri.user or ""
    except ParseError:              # a bad R-URI only means "no user"
        return ""


def new_record_route(ctx: "RouteCtx", cfg: RRConfig, params: str = "") -> RecordRoute:
    """A RecordRoute for ctx (From-tag, sips, user, params given + queued add_rr_param)."""
    msg = ctx.msg
    try:
        sips = msg.parsed_ruri.scheme.lower() == "sips"
    except ParseError:              # unparseable R-URI: plain sip
        sips = False
    rr = RecordRoute(cfg=cfg, user=rr_user(ctx, cfg), ftag=msg.from_tag, sips=sips)
    if params:
        rr.params.append(params if params.startswith(";") else ";" + params)
    st = RR.peek(ctx)
    if st is not None:
        rr.params.extend(st.param_buf)
    return rr


def add(ctx: "RouteCtx", rr: RecordRoute) -> None:
    sendlumps.add(ctx, rr)


def add_param(ctx: "RouteCtx", param: str) -> None:
    """add_rr_param(): to the RRs already added and to those added later (rr_param_buf)."""
    p = param if param.startswith(";") else ";" + param
    RR.of(ctx).param_buf.append(p)
    for rr in sendlumps.all_of(ctx, KIND):
        rr.params.append(p)  # type: ignore[attr-defined]


def remove_all(ctx: "RouteCtx") -> int:
    st = RR.peek(ctx)
    if st is not None:
        st.param_buf.clear()
    return sendlumps.remove(ctx, KIND)


def any_added(ctx: "RouteCtx") -> bool:
    return bool(sendlumps.all_of(ctx, KIND))
