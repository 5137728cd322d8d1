"""The rtpproxy control protocol: commands, replies, and the UDP client with retries.

Runs in: SIP workers and the ctl process (each opens its own UDP socket on first use, after
fork). Shared state: none.

Protocol (rtpproxy's "UDP control socket"): one datagram "<cookie> <command>" per request, the
reply "<cookie> <result>". Commands used here:
  V                                   version -> "20040107"
  U[mods] callid addr port ftag[;n] [ttag[;n]]   offer: create/update -> "port [addr [6]]"
  L[mods] callid addr port ftag[;n] ttag[;n]     answer: lookup only   -> "port [addr [6]]"
  D callid ftag [ttag]                delete -> "0"
  R callid ftag [ttag]                start recording -> "0"
Errors are "E<code>". The cookie is unique per request and process; a retransmission keeps
it, so rtpproxy answers a repeated command from its cache instead of running it twice.
"""
from __future__ import annotations

import itertools
import os
import select
import socket
import time
from dataclasses import dataclass

from .rtpp_nodes import Node

SUPPORTED_VERSION = "20040107"

_seq = itertools.count(1)


class RtppError(Exception):
    """rtpproxy answered with an error, or an unparsable reply."""


@dataclass(frozen=True)
class MediaReply:
    port: int
    addr: str | None      # None: rtpproxy did not say (use our own address)
    ipv6: bool


def new_cookie() -> str:
    return f"{os.getpid()}_{next(_seq)}"


def _tag(tag: str, medianum: int) -> str:
    return f"{tag};{medianum}"


def cmd_update(lookup: bool, mods: str, callid: str, addr: str, port: int, from_tag: str,
               to_tag: str, medianum: int) -> str:
    """U (offer) or L (answer) for media stream MEDIANUM (1-based)."""
    verb = ("L" if lookup else "U") + mods + ("6" if ":" in addr and "6" not in mods else "")
    parts = [verb, callid, addr, str(port), _tag(from_tag, medianum)]
    if to_tag:
        parts.append(_tag(to_tag, medianum))
    return " ".join(parts)


def cmd_delete(callid: str, from_tag: str, to_tag: str) -> str:
    return " ".join(p for p in ("D", callid, from_tag, to_tag) if p)


def cmd_record(callid: str, from_tag: str, to_tag: str) -> str:
    return " ".join(p for p in ("R", callid, from_tag, to_tag) if p)


def parse_media_reply(text: str) -> MediaReply:
    parts = text.split()
    if not parts or parts[0].startswith("E"):
        raise RtppError(f"rtpproxy error {text.strip() or '(empty)'}")
    try:
        port = int(parts[0])
    except ValueError:
        raise RtppError(f"bad rtpproxy reply {text!r}") from None
    if not 0 < port < 65536:
        raise RtppError(f"rtpproxy returned port {port}")
    addr = parts[1] if len(parts) >= 2 else None
    return MediaReply(port, addr, len(parts) >= 3 and parts[2] == "6")


def check_ok(text: str) -> None:
    t = text.strip()
    if not t or t.startswith("E"):
        raise RtppError(f"rtpproxy error {t or '(empty)'}")


class RtppClient:
    """This process's control socket(s): send with retransmissions, match the cookie."""

    def __init__(self, tout_ms: int, retr: int) -> None:
        self.tout_ms = max(1, tout_ms)
        self.retr = max(1, retr)
        self._socks: dict[int, socket.socket] = {}
        self._pid = 0

    def _sock(self, af: int) -> socket.socket:
        if self._pid != os.getpid():        # after fork: never share the parent's socket
            self.close()
            self._pid = os.getpid()
        s = self._socks.get(af)
        if s is None:
            s = socket.socket(socket.AF_INET6 if af == 6 else socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            self._socks[af] = s
        return s

    def close(self) -> None:
        for s in self._socks.values():
            s.close()
        self._socks.clear()

    def send(self, node: Node, command: str) -> str | None:
        """The reply text (cookie removed), or None when the node did not answer after
        `retr` tries of `tout_ms` each."""
        cookie = new_cookie()
        data = f"{cookie} {command}\n".encode("utf-8", "surrogateescape")
        s = self._sock(node.af)
        addr = (node.host, node.port)
        for _ in range(self.retr):
            try:
                s.sendto(data, addr)
            except OSError:
                return None
            deadline = time.monotonic() + self.tout_ms / 1000.0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                r, _, _ = select.select([s], [], [], left)
                if not r:
                    break
                try:
                    reply, src = s.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    break               # ICMP port unreachable: next try
                if src[1] != node.port:
                    continue            # not from this node
                text = reply.decode("utf-8", "replace")
                rc, _, rest = text.partition(" ")
                if rc == cookie:
                    return rest.strip()
                # a late answer to an earlier request: ignore it
        return None
