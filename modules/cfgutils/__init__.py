"""cfgutils: config utilities - random events, sleeps, global flags, named locks, route checks,
core_hash, config file hash, $RANDOM.

Runs in: SIP workers (functions), the RPC process (cfgutils.* RPCs), the master (mod_init:
hash_file digest, lock set size).
Shared state: the probability, the global flags and the lock set. They live in the
process-local `state.CfgutilsState` now; the runtime issue moves them into shm (an int slot each
and a robust-mutex lock set) behind the same methods, so gflags/probability changes and locks
are then seen by every process.
Kamailio equivalent: modules/cfgutils (cfgutils.c).
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import resource
import time
from typing import Any, Optional

from modules.cfgutils.state import STATE, core_case_hash, core_hash
from sipcore import log as klog
from sipcore.errors import ModuleError, RpcFault
from sipcore.mod import Custom, Fx, ModContext, Module
from sipcore.route.ctx import RouteCtx

log = logging.getLogger(__name__)

mod = Module("cfgutils", summary="Config utilities: random events, gflags, locks, sleeps, "
             "route checks, core_hash.")


def _prob(v: int) -> int:
    if not 0 <= v <= 100:
        raise ValueError(f"invalid probability <{v}>")
    return v


mod.param("initial_probability", int, 10, validator=_prob,
          doc="Percent probability used by rand_event() until rand_set_prob().")
mod.param("initial_gflags", int, 0, doc="Initial bitmap of the global flags.")
mod.param("hash_file", str, None, doc="File whose MD5 is computed at start "
          "(cfgutils.check_config_hash compares it later).")
mod.param("lock_set_size", int, 0, doc="Lock set size = 2^value (0: no locks; max 14).")

_config_hash: list[str] = []


def md5_file(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(32768), b""):
            h.update(chunk)
    return h.hexdigest()


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: digest of hash_file, initial probability/gflags, lock set."""
    _config_hash.clear()
    path = mod.p.hash_file
    if path:
        try:
            _config_hash.append(md5_file(path))
        except OSError as exc:
            raise ModuleError(f"cfgutils: could not hash the config file {path}: "
                              f"{exc.strerror}") from None
    size = int(mod.p.lock_set_size)
    if size > 14:
        log.warning("cfgutils: lock set size too large (%s), making it 14", size)
        size = 14
    STATE.init(int(mod.p.initial_probability), int(mod.p.initial_gflags),
               (1 << size) if size > 0 else 0)


# ---- random events ----------------------------------------------------------------------------

def _static_prob(text: str) -> int:
    try:
        v = int(text.strip())
    except ValueError:
        raise ValueError(f"invalid probability \"{text}\"") from None
    return _prob(v)


@mod.function("rand_set_prob", args=(Custom(_static_prob, name="probability"),))
def ki_rand_set_prob(ctx: RouteCtx, percent: int) -> int:
    """Set the probability (0..100 percent) used by rand_event()."""
    STATE.set_probability(percent)
    return 1


@mod.function("rand_reset_prob", args=())
def ki_rand_reset_prob(ctx: RouteCtx) -> int:
    """Back to initial_probability."""
    STATE.set_probability(int(mod.p.initial_probability))
    return 1


@mod.function("rand_get_prob", args=())
def ki_rand_get_prob(ctx: RouteCtx) -> int:
    """Returns the current probability (so 0% stops the script, as in Kamailio)."""
    return STATE.probability()


@mod.function("rand_event", args=())
def ki_rand_event(ctx: RouteCtx) -> int:
    """True (1) with the current probability, else -1."""
    p = STATE.probability()
    if p == 0:
        return -1
    if p == 100:
        return 1
    return 1 if random.random() < p / 100 else -1


def _random_pv(inner: Optional[str]) -> Any:
    from sipcore.pv.spec import FuncPv

    if inner:
        raise ValueError("$RANDOM takes no inner name")
    return FuncPv(lambda ctx: random.randint(0, 2**31 - 1), text="$RANDOM")


mod.pv("RANDOM", _random_pv, doc="A random integer 0..2^31-1 on each read.")


# ---- sleeps -------------------------------------------------------------------------------------

@mod.function("sleep", args=(Fx.IGP,))
def ki_sleep(ctx: RouteCtx, seconds: int) -> int:
    """Block this worker for SECONDS."""
    if seconds > 0:
        time.sleep(seconds)
    return 1


@mod.function("usleep", args=(Fx.IGP,))
def ki_usleep(ctx: RouteCtx, usec: int) -> int:
    """Block this worker for USEC microseconds."""
    if usec > 0:
        time.sleep(usec / 1_000_000)
    return 1


# ---- debugging ----------------------------------------------------------------------------------

@mod.function("abort", args=())
def ki_abort(ctx: RouteCtx) -> int:
    """Debugging: abort the process (core dump)."""
    log.critical("abort called")
    os.abort()


def _pkg_report(ctx: RouteCtx, what: str) -> int:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    log.log(klog.NOTICE, "%s: pid %s max resident %s KiB", what, os.getpid(), ru.ru_maxrss)
    return 1


def _shm_report(ctx: RouteCtx, what: str) -> int:
    shm = getattr(ctx.core, "shm_status", None)
    text = shm() if callable(shm) else "shared memory is not set up in this process"
    log.log(klog.NOTICE, "%s: %s", what, text)
    return 1


@mod.function("pkg_status", args=())
def ki_pkg_status(ctx: RouteCtx) -> int:
    """Log this process's private memory use."""
    return _pkg_report(ctx, "pkg_status")


@mod.function("pkg_summary", args=())
def ki_pkg_summary(ctx: RouteCtx) -> int:
    """Log a summary of this process's private memory use."""
    return _pkg_report(ctx, "pkg_summary")


@mod.function("shm_status", args=())
def ki_shm_status(ctx: RouteCtx) -> int:
    """Log the shared memory status."""
    return _shm_report(ctx, "shm_status")


@mod.function("shm_summary", args=())
def ki_shm_summary(ctx: RouteCtx) -> int:
    """Log a summary of the shared memory."""
    return _shm_report(ctx, "shm_summary")


# ---- global flags -------------------------------------------------------------------------------

def _gflag(text: str) -> int:
    """Flag index 0..31 at compile time -> bitmask (Kamailio fixup_gflags)."""
    try:
        n = int(text.strip())
    except ValueError:
        raise ValueError(f"bad number <{text}>") from None
    if not 0 <= n <= 31:
        raise ValueError(f"flag <{n}> out of range [0..31]")
    return 1 << n


GFLAG = Custom(_gflag, name="gflag")


@mod.function("set_gflag", args=(GFLAG,))
def ki_set_gflag(ctx: RouteCtx, mask: int) -> int:
    """Set global flag N (shared by all processes)."""
    STATE.gflags_or(mask)
    return 1


@mod.function("reset_gflag", args=(GFLAG,))
def ki_reset_gflag(ctx: RouteCtx, mask: int) -> int:
    """Clear global flag N."""
    STATE.gflags_and_not(mask)
    return 1


@mod.function("is_gflag", args=(GFLAG,))
def ki_is_gflag(ctx: RouteCtx, mask: int) -> int:
    """1 if global flag N is set, else -1."""
    return 1 if STATE.gflags() & mask else -1


# ---- locks --------------------------------------------------------------------------------------

def _lock_op(ctx: RouteCtx, key: str, mode: str) -> int:
    if STATE.lock_set_size() == 0:
        log.error("lock set not initialized (attempt to do op: %s on: %s)", mode, key)
        return -1
    slot = core_case_hash(key, None, STATE.lock_set_size())
    if mode == "lock":
        if not STATE.lock(slot):
            # Kamailio would deadlock here (non-recursive lock held by this process)
            log.error('lock("%s"): slot %s already held by this process', key, slot)
            return -1
        return 1
    if mode == "trylock":
        return 1 if STATE.trylock(slot) else -1
    if not STATE.unlock(slot):
        log.warning('unlock("%s"): slot %s was not locked', key, slot)
    return 1


@mod.function("lock", args=(Fx.SPVE,))
def ki_lock(ctx: RouteCtx, key: str) -> int:
    """Take the lock that KEY hashes to (blocks until free)."""
    return _lock_op(ctx, key, "lock")


@mod.function("unlock", args=(Fx.SPVE,))
def ki_unlock(ctx: RouteCtx, key: str) -> int:
    """Release the lock that KEY hashes to."""
    return _lock_op(ctx, key, "unlock")


@mod.function("trylock", args=(Fx.SPVE,))
def ki_trylock(ctx: RouteCtx, key: str) -> int:
    """Take the lock of KEY if free: 1, else -1 without waiting."""
    return _lock_op(ctx, key, "trylock")


# ---- hashing and routes -------------------------------------------------------------------------

@mod.function("core_hash", args=(Fx.SPVE, Fx.SPVE, Fx.IGP))
def ki_core_hash(ctx: RouteCtx, s1: str, s2: str, size: int) -> int:
    """Kamailio core_hash(S1, S2) modulo 2^SIZE (2 when SIZE <= 0), plus 1."""
    slots = 2 if size <= 0 else 1 << size
    return core_hash(s1, s2 or None, slots) + 1


def _routes(ctx: RouteCtx) -> Any:
    routes = ctx.core.routes
    if routes is None:
        raise ModuleError("cfgutils: no compiled configuration attached to the core")
    return routes


@mod.function("check_route_exists", args=(Fx.SPVE,))
def ki_check_route_exists(ctx: RouteCtx, name: str) -> int:
    """1 if request route block `route[NAME]` exists, else -1."""
    return 1 if _routes(ctx).has_route("route", name) else -1


@mod.function("route_if_exists", args=(Fx.SPVE,))
def ki_route_if_exists(ctx: RouteCtx, name: str) -> int:
    """Run `route[NAME]` if it exists, as route(NAME) would: its return code (an `exit` in it
    stops the script), else -1."""
    fn = _routes(ctx).route_function("route", name)
    if fn is None:
        return -1
    return fn(ctx)


# ---- RPC ----------------------------------------------------------------------------------------

def _int_arg(args: tuple, what: str) -> int:
    if not args:
        raise RpcFault(500, "Invalid Parameters")
    try:
        return int(args[0])
    except (TypeError, ValueError):
        raise RpcFault(500, f"Invalid Parameters ({what})") from None


def rpc_set_gflag(*args: Any) -> None:
    STATE.gflags_or(_int_arg(args, "mask"))


def rpc_reset_gflag(*args: Any) -> None:
    STATE.gflags_and_not(_int_arg(args, "mask"))


def rpc_is_gflag(*args: Any) -> str:
    mask = _int_arg(args, "mask")
    return "TRUE" if STATE.gflags() & mask == mask else "FALSE"


def rpc_get_gflags() -> str:
    f = STATE.gflags()
    return f"0x{f:X} ({f})"


def rpc_rand_set_prob(*args: Any) -> None:
    p = _int_arg(args, "percent")
    if not 0 <= p <= 100:
        raise RpcFault(500, "Invalid Percent")
    STATE.set_probability(p)


def rpc_rand_reset_prob() -> None:
    STATE.set_probability(int(mod.p.initial_probability))


def rpc_rand_get_prob() -> str:
    return f"actual probability: {STATE.probability()} percent"


def rpc_get_config_hash() -> str:
    if not _config_hash:
        raise RpcFault(500, "No hash file")
    return _config_hash[0]


def rpc_check_config_hash() -> str:
    path = mod.p.hash_file
    if not path or not _config_hash:
        raise RpcFault(500, "No hash file")
    try:
        now = md5_file(path)
    except OSError:
        raise RpcFault(500, "Failed to hash the file") from None
    return "Identical hash" if now == _config_hash[0] else "Different hash"


mod.rpc("cfgutils.set_gflag", rpc_set_gflag, params="mask:int",
        doc="Sets the bits specified by the argument.")
mod.rpc("cfgutils.reset_gflag", rpc_reset_gflag, params="mask:int",
        doc="Resets the bits specified by the argument.")
mod.rpc("cfgutils.is_gflag", rpc_is_gflag, params="mask:int",
        doc="Checks if the bits specified by the argument are all set.")
mod.rpc("cfgutils.get_gflags", rpc_get_gflags, doc="Return the value for global flags.")
mod.rpc("cfgutils.rand_set_prob", rpc_rand_set_prob, params="percent:int",
        doc="Set the random probability.")
mod.rpc("cfgutils.rand_reset_prob", rpc_rand_reset_prob, doc="Reset the random probability.")
mod.rpc("cfgutils.rand_get_prob", rpc_rand_get_prob, doc="Get the random probability.")
mod.rpc("cfgutils.get_config_hash", rpc_get_config_hash, doc="Get config hash value.")
mod.rpc("cfgutils.check_config_hash", rpc_check_config_hash, doc="Check config hash value.")
