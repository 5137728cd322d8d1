"""One contact binding (Kamailio ucontact_t) and its compact byte form for shm.

Runs in: every process using usrloc. A record in the shm table is the AoR key plus the
concatenation of its contacts, each `<u32 length><fixed header><strings>`; no pickles.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass, replace
from typing import Any

# state of a contact against the database (db_mode 2): Kamailio CS_NEW / CS_SYNC / CS_DIRTY,
# plus DELETED: removed in memory, row still to delete (invisible to every reader)
CS_SYNC, CS_NEW, CS_DIRTY, CS_DELETED = 0, 1, 2, 3

Q_UNSPECIFIED = -1
METHODS_ALL = -1

# expires(q) last_modified(q) q cseq flags cflags methods reg_id conn_id state
_HDR = struct.Struct("=qqiiiiiiiB")
_STR_FIELDS = ("c", "callid", "user_agent", "received", "path", "socket", "instance", "ruid",
               "xavp")
_LEN = struct.Struct("=H")
_REC_LEN = struct.Struct("=I")


class RecordTooLarge(ValueError):
    """A contact field does not fit the record layout (64 KiB per string)."""


@dataclass(slots=True)
class Contact:
    """A binding. expires: wall-clock epoch seconds (0 = permanent, never expires)."""

    c: str                              # contact URI
    expires: int = 0
    q: int = Q_UNSPECIFIED              # -1 or 0..1000
    callid: str = "Default-Call-ID"
    cseq: int = 1
    flags: int = 0
    cflags: int = 0                     # branch flags (incl. nat_bflag)
    user_agent: str = ""
    received: str = ""
    path: str = ""
    socket: str = ""
    methods: int = METHODS_ALL
    instance: str = ""
    reg_id: int = 0
    ruid: str = ""
    last_modified: int = 0
    conn_id: int = 0
    state: int = CS_NEW
    xavp: str = ""                      # xavp_contact's children, JSON [[name, value], ...]

    def is_expired(self, now: float | None = None) -> bool:
        if self.expires == 0:
            return False
        return self.expires <= (time.time() if now is None else now)

    def live(self, now: float | None = None) -> bool:
        return self.state != CS_DELETED and not self.is_expired(now)

    def expires_in(self, now: float | None = None) -> int:
        if self.expires == 0:
            return 0
        return max(0, self.expires - int(time.time() if now is None else now))

    def copy(self, **kw: Any) -> Contact:
        return replace(self, **kw)

    # ---- bytes ----------------------------------------------------------------------------
    def pack(self) -> bytes:
        parts = [_HDR.pack(self.expires, self.last_modified, self.q, self.cseq, self.flags,
                           self.cflags, self.methods, self.reg_id, self.conn_id, self.state)]
        for name in _STR_FIELDS:
            b = getattr(self, name).encode("utf-8", "surrogateescape")
            if len(b) > 0xFFFF:
                raise RecordTooLarge(f"contact {name} too long ({len(b)} bytes)")
            parts.append(_LEN.pack(len(b)))
            parts.append(b)
        return b"".join(parts)

    @classmethod
    def unpack(cls, buf: bytes | memoryview, pos: int = 0) -> Contact:
        (expires, last_mod, q, cseq, flags, cflags, methods, reg_id, conn_id,
         state) = _HDR.unpack_from(buf, pos)
        pos += _HDR.size
        strs = []
        for _ in _STR_FIELDS:
            (n,) = _LEN.unpack_from(buf, pos)
            pos += _LEN.size
            strs.append(bytes(buf[pos:pos + n]).decode("utf-8", "surrogateescape"))
            pos += n
        c, callid, ua, received, path, sock, instance, ruid, xavp = strs
        return cls(c, expires, q, callid, cseq, flags, cflags, ua, received, path, sock,
                   methods, instance, reg_id, ruid, last_mod, conn_id, state, xavp)


def pack_record(contacts: list[Contact]) -> bytes:
    """The shm value of an AoR: its contacts in order."""
    out = []
    for ct in contacts:
        b = ct.pack()
        out.append(_REC_LEN.pack(len(b)))
        out.append(b)
    return b"".join(out)


def unpack_record(value: bytes) -> list[Contact]:
    out: list[Contact] = []
    pos = 0
    mv = memoryview(value)
    while pos < len(value):
        (n,) = _REC_LEN.unpack_from(mv, pos)
        pos += _REC_LEN.size
        out.append(Contact.unpack(mv, pos))
        pos += n
    return out


def q_text(q: int) -> str:
    """q as written in SIP: 1000 -> "1", 500 -> "0.5"; unspecified (-1) counts as 1."""
    if q < 0 or q >= 1000:
        return "1"
    if q == 0:
        return "0"
    return "0." + f"{q:03d}".rstrip("0")


def q_float(q: int) -> float:
    """The DB column value (FLOAT): unspecified counts as 1.0, as Kamailio stores it."""
    return 1.0 if q < 0 else q / 1000.0


def q_from_float(v: float | None) -> int:
    if v is None:
        return Q_UNSPECIFIED
    return max(0, min(1000, int(round(float(v) * 1000))))
