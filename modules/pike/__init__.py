"""pike: per-source-IP flood detection with the state of every source in shared memory.

Runs in: the master (mod_init: the shm table, the cleanup timer), SIP workers
(pike_check_req/pike_check_ip and the optional pre-script check), the timer process (removal
of sources idle for remove_latency), the ctl process (pike.top).
Shared state: the ShmHashTable "pike:ips" (key = the source IP text, value = one `_REC`
record). Each check is one read-modify-write under the IP's bucket lock, so the hits of one
source arriving on different workers add up exactly.

Algorithm (Kamailio pike, leaf nodes): time is cut into windows of sampling_time_unit seconds;
a source keeps the hits of the current and of the previous window. It is "hot" when either
window, or their mean, reaches reqs_density_per_unit. The first hot check returns -2 (newly
detected, logged), later ones -1, until the counters fall below the limit again. Unlike
Kamailio, no prefix tree is kept: only full addresses are counted.
Kamailio equivalent: modules/pike.
"""
from __future__ import annotations

import ipaddress
import logging
import struct
import time
from typing import Any

from sipcore import log as klog
from sipcore.errors import ModuleError, RpcFault
from sipcore.mod import ANY_ROUTE, REQUEST_ROUTE, Fx, ModContext, Module
from sipcore.route.ctx import RouteCtx
from sipcore.shm import ShmError, ShmHashTable

log = logging.getLogger(__name__)

mod = Module("pike", summary="Per-source-IP flood detection (hits per sampling window).")

mod.param("sampling_time_unit", int, 2, doc="Seconds per sampling window.")
mod.param("reqs_density_per_unit", int, 30,
          doc="Requests per window from one IP at which it is reported as flooding.")
mod.param("remove_latency", int, 120,
          doc="Seconds a source is remembered after its last request.")
mod.param("pike_log_level", int, 1, doc="Log level of the block/unblock reports "
          "(Kamailio numbers: 1 L_WARN, 2 L_NOTICE, 3 L_INFO, 4 L_DBG, 0 L_ERR).")
mod.param("check_route", str, "", doc="If set, every request is checked before "
          "request_route; for a flooding source route[NAME] runs and the request is dropped.")

# window index, hits in the current window, hits in the previous one, flags, last hit (ms)
_REC = struct.Struct("=qIIIq")
_RED = 1                     # reported as flooding (the next hot checks return -1)
_TABLE_SIZE = 4096
_LEVELS = {0: klog.L_ERR, 1: klog.L_WARN, 2: klog.L_NOTICE, 3: klog.L_INFO, 4: klog.L_DBG}

_state: dict[str, Any] = {"table": None}


def _positive(name: str) -> int:
    v = int(mod.get_param(name))
    if v <= 0:
        raise ModuleError(f"pike: {name} must be positive, got {v}")
    return v


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: the shared table and the cleanup timer."""
    unit = _positive("sampling_time_unit")
    _positive("reqs_density_per_unit")
    if int(mod.p.remove_latency) < 0:
        raise ModuleError("pike: remove_latency must not be negative")
    name = str(mod.p.check_route or "")
    if name and not ctx.has_route("route", name):
        raise ModuleError(f"pike: check_route \"{name}\" has no route[{name}] block")
    _state["table"] = ctx.require_shm().named("pike:ips",
                                              lambda a: ShmHashTable.create(a, _TABLE_SIZE),
                                              ShmHashTable.attach)
    ctx.timers.register_timer("pike:clean", _clean, unit * 1000)


def _clean() -> None:
    """Timer process: forget sources idle for remove_latency (their cells expire)."""
    t = _state["table"]
    if t is not None:
        t.expire()


def _log(ip: str, what: str) -> None:
    level = _LEVELS.get(int(mod.p.pike_log_level), klog.L_WARN)
    log.log(klog.py_level(level), "PIKE - %s: %s", what, ip)


def check_ip(ip: str) -> int:
    """1 not flooding (also on internal errors), -2 newly detected flood, -1 known flood."""
    t: ShmHashTable | None = _state["table"]
    if t is None or not ip:
        return 1
    unit_ms = int(mod.p.sampling_time_unit) * 1000
    limit = int(mod.p.reqs_density_per_unit)
    ttl = max(float(mod.p.remove_latency), 2.0 * unit_ms / 1000)
    now = time.monotonic_ns() // 1_000_000
    window = now // unit_ms
    key = ip.encode()
    try:
        with t.locked(key) as b:
            raw = b.get(key)
            if raw is None:
                win, cur, prev, flags = window, 0, 0, 0
            else:
                win, cur, prev, flags, _ = _REC.unpack(raw)
            if win != window:
                prev = cur if window == win + 1 else 0
                cur, win = 0, window
            cur += 1
            hot = prev >= limit or cur >= limit or (prev + cur) >> 1 >= limit
            was_red = bool(flags & _RED)
            flags = (flags | _RED) if hot else (flags & ~_RED)
            b.set(key, _REC.pack(win, cur, prev, flags, now), ttl)
    except ShmError as exc:
        log.error("pike: cannot update %s: %s", ip, exc)
        return 1
    if hot:
        if was_red:
            return -1
        _log(ip, "BLOCKing ip")
        return -2
    if was_red:
        _log(ip, "UNBLOCKing ip")
    return 1


@mod.function("pike_check_req", args=(), routes=REQUEST_ROUTE)
def ki_pike_check_req(ctx: RouteCtx) -> int:
    """Count this request for its source IP: 1 not flooding, -2 newly detected flood, -1
    already known flooding source."""
    return check_ip(ctx.rcv.src_ip)


@mod.function("pike_check_ip", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_pike_check_ip(ctx: RouteCtx, ip: str) -> int:
    """Same as pike_check_req for the address IP; -1 with a log when IP is not an address."""
    try:
        ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        log.error('pike_check_ip: invalid address "%s"', ip)
        return -1
    return check_ip(ip.strip().strip("[]"))


@mod.pre_script
def _pre_script(ctx: RouteCtx) -> bool:
    """With check_route: check every request; a flooding source runs route[check_route] and
    its request is dropped."""
    name = str(mod.p.check_route or "")
    if not name or check_ip(ctx.rcv.src_ip) > 0:
        return True
    mod.context.run_route("route", name, ctx)
    return False


def rpc_top(mode: str | None = None) -> list[dict[str, Any]]:
    """pike.top [ALL|HOT|WARM]: the sources known, with their hits (default HOT)."""
    flt = (mode or "HOT").upper()
    if flt not in ("ALL", "HOT", "WARM"):
        raise RpcFault(400, "pike.top: filter must be ALL, HOT or WARM")
    t: ShmHashTable | None = _state["table"]
    if t is None:
        return []
    unit_ms = int(mod.p.sampling_time_unit) * 1000
    window = (time.monotonic_ns() // 1_000_000) // unit_ms
    now = time.monotonic()
    out = []
    for cell in t.items():
        win, cur, prev, flags, _ = _REC.unpack(cell.value)
        if win != window:                   # counters as they would be now
            prev = cur if window == win + 1 else 0
            cur = 0
        status = "HOT" if flags & _RED else "WARM" if (cur or prev) else "COLD"
        if flt != "ALL" and status != flt:
            continue
        out.append({"ip_addr": cell.key.decode(), "leaf_hits_prev": prev,
                    "leaf_hits_curr": cur,
                    "expires": int(cell.expires - now) if cell.expires else 0,
                    "status": status})
    return out


mod.rpc("pike.top", rpc_top, doc="List the sources: ALL, HOT (flooding, default) or WARM.",
        params="[ALL|HOT|WARM]")

__all__ = ["check_ip", "mod"]
