"""Counters: per-process rows summed on read, names created after fork, reset; the stats
module on top of them (attach, RPC selectors)."""
from __future__ import annotations

import os

import pytest

from sipcore import stats
from sipcore.shm import ShmContext, ShmError
from tests.shm.forkutil import fork, run_children, wait


def test_per_process_slots_are_summed(ctx: ShmContext) -> None:
    c = ctx.counters
    c.inc("core:rcv_requests", 5)                 # master, slot 0

    def worker(slot: int) -> None:
        c.set_process_slot(slot)
        for _ in range(1000 * slot):
            c.inc("core:rcv_requests")

    run_children([lambda s=s: worker(s) for s in (1, 2, 3)])
    assert c.get("core:rcv_requests") == 5 + 1000 * (1 + 2 + 3)
    assert c.slot == 0


def test_name_created_in_child_is_seen_by_parent(ctx: ShmContext) -> None:
    c = ctx.counters
    assert c.find("sl:404_replies") is None

    def worker() -> None:
        c.set_process_slot(1)
        c.inc("sl:404_replies", 3)

    run_children([worker])
    assert c.get("sl:404_replies") == 3
    assert "sl:404_replies" in c.names()
    assert c.snapshot("sl:") == {"sl:404_replies": 3}
    c.inc("sl:404_replies")                       # the parent uses the same index
    assert c.get("sl:404_replies") == 4


def test_same_name_created_concurrently_gets_one_index(ctx: ShmContext) -> None:
    c = ctx.counters

    def worker(slot: int) -> None:
        c.set_process_slot(slot)
        for i in range(50):
            c.inc(f"race:n{i}")

    run_children([lambda s=s: worker(s) for s in (1, 2, 3, 4)])
    names = c.names()
    assert len(names) == len(set(names)) == 50
    assert all(c.get(f"race:n{i}") == 4 for i in range(50))


def test_child_without_slot_counts_on_the_shared_row(ctx: ShmContext) -> None:
    c = ctx.counters
    n = 2000

    def unslotted() -> None:
        assert c.slot is None                     # fork moved it off the parent's row
        for _ in range(n):
            c.inc("core:unslotted")

    run_children([unslotted, unslotted, unslotted])
    for _ in range(n):
        c.inc("core:unslotted")
    assert c.get("core:unslotted") == 4 * n


def test_reset_and_no_reset(ctx: ShmContext) -> None:
    c = ctx.counters
    c.index("dialog:active_dialogs", no_reset=True)
    c.inc("dialog:active_dialogs", 7)

    def worker() -> None:
        c.set_process_slot(1)
        c.inc("core:drops", 10)
        c.inc("dialog:active_dialogs", -2)

    run_children([worker])
    assert c.reset("core:drops") == 10
    assert c.get("core:drops") == 0
    c.inc("core:drops", 2)
    assert c.get("core:drops") == 2
    assert c.reset("dialog:active_dialogs") == 5
    assert c.get("dialog:active_dialogs") == 5    # gauges ignore reset
    assert c.reset("no:such") == 0


def test_bad_names_and_full_directory(ctx: ShmContext) -> None:
    c = ctx.counters
    with pytest.raises(ShmError):
        c.index("x" * 64)
    with pytest.raises(ShmError):
        c.index("")
    with pytest.raises(ShmError):
        c.set_process_slot(c.nslots)
    for i in range(c.max - len(c.names())):
        c.index(f"fill:{i}")
    with pytest.raises(ShmError):
        c.index("fill:one-too-many")


# ---- sipcore.stats on top of the counters ------------------------------------------------


def test_stats_local_mode_then_attach_carries_values(ctx: ShmContext) -> None:
    stats.detach()
    stats.inc("core:rcv_requests", 2)
    stats.register("sl:200_replies")
    assert stats.get("core:rcv_requests") == 2
    assert stats.snapshot("sl:") == {"sl:200_replies": 0}
    stats.attach(ctx)
    assert stats.attached()
    assert stats.get("core:rcv_requests") == 2
    assert ctx.counters.get("core:rcv_requests") == 2
    assert "sl:200_replies" in ctx.counters.names()
    stats.inc("core:rcv_requests")
    assert stats.get("core:rcv_requests") == 3


def test_stats_across_processes_and_rpc_selectors(ctx: ShmContext) -> None:
    stats.attach(ctx)
    stats.register("core:rcv_requests")
    stats.register("core:fwd_requests")

    def worker(slot: int) -> None:
        ctx.set_process_slot(slot)
        for _ in range(100):
            stats.inc("core:rcv_requests")
        stats.inc("sl:404_replies")               # first used in a worker
        stats.inc("core:fwd_requests", slot)

    run_children([lambda s=s: worker(s) for s in (1, 2)])
    assert stats.get("core:rcv_requests") == 200
    assert stats.get("sl:404_replies") == 2
    assert {"core", "sl", "shmem"} <= set(stats.groups())
    assert stats.get_statistics("sl:") == ["sl:404_replies = 2"]
    assert stats.get_statistics("core:fwd_requests") == ["core:fwd_requests = 3"]
    assert stats.get_statistics("404_replies") == ["sl:404_replies = 2"]
    assert stats.get_statistics("nope:x") == []
    every = stats.get_statistics("all")
    assert "core:rcv_requests = 200" in every and any(s.startswith("shmem:free_size = ")
                                                      for s in every)
    assert stats.get("shmem:total_size") == ctx.stats()["total"]
    assert stats.clear_statistics("core:") == ["core:fwd_requests = 3",
                                               "core:rcv_requests = 200"]
    assert stats.get("core:rcv_requests") == 0
    stats.reset_statistics("sl:404_replies")
    assert stats.get("sl:404_replies") == 0
    assert stats.reset_statistics() is None and stats.get("core:rcv_requests") == 0


def test_stats_inc_is_visible_from_a_reading_child(ctx: ShmContext) -> None:
    stats.attach(ctx)
    stats.inc("core:restarts", 4)                 # the master counts respawns
    r, w = os.pipe()

    def ctl() -> None:                            # the ctl process answers the RPC
        ctx.set_process_slot(3)
        os.write(w, stats.get_statistics("core:restarts")[0].encode())

    pid = fork(ctl)
    assert os.read(r, 100) == b"core:restarts = 4"
    assert wait(pid) == 0
    os.close(r)
    os.close(w)


def test_stats_local_mode_semantics() -> None:
    stats.detach()
    stats.register("g:gauge", no_reset=True)
    stats.inc("g:gauge", 3)
    stats.inc("g:cnt", 5)
    assert stats.reset("g:gauge") == 3 and stats.get("g:gauge") == 3
    assert stats.reset("g:cnt") == 5 and stats.get("g:cnt") == 0
    assert stats.groups() == ["g"]
    assert stats.select(["g:"]) == ["g:cnt", "g:gauge"]
    stats.detach()
    assert stats.snapshot() == {}


def test_stats_set_process_slot_as_the_master_calls_it(ctx: ShmContext) -> None:
    stats.set_process_slot(1)                     # before attach: a no-op
    stats.attach(ctx)

    def child(slot: int) -> None:
        stats.set_process_slot(slot)              # slot 99 is out of range: shared row
        assert ctx.counters.slot == (slot if slot < ctx.counters.nslots else None)
        for _ in range(500):
            stats.inc("core:rcv_requests")

    run_children([lambda: child(1), lambda: child(99)])
    assert stats.get("core:rcv_requests") == 1000
