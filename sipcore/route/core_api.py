"""CoreApi: the services the routing layer asks of the running core (or of the test harness).

Runs in: SIP workers. The runtime implementation sends on real sockets; the in-process harness
(`sipcore.testing`) records what would be sent. Protocol logic (building replies, Via handling)
does not live here: it lives in sipcore.msg.builder and sipcore.forward; this is only I/O and
facts about the local node.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

log = logging.getLogger("pykam.core")


def _route_source(ip: str, af: int) -> Optional[str]:
    """The local address the routing table uses to reach IP (Kamailio get_out_socket)."""
    import socket

    fam = socket.AF_INET6 if af == 6 else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.connect((ip, 9))
        return s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()


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
class Dest:
    """Where to send one buffer."""

    proto: str
    ip: str
    port: int
    sock: Optional[SocketInfo] = None
    conn_id: int = 0            # TCP/TLS: send on this connection when it is still open
    no_connect: bool = False    # TCP/TLS: only over an existing connection (set_*_no_connect)
    close_after: bool = False   # TCP/TLS: close the connection once sent (set_*_close)


@dataclass
class CoreApi:
    """Facts about this node plus a send primitive. Subclasses override `send`."""

    sockets: list[SocketInfo] = field(default_factory=list)
    aliases: list[tuple[str, Optional[int], Optional[str]]] = field(default_factory=list)
    globals: dict[str, Any] = field(default_factory=dict)   # cfg global params (typed)
    routes: Any = None        # sipcore.cfg.CompiledConfig, for modules that run routes
    _myself_cache: dict = field(default_factory=dict, repr=False)
    _sock_text_cache: dict = field(default_factory=dict, repr=False)

    def send(self, dest: Dest, data: bytes) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def socket_by_text(self, text: str) -> Optional[SocketInfo]:
        """The listen socket whose str() is TEXT ("proto:ip:port", as transactions store
        it), None when there is none. Cached: sockets do not change at run time."""
        cache = self._sock_text_cache
        if text in cache:
            return cache[text]
        found = next((s for s in self.sockets if str(s) == text), None)
        if len(cache) > 256:
            cache.clear()
        cache[text] = found
        return found

    # ---- myself -------------------------------------------------------------------------
    def is_myself(self, host: str, port: Optional[int] = None, proto: Optional[str] = None
                  ) -> bool:
        """Kamailio check_self(): host (and port, when given and non-zero) names this node.
        Answers are cached per process: sockets and aliases do not change at run time."""
        key = (host, port, proto)
        cache = self._myself_cache
        hit = cache.get(key)
        if hit is None:
            if len(cache) > 4096:
                cache.clear()
            hit = cache[key] = self._check_self(host, port, proto)
        return hit

    def _check_self(self, host: str, port: Optional[int], proto: Optional[str]) -> bool:
        h = host.strip().lower()
        if h.startswith("[") and h.endswith("]"):
            h = h[1:-1]
        try:
            h = str(ipaddress.ip_address(h))
        except ValueError:
            pass
        for s in self.sockets:
            if proto and s.proto != proto and not (proto in ("tcp", "ws") and s.proto in ("tcp", "ws")):
                continue
            names = {s.ip.lower()}
            if s.advertise_host:
                names.add(s.advertise_host.lower())
            if h in names and (not port or port == s.port or port == s.advertise_port):
                return True
        for ah, ap, aproto in self.aliases:
            if aproto and proto and aproto != proto:
                continue
            if h == ah.lower() and (not port or not ap or port == ap):
                return True
        return False

    def choose_socket(self, proto: str, ip: str) -> Optional[SocketInfo]:
        """Outgoing socket: same proto and address family as the destination; with
        `mhomed=1`, the socket bound to the source address the kernel's routing table picks
        for the destination (a connect() of an unsent UDP socket: no packet leaves)."""
        af = 6 if ":" in ip else 4
        if self.globals.get("mhomed"):
            src = _route_source(ip, af)
            if src is not None:
                for s in self.sockets:
                    if s.proto == proto and s.ip == src:
                        return s
        first = None
        for s in self.sockets:
            if s.proto == proto:
                if s.af == af:
                    return s
                first = first or s
        return first

    def get_global(self, name: str, default: Any = None) -> Any:
        return self.globals.get(name, default)
