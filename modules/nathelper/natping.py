"""NAT keepalives to registered contacts (Kamailio nathelper's natping timer).

Runs in: the timer process (every natping_interval seconds; the harness runs it in-process),
SIP workers (absorbing the replies to our SIP pings). Shared state: the usrloc domains through
the usrloc API (read only) and one flag in the shm table "nathelper:state" (pinging enabled,
set by the nathelper.enable_ping RPC from the ctl process).

A contact is pinged when pinging is enabled, it is not marked with natping_disable_bflag, and
(with ping_nated_only) it carries usrloc's nat_bflag. Contacts with sipping_bflag get a SIP
request (sipping_method, From sipping_from); the others, over UDP, a 4-byte datagram of zeros
that only refreshes the NAT binding. The target is the saved `received` address when there is
one, else the Contact URI; only address literals are pinged (no DNS lookups in the timer).
"""
from __future__ import annotations

import itertools
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sipcore.errors import ParseError
from sipcore.msg import parse_uri
from sipcore.net.addr import Dest, SocketInfo
from sipcore.shm import ShmHashTable
from sipcore.shm.hashtable import pack_int, unpack_int

from . import nh_addr as na

log = logging.getLogger(__name__)

UDP_PING = b"\x00\x00\x00\x00"
CALLID_PREFIX = "nhping-"
_ENABLED_KEY = b"ping"
_seq = itertools.count(1)


@dataclass(frozen=True)
class PingConfig:
    ping_nated_only: bool
    nat_bflag: int               # usrloc's nat_bflag (-1: none)
    sipping_bflag: int           # -1: never SIP pings
    sipping_from: str | None
    sipping_method: str
    disable_bflag: int           # natping_disable_bflag (-1: none)
    socket: str | None        # natping_socket / force_socket: "udp:ip:port"


class PingState:
    """The enable flag in shm, shared by the timer process and the RPC process."""

    def __init__(self, table: ShmHashTable | None) -> None:
        self.table = table
        self._local = True          # no shm (config check): a process-local flag

    def enabled(self) -> bool:
        if self.table is None:
            return self._local
        v = self.table.get(_ENABLED_KEY)
        return True if v is None else bool(unpack_int(v))

    def set_enabled(self, on: bool) -> None:
        if self.table is None:
            self._local = on
        else:
            self.table.set(_ENABLED_KEY, pack_int(1 if on else 0))


def _bit(flags: int, bit: int) -> bool:
    return bit >= 0 and bool(flags & (1 << bit))


def wanted(cfg: PingConfig, cflags: int) -> bool:
    if _bit(cflags, cfg.disable_bflag):
        return False
    return not cfg.ping_nated_only or _bit(cflags, cfg.nat_bflag)


def target_of(contact: Any) -> tuple[str, str, int] | None:
    """(proto, ip, port) to ping for a usrloc contact, or None (hostname / bad URI)."""
    text = contact.received or contact.c
    try:
        u = parse_uri(text)
    except ParseError:
        return None
    host = (u.host or "").strip("[]")
    if na.parse_ip(host) is None:
        return None
    proto = (u.transport or "udp").lower()
    port = u.port or (5061 if proto in ("tls", "wss") else 5060)
    return proto, host, port


def _socket_from_spec(core: Any, spec: str | None) -> SocketInfo | None:
    """The local socket named by "proto:ip:port" (contact socket or natping_socket)."""
    if not spec:
        return None
    text = spec.strip()
    proto, _, rest = text.partition(":")
    host, _, port_s = rest.rpartition(":")
    for s in core.sockets:
        if s.proto == proto.lower() and s.ip == host.strip("[]") and str(s.port) == port_s:
            return s
    return None


def sip_ping(cfg: PingConfig, contact_uri: str, sock: SocketInfo, proto: str) -> bytes:
    """A SIP keepalive request to CONTACT_URI sent from SOCK."""
    n = next(_seq)
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    tag = uuid.uuid4().hex[:10]
    callid = f"{CALLID_PREFIX}{os.getpid():x}-{n:x}@{sock.via_host()}"
    lines = [
        f"{cfg.sipping_method} {contact_uri} SIP/2.0",
        f"Via: SIP/2.0/{proto.upper()} {sock.via_host()}:{sock.via_port()};branch={branch}",
        f"From: <{cfg.sipping_from}>;tag={tag}",
        f"To: <{contact_uri}>",
        f"Call-ID: {callid}",
        f"CSeq: 1 {cfg.sipping_method}",
        "Max-Forwards: 70",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def iter_contacts(ul: Any, shm: Any) -> Iterator[Any]:
    """Every live contact of every usrloc domain of this instance (also domains another
    process created after fork: their names are in SHM's directory)."""
    if shm is not None:
        for name in shm.named_offsets():
            if name.startswith("usrloc:") and name.count(":") == 1:
                ul.register_udomain(name[len("usrloc:"):])
    for dom in list(ul.known.values()):
        for contacts in dom.dump().values():
            yield from contacts


def ping_contacts(core: Any, cfg: PingConfig, contacts: Iterator[Any]) -> int:
    """Send one keepalive to each wanted contact; returns the number sent."""
    forced = _socket_from_spec(core, cfg.socket)
    sent = 0
    for c in contacts:
        if not wanted(cfg, c.cflags):
            continue
        tgt = target_of(c)
        if tgt is None:
            continue
        proto, ip, port = tgt
        sock = forced or _socket_from_spec(core, c.socket) or core.choose_socket(proto, ip)
        if sock is None:
            continue
        if _bit(c.cflags, cfg.sipping_bflag) and cfg.sipping_from:
            data = sip_ping(cfg, c.c, sock, proto)
        elif proto == "udp":
            data = UDP_PING
        else:
            continue            # stream connections keep their own keepalives
        dest = Dest(proto, ip, port, sock, conn_id=c.conn_id, no_connect=proto != "udp")
        if core.send(dest, data):
            sent += 1
        else:
            log.debug("nathelper: ping to %s:%s:%s failed", proto, ip, port)
    return sent


def is_ping_reply(msg: Any, method: str) -> bool:
    """A reply to one of our SIP pings (absorbed, never relayed)."""
    if not msg.is_reply or not msg.callid.startswith(CALLID_PREFIX):
        return False
    try:
        return msg.cseq.method.upper() == method.upper()
    except ParseError:
        return False
