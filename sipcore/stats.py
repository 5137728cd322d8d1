"""Named statistics counters (`group:name`), Kamailio style, and what the stats.* RPCs need.

Runs in: every process. Workers, timer and master count (inc: the per-message hot path);
the ctl process reads, lists and resets for stats.get_statistics / reset_statistics /
clear_statistics. Shared state: after `attach(ctx)` (master, pre-fork) the counters block of
the shm context (sipcore.shm.counters: one row per process, summed on read); before it, a
process-local store with the same behaviour, so unit tests and the in-process harness work
without shm.

Counters are created on first use (`inc`) or declared up front with `register` so RPCs list
them at 0 before anything happened (Kamailio register_module_stats). `register_func` adds a
computed statistic (e.g. shmem:used_size) evaluated by the process that reads it; register
those in the master before fork so every process has them.

Names: "group:name" (e.g. "core:rcv_requests", "sl:404_replies"), at most 63 bytes.
Selectors (RPC arguments), as Kamailio: "all" = everything, "group:" = the whole group,
"group:name" = one statistic, "name" = that name in any group.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sipcore.shm.errors import ShmError

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.shm.context import ShmContext
    from sipcore.shm.counters import ShmCounters

log = logging.getLogger(__name__)

# The hot path reads these three module globals; attach()/detach() rebind them.
_index: dict[str, int] = {}          # name -> index (shm mode: the ShmCounters' own cache)
_row: Any = []                       # local: list of ints; shm: this process's counters row
_ctr: ShmCounters | None = None

_names: list[str] = []               # local mode only: index -> name
_no_reset: set[str] = set()          # local mode only
_funcs: dict[str, Callable[[], int]] = {}
_failed: set[str] = set()            # names that could not be created in shm (logged once)


def inc(name: str, n: int = 1) -> None:
    """Add n (may be negative) to the counter, creating it at 0 if needed."""
    i = _index.get(name)
    if i is None:
        i = _create(name)
        if i is None:
            return
    _row[i] += n


def _create(name: str, no_reset: bool = False) -> int | None:
    if _ctr is None:
        _index[name] = len(_names)
        _names.append(name)
        _row.append(0)
        if no_reset:
            _no_reset.add(name)
        return _index[name]
    try:
        return _ctr.index(name, no_reset)
    except ShmError as exc:                  # full directory, bad name: never break routing
        if name not in _failed:
            _failed.add(name)
            log.error("statistic %s not counted: %s", name, exc)
        return None


def register(name: str, *, no_reset: bool = False) -> None:
    """Declare a counter (value 0) so it is listed before first use. no_reset: a gauge that
    reset_statistics leaves alone."""
    if name in _funcs:
        return
    i = _index.get(name)
    if i is None and (_ctr is None or _ctr.find(name) is None):
        _create(name, no_reset)


def register_func(name: str, fn: Callable[[], int]) -> None:
    """A computed statistic: fn() is called by the reading process; never reset."""
    _funcs[name] = fn


def get(name: str) -> int:
    """Current value (the sum over all processes once attached); 0 if unknown."""
    fn = _funcs.get(name)
    if fn is not None:
        return int(fn())
    if _ctr is not None:
        return _ctr.get(name)
    i = _index.get(name)
    return 0 if i is None else _row[i]


def reset(name: str) -> int:
    """Set to 0 (unless no_reset or computed); returns the value before."""
    if name in _funcs:
        return get(name)
    if _ctr is not None:
        return _ctr.reset(name)
    i = _index.get(name)
    if i is None:
        return 0
    old = _row[i]
    if name not in _no_reset:
        _row[i] = 0
    return old


def snapshot(prefix: str = "") -> dict[str, int]:
    """{name: value} of every statistic whose name starts with prefix."""
    if _ctr is not None:
        out = _ctr.snapshot(prefix)
    else:
        out = {n: _row[i] for i, n in enumerate(_names) if n.startswith(prefix)}
    for name, fn in _funcs.items():
        if name.startswith(prefix):
            out[name] = int(fn())
    return out


def names() -> list[str]:
    """Every statistic name, sorted."""
    base = _ctr.names() if _ctr is not None else list(_names)
    return sorted(set(base) | set(_funcs))


def groups() -> list[str]:
    """Group names ("core", "sl", ...), sorted (stats.get_statistics "group:" listing)."""
    return sorted({n.partition(":")[0] for n in names() if ":" in n})


def select(selectors: Iterable[str]) -> list[str]:
    """Names matching RPC selectors: "all", "group:", "group:name", "name" (any group).
    No selector means all. Unknown names select nothing."""
    sel = list(selectors)
    every = names()
    if not sel or "all" in sel:
        return every
    out: list[str] = []
    seen: set[str] = set()
    for s in sel:
        if s.endswith(":"):
            hits = [n for n in every if n.startswith(s)]
        elif ":" in s:
            hits = [s] if s in every else []
        else:
            hits = [n for n in every if n.partition(":")[2] == s]
        for n in hits:
            if n not in seen:
                seen.add(n)
                out.append(n)
    return out


def get_statistics(*selectors: str) -> list[str]:
    """stats.get_statistics: ["group:name = value", ...]."""
    return [f"{n} = {get(n)}" for n in select(selectors)]


def reset_statistics(*selectors: str) -> None:
    """stats.reset_statistics: reset every selected statistic (none if no selector)."""
    if selectors:
        for n in select(selectors):
            reset(n)


def clear_statistics(*selectors: str) -> list[str]:
    """stats.clear_statistics: reset and return the old values as "group:name = value"."""
    if not selectors:
        return []
    return [f"{n} = {reset(n)}" for n in select(selectors)]


# ---- shm backing ---------------------------------------------------------------------------

_SHMEM_STATS = {"total_size": "total", "used_size": "used", "real_used_size": "real_used",
                "max_used_size": "max_used", "free_size": "free", "fragments": "fragments",
                "lock_recoveries": "lock_recoveries"}


def attach(ctx: ShmContext) -> None:
    """Move the statistics into the shm counters of ctx (master, pre-fork). Counters and
    values accumulated so far are carried over; the computed shmem:* group is added."""
    global _index, _row, _ctr
    ctr = ctx.counters
    carried = [(n, _row[i], n in _no_reset) for i, n in enumerate(_names)] if _ctr is None \
        else []
    for name, value, no_reset in carried:
        i = ctr.index(name, no_reset)
        ctr.add(i, value)

    def on_row(row: Any) -> None:
        global _row
        if _ctr is ctr:
            _row = row

    ctr.on_row_change(on_row)
    _ctr, _index, _row = ctr, ctr._index, ctr.row
    _names.clear()
    _no_reset.clear()
    arena = ctx.arena
    for stat, key in _SHMEM_STATS.items():
        register_func(f"shmem:{stat}", _arena_stat(arena, key))


def _arena_stat(arena: Any, key: str) -> Callable[[], int]:
    return lambda: int(arena.stats()[key])


def set_process_slot(slot: int) -> None:
    """After fork, in the child: count on row `slot` (its process-table index). No-op before
    attach. An out-of-range slot is logged and the process keeps counting (atomically) on
    the shared row, so a too-small max_procs costs speed, never counts or a dead child."""
    if _ctr is None:
        return
    try:
        _ctr.set_process_slot(slot)
    except ShmError as exc:
        log.error("statistics: %s", exc)


def detach() -> None:
    """Back to an empty process-local store (tests; the master after destroying shm)."""
    global _index, _row, _ctr
    _ctr, _index, _row = None, {}, []
    _names.clear()
    _no_reset.clear()
    _failed.clear()
    _funcs.clear()      # shmem:* and module-registered function stats (registrar:*) alike


def attached() -> bool:
    return _ctr is not None
