"""The TCP worker process: accepts, owns, reads, frames, writes and closes stream connections.

Runs in: each of the `tcp_children` TCP worker processes (one TcpWorker each, single-threaded,
one epoll loop). Shared state: the connection table in shm (this worker inserts, aliases and
removes only the connections it owns), the inherited listen sockets (every TCP worker polls
them; the kernel lets exactly one accept() win, the others get EAGAIN) and its mailbox.

A connection never blocks the worker: sockets are non-blocking, reads take what is there
(tcp_rd_buf_size at a time) and go through sipcore.msg.framing (several messages per read,
one message over many reads, CRLF keepalives), writes that would block are queued (at most
tcp_conn_wq_max bytes) and finished when the socket is writable. Housekeeping every
HOUSEKEEPING seconds closes connections that are idle longer than tcp_connection_lifetime,
that hold a partial message longer than tcp_wait_data (a stalled or slowloris peer), whose
queued data could not be written within tcp_send_timeout, or whose connect() did not finish
within tcp_connect_timeout. Peers sending bytes that cannot be framed are disconnected.
Each such event is counted in the tcp:* statistics.
"""
from __future__ import annotations

import errno
import logging
import select
import selectors
import socket
import struct
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from sipcore import log as klog
from sipcore import stats
from sipcore.errors import ParseError
from sipcore.msg.framing import KEEPALIVE_PING, PONG
from sipcore.net.addr import RecvInfo, SocketInfo
from sipcore.net.conntable import ConnRec
from sipcore.net.mailbox import F_CLOSE_AFTER, F_NO_CONNECT, OP_CLOSE, OP_SEND, Command
from sipcore.net.stream import StreamBuffer
from sipcore.net.tcp import StreamNet
from sipcore.net.udp import Receive, guarded_receive

log = logging.getLogger(__name__)

HOUSEKEEPING = 0.25
WQ_STAT = "tcp:current_write_queue_size"     # bytes queued, summed over the workers
_TRY_AGAIN = (BlockingIOError, InterruptedError)


class State(Enum):
    CONNECTING = 1      # outbound, connect() in progress
    HANDSHAKE = 2       # TLS handshake in progress
    OPEN = 3


class Conn:
    """One owned connection (this process only; its shared record is in the ConnTable)."""

    __slots__ = (
        "close_after",
        "conn_id",
        "deadline",
        "events",
        "last",
        "outbound",
        "outq",
        "partial_since",
        "proto",
        "rb",
        "rip",
        "rport",
        "si",
        "sock",
        "state",
    )

    def __init__(self, sock: socket.socket, conn_id: int, proto: str, si: SocketInfo,
                 rip: str, rport: int, max_size: int, state: State, outbound: bool,
                 accept_no_cl: bool = False) -> None:
        self.sock = sock
        self.conn_id = conn_id
        self.proto = proto
        self.si = si
        self.rip = rip
        self.rport = rport
        self.rb = StreamBuffer(max_size, accept_no_cl)
        self.outq = bytearray()
        self.state = state
        self.last = time.monotonic()
        self.partial_since = 0.0        # monotonic time the pending partial message began
        self.deadline = 0.0             # connect/handshake/send deadline (0 = none)
        self.close_after = False
        self.outbound = outbound
        self.events = 0

    def __repr__(self) -> str:
        return f"{self.proto}:{self.rip}:{self.rport}#{self.conn_id}"


class TcpWorker:
    """The event loop of one TCP worker."""

    def __init__(self, net: StreamNet, index: int, receive: Receive) -> None:
        """RECEIVE(buf, rcv): what each framed message goes to (in the server
        sipcore.receive.receive_msg for the config and node; it returns the RouteCtx the
        message ran with, or None)."""
        self.net = net
        self.index = index
        self.opts = net.opts
        self.sel = selectors.DefaultSelector()
        self.conns: dict[int, Conn] = {}          # conn id -> Conn
        self.mbox = net.mailboxes.reader(index)
        self._next_hk = 0.0
        self._receive = receive

    # ---- loop ----------------------------------------------------------------------------
    def run(self, keep_running: Callable[[], bool], on_idle: Callable[[], None]) -> None:
        """The worker process's loop, until keep_running() turns false."""
        self.setup()
        try:
            while keep_running():
                if self.poll(HOUSEKEEPING):
                    on_idle()
        finally:
            self.shutdown()

    def setup(self) -> None:
        """Start serving: forget a dead predecessor's connections, watch the listen sockets
        and the mailbox."""
        self.net.worker = self
        purged = self.net.table.purge_owner(self.index)
        if purged:
            stats.inc("tcp:current_opened_connections", -purged)
            log.log(klog.NOTICE, "tcp worker %s: forgot %s connections of its previous instance",
                                 self.index, purged)
        for s, si in self.net.listeners:
            self.sel.register(s, selectors.EVENT_READ, si)
        self.sel.register(self.mbox, selectors.EVENT_READ, None)

    def poll(self, timeout: float) -> bool:
        """Handle the events of at most TIMEOUT seconds; True when housekeeping ran."""
        try:
            events = self.sel.select(timeout)
        except InterruptedError:
            events = []
        for key, mask in events:
            data = key.data
            if isinstance(data, Conn):
                self._conn_event(data, mask)
            elif data is None:
                self._read_mailbox()
            else:
                self._accept(key.fileobj, data)  # type: ignore[arg-type]
        now = time.monotonic()
        if now < self._next_hk:
            return False
        self._next_hk = now + HOUSEKEEPING
        self._housekeeping(now)
        return True

    def shutdown(self) -> None:
        """Close every owned connection (process exit)."""
        for c in list(self.conns.values()):
            self._close(c, None)
        self.sel.close()
        if self.net.worker is self:
            self.net.worker = None

    # ---- accept --------------------------------------------------------------------------
    def _accept(self, lsock: socket.socket, si: SocketInfo) -> None:
        for _ in range(16):
            try:
                s, addr = lsock.accept()
            except _TRY_AGAIN:
                return
            except OSError as exc:
                log.error("accept on %s: %s", si, exc.strerror)
                return
            self._new_passive(s, addr, si)

    def _limit(self, proto: str) -> int:
        return self.opts.tls_max_connections if proto == "tls" else self.opts.max_connections

    def _new_passive(self, s: socket.socket, addr: Any, si: SocketInfo) -> None:
        proto = si.proto
        if self.net.table.count(proto) >= self._limit(proto):
            stats.inc("tcp:local_reject")
            log.warning("%s connection from %s:%s refused: %s_max_connections reached",
                        proto, addr[0], addr[1], proto)
            s.close()
            return
        s.setblocking(False)
        self._sockopts(s)
        state = State.OPEN
        if proto == "tls":
            tls = self.net.tls
            if tls is None:
                s.close()
                return
            try:
                tls.refresh()
                s = tls.server_context(si).wrap_socket(s, server_side=True,
                                                       do_handshake_on_connect=False)
            except (OSError, ValueError) as exc:
                log.error("tls: cannot set up a connection on %s: %s", si, exc)
                s.close()
                return
            state = State.HANDSHAKE
        conn = Conn(s, self.net.table.new_id(), proto, si, _ip(addr[0]), addr[1],
                    self.opts.max_msg_size, state, outbound=False,
                    accept_no_cl=self.opts.accept_no_cl)
        if state is State.HANDSHAKE:
            conn.deadline = time.monotonic() + self.opts.connect_timeout
        self._register(conn)
        stats.inc("tcp:passive_open")
        if state is State.OPEN:
            stats.inc("tcp:established")
        else:
            self._handshake(conn)

    def _sockopts(self, s: socket.socket) -> None:
        o = self.opts
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if o.keepalive:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if o.keepidle:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, o.keepidle)
                if o.keepintvl:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, o.keepintvl)
                if o.keepcnt:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, o.keepcnt)
        except OSError as exc:
            log.debug("tcp socket options: %s", exc.strerror)

    def _register(self, conn: Conn) -> None:
        self.conns[conn.conn_id] = conn
        self.net.table.add(ConnRec(conn.conn_id, self.index, conn.proto, conn.rip, conn.rport,
                                   conn.si.ip, conn.si.port, conn.outbound))
        stats.inc("tcp:current_opened_connections")
        self._want(conn)

    def _want(self, conn: Conn) -> None:
        """(Re)register the socket for the events its state needs."""
        ev = selectors.EVENT_READ
        if conn.state is State.CONNECTING or conn.outq:
            ev |= selectors.EVENT_WRITE
        if conn.state is State.HANDSHAKE:
            ev = selectors.EVENT_READ | selectors.EVENT_WRITE
        if conn.events == ev:
            return
        if conn.events:
            self.sel.modify(conn.sock, ev, conn)
        else:
            self.sel.register(conn.sock, ev, conn)
        conn.events = ev

    # ---- connect (outbound) --------------------------------------------------------------
    def _connect(self, proto: str, ip: str, port: int) -> Conn | None:
        if self.net.table.count(proto) >= self._limit(proto):
            stats.inc("tcp:local_reject")
            log.warning("%s connection to %s:%s not opened: %s_max_connections reached",
                        proto, ip, port, proto)
            return None
        si = self.net.local_socket(proto, ip)
        if si is None:
            log.error("no %s listen socket of the family of %s", proto, ip)
            return None
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setblocking(False)
        self._sockopts(s)
        src = self.opts.source_ipv6 if fam == socket.AF_INET6 else self.opts.source_ipv4
        if src is None and si.ip not in ("0.0.0.0", "::"):
            src = si.ip
        try:
            if src is not None:
                s.bind((src, 0))
            rc = s.connect_ex((ip, port))
        except OSError as exc:
            s.close()
            stats.inc("tcp:connect_failed")
            log.error("connect to %s:%s:%s: %s", proto, ip, port, exc.strerror)
            return None
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            stats.inc("tcp:connect_failed")
            log.error("connect to %s:%s:%s: %s", proto, ip, port, errno.errorcode.get(rc))
            return None
        conn = Conn(s, self.net.table.new_id(), proto, si, ip, port, self.opts.max_msg_size,
                    State.CONNECTING, outbound=True, accept_no_cl=self.opts.accept_no_cl)
        conn.deadline = time.monotonic() + self.opts.connect_timeout
        self._register(conn)
        return conn

    def _connected(self, conn: Conn) -> None:
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            stats.inc("tcp:connect_failed")
            self._close(conn, f"connect failed: {errno.errorcode.get(err, err)}")
            return
        stats.inc("tcp:connect_success")
        if conn.proto == "tls":
            tls = self.net.tls
            assert tls is not None
            self.sel.unregister(conn.sock)     # the wrapped socket is a new object
            conn.events = 0
            try:
                tls.refresh()
                ctx, sni = tls.client_context(conn.rip, conn.rport)
                conn.sock = ctx.wrap_socket(conn.sock, server_side=False, server_hostname=sni,
                                            do_handshake_on_connect=False)
            except (OSError, ValueError) as exc:
                self._close(conn, f"tls client setup: {exc}")
                return
            conn.state = State.HANDSHAKE
            conn.deadline = time.monotonic() + self.opts.connect_timeout
            self._want(conn)
            self._handshake(conn)
            return
        conn.state = State.OPEN
        conn.deadline = 0.0
        stats.inc("tcp:established")
        self._flush(conn)

    def _handshake(self, conn: Conn) -> None:
        import ssl

        try:
            conn.sock.do_handshake()    # type: ignore[attr-defined]
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (ssl.SSLError, OSError) as exc:
            stats.inc("tcp:connect_failed" if conn.outbound else "tcp:con_reset")
            self._close(conn, f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}")
            return
        conn.state = State.OPEN
        conn.deadline = 0.0
        stats.inc("tcp:established")
        self._flush(conn)
        if self.conns.get(conn.conn_id) is conn:
            self._read(conn)            # data may already sit in the TLS buffer

    # ---- events --------------------------------------------------------------------------
    def _conn_event(self, conn: Conn, mask: int) -> None:
        if self.conns.get(conn.conn_id) is not conn:
            # closed by an earlier event of the same select() batch (write queue full, a
            # mailbox CLOSE, ...): its socket is closed, its fd number may already be reused
            return
        if conn.state is State.CONNECTING:
            if mask & (selectors.EVENT_WRITE | selectors.EVENT_READ):
                self._connected(conn)
            return
        if conn.state is State.HANDSHAKE:
            self._handshake(conn)
            return
        if mask & selectors.EVENT_WRITE:
            self._flush(conn)
        if mask & selectors.EVENT_READ and self.conns.get(conn.conn_id) is conn:
            self._read(conn)

    def _read(self, conn: Conn) -> None:
        import ssl

        s = conn.sock
        try:
            data = s.recv(self.opts.rd_buf_size)
            if conn.proto == "tls":
                while s.pending():                          # type: ignore[attr-defined]
                    data += s.recv(self.opts.rd_buf_size)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except _TRY_AGAIN:
            return
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            stats.inc("tcp:con_reset")
            self._close(conn, f"read: {exc}")
            return
        if not data:
            self._close(conn, None)
            return
        now = time.monotonic()
        conn.last = now
        rb = conn.rb
        rb.feed(data)
        framed = False
        try:
            for ev in rb.events():
                framed = True
                if ev is KEEPALIVE_PING:
                    if self.opts.crlf_ping:
                        self._write(conn, PONG)
                    continue
                self._dispatch(conn, ev)  # type: ignore[arg-type]
                if self.conns.get(conn.conn_id) is not conn:
                    return              # closed by the script (set_reply_close, ...)
        except ParseError as exc:
            stats.inc("tcp:bad_framing")
            log.warning("%s: cannot frame the stream (%s): closing the connection",
                        conn, exc.reason)
            self._close(conn, None)
            return
        # tcp_wait_data counts from the start of the message still incomplete: a busy stream
        # nearly always ends a read inside a message, but that message began in this read
        # when an earlier one was completed by it
        if not len(rb):
            conn.partial_since = 0.0
        elif framed or not conn.partial_since:
            conn.partial_since = now

    def _dispatch(self, conn: Conn, raw: bytes) -> None:
        rcv = RecvInfo(conn.proto, conn.rip, conn.rport, conn.si.ip, conn.si.port,
                       6 if ":" in conn.rip else 4, conn.conn_id, conn.si)
        ctx = guarded_receive(self._receive, raw, rcv)
        if ctx is not None and self.opts.accept_aliases and ctx.msg.is_request:
            via = ctx.msg.via1
            if via is not None and via.param("alias") is not None:
                # RFC 5923: the sender accepts requests on this connection for its sent-by
                self.net.table.add_alias(conn.conn_id, conn.rip,
                                         via.port or (5061 if conn.proto == "tls" else 5060))

    # ---- writing -------------------------------------------------------------------------
    def handle_command(self, cmd: Command) -> bool:
        """A send/close for a connection this worker owns (or must open)."""
        if cmd.op == OP_CLOSE:
            c = self.conns.get(cmd.conn_id)
            if c is not None:
                self._close(c, None)
            return c is not None
        if cmd.op != OP_SEND:
            return False
        conn = self.conns.get(cmd.conn_id) if cmd.conn_id else None
        if conn is None:
            rec = self.net.table.lookup(cmd.proto, cmd.ip, cmd.port)
            if rec is not None and rec.owner != self.index:
                # a connection of another worker appeared meanwhile: hand it on
                cmd.conn_id = rec.conn_id
                return self.net.mailboxes.post(rec.owner, cmd) is None
            conn = self.conns.get(rec.conn_id) if rec is not None else None
        if conn is None:
            if cmd.flags & F_NO_CONNECT:
                stats.inc("tcp:send_failed")
                log.info("no %s connection to %s:%s (no-connect): not sent", cmd.proto, cmd.ip,
                         cmd.port)
                return False
            conn = self._connect(cmd.proto, cmd.ip, cmd.port)
            if conn is None:
                return False
        if cmd.flags & F_CLOSE_AFTER:
            conn.close_after = True
        return self._write(conn, cmd.data)

    def _write(self, conn: Conn, data: bytes) -> bool:
        if len(conn.outq) + len(data) > max(self.opts.conn_wq_max, 2 * len(data)):
            stats.inc("tcp:sendq_full")
            self._close(conn, "write queue full")
            return False
        if not conn.outq and conn.state is State.OPEN:
            conn.deadline = time.monotonic() + self.opts.send_timeout
        conn.outq += data
        stats.inc(WQ_STAT, len(data))
        if conn.state is State.OPEN:
            self._flush(conn)
        elif conn.state is State.CONNECTING and _writable(conn.sock):
            # the connect() has finished already (loopback, LAN): open and flush now, so that
            # a burst of sends drained from the mailbox is written rather than queued up to
            # tcp_conn_wq_max before the next select() reports the connection writable
            self._connected(conn)
        else:
            self._want(conn)
        return True

    def _flush(self, conn: Conn) -> None:
        import ssl

        while conn.outq:
            try:
                n = conn.sock.send(conn.outq)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, *_TRY_AGAIN):
                break
            except (ConnectionError, ssl.SSLError, OSError) as exc:
                stats.inc("tcp:con_reset")
                self._close(conn, f"write: {exc}")
                return
            del conn.outq[:n]
            stats.inc(WQ_STAT, -n)
            conn.last = time.monotonic()
        if not conn.outq:
            conn.deadline = 0.0
            if conn.close_after:
                self._close(conn, None)
                return
        elif not conn.deadline:
            conn.deadline = time.monotonic() + self.opts.send_timeout
        self._want(conn)

    # ---- mailbox -------------------------------------------------------------------------
    def _read_mailbox(self) -> None:
        for _ in range(256):
            try:
                raw = self.mbox.recv(1 << 20)
            except _TRY_AGAIN:
                return
            try:
                cmd = Command.unpack(raw)
            except (struct.error, UnicodeDecodeError) as exc:     # a local bug
                log.error("tcp worker %s: bad mailbox command: %s", self.index, exc)
                continue
            self.handle_command(cmd)

    # ---- housekeeping and close ----------------------------------------------------------
    def _housekeeping(self, now: float) -> None:
        o = self.opts
        tls = self.net.tls
        if tls is not None:
            tls.refresh()
        for conn in list(self.conns.values()):
            if conn.deadline and now > conn.deadline:
                if conn.state is State.OPEN:
                    stats.inc("tcp:send_timeout")
                    self._close(conn, f"send timeout ({o.send_timeout:g}s)")
                else:
                    stats.inc("tcp:connect_failed")
                    self._close(conn, f"connect timeout ({o.connect_timeout:g}s)")
            elif conn.partial_since and now - conn.partial_since > o.wait_data:
                stats.inc("tcp:stalled")
                log.warning("%s: incomplete message for more than %ss: closing the connection",
                            conn, format(o.wait_data, 'g'))
                self._close(conn, None)
            elif now - conn.last > o.connection_lifetime:
                stats.inc("tcp:con_timeout")
                self._close(conn, None)

    def _close(self, conn: Conn, why: str | None) -> None:
        if self.conns.pop(conn.conn_id, None) is None:
            return
        if why:
            log.info("%s: closed: %s", conn, why)
        if conn.events:
            try:
                self.sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        try:
            conn.sock.close()
        except OSError:
            pass
        self.net.table.remove(conn.conn_id)
        if conn.outq:
            stats.inc(WQ_STAT, -len(conn.outq))
        stats.inc("tcp:current_opened_connections", -1)
        stats.inc("tcp:closed")


def _writable(sock: socket.socket) -> bool:
    """True when SOCK is writable now (a non-blocking connect() has completed or failed)."""
    p = select.poll()
    p.register(sock, select.POLLOUT)
    return bool(p.poll(0))


def _ip(addr: str) -> str:
    """Canonical text of a peer address ("::ffff:1.2.3.4" stays as the kernel gives it)."""
    return addr.split("%", 1)[0]
