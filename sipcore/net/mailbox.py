"""Mailboxes of the TCP workers: how any process hands a send to the connection's owner.

Runs in: the master creates one unix datagram socketpair per TCP worker before forking; the
worker reads its end, every process (UDP workers, timer, ctl, other TCP workers) writes to the
other end, which all of them inherit. Shared state: the kernel socket buffers, nothing else.

One datagram = one command (a header + the SIP bytes), so a message is never interleaved with
another sender's. Writes are bounded by SEND_TIMEOUT (SO_SNDTIMEO on the shared write end): a
wedged owner costs a sender at most that long, then the send fails and is counted.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from sipcore.net.conntable import PROTO_IDS, PROTO_NAMES

OP_SEND = 1         # send DATA on conn_id, or on the connection to proto:ip:port
OP_CLOSE = 2        # close conn_id

F_NO_CONNECT = 1    # never open a new connection for this send
F_CLOSE_AFTER = 2   # close the connection once DATA is written

SEND_TIMEOUT = 0.5
BUF_BYTES = 4 * 1024 * 1024

# op, proto id, flags, port, conn id, ip (text)
_HDR = struct.Struct("<BBBHI46s")


@dataclass
class Command:
    op: int
    proto: str
    flags: int
    ip: str
    port: int
    conn_id: int
    data: bytes = b""

    def pack(self) -> bytes:
        return _HDR.pack(self.op, PROTO_IDS.get(self.proto, 2), self.flags, self.port,
                         self.conn_id, self.ip.encode()) + self.data

    @classmethod
    def unpack(cls, raw: bytes) -> Command:
        op, proto, flags, port, conn_id, ip = _HDR.unpack_from(raw, 0)
        return cls(op, PROTO_NAMES.get(proto, "tcp"), flags, ip.rstrip(b"\0").decode(), port,
                   conn_id, raw[_HDR.size:])


class Mailboxes:
    """One socketpair per TCP worker: `reader(i)` in worker i, `post(i, cmd)` anywhere."""

    def __init__(self, n: int) -> None:
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        for _ in range(n):
            r, w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            for s in (r, w):
                for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                    try:
                        s.setsockopt(socket.SOL_SOCKET, opt, BUF_BYTES)
                    except OSError:
                        pass
            w.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                         struct.pack("ll", int(SEND_TIMEOUT), int(SEND_TIMEOUT % 1 * 1e6)))
            r.setblocking(False)
            self.pairs.append((r, w))

    def __len__(self) -> int:
        return len(self.pairs)

    def reader(self, i: int) -> socket.socket:
        return self.pairs[i][0]

    def post(self, i: int, cmd: Command) -> str | None:
        """Queue CMD for worker I; None on success, else the error text."""
        try:
            self.pairs[i][1].send(cmd.pack())
            return None
        except OSError as exc:
            return exc.strerror or str(exc)

    def close(self) -> None:
        for r, w in self.pairs:
            r.close()
            w.close()
        self.pairs = []
