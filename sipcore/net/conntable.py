"""The TCP/TLS connection table in shared memory (Kamailio tcpconn hash: by id and by alias).

Runs in: TCP workers (insert on accept/connect, alias, remove on close; each connection is
written only by the worker that owns it), every sending process (UDP workers, timer, TCP
workers: lookups by id or by address), the ctl process (core.tcp_list/tcp_info). Shared state:
one ShmHashTable created by the master before fork (`ConnTable.create`), holding

  b"i" + id (4 bytes, big endian)   -> the connection record (owner worker, addresses, aliases)
  b"a" + proto + b"|" + ip + b"|" + port -> id (4 bytes): the remote address and every alias
  b"#id"                             -> the last connection id handed out (incr; the
                                        first one is random, see create)
  b"#n:tcp", b"#n:tls"               -> open connections per protocol (incr +1/-1)

Aliases always point to the newest connection with that address (a later connection to the
same peer replaces the alias, as Kamailio's reuse picks the most recent one). A stale alias (its
id gone) is removed by the lookup that finds it. Every operation is one bucket-locked call in C;
nothing here holds a lock across I/O.
"""
from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass, field

from sipcore.shm import ShmHashTable
from sipcore.shm.alloc import ShmArena

PROTO_IDS = {"tcp": 2, "tls": 3, "ws": 5, "wss": 6}
PROTO_NAMES = {v: k for k, v in PROTO_IDS.items()}

FLAG_OUTBOUND = 1

# owner worker, proto id, flags, remote port, local port, created (wall), remote ip, local ip
_REC = struct.Struct("<iBBHHd46s46s")
_ID = struct.Struct(">I")


@dataclass
class ConnRec:
    """A copy of one connection's shared record."""

    conn_id: int
    owner: int                  # index of the owning TCP worker (0..tcp_children-1)
    proto: str                  # tcp | tls
    rip: str                    # remote address
    rport: int
    lip: str                    # local address
    lport: int
    outbound: bool = False
    created: float = field(default_factory=time.time)
    aliases: list[tuple[str, int]] = field(default_factory=list)   # (ip, port), remote incl.

    def pack(self) -> bytes:
        head = _REC.pack(self.owner, PROTO_IDS[self.proto],
                         FLAG_OUTBOUND if self.outbound else 0, self.rport, self.lport,
                         self.created, self.rip.encode(), self.lip.encode())
        return head + ",".join(f"{ip}|{port}" for ip, port in self.aliases).encode()

    @classmethod
    def unpack(cls, conn_id: int, raw: bytes) -> ConnRec:
        owner, proto, flags, rport, lport, created, rip, lip = _REC.unpack_from(raw, 0)
        aliases = []
        tail = raw[_REC.size:].decode()
        for item in tail.split(",") if tail else ():
            ip, _, port = item.rpartition("|")
            aliases.append((ip, int(port)))
        return cls(conn_id, owner, PROTO_NAMES.get(proto, "tcp"), rip.rstrip(b"\0").decode(),
                   rport, lip.rstrip(b"\0").decode(), lport, bool(flags & FLAG_OUTBOUND),
                   created, aliases)


def _id_key(conn_id: int) -> bytes:
    return b"i" + _ID.pack(conn_id)


def _alias_key(proto: str, ip: str, port: int) -> bytes:
    return f"a{proto}|{ip}|{port}".encode()


class ConnTable:
    """Connection records and address aliases shared by every process."""

    def __init__(self, table: ShmHashTable) -> None:
        self.t = table

    @property
    def offset(self) -> int:
        return self.t.offset

    @classmethod
    def create(cls, arena: ShmArena, size: int = 1024) -> ConnTable:
        t = cls(ShmHashTable.create(arena, size))
        # ids start at a random point so that an id a contact was stored with (usrloc in a
        # database) does not name an unrelated connection after a restart
        t.t.incr(b"#id", random.randrange(1 << 30))
        return t

    @classmethod
    def attach(cls, arena: ShmArena, offset: int) -> ConnTable:
        return cls(ShmHashTable.attach(arena, offset))

    # ---- ids and counts ------------------------------------------------------------------
    def new_id(self) -> int:
        """A new connection id (1, 2, ...; wraps at 2**31)."""
        return (self.t.incr(b"#id") - 1) % 0x7FFFFFFF + 1

    def count(self, proto: str) -> int:
        raw = self.t.get(f"#n:{proto}".encode())
        return 0 if raw is None else struct.unpack("=q", raw)[0]

    # ---- records -------------------------------------------------------------------------
    def add(self, rec: ConnRec) -> None:
        """Register a new connection (its owner, right after accept/connect)."""
        if (rec.rip, rec.rport) not in rec.aliases:
            rec.aliases.insert(0, (rec.rip, rec.rport))
        self.t.set(_id_key(rec.conn_id), rec.pack())
        for ip, port in rec.aliases:
            self.t.set(_alias_key(rec.proto, ip, port), _ID.pack(rec.conn_id))
        self.t.incr(f"#n:{rec.proto}".encode())

    def get(self, conn_id: int) -> ConnRec | None:
        raw = self.t.get(_id_key(conn_id))
        return None if raw is None else ConnRec.unpack(conn_id, raw)

    def lookup(self, proto: str, ip: str, port: int) -> ConnRec | None:
        """The connection reachable as proto:ip:port (remote address or alias), or None."""
        key = _alias_key(proto, ip, port)
        raw = self.t.get(key)
        if raw is None:
            return None
        conn_id = _ID.unpack(raw)[0]
        rec = self.get(conn_id)
        if rec is None or rec.proto != proto:
            self.t.delete(key)          # stale: the connection is gone
            return None
        return rec

    def add_alias(self, conn_id: int, ip: str, port: int) -> bool:
        """Make the connection reachable as ip:port too (force_tcp_alias, Via ;alias)."""
        rec = self.get(conn_id)
        if rec is None:
            return False
        if (ip, port) not in rec.aliases:
            if len(rec.aliases) >= 12:          # Kamailio TCP_CON_MAX_ALIASES
                return False
            rec.aliases.append((ip, port))
            self.t.set(_id_key(conn_id), rec.pack())
        self.t.set(_alias_key(rec.proto, ip, port), _ID.pack(conn_id))
        return True

    def remove(self, conn_id: int) -> ConnRec | None:
        """Forget a connection and the aliases that still point to it."""
        rec = self.get(conn_id)
        if rec is None:
            return None
        mine = _ID.pack(conn_id)
        for ip, port in rec.aliases:
            key = _alias_key(rec.proto, ip, port)
            with self.t.locked(key) as b:
                if b.get(key) == mine:
                    b.delete(key)
        if self.t.delete(_id_key(conn_id)):
            self.t.incr(f"#n:{rec.proto}".encode(), -1)
        return rec

    def records(self) -> list[ConnRec]:
        out = []
        for cell in self.t.items():
            if cell.key[:1] == b"i" and len(cell.key) == 5:
                out.append(ConnRec.unpack(_ID.unpack(cell.key[1:])[0], cell.value))
        out.sort(key=lambda r: r.conn_id)
        return out

    def purge_owner(self, owner: int) -> int:
        """Remove every connection of worker OWNER (a respawned worker: its predecessor's
        sockets died with it)."""
        n = 0
        for rec in self.records():
            if rec.owner == owner and self.remove(rec.conn_id) is not None:
                n += 1
        return n
