"""rtpproxy instances: parsing rtpproxy_sock, choosing a node per call, enable/disable state.

Runs in: the master (parsing in mod_init), SIP workers (selection, disabling a node that does
not answer), the ctl process (rtpproxy.list / rtpproxy.enable). Shared state: the shm table
"rtpproxy:nodes" (node url -> packed state), so a node disabled by one worker or by the RPC is
disabled for all.
"""
from __future__ import annotations

import re
import struct
import time
import zlib
from dataclasses import dataclass

from sipcore.shm import ShmHashTable

_STATE = struct.Struct("<bq")      # state, recheck time (time.monotonic() ms)
ST_ENABLED, ST_DISABLED, ST_DISABLED_PERMANENT = 0, 1, 2

_SOCK_RE = re.compile(r"^(?P<proto>udp6?):(?P<host>\[[^\]]+\]|[^:=]+):(?P<port>\d+)"
                      r"(?:=(?P<weight>\d+))?$")


@dataclass(frozen=True)
class Node:
    url: str            # as configured, without the weight: "udp:127.0.0.1:7722"
    set_id: int
    host: str
    port: int
    weight: int
    af: int             # 4 or 6


def parse_sock_param(value: str) -> list[Node]:
    """One rtpproxy_sock value: "[setid ==] udp:host:port[=weight] ..." -> nodes.
    Raises ValueError naming the bad part."""
    text = value.strip()
    set_id = 0
    if "==" in text:
        sid, _, text = text.partition("==")
        try:
            set_id = int(sid.strip())
        except ValueError:
            raise ValueError(f"rtpproxy_sock: bad set id {sid.strip()!r}") from None
        if set_id < 0:
            raise ValueError("rtpproxy_sock: set id must be >= 0")
    nodes = []
    for item in text.split():
        m = _SOCK_RE.match(item)
        if m is None:
            raise ValueError(f"rtpproxy_sock: bad socket {item!r} (expected udp:host:port "
                             "or udp6:[addr]:port, optionally =weight)")
        port = int(m.group("port"))
        if not 0 < port < 65536:
            raise ValueError(f"rtpproxy_sock: port out of range in {item!r}")
        host = m.group("host").strip("[]")
        weight = int(m.group("weight") or 1)
        url = item.split("=", 1)[0]
        af = 6 if m.group("proto") == "udp6" or ":" in host else 4
        nodes.append(Node(url, set_id, host, port, weight, af))
    if not nodes:
        raise ValueError("rtpproxy_sock: no socket given")
    return nodes


class NodeTable:
    """Every configured node plus its shared state."""

    def __init__(self, nodes: list[Node], table: ShmHashTable | None,
                 disable_tout_s: int) -> None:
        self.nodes = nodes
        self.table = table
        self.disable_tout_ms = max(0, disable_tout_s) * 1000
        self._local: dict[str, tuple[int, int]] = {}   # no shm (config check only)

    def sets(self) -> list[int]:
        return sorted({n.set_id for n in self.nodes})

    def default_set(self) -> int | None:
        return self.nodes[0].set_id if self.nodes else None

    def in_set(self, set_id: int) -> list[Node]:
        return [n for n in self.nodes if n.set_id == set_id]

    def find(self, url: str) -> list[Node]:
        return [n for n in self.nodes if n.url == url]

    # ---- state ----------------------------------------------------------------------------
    def state(self, node: Node) -> tuple[int, int]:
        if self.table is None:
            return self._local.get(node.url, (ST_ENABLED, 0))
        raw = self.table.get(node.url.encode())
        if raw is None:
            return ST_ENABLED, 0
        st, recheck = _STATE.unpack(raw)
        return st, recheck

    def _set_state(self, node: Node, st: int, recheck_ms: int) -> None:
        if self.table is None:
            self._local[node.url] = (st, recheck_ms)
        else:
            self.table.set(node.url.encode(), _STATE.pack(st, recheck_ms))

    def disable(self, node: Node, permanent: bool = False) -> None:
        now = int(time.monotonic() * 1000)
        self._set_state(node, ST_DISABLED_PERMANENT if permanent else ST_DISABLED,
                        0 if permanent else now + self.disable_tout_ms)

    def enable(self, node: Node) -> None:
        self._set_state(node, ST_ENABLED, 0)

    def is_disabled(self, node: Node) -> bool:
        return self.state(node)[0] != ST_ENABLED

    def due_for_recheck(self, node: Node) -> bool:
        st, recheck = self.state(node)
        return st == ST_DISABLED and recheck <= int(time.monotonic() * 1000)

    # ---- selection -------------------------------------------------------------------------
    def select(self, set_id: int, callid: str, skip: frozenset[str] = frozenset()
               ) -> Node | None:
        """The node for CALLID among the enabled nodes of SET_ID, by weight over a stable
        hash of the Call-ID (offer, answer and delete of one call reach the same node)."""
        active = [n for n in self.in_set(set_id)
                  if n.url not in skip and not self.is_disabled(n)]
        if not active:
            return None
        total = sum(n.weight for n in active)
        if total <= 0:
            return active[0]
        cut = zlib.crc32(callid.encode("utf-8", "surrogateescape")) % total
        for n in active:
            if cut < n.weight:
                return n
            cut -= n.weight
        return active[-1]
