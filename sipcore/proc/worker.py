"""Bodies of the core child processes: UDP receivers (and the no-fork single process).

TCP workers run sipcore.net.tcp_worker.TcpWorker (forked by the master from the bodies
`tcp_child_body()` gives; see docs/transports.md).

Runs in: SIP worker processes. Each UDP worker blocks in recvfrom() on the socket it serves;
every worker of a socket shares the same file description, so the kernel hands each datagram
to exactly one of them (natural load balancing, no thundering herd). SO_RCVTIMEO wakes a
worker twice a second when idle, to notice a stop request, a dead master or a changed
runtime `debug` level.
"""
from __future__ import annotations

import socket
import struct
import traceback
from typing import Any, Callable

from sipcore import log as klog
from sipcore import stats
from sipcore.route.core_api import SocketInfo
from sipcore.route.ctx import RecvInfo

IDLE_WAKEUP_US = 500_000
BUF_SIZE = 65535


def set_idle_wakeup(sock: socket.socket, usec: int = IDLE_WAKEUP_US) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, usec))


def udp_receiver(cfg: Any, core: Any, sock: socket.socket, si: SocketInfo,
                 keep_running: Callable[[], bool], on_idle: Callable[[], None] = lambda: None
                 ) -> None:
    """Receive loop of one UDP worker: every datagram goes through receive_msg()."""
    from sipcore.receive import receive_msg

    sock.setblocking(True)
    af = 6 if si.af == 6 else 4
    recvfrom = sock.recvfrom
    while keep_running():
        try:
            data, addr = recvfrom(BUF_SIZE)
        except (BlockingIOError, InterruptedError):
            on_idle()
            continue
        except OSError as exc:
            klog.emit(klog.L_ERR, f"recvfrom on {si}: {exc.strerror}")
            continue
        if len(data) < 2:           # a keepalive of NUL/CRLF bytes: nothing to parse
            continue
        rcv = RecvInfo("udp", addr[0], addr[1], si.ip, si.port, af, 0, si)
        try:
            receive_msg(cfg, core, data, rcv)
        except Exception as exc:    # a bug in a route or module must not kill the worker
            stats.inc("core:bug_msgs")
            klog.emit(klog.L_CRIT, f"BUG: {type(exc).__name__} while processing a message "
                      f"from {addr[0]}:{addr[1]}: {exc}")
            klog.emit(klog.L_ERR, traceback.format_exc())
