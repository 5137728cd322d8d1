"""pipelimit: named rate-limit pipes (per IP, trunk, user...) created from the DB or the
script.

Runs in: the master (mod_init: shm tables, pipes loaded from the DB with the engine disposed
before fork, the interval timer), SIP workers (pl_check/pl_active/pl_drop), the timer process
(every timer_interval: load inputs, FEEDBACK PID step, counters rotated, unused pipes
cleaned), the ctl process (pl.* RPCs).
Shared state: ShmHashTable "pipelimit:pipes" (key = pipe name, value = sipcore.limits.Pipe)
and "pipelimit:state" (b"load" -> sipcore.limits.LoadState). Counting is a read-modify-write
under the pipe's bucket lock, so workers share each pipe's budget.

A pipe's limit is per timer_interval for TAILDROP and RED (unlike ratelimit, which counts per
second), a CPU percentage for FEEDBACK, queued bytes for NETWORK; see sipcore/limits.py.
Kamailio equivalent: modules/pipelimit.
"""
from __future__ import annotations

import logging
import random
from dataclasses import replace
from typing import Any

from sqlalchemy import column, select, table

from sipcore import db, limits
from sipcore.errors import ModuleError, RpcFault
from sipcore.limits import LoadState, Pipe
from sipcore.mod import ANY_ROUTE, FAILURE_ROUTE, REQUEST_ROUTE, Fx, ModContext, Module
from sipcore.route.ctx import RouteCtx
from sipcore.shm import ShmHashTable

log = logging.getLogger(__name__)

mod = Module("pipelimit", summary="Named rate-limit pipes with TAILDROP, RED, NETWORK and "
             "FEEDBACK algorithms.")

mod.param("hash_size", int, 6, doc="The pipe table has 2^hash_size slots.")
mod.param("db_url", str, None, doc="Database with the pipe definitions (unset: none).")
mod.param("plp_table_name", str, "pl_pipes", doc="Table of the pipe definitions.")
mod.param("plp_pipeid_column", str, "pipeid", doc="Column with the pipe name.")
mod.param("plp_limit_column", str, "plimit", doc="Column with the limit.")
mod.param("plp_algorithm_column", str, "algorithm", doc="Column with the algorithm.")
mod.param("timer_interval", int, 10, doc="Seconds per counting interval.")
mod.param("timer_mode", int, 0, doc="0 main timer, 1 secondary (both run in the timer "
          "process).")
mod.param("load_fetch", int, 1, doc="1: read CPU and network load each interval.")
mod.param("reply_code", int, 503, doc="Reply code of pl_drop().")
mod.param("reply_reason", str, "Server Unavailable", doc="Reply reason of pl_drop().")
mod.param("clean_unused", int, 0, doc="Remove pipes unused for this many intervals (0: "
          "never).")

_state: dict[str, Any] = {"pipes": None, "misc": None, "sl": None}
_LOAD = b"load"


def _pipes() -> ShmHashTable:
    t = _state["pipes"]
    if t is None:
        raise ModuleError("pipelimit: not initialised")
    return t


def _misc() -> ShmHashTable:
    t = _state["misc"]
    if t is None:
        raise ModuleError("pipelimit: not initialised")
    return t


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: shm tables, DB pipes, the interval timer, the sl binding."""
    if int(mod.p.timer_interval) <= 0:
        raise ModuleError("pipelimit: timer_interval must be positive")
    shm = ctx.require_shm()
    size = 1 << max(1, min(int(mod.p.hash_size), 16))
    _state["pipes"] = shm.named("pipelimit:pipes", lambda a: ShmHashTable.create(a, size),
                                ShmHashTable.attach)
    _state["misc"] = shm.named("pipelimit:state", lambda a: ShmHashTable.create(a, 4),
                               ShmHashTable.attach)
    _pipes().clear()
    _misc().set(_LOAD, LoadState().pack())
    _state["sl"] = ctx.api_or_none("sl")
    if mod.p.db_url:
        try:
            n = load_db(str(mod.p.db_url))
        except db.DbError as exc:
            raise ModuleError(f"pipelimit: cannot load the pipes: {exc}") from None
        log.info("pipelimit: %s pipes loaded from %s", n, mod.p.plp_table_name)
    ctx.timers.register_timer("pipelimit:interval", interval_timer,
                         int(mod.p.timer_interval) * 1000)


def load_db(url: str) -> int:
    """Add the pipes of plp_table_name; a row with an unknown algorithm is an error."""
    p = mod.p
    t = table(p.plp_table_name, column(p.plp_pipeid_column), column(p.plp_algorithm_column),
              column(p.plp_limit_column))

    def run() -> list[Any]:
        with db.get_engine(url).connect() as conn:
            return list(conn.execute(select(t)).all())

    try:
        rows = db.guarded(f"pipelimit: load of {p.plp_table_name}", run)
    finally:
        db.dispose_engine(url)
    for name, algo, limit in rows:
        try:
            pipe = Pipe(limits.algo_id(str(algo)), int(limit or 0))
        except ValueError as exc:
            raise db.DbError(f"pipe {name}: {exc}") from None
        _pipes().set(str(name).encode(), pipe.pack())
    return len(rows)


def _load() -> LoadState:
    raw = _misc().get(_LOAD)
    return LoadState.unpack(raw) if raw else LoadState()


def check(name: str, create: tuple[int, int] | None = None) -> int:
    """-2 no such pipe, -1 limit reached, 1 under the limit, 2 NOP algorithm."""
    t = _pipes()
    key = name.encode()
    load = _load()
    with t.locked(key) as b:
        raw = b.get(key)
        if raw is None:
            if create is None:
                return -2
            old = Pipe(*create)
        else:
            old = Pipe.unpack(raw)
        p, rc = limits.push(old, load, old.limit)
        b.set(key, p.pack())
    if p.algo == limits.NOP:
        return 2
    return rc


@mod.function("pl_check", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_pl_check(ctx: RouteCtx, name: str) -> int:
    """Count the request on pipe NAME: 1 under the limit, -1 limit reached, -2 no such pipe,
    2 NOP algorithm."""
    return check(name)


@mod.function("pl_check", args=(Fx.SPVE, Fx.SPVE, Fx.IGP), routes=ANY_ROUTE)
def ki_pl_check_limit(ctx: RouteCtx, name: str, algorithm: str, limit: int) -> int:
    """Same, creating the pipe with ALGORITHM and LIMIT when it does not exist."""
    try:
        algo = limits.algo_id(algorithm)
    except ValueError as exc:
        log.error("pl_check: %s", exc)
        return -2
    return check(name, (algo, max(0, limit)))


@mod.function("pl_active", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_pl_active(ctx: RouteCtx, name: str) -> int:
    """1 if pipe NAME exists, else -1."""
    return 1 if _pipes().get(name.encode()) is not None else -1


def _drop(ctx: RouteCtx, low: int, high: int) -> int:
    sl = _state["sl"]
    if sl is None:
        log.error('pl_drop: needs loadmodule "sl"')
        return -1
    if high < low:
        low, high = high, low
    if high > 0:
        ctx.reply_lumps.append(f"Retry-After: {random.randint(max(low, 0), high)}")
    return sl.freply(ctx, int(mod.p.reply_code), str(mod.p.reply_reason))


@mod.function("pl_drop", args=(), routes=REQUEST_ROUTE | FAILURE_ROUTE)
def ki_pl_drop(ctx: RouteCtx) -> int:
    """Reply reply_code/reply_reason with Retry-After: 5."""
    return _drop(ctx, 5, 5)


@mod.function("pl_drop", args=(Fx.IGP,), routes=REQUEST_ROUTE | FAILURE_ROUTE)
def ki_pl_drop_retry(ctx: RouteCtx, retry: int) -> int:
    """Same with Retry-After: RETRY."""
    return _drop(ctx, retry, retry)


@mod.function("pl_drop", args=(Fx.IGP, Fx.IGP), routes=REQUEST_ROUTE | FAILURE_ROUTE)
def ki_pl_drop_range(ctx: RouteCtx, low: int, high: int) -> int:
    """Same with a random Retry-After between LOW and HIGH."""
    return _drop(ctx, low, high)


def interval_timer() -> None:
    """Timer process: load inputs + PID step, then close every pipe's interval; pipes unused
    for clean_unused intervals are removed."""
    t, m = _state["pipes"], _state["misc"]
    if t is None or m is None:
        return
    cells = list(t.items())
    pipes = [Pipe.unpack(c.value) for c in cells]
    fb = [p.limit for p in pipes if p.algo == limits.FEEDBACK]
    fetch = int(mod.p.load_fetch) == 1
    cpu = limits.read_cpu() if fetch else None
    net = limits.read_net_queued() if fetch else None
    with m.locked(_LOAD) as b:
        raw = b.get(_LOAD)
        st = LoadState.unpack(raw) if raw else LoadState()
        b.set(_LOAD, limits.update_load(st, cpu, net, max(fb) if fb else None).pack())
    clean = int(mod.p.clean_unused)
    for c in cells:
        with t.locked(c.key) as b:
            raw = b.get(c.key)
            if raw is None:
                continue
            old = Pipe.unpack(raw)
            p = limits.tick(old, old.limit)
            if clean > 0 and p.unused >= clean:
                b.delete(c.key)
            else:
                b.set(c.key, p.pack())


# ---- RPC -------------------------------------------------------------------------------------

def _all() -> list[tuple[str, Pipe]]:
    return sorted((c.key.decode(), Pipe.unpack(c.value)) for c in _pipes().items())


def rpc_list(name: str | None = None) -> list[dict[str, Any]]:
    """pl.list [name]: name, algorithm, limit, counter of the pipes (or one pipe)."""
    out = [{"name": n, "algorithm": p.algo_name, "limit": p.limit, "counter": p.counter}
           for n, p in _all() if name is None or n == str(name)]
    if name is not None and not out:
        raise RpcFault(404, "Unknown pipe id")
    return out


def rpc_stats() -> list[dict[str, Any]]:
    """pl.stats: per pipe the RED load and the counter of the last interval."""
    return [{"name": n, "load": p.load, "counter": p.last_counter} for n, p in _all()]


def rpc_get_pipes() -> list[dict[str, Any]]:
    """pl.get_pipes: every pipe."""
    return rpc_list()


def rpc_set_pipe(name: Any, algorithm: Any, limit: Any) -> dict[str, Any]:
    """pl.set_pipe name algorithm limit: change (or create) a pipe."""
    try:
        algo, lim = limits.algo_id(str(algorithm)), int(limit)
    except (TypeError, ValueError) as exc:
        raise RpcFault(400, str(exc)) from None
    key = str(name).encode()
    with _pipes().locked(key) as b:
        raw = b.get(key)
        old = Pipe.unpack(raw) if raw else Pipe(algo, lim)
        b.set(key, replace(old, algo=algo, limit=max(0, lim), load=0).pack())
    return {}


def _float(v: Any, what: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise RpcFault(400, f"{what} must be a number") from None


def _update_load(fn: Any) -> None:
    with _misc().locked(_LOAD) as b:
        raw = b.get(_LOAD)
        b.set(_LOAD, fn(LoadState.unpack(raw) if raw else LoadState()).pack())


def rpc_set_pid(ki: Any, kp: Any, kd: Any) -> dict[str, Any]:
    """pl.set_pid ki kp kd: the FEEDBACK controller's gains."""
    vals = (_float(ki, "ki"), _float(kp, "kp"), _float(kd, "kd"))
    _update_load(lambda st: replace(st, ki=vals[0], kp=vals[1], kd=vals[2]))
    return {}


def rpc_get_pid() -> dict[str, Any]:
    """pl.get_pid: the FEEDBACK controller's gains."""
    st = _load()
    return {"ki": st.ki, "kp": st.kp, "kd": st.kd}


def rpc_push_load(load: Any) -> dict[str, Any]:
    """pl.push_load load: force the CPU load (0..1) and run one PID step."""
    value = _float(load, "load")
    if not 0.0 <= value <= 1.0:
        raise RpcFault(400, "load must be between 0 and 1")
    fb = [p.limit for _, p in _all() if p.algo == limits.FEEDBACK]
    _update_load(lambda st: limits.update_load(replace(st, cpu=value), None, None,
                                               max(fb) if fb else None))
    return {}


mod.rpc("pl.list", rpc_list, doc="List the pipes (or one).", params="[name]")
mod.rpc("pl.stats", rpc_stats, doc="Load and last counter of every pipe.")
mod.rpc("pl.get_pipes", rpc_get_pipes, doc="List the pipes.")
mod.rpc("pl.set_pipe", rpc_set_pipe, doc="Set a pipe.", params="name algorithm limit")
mod.rpc("pl.set_pid", rpc_set_pid, doc="Set the FEEDBACK PID gains.", params="ki kp kd")
mod.rpc("pl.get_pid", rpc_get_pid, doc="The FEEDBACK PID gains.")
mod.rpc("pl.push_load", rpc_push_load, doc="Force the CPU load (0..1).", params="load")

__all__ = ["check", "interval_timer", "mod"]
