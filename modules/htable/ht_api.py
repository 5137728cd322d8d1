"""htable tables in shared memory: typed values over sipcore.shm.ShmHashTable.

Runs in: the master (create_tables in mod_init, before fork; DB load), SIP workers ($sht & co,
sht_* functions), the timer process (expire sweep + event_route[htable:expired:NAME]) and the
ctl process (htable.* RPCs). Every process uses the table objects the master created, so a
value set by one worker is seen by all.

Shared state per table: one ShmHashTable ("htable:NAME", key = item name in UTF-8, value =
one tag byte + payload: b"i" + int64 for integers, b"s" + UTF-8 for strings) and one LockSet
("htable:NAME:locks") for the script-level sht_lock()/sht_unlock().

Atomicity: every single operation runs under the item's bucket lock in C; $shtinc/$shtdec and
the expiry changes are read-modify-write blocks under `ShmHashTable.locked()` (no I/O, no
script inside). sht_lock() locks are a separate robust lock set, recursion-aware per process
(a script may lock the same slot twice), so that a locked section may itself use $sht.
Lock order: sht_lock slot lock (script) -> hash-table bucket lock.
"""
from __future__ import annotations

import os
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from modules.htable.ht_spec import TableSpec
from sipcore.shm import Cell, LockSet, ShmHashTable

HtValue = int | str

_INT = struct.Struct("=q")
_TAG_INT = b"i"
_TAG_STR = b"s"
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1
MAX_SCRIPT_LOCKS = 1024


def encode(value: HtValue) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return _TAG_INT + _INT.pack(max(INT_MIN, min(INT_MAX, value)))
    return _TAG_STR + str(value).encode("utf-8", "surrogateescape")


def decode(raw: bytes) -> HtValue:
    if raw[:1] == _TAG_INT and len(raw) == 9:
        return _INT.unpack_from(raw, 1)[0]
    return raw[1:].decode("utf-8", "surrogateescape")


def _k(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Item:
    """A copy of one item. expires: seconds left (None = never)."""
    key: str
    value: HtValue
    expires: float | None


def _item(cell: Cell, now: float) -> Item:
    left = None if cell.expires is None else max(0.0, cell.expires - now)
    return Item(cell.key.decode("utf-8", "surrogateescape"), decode(cell.value), left)


class HTable:
    """One named table: the spec from the cfg plus its shm objects."""

    def __init__(self, spec: TableSpec, table: ShmHashTable, locks: LockSet) -> None:
        self.spec = spec
        self.name = spec.name
        self.table = table
        self.locks = locks
        self._ttl: float | None = float(spec.autoexpire) if spec.autoexpire > 0 else None
        self._lock_depth: dict[int, int] = {}      # this process: slot lock -> recursion
        self._lock_pid = os.getpid()

    # ---- single items -------------------------------------------------------------------
    def get(self, key: str) -> HtValue | None:
        raw = self.table.get(_k(key))
        return None if raw is None else decode(raw)

    def get_item(self, key: str) -> Item | None:
        cell = self.table.get_cell(_k(key))
        return None if cell is None else _item(cell, time.monotonic())

    def set(self, key: str, value: HtValue) -> None:
        """Store VALUE; autoexpire starts (or, with updateexpire=0, keeps running)."""
        k = _k(key)
        if self._ttl is None or self.spec.updateexpire:
            self.table.set(k, encode(value), self._ttl)
            return
        with self.table.locked(k) as b:
            old = b.get_cell(k)
            if old is not None and old.expires is not None:
                b.set(k, encode(value), expires=old.expires)
            else:
                b.set(k, encode(value), self._ttl)

    def set_ex(self, key: str, value: HtValue, expire: int) -> None:
        """sht_setxs/sht_setxi: store with an explicit expire in seconds (0 = never)."""
        self.table.set(_k(key), encode(value), float(expire) if expire > 0 else None)

    def set_expire(self, key: str, expire: int) -> bool:
        """$shtex assignment, htable.setex: new expire for an existing item (0 = never)."""
        k = _k(key)
        with self.table.locked(k) as b:
            raw = b.get(k)
            if raw is None:
                return False
            b.set(k, raw, float(expire) if expire > 0 else None)
        return True

    def delete(self, key: str) -> bool:
        return self.table.delete(_k(key))

    def add_int(self, key: str, delta: int) -> int | None:
        """Atomic $shtinc/$shtdec: the new value; a missing item starts from initval (or 0)
        and gets autoexpire. None when the item holds a string (as Kamailio)."""
        k = _k(key)
        with self.table.locked(k) as b:
            old = b.get_cell(k)
            if old is None:
                new = (self.spec.initval or 0) + delta
                b.set(k, encode(new), self._ttl)
                return new
            cur = decode(old.value)
            if not isinstance(cur, int):
                return None
            new = max(INT_MIN, min(INT_MAX, cur + delta))
            if self.spec.updateexpire and self._ttl is not None:
                b.set(k, encode(new), self._ttl)
            else:
                b.set(k, encode(new), expires=old.expires)
            return new

    # ---- whole table --------------------------------------------------------------------
    def items(self) -> Iterator[Item]:
        now = time.monotonic()
        for cell in self.table.items():
            yield _item(cell, now)

    def bucket_sizes(self) -> list[int]:
        return [len(self.table.bucket_items(b)) for b in range(self.table.nbuckets)]

    def reset(self) -> int:
        return self.table.clear()

    def remove_where(self, pred_key: re.Pattern[str] | str | None = None,
                     pred_val: re.Pattern[str] | str | None = None,
                     op: str = "re") -> int:
        """Delete items whose key (or string value) matches; op "re" (regex search) or "sw"
        (starts with). Returns how many were deleted."""
        n = 0
        for it in list(self.items()):
            if pred_key is not None:
                target: str | None = it.key
                pat = pred_key
            else:
                if not isinstance(it.value, str):
                    continue
                target, pat = it.value, pred_val
            if target is not None and match_op(op, pat, target) and self.delete(it.key):
                n += 1
        return n

    def expire(self) -> list[Item]:
        """Timer process: slice off expired items (under bucket locks) and return copies."""
        return [Item(c.key.decode("utf-8", "surrogateescape"), decode(c.value), 0.0)
                for c in self.table.expire()]

    # ---- script locks (sht_lock / sht_unlock) -------------------------------------------
    def _depths(self) -> dict[int, int]:
        if self._lock_pid != os.getpid():       # inherited across fork: start clean
            self._lock_depth = {}
            self._lock_pid = os.getpid()
        return self._lock_depth

    def script_lock(self, key: str) -> None:
        idx = self.table.bucket_of(_k(key)) % len(self.locks)
        depth = self._depths()
        if depth.get(idx, 0) == 0:
            self.locks[idx].acquire()
        depth[idx] = depth.get(idx, 0) + 1

    def script_unlock(self, key: str) -> bool:
        idx = self.table.bucket_of(_k(key)) % len(self.locks)
        depth = self._depths()
        level = depth.get(idx, 0)
        if level == 0:
            return False
        if level == 1:
            del depth[idx]
            self.locks[idx].release()
        else:
            depth[idx] = level - 1
        return True


def match_op(op: str, pat: object, target: str) -> bool:
    if op == "re":
        return isinstance(pat, re.Pattern) and pat.search(target) is not None
    if op == "sw":
        return target.startswith(str(pat))
    if op == "eq":
        return target == str(pat)
    if op == "ne":
        return target != str(pat)
    return False


# ---- the tables of this instance ---------------------------------------------------------

TABLES: dict[str, HTable] = {}


def create_tables(shm: object, specs: list[TableSpec]) -> None:
    """Master, mod_init: create (or, for a second config in one process, re-create) every
    table in shm. Children inherit the objects."""
    TABLES.clear()
    for spec in specs:
        nlocks = min(spec.slots, MAX_SCRIPT_LOCKS)
        table = shm.named(f"htable:{spec.name}",  # type: ignore[attr-defined]
                          lambda a, s=spec: ShmHashTable.create(a, s.slots), ShmHashTable.attach)
        locks = shm.named(f"htable:{spec.name}:locks",  # type: ignore[attr-defined]
                          lambda a, n=nlocks: LockSet.create(a, n), LockSet.attach)
        TABLES[spec.name] = HTable(spec, table, locks)


def get_table(name: str) -> HTable | None:
    return TABLES.get(name)


# ---- script iterators (sht_iterator_*) ---------------------------------------------------

MAX_ITERATORS = 4


@dataclass
class IterState:
    """A per-process iterator over a snapshot of a table (taken bucket by bucket at start;
    no lock is held between script statements, unlike Kamailio's slot-locking iterator)."""
    table: HTable
    items: list[Item]
    pos: int = -1

    @property
    def current(self) -> Item | None:
        return self.items[self.pos] if 0 <= self.pos < len(self.items) else None


ITERATORS: dict[str, IterState] = {}

# The item being reported by event_route[htable:expired:NAME] ($shtrecord), timer process.
EXPIRED_RECORD: list[Item] = []
