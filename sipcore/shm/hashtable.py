"""Generic shared-memory hash table of byte cells: the base of htable, usrloc, dialog and tm.

Runs in: every process that uses a module table: workers (lookups, updates), the timer
process (expire()), the ctl process (dumps for RPC), the master pre-fork (create, initial
load). Shared state: the table header and its buckets (one robust lock each) and the cells,
allocated from the arena. All work on a bucket happens in C under that bucket's lock; Python
gets copies (bytes), never references into shm.

Keys and values are bytes; a module packs its own records (struct) into the value. Expiry is
optional per cell and stored as an absolute CLOCK_MONOTONIC time in milliseconds (the clock of
time.monotonic(), shared by all processes of the host; it does not jump with the wall clock).
`Cell.expires` gives it back as time.monotonic() seconds; convert for display with
`time.time() + (cell.expires - time.monotonic())`. Expired cells are invisible to
get/add/incr at once and are removed by expire(), which slices them off under the bucket lock
and returns them so the caller acts (event routes, DB writes) after the lock is released.

Lock order: a bucket lock is taken inside each call and is the innermost lock but the arena's;
`locked(key)` holds a bucket lock across several operations on keys of that bucket: keep such
blocks short and free of I/O (STYLE rule 4).
"""
from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from typing import NamedTuple

from sipcore.shm._ffi import check, error, ffi, lib
from sipcore.shm.alloc import ShmArena
from sipcore.shm.errors import ShmError

_REC = struct.Struct("=IIq")          # klen, vlen, expires_ms (see sht_dump in shm_htable.c)
_INT = struct.Struct("=q")            # incr() values: 8-byte native-endian signed
_OK, _NOTFOUND, _EXISTS, _TOOSMALL = lib.SHM_OK, lib.SHM_E_NOTFOUND, lib.SHM_E_EXISTS, \
    lib.SHM_E_TOOSMALL
_SET, _ADD, _REPLACE, _NOLOCK = lib.SHT_SET, lib.SHT_ADD, lib.SHT_REPLACE, lib.SHT_NOLOCK


class Cell(NamedTuple):
    """A copy of one table entry. expires: time.monotonic() seconds, or None (never)."""
    key: bytes
    value: bytes
    expires: float | None


_monotonic_ns = time.monotonic_ns


def now_ms() -> int:
    """The table clock: CLOCK_MONOTONIC in milliseconds."""
    return _monotonic_ns() // 1_000_000


def pack_int(v: int) -> bytes:
    """The value layout incr() works on."""
    return _INT.pack(v)


def unpack_int(b: bytes) -> int:
    return _INT.unpack(b)[0]


def _expires_ms(ttl: float | None, expires: float | None, now: int) -> int:
    if expires is not None:
        return max(1, int(expires * 1000))
    if ttl is None or ttl == 0:
        return 0
    if ttl < 0:
        raise ShmError(f"negative ttl {ttl}")
    return now + max(1, int(ttl * 1000))


def _parse(buf: bytes | memoryview, n: int) -> list[Cell]:
    out: list[Cell] = []
    pos = 0
    for _ in range(n):
        klen, vlen, exp = _REC.unpack_from(buf, pos)
        pos += _REC.size
        key = bytes(buf[pos:pos + klen])
        value = bytes(buf[pos + klen:pos + klen + vlen])
        pos += (klen + vlen + 7) & ~7
        out.append(Cell(key, value, exp / 1000.0 if exp else None))
    return out


class ShmHashTable:
    """A hash table in shm. Create in the master pre-fork (or later under a name via
    ShmContext.named); children use the inherited object, other processes `attach()`."""

    def __init__(self, arena: ShmArena, offset: int) -> None:
        rc = lib.sht_attach(arena.base, offset)
        if rc < 0:
            check(rc, f"hash table at {offset}")
        self.arena = arena
        self.base = arena.base
        self.offset = offset
        self.nbuckets = rc
        # per-process scratch (every process is single-threaded): output buffer, out-params
        self._cap = 4096
        self._buf = ffi.new("char[]", self._cap)
        self._vlen = ffi.new("uint32_t *")
        self._exp = ffi.new("int64_t *")
        self._i64 = ffi.new("int64_t *")
        self._used = ffi.new("uint64_t *")
        self._n = ffi.new("uint32_t *")
        self._more = ffi.new("int *")

    @classmethod
    def create(cls, arena: ShmArena, size: int = 1024) -> ShmHashTable:
        """A new empty table with `size` buckets (rounded up to a power of two)."""
        if not 1 <= size <= 1 << 24:
            raise ShmError(f"hash table size {size} out of range")
        nb = 1 << (size - 1).bit_length()
        off = arena.alloc(lib.sht_size(nb))
        rc = lib.sht_init(arena.base, off, nb)
        if rc < 0:
            arena.free(off)
            check(rc, "hash table init")
        return cls(arena, off)

    @classmethod
    def attach(cls, arena: ShmArena, offset: int) -> ShmHashTable:
        return cls(arena, offset)

    # ---- single-key operations (each one locks its bucket in C) --------------------------

    def set(self, key: bytes, value: bytes, ttl: float | None = None, *,
            expires: float | None = None) -> None:
        """Insert or overwrite. ttl: seconds from now (None/0 = never); or `expires` as an
        absolute time.monotonic() time. ShmOutOfMemory when the segment is full."""
        now = now_ms()
        rc = lib.sht_set(self.base, self.offset, key, len(key), value, len(value),
                         _expires_ms(ttl, expires, now), now, _SET, 0)
        if rc < 0:
            check(rc, "sht set")

    def add(self, key: bytes, value: bytes, ttl: float | None = None, *,
            expires: float | None = None) -> bool:
        """Insert only if the key is absent (or expired); False if it exists."""
        now = now_ms()
        rc = lib.sht_set(self.base, self.offset, key, len(key), value, len(value),
                         _expires_ms(ttl, expires, now), now, _ADD, 0)
        if rc == _EXISTS:
            return False
        check(rc, "sht add")
        return True

    def replace(self, key: bytes, value: bytes, ttl: float | None = None, *,
                expires: float | None = None) -> bool:
        """Overwrite only if the key exists (and is not expired); False otherwise."""
        now = now_ms()
        rc = lib.sht_set(self.base, self.offset, key, len(key), value, len(value),
                         _expires_ms(ttl, expires, now), now, _REPLACE, 0)
        if rc == _NOTFOUND:
            return False
        check(rc, "sht replace")
        return True

    def get(self, key: bytes) -> bytes | None:
        """A copy of the value, or None if absent or expired."""
        rc = lib.sht_get(self.base, self.offset, key, len(key), _monotonic_ns() // 1_000_000,
                         self._buf, self._cap, self._vlen, self._exp, 0)
        if rc == _OK:                       # fast path: the value fitted the scratch buffer
            return ffi.unpack(self._buf, self._vlen[0])
        if rc == _NOTFOUND:
            return None
        cell = self._get(key, 0)
        return None if cell is None else cell[0]

    def get_cell(self, key: bytes) -> Cell | None:
        """The value with its expiry, or None."""
        cell = self._get(key, 0)
        return None if cell is None else Cell(key, cell[0], cell[1] / 1000.0 if cell[1] else None)

    def _get(self, key: bytes, flags: int) -> tuple[bytes, int] | None:
        now = now_ms()
        while True:
            rc = lib.sht_get(self.base, self.offset, key, len(key), now, self._buf, self._cap,
                             self._vlen, self._exp, flags)
            if rc == _OK:
                return ffi.unpack(self._buf, self._vlen[0]), self._exp[0]
            if rc == _NOTFOUND:
                return None
            if rc != _TOOSMALL:
                raise error(rc, "sht get")
            self._grow(self._vlen[0])

    def __contains__(self, key: bytes) -> bool:
        return self._get(key, 0) is not None

    def delete(self, key: bytes) -> bool:
        """Remove the key; False if it was not there."""
        rc = lib.sht_delete(self.base, self.offset, key, len(key), 0)
        if rc == _NOTFOUND:
            return False
        check(rc, "sht delete")
        return True

    def incr(self, key: bytes, delta: int = 1, ttl: float | None = None) -> int:
        """Add delta to an integer value (8-byte, see pack_int) and return the result; an
        absent key starts at 0 and gets `ttl`, a present one keeps its expiry."""
        now = now_ms()
        rc = lib.sht_incr(self.base, self.offset, key, len(key), delta,
                          _expires_ms(ttl, None, now), now, self._i64, 0)
        if rc < 0:
            check(rc, "sht incr")
        return int(self._i64[0])

    # ---- whole-table operations (bucket by bucket; no global lock) -----------------------

    def __len__(self) -> int:
        """Number of cells, expired ones not yet removed included."""
        return int(lib.sht_count(self.base, self.offset))

    def bucket_of(self, key: bytes) -> int:
        return int(lib.sht_bucket_of(self.base, self.offset, key, len(key)))

    def bucket_items(self, b: int, *, flags: int = 0) -> list[Cell]:
        """Copies of the live cells of bucket b (consistent per bucket)."""
        while True:
            rc = lib.sht_dump(self.base, self.offset, b, now_ms(), self._buf, self._cap,
                              self._used, self._n, flags)
            if rc == _OK:
                return _parse(ffi.buffer(self._buf, self._used[0]), self._n[0])
            if rc != _TOOSMALL:
                raise error(rc, "sht dump")
            self._grow(self._used[0])

    def items(self) -> Iterator[Cell]:
        """Every live cell, bucket by bucket (each bucket is a consistent snapshot; the
        table as a whole is not frozen)."""
        for b in range(self.nbuckets):
            yield from self.bucket_items(b)

    def dump(self) -> list[Cell]:
        return list(self.items())

    def expire(self, now: float | None = None) -> list[Cell]:
        """Remove every cell whose expiry is <= now (time.monotonic() seconds, default the
        current time) and return copies of them. Timer process."""
        now_i = now_ms() if now is None else int(now * 1000)
        out: list[Cell] = []
        for b in range(self.nbuckets):
            while True:
                rc = lib.sht_expire(self.base, self.offset, b, now_i, self._buf, self._cap,
                                    self._used, self._n, self._more)
                check(rc, "sht expire")
                if self._n[0]:
                    out.extend(_parse(ffi.buffer(self._buf, self._used[0]), self._n[0]))
                if not self._more[0]:
                    break
                if self._n[0] == 0:        # one cell larger than the buffer
                    self._grow(self._cap * 2)
        return out

    def clear(self) -> int:
        """Remove every cell; returns how many were removed."""
        total = 0
        for b in range(self.nbuckets):
            check(lib.sht_clear(self.base, self.offset, b, self._n), "sht clear")
            total += self._n[0]
        return total

    def destroy(self) -> None:
        """Free all cells and the table itself (nobody may use it afterwards)."""
        self.clear()
        self.arena.free(self.offset)

    # ---- compound operations under one bucket lock ---------------------------------------

    def locked(self, key: bytes) -> BucketView:
        """Hold the bucket lock of `key` for a read-modify-write:

            with table.locked(k) as b:
                rec = b.get(k)
                b.set(k, update(rec))

        Only keys of the same bucket may be used inside (others raise ShmError)."""
        return BucketView(self, self.bucket_of(key), key)

    def _grow(self, need: int) -> None:
        cap = max(need, self._cap * 2)
        self._buf = ffi.new("char[]", cap)
        self._cap = cap

    def __repr__(self) -> str:
        return f"<ShmHashTable @{self.offset} buckets={self.nbuckets} cells={len(self)}>"


class BucketView:
    """Operations on one bucket whose lock the caller holds (see ShmHashTable.locked); as a
    context manager it takes the bucket lock on entry and releases it on exit (a plain class,
    not a generator: this is on every transaction update)."""

    __slots__ = ("_t", "bucket", "_key")

    def __init__(self, table: ShmHashTable, bucket: int, key: bytes = b"") -> None:
        self._t = table
        self.bucket = bucket
        self._key = key             # the key the lock was taken for: no re-hash for it

    def __enter__(self) -> BucketView:
        t = self._t
        check(lib.sht_lock_bucket(t.base, t.offset, self.bucket), "sht lock bucket")
        return self

    def __exit__(self, *exc: object) -> None:
        t = self._t
        lib.sht_unlock_bucket(t.base, t.offset, self.bucket)

    def _own(self, key: bytes) -> None:
        if key is not self._key and key != self._key and \
                self._t.bucket_of(key) != self.bucket:
            raise ShmError(f"key {key!r} is not in locked bucket {self.bucket}")

    def get(self, key: bytes) -> bytes | None:
        self._own(key)
        cell = self._t._get(key, _NOLOCK)
        return None if cell is None else cell[0]

    def get_cell(self, key: bytes) -> Cell | None:
        """The value with its expiry (time.monotonic() seconds or None), or None."""
        self._own(key)
        cell = self._t._get(key, _NOLOCK)
        return None if cell is None else Cell(key, cell[0], cell[1] / 1000.0 if cell[1] else None)

    def set(self, key: bytes, value: bytes, ttl: float | None = None, *,
            expires: float | None = None) -> None:
        self._own(key)
        t, now = self._t, now_ms()
        check(lib.sht_set(t.base, t.offset, key, len(key), value, len(value),
                          _expires_ms(ttl, expires, now), now, _SET, _NOLOCK), "sht set")

    def set_expires_ms(self, key: bytes, value: bytes, expires_ms: int) -> None:
        """set() with the expiry as the table clock's absolute ms (now_ms(); 0: never), as
        a record read earlier carries it."""
        self._own(key)
        t = self._t
        check(lib.sht_set(t.base, t.offset, key, len(key), value, len(value),
                          max(0, int(expires_ms)), now_ms(), _SET, _NOLOCK), "sht set")

    def delete(self, key: bytes) -> bool:
        self._own(key)
        t = self._t
        rc = lib.sht_delete(t.base, t.offset, key, len(key), _NOLOCK)
        if rc == _NOTFOUND:
            return False
        check(rc, "sht delete")
        return True

    def incr(self, key: bytes, delta: int = 1, ttl: float | None = None) -> int:
        self._own(key)
        t, now = self._t, now_ms()
        check(lib.sht_incr(t.base, t.offset, key, len(key), delta, _expires_ms(ttl, None, now),
                           now, t._i64, _NOLOCK), "sht incr")
        return int(t._i64[0])

    def items(self) -> list[Cell]:
        return self._t.bucket_items(self.bucket, flags=_NOLOCK)
