"""Fixtures and fork helpers for the shm tests.

Every test gets its own segment name ("/pykam.t<pid>-<n>.main") and the segment is always
unlinked in teardown; every forked child is waited for by its PID (never a wildcard wait), and
a child always leaves through os._exit so it never runs pytest's teardown.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from sipcore import stats
from sipcore.shm import ShmContext
from tests.shm.forkutil import shm_files

_seq = itertools.count()


@pytest.fixture
def instance() -> str:
    return f"t{os.getpid()}-{next(_seq)}"


@pytest.fixture
def ctx(instance: str) -> Iterator[ShmContext]:
    c = ShmContext.create(8, instance, max_procs=8, max_counters=256)
    try:
        yield c
    finally:
        c.destroy()
        assert not shm_files(f"pykam.{instance}."), "segment left in /dev/shm"


@pytest.fixture(autouse=True)
def _stats_local() -> Iterator[None]:
    """Tests that attach the stats module get a clean, detached module afterwards."""
    yield
    if stats.attached():
        stats.detach()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    left = shm_files(f"pykam.t{os.getpid()}-")
    if left:  # pragma: no cover - reported, and cleaned so the next run starts clean
        for f in left:
            os.unlink(os.path.join("/dev/shm", f))
        print(f"\nshm tests left segments behind (removed): {left}")
