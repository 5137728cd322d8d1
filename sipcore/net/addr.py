"""Address types shared by the transports and the routing layer (a leaf: stdlib only).

Runs in: every process. No shared state, no I/O.

* `SocketInfo`: a listening socket (`listen=proto:ip:port [advertise host:port] [name X]`).
* `RecvInfo`:   where a message came from and on which local socket (Kamailio `receive_info`).
* `Dest`:       where one buffer is sent (Kamailio `dest_info`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(slots=True)
class SocketInfo:
    """A listening socket (`listen=proto:ip:port [advertise host:port]`)."""

    proto: str
    ip: str
    port: int
    advertise_host: Optional[str] = None
    advertise_port: Optional[int] = None
    name: Optional[str] = None

    @property
    def af(self) -> int:
        return 6 if ":" in self.ip else 4

    def via_host(self) -> str:
        h = self.advertise_host or self.ip
        return f"[{h}]" if ":" in h and not h.startswith("[") else h

    def via_port(self) -> int:
        return self.advertise_port or self.port

    def __str__(self) -> str:
        ip = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.proto}:{ip}:{self.port}"


@dataclass(slots=True)
class RecvInfo:
    """Where a message came from and on which local socket (Kamailio `receive_info`)."""

    proto: str = "udp"          # udp | tcp | tls | ws | wss | sctp (lowercase)
    src_ip: str = "127.0.0.1"
    src_port: int = 5060
    dst_ip: str = "127.0.0.1"
    dst_port: int = 5060
    af: int = 4                 # 4 or 6
    conn_id: int = 0            # TCP/TLS connection id, 0 for UDP
    sock: Any = None            # the receiving SocketInfo, when known


@dataclass(slots=True)
class Dest:
    """Where to send one buffer."""

    proto: str
    ip: str
    port: int
    sock: Optional[SocketInfo] = None
    conn_id: int = 0            # TCP/TLS: send on this connection when it is still open
    no_connect: bool = False    # TCP/TLS: only over an existing connection (set_*_no_connect)
    close_after: bool = False   # TCP/TLS: close the connection once sent (set_*_close)


SIP_PORT = 5060
SIPS_PORT = 5061
#: transports where a reply goes back over the connection the request came on
RELIABLE_PROTOS = frozenset({"tcp", "tls", "ws", "wss", "sctp"})


def default_port(proto: str, secure: bool = False) -> int:
    """Port used when a URI or Via has none: 5061 for sips:/TLS/WSS, 5060 otherwise."""
    return SIPS_PORT if secure or proto in ("tls", "wss") else SIP_PORT
