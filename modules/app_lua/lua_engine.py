"""The Lua KEMI engine: one lupa LuaRuntime per process (LuaJIT when lupa ships it).

Runs in: every routing process (state created in child_init), the ctl process (reload checks)
and the master at modparam time (syntax check only: the chunk is compiled, never run).
KSR.x.exit/drop and KSR.route are Lua functions, so an exit unwinds through nested script
functions as a Lua error the trampoline recognises, without crossing into Python. A Python
exception raised by a KSR function comes back as the exception object (a ParseError still
gets the 400 of receive.py) with the Lua traceback.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any

from sipcore.errors import ParseError
from sipcore.kemi.engine import KemiEngine, ScriptLoadError
from sipcore.kemi.registry import CURRENT
from sipcore.route.ctx import RouteCtx, ScriptExit

_TRUNCATED = re.compile(r"\.\.\.([^\s:]+):")
_RUNTIMES = ("lupa.luajit21", "lupa.luajit20", "lupa.lua54", "lupa.lua53")


def lua_module() -> Any:
    """The lupa flavour used: LuaJIT 2.1 if available, else the newest Lua."""
    for name in _RUNTIMES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return importlib.import_module("lupa")


_PRELUDE = """
local KSR, set_drop = ...
local EXIT = {}
local G = _G
KSR.x.exit = function() error(EXIT, 0) end
KSR.x.drop = function() set_drop(); error(EXIT, 0) end
KSR.route = function(name)
  local f = G[name]
  if type(f) ~= "function" then
    KSR.err("KSR.route: no function " .. tostring(name) .. "\\n")
    return -1
  end
  return f()
end
local PYERR = {}
local function handler(e)
  if e == EXIT then return e end
  if type(e) == "userdata" then return {PYERR, e, debug.traceback("", 2)} end
  return debug.traceback(tostring(e), 2)
end
return function(name, ...)
  local ok, r = xpcall(G[name], handler, ...)
  if ok then return true, r end
  if r == EXIT then return true, 0, true end
  if type(r) == "table" and r[1] == PYERR then return false, r[2], r[3] end
  return false, r
end
"""


class LuaScriptError(Exception):
    """A Lua runtime error; the message holds file:line and a Lua traceback."""


@dataclass
class LuaState:
    lua: Any
    call: Any
    globals: Any
    known: dict[str, bool] = field(default_factory=dict)


def check_syntax(path: str) -> None:
    """Compile (do not run) the script at PATH; raise ScriptLoadError/OSError on problems."""
    lua = lua_module().LuaRuntime()
    with open(path, encoding="utf-8") as fh:
        src = fh.read()
    res = lua.eval("loadstring or load")(src, "@" + path)
    if isinstance(res, tuple):
        raise ScriptLoadError(str(res[1]))


def _set_drop() -> None:
    CURRENT.ctx.dropped = True


class LuaEngine(KemiEngine):
    lang = "Lua"
    module = "app_lua"

    def new_state(self, sources: list[str] | None = None) -> LuaState:
        assert self.tree is not None
        if sources is None:
            sources = self.read_sources()
        lupa_mod = lua_module()
        lua = lupa_mod.LuaRuntime(unpack_returned_tuples=True)
        tree = self.tree
        ksr = lua.table_from(tree.core)
        for name, funcs in tree.modules.items():
            ksr[name] = lua.table_from(funcs)
        ksr["pv"] = lua.table_from(tree.pv)
        ksr["hdr"] = lua.table_from(tree.hdr)
        ksr["x"] = lua.table_from({"modf": tree.x["modf"]})
        call = lua.execute(_PRELUDE, ksr, _set_drop)
        g = lua.globals()
        g.KSR = ksr
        loader = lua.eval("loadstring or load")
        run_chunk = lua.eval("function(f) return pcall(f) end")
        for path, src in zip(self.paths, sources):
            chunk = loader(src, "@" + path)
            if isinstance(chunk, tuple):
                raise ScriptLoadError(str(chunk[1]))
            ok = run_chunk(chunk)
            if isinstance(ok, tuple) and not ok[0]:
                raise ScriptLoadError(f"error while loading {path}: {ok[1]}")
        if lupa_mod.lua_type(g.ksr_request_route) != "function":
            raise ScriptLoadError(f"{', '.join(self.paths)}: no function ksr_request_route()")
        return LuaState(lua, call, g)

    def has_function(self, name: str) -> bool:
        st = self.state
        known = st.known.get(name)
        if known is None:
            known = lua_module().lua_type(st.globals[name]) == "function"
            st.known[name] = known
        return known

    def invoke(self, name: str, ctx: RouteCtx, args: tuple[Any, ...]) -> int:
        res = self.state.call(name, *args)
        if res[0]:
            if len(res) > 2:
                raise ScriptExit()
            r = res[1]
            return int(r) if isinstance(r, float) else r
        if len(res) > 2:
            # a Python exception raised by a KSR function: a malformed message part keeps
            # its meaning (receive.py answers 400), anything else is a script error
            exc = res[1]
            if isinstance(exc, (ParseError, ScriptExit)):
                raise exc
            raise LuaScriptError(f"{type(exc).__name__}: {exc}{res[2]}")
        raise LuaScriptError(str(res[1]))

    def _full_path(self, m: re.Match[str]) -> str:
        """Lua shortens long chunk names to "...tail"; give the operator the whole path."""
        for p in self.paths:
            if p.endswith(m.group(1)):
                return p + ":"
        return m.group(0)

    def describe_error(self, exc: BaseException) -> str:
        if not isinstance(exc, LuaScriptError):
            return f"{type(exc).__name__}: {exc}"
        text = _TRUNCATED.sub(self._full_path, str(exc))
        first, *rest = text.splitlines() or [""]
        where = [ln.strip() for ln in rest if any(p in ln for p in self.paths)]
        return first + (f" (traceback: {'; '.join(where)})" if where else "")
