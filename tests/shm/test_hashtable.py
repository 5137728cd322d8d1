"""Shared hash table: operations, expiry, growth, many keys, several processes."""
from __future__ import annotations

import os
import time

import pytest

from sipcore.shm import Segment, ShmArena, ShmContext, ShmError, ShmHashTable, ShmOutOfMemory
from sipcore.shm.hashtable import pack_int, unpack_int
from tests.shm.forkutil import fork, run_children, wait


@pytest.fixture
def table(ctx: ShmContext) -> ShmHashTable:
    return ShmHashTable.create(ctx.arena, 256)


def test_set_get_delete_add_replace(table: ShmHashTable) -> None:
    assert table.get(b"a") is None and b"a" not in table
    table.set(b"a", b"1")
    assert table.get(b"a") == b"1" and b"a" in table
    table.set(b"a", b"22")
    assert table.get(b"a") == b"22"
    assert table.add(b"a", b"x") is False
    assert table.add(b"b", b"y") is True
    assert table.replace(b"c", b"z") is False
    assert table.replace(b"b", b"yy") is True and table.get(b"b") == b"yy"
    assert len(table) == 2
    assert table.delete(b"a") is True
    assert table.delete(b"a") is False
    assert table.get(b"a") is None and len(table) == 1
    table.set(b"", b"empty key")
    table.set(b"nul\x00key", b"")
    assert table.get(b"") == b"empty key" and table.get(b"nul\x00key") == b""


def test_values_grow_and_shrink_across_the_buffer_size(table: ShmHashTable,
                                                       ctx: ShmContext) -> None:
    for size in (0, 1, 7, 8, 100, 5000, 70_000, 10, 300_000, 3):
        value = os.urandom(size)
        table.set(b"blob", value)
        assert table.get(b"blob") == value
    assert len(table) == 1
    table.delete(b"blob")
    ctx.arena.check()


def test_incr(table: ShmHashTable) -> None:
    assert table.incr(b"n") == 1
    assert table.incr(b"n", 10) == 11
    assert table.incr(b"n", -20) == -9
    assert unpack_int(table.get(b"n")) == -9
    table.set(b"m", pack_int(41))
    assert table.incr(b"m") == 42
    table.set(b"s", b"text")
    with pytest.raises(ShmError):
        table.incr(b"s")


def test_expiry_hides_then_expire_slices_off(table: ShmHashTable) -> None:
    now = time.monotonic()
    table.set(b"short", b"1", ttl=0.05)
    table.set(b"long", b"2", ttl=3600)
    table.set(b"never", b"3")
    cell = table.get_cell(b"short")
    assert cell is not None and now < cell.expires <= now + 0.2
    assert table.get_cell(b"never").expires is None
    time.sleep(0.08)
    assert table.get(b"short") is None               # invisible at once
    assert b"short" not in {c.key for c in table.items()}
    assert len(table) == 3                            # but still stored until expire()
    expired = table.expire()
    assert [(c.key, c.value) for c in expired] == [(b"short", b"1")]
    assert len(table) == 2
    assert table.expire() == []
    # a time far ahead expires the ttl'd one, never the others
    assert [c.key for c in table.expire(now=time.monotonic() + 7200)] == [b"long"]
    assert table.get(b"never") == b"3"


def test_expired_key_counts_as_absent_for_add_and_incr(table: ShmHashTable) -> None:
    table.set(b"k", b"old", expires=time.monotonic() - 1)
    assert table.add(b"k", b"new") is True
    assert table.get(b"k") == b"new"
    table.set(b"c", pack_int(100), expires=time.monotonic() - 1)
    assert table.incr(b"c", 5) == 5
    assert table.replace(b"gone", b"x") is False


def test_many_keys_dump_and_clear(table: ShmHashTable, ctx: ShmContext) -> None:
    n = 20_000
    for i in range(n):
        table.set(b"key-%d" % i, b"value-%d" % i, ttl=(1 if i % 4 == 0 else None))
    assert len(table) == n
    dump = {c.key: c.value for c in table.dump()}
    assert len(dump) == n and dump[b"key-12345"] == b"value-12345"
    expired = table.expire(now=time.monotonic() + 10)
    assert len(expired) == n // 4
    assert all(int(c.key[4:]) % 4 == 0 for c in expired)
    assert len(table) == n - n // 4
    assert table.clear() == n - n // 4
    assert len(table) == 0
    ctx.arena.check()


def test_set_in_one_process_get_in_another(table: ShmHashTable) -> None:
    def writer() -> None:
        for i in range(500):
            table.set(b"c%d" % i, b"child %d" % i)

    run_children([writer])
    assert all(table.get(b"c%d" % i) == b"child %d" % i for i in range(500))
    table.set(b"from-parent", b"hello")

    def reader() -> None:
        assert table.get(b"from-parent") == b"hello"
        assert table.delete(b"c0")

    run_children([reader])
    assert table.get(b"c0") is None


def test_concurrent_writers(table: ShmHashTable, ctx: ShmContext) -> None:
    procs, n = 4, 1500

    def writer(p: int) -> None:
        for i in range(n):
            table.incr(b"shared")
            table.set(b"p%d-%d" % (p, i), b"x" * (i % 50))
            if i % 3 == 0:
                table.delete(b"p%d-%d" % (p, i))

    run_children([lambda p=p: writer(p) for p in range(procs)])
    assert table.incr(b"shared", 0) == procs * n
    expect = {b"p%d-%d" % (p, i) for p in range(procs) for i in range(n) if i % 3}
    assert {c.key for c in table.items()} == expect | {b"shared"}
    ctx.arena.check()


def test_locked_bucket_read_modify_write(table: ShmHashTable) -> None:
    table.set(b"rec", b"a")

    def appender() -> None:
        for _ in range(300):
            with table.locked(b"rec") as b:
                b.set(b"rec", b.get(b"rec") + b"a")

    run_children([appender, appender])
    assert table.get(b"rec") == b"a" * 601
    other = next(k for k in (b"x%d" % i for i in range(1000))
                 if table.bucket_of(k) != table.bucket_of(b"rec"))
    with table.locked(b"rec") as b:
        with pytest.raises(ShmError):
            b.get(other)
        assert [c.key for c in b.items()] == [b"rec"]


def test_out_of_memory_leaves_table_usable(instance: str) -> None:
    seg = Segment.create("small", 256 * 1024, instance)
    try:
        arena = ShmArena.create(seg)
        table = ShmHashTable.create(arena, 64)
        stored = 0
        with pytest.raises(ShmOutOfMemory):
            while True:
                table.set(b"k%d" % stored, b"v" * 1000)
                stored += 1
        assert stored > 100 and len(table) == stored
        assert table.get(b"k0") == b"v" * 1000
        with pytest.raises(ShmOutOfMemory):
            table.set(b"k0", b"w" * 100_000)       # growing a value fails cleanly too
        assert table.get(b"k0") == b"v" * 1000
        table.clear()
        arena.check()
        table.set(b"again", b"ok")
        assert table.get(b"again") == b"ok"
    finally:
        seg.unlink()
        seg.close()


def test_named_objects_before_and_after_fork(ctx: ShmContext) -> None:
    def make(arena):
        return ShmHashTable.create(arena, 16)

    pre = ctx.named("htable:pre", make, ShmHashTable.attach)
    assert ctx.named("htable:pre", make) is pre
    pre.set(b"k", b"master")
    r, w = os.pipe()

    def child() -> None:
        assert ctx.named("htable:pre", make).get(b"k") == b"master"   # inherited object
        post = ctx.named("htable:post", make, ShmHashTable.attach)    # created after fork
        post.set(b"k", b"child")
        os.write(w, b"D")

    pid = fork(child)
    assert os.read(r, 1) == b"D"
    assert wait(pid) == 0
    with pytest.raises(ShmError):
        ctx.named("htable:post", make)                               # needs attach
    post = ctx.named("htable:post", make, ShmHashTable.attach)
    assert post.get(b"k") == b"child"
    assert set(ctx.named_offsets()) == {"htable:pre", "htable:post"}
    os.close(r)
    os.close(w)
