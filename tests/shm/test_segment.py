"""Segment lifecycle: naming, create/open/unlink/close, nothing left in /dev/shm."""
from __future__ import annotations

import os
import signal

import pytest

from sipcore.shm import Segment, ShmContext, ShmError
from sipcore.shm.segment import segment_name
from tests.shm.forkutil import fork, shm_files, wait


def test_name_and_cleanup(instance: str) -> None:
    ctx = ShmContext.create(2, instance)
    try:
        assert ctx.segment.name == f"/pykam.{instance}.main"
        assert shm_files(f"pykam.{instance}.") == [f"pykam.{instance}.main"]
        assert ctx.stats()["total"] == 2 * 1024 * 1024
    finally:
        ctx.destroy()
    assert shm_files(f"pykam.{instance}.") == []
    ctx.destroy()                                   # idempotent


def test_create_twice_is_an_error(instance: str) -> None:
    seg = Segment.create("dup", 8192, instance)
    try:
        with pytest.raises(ShmError, match="already exists"):
            Segment.create("dup", 8192, instance)
    finally:
        seg.unlink()
        seg.close()
    assert shm_files(f"pykam.{instance}.") == []


def test_bad_names_and_missing_segment(instance: str) -> None:
    with pytest.raises(ShmError):
        segment_name("a/b", instance)
    with pytest.raises(ShmError):
        segment_name("main", "in stance")
    with pytest.raises(ShmError):
        Segment.open("missing", instance)
    assert segment_name("main", "x1") == "/pykam.x1.main"


def test_children_keep_working_after_master_unlinks(instance: str) -> None:
    """Unlink removes the name; a process still mapping the segment keeps using it."""
    ctx = ShmContext.create(2, instance)
    r, w = os.pipe()
    table_off = ctx.arena.alloc(8)

    def child() -> None:
        assert os.read(r, 1) == b"U"              # the master unlinked
        ctx.arena.write(table_off, b"still ok")

    pid = fork(child)
    try:
        ctx.unlink()
        assert shm_files(f"pykam.{instance}.") == []
        os.write(w, b"U")
        assert wait(pid) == 0
        assert ctx.arena.read(table_off, 8) == b"still ok"
    finally:
        ctx.destroy()
        os.close(r)
        os.close(w)


def test_killed_children_leave_nothing_once_master_destroys(instance: str) -> None:
    ctx = ShmContext.create(2, instance)
    pids = [fork(lambda: signal.pause()) for _ in range(3)]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert [wait(pid) for pid in pids] == [-signal.SIGKILL] * 3
    ctx.destroy()
    assert shm_files(f"pykam.{instance}.") == []


def test_failed_create_removes_the_segment(instance: str) -> None:
    with pytest.raises(ShmError):
        ShmContext.create(2, instance, max_counters=0)
    assert shm_files(f"pykam.{instance}.") == []
