"""Network, socket and flag PVs: $si $sp $Ri $Rp $pr $af $conid $fs ..., $mf $bf $sf, $rc.

Runs in: SIP workers. Reads `ctx.rcv` (RecvInfo) and the node's listen sockets
(`ctx.core.sockets`); `$fs`/`$fsn` writes set `ctx.force_socket`. No shared state.
"""
from __future__ import annotations

import socket as _socket
from typing import TYPE_CHECKING, Any, Optional

from sipcore.net.sockspec import find_socket, find_socket_by_name, parse_socket_spec
from sipcore.pv import registry
from sipcore.pv.errors import PvError
from sipcore.pv.msgpv import PROTO_IDS, reg
from sipcore.pv.registry import Inner
from sipcore.pv.spec import ConstPv, FuncPv, PvSpec, PvValue, to_str

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.net.addr import SocketInfo
    from sipcore.route.ctx import RouteCtx


def _bracket(ip: str) -> str:
    return f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip


def _uri(proto: str, ip: str, port: int, always_transport: bool) -> str:
    out = f"sip:{_bracket(ip)}:{port}"
    if always_transport or proto != "udp":
        out += f";transport={proto}"
    return out


# ---- source / receiving socket --------------------------------------------------------------

def _get_si(ctx: "RouteCtx") -> PvValue:
    return ctx.rcv.src_ip


def _get_siz(ctx: "RouteCtx") -> PvValue:
    return _bracket(ctx.rcv.src_ip)


def _get_sp(ctx: "RouteCtx") -> PvValue:
    return ctx.rcv.src_port


def _get_su(ctx: "RouteCtx") -> PvValue:
    r = ctx.rcv
    return _uri(r.proto, r.src_ip, r.src_port, False)


def _get_sut(ctx: "RouteCtx") -> PvValue:
    r = ctx.rcv
    return _uri(r.proto, r.src_ip, r.src_port, True)


def _get_sas(ctx: "RouteCtx") -> PvValue:
    r = ctx.rcv
    return f"{r.proto}:{_bracket(r.src_ip)}:{r.src_port}"


def rcv_socket(ctx: "RouteCtx") -> Optional["SocketInfo"]:
    """The listen socket the message came in on (RecvInfo.sock, else matched by address)."""
    r = ctx.rcv
    if r.sock is not None:
        return r.sock
    for s in ctx.core.sockets:
        if s.port == r.dst_port and s.proto == r.proto and s.ip == r.dst_ip:
            return s
    return None


def _get_Ri(ctx: "RouteCtx") -> PvValue:
    return ctx.rcv.dst_ip


def _get_Rp(ctx: "RouteCtx") -> PvValue:
    return ctx.rcv.dst_port


def _get_Ru(ctx: "RouteCtx") -> PvValue:
    r = ctx.rcv
    return _uri(r.proto, r.dst_ip, r.dst_port, False)


def _get_Rut(ctx: "RouteCtx") -> PvValue:
    r = ctx.rcv
    return _uri(r.proto, r.dst_ip, r.dst_port, True)


def _get_Rn(ctx: "RouteCtx") -> PvValue:
    s = rcv_socket(ctx)
    return s.name if s is not None and s.name else None


def _get_Ras(ctx: "RouteCtx") -> PvValue:
    r = ctx.rcv
    return f"{r.proto}:{_bracket(r.dst_ip)}:{r.dst_port}"


def _get_RAi(ctx: "RouteCtx") -> PvValue:
    s = rcv_socket(ctx)
    if s is not None and s.advertise_host:
        return s.advertise_host
    return ctx.rcv.dst_ip


def _get_RAp(ctx: "RouteCtx") -> PvValue:
    s = rcv_socket(ctx)
    if s is not None and s.advertise_port:
        return s.advertise_port
    return ctx.rcv.dst_port


def _get_RAu(ctx: "RouteCtx") -> PvValue:
    return _uri(ctx.rcv.proto, str(_get_RAi(ctx)), int(_get_RAp(ctx) or 0), False)


def _get_RAut(ctx: "RouteCtx") -> PvValue:
    return _uri(ctx.rcv.proto, str(_get_RAi(ctx)), int(_get_RAp(ctx) or 0), True)


def _get_pr(ctx: "RouteCtx") -> PvValue:
    return ctx.rcv.proto


def _get_prid(ctx: "RouteCtx") -> PvValue:
    return PROTO_IDS.get(ctx.rcv.proto, 0)


def _get_conid(ctx: "RouteCtx") -> PvValue:
    r = ctx.rcv
    return r.conn_id if r.proto != "udp" and r.conn_id else None


AF_IDS = {4: int(_socket.AF_INET), 6: int(_socket.AF_INET6)}


def _get_af_id(ctx: "RouteCtx") -> PvValue:
    return AF_IDS.get(ctx.rcv.af, 0)


def _get_af_name(ctx: "RouteCtx") -> PvValue:
    return "IPv6" if ctx.rcv.af == 6 else "IPv4"


reg("si", _get_si, aliases=("src_ip",), doc="source IP")
reg("siz", _get_siz, doc="source IP, IPv6 in brackets")
reg("sp", _get_sp, doc="source port")
reg("su", _get_su, doc="source as URI")
reg("sut", _get_sut, doc="source as URI with transport")
reg("sas", _get_sas, doc="source as proto:ip:port")
reg("Ri", _get_Ri, doc="local receiving IP")
reg("Rp", _get_Rp, doc="local receiving port")
reg("Ru", _get_Ru, doc="receiving socket as URI")
reg("Rut", _get_Rut, doc="receiving socket as URI with transport")
reg("Rn", _get_Rn, doc="receiving socket name")
reg("Ras", _get_Ras, doc="receiving socket as proto:ip:port")
reg("RAi", _get_RAi, doc="advertised receiving IP")
reg("RAp", _get_RAp, doc="advertised receiving port")
reg("RAu", _get_RAu, doc="advertised receiving socket as URI")
reg("RAut", _get_RAut, doc="advertised receiving socket as URI with transport")
reg("pr", _get_pr, aliases=("proto",), doc="transport of the received message")
reg("prid", _get_prid, doc="transport id")
reg("conid", _get_conid, doc="TCP/TLS connection id")


def _af_factory(inner: Optional[str], _m: Any) -> PvSpec:
    attr = (inner or "id").strip()
    if attr == "id":
        return FuncPv(_get_af_id)
    if attr == "name":
        return FuncPv(_get_af_name)
    raise PvError(f"unknown attribute $af({attr}); expected id|name")


registry.register("af", _af_factory, Inner.OPTIONAL, doc="address family of the received message")

_K = {"UDP": 1, "TCP": 2, "TLS": 3, "SCTP": 4, "WS": 5, "WSS": 6,
      "IPv4": int(_socket.AF_INET), "IPv6": int(_socket.AF_INET6),
      "INET": int(_socket.AF_INET), "INET6": int(_socket.AF_INET6)}


def _k_factory(inner: Optional[str], _m: Any) -> PvSpec:
    key = (inner or "").strip()
    if key not in _K:
        raise PvError(f"unknown constant $K({key}); expected one of {'|'.join(_K)}")
    return ConstPv(_K[key])


registry.register("K", _k_factory, Inner.REQUIRED, doc="protocol / address family constants")


# ---- forced send socket ---------------------------------------------------------------------

def socket_from_value(ctx: "RouteCtx", value: PvValue) -> Optional["SocketInfo"]:
    """"udp:1.2.3.4:5060" -> the matching listen socket; $null/"" -> None; else PvError."""
    if value is None or value == "":
        return None
    text = to_str(value)
    try:
        spec = parse_socket_spec(text)
    except ValueError as e:
        raise PvError(str(e)) from None
    s = find_socket(ctx.core, spec)
    if s is None:
        raise PvError(f"no listen socket matches \"{text}\"")
    return s


def _get_fs(ctx: "RouteCtx") -> PvValue:
    s = ctx.force_socket
    return str(s) if s is not None else None


def _set_fs(ctx: "RouteCtx", value: PvValue) -> None:
    ctx.force_socket = socket_from_value(ctx, value)


def _get_fsn(ctx: "RouteCtx") -> PvValue:
    s = ctx.force_socket
    return (s.name or None) if s is not None else None


def _set_fsn(ctx: "RouteCtx", value: PvValue) -> None:
    if value is None or value == "":
        ctx.force_socket = None
        return
    s = find_socket_by_name(ctx.core, to_str(value))
    if s is None:
        raise PvError(f"no listen socket is named \"{value}\"")
    ctx.force_socket = s


def _get_fsp(ctx: "RouteCtx") -> PvValue:
    s = ctx.force_socket
    return s.port if s is not None else None


reg("fs", _get_fs, _set_fs, doc="forced send socket proto:ip:port")
reg("fsn", _get_fsn, _set_fsn, doc="forced send socket by name")
reg("fsp", _get_fsp, doc="port of the forced send socket")


# ---- flags, return code ----------------------------------------------------------------------

def _flag_value(value: PvValue, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFFFFFFFF
    t = value.strip()
    try:
        return int(t, 16 if t.lower().startswith("0x") else 10) & 0xFFFFFFFF
    except ValueError:
        raise PvError(f"invalid flags value {value!r} for {what}") from None


def _flags_pvs(attr: str, pv: str) -> None:
    def get(ctx: "RouteCtx") -> PvValue:
        return getattr(ctx, attr)

    def get_hex(ctx: "RouteCtx") -> PvValue:
        return "%08x" % getattr(ctx, attr)

    def set_(ctx: "RouteCtx", value: PvValue) -> None:
        setattr(ctx, attr, _flag_value(value, "$" + pv))

    reg(pv, get, set_, doc=f"{attr} as decimal")
    reg(pv[0] + "F", get_hex, set_, doc=f"{attr} as hex")


_flags_pvs("flags", "mf")
_flags_pvs("bflags", "bf")
_flags_pvs("sflags", "sf")


def _get_rc(ctx: "RouteCtx") -> PvValue:
    return ctx.rc


reg("rc", _get_rc, aliases=("retcode", "?"), doc="return code of the last function/route")
