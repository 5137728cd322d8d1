"""Stream framing for SIP over TCP/TLS (RFC 3261 18.3) with RFC 5626 CRLF keep-alives.

Runs in: TCP workers (one ReceiveBuffer per connection, owned by the process that owns the
connection), tests. Touches no shared state; sans-I/O: the owner feeds bytes read from the
socket and gets complete messages back, then calls parse_msg on each.

Rules: CRLFs between messages are keep-alives - a double CRLF is a ping (the owner answers with
a single CRLF, RFC 5626 3.5.1), a lone CRLF is a pong and is dropped; a message is its header
block (ending with CRLFCRLF or LFLF) plus Content-Length body bytes; Content-Length is mandatory
on streams; a message larger than max_size (or a header block that grows past it) is an error.
The buffer never rescans bytes it has already searched for the header end.
"""
from __future__ import annotations

import re
from typing import Iterator, Union

from sipcore.errors import ParseError
from sipcore.msg.limits import MAX_CL_DIGITS, MAX_MSG_SIZE


class _Ping:
    """Sentinel yielded for a CRLF CRLF keep-alive ping."""

    def __repr__(self) -> str:
        return "KEEPALIVE_PING"


KEEPALIVE_PING = _Ping()
PONG = b"\r\n"

Event = Union[bytes, _Ping]

_HDR_END = re.compile(rb"\r\n\r\n|\n\n")
# Content-Length / l header in the header block (folding of this value is not supported on
# streams: parse_msg validates the message again anyway)
_CL = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)[ \t]*\r?$", re.I | re.M)


class ReceiveBuffer:
    """Bytes of one stream connection in, complete SIP messages out."""

    __slots__ = ("_buf", "_scan_from", "_head_end", "_total", "max_size")

    def __init__(self, max_size: int = MAX_MSG_SIZE) -> None:
        self._buf = bytearray()
        self._scan_from = 0  # where the header-end search resumes
        self._head_end = -1  # end of the current message's header block, once found
        self._total = -1  # its full length (headers + Content-Length), once known
        self.max_size = max_size

    def _consumed(self, n: int) -> None:
        del self._buf[:n]
        self._scan_from = 0
        self._head_end = -1
        self._total = -1

    def __len__(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def events(self) -> Iterator[Event]:
        """Complete messages (bytes) and KEEPALIVE_PING, in stream order; stops when more
        bytes are needed. Raises ParseError (the owner closes the connection)."""
        buf = self._buf
        while buf:
            if self._total < 0:
                # keep-alives between messages
                if buf[:4] == b"\r\n\r\n":
                    self._consumed(4)
                    yield KEEPALIVE_PING
                    continue
                if buf[:2] == b"\r\n":
                    if len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                        return  # maybe the start of a ping: wait
                    self._consumed(2)
                    continue
                if buf[:1] == b"\n":
                    self._consumed(1)
                    continue
                if buf[:1] == b"\r" and len(buf) == 1:
                    return
                m = _HDR_END.search(buf, max(0, self._scan_from - 3))
                if m is None:
                    if len(buf) > self.max_size:
                        raise ParseError("header block too large on stream", 0, 513)
                    self._scan_from = len(buf)
                    return
                cl = _CL.search(buf, 0, m.start() + 1)
                if cl is None:
                    raise ParseError("Content-Length required on streams", 0, 400)
                if len(cl.group(1).lstrip(b"0")) > MAX_CL_DIGITS:
                    raise ParseError("malformed Content-Length", cl.start(1), 400)
                self._head_end = m.end()
                self._total = m.end() + int(cl.group(1))
                if self._total > self.max_size:
                    raise ParseError("message too large", 0, 513)
            if len(buf) < self._total:
                return  # wait for the rest of the body
            msg = bytes(buf[: self._total])
            self._consumed(self._total)
            yield msg

    def messages(self) -> Iterator[bytes]:
        """Only the messages (pings are dropped: for tests and tools that never answer them)."""
        for ev in self.events():
            if isinstance(ev, bytes):
                yield ev
