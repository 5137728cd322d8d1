"""The shared connection table: records, address aliases, stale aliases, owner purge, ids
shared across processes (fork)."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sipcore.net.conntable import ConnRec, ConnTable
from sipcore.shm import ShmContext

_seq = 0


@pytest.fixture
def table() -> Iterator[ConnTable]:
    global _seq
    _seq += 1
    ctx = ShmContext.create(2, f"tcpct{os.getpid()}x{_seq}", max_procs=4)
    ctx.unlink()
    try:
        yield ConnTable.create(ctx.arena, 64)
    finally:
        ctx.close()


def _rec(t: ConnTable, owner: int = 0, rport: int = 40000, proto: str = "tcp") -> ConnRec:
    return ConnRec(t.new_id(), owner, proto, "127.0.0.1", rport, "127.0.0.1", 5060)


def test_record_roundtrip_with_aliases():
    r = ConnRec(7, 1, "tls", "::1", 5061, "::1", 5071, True, 123.5,
                [("::1", 5061), ("::1", 6000)])
    again = ConnRec.unpack(7, r.pack())
    assert again == r


def test_add_lookup_by_id_and_address(table: ConnTable):
    r = _rec(table)
    table.add(r)
    assert table.get(r.conn_id).rport == 40000
    assert table.lookup("tcp", "127.0.0.1", 40000).conn_id == r.conn_id
    assert table.lookup("tls", "127.0.0.1", 40000) is None      # the protocol is part of it
    assert table.count("tcp") == 1 and table.count("tls") == 0


def test_alias_and_remove(table: ConnTable):
    r = _rec(table)
    table.add(r)
    assert table.add_alias(r.conn_id, "127.0.0.1", 5099)
    assert table.lookup("tcp", "127.0.0.1", 5099).conn_id == r.conn_id
    assert ("127.0.0.1", 5099) in table.get(r.conn_id).aliases
    table.remove(r.conn_id)
    assert table.lookup("tcp", "127.0.0.1", 5099) is None
    assert table.lookup("tcp", "127.0.0.1", 40000) is None
    assert table.count("tcp") == 0
    assert not table.add_alias(r.conn_id, "127.0.0.1", 1)


def test_newer_connection_takes_the_alias_and_old_removal_keeps_it(table: ConnTable):
    a = _rec(table, rport=41000)
    table.add(a)
    table.add_alias(a.conn_id, "127.0.0.1", 5099)
    b = _rec(table, owner=1, rport=42000)
    table.add(b)
    table.add_alias(b.conn_id, "127.0.0.1", 5099)
    table.remove(a.conn_id)                      # must not drop b's alias
    assert table.lookup("tcp", "127.0.0.1", 5099).conn_id == b.conn_id


def test_purge_owner(table: ConnTable):
    for i in range(4):
        table.add(_rec(table, owner=i % 2, rport=43000 + i))
    assert table.purge_owner(1) == 2
    assert sorted(r.owner for r in table.records()) == [0, 0]
    assert table.count("tcp") == 2


def test_ids_are_unique_across_processes(table: ConnTable):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ids = [table.new_id() for _ in range(200)]
            os.write(w, ",".join(map(str, ids)).encode())
        finally:
            os._exit(0)
    os.close(w)
    mine = [table.new_id() for _ in range(200)]
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    theirs = [int(x) for x in data.decode().split(",")]
    assert len(set(mine) | set(theirs)) == 400
