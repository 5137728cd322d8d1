"""Runtime glue: listen sockets from the cfg, the socket-backed CoreApi, the UDP receive loop.

TCP/TLS: UdpCore.bind() also binds the stream listen sockets (sipcore.net.tcp), and send()
hands tcp/tls destinations to the StreamNet the server installs as `core.stream`.

Runs in: the server process. This is the single-process runtime of the first milestone: one
process binds the UDP listen sockets and runs receive_msg() for every datagram. The prefork
master (children per socket, timer and ctl processes, shm) replaces serve() in the runtime
milestone without changing receive_msg() or the routes.
"""
from __future__ import annotations

import os
import re
import selectors
import socket
from typing import Any, Callable, Iterable, Optional

from sipcore import log as klog
from sipcore.errors import ConfigError
from sipcore.route.core_api import CoreApi, Dest, SocketInfo
from sipcore.route.ctx import RecvInfo

_LISTEN_RE = re.compile(
    r"^(?:(?P<proto>udp|tcp|tls|sctp|ws|wss|any):)?"
    r"(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]]+)"
    r"(?::(?P<port>\d+))?$", re.IGNORECASE)


def parse_listen(spec: str, default_port: int = 5060) -> list[SocketInfo]:
    """`udp:127.0.0.1:5060 advertise 1.2.3.4:5080` -> SocketInfo list ("any" gives udp+tcp)."""
    parts = spec.split()
    adv_host: Optional[str] = None
    adv_port: Optional[int] = None
    name = None
    if "advertise" in parts:
        i = parts.index("advertise")
        if i + 1 >= len(parts):
            raise ValueError(f"listen \"{spec}\": advertise needs an address")
        a = parts[i + 1]
        m = re.match(r"^(\[[^\]]+\]|[^:]+)(?::(\d+))?$", a)
        if not m:
            raise ValueError(f"listen \"{spec}\": bad advertise address \"{a}\"")
        adv_host = m.group(1).strip("[]")
        adv_port = int(m.group(2)) if m.group(2) else None
    if "name" in parts:
        i = parts.index("name")
        if i + 1 < len(parts):
            name = parts[i + 1].strip('"')
    m = _LISTEN_RE.match(parts[0])
    if not m:
        raise ValueError(f"bad listen address \"{spec}\"")
    proto = (m.group("proto") or "udp").lower()
    host = m.group("host").strip("[]")
    port = int(m.group("port")) if m.group("port") else (5061 if proto == "tls" else default_port)
    if not 0 < port < 65536:
        raise ValueError(f"listen \"{spec}\": port out of range")
    protos = ["udp", "tcp"] if proto == "any" else [proto]
    return [SocketInfo(p, host, port, adv_host, adv_port, name) for p in protos]


def sockets_from_config(cfg: Any, extra_listen: Iterable[str] = ()) -> list[SocketInfo]:
    """listen= globals (or -l options, which replace them, as in Kamailio)."""
    g = cfg.globals
    port = int(g.get("port", 5060) or 5060)
    out: list[SocketInfo] = []
    if extra_listen:
        for spec in extra_listen:
            out.extend(parse_listen(spec, port))
    else:
        for la in g.get("listen") or ():
            if isinstance(la, str):
                out.extend(parse_listen(la, port))
                continue
            protos = [la.proto] if la.proto else ["udp", "tcp"]
            for p in protos:
                lport = la.port or (5061 if p == "tls" else port)
                out.append(SocketInfo(p, la.host.strip("[]"), lport, la.advertise_host,
                                      la.advertise_port, la.name))
    if not out:
        out.append(SocketInfo("udp", "127.0.0.1", port))
    return out


def aliases_from_config(cfg: Any) -> list[tuple[str, Optional[int], Optional[str]]]:
    out = []
    for a in cfg.globals.get("alias") or ():
        if not isinstance(a, str):
            out.append(a.as_tuple())
            continue
        a = a.strip().strip('"')
        proto = None
        m = re.match(r"^(udp|tcp|tls|sctp|ws|wss):(.*)$", a, re.IGNORECASE)
        if m:
            proto, a = m.group(1).lower(), m.group(2)
        m2 = re.match(r"^(\[[^\]]+\]|[^:]+)(?::(\d+))?$", a)
        if m2:
            out.append((m2.group(1).strip("[]"), int(m2.group(2)) if m2.group(2) else None,
                        proto))
    return out


def auto_aliases(sockets: list[SocketInfo]) -> list[tuple[str, Optional[int], Optional[str]]]:
    """`auto_aliases=yes`: the names the resolver gives for the listen IPs (for loopback
    sockets this is /etc/hosts), as aliases matched by `myself`."""
    out: list[tuple[str, Optional[int], Optional[str]]] = []
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
    """The CoreApi for CFG; RESOLVE_ALIASES (the server, not the harness) applies
    auto_aliases."""
    core = cls(sockets=sockets_from_config(cfg, extra_listen))
    core.aliases = aliases_from_config(cfg)
    if resolve_aliases and cfg.globals.get("auto_aliases", True):
        core.aliases += auto_aliases(core.sockets)
    core.globals = dict(cfg.globals)
    core.routes = cfg
    return core


class UdpCore(CoreApi):
    """CoreApi over real UDP sockets bound by this process."""

    def __init__(self, sockets: list[SocketInfo], **kw: Any) -> None:
        super().__init__(sockets=sockets, **kw)
        self.fds: dict[int, tuple[socket.socket, SocketInfo]] = {}
        # TCP/TLS: listen sockets bound by bind(), the runtime installed by the server
        # before fork (sipcore.net.tcp.StreamNet); None without stream listeners
        self.stream_listeners: list[tuple[socket.socket, SocketInfo]] = []
        self.stream: Any = None

    def bind(self, maxbuffer: int = 262144) -> None:
        from sipcore.net.tcp import STREAM_PROTOS, bind_stream_listeners

        self.stream_listeners = bind_stream_listeners(self.sockets, self.globals)
        bound = {id(si) for _, si in self.stream_listeners}
        # skipped TCP/TLS addresses (disable_tcp, TLS not enabled) are not ours at all
        self.sockets[:] = [si for si in self.sockets
                           if si.proto not in STREAM_PROTOS or id(si) in bound]
        for si in self.sockets:
            if si.proto != "udp":
                if si.proto not in STREAM_PROTOS:
                    klog.emit(klog.L_WARN, f"listen {si}: {si.proto} is not served in this "
                              "version; skipped")
                continue
            fam = socket.AF_INET6 if si.af == 6 else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_DGRAM)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, maxbuffer)
            except OSError:
                pass
            try:
                s.bind((si.ip, si.port))
            except OSError as exc:
                s.close()
                raise ConfigError(f"cannot bind {si}: {exc.strerror}") from None
            if si.port == 0:
                si.port = s.getsockname()[1]
            self.fds[s.fileno()] = (s, si)

    def _sock_for(self, dest: Dest) -> Optional[socket.socket]:
        want = dest.sock
        fam6 = ":" in dest.ip
        fallback = None
        for s, si in self.fds.values():
            if want is not None and si is want:
                return s
            if (si.af == 6) == fam6:
                fallback = fallback or s
        return fallback

    def send(self, dest: Dest, data: bytes) -> bool:
        if dest.proto != "udp":
            if self.stream is not None and dest.proto in ("tcp", "tls"):
                return self.stream.send(dest, data, no_connect=dest.no_connect,
                                        close_after=dest.close_after)
            klog.emit(klog.L_ERR, f"send to {dest.proto}:{dest.ip}:{dest.port}: transport not "
                      "available in this version")
            return False
        s = self._sock_for(dest)
        if s is None:
            klog.emit(klog.L_ERR, f"no socket to send to {dest.ip}:{dest.port}")
            return False
        try:
            s.sendto(data, (dest.ip, dest.port))
            return True
        except OSError as exc:
            klog.emit(klog.L_ERR, f"sendto {dest.ip}:{dest.port} failed: {exc.strerror}")
            return False

    def add_tcp_alias(self, conn_id: int, port: int, proto: str) -> bool:
        """force_tcp_alias(): the connection is also reachable at its remote ip:PORT."""
        if self.stream is None:
            return False
        return self.stream.add_alias(conn_id, port, proto)

    def close(self) -> None:
        for s, _ in self.fds.values():
            s.close()
        self.fds.clear()
        for s, _ in self.stream_listeners:
            s.close()
        self.stream_listeners = []


def serve(cfg: Any, core: UdpCore, should_stop: Callable[[], bool] = lambda: False,
          timers: Any = None) -> None:
    """No-fork receive loop over every UDP socket (with -D); runs due timers between
    messages. Every datagram goes through receive_msg(); nothing escapes it."""
    from sipcore.receive import receive_msg

    sel = selectors.DefaultSelector()
    for s, si in core.fds.values():
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, si)
    bufsize = 65535
    while not should_stop():
        events = sel.select(timeout=timers.timeout(0.5) if timers is not None else 0.5)
        if timers is not None:
            timers.run_due()
        for key, _ in events:
            s: socket.socket = key.fileobj  # type: ignore[assignment]
            si: SocketInfo = key.data
            while True:
                try:
                    data, addr = s.recvfrom(bufsize)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    klog.emit(klog.L_ERR, f"recvfrom on {si}: {exc.strerror}")
                    break
                rcv = RecvInfo("udp", addr[0], addr[1], si.ip, si.port,
                               6 if si.af == 6 else 4, 0, si)
                try:
                    receive_msg(cfg, core, data, rcv)
                except Exception as exc:  # a bug in a route/module must not kill the worker
                    klog.emit(klog.L_CRIT, f"BUG: unhandled {type(exc).__name__} while "
                              f"processing a message from {addr[0]}:{addr[1]}: {exc}")
                    import traceback

                    klog.emit(klog.L_ERR, traceback.format_exc())
    sel.close()


class _Shm:
    ctx: Any = None
    owner_pid: int = 0


_shm = _Shm()


def create_shm(size_mb: int, max_procs: int) -> _Shm:
    """Master, before mod_init and fork: the shared memory segment (sized by -m), with the
    statistics counters moved into it. Named after the master pid."""
    from sipcore import stats
    from sipcore.shm import ShmContext

    ctx = ShmContext.create(size_mb, str(os.getpid()), max_procs=max(max_procs, 8))
    _shm.ctx = ctx
    _shm.owner_pid = os.getpid()
    stats.attach(ctx)
    stats.set_process_slot(0)
    return _shm


class _Current:
    cfg: Any = None
    core: Any = None


_current = _Current()


def set_current(cfg: Any, core: Any) -> None:
    """Remember the running config and CoreApi (master before fork, or the harness), so code
    that runs outside a message (timer callbacks, RPC handlers) can route and send."""
    _current.cfg = cfg
    _current.core = core


def current_config() -> Any:
    return _current.cfg


def current_core() -> Any:
    return _current.core


def create_private_shm(size_mb: int = 32) -> Any:
    """The harness's shared memory: a real segment, unlinked at once (nothing is left in
    /dev/shm; the mapping lives as long as the context object)."""
    from sipcore.shm import ShmContext

    global _private_seq
    _private_seq += 1
    ctx = ShmContext.create(size_mb, f"h{os.getpid()}x{_private_seq}", max_procs=8)
    ctx.unlink()
    _shm.ctx = ctx
    _shm.owner_pid = os.getpid()
    return ctx


_private_seq = 0


def shm_context() -> Any:
    """The ShmContext of this server (modules call it in mod_init to create their tables);
    None in the in-process harness."""
    return _shm.ctx


def destroy_shm() -> None:
    """Master, at the very end: unlink the segment (children are gone by now)."""
    from sipcore import stats

    if _shm.ctx is not None:
        stats.detach()
        _shm.ctx.destroy()
        _shm.ctx = None


def setup_process(cfg: Any) -> None:
    """Per-process script state: $def lookups and the log_prefix evaluator (before fork, so
    every child inherits them)."""
    from sipcore.pv import parse_format
    from sipcore.pv.miscpv import set_defines_provider

    set_defines_provider(cfg.defines.get)
    prefix = cfg.globals.get("log_prefix")
    if prefix:
        fmt = parse_format(str(prefix), cfg.modules)
        klog.set_prefix(fmt.eval)
    else:
        klog.set_prefix(None)


def run_mod_init(cfg: Any) -> None:
    """Every module's mod_init, in loadmodule order (master, before fork)."""
    for m in cfg.modules:
        for hook in m.init_hooks:
            hook(cfg)


def run_child_init(cfg: Any, rank: int) -> None:
    for m in cfg.modules:
        for hook in m.child_init_hooks:
            hook(rank)


def init_process_state(cfg: Any, rank: int = 1, run_mod_init_hooks: bool = True) -> None:
    """Everything a single process needs to handle messages (the harness, no-fork mode)."""
    setup_process(cfg)
    if run_mod_init_hooks:
        run_mod_init(cfg)
    run_child_init(cfg, rank)


def preload(cfg: Any) -> int:
    """Master, before fork: import every not yet imported submodule of the packages the server
    already uses (sipcore and the loaded modules, recursively; packages nobody imported, such as
    an unused engine, are left alone), so a child (also one respawned much later, after the
    files on disk changed) never imports code the master did not run with. Returns the number
    of modules imported."""
    import importlib
    import pkgutil
    import sys

    import sipcore

    def walk(pkg: Any) -> int:
        n = 0
        for info in pkgutil.iter_modules(pkg.__path__):
            full = f"{pkg.__name__}.{info.name}"
            if info.ispkg:
                if full in sys.modules:
                    n += walk(sys.modules[full])
            elif full not in sys.modules and info.name != "__main__":
                importlib.import_module(full)
                n += 1
        return n

    roots = [sipcore] + [sys.modules[f"modules.{m.name}"] for m in cfg.modules
                         if f"modules.{m.name}" in sys.modules]
    return sum(walk(r) for r in roots if hasattr(r, "__path__"))
