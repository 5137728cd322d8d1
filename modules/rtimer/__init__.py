"""rtimer: run route blocks periodically from the timer process.

Runs in: the master (modparam parsing; mod_init registers one periodic job per timer) and the
timer process (the jobs: each runs its routes, in exec order, on a static faked request).
Shared state: none (the routes themselves may touch shm through other modules).

    modparam("rtimer", "timer", "name=t1;interval=10;mode=1;")
    modparam("rtimer", "exec", "timer=t1;route=TIMER_ROUTE")

Difference from Kamailio: PyKam has no module-process API yet, so `mode=N` (N dedicated
processes) runs the timer in the core timer process as well; a slow route delays the other
timer jobs. Intervals ending in `u` are microseconds (rounded up to whole milliseconds).
Kamailio equivalent: modules/rtimer.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sipcore.errors import ModuleError
from sipcore.mod import ModContext, Module
from sipcore.route.event import faked_ctx

log = logging.getLogger(__name__)

mod = Module("rtimer", summary="Run route blocks periodically in the timer process.")


def _attrs(text: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        k, eq, v = part.partition("=")
        if not eq or not k.strip():
            raise ValueError(f"rtimer {what} \"{text}\": bad attribute \"{part}\"")
        out[k.strip()] = v.strip()
    return out


@dataclass
class TimerDef:
    name: str
    interval_ms: int | None          # None: default_interval
    mode: int = 0
    routes: list[str] = field(default_factory=list)


def parse_timer(text: str) -> TimerDef:
    """`name=t1;interval=10;mode=1` (interval seconds, or `100000u` microseconds)."""
    a = _attrs(text, "timer")
    unknown = set(a) - {"name", "interval", "mode"}
    if unknown:
        raise ValueError(f"rtimer timer \"{text}\": unknown attribute {min(unknown)}")
    name = a.get("name", "")
    if not name:
        raise ValueError(f"rtimer timer \"{text}\": name is missing")
    interval: int | None = None
    if "interval" in a:
        iv = a["interval"]
        try:
            interval = -(-int(iv[:-1]) // 1000) if iv.endswith("u") else int(iv) * 1000
        except ValueError:
            raise ValueError(f"rtimer timer {name}: bad interval \"{iv}\"") from None
        if interval <= 0:
            raise ValueError(f"rtimer timer {name}: interval must be positive")
    try:
        mode = int(a.get("mode", "0"))
    except ValueError:
        raise ValueError(f"rtimer timer {name}: bad mode \"{a['mode']}\"") from None
    return TimerDef(name, interval, mode)


def parse_exec(text: str) -> tuple[str, str]:
    """`timer=t1;route=NAME` -> (timer, route)."""
    a = _attrs(text, "exec")
    if not a.get("timer") or not a.get("route"):
        raise ValueError(f"rtimer exec \"{text}\": timer and route are required")
    return a["timer"], a["route"]


mod.param("default_interval", int, 120, doc="Seconds, for timers without interval.")
mod.param("timer", str, (), multi=True, validator=parse_timer,
          doc="Timer definition \"name=t1;interval=10;mode=1;\" (repeatable).")
mod.param("exec", str, (), multi=True, validator=parse_exec,
          doc="\"timer=t1;route=ROUTE\": run route[ROUTE] on each tick of t1 (repeatable).")

TIMERS: dict[str, TimerDef] = {}


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: bind exec entries to timers, check the routes, register the jobs."""
    TIMERS.clear()
    for td in mod.p.timer:
        if td.name in TIMERS:
            raise ModuleError(f"rtimer: timer {td.name} defined twice")
        TIMERS[td.name] = TimerDef(td.name, td.interval_ms, td.mode)
    for tname, route in mod.p["exec"]:
        td = TIMERS.get(tname)
        if td is None:
            raise ModuleError(f"rtimer: exec for undefined timer {tname}")
        if not ctx.has_route("route", route):
            raise ModuleError(f"rtimer: timer {tname}: no route[{route}] block")
        td.routes.append(route)
    default_ms = int(mod.p.default_interval) * 1000
    if default_ms <= 0:
        raise ModuleError("rtimer: default_interval must be positive")
    for td in TIMERS.values():
        if td.routes:
            ctx.timers.register_timer(f"rtimer:{td.name}", lambda t=td: run_timer(t),
                                 td.interval_ms or default_ms)


def run_timer(td: TimerDef) -> None:
    """Timer process: run the routes of TD on a fresh faked request each."""
    mc = mod.context
    if mc is None:
        return
    for route in td.routes:
        try:
            mc.run_route("route", route, faked_ctx(mc.core))
        except Exception as exc:  # noqa: BLE001 - a script error must not stop the timer
            log.error("rtimer: timer %s: route[%s] failed: %s: %s",
                      td.name, route, type(exc).__name__, exc)


__all__ = ["mod", "run_timer"]
