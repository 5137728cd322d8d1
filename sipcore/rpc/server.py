"""The ctl process loop: JSON-RPC 2.0 over unix/TCP stream sockets and unix/UDP datagrams.

Runs in: the ctl process (forked by the master, which calls `run_ctl(env, should_stop)`).
Shared state: none directly; handlers read shm through the RpcEnv. This file is the only
one in sipcore/rpc that touches the OS.

Listen addresses (ctl module, Kamailio names): `modparam("ctl", "binrpc", ADDR)` repeatable,
ADDR = `unix:/path` | `unixs:/path` | `/path` (unix stream), `unixd:/path` (unix datagram),
`tcp:host:port`, `udp:host:port` | `host:port` (UDP). Relative unix paths are under the run
dir. Default (no binrpc): `unix:<rundir>/pykam_ctl`. `mode` (default 0660), `user`, `group`
apply to unix socket files. When jsonrpcs is loaded with the datagram transport (bit 4 of
`transport`, default on), its `dgram_socket` is served here too.

Framing: on a stream, one JSON document per request, newline-terminated or simply complete;
several requests may follow on one connection; each reply is one line. On a datagram socket,
one document per datagram and the reply goes back to the sender's address.

Robustness: every socket is non-blocking under one selector, so a slow or stalled client
never blocks another; a connection's request buffer is capped (`max_request`, reply -32600
and close), idle connections are closed after `idle_timeout` s, and at most `max_conns` are
open. No input, and no handler bug, ends the process: errors become JSON-RPC error objects.
"""
from __future__ import annotations

import grp
import logging
import os
import pwd
import selectors
import socket
import stat
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sipcore import log as klog
from sipcore.rpc import jsonrpc
from sipcore.rpc.env import RpcEnv, SingleProcessTable, link_table_debug
from sipcore.rpc.registry import RpcRegistry

log = logging.getLogger(__name__)

DEFAULT_CTL_NAME = "pykam_ctl"
MAX_REQUEST = 1 << 20            # bytes buffered for one request on a stream
MAX_PENDING_OUT = 16 << 20       # unsent reply bytes before a non-reading client is dropped
MAX_DGRAM = 65535
IDLE_TIMEOUT = 60.0
MAX_CONNS = 64


class CtlError(Exception):
    """A listen address is invalid or cannot be opened."""


@dataclass(frozen=True)
class ListenAddr:
    """A parsed control address: kind is unix | unixd | tcp | udp."""

    kind: str
    path: str = ""
    host: str = ""
    port: int = 0

    @property
    def stream(self) -> bool:
        return self.kind in ("unix", "tcp")

    @property
    def transport(self) -> str:
        return {"unix": "unix_stream", "unixd": "unix_dgram", "tcp": "tcp",
                "udp": "udp"}[self.kind]

    def __str__(self) -> str:
        if self.kind in ("unix", "unixd"):
            return f"{self.kind}:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.kind}:{host}:{self.port}"


def parse_address(spec: str, rundir: str) -> ListenAddr:
    """A ctl `binrpc` address (see the module docstring) -> ListenAddr; raises CtlError."""
    v = spec.strip()
    scheme, sep, rest = v.partition(":")
    if sep and scheme in ("unix", "unixs", "unixd"):
        if not rest:
            raise CtlError(f"missing path in \"{spec}\"")
        path = rest if os.path.isabs(rest) else os.path.join(rundir, rest)
        return ListenAddr("unixd" if scheme == "unixd" else "unix", path=path)
    if sep and scheme in ("tcp", "udp"):
        kind, hostport = scheme, rest
    elif v.startswith("/") or not sep:
        path = v if os.path.isabs(v) else os.path.join(rundir, v)
        return ListenAddr("unix", path=path)
    else:
        kind, hostport = "udp", v                   # Kamailio: host:port means UDP
    host, sep2, port = hostport.rpartition(":")
    if not sep2 or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise CtlError(f"bad host:port in \"{spec}\"")
    return ListenAddr(kind, host=host.strip("[]"), port=int(port))


def listen_addresses(env: RpcEnv) -> list[ListenAddr]:
    """The addresses the ctl process serves, from the ctl and jsonrpcs module params."""
    specs: list[str] = []
    ctl = env.module("ctl")
    if ctl is not None:
        specs.extend(ctl.get_param("binrpc") or ())
    if not specs:
        specs.append(f"unix:{DEFAULT_CTL_NAME}")
    js = env.module("jsonrpcs")
    if js is not None:
        transport = int(js.get_param("transport"))
        if transport == 0 or transport & 4:
            dgram = str(js.get_param("dgram_socket"))
            specs.append(dgram if dgram.startswith("udp:") else f"unixd:{dgram}")
        if transport == 0 or transport & 2:
            log.warning("jsonrpcs: the FIFO transport is not served; use the ctl socket "
                        "(pykamcmd) or the datagram socket")
    out: list[ListenAddr] = []
    for s in specs:
        a = parse_address(s, env.rundir)
        if a not in out:
            out.append(a)
    return out


@dataclass
class SocketOwner:
    """Who owns the unix socket files: mode bits, optional user and group names."""

    mode: int = 0o660
    user: str | None = None
    group: str | None = None

    @classmethod
    def from_env(cls, env: RpcEnv) -> SocketOwner:
        ctl = env.module("ctl")
        if ctl is None:
            return cls()
        return cls(int(ctl.get_param("mode")), ctl.get_param("user"), ctl.get_param("group"))


@dataclass
class _Conn:
    sock: socket.socket
    addr: ListenAddr
    peer: str
    decoder: jsonrpc.StreamDecoder
    out: bytearray = field(default_factory=bytearray)
    last: float = field(default_factory=time.monotonic)
    closing: bool = False          # close once `out` is sent
    requests: int = 0


@dataclass
class _Listener:
    sock: socket.socket
    addr: ListenAddr
    inode: tuple[int, int] | None = None      # (st_dev, st_ino) of our socket file


class CtlServer:
    """The selector loop of the ctl process. `poll()` serves one round; `close()` removes the
    socket files this server created."""

    def __init__(self, registry: RpcRegistry, addresses: list[ListenAddr],
                 owner: SocketOwner | None = None, *, max_request: int = MAX_REQUEST,
                 idle_timeout: float = IDLE_TIMEOUT, max_conns: int = MAX_CONNS) -> None:
        self.registry = registry
        self.addresses = addresses
        self.owner = owner or SocketOwner()
        self.max_request = max_request
        self.idle_timeout = idle_timeout
        self.max_conns = max_conns
        self.sel = selectors.DefaultSelector()
        self.listeners: list[_Listener] = []
        self.conns: dict[int, _Conn] = {}
        self.served = 0

    # ---- listeners -------------------------------------------------------------------------
    def open(self) -> None:
        """Open every address; the ones that fail are logged. Raises CtlError if none
        opened."""
        for a in self.addresses:
            try:
                lst = self._open_one(a)
            except (OSError, CtlError) as exc:
                msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                log.error("ctl: cannot listen on %s: %s", a, msg)
                continue
            lst.sock.setblocking(False)
            self.listeners.append(lst)
            self.sel.register(lst.sock, selectors.EVENT_READ, lst)
            log.info("ctl: listening on %s", a)
        if not self.listeners:
            raise CtlError("no control socket could be opened: "
                           + ", ".join(str(a) for a in self.addresses))

    def _open_one(self, a: ListenAddr) -> _Listener:
        if a.kind in ("unix", "unixd"):
            return self._open_unix(a)
        fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
        typ = socket.SOCK_STREAM if a.kind == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(fam, typ)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((a.host, a.port))
            if a.kind == "tcp":
                s.listen(16)
                if a.host not in ("127.0.0.1", "::1", "localhost"):
                    log.warning("ctl: %s is not a loopback address; RPC has no authentication", a)
        except OSError:
            s.close()
            raise
        return _Listener(s, a)

    def _open_unix(self, a: ListenAddr) -> _Listener:
        path = a.path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._remove_stale(path)
        typ = socket.SOCK_STREAM if a.kind == "unix" else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_UNIX, typ)
        old = os.umask(0o177)             # no window with wider permissions than asked
        try:
            s.bind(path)
        except OSError:
            s.close()
            raise
        finally:
            os.umask(old)
        try:
            os.chmod(path, self.owner.mode)
            self._chown(path)
            if a.kind == "unix":
                s.listen(16)
        except (OSError, CtlError):
            s.close()
            os.unlink(path)
            raise
        st = os.stat(path)
        return _Listener(s, a, (st.st_dev, st.st_ino))

    def _chown(self, path: str) -> None:
        if not self.owner.user and not self.owner.group:
            return
        try:
            uid = pwd.getpwnam(self.owner.user).pw_uid if self.owner.user else -1
            gid = grp.getgrnam(self.owner.group).gr_gid if self.owner.group else -1
        except KeyError as exc:
            raise CtlError(f"unknown user or group {exc}") from None
        os.chown(path, uid, gid)

    @staticmethod
    def _remove_stale(path: str) -> None:
        """A socket file left by a dead server is removed; a live one, or a file that is not
        a socket, is an error (never delete what is not ours)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise CtlError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)                          # stale: nobody listens
            return
        except OSError as exc:
            if exc.errno == 91:                      # EPROTOTYPE: a datagram socket file
                _remove_stale_dgram(path)
                return
            raise
        finally:
            probe.close()
        raise CtlError(f"{path} is in use by a running server")

    def close(self) -> None:
        for c in list(self.conns.values()):
            self._drop(c)
        for lst in self.listeners:
            try:
                self.sel.unregister(lst.sock)
            except (KeyError, ValueError):
                pass
            lst.sock.close()
            if lst.addr.kind in ("unix", "unixd") and lst.inode is not None:
                try:
                    st = os.stat(lst.addr.path)
                    if (st.st_dev, st.st_ino) == lst.inode:
                        os.unlink(lst.addr.path)
                except FileNotFoundError:
                    pass
        self.listeners.clear()
        self.sel.close()

    def bound(self) -> list[ListenAddr]:
        """The addresses actually listened on (ports resolved when 0 was asked)."""
        out = []
        for lst in self.listeners:
            a = lst.addr
            if a.kind in ("tcp", "udp"):
                host, port = lst.sock.getsockname()[:2]
                a = ListenAddr(a.kind, host=host, port=port)
            out.append(a)
        return out

    # ---- the loop --------------------------------------------------------------------------
    def poll(self, timeout: float) -> None:
        """Serve whatever is ready within TIMEOUT seconds; never raises for peer input."""
        for key, events in self.sel.select(timeout):
            obj = key.data
            try:
                if isinstance(obj, _Listener):
                    if obj.addr.stream:
                        self._accept(obj)
                    else:
                        self._datagram(obj)
                elif events & selectors.EVENT_READ:
                    self._readable(obj)
                if isinstance(obj, _Conn) and events & selectors.EVENT_WRITE:
                    self._flush(obj)
            except Exception as exc:  # noqa: BLE001 - a bug costs one connection, not the process
                log.error("ctl: unexpected %s: %s\n%s",
                          type(exc).__name__, exc, traceback.format_exc())
                if isinstance(obj, _Conn):
                    self._drop(obj)
        self._expire_idle()

    def _accept(self, lst: _Listener) -> None:
        for _ in range(16):
            try:
                s, peer = lst.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.error("ctl: accept on %s: %s", lst.addr, exc.strerror)
                return
            if len(self.conns) >= self.max_conns:
                log.warning("ctl: %s connections open; refusing one on %s", self.max_conns,
                            lst.addr)
                s.close()
                continue
            s.setblocking(False)
            pname = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else (peer or "unix")
            c = _Conn(s, lst.addr, pname, jsonrpc.StreamDecoder(self.max_request))
            self.conns[s.fileno()] = c
            self.sel.register(s, selectors.EVENT_READ, c)

    def _readable(self, c: _Conn) -> None:
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(c)
            return
        c.last = time.monotonic()
        if not data:
            items = c.decoder.eof()
            c.closing = True
        else:
            items = c.decoder.feed(data)
        for item in items:
            self._answer(c, item)
        if c.decoder.overflow:
            resp = jsonrpc.error(jsonrpc.INVALID_REQUEST,
                                 f"Invalid Request: larger than {self.max_request} bytes")
            c.out += jsonrpc.encode([resp], False) or b""
            c.closing = True
        self._flush(c)

    def _answer(self, c: _Conn, item: str | jsonrpc.Response) -> None:
        c.requests += 1
        self.served += 1
        if isinstance(item, jsonrpc.Response):
            reply = jsonrpc.encode([item], False)
        else:
            reply = self.registry.execute(item)
        if reply:
            c.out += reply
        if len(c.out) > MAX_PENDING_OUT:
            log.warning("ctl: client %s does not read its replies; dropped", c.peer)
            self._drop(c)

    def _flush(self, c: _Conn) -> None:
        if c.sock.fileno() < 0:
            return
        while c.out:
            try:
                n = c.sock.send(c.out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drop(c)
                return
            del c.out[:n]
        if not c.out and c.closing:
            self._drop(c)
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0)
        if c.closing:
            want = selectors.EVENT_WRITE
        self.sel.modify(c.sock, want, c)

    def _datagram(self, lst: _Listener) -> None:
        for _ in range(64):
            try:
                data, peer = lst.sock.recvfrom(MAX_DGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.error("ctl: recvfrom on %s: %s", lst.addr, exc.strerror)
                return
            self.served += 1
            reply = self.registry.execute(data)
            if not reply:
                continue
            if not peer:
                log.debug("ctl: datagram on %s from an unbound socket: no reply", lst.addr)
                continue
            try:
                lst.sock.sendto(reply, peer)
            except OSError as exc:
                log.warning("ctl: reply to %s on %s: %s", peer, lst.addr, exc.strerror)

    def _expire_idle(self) -> None:
        now = time.monotonic()
        for c in list(self.conns.values()):
            if now - c.last > self.idle_timeout:
                log.info("ctl: closing idle connection from %s on %s", c.peer, c.addr)
                self._drop(c)

    def _drop(self, c: _Conn) -> None:
        fd = c.sock.fileno()
        if fd >= 0:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            self.conns.pop(fd, None)
        c.sock.close()

    # ---- ctl.* views ------------------------------------------------------------------------
    def listen_info(self) -> list[dict[str, str]]:
        return [{"protocol": "jsonrpc", "transport": a.transport,
                 "address": a.path if a.kind in ("unix", "unixd") else f"{a.host}:{a.port}"}
                for a in self.bound()]

    def who(self) -> list[dict[str, Any]]:
        return [{"protocol": "jsonrpc", "transport": c.addr.transport, "from": c.peer,
                 "to": str(c.addr), "requests": c.requests,
                 "idle": round(time.monotonic() - c.last, 1)}
                for c in self.conns.values()]


def _remove_stale_dgram(path: str) -> None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise CtlError(f"{path} is in use by a running server")


def run_ctl(env: RpcEnv, should_stop: Callable[[], bool], *,
            ready: Callable[[CtlServer], None] | None = None,
            on_idle: Callable[[], None] | None = None,
            poll_interval: float = 0.25, idle_timeout: float = IDLE_TIMEOUT) -> None:
    """The ctl process: serve RPC until should_stop() is true (checked every
    POLL_INTERVAL s), then close and remove the socket files. ON_IDLE runs once per loop
    (the master's hook that adopts the shared log level). Raises CtlError when no address
    can be opened (respawning will not help)."""
    klog.set_process("ctl handler")
    registry = RpcRegistry.build(env)
    server = CtlServer(registry, listen_addresses(env), SocketOwner.from_env(env),
                       idle_timeout=idle_timeout)
    server.open()
    env.server = server             # ctl.listen and friends, answered in this process
    if ready is not None:
        ready(server)
    rc = env.runtime_cfg
    if rc is None:
        log.warning("ctl: no shared runtime cfg in the RpcEnv; cfg.seti/cfg.sets will change "
                    "the ctl process only")
    try:
        while not should_stop():
            if rc is not None:
                rc.refresh()
            if on_idle is not None:
                on_idle()
            server.poll(poll_interval)
    finally:
        env.server = None
        server.close()


def ctl_child_body(env: RpcEnv) -> Callable[[Any], None]:
    """What the master's ctl ChildSpec runs (rank PROC_RPC, desc "ctl handler"): BODY(child)
    with child = sipcore.proc.master.ChildEnv (keep_running(), on_idle(), table,
    master_pid). The process table only exists once the master planned its children, so
    an env without one adopts the child's table here (and links its debug word)."""

    def body(child: Any) -> None:
        table = getattr(child, "table", None)
        if isinstance(env.proc_table, SingleProcessTable) and table is not None:
            env.proc_table = table
            link_table_debug(env.get_runtime_cfg(), table)
        env.master_pid = getattr(child, "master_pid", env.master_pid)
        run_ctl(env, lambda: not child.keep_running(), on_idle=child.on_idle)

    return body
