"""KemiEngine: what app_lua and app_python3 share — route kind -> script function, the KSR
context, error handling (log file:line + Call-ID, 500, never a dead worker) and reload.

Runs in: every routing process. The engine object is created in the master (mod_init) and
installed as `cfg.kemi`; the interpreter state is created per process in child_init (never
before fork). Shared state: one 8-byte reload generation in shm, bumped by the reload RPC in
the ctl process and compared by each process before it routes a message.

Route kinds (CompiledConfig.run(kind, name, ctx) delegates here):
  request            ksr_request_route
  reply              kemi.reply_route_callback (default ksr_reply_route)
  onsend             kemi.onsend_route_callback (default ksr_onsend_route)
  failure/branch/onreply/route NAME   the script function NAME (KSR.tm.t_on_failure("f"))
  event NAME         kemi.event_route_callback(NAME) when that global is set
"""
from __future__ import annotations

import struct
from typing import Any, Optional

from sipcore import log as klog
from sipcore import stats
from sipcore.cfg.compiler import event_route_type
from sipcore.errors import ParseError
from sipcore.kemi.registry import CURRENT, KsrTree, build_ksr
from sipcore.mod.exports import RouteType
from sipcore.route.ctx import RouteCtx, ScriptExit

_KIND_TYPE = {
    "request": RouteType.REQUEST, "route": RouteType.REQUEST, "failure": RouteType.FAILURE,
    "branch": RouteType.BRANCH, "onreply": RouteType.ONREPLY, "reply": RouteType.ONREPLY,
    "onsend": RouteType.ONSEND,
}


class ScriptLoadError(Exception):
    """A script that cannot be loaded (syntax error, missing ksr_request_route, ...)."""


class ReloadGeneration:
    """A counter shared by all processes (shm when the server has a segment, else local)."""

    def __init__(self) -> None:
        self._view: Any = [0]
        from sipcore.runtime import shm_context

        ctx = shm_context()
        if ctx is not None:
            off = ctx.arena.alloc(8)
            ctx.arena.write(off, struct.pack("=Q", 0))
            self._view = ctx.arena.segment.view(off, 8, "Q")

    def get(self) -> int:
        return int(self._view[0])

    def bump(self) -> int:
        self._view[0] = self._view[0] + 1
        return int(self._view[0])


class KemiEngine:
    """Base class: subclasses implement new_state/has_function/invoke/describe_error."""

    lang = "kemi"
    module = "app_kemi"

    def __init__(self, cfg: Any, paths: list[str]) -> None:
        g = cfg.globals
        self.cfg = cfg
        self.paths = list(paths)
        self.reply_cb = str(g.get("kemi.reply_route_callback", "ksr_reply_route") or "")
        self.onsend_cb = str(g.get("kemi.onsend_route_callback", "ksr_onsend_route") or "")
        self.event_cb = str(g.get("kemi.event_route_callback", "") or "")
        self.generation = ReloadGeneration()
        self.loaded_gen = 0
        self.tree: Optional[KsrTree] = None
        self.state: Any = None
        self.rank = 0

    # ---- per-process lifecycle -----------------------------------------------------------
    def child_init(self, rank: int) -> None:
        """Create this process's interpreter state (every process except the master)."""
        self.rank = rank
        self.tree = build_ksr(self.cfg.modules)
        self.loaded_gen = self.generation.get()
        self.state = self.new_state()

    def ensure_state(self) -> None:
        if self.state is None:
            self.child_init(self.rank or 1)

    def check_reload(self) -> None:
        """At each message: load the script again if a reload was requested since the last
        load; a script that fails to load now is logged and the old one kept."""
        gen = self.generation.get()
        if gen == self.loaded_gen:
            return
        self.loaded_gen = gen
        try:
            new = self.new_state()
        except ScriptLoadError as e:
            klog.emit(klog.L_ERR, f"{self.module}: reload failed, keeping the old script: {e}")
            return
        self.state = new
        klog.emit(klog.L_INFO, f"{self.module}: script reloaded (generation {gen})")

    def request_reload(self) -> dict[str, Any]:
        """RPC: check the script(s) as they are on disk now; if they load, every process
        switches at its next message. Raises ScriptLoadError when they do not."""
        if self.tree is None:
            self.tree = build_ksr(self.cfg.modules)
        self.new_state()          # validation: raises ScriptLoadError
        old = self.generation.get()
        return {"old": old, "new": self.generation.bump()}

    # ---- subclass interface --------------------------------------------------------------
    def new_state(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def has_function(self, name: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def invoke(self, name: str, ctx: RouteCtx, args: tuple[Any, ...]) -> int:
        """Call script function NAME; raise ScriptExit for KSR.x.exit/drop."""
        raise NotImplementedError  # pragma: no cover - abstract

    def describe_error(self, exc: BaseException) -> str:
        """'file:line: message' (plus a short traceback) for a script error."""
        return f"{type(exc).__name__}: {exc}"  # pragma: no cover - overridden

    # ---- routing (CompiledConfig delegates here) -----------------------------------------
    def _target(self, kind: str, name: Optional[str]) -> tuple[Optional[str], tuple[Any, ...]]:
        if kind == "request" or (kind == "route" and name in (None, "0")):
            return "ksr_request_route", ()
        if kind == "reply" or (kind == "onreply" and name is None):
            return self.reply_cb or None, ()
        if kind == "onsend":
            return self.onsend_cb or None, ()
        if kind == "event":
            return (self.event_cb or None), (name,)
        return name, ()

    def has_route(self, kind: str, name: Optional[str] = None) -> bool:
        fname, _ = self._target(kind, name)
        if not fname:
            return False
        self.ensure_state()
        return self.has_function(fname)

    def run(self, kind: str, name: Optional[str], ctx: RouteCtx) -> int:
        """Run the script function for a route kind: its int result, 0 after KSR.x.exit /
        drop, 1 when the script does not define it; a script error is logged and answered."""
        self.ensure_state()
        self.check_reload()
        fname, args = self._target(kind, name)
        if not fname or not self.has_function(fname):
            return 1
        ctx.route_type = (event_route_type(name or "") if kind == "event"
                          else _KIND_TYPE.get(kind, RouteType.REQUEST))
        ctx.route_name = fname
        return self.call_function(fname, ctx, args, kind)

    def route(self, fname: str, ctx: RouteCtx) -> Any:
        """KSR.route(NAME) from the script: call another script function in the running
        route (its exit and errors propagate to the caller)."""
        if not self.has_function(fname):
            klog.emit(klog.L_ERR, f"KSR.route: no function {fname}() in the script", ctx)
            return -1
        return self.invoke(fname, ctx, ())

    def call_function(self, fname: str, ctx: RouteCtx, args: tuple[Any, ...] = (),
                      kind: str = "route") -> int:
        prev_ctx, prev_engine = CURRENT.ctx, CURRENT.engine
        CURRENT.ctx, CURRENT.engine = ctx, self
        try:
            rc = self.invoke(fname, ctx, args)
        except ScriptExit as e:
            if e.drop:
                ctx.dropped = True
            return 0
        except ParseError:
            raise                  # receive.py answers 400 for a malformed message part
        except Exception as e:     # a script bug never kills the worker
            self.script_error(kind, fname, ctx, e)
            return -1
        finally:
            CURRENT.ctx, CURRENT.engine = prev_ctx, prev_engine
        if isinstance(rc, bool):
            return 1 if rc else -1
        return rc if isinstance(rc, int) else 1

    def script_error(self, kind: str, fname: str, ctx: RouteCtx, exc: BaseException) -> None:
        """Log with file:line and Call-ID; answer a request 500 (an ACK is dropped)."""
        stats.inc(f"{self.module}:script_errors")
        try:
            callid = ctx.msg.callid
        except ParseError:
            callid = "?"
        klog.emit(klog.L_ERR, f"{self.module}: error in {self.lang} function {fname}() "
                  f"(Call-ID {callid}): {self.describe_error(exc)}")
        msg = ctx.msg
        if kind == "request" and msg.is_request:
            ctx.dropped = True
            if msg.method != "ACK" and not ctx.replied:
                from sipcore.route.reply import send_stateless_reply

                send_stateless_reply(ctx, 500, "Server Internal Error")
