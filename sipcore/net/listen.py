"""Listen and alias addresses: `listen=`/`alias=` values and `-l` options, parsed once, and the
listen sockets and aliases of a node built from them.

Runs in: the master at configuration load (the cfg checker types `listen=`/`alias=` values with
`listen_addr()`/`alias_addr()`) and at start-up (`core_from_config()`). No I/O except the
reverse lookups of `auto_aliases`.
"""
from __future__ import annotations

import dataclasses
import re
import socket
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from sipcore.net.addr import SocketInfo
from sipcore.net.node import CoreApi

Alias = tuple[str, Optional[int], Optional[str]]      # (host, port, proto), CoreApi.aliases


@dataclass(frozen=True)
class ListenAddr:
    """One `listen=[proto:]addr[:port] [advertise addr[:port]] [name "n"] [virtual]`."""

    proto: Optional[str]          # udp|tcp|tls|sctp|ws|wss, None = every enabled transport
    host: str                     # IP (IPv6 without brackets), hostname or interface name
    port: Optional[int]           # None = default port (5060, 5061 for TLS)
    advertise_host: Optional[str] = None
    advertise_port: Optional[int] = None
    name: Optional[str] = None
    virtual: bool = False
    workers: int = 0              # socket_workers given just before this listen line

    def sockets(self, port: int = 5060) -> list[SocketInfo]:
        """The listen sockets: one per transport (udp and tcp when none is named); PORT when
        the address has none (5061 for TLS)."""
        protos = [self.proto] if self.proto else ["udp", "tcp"]
        return [SocketInfo(p, self.host, self.port or (5061 if p == "tls" else port),
                           self.advertise_host, self.advertise_port, self.name)
                for p in protos]


@dataclass(frozen=True)
class AliasAddr:
    """One `alias=[proto:]host[:port]` (hosts matched by `myself`)."""

    proto: Optional[str]
    host: str
    port: Optional[int]

    def as_tuple(self) -> Alias:
        """The shape CoreApi.aliases uses: (host, port, proto)."""
        return (self.host, self.port, self.proto)


_HOSTPORT_RE = re.compile(
    r"^(?:(?P<proto>udp|tcp|tls|sctp|ws|wss|any|\*):)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+)"
    r"(?::(?P<port>\d+|\*))?$", re.IGNORECASE)


def parse_hostport(text: str, what: str) -> tuple[Optional[str], str, Optional[int]]:
    """`[proto:]host[:port]` -> (proto or None, host without brackets, port or None);
    ValueError naming WHAT."""
    m = _HOSTPORT_RE.match(text.strip())
    if not m:
        raise ValueError(f"bad {what} \"{text}\" (expected [proto:]address[:port])")
    proto = m.group("proto")
    proto = None if proto is None or proto in ("*", "any") else proto.lower()
    host = m.group("host")
    if host.startswith("["):
        host = host[1:-1]
    port_s = m.group("port")
    port = None if port_s in (None, "*") else int(port_s)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"bad port {port} in {what} \"{text}\"")
    return proto, host, port


def listen_addr(text: str, extra: Iterable[tuple[str, Any]] = (), workers: int = 0
                ) -> ListenAddr:
    """A `listen=` value with its `advertise`/`name`/`virtual` words; ValueError."""
    proto, host, port = parse_hostport(text, "listen address")
    adv_host: Optional[str] = None
    adv_port: Optional[int] = None
    name: Optional[str] = None
    virtual = False
    for key, val in extra:
        if key == "advertise":
            _, adv_host, adv_port = parse_hostport(str(val), "advertise address")
        elif key == "name":
            name = str(val)
        elif key == "virtual":
            virtual = True
    return ListenAddr(proto, host, port, adv_host, adv_port, name, virtual, workers)


def alias_addr(text: str) -> AliasAddr:
    proto, host, port = parse_hostport(text, "alias")
    return AliasAddr(proto, host, port)


def parse_listen(spec: str, default_port_: int = 5060) -> list[SocketInfo]:
    """A `-l` option: `udp:127.0.0.1:5060 [advertise 1.2.3.4:5080] [name x]` -> SocketInfo
    list. Without a protocol the address is UDP; `any:` gives UDP and TCP. ValueError."""
    parts = spec.split()
    if not parts:
        raise ValueError("empty listen address")
    extra: list[tuple[str, Any]] = []
    words = iter(parts[1:])
    for w in words:
        if w in ("advertise", "name"):
            val = next(words, None)
            if val is None:
                raise ValueError(f"listen \"{spec}\": {w} needs a value")
            extra.append((w, val.strip('"')))
        elif w == "virtual":
            extra.append((w, True))
        else:
            raise ValueError(f"listen \"{spec}\": unexpected \"{w}\"")
    la = listen_addr(parts[0], extra)
    if la.proto is None and not re.match(r"^(any|\*):", parts[0], re.IGNORECASE):
        la = dataclasses.replace(la, proto="udp")
    return la.sockets(default_port_)


def sockets_from_config(g: dict[str, Any], extra_listen: Iterable[str] = ()
                        ) -> list[SocketInfo]:
    """The listen sockets from the `listen=` globals G, or from `-l` options, which replace
    them, as in Kamailio. None at all: udp:127.0.0.1 on `port`."""
    port = int(g.get("port", 5060) or 5060)
    out: list[SocketInfo] = []
    if extra_listen:
        for spec in extra_listen:
            out.extend(parse_listen(spec, port))
    else:
        for la in g.get("listen") or ():
            out.extend(la.sockets(port))
    if not out:
        out.append(SocketInfo("udp", "127.0.0.1", port))
    return out


def aliases_from_config(g: dict[str, Any]) -> list[Alias]:
    return [a.as_tuple() for a in g.get("alias") or ()]


def auto_aliases(sockets: list[SocketInfo]) -> list[Alias]:
    """`auto_aliases=yes`: the names the resolver gives for the listen IPs (for loopback
    sockets this is /etc/hosts), as aliases matched by `myself`."""
    out: list[Alias] = []
    seen: set[str] = set()
    for si in sockets:
        if si.ip in seen or si.ip in ("0.0.0.0", "::"):
            continue
        seen.add(si.ip)
        try:
            name, aliases, _ = socket.gethostbyaddr(si.ip)
        except OSError:
            continue
        for n in [name, *aliases]:
            out.append((n, si.port, si.proto))
    return out


def core_from_config(cfg: Any, cls: Callable[..., CoreApi] = CoreApi,
                     extra_listen: Iterable[str] = (), resolve_aliases: bool = False
                     ) -> CoreApi:
    """The CoreApi (of class CLS) for the compiled config CFG; RESOLVE_ALIASES (the server,
    not the harness) applies auto_aliases."""
    g = cfg.globals
    core = cls(sockets=sockets_from_config(g, extra_listen))
    core.aliases = aliases_from_config(g)
    if resolve_aliases and g.get("auto_aliases", True):
        core.aliases += auto_aliases(core.sockets)
    core.globals = dict(g)
    core.routes = cfg
    return core
