"""Transaction table in shm: cells (compact byte records) and the indexes that find them.

Runs in: SIP workers (create, lookup, update on requests and replies), the timer process
(retransmissions, timeouts, wait timer, periodic clean) and the ctl process (tm.list/tm.stats).
Shared state: one ShmHashTable named "tm:table" in the server's segment. Keys:

* ``c<tid>``        -> the cell (the transaction), see `Cell.pack`
* ``k<match key>``  -> tid: server-side matching key of the request (RFC 3261 branch key or
  RFC 2543 fallback key), see `t_lookup.request_keys`.

Our Via branch for branch N of transaction tid is ``z9hG4bK.t<tid>.<N>``, so a reply finds its
cell from the branch alone (no extra index). Every entry carries a ttl (the max lifetime plus
the wait time), so a cell whose timers were lost still leaves the table: the timer process
calls `expire()` periodically.

Concurrency: every read-modify-write of a cell is done under its bucket lock with
`TmTable.update()`; the callback gets a decoded `Cell`, changes it and the new bytes are
stored before the lock is released. No I/O and no script execution happen inside: callers
collect what to send under the lock and send afterwards (STYLE rule 4).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from marshal import dumps as _dumps
from marshal import loads as _loads
from random import getrandbits as _getrandbits
from typing import Callable, Optional, TypeVar

from sipcore.shm import ShmHashTable
from sipcore.shm.hashtable import now_ms

R = TypeVar("R")

BRANCH_PREFIX = "z9hG4bK.t"

# transaction flags (Cell.tflags)
T_INVITE = 1
T_CANCELED = 2          # a CANCEL for this INVITE was received
T_IN_FAILURE = 4        # failure_route is running for it (one process at a time)
T_FINAL_SENT = 8        # a final reply went upstream
T_2XX_SENT = 16
T_NO_100 = 32           # auto 100 disabled for it
T_NOISY_408 = 64
T_DISABLE_6XX = 128
T_EXPIRED = 256
T_LOCAL_REPLY = 512     # the final reply upstream was generated locally (t_reply)
T_NO_INTERNAL_REPLY = 1024
T_IS_CANCEL = 2048      # the transaction of a received CANCEL
T_REPLICATE = 4096      # t_replicate(): replies are absorbed, nothing goes upstream
T_SUSPENDED = 8192      # t_suspend(): waiting for t_continue()
T_LOCAL = 16384         # a local request (t_uac_send): no upstream

# branch flags (Branch.flags)
B_TIMEOUT = 1           # fr timer fired (faked 408)
B_REPLIED = 2           # some reply was received
B_CANCEL_PENDING = 4    # CANCEL to send when a provisional arrives (cancel_b_method=1)
B_CANCEL_SENT = 8
B_DROPPED = 16          # reply not considered any more (failure_reply_mode)
B_LOCAL_FAIL = 32       # could not be sent (503)
B_CANCEL_REPLIED = 64   # our CANCEL on this branch got its final reply
B_FR_ARMED = 128        # a worker queued an fr job for it (the first retransmission job
                        # arms one otherwise, see t_timer.on_retr_timer)


def new_tid() -> str:
    """16 hex digits: $T(id_index) is the first 8 as an int, $T(id_label) the last 8 (kept
    below 2^31 so the pair maps back to the tid: t_continue, tm.reply)."""
    # the random module is reseeded from os.urandom in every forked child (CPython's
    # at-fork hook), so processes do not repeat each other, without a system call per tid
    return f"{_getrandbits(32):08x}{_getrandbits(31):08x}"


def tid_of(index: int, label: int) -> str:
    return f"{index & 0xFFFFFFFF:08x}{label & 0x7FFFFFFF:08x}"


# ---- record encoding ---------------------------------------------------------------------
# A cell is stored as a prefix, then marshal.dumps((cell field values, [branch field values,
# ...])): C-speed in both directions, and equal objects (the request, its relayed copy) are
# written once. The records are written and read only by this server's own processes (the
# same code, so the same field order): marshal is not for untrusted data, and none reaches it.
# The prefix is the branch count N, then 3 bytes per branch: its state and its flags (16
# bits, little-endian), so the timer process sees whether a retransmission is still due
# without decoding the cell (`TmTable.branch_state`). N = 255 (more branches, or a value that
# does not fit) means "no states here": decode the cell.

_MARSHAL_VERSION = 4


@dataclass
class Branch:
    """One outgoing branch (client transaction) of a cell."""

    state: int = 0          # fsm.St
    flags: int = 0          # B_*
    uri: str = ""           # R-URI of the branch
    dst_uri: str = ""
    proto: str = "udp"
    ip: str = ""
    port: int = 0
    sock: str = ""          # "proto:ip:port" of the sending socket
    buf: bytes = b""        # the request as sent (retransmissions, CANCEL/ACK building)
    code: int = 0           # last reply status (final when state >= COMPLETED)
    reply: bytes = b""      # the final reply as received (relayed if it is the best)
    retr_ms: int = 0        # current A/E interval
    fr_gen: int = 0         # generation of the armed fr timer (restart invalidates old ones)
    bflags: int = 0         # script branch flags
    inv_fr: int = 0         # when (now_ms) the INVITE branch went on fr_inv_timer; 0 not yet
    fr_due: int = 0         # when (now_ms) the armed fr timer fires
    ruid: str = ""          # usrloc record id of the contact ($T_reply_ruid)
    on_reply: str = ""      # onreply_route armed for this branch only (in branch_route)
    conn_id: int = 0        # TCP/TLS connection the branch goes out on (0: by address)
    instance: str = ""      # +sip.instance of the contact (t_next_contact_flow)

    @classmethod
    def make(cls, **fields: object) -> "Branch":
        """A new branch: FIELDS over the defaults (as Cell.make)."""
        br = object.__new__(cls)
        d = _BRANCH_DEFAULTS.copy()
        d.update(fields)
        br.__dict__ = d
        return br


@dataclass
class Cell:
    """One transaction (Kamailio struct cell), as stored in shm."""

    tid: str = ""
    tflags: int = 0             # T_*
    method: str = ""
    uas_state: int = 0          # fsm.St of the server transaction
    uas_code: int = 0           # last status sent upstream
    uas_reply: bytes = b""      # last reply sent upstream (retransmissions)
    uas_proto: str = "udp"      # where replies go (RFC 3261 18.2.2)
    uas_ip: str = ""
    uas_port: int = 0
    uas_sock: str = ""          # socket the request came in on
    uas_retr_ms: int = 0        # timer G interval
    to_tag: str = ""            # to-tag of local replies
    request: bytes = b""        # the request as received
    src_ip: str = ""
    src_port: int = 0
    dst_ip: str = ""
    dst_port: int = 0
    rcv_proto: str = "udp"
    flags: int = 0              # message flags at relay time ($mf)
    xflags: int = 0             # corex extended flags (t_flush_xflags)
    ruri: str = ""              # R-URI at relay time (restored in failure_route)
    on_failure: str = ""
    on_reply: str = ""
    on_branch: str = ""
    on_branch_failure: str = ""
    fr_timer: int = 0           # ms
    fr_inv_timer: int = 0
    t1: int = 0
    t2: int = 0
    created_ms: int = 0
    expires_ms: int = 0         # the table entry's absolute expiry (CLOCK_MONOTONIC ms)
    life_due: int = 0           # end of max_(non)inv_lifetime (now_ms), 0 none
    best_code: int = 0          # status of the reply chosen for upstream ($T_reply_code)
    best_reason: str = ""
    last_code: int = 0          # last received reply status ($T_reply_last)
    leg: int = 0                # serial forking leg (failure_route runs)
    cancel_reason: str = ""     # Reason header line of the received CANCEL (e2e)
    keys: str = ""              # its request matching keys, "\n"-separated (wait timer)
    fwd_base: bytes = b""       # the request with the script's edits, before our Via
    send_lines: str = ""        # send-time header lines (Record-Route) of the first relay
    contacts: str = ""          # pending serial-forking contacts (t_serial.dump, JSON)
    avps: str = ""              # the request's $avp/$xavp at relay time (t_ctx, JSON)
    branches: list[Branch] = field(default_factory=list)

    @classmethod
    def make(cls, **fields: object) -> "Cell":
        """A new cell: FIELDS over the defaults, without the 46-argument __init__ (one per
        transaction, on the hot path). `branches` must be given."""
        cell = object.__new__(cls)
        d = _CELL_DEFAULTS.copy()
        d.update(fields)
        cell.__dict__ = d
        return cell

    def pack(self) -> bytes:
        brs = self.branches
        rec = (_cell_values(self), [_branch_values(b) for b in brs])
        try:
            body = _dumps(rec, _MARSHAL_VERSION)
        except ValueError:          # an enum (St.X) or other int/str subclass was assigned
            body = _dumps(_plain(rec), _MARSHAL_VERSION)
        try:
            if len(brs) == 1:               # the usual case, without the comprehension
                b = brs[0]
                head = bytes((1, b.state, b.flags & 0xFF, b.flags >> 8))
            else:
                head = bytes([len(brs), *[v for b in brs
                                          for v in (b.state, b.flags & 0xFF, b.flags >> 8)]]) \
                    if len(brs) < 255 else b"\xff"
        except ValueError:          # a state or flags value that does not fit
            head = b"\xff"
        return head + body

    @classmethod
    def unpack(cls, buf: bytes) -> "Cell":
        n = buf[0]
        values, branches = _loads(memoryview(buf)[1 + 3 * n if n != 255 else 1:])
        cell = object.__new__(cls)          # every field is set: skip __init__'s defaults
        d = dict(zip(_CELL_FIELDS, values))
        brs = []
        for bv in branches:
            br = object.__new__(Branch)
            br.__dict__ = dict(zip(_BRANCH_FIELDS, bv))
            brs.append(br)
        d["branches"] = brs
        cell.__dict__ = d
        return cell

    @property
    def invite(self) -> bool:
        return bool(self.tflags & T_INVITE)

    def branch_id(self, idx: int) -> str:
        return f"{BRANCH_PREFIX}{self.tid}.{idx}"


def _plain(rec: tuple) -> tuple:
    """REC with int and str subclasses (IntEnum states) turned into plain int and str."""
    def conv(v: object) -> object:
        if isinstance(v, int) and type(v) is not int and type(v) is not bool:
            return int(v)
        if isinstance(v, str) and type(v) is not str:
            return str(v)
        return v

    values, branches = rec
    return tuple(map(conv, values)), [tuple(map(conv, b)) for b in branches]


_CELL_FIELDS = tuple(f.name for f in fields(Cell) if f.name != "branches")
_CELL_DEFAULTS = {k: v for k, v in Cell().__dict__.items() if k != "branches"}
_BRANCH_DEFAULTS = dict(Branch().__dict__)
_BRANCH_FIELDS = tuple(f.name for f in fields(Branch))
_cell_values = operator.attrgetter(*_CELL_FIELDS)
_branch_values = operator.attrgetter(*_BRANCH_FIELDS)


def parse_branch_id(branch: Optional[str]) -> Optional[tuple[str, int]]:
    """(tid, branch index) from one of our Via branches, None for any other branch."""
    if not branch or not branch.startswith(BRANCH_PREFIX):
        return None
    rest = branch[len(BRANCH_PREFIX):]
    tid, dot, idx = rest.partition(".")
    if not dot or not idx.isdigit() or len(tid) != 16:
        return None
    return tid, int(idx)


class TmTable:
    """The tm view of the shm hash table (see the module docstring for the key layout)."""

    def __init__(self, table: ShmHashTable) -> None:
        self.table = table
        self._last: Optional[tuple[bytes, Cell]] = None     # what get() decoded last

    @staticmethod
    def _ck(tid: str) -> bytes:
        return b"c" + tid.encode()

    def get(self, tid: str, for_update: bool = False) -> Optional[Cell]:
        """The cell, decoded (a copy: changing it changes nothing in shm). for_update: the
        caller calls update() next and leaves this copy as it is until then (see update)."""
        raw = self.table.get(self._ck(tid))
        if raw is None:
            return None
        cell = Cell.unpack(raw)
        if for_update:
            self._last = (raw, cell)
        return cell

    def branch_state(self, tid: str, idx: int) -> Optional[tuple[int, int]]:
        """(state, flags) of branch IDX from the stored record's prefix, without decoding
        the cell. None when the cell or the branch is gone; (-1, 0) when the record carries
        no states (decode it then)."""
        raw = self.table.get(self._ck(tid))
        if raw is None:
            return None
        n = raw[0]
        if n == 255:
            return -1, 0
        if idx >= n:
            return None
        o = 1 + 3 * idx
        return raw[o], raw[o + 1] | raw[o + 2] << 8

    def insert(self, cell: Cell, ttl: float) -> None:
        cell.expires_ms = now_ms() + int(ttl * 1000)
        self.table.set(self._ck(cell.tid), cell.pack(), ttl)

    def update(self, tid: str, fn: Callable[[Cell], R]) -> tuple[Optional[Cell], Optional[R]]:
        """Read-modify-write the cell under its bucket lock: fn(cell) changes the cell and
        returns what the caller needs afterwards. (None, None) when the cell is gone.

        A get(tid, for_update=True) just before (read, run the script, then update) is not
        decoded twice: when the stored bytes are still the ones get() saw, its object is
        reused, so the caller's copy from get() is the one returned, changed."""
        key = self._ck(tid)
        last, self._last = self._last, None
        with self.table.locked(key) as b:
            raw = b.get(key)
            if raw is None:
                return None, None
            cell = last[1] if last is not None and last[0] == raw else Cell.unpack(raw)
            res = fn(cell)
            # the same absolute expiry (at least 1 ms ahead, as a ttl would be)
            b.set_expires_ms(key, cell.pack(), max(cell.expires_ms, now_ms() + 1))
            return cell, res

    def delete(self, tid: str) -> bool:
        return self.table.delete(self._ck(tid))

    def index_add(self, key: str, tid: str, ttl: float) -> Optional[str]:
        """Map a request matching key to TID atomically; returns the tid already mapped when
        the key exists (a retransmission or a concurrent copy of the request)."""
        k = b"k" + key.encode("utf-8", "surrogateescape")
        if self.table.add(k, tid.encode(), ttl):
            return None
        old = self.table.get(k)
        return old.decode() if old is not None else None

    def index_get(self, key: str) -> Optional[str]:
        v = self.table.get(b"k" + key.encode("utf-8", "surrogateescape"))
        return v.decode() if v is not None else None

    def index_del(self, key: str, tid: Optional[str] = None) -> None:
        """Drop a matching key; with TID only while it still maps to that transaction (a
        retransmission may have made a new one with the same key meanwhile)."""
        k = b"k" + key.encode("utf-8", "surrogateescape")
        if tid is None:
            self.table.delete(k)
            return
        with self.table.locked(k) as b:
            if b.get(k) == tid.encode():
                b.delete(k)

    def cells(self) -> list[Cell]:
        return [Cell.unpack(c.value) for c in self.table.items() if c.key[:1] == b"c"]

    def expire(self) -> int:
        return len(self.table.expire())
