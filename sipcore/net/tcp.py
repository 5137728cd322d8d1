"""Stream transports (TCP, TLS): listen sockets, the send path every process uses, TLS hooks.

Runs in: the master (binds the listen sockets and builds the StreamNet before forking: the
connection table in shm, one mailbox per TCP worker), then every child: TCP workers run
sipcore.net.tcp_worker.TcpWorker; any other process (UDP workers, timer, ctl) sends through
`StreamNet.send`, which hands the bytes to the connection's owner. Shared state: the
connection table (shm, sipcore.net.conntable) and the mailboxes (unix datagram socketpairs).

Ownership (see docs/transports.md): a connection belongs to the TCP worker that accepted or
opened it; only that process reads, writes and closes its socket. A sender looks the
connection up in shm - by id (a reply: `Dest.conn_id` from the request's RecvInfo) or by
proto:ip:port (the remote address and its aliases) - and posts (conn id or address, bytes) to
the owner's mailbox; a TCP worker sending on a connection it owns writes directly. With no
connection, the send goes to the worker chosen by hashing the address, which opens the
connection (non-blocking connect) and registers it; hashing makes every sender pick the same
worker, so two concurrent sends to a new peer do not open two connections.
"""
from __future__ import annotations

import logging
import socket
import zlib
from typing import TYPE_CHECKING, Any, Protocol

from sipcore import stats
from sipcore.errors import ConfigError
from sipcore.net.addr import Dest, SocketInfo
from sipcore.net.conntable import ConnRec, ConnTable
from sipcore.net.mailbox import F_CLOSE_AFTER, F_NO_CONNECT, OP_CLOSE, OP_SEND, Command, Mailboxes
from sipcore.net.options import TcpOptions

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    from sipcore.net.tcp_worker import TcpWorker

STREAM_PROTOS = ("tcp", "tls")

# Kamailio's tcp statistics (core/tcp_stats.h), declared at 0 so RPCs list them
TCP_STATS = ("tcp:established", "tcp:passive_open", "tcp:connect_success",
             "tcp:connect_failed", "tcp:local_reject", "tcp:con_timeout", "tcp:con_reset",
             "tcp:send_timeout", "tcp:sendq_full", "tcp:bad_framing", "tcp:stalled",
             "tcp:send_failed", "tcp:closed")


class TlsProvider(Protocol):
    """What the TCP workers need from the tls module (registered in its mod_init)."""

    def server_context(self, si: SocketInfo) -> ssl.SSLContext: ...

    def client_context(self, ip: str, port: int) -> tuple[ssl.SSLContext, str | None]: ...

    def refresh(self) -> None: ...

    def connection_limit(self) -> int: ...


def bind_stream_listeners(sockets: list[SocketInfo], g: dict[str, Any]
                          ) -> list[tuple[socket.socket, SocketInfo]]:
    """Master, before fork: bind + listen every tcp/tls listen address (disable_tcp and
    enable_tls honoured; skipped ones are logged)."""
    out = []
    for si in sockets:
        if si.proto not in STREAM_PROTOS:
            continue
        if g.get("disable_tcp"):
            log.warning("listen %s: disable_tcp is set; skipped", si)
            continue
        if si.proto == "tls" and not g.get("enable_tls"):
            log.warning("listen %s: enable_tls is not set; skipped", si)
            continue
        fam = socket.AF_INET6 if si.af == 6 else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if g.get("tcp_reuse_port"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s.bind((si.ip, si.port))
            s.listen(1024)
        except OSError as exc:
            s.close()
            for o, _ in out:
                o.close()
            raise ConfigError(f"cannot bind {si}: {exc.strerror}") from None
        if si.port == 0:
            si.port = s.getsockname()[1]
        s.setblocking(False)
        out.append((s, si))
    return out


class StreamNet:
    """The TCP/TLS runtime shared (by fork) by every process of one server."""

    def __init__(self, opts: TcpOptions, table: ConnTable, mailboxes: Mailboxes,
                 listeners: list[tuple[socket.socket, SocketInfo]],
                 sockets: list[SocketInfo]) -> None:
        self.opts = opts
        self.table = table
        self.mailboxes = mailboxes
        self.listeners = listeners
        self.sockets = sockets              # every listen socket (to pick a local one)
        self.tls: TlsProvider | None = None     # the tls module sets it in its mod_init
        self.worker: TcpWorker | None = None   # set in a TCP worker process
        for name in TCP_STATS:
            stats.register(name)
        stats.register("tcp:current_opened_connections", no_reset=True)
        stats.register("tcp:current_write_queue_size", no_reset=True)

    @classmethod
    def create(cls, arena: Any, opts: TcpOptions,
               listeners: list[tuple[socket.socket, SocketInfo]],
               sockets: list[SocketInfo]) -> StreamNet:
        """Master, pre-fork: the table in shm and one mailbox per TCP worker."""
        size = 1 << max(6, min(16, (max(opts.max_connections, 64) * 2).bit_length()))
        return cls(opts, ConnTable.create(arena, size), Mailboxes(opts.children), listeners,
                   sockets)

    @property
    def n_workers(self) -> int:
        return len(self.mailboxes)

    def local_socket(self, proto: str, ip: str) -> SocketInfo | None:
        af = 6 if ":" in ip else 4
        first = None
        for s in self.sockets:
            if s.proto == proto:
                if s.af == af:
                    return s
                first = first or s
        return None if first is None or first.af != af else first

    # ---- sending (any process) -----------------------------------------------------------
    def find(self, dest: Dest) -> ConnRec | None:
        """The connection for DEST: its conn_id when set and alive, else by address."""
        t = self.table
        if dest.conn_id:
            rec = t.get(dest.conn_id)
            if rec is not None and rec.proto == dest.proto:
                return rec
        return t.lookup(dest.proto, dest.ip, dest.port)

    def send(self, dest: Dest, data: bytes, *, no_connect: bool = False,
             close_after: bool = False) -> bool:
        """Send DATA over a stream connection to DEST; True when it was written or handed to
        the owner (writes complete asynchronously, as Kamailio's tcp_async)."""
        if dest.proto not in STREAM_PROTOS or self.n_workers == 0:
            log.error("send to %s:%s:%s: no %s transport (no %s listen socket)",
                      dest.proto, dest.ip, dest.port, dest.proto, dest.proto)
            return False
        if dest.proto == "tls" and self.tls is None:
            log.error("send to tls:%s:%s: tls module not loaded", dest.ip, dest.port)
            return False
        flags = (F_NO_CONNECT if no_connect or self.opts.no_connect else 0) | \
            (F_CLOSE_AFTER if close_after else 0)
        w = self.worker
        if w is not None and dest.conn_id in w.conns:
            # a TCP worker answering on a connection it owns (the common reply): no lookup
            return w.handle_command(Command(OP_SEND, dest.proto, flags, dest.ip, dest.port,
                                            dest.conn_id, data))
        rec = self.find(dest)
        if rec is None:
            if flags & F_NO_CONNECT:
                log.info("no open %s connection to %s:%s and connecting is not allowed: not sent",
                         dest.proto, dest.ip, dest.port)
                stats.inc("tcp:send_failed")
                return False
            owner = self.pick_worker(dest.proto, dest.ip, dest.port)
            cmd = Command(OP_SEND, dest.proto, flags, dest.ip, dest.port, 0, data)
        else:
            owner = rec.owner
            cmd = Command(OP_SEND, rec.proto, flags, rec.rip, rec.rport, rec.conn_id, data)
        if w is not None and w.index == owner:
            return w.handle_command(cmd)
        err = self.mailboxes.post(owner, cmd)
        if err is not None:
            log.error("send to %s:%s:%s: TCP worker %s mailbox: %s",
                      dest.proto, dest.ip, dest.port, owner, err)
            stats.inc("tcp:send_failed")
            return False
        return True

    def pick_worker(self, proto: str, ip: str, port: int) -> int:
        """The worker that opens a new connection to proto:ip:port (same for every sender)."""
        return zlib.crc32(f"{proto}:{ip}:{port}".encode()) % self.n_workers

    def close(self, conn_id: int) -> bool:
        """Ask the owner to close a connection (RPC, set_*_close)."""
        rec = self.table.get(conn_id)
        if rec is None:
            return False
        cmd = Command(OP_CLOSE, rec.proto, 0, rec.rip, rec.rport, conn_id)
        w = self.worker
        if w is not None and w.index == rec.owner:
            return w.handle_command(cmd)
        return self.mailboxes.post(rec.owner, cmd) is None

    def add_alias(self, conn_id: int, port: int, proto: str, ip: str | None = None) -> bool:
        """force_tcp_alias(): connection CONN_ID is also reachable at (its remote ip or IP,
        PORT)."""
        rec = self.table.get(conn_id)
        if rec is None or rec.proto != proto:
            return False
        return self.table.add_alias(conn_id, ip or rec.rip, port)

    # ---- RPC views -----------------------------------------------------------------------
    def info(self) -> dict[str, int]:
        return {"readers": self.n_workers,
                "max_connections": self.opts.max_connections,
                "max_tls_connections": self.opts.tls_max_connections,
                "opened_connections": self.table.count("tcp"),
                "opened_tls_connections": self.table.count("tls"),
                "write_queued_bytes": max(0, stats.get("tcp:current_write_queue_size"))}

    def list(self) -> list[dict[str, Any]]:
        import time

        now = time.time()
        out = []
        for r in self.table.records():
            out.append({"id": r.conn_id, "type": r.proto.upper(), "state": "CONN_OK",
                        "owner": r.owner, "outbound": int(r.outbound),
                        "src_ip": r.rip, "src_port": r.rport,
                        "dst_ip": r.lip, "dst_port": r.lport,
                        "age": int(now - r.created),
                        "aliases": [f"{ip}:{port}" for ip, port in r.aliases]})
        return out


# ---- process-wide handles --------------------------------------------------------------------
