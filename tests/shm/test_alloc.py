"""Arena allocator: alloc/free, alignment, coalescing, statistics, out of memory, fork."""
from __future__ import annotations

import itertools
import os
import random

import pytest

from sipcore.shm import Segment, ShmArena, ShmContext, ShmError, ShmOutOfMemory
from tests.shm.forkutil import fork, wait


@pytest.fixture
def arena(instance: str):
    seg = Segment.create("alloc", 1 << 20, instance)
    try:
        yield ShmArena.create(seg)
    finally:
        seg.unlink()
        seg.close()


def test_alloc_is_aligned_distinct_and_writable(arena: ShmArena) -> None:
    blocks = {}
    for i in range(200):
        size = 1 + (i * 37) % 700
        off = arena.alloc(size)
        assert off % 16 == 0
        assert arena.usable_size(off) >= size
        arena.write(off, bytes([i % 256]) * size)
        blocks[off] = (size, i % 256)
    spans = sorted((off, off + size) for off, (size, _) in blocks.items())
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start                         # no overlap
    for off, (size, fill) in blocks.items():
        assert arena.read(off, size) == bytes([fill]) * size
    arena.check()


def test_free_coalesces_back_to_one_fragment(arena: ShmArena) -> None:
    base = arena.stats()
    offs = [arena.alloc(random.Random(i).randint(1, 3000)) for i in range(300)]
    mid = arena.stats()
    assert mid["allocs"] == base["allocs"] + 300
    assert mid["used"] > base["used"]
    order = offs[:]
    random.Random(7).shuffle(order)
    for off in order:
        arena.free(off)
    end = arena.stats()
    assert end["fragments"] == 1                    # every neighbour merged
    assert end["used"] == base["used"] and end["real_used"] == base["real_used"]
    assert end["max_used"] >= mid["real_used"]
    arena.check()
    # the whole heap is one block again: a near-total allocation succeeds
    big = arena.alloc(end["free"] - 64)
    arena.free(big)


def test_stats_shape_and_consistency(arena: ShmArena) -> None:
    st = arena.stats()
    for key in ("total", "used", "real_used", "free", "max_used", "fragments"):
        assert isinstance(st[key], int) and st[key] >= 0
    assert st["total"] == 1 << 20
    assert st["free"] == st["total"] - st["real_used"]
    assert st["real_used"] >= st["used"]
    off = arena.alloc(1000)
    st2 = arena.stats()
    assert st2["used"] >= st["used"] + 1000
    assert st2["max_used"] >= st2["real_used"]
    arena.free(off)
    assert arena.stats()["max_used"] == st2["max_used"]   # high-water mark stays


def test_out_of_memory_is_an_exception_and_recoverable(arena: ShmArena) -> None:
    with pytest.raises(ShmOutOfMemory):
        arena.alloc(2 << 20)
    held = []
    with pytest.raises(ShmOutOfMemory):
        while True:
            held.append(arena.alloc(60_000))
    assert len(held) >= 15
    assert arena.stats()["oom"] == 2
    small = arena.alloc(100) if arena.stats()["free"] > 200 else None
    for off in held:
        arena.free(off)
    if small is not None:
        arena.free(small)
    arena.check()
    assert arena.stats()["fragments"] == 1


def test_double_free_and_foreign_offset_raise(arena: ShmArena) -> None:
    off = arena.alloc(64)
    arena.free(off)
    with pytest.raises(ShmError):
        arena.free(off)
    with pytest.raises(ShmError):
        arena.free(3)
    with pytest.raises(ShmError):
        arena.free(1 << 30)
    arena.check()


def test_random_alloc_free_keeps_heap_and_data_intact(arena: ShmArena) -> None:
    rnd = random.Random(42)
    live: dict[int, bytes] = {}
    for step in range(5000):
        if live and (rnd.random() < 0.45 or arena.stats()["free"] < 50_000):
            off = rnd.choice(list(live))
            assert arena.read(off, len(live[off])) == live[off]
            arena.free(off)
            del live[off]
        else:
            data = os.urandom(rnd.choice((1, 15, 16, 17, 100, 1000, 5000)))
            off = arena.alloc(len(data))
            arena.write(off, data)
            live[off] = data
        if step % 1000 == 0:
            arena.check()
    for off, data in live.items():
        assert arena.read(off, len(data)) == data
        arena.free(off)
    arena.check()
    assert arena.stats()["fragments"] == 1


def test_block_allocated_in_child_is_freed_by_parent(ctx: ShmContext) -> None:
    r, w = os.pipe()

    def child() -> None:
        off = ctx.arena.alloc(32)
        ctx.arena.write(off, b"from the child".ljust(32, b"."))
        os.write(w, off.to_bytes(8, "little"))

    pid = fork(child)
    off = int.from_bytes(os.read(r, 8), "little")
    assert wait(pid) == 0
    os.close(r)
    os.close(w)
    assert ctx.arena.read(off, 14) == b"from the child"
    ctx.arena.free(off)
    ctx.arena.check()


def test_context_attach_by_name(ctx: ShmContext, instance: str) -> None:
    other = ShmContext.open(instance)
    try:
        off = ctx.arena.alloc(16)
        ctx.arena.write(off, b"x" * 16)
        assert other.arena.read(off, 16) == b"x" * 16
        assert other.stats()["allocs"] == ctx.stats()["allocs"]
    finally:
        other.close()
