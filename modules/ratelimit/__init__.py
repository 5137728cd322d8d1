"""ratelimit: per-method rate limiting through numbered pipes and queues.

Runs in: the master (modparam parsing; mod_init writes the pipes, queues and PID defaults into
shm and registers the interval timer), SIP workers (rl_check*: count + decide), the timer
process (every timer_interval: CPU/network load, FEEDBACK PID step, pipe counters rotated),
the ctl process (rl.* RPCs, which change pipes and queues for every process).
Shared state: the ShmHashTable "ratelimit:state": b"pipe:N" -> sipcore.limits.Pipe record,
b"queues" -> UTF-8 "pipe:method" lines, b"load" -> sipcore.limits.LoadState, b"dbg" -> int.
Counting is a read-modify-write under the pipe's bucket lock, so workers share the budget.

A pipe's limit is per second (TAILDROP/RED allow limit * timer_interval requests per
interval), a percentage of CPU load for FEEDBACK, and queued bytes for NETWORK (see
sipcore/limits.py for the algorithms). Kamailio equivalent: modules/ratelimit.
"""
from __future__ import annotations

import logging
from typing import Any

from sipcore import limits
from sipcore.errors import ModuleError, RpcFault
from sipcore.limits import LoadState, Pipe
from sipcore.mod import ANY_ROUTE, Fx, ModContext, Module
from sipcore.pv.spec import to_int
from sipcore.route.ctx import RouteCtx
from sipcore.shm import ShmHashTable

log = logging.getLogger(__name__)

mod = Module("ratelimit", summary="Per-method rate limiting: pipes (TAILDROP, RED, NETWORK, "
             "FEEDBACK) and method queues.")

MAX_PIPES = 32
MAX_QUEUES = 32


def parse_pipe(text: str) -> tuple[int, int, int]:
    """"pipe_no:algorithm:limit" -> (id, algo id, limit)."""
    parts = [p.strip() for p in text.split(":")]
    if len(parts) != 3:
        raise ValueError(f"invalid pipe \"{text}\" (expected pipe_no:algorithm:limit)")
    try:
        pid, limit = int(parts[0]), int(parts[2])
    except ValueError:
        raise ValueError(f"invalid pipe \"{text}\": id and limit must be integers") from None
    if not 0 <= pid < MAX_PIPES or limit < 0:
        raise ValueError(f"invalid pipe \"{text}\": id 0..{MAX_PIPES - 1}, limit >= 0")
    return pid, limits.algo_id(parts[1]), limit


def parse_queue(text: str) -> tuple[int, str]:
    """"pipe_no:method" -> (pipe id, method or "*")."""
    pno, sep, method = text.partition(":")
    try:
        pid = int(pno.strip())
    except ValueError:
        raise ValueError(f"invalid queue \"{text}\" (expected pipe_no:method)") from None
    method = method.strip()
    if not sep or not method:
        raise ValueError(f"invalid queue \"{text}\" (expected pipe_no:method)")
    return pid, method.upper() if method != "*" else "*"


mod.param("timer_interval", int, 10, doc="Seconds per counting interval.")
mod.param("pipe", str, (), multi=True, validator=parse_pipe,
          doc="\"pipe_no:algorithm:limit\" (repeatable, at most 32).")
mod.param("queue", str, (), multi=True, validator=parse_queue,
          doc="\"pipe_no:method\" (method * = any; repeatable, first match wins).")

_state: dict[str, Any] = {"table": None}
_PIPE_KEY = b"pipe:%d"
_QUEUES = b"queues"
_LOAD = b"load"
_DBG = b"dbg"


def _table() -> ShmHashTable:
    t = _state["table"]
    if t is None:
        raise ModuleError("ratelimit: not initialised")
    return t


def _interval() -> int:
    return max(1, int(mod.p.timer_interval))


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: pipes, queues and the PID state in shm; the interval timer."""
    if int(mod.p.timer_interval) <= 0:
        raise ModuleError("ratelimit: timer_interval must be positive")
    t = ctx.require_shm().named("ratelimit:state", lambda a: ShmHashTable.create(a, 64),
                                ShmHashTable.attach)
    _state["table"] = t
    t.clear()
    for pid, algo, limit in mod.p.pipe:
        t.set(_PIPE_KEY % pid, Pipe(algo, limit).pack())
    queues = list(mod.p.queue)
    if len(queues) > MAX_QUEUES:
        raise ModuleError(f"ratelimit: at most {MAX_QUEUES} queues")
    for pid, _ in queues:
        if t.get(_PIPE_KEY % pid) is None:
            raise ModuleError(f"ratelimit: queue uses undefined pipe {pid}")
    _write_queues(queues)
    t.set(_LOAD, LoadState().pack())
    ctx.timers.register_timer("ratelimit:interval", interval_timer, _interval() * 1000)


def _write_queues(queues: list[tuple[int, str]]) -> None:
    _table().set(_QUEUES, "\n".join(f"{p}:{m}" for p, m in queues).encode())


def _queues() -> list[tuple[int, str]]:
    raw = _table().get(_QUEUES) or b""
    out = []
    for line in raw.decode().splitlines():
        p, _, m = line.partition(":")
        out.append((int(p), m))
    return out


def _load() -> LoadState:
    raw = _table().get(_LOAD)
    return LoadState.unpack(raw) if raw else LoadState()


def _pipes() -> dict[int, Pipe]:
    t = _table()
    out = {}
    for pid in range(MAX_PIPES):
        raw = t.get(_PIPE_KEY % pid)
        if raw is not None:
            out[pid] = Pipe.unpack(raw)
    return out


def check_pipe(pid: int) -> int:
    """Count one request on pipe PID: 1 pass, -1 over the limit (or no such pipe: -1 too,
    logged, as Kamailio's rl_check_pipe)."""
    t = _table()
    key = _PIPE_KEY % pid
    load = _load()
    with t.locked(key) as b:
        raw = b.get(key)
        if raw is None:
            log.error("ratelimit: pipe %s does not exist", pid)
            return -1
        old = Pipe.unpack(raw)
        p, rc = limits.push(old, load, old.limit * _interval())
        b.set(key, p.pack())
    if rc < 0 and int.from_bytes(t.get(_DBG) or b"\0", "little"):
        log.info("ratelimit: pipe %s (%s) drops, counter %s", pid, p.algo_name, p.counter)
    return rc


def _pipe_for(method: str) -> int | None:
    m = method.upper()
    for pid, qm in _queues():
        if qm == "*" or qm == m:
            return pid
    return None


@mod.function("rl_check", args=())
def ki_rl_check(ctx: RouteCtx) -> int:
    """Count the request on the pipe of the first queue matching its method: 1 under the
    limit (or no queue matches), -1 over it (reply 503)."""
    pid = _pipe_for(ctx.msg.method or "")
    return 1 if pid is None else check_pipe(pid)


@mod.function("rl_check", args=(Fx.PVAR,))
def ki_rl_check_pvar(ctx: RouteCtx, pv: Any) -> int:
    """Same, on the pipe whose number the pseudo-variable holds."""
    return check_pipe(to_int(pv.get(ctx)))


@mod.function("rl_check_pipe", args=(Fx.IGP,), routes=ANY_ROUTE)
def ki_rl_check_pipe(ctx: RouteCtx, pipe_no: int) -> int:
    """Count one request on pipe PIPE_NO regardless of the method: 1 pass, -1 over."""
    return check_pipe(pipe_no)


def interval_timer() -> None:
    """Timer process, every timer_interval: load inputs and PID step (reads /proc without a
    lock), then each pipe's interval is closed under its bucket lock."""
    t = _state["table"]
    if t is None:
        return
    pipes = _pipes()
    fb = [p.limit for p in pipes.values() if p.algo == limits.FEEDBACK]
    cpu, net = limits.read_cpu(), limits.read_net_queued()
    with t.locked(_LOAD) as b:
        raw = b.get(_LOAD)
        st = LoadState.unpack(raw) if raw else LoadState()
        b.set(_LOAD, limits.update_load(st, cpu, net, max(fb) if fb else None).pack())
    for pid in pipes:
        key = _PIPE_KEY % pid
        with t.locked(key) as b:
            raw = b.get(key)
            if raw is not None:
                p = Pipe.unpack(raw)
                b.set(key, limits.tick(p, p.limit * _interval()).pack())


# ---- RPC -----------------------------------------------------------------------------------

def _rpc_int(v: Any, what: str) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        raise RpcFault(400, f"{what} must be an integer") from None


def _rpc_float(v: Any, what: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise RpcFault(400, f"{what} must be a number") from None


def rpc_stats() -> dict[str, Any]:
    """rl.stats: per pipe the load and the counter of the last interval; the drop rate."""
    return {"PIPES": [{"id": pid, "load": p.load, "counter": p.last_counter}
                      for pid, p in sorted(_pipes().items())],
            "DROP": {"drop_rate": _load().drop_rate}}


def rpc_get_pipes() -> list[dict[str, Any]]:
    """rl.get_pipes: id, algorithm, limit, counter of every pipe."""
    return [{"id": pid, "algorithm": p.algo_name, "limit": p.limit, "counter": p.counter}
            for pid, p in sorted(_pipes().items())]


def rpc_set_pipe(pipe_no: Any, algorithm: Any, limit: Any) -> dict[str, Any]:
    """rl.set_pipe id algorithm limit: change (or create) a pipe."""
    try:
        pid, algo, lim = parse_pipe(f"{pipe_no}:{algorithm}:{limit}")
    except ValueError as exc:
        raise RpcFault(400, str(exc)) from None
    t = _table()
    key = _PIPE_KEY % pid
    with t.locked(key) as b:
        raw = b.get(key)
        old = Pipe.unpack(raw) if raw else Pipe(algo, lim)
        b.set(key, Pipe(algo, lim, old.counter, old.last_counter, 0).pack())
    return {}


def rpc_get_queues() -> list[dict[str, Any]]:
    """rl.get_queues: id, method, pipe of every queue."""
    return [{"id": i, "method": m, "pipe": p} for i, (p, m) in enumerate(_queues())]


def rpc_set_queue(queue_no: Any, method: Any, pipe_no: Any) -> dict[str, Any]:
    """rl.set_queue id method pipe: change (or append) queue ID."""
    qid, pid = _rpc_int(queue_no, "queue"), _rpc_int(pipe_no, "pipe")
    if _table().get(_PIPE_KEY % pid) is None:
        raise RpcFault(400, f"no pipe {pid}")
    queues = _queues()
    entry = (pid, str(method).upper() if str(method) != "*" else "*")
    if 0 <= qid < len(queues):
        queues[qid] = entry
    elif qid == len(queues) and qid < MAX_QUEUES:
        queues.append(entry)
    else:
        raise RpcFault(400, f"queue id out of range 0..{min(len(queues), MAX_QUEUES - 1)}")
    _write_queues(queues)
    return {}


def _update_load(fn: Any) -> LoadState:
    t = _table()
    with t.locked(_LOAD) as b:
        raw = b.get(_LOAD)
        st = fn(LoadState.unpack(raw) if raw else LoadState())
        b.set(_LOAD, st.pack())
    return st


def rpc_set_pid(ki: Any, kp: Any, kd: Any) -> dict[str, Any]:
    """rl.set_pid ki kp kd: the FEEDBACK controller's gains."""
    from dataclasses import replace

    vals = (_rpc_float(ki, "ki"), _rpc_float(kp, "kp"), _rpc_float(kd, "kd"))
    _update_load(lambda st: replace(st, ki=vals[0], kp=vals[1], kd=vals[2]))
    return {}


def rpc_get_pid() -> dict[str, Any]:
    """rl.get_pid: the FEEDBACK controller's gains."""
    st = _load()
    return {"ki": st.ki, "kp": st.kp, "kd": st.kd}


def rpc_push_load(load: Any) -> dict[str, Any]:
    """rl.push_load load: force the CPU load (0..1) and run one PID step (testing FEEDBACK)."""
    from dataclasses import replace

    value = _rpc_float(load, "load")
    if not 0.0 <= value <= 1.0:
        raise RpcFault(400, "load must be between 0 and 1")
    fb = [p.limit for p in _pipes().values() if p.algo == limits.FEEDBACK]
    _update_load(lambda st: limits.update_load(replace(st, cpu=value), None, None,
                                               max(fb) if fb else None))
    return {}


def rpc_set_dbg(value: Any) -> dict[str, Any]:
    """rl.set_dbg 0|1: log every drop."""
    v = _rpc_int(value, "value")
    if v not in (0, 1):
        raise RpcFault(400, "value must be 0 or 1")
    _table().set(_DBG, bytes([v]))
    return {}


mod.rpc("rl.stats", rpc_stats, doc="Load and counter of every pipe, and the drop rate.")
mod.rpc("rl.get_pipes", rpc_get_pipes, doc="List the pipes.")
mod.rpc("rl.set_pipe", rpc_set_pipe, doc="Set a pipe.", params="id algorithm limit")
mod.rpc("rl.get_queues", rpc_get_queues, doc="List the queues.")
mod.rpc("rl.set_queue", rpc_set_queue, doc="Set a queue.", params="id method pipe")
mod.rpc("rl.set_pid", rpc_set_pid, doc="Set the FEEDBACK PID gains.", params="ki kp kd")
mod.rpc("rl.get_pid", rpc_get_pid, doc="The FEEDBACK PID gains.")
mod.rpc("rl.push_load", rpc_push_load, doc="Force the CPU load (0..1).", params="load")
mod.rpc("rl.set_dbg", rpc_set_dbg, doc="Log drops (1) or not (0).", params="0|1")

__all__ = ["check_pipe", "interval_timer", "mod"]
