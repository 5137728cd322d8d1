"""app_python3: route SIP in Python (`cfgengine "python"`), Kamailio app_python3's model.

The script defines `mod_init()` returning an object; its methods `ksr_request_route(self,
msg)`, `ksr_reply_route(self, msg)`, failure/branch routes named in KSR.tm.t_on_failure(...)
are called with the message context; `import KSR` gives the API generated from the export
tables (modules/app_python3/KSR.pyi is the editor stub: `python3 -m sipcore.kemi.stub`).

Runs in: the master (modparam compile check, mod_init installs the engine), every routing
process (child_init executes the script: never before fork), the ctl process (reload checks;
the new script is loaded by every process at its next message).
"""
from __future__ import annotations

from typing import Any

from sipcore.errors import ModuleError
from sipcore.kemi.engine_glue import engine_child_init, engine_reload, script_path_validator
from sipcore.mod import ModContext, Module

from .py_engine import PythonEngine, ScriptLoadError, check_syntax

mod = Module("app_python3", summary="Routing scripts in Python (KEMI), one instance per process.")


_script_path = script_path_validator("Python", check_syntax, ScriptLoadError)


mod.param("load", str, None, validator=_script_path,
          doc="The Python routing script (checked for syntax at configuration load).")
mod.param("script_name", str, None, validator=_script_path,
          doc="Alias of load (older app_python name).")
mod.param("mod_init_function", str, "mod_init",
          doc="Script function called to create the routing object.")
mod.param("child_init_method", str, "child_init",
          doc="Method of the routing object called with the process rank after creation.")


class _State:
    engine: PythonEngine | None = None


STATE = _State()


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: with cfgengine "python", install the engine (the script is not run
    here)."""
    cfg = ctx.cfg
    path = mod.p.load or mod.p.script_name
    if cfg.engine != "python":
        STATE.engine = None
        return
    if not path:
        raise ModuleError("app_python3: cfgengine \"python\" needs "
                          "modparam(\"app_python3\", \"load\", FILE)")
    STATE.engine = PythonEngine(cfg, [path], str(mod.p.mod_init_function),
                                str(mod.p.child_init_method), ctx.shm)
    cfg.kemi = STATE.engine


@mod.on_child_init
def child_init(ctx: ModContext, rank: int) -> None:
    """Every process but the master: run the script and create its routing object."""
    engine_child_init("app_python3", STATE.engine, rank, ScriptLoadError)


def rpc_reload(*args: Any) -> dict[str, Any]:
    """Check the script and make every process load it at its next message."""
    return engine_reload("app_python3", STATE.engine, "python", ScriptLoadError, True)


mod.rpc("app_python3.reload", rpc_reload,
        doc="Reload the Python script in every process at its next message; a script that "
        "does not load is refused and the old one stays.")
mod.rpc("app_python.reload", rpc_reload, doc="Alias of app_python3.reload (Kamailio's name).")
