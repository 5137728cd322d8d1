"""A TcpWorker driven in-process (poll() steps) with real sockets: framing integration,
keepalive pongs, garbage and stalled peers, lifetime, mailbox handoff from another process,
outbound connections opened on demand and reused, no-connect."""
from __future__ import annotations

import dataclasses
import os
import selectors
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sipcore.msg.framing import ReceiveBuffer
from sipcore.net.addr import Dest, SocketInfo
from sipcore.net.options import TcpOptions
from sipcore.net.tcp import StreamNet, bind_stream_listeners
from sipcore.net.tcp_worker import TcpWorker
from sipcore.shm import ShmContext

_seq = 0

MSG = (b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK1\r\n"
       b"From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: %d\r\nCSeq: 1 OPTIONS\r\n"
       b"Content-Length: 5\r\n\r\nhello")


class Harness:
    def __init__(self, ctx: ShmContext, **opts: Any) -> None:
        si = SocketInfo("tcp", "127.0.0.1", 0)
        self.listeners = bind_stream_listeners([si], {})
        self.si = si
        o = dataclasses.replace(TcpOptions(children=2), **opts)
        self.net = StreamNet.create(ctx.arena, o, self.listeners, [si])
        self.got: list[tuple[bytes, Any]] = []
        self.workers = [TcpWorker(self.net, i, self._receive)
                        for i in range(2)]
        for w in self.workers:
            w.setup()
        self.net.worker = None          # the test process itself is "another process"

    def _receive(self, raw: bytes, rcv: Any) -> None:
        self.got.append((raw, rcv))

    def spin(self, seconds: float = 0.2) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for w in self.workers:
                w.poll(0.01)
        self.net.worker = None

    def connect(self) -> socket.socket:
        c = socket.create_connection(("127.0.0.1", self.si.port))
        self.spin(0.1)
        return c

    def close(self) -> None:
        for w in self.workers:
            w.shutdown()
        self.net.mailboxes.close()
        for s, _ in self.listeners:
            s.close()


@pytest.fixture
def make() -> Iterator:
    made: list[tuple[Harness, ShmContext]] = []

    def _make(**opts: Any) -> Harness:
        global _seq
        _seq += 1
        ctx = ShmContext.create(4, f"tcpw{os.getpid()}x{_seq}", max_procs=4)
        ctx.unlink()
        h = Harness(ctx, **opts)
        made.append((h, ctx))
        return h

    yield _make
    for h, ctx in made:
        h.close()
        ctx.close()


def _closed(c: socket.socket, timeout: float = 0.5) -> bool:
    c.settimeout(timeout)
    try:
        return c.recv(100) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_framing_several_per_read_and_byte_by_byte(make):
    h = make()
    c = h.connect()
    c.sendall((MSG % 1) + (MSG % 2) + (MSG % 3))
    h.spin()
    assert [raw for raw, _ in h.got] == [MSG % i for i in (1, 2, 3)]
    rcv = h.got[0][1]
    assert rcv.proto == "tcp" and rcv.conn_id > 0 and rcv.src_port == c.getsockname()[1]
    h.got.clear()
    for b in MSG % 4:
        c.sendall(bytes([b]))
        h.spin(0.001)
    h.spin(0.05)
    assert [raw for raw, _ in h.got] == [MSG % 4]
    c.close()


def test_ping_answered_with_pong(make):
    h = make()
    c = h.connect()
    c.sendall(b"\r\n\r\n")
    h.spin()
    c.settimeout(1)
    assert c.recv(10) == b"\r\n"


def test_garbage_is_disconnected_and_counted(make):
    from sipcore import stats

    h = make()
    before = stats.get("tcp:bad_framing")
    c = h.connect()
    c.sendall(b"GARBAGE WITHOUT LENGTH\r\n\r\n")
    h.spin()
    assert _closed(c)
    assert stats.get("tcp:bad_framing") == before + 1
    assert h.net.table.count("tcp") == 0


def test_stalled_message_and_idle_lifetime(make):
    h = make(wait_data=0.3, connection_lifetime=2.0)
    stalled, idle = h.connect(), h.connect()
    stalled.sendall((MSG % 1)[:40])
    h.spin(0.9)
    assert _closed(stalled, 0.05)
    assert not _closed(idle, 0.05)
    h.spin(1.6)
    assert _closed(idle, 0.05)
    assert h.net.table.count("tcp") == 0


def test_send_from_another_process_goes_through_the_owner_mailbox(make):
    h = make()
    c = h.connect()
    c.sendall(MSG % 1)
    h.spin()
    rcv = h.got[0][1]
    owner = h.net.table.get(rcv.conn_id).owner
    pid = os.fork()
    if pid == 0:                        # another process: no fd for the connection
        ok = h.net.send(Dest("tcp", "127.0.0.1", 1, conn_id=rcv.conn_id), b"BY-ID")
        ok2 = h.net.send(Dest("tcp", rcv.src_ip, rcv.src_port), b"+BY-ADDRESS")
        os._exit(0 if ok and ok2 else 1)
    assert os.waitpid(pid, 0)[1] == 0
    h.spin()
    c.settimeout(1)
    data = b""
    while len(data) < len(b"BY-ID+BY-ADDRESS"):
        data += c.recv(100)
    assert data == b"BY-ID+BY-ADDRESS"
    assert owner in (0, 1)


def test_outbound_connection_opened_once_and_reused(make):
    h = make()
    peer = socket.socket()
    peer.bind(("127.0.0.1", 0))
    peer.listen(4)
    port = peer.getsockname()[1]
    assert h.net.send(Dest("tcp", "127.0.0.1", port, no_connect=True), MSG % 0,
                      no_connect=True) is False
    assert h.net.send(Dest("tcp", "127.0.0.1", port), MSG % 1)
    assert h.net.send(Dest("tcp", "127.0.0.1", port), MSG % 2)
    h.spin()
    s, _ = peer.accept()
    assert h.net.send(Dest("tcp", "127.0.0.1", port), MSG % 3)
    h.spin()
    s.settimeout(1)
    rb = ReceiveBuffer()
    got: list[bytes] = []
    while len(got) < 3:
        rb.feed(s.recv(65535))
        got.extend(rb.messages())
    assert got == [MSG % 1, MSG % 2, MSG % 3]
    peer.settimeout(0.2)
    with pytest.raises(socket.timeout):
        peer.accept()                   # no second connection
    recs = h.net.table.records()
    assert len(recs) == 1 and recs[0].outbound
    # the peer answers on that connection: it reaches the routing like any message
    s.sendall(MSG % 9)
    h.spin()
    assert h.got[-1][0] == MSG % 9 and h.got[-1][1].conn_id == recs[0].conn_id
    s.close()
    peer.close()


def test_connect_failure_is_counted(make):
    from sipcore import stats

    h = make(connect_timeout=0.5)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                           # nobody listens there
    before = stats.get("tcp:connect_failed")
    assert h.net.send(Dest("tcp", "127.0.0.1", port), MSG % 1)
    h.spin(0.3)
    assert stats.get("tcp:connect_failed") == before + 1
    assert h.net.table.count("tcp") == 0


def test_accept_no_cl(make):
    no_cl = (MSG % 1).replace(b"Content-Length: 5\r\n", b"")[:-5]
    h = make(accept_no_cl=True)
    c = h.connect()
    c.sendall(no_cl + (MSG % 2))
    h.spin()
    assert [raw for raw, _ in h.got] == [no_cl, MSG % 2]
    h2 = make()
    c2 = h2.connect()
    c2.sendall(no_cl)
    h2.spin()
    assert h2.got == [] and _closed(c2)


def test_close_after_send(make):
    h = make()
    c = h.connect()
    c.sendall(MSG % 1)
    h.spin()
    rcv = h.got[0][1]
    assert h.net.send(Dest("tcp", rcv.src_ip, rcv.src_port, conn_id=rcv.conn_id), b"BYE",
                      close_after=True)
    h.spin()
    c.settimeout(1)
    assert c.recv(10) == b"BYE"
    assert _closed(c)
    assert h.net.table.count("tcp") == 0


def test_write_queue_limit_and_send_timeout(make):
    from sipcore import stats

    h = make(conn_wq_max=200_000, send_timeout=0.5)
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(("127.0.0.1", h.si.port))
    c.sendall(MSG % 1)                  # a peer that never reads what it gets
    h.spin()
    rcv = h.got[0][1]
    dest = Dest("tcp", rcv.src_ip, rcv.src_port, conn_id=rcv.conn_id)
    full = stats.get("tcp:sendq_full")
    for _ in range(400):
        h.net.send(dest, b"z" * 65536)
        h.spin(0.005)
        if stats.get("tcp:sendq_full") > full or h.net.table.count("tcp") == 0:
            break
    assert stats.get("tcp:sendq_full") == full + 1
    assert stats.get("tcp:current_write_queue_size") == 0
    # a smaller backlog that never drains is cut by tcp_send_timeout
    c2 = socket.socket()
    c2.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c2.connect(("127.0.0.1", h.si.port))
    c2.sendall(MSG % 2)
    h.spin()
    rcv2 = h.got[-1][1]
    dest2 = Dest("tcp", rcv2.src_ip, rcv2.src_port, conn_id=rcv2.conn_id)
    before = stats.get("tcp:send_timeout")
    for _ in range(400):
        h.net.send(dest2, b"q" * 16384)
        h.spin(0.002)
        if stats.get("tcp:current_write_queue_size") > 0:
            break
    assert stats.get("tcp:current_write_queue_size") > 0
    h.spin(1.0)
    assert stats.get("tcp:send_timeout") == before + 1
    assert h.net.table.count("tcp") == 0
    c.close()
    c2.close()


def test_outbound_source_address(make):
    h = make(source_ipv4="127.0.0.2")
    peer = socket.socket()
    peer.bind(("127.0.0.1", 0))
    peer.listen(1)
    assert h.net.send(Dest("tcp", "127.0.0.1", peer.getsockname()[1]), MSG % 1)
    h.spin()
    peer.settimeout(1)
    s, addr = peer.accept()
    assert addr[0] == "127.0.0.2"
    s.close()
    peer.close()


def test_busy_stream_split_inside_messages_is_not_stalled(make):
    """tcp_wait_data counts from the start of the incomplete message: a stream whose every read
    ends inside a message (a busy trunk) stays open for longer than wait_data."""
    h = make(wait_data=0.3)
    c = h.connect()
    stream = b"".join(MSG % i for i in range(40))
    cut = len(MSG % 0) // 2
    chunks = [stream[i:i + len(MSG % 0)] for i in range(cut, len(stream), len(MSG % 0))]
    c.sendall(stream[:cut])
    for chunk in chunks:                # ~1 s in all, each read ends mid-message
        h.spin(0.025)
        c.sendall(chunk)
    h.spin(0.1)
    assert len(h.got) == 40 and not _closed(c, 0.05)


def test_event_of_a_connection_closed_in_the_same_batch_is_ignored(make):
    h = make()
    peer = socket.socket()
    peer.bind(("127.0.0.1", 0))
    peer.listen(4)
    w = h.workers[0]
    h.net.worker = w
    conn = w._connect("tcp", "127.0.0.1", peer.getsockname()[1])
    assert conn is not None
    w._close(conn, None)
    w._conn_event(conn, selectors.EVENT_WRITE | selectors.EVENT_READ)   # no EBADF
    peer.close()


def test_burst_to_a_new_destination_is_not_cut_by_the_write_queue_limit(make):
    """Sends that pile up in the mailbox while the connection to a new peer is being opened
    are written once it is up, not queued past tcp_conn_wq_max (which closes it)."""
    from sipcore import stats

    h = make(conn_wq_max=32768)
    peer = socket.socket()
    peer.bind(("127.0.0.1", 0))
    peer.listen(4)
    port = peer.getsockname()[1]
    full = stats.get("tcp:sendq_full")
    big = [(MSG % i).replace(b"hello", b"x" * 400).replace(b"Length: 5", b"Length: 400")
           for i in range(200)]         # 200 x ~600 bytes: 4 x tcp_conn_wq_max
    for m in big:
        assert h.net.send(Dest("tcp", "127.0.0.1", port), m)
    h.spin(0.3)
    s, _ = peer.accept()
    s.settimeout(1)
    rb = ReceiveBuffer()
    got: list[bytes] = []
    while len(got) < len(big):
        data = s.recv(65535)
        assert data, f"closed after {len(got)} messages"
        rb.feed(data)
        got.extend(rb.messages())
        h.spin(0.01)
    assert got == big and stats.get("tcp:sendq_full") == full
    s.close()
    peer.close()
