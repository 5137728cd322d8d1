"""CoreApi: this node as the routing layer sees it: listen sockets, aliases, socket choice, send.

Runs in: every process that routes or sends. `NetCore` sends on real sockets; the in-process
harness (`sipcore.testing`) records what would be sent. Protocol logic (building replies, Via
handling) does not live here: it lives in sipcore.msg.builder and sipcore.forward; this is only
I/O and facts about the local node.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

from sipcore.net.addr import Dest, SocketInfo
from sipcore.net.tcp import STREAM_PROTOS, bind_stream_listeners
from sipcore.net.udp import UdpSockets, bind_udp

log = logging.getLogger(__name__)


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


@dataclass
class CoreApi:
    """Facts about this node plus a send primitive. Subclasses override `send`."""

    sockets: list[SocketInfo] = field(default_factory=list)
    aliases: list[tuple[str, Optional[int], Optional[str]]] = field(default_factory=list)
    globals: dict[str, Any] = field(default_factory=dict)   # cfg global params (typed)
    routes: Any = None        # sipcore.cfg.CompiledConfig, for modules that run routes
    stream: Any = None        # sipcore.net.tcp.StreamNet when TCP workers run, else None
    _myself_cache: dict = field(default_factory=dict, repr=False)
    _sock_text_cache: dict = field(default_factory=dict, repr=False)

    def send(self, dest: Dest, data: bytes) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def add_tcp_alias(self, conn_id: int, port: int, proto: str) -> bool:
        """force_tcp_alias(): connection CONN_ID is also reachable at its remote ip:PORT.
        False when the node has no stream connections (overridden by NetCore)."""
        return False

    def tcp_conn_alive(self, conn_id: int) -> bool:
        """Stream connection CONN_ID is open (Kamailio tcpconn_get(id) in state OK). False
        when the node has no stream connections (overridden by NetCore)."""
        return False

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


class NetCore(CoreApi):
    """The CoreApi over this server's real sockets: UDP sockets bound here (sipcore.net.udp),
    TCP/TLS through the StreamNet the server installs as `stream` before forking."""

    def __init__(self, sockets: list[SocketInfo], **kw: Any) -> None:
        super().__init__(sockets=sockets, **kw)
        self.udp = UdpSockets([])
        self.stream_listeners: list[tuple[Any, SocketInfo]] = []

    @property
    def udp_endpoints(self) -> list[tuple[Any, SocketInfo]]:
        return self.udp.endpoints

    def bind(self, maxbuffer: int = 262144) -> None:
        """Master, before fork: bind the stream listen sockets (the ones disable_tcp or a
        missing TLS leave out are dropped from `sockets`), then the UDP ones."""
        self.stream_listeners = bind_stream_listeners(self.sockets, self.globals)
        bound = {id(si) for _, si in self.stream_listeners}
        self.sockets[:] = [si for si in self.sockets
                           if si.proto not in STREAM_PROTOS or id(si) in bound]
        for si in self.sockets:
            if si.proto not in STREAM_PROTOS and si.proto != "udp":
                log.warning("listen %s: %s is not served in this version; skipped",
                            si, si.proto)
        self.udp = UdpSockets(bind_udp(self.sockets, maxbuffer))

    def drop_stream_listeners(self) -> None:
        """No TCP workers will run (the no-fork mode): close the stream listen sockets."""
        for sock, si in self.stream_listeners:
            sock.close()
            self.sockets.remove(si)
        self.stream_listeners = []

    def send(self, dest: Dest, data: bytes) -> bool:
        if dest.proto == "udp":
            return self.udp.send(dest, data)
        if self.stream is not None and dest.proto in STREAM_PROTOS:
            return self.stream.send(dest, data, no_connect=dest.no_connect,
                                    close_after=dest.close_after)
        log.error("send to %s:%s:%s: transport not available in this version",
                  dest.proto, dest.ip, dest.port)
        return False

    def add_tcp_alias(self, conn_id: int, port: int, proto: str) -> bool:
        """force_tcp_alias(): the connection is also reachable at its remote ip:PORT."""
        if self.stream is None:
            return False
        return self.stream.add_alias(conn_id, port, proto)

    def tcp_conn_alive(self, conn_id: int) -> bool:
        return self.stream is not None and self.stream.table.get(conn_id) is not None

    def close(self) -> None:
        self.udp.close()
        for s, _ in self.stream_listeners:
            s.close()
        self.stream_listeners = []
