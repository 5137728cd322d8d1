"""Socket specifications as the cfg writes them: `[proto:]addr[:port]` (force_send_socket,
set_send_socket, set_recv_socket) and their lookup among the listen sockets.

Runs in: the master (compile-time fixups) and SIP workers (lookups). No shared state.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.net.addr import SocketInfo
    from sipcore.net.node import CoreApi

PROTOS = ("udp", "tcp", "tls", "sctp", "ws", "wss")


@dataclass(frozen=True, slots=True)
class SocketSpec:
    proto: Optional[str]     # None: any
    host: str                # IPv6 without brackets
    port: Optional[int]      # None: any

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        out = f"{self.proto}:{host}" if self.proto else host
        return f"{out}:{self.port}" if self.port else out


def parse_socket_spec(text: str) -> SocketSpec:
    """"udp:10.0.0.1:5060", "10.0.0.1", "tcp:[::1]:5070", "[::1]" -> SocketSpec; ValueError."""
    t = text.strip()
    if not t:
        raise ValueError("empty socket specification")
    proto: Optional[str] = None
    head, sep, rest = t.partition(":")
    if sep and head.lower() in PROTOS:
        proto, t = head.lower(), rest
    port: Optional[int] = None
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise ValueError(f"bad IPv6 address in socket \"{text}\"")
        host, tail = t[1:end], t[end + 1:]
        if tail:
            if not tail.startswith(":"):
                raise ValueError(f"bad socket specification \"{text}\"")
            port = _port(tail[1:], text)
    elif t.count(":") > 1:
        host = t                                   # bare IPv6, no port
    else:
        host, sep, p = t.partition(":")
        if sep:
            port = _port(p, text)
    if not host:
        raise ValueError(f"missing address in socket \"{text}\"")
    return SocketSpec(proto, host, port)


def _port(text: str, whole: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"bad port in socket \"{whole}\"") from None
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in socket \"{whole}\"")
    return port


def _norm_host(h: str) -> str:
    h = h.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    try:
        return str(ipaddress.ip_address(h))
    except ValueError:
        return h


def find_socket(core: "CoreApi", spec: SocketSpec) -> Optional["SocketInfo"]:
    """The listen socket SPEC names (address or advertised name; port/proto if given)."""
    host = _norm_host(spec.host)
    for s in core.sockets:
        if spec.proto and s.proto != spec.proto:
            continue
        names = {_norm_host(s.ip)}
        if s.advertise_host:
            names.add(_norm_host(s.advertise_host))
        if host not in names:
            continue
        if spec.port and spec.port != s.port and spec.port != s.advertise_port:
            continue
        return s
    return None


def find_socket_by_name(core: "CoreApi", name: str) -> Optional["SocketInfo"]:
    for s in core.sockets:
        if s.name == name:
            return s
    return None
