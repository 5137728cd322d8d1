"""counters: script-declared counters (`script_counter`) updated by cnt_inc/cnt_add/cnt_reset,
and the cnt.* RPCs over every counter (core statistics included).

Runs in: SIP workers (functions), the RPC process (cnt.*).
Shared state: counter values go through sipcore.stats (process-local now; the runtime moves
them into shm as per-process slots summed on read, without changing this module).
Kamailio equivalent: modules/counters (counters.c) over the core counters API.
"""
from __future__ import annotations

from typing import Any

from sipcore import stats
from sipcore.errors import RpcFault
from sipcore.mod import Custom, Fx, ModContext, Module
from sipcore.route.ctx import RouteCtx

mod = Module("counters", summary="Counters declared in the script, with cnt.* RPCs.")

# (group, name) -> description of the counters declared with script_counter
_declared: dict[tuple[str, str], str] = {}


def _parse_decl(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("script_counter: empty value")
    name = text.split(None, 1)[0]
    grp, dot, cname = name.partition(".")
    if (dot and not (grp and cname)) or not name:
        raise ValueError(f"script_counter: bad counter name \"{name}\"")
    return text


mod.param("script_cnt_grp_name", str, "script",
          doc="Group of counters declared without an explicit group.")
mod.param("script_counter", str, None, multi=True, validator=_parse_decl,
          doc="\"[grp.]name [description]\": declare a counter (repeatable).")


def split_name(text: str, default_group: str) -> tuple[str, str]:
    """"grp.name" -> (grp, name); "name" -> (default_group, name)."""
    t = text.strip()
    grp, dot, name = t.partition(".")
    return (grp, name) if dot else (default_group, t)


def declared() -> dict[tuple[str, str], str]:
    """The declared counters (rebuilt from the params, so reloading a config is consistent)."""
    _declared.clear()
    default = mod.p.script_cnt_grp_name
    for decl in mod.p.script_counter:
        parts = decl.strip().split(None, 1)
        _declared[split_name(parts[0], default)] = parts[1] if len(parts) > 1 else ""
    return _declared


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master: register every declared counter at 0 so RPCs list it before first use."""
    for grp, name in declared():
        key = f"{grp}:{name}"
        stats.inc(key, 0)


def _counter(text: str) -> str:
    """Compile-time fixup: the counter must be declared (Kamailio: "counter does not exist")."""
    grp, name = split_name(text, mod.p.script_cnt_grp_name)
    if (grp, name) not in declared():
        raise ValueError(f"counter {grp}.{name} does not exist (declare it with "
                         "modparam(\"counters\", \"script_counter\", ...))")
    return f"{grp}:{name}"


COUNTER = Custom(_counter, name="counter")


@mod.function("cnt_inc", args=(COUNTER,))
def ki_cnt_inc(ctx: RouteCtx, key: str) -> int:
    """Add 1 to counter [grp.]name."""
    stats.inc(key, 1)
    return 1


@mod.function("cnt_add", args=(COUNTER, Fx.IGP))
def ki_cnt_add(ctx: RouteCtx, key: str, n: int) -> int:
    """Add N (may be negative) to counter [grp.]name."""
    stats.inc(key, n)
    return 1


@mod.function("cnt_reset", args=(COUNTER,))
def ki_cnt_reset(ctx: RouteCtx, key: str) -> int:
    """Set counter [grp.]name to 0."""
    stats.reset(key)
    return 1


# ---- RPC ----------------------------------------------------------------------------------------

def _all() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for key, value in stats.snapshot().items():
        grp, _, name = key.partition(":")
        out.setdefault(grp, {})[name] = value
    return out


def _args(args: tuple, n: int, usage: str) -> list[str]:
    if len(args) < n:
        raise RpcFault(400, f"missing parameters: {usage}")
    return [str(a) for a in args[:n]]


def rpc_get(*args: Any) -> int:
    grp, name = _args(args, 2, "group name")
    groups = _all()
    if name not in groups.get(grp, {}):
        raise RpcFault(400, "non-existent counter")
    return groups[grp][name]


def rpc_reset(*args: Any) -> None:
    grp, name = _args(args, 2, "group name")
    if name not in _all().get(grp, {}):
        raise RpcFault(400, "non-existent counter")
    stats.reset(f"{grp}:{name}")


def rpc_grps_list() -> list[str]:
    return sorted(_all())


def rpc_var_list(*args: Any) -> list[str]:
    (grp,) = _args(args, 1, "group")
    groups = _all()
    if grp not in groups:
        raise RpcFault(400, "no such group")
    return sorted(groups[grp])


def rpc_grp_get_all(*args: Any) -> dict[str, int]:
    (grp,) = _args(args, 1, "group")
    groups = _all()
    if grp not in groups:
        raise RpcFault(400, "no such group")
    return dict(sorted(groups[grp].items()))


def rpc_help(*args: Any) -> str:
    grp, name = _args(args, 2, "group name")
    desc = declared().get((grp, name))
    if desc is None:
        if name in _all().get(grp, {}):
            return ""
        raise RpcFault(400, "non-existent counter")
    return desc


mod.rpc("cnt.get", rpc_get, params="group name", doc="Value of one counter.")
mod.rpc("cnt.reset", rpc_reset, params="group name", doc="Reset one counter to 0.")
for _alias in ("cnt.grps_list", "cnt.list_groups"):
    mod.rpc(_alias, rpc_grps_list, doc="Names of all counter groups.")
for _alias in ("cnt.var_list", "cnt.list_vars"):
    mod.rpc(_alias, rpc_var_list, params="group", doc="Counter names of a group.")
for _alias in ("cnt.grp_get_all", "cnt.get_vars"):
    mod.rpc(_alias, rpc_grp_get_all, params="group", doc="All counters of a group with values.")
mod.rpc("cnt.help", rpc_help, params="group name", doc="Description of a counter.")
