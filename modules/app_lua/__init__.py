"""app_lua: route SIP in Lua (`cfgengine "lua"`), with KSR generated from the export tables.

Runs in: the master (modparam syntax check, mod_init installs the engine on the config),
every routing process (child_init creates its own Lua state: never before fork) and the ctl
process (app_lua.reload checks the script, then publishes its text with a new generation in
shm; every process loads that text before its next message). Kamailio equivalent: modules/app_lua (app_lua_api.c).
"""
from __future__ import annotations

from typing import Any

from sipcore.errors import ModuleError
from sipcore.kemi.engine_glue import engine_child_init, engine_reload, script_path_validator
from sipcore.mod import ModContext, Module

from .lua_engine import LuaEngine, ScriptLoadError, check_syntax

mod = Module("app_lua", summary="Routing scripts in Lua (KEMI), one Lua state per process.")


_script_path = script_path_validator("Lua", check_syntax, ScriptLoadError)


mod.param("load", str, None, multi=True, validator=_script_path,
          doc="Lua script to load (repeatable). With `cfgengine \"lua\"` it must define "
          "ksr_request_route(); checked for syntax at configuration load.")
mod.param("reload", int, 1,
          doc="1: the app_lua.reload RPC is allowed; 0: it is refused.")
mod.param("log_mode", int, 0,
          doc="Kamailio compatibility (bit 1 logs each reload); reloads are always logged.")


class _State:
    engine: LuaEngine | None = None


STATE = _State()


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: with cfgengine "lua", install the engine (no Lua state yet)."""
    cfg = ctx.cfg
    paths = list(mod.p.load)
    if cfg.engine != "lua":
        STATE.engine = None
        return
    if not paths:
        raise ModuleError("app_lua: cfgengine \"lua\" needs modparam(\"app_lua\", \"load\", FILE)")
    STATE.engine = LuaEngine(cfg, paths, ctx.shm)
    cfg.kemi = STATE.engine


@mod.on_child_init
def child_init(ctx: ModContext, rank: int) -> None:
    """Every process but the master: its own Lua state with the script loaded."""
    engine_child_init("app_lua", STATE.engine, rank, ScriptLoadError)


def rpc_reload(*args: Any) -> dict[str, Any]:
    """Check the script(s) and make every process load them at its next message."""
    return engine_reload("app_lua", STATE.engine, "lua", ScriptLoadError, bool(mod.p.reload))


def rpc_list() -> list[dict[str, Any]]:
    """The loaded scripts and the reload generation."""
    eng = STATE.engine
    if eng is None:
        return []
    gen = eng.generation.get()
    return [{"id": i, "file": p, "generation": gen} for i, p in enumerate(eng.paths)]


mod.rpc("app_lua.reload", rpc_reload, params="[id]",
        doc="Reload the Lua script(s) in every process at its next message; a script that "
        "does not load is refused and the old one stays.")
mod.rpc("app_lua.list", rpc_list, doc="List the loaded Lua scripts and the reload generation.")
