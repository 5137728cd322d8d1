"""Per-connection stream framing for the TCP workers: sipcore.msg.framing plus the core
`tcp_accept_no_cl` switch.

Runs in: TCP workers (one StreamBuffer per owned connection). Shared state: none.

With `tcp_accept_no_cl=yes` (Kamailio: needed for HTTP on SIP ports), a header block without
Content-Length is a complete message without a body instead of a framing error. This leans on
framing.ReceiveBuffer's documented behaviour: it raises before consuming anything, so the
header block is still at the start of the buffer.
"""
from __future__ import annotations

from collections.abc import Iterator

from sipcore.errors import ParseError
from sipcore.msg.framing import Event, ReceiveBuffer
from sipcore.msg.limits import MAX_MSG_SIZE

_NO_CL = "Content-Length required"


class StreamBuffer(ReceiveBuffer):
    __slots__ = ("accept_no_cl",)

    def __init__(self, max_size: int = MAX_MSG_SIZE, accept_no_cl: bool = False) -> None:
        super().__init__(max_size)
        self.accept_no_cl = accept_no_cl

    def events(self) -> Iterator[Event]:
        while True:
            try:
                yield from super().events()
                return
            except ParseError as exc:
                if not self.accept_no_cl or _NO_CL not in str(exc.reason):
                    raise
                buf = self._buf
                end = min(i for i in (buf.find(b"\r\n\r\n"), buf.find(b"\n\n")) if i >= 0)
                end += 4 if buf[end:end + 4] == b"\r\n\r\n" else 2
                raw = bytes(buf[:end])
                self._consumed(end)
                yield raw
