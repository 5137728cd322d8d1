"""UDP: binding the listen sockets, sending, and the receive loop every UDP receiver runs.

Runs in: the master (binds before fork: every worker of a socket shares its file description,
so the kernel hands each datagram to exactly one of them), the UDP workers and the no-fork
process of `-D` (both run `UdpReceiver`), and every process that sends (`UdpSockets.send`).
No shared state.

A receiver hands each datagram to a RECEIVE callable (`receive(buf, rcv)`, in the server
sipcore.receive.receive_msg bound to the config and node): this room knows sockets and
addresses, not routing. A datagram shorter than a SIP message (a NUL/CRLF keepalive) is
dropped here; an exception out of RECEIVE (a bug in a route or module) is logged with its
traceback and counted in `core:bug_msgs`, and the loop goes on.
"""
from __future__ import annotations

import logging
import selectors
import socket
import struct
import traceback
from typing import Any, Callable, Optional, Protocol

from sipcore import stats
from sipcore.errors import ConfigError
from sipcore.net.addr import Dest, RecvInfo, SocketInfo

log = logging.getLogger(__name__)

BUF_SIZE = 65535
IDLE_WAKEUP_US = 500_000        # a blocked worker wakes twice a second when idle
MIN_DATAGRAM = 2                # shorter: a keepalive of NUL/CRLF bytes, nothing to parse

Receive = Callable[[bytes, RecvInfo], Any]
Endpoint = tuple[socket.socket, SocketInfo]


class TimerLoop(Protocol):
    """What the no-fork receiver needs of sipcore.timer's local loop."""

    def timeout(self, default: float) -> float: ...

    def run_due(self) -> int: ...


def bind_udp(sockets: list[SocketInfo], maxbuffer: int = 262144) -> list[Endpoint]:
    """Master, before fork: bind every udp listen socket of SOCKETS (port 0 takes a free port
    and writes it back into the SocketInfo); ConfigError naming the address on failure."""
    out: list[Endpoint] = []
    for si in sockets:
        if si.proto != "udp":
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
            for o, _ in out:
                o.close()
            raise ConfigError(f"cannot bind {si}: {exc.strerror}") from None
        if si.port == 0:
            si.port = s.getsockname()[1]
        out.append((s, si))
    return out


class UdpSockets:
    """The bound UDP listen sockets of this node, and sending on them."""

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.endpoints = endpoints

    def sock_for(self, dest: Dest) -> Optional[socket.socket]:
        """The socket DEST names (`dest.sock`), else the first of the destination's address
        family."""
        want = dest.sock
        fam6 = ":" in dest.ip
        fallback = None
        for s, si in self.endpoints:
            if want is not None and si is want:
                return s
            if (si.af == 6) == fam6:
                fallback = fallback or s
        return fallback

    def send(self, dest: Dest, data: bytes) -> bool:
        s = self.sock_for(dest)
        if s is None:
            log.error("no socket to send to %s:%s", dest.ip, dest.port)
            return False
        try:
            s.sendto(data, (dest.ip, dest.port))
            return True
        except OSError as exc:
            log.error("sendto %s:%s failed: %s", dest.ip, dest.port, exc.strerror)
            return False

    def close(self) -> None:
        for s, _ in self.endpoints:
            s.close()
        self.endpoints = []


def set_idle_wakeup(sock: socket.socket, usec: int = IDLE_WAKEUP_US) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, usec))


def guarded_receive(receive: Receive, data: bytes, rcv: RecvInfo) -> Any:
    """RECEIVE(data, rcv), with an exception out of it (a bug in a route or a module) logged
    and counted instead of killing the process; None then."""
    try:
        return receive(data, rcv)
    except Exception as exc:
        stats.inc("core:bug_msgs")
        log.critical("BUG: %s while processing a message from %s:%s/%s: %s\n%s",
                     type(exc).__name__, rcv.src_ip, rcv.src_port, rcv.proto, exc,
                     traceback.format_exc())
        return None


def _nothing() -> None:
    return None


class UdpReceiver:
    """The receive loop of a UDP receiver: a prefork worker serving one socket, or the `-D`
    process serving every UDP socket and running the timers between messages.

    One datagram path (`datagram()`), two ways to wait: a worker with one socket blocks in
    recvfrom() (SO_RCVTIMEO wakes it for on_idle: a stop request, a dead master, a changed
    debug level); with several sockets or timers to run, a selector waits for whichever comes
    first."""

    def __init__(self, endpoints: list[Endpoint], receive: Receive) -> None:
        self.endpoints = endpoints
        self.receive = receive

    def datagram(self, data: bytes, addr: tuple[Any, ...], si: SocketInfo) -> None:
        if len(data) < MIN_DATAGRAM:
            return
        rcv = RecvInfo("udp", addr[0], addr[1], si.ip, si.port, si.af, 0, si)
        guarded_receive(self.receive, data, rcv)

    def run(self, keep_running: Callable[[], bool], on_idle: Callable[[], None] = _nothing,
            timers: Optional[TimerLoop] = None) -> None:
        if len(self.endpoints) == 1 and timers is None:
            self._run_blocking(keep_running, on_idle)
        else:
            self._run_selecting(keep_running, on_idle, timers)

    def _run_blocking(self, keep_running: Callable[[], bool], on_idle: Callable[[], None]
                      ) -> None:
        sock, si = self.endpoints[0]
        sock.setblocking(True)
        set_idle_wakeup(sock)
        recvfrom = sock.recvfrom
        datagram = self.datagram
        while keep_running():
            try:
                data, addr = recvfrom(BUF_SIZE)
            except (BlockingIOError, InterruptedError):
                on_idle()
                continue
            except OSError as exc:
                log.error("recvfrom on %s: %s", si, exc.strerror)
                continue
            datagram(data, addr, si)

    def _run_selecting(self, keep_running: Callable[[], bool], on_idle: Callable[[], None],
                       timers: Optional[TimerLoop]) -> None:
        sel = selectors.DefaultSelector()
        for s, si in self.endpoints:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, si)
        datagram = self.datagram
        try:
            while keep_running():
                wait = timers.timeout(IDLE_WAKEUP_US / 1e6) if timers is not None \
                    else IDLE_WAKEUP_US / 1e6
                events = sel.select(timeout=wait)
                if timers is not None:
                    timers.run_due()
                if not events:
                    on_idle()
                for key, _ in events:
                    s: socket.socket = key.fileobj  # type: ignore[assignment]
                    si: SocketInfo = key.data
                    while True:
                        try:
                            data, addr = s.recvfrom(BUF_SIZE)
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError as exc:
                            log.error("recvfrom on %s: %s", si, exc.strerror)
                            break
                        datagram(data, addr, si)
        finally:
            sel.close()
