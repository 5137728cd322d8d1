"""Named statistics counters (`group:name`), Kamailio style.

Runs in: every process. This process-local store is the interface; the runtime moves the
values into shared memory (per-process slots summed on read) without changing callers.
"""
from __future__ import annotations

from collections import defaultdict

_counters: dict[str, int] = defaultdict(int)


def inc(name: str, n: int = 1) -> None:
    _counters[name] += n


def get(name: str) -> int:
    return _counters.get(name, 0)


def reset(name: str) -> None:
    _counters[name] = 0


def snapshot(prefix: str = "") -> dict[str, int]:
    return {k: v for k, v in _counters.items() if k.startswith(prefix)}
