"""Replay protection for nonces: one-time nonces and nonce-count tracking in shm
(Kamailio auth ot_nonce.c and nc.c, with a hash table instead of bit arrays).

Runs in: the master (create, in mod_init before fork), SIP workers (mark/check), the timer
process (sweep). Shared state: one ShmHashTable named "auth:nid" with keys
  b"o" + nid  -> b"1"        the one-time nonce was used
  b"c" + nid  -> nc (8 bytes) highest nonce-count accepted with this nonce
Each cell expires with its nonce, so the table only holds nonces still in flight.
Critical sections are one bucket lock around a read-compare-write; nothing else runs under it.
"""
from __future__ import annotations

import os
import struct

from sipcore.shm import ShmHashTable

_NC = struct.Struct(">Q")
_table: ShmHashTable | None = None


def create(shm: object, size: int) -> None:
    """Master, pre-fork: create (or attach to) the shared table."""
    global _table
    _table = shm.named("auth:nid",  # type: ignore[attr-defined]
                       lambda arena: ShmHashTable.create(arena, size),
                       ShmHashTable.attach)


def forget() -> None:
    global _table
    _table = None


def enabled() -> bool:
    return _table is not None


def new_nid() -> int:
    """A random nonce id (non-zero): 64 random bits make collisions irrelevant."""
    return int.from_bytes(os.urandom(8), "big") | 1


def _key(kind: bytes, nid: int) -> bytes:
    return kind + _NC.pack(nid)


def otn_use(nid: int, ttl: float) -> bool:
    """Mark a one-time nonce used: False when it was used before (replay)."""
    assert _table is not None
    return _table.add(_key(b"o", nid), b"1", max(ttl, 1.0))


def nc_check_and_set(nid: int, nc: int, ttl: float) -> bool:
    """RFC 2617 3.2.2: nc must grow for each request with one nonce. False on a replay."""
    assert _table is not None
    key = _key(b"c", nid)
    with _table.locked(key) as bucket:
        last = bucket.get(key)
        if last is not None and _NC.unpack(last)[0] >= nc:
            return False
        bucket.set(key, _NC.pack(nc), max(ttl, 1.0))
    return True


def sweep() -> None:
    """Timer process: drop cells of expired nonces."""
    if _table is not None:
        _table.expire()


__all__ = ["create", "enabled", "forget", "nc_check_and_set", "new_nid", "otn_use", "sweep"]
