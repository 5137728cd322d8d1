"""kex: core extensions - script and branch flags, $du helpers, is_myself, per-process debug
level, pv_printf, $sruid, and the core statistics RPCs.

Runs in: SIP workers (functions, $sruid), the RPC process (stats.*, pkg.*, mod.*).
Shared state: the statistics counters (sipcore.stats; moved into shm by the runtime).
Kamailio equivalent: modules/kex (kex_mod.c, flags.c, core_stats.c, pkg_stats.c, mod_stats.c).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Optional

from sipcore import log as klog
from sipcore import stats
from sipcore.errors import ParseError, RpcFault
from sipcore.mod import FAILURE_ROUTE, REQUEST_ROUTE, Fx, Module
from sipcore.route.ctx import Branch, RouteCtx

log = logging.getLogger(__name__)

mod = Module("kex", summary="Core extensions: flags, $du helpers, is_myself, debug level, "
             "core statistics RPCs.")

MAX_FLAG = 31


# ---- script flags ($sf) -----------------------------------------------------------------------

def _flag_ok(flag: int) -> bool:
    return 0 <= flag <= MAX_FLAG


@mod.function("setsflag", args=(Fx.IGP,))
def ki_setsflag(ctx: RouteCtx, flag: int) -> int:
    """Set script flag FLAG (0..31); -1 when out of range."""
    if not _flag_ok(flag):
        return -1
    ctx.sflags |= 1 << flag
    return 1


@mod.function("resetsflag", args=(Fx.IGP,))
def ki_resetsflag(ctx: RouteCtx, flag: int) -> int:
    """Clear script flag FLAG."""
    if not _flag_ok(flag):
        return -1
    ctx.sflags &= ~(1 << flag)
    return 1


@mod.function("issflagset", args=(Fx.IGP,))
def ki_issflagset(ctx: RouteCtx, flag: int) -> int:
    """1 if script flag FLAG is set, else -1."""
    if not _flag_ok(flag):
        return -1
    return 1 if ctx.sflags & (1 << flag) else -1


# ---- branch flags ($bf) -----------------------------------------------------------------------
# Branch 0 is the R-URI branch (ctx.bflags); branch N>0 is ctx.branches[N-1] (append_branch,
# lookup), as in Kamailio's dset where getbflagsval(0) is the main branch.

def _get_bflags(ctx: RouteCtx, branch: int) -> Optional[int]:
    if branch == 0:
        return ctx.bflags
    if 0 < branch <= len(ctx.branches):
        return ctx.branches[branch - 1].bflags
    return None


def _set_bflags(ctx: RouteCtx, branch: int, value: int) -> None:
    if branch == 0:
        ctx.bflags = value
    else:
        ctx.branches[branch - 1].bflags = value


def _bflag_op(ctx: RouteCtx, flag: int, branch: int, op: str) -> int:
    if not _flag_ok(flag) or branch < 0:
        return -1
    cur = _get_bflags(ctx, branch)
    if cur is None:
        log.error("kex: branch %s does not exist", branch)
        return -1
    bit = 1 << flag
    if op == "set":
        _set_bflags(ctx, branch, cur | bit)
        return 1
    if op == "reset":
        _set_bflags(ctx, branch, cur & ~bit)
        return 1
    return 1 if cur & bit else -1


@mod.function("setbflag", args=(Fx.IGP,))
def ki_setbflag(ctx: RouteCtx, flag: int) -> int:
    """Set branch flag FLAG on branch 0 (the R-URI)."""
    return _bflag_op(ctx, flag, 0, "set")


@mod.function("setbflag", args=(Fx.IGP, Fx.IGP), kemi_name="setbflag_branch")
def ki_setbflag_branch(ctx: RouteCtx, flag: int, branch: int) -> int:
    """Set branch flag FLAG on BRANCH (0 = R-URI)."""
    return _bflag_op(ctx, flag, branch, "set")


@mod.function("resetbflag", args=(Fx.IGP,))
def ki_resetbflag(ctx: RouteCtx, flag: int) -> int:
    """Clear branch flag FLAG on branch 0."""
    return _bflag_op(ctx, flag, 0, "reset")


@mod.function("resetbflag", args=(Fx.IGP, Fx.IGP), kemi_name="resetbflag_branch")
def ki_resetbflag_branch(ctx: RouteCtx, flag: int, branch: int) -> int:
    """Clear branch flag FLAG on BRANCH."""
    return _bflag_op(ctx, flag, branch, "reset")


@mod.function("isbflagset", args=(Fx.IGP,))
def ki_isbflagset(ctx: RouteCtx, flag: int) -> int:
    """1 if branch flag FLAG is set on branch 0, else -1."""
    return _bflag_op(ctx, flag, 0, "test")


@mod.function("isbflagset", args=(Fx.IGP, Fx.IGP), kemi_name="isbflagset_branch")
def ki_isbflagset_branch(ctx: RouteCtx, flag: int, branch: int) -> int:
    """1 if branch flag FLAG is set on BRANCH, else -1."""
    return _bflag_op(ctx, flag, branch, "test")


# ---- destination URI ($du) --------------------------------------------------------------------

@mod.function("setdsturi", args=(Fx.STR,))
def ki_setdsturi(ctx: RouteCtx, uri: str) -> int:
    """Set the destination URI ($du, outbound proxy)."""
    if not uri:
        return -1
    ctx.dst_uri = uri
    return 1


@mod.function("resetdsturi", args=())
def ki_resetdsturi(ctx: RouteCtx) -> int:
    """Clear $du."""
    ctx.dst_uri = None
    return 1


@mod.function("isdsturiset", args=())
def ki_isdsturiset(ctx: RouteCtx) -> int:
    """1 if $du is set, else -1."""
    return 1 if ctx.dst_uri else -1


# ---- pv_printf --------------------------------------------------------------------------------

def ki_pv_printf(ctx: RouteCtx, var: Any, value: str) -> int:
    """Evaluate VALUE (a format with PVs) and assign it to VAR."""
    if not getattr(var, "writable", False):
        log.error("pv_printf: %s is read only", getattr(var, 'text', var))
        return -1
    var.set(ctx, value)
    return 1


mod.function("pv_printf", args=(Fx.PVAR, Fx.SPVE))(ki_pv_printf)
mod.function("avp_printf", args=(Fx.PVAR, Fx.SPVE), kemi=False,
             doc="Alias of pv_printf().")(ki_pv_printf)


# ---- is_myself --------------------------------------------------------------------------------

@mod.function("is_myself", args=(Fx.SPVE,))
def ki_is_myself(ctx: RouteCtx, uri: str) -> int:
    """1 if URI (a sip:/sips: URI or a bare host) names this server (port/transport when the
    URI carries them), else -1."""
    if uri.startswith(("sip:", "sips:")) and len(uri) > 4:
        from sipcore.msg import parse_uri

        try:
            puri = parse_uri(uri)
        except ParseError:
            log.error("is_myself: failed to parse uri [%s]", uri)
            return -1
        proto = (puri.transport or "").lower() or None
        return 1 if ctx.core.is_myself(puri.host, puri.port or None, proto) else -1
    return 1 if ctx.core.is_myself(uri) else -1


# ---- per-process debug level --------------------------------------------------------------------

_saved_debug: list[int] = []   # the level before the first setdebug() of this process


@mod.function("setdebug", args=(Fx.IGP,))
def ki_setdebug(ctx: RouteCtx, level: int) -> int:
    """Set the log level of this process (until resetdebug())."""
    if not _saved_debug:
        _saved_debug.append(klog.get_debug())
    klog.set_debug(level)
    return 1


@mod.function("resetdebug", args=())
def ki_resetdebug(ctx: RouteCtx) -> int:
    """Restore the log level this process had before setdebug()."""
    if _saved_debug:
        klog.set_debug(_saved_debug.pop())
    return 1


# ---- km_append_branch (obsolete; corex append_branch is the current one) ----------------------

def _append_branch(ctx: RouteCtx, uri: Optional[str]) -> int:
    limit = int(ctx.core.get_global("max_branches", 12) or 12)
    if len(ctx.branches) + 1 >= limit:
        log.error("km_append_branch: max nr of branches exceeded")
        return -1
    if uri:
        ctx.branches.append(Branch(uri=uri, dst_uri=ctx.dst_uri, bflags=ctx.bflags,
                                   force_socket=ctx.force_socket))
        return 1
    ctx.branches.append(Branch(uri=ctx.msg.ruri, dst_uri=ctx.dst_uri, bflags=ctx.bflags,
                               force_socket=ctx.force_socket))
    return 1


@mod.function("km_append_branch", args=(), routes=REQUEST_ROUTE | FAILURE_ROUTE, kemi=False)
def ki_km_append_branch(ctx: RouteCtx) -> int:
    """Obsolete: add the current R-URI (with $du, branch flags, socket) as a branch."""
    return _append_branch(ctx, None)


@mod.function("km_append_branch", args=(Fx.SPVE,), routes=REQUEST_ROUTE | FAILURE_ROUTE,
              kemi=False)
def ki_km_append_branch_uri(ctx: RouteCtx, uri: str) -> int:
    """Obsolete: add URI as a branch."""
    return _append_branch(ctx, uri)


# ---- $sruid -----------------------------------------------------------------------------------

class _Sruid:
    """Kamailio sruid: "<prefix>-<hex time>-<pid>-<counter>" unique per process."""

    def __init__(self) -> None:
        self.pid = -1
        self.base = ""
        self.counter = 0

    def next(self) -> str:
        pid = os.getpid()
        if pid != self.pid:                     # first use in this (forked) process
            self.pid = pid
            self.base = f"uid-{int(time.time()):x}-{pid:x}"
            self.counter = 0
        self.counter += 1
        return f"{self.base}-{self.counter:x}"


_sruid = _Sruid()


def _sruid_pv(inner: Optional[str]) -> Any:
    from sipcore.pv.spec import FuncPv

    if inner:
        raise ValueError("$sruid takes no inner name")
    return FuncPv(lambda ctx: _sruid.next(), text="$sruid")


mod.pv("sruid", _sruid_pv, doc="A new unique id on each read.")


# ---- RPC: statistics (process-local store now; shm slots with the runtime) ------------------

def _stat_names(args: tuple[str, ...]) -> list[str]:
    snap = stats.snapshot()
    if not args or "all" in args:
        return sorted(snap)
    out: list[str] = []
    for a in args:
        if a.endswith(":"):
            out.extend(sorted(k for k in snap if k.startswith(a)))
        elif ":" in a:
            out.append(a)
        else:
            out.extend(sorted(k for k in snap if k.split(":", 1)[1] == a))
    return out


def rpc_get_statistics(*args: str) -> list[str]:
    """["group:name = value", ...] for `all`, `group:` or names."""
    return [f"{n} = {stats.get(n)}" for n in _stat_names(args)]


def rpc_fetch(*args: str) -> dict[str, str]:
    """{"group.name": "value"} (string values, like Kamailio)."""
    return {n.replace(":", ".", 1): str(stats.get(n)) for n in _stat_names(args)}


def rpc_fetchn(*args: str) -> dict[str, int]:
    """{"group.name": value} (numeric values)."""
    return {n.replace(":", ".", 1): stats.get(n) for n in _stat_names(args)}


def rpc_reset_statistics(*args: str) -> None:
    if not args:
        raise RpcFault(400, "missing statistic name")
    for n in _stat_names(args):
        stats.reset(n)


def rpc_clear_statistics(*args: str) -> list[str]:
    """Reset and return the old values."""
    if not args:
        raise RpcFault(400, "missing statistic name")
    names = _stat_names(args)
    old = [f"{n} = {stats.get(n)}" for n in names]
    for n in names:
        stats.reset(n)
    return old


def _pending_rpc(name: str):
    def handler(*_args: Any) -> Any:
        raise RpcFault(500, f"{name}: per-process memory statistics arrive with the runtime "
                            "(process table in shm)")
    handler.__doc__ = f"{name}: needs the shm process table (runtime issue)."
    return handler


mod.rpc("stats.get_statistics", rpc_get_statistics, params="[all|group:|name ...]",
        doc="Statistics as \"group:name = value\" lines.")
mod.rpc("stats.fetch", rpc_fetch, params="[all|group:|name ...]",
        doc="Statistics as an object of strings.")
mod.rpc("stats.fetchn", rpc_fetchn, params="[all|group:|name ...]",
        doc="Statistics as an object of numbers.")
mod.rpc("stats.reset_statistics", rpc_reset_statistics, params="name ...",
        doc="Reset statistics to 0.")
mod.rpc("stats.clear_statistics", rpc_clear_statistics, params="name ...",
        doc="Reset statistics and return the old values.")
for _n in ("pkg.stats", "pkg.info", "mod.stats", "mod.mem_stats", "mod.mem_statsx"):
    mod.rpc(_n, _pending_rpc(_n), doc="Per-process memory statistics (runtime issue).")
