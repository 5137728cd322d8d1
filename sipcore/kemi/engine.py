"""KemiEngine: what app_lua and app_python3 share — route kind -> script function, the KSR
context, error handling (log file:line + Call-ID, 500, never a dead worker) and reload.

Runs in: every routing process. The engine object is created in the master (mod_init) and
installed as `cfg.kemi`; the interpreter state is created per process in child_init (never
before fork). Shared state: the reload generation and the validated script text in shm
(ScriptStore), published by the reload RPC in the ctl process and compared by each process
before it routes a message.

Route kinds (CompiledConfig.run(kind, name, ctx) delegates here):
  request            ksr_request_route
  reply              kemi.reply_route_callback (default ksr_reply_route)
  onsend             kemi.onsend_route_callback (default ksr_onsend_route)
  failure/branch/onreply/route NAME   the script function NAME (KSR.tm.t_on_failure("f"))
  event NAME         modparam(MOD, "event_callback") of the module named before the ':' if it
                     declares one, else kemi.event_route_callback; called with NAME
"""
from __future__ import annotations

import json
import logging
import struct
from typing import Any

from sipcore import stats
from sipcore.cfg.compiler import event_route_type
from sipcore.errors import ParseError
from sipcore.kemi.registry import CURRENT, KsrTree, build_ksr
from sipcore.mod.exports import RouteType
from sipcore.route.ctx import RouteCtx, ScriptExit

log = logging.getLogger(__name__)

_KIND_TYPE = {
    "request": RouteType.REQUEST, "route": RouteType.REQUEST, "failure": RouteType.FAILURE,
    "branch": RouteType.BRANCH, "onreply": RouteType.ONREPLY, "reply": RouteType.ONREPLY,
    "onsend": RouteType.ONSEND,
}


class ScriptLoadError(Exception):
    """A script that cannot be loaded (syntax error, missing ksr_request_route, ...)."""


class ScriptStore:
    """The reload generation and the script text every process must load for it.

    The reload RPC validates the files as they are on disk and publishes their text; the
    other processes load exactly that text at their next message (a file edited again after
    the RPC does not leak into a process that had not switched yet). In the server this
    lives in shm (gen, blob offset, blob length, previous blob offset); the harness and
    `pykam -c` keep it in the process."""

    def __init__(self, shm: Any = None) -> None:
        """SHM: the server's ShmContext (None: this process only)."""
        self._arena: Any = None
        self._view: Any = [0, 0, 0, 0]
        self._local = b""
        ctx = shm
        if ctx is not None:
            self._arena = ctx.arena
            off = ctx.arena.alloc(32)
            ctx.arena.write(off, struct.pack("=4Q", 0, 0, 0, 0))
            self._view = ctx.arena.segment.view(off, 32, "Q")

    def get(self) -> int:
        """The current generation (0: the scripts loaded at startup)."""
        return int(self._view[0])

    def publish(self, sources: list[str]) -> int:
        """Store SOURCES as the next generation's scripts; returns the new generation."""
        blob = json.dumps(sources).encode("utf-8")
        v = self._view
        if self._arena is None:
            self._local = blob
        else:
            off = self._arena.alloc(max(len(blob), 1))
            self._arena.write(off, blob)
            stale = int(v[3])
            v[3] = v[1]              # keep the previous text: a reader may be copying it
            v[1], v[2] = off, len(blob)
            if stale:
                self._arena.free(stale)
        v[0] = v[0] + 1
        return int(v[0])

    def sources(self) -> list[str] | None:
        """The published script texts, None before the first reload."""
        if not self.get():
            return None
        if self._arena is None:
            blob = self._local
        else:
            blob = self._arena.read(int(self._view[1]), int(self._view[2]))
        return list(json.loads(blob.decode("utf-8")))


class KemiEngine:
    """Base class: subclasses implement new_state/has_function/invoke/describe_error."""

    lang = "kemi"
    module = "app_kemi"

    def __init__(self, cfg: Any, paths: list[str], shm: Any = None) -> None:
        """CFG: the compiled config the engine routes for; SHM: the server's ShmContext,
        where reloads are published (None: this process only)."""
        g = cfg.globals
        self.cfg = cfg
        self.paths = list(paths)
        self.reply_cb = str(g.get("kemi.reply_route_callback", "ksr_reply_route") or "")
        self.onsend_cb = str(g.get("kemi.onsend_route_callback", "ksr_onsend_route") or "")
        self.event_cb = str(g.get("kemi.event_route_callback", "") or "")
        self.generation = ScriptStore(shm)
        self.loaded_gen = 0
        self.tree: KsrTree | None = None
        self.state: Any = None
        self.rank = 0

    # ---- per-process lifecycle -----------------------------------------------------------
    def child_init(self, rank: int) -> None:
        """Create this process's interpreter state (every process except the master)."""
        self.rank = rank
        self.tree = build_ksr(self.cfg.modules)
        self.loaded_gen = self.generation.get()
        self.state = self.new_state(self.generation.sources())

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
            new = self.new_state(self.generation.sources())
        except ScriptLoadError as e:
            log.error("%s: reload failed, keeping the old script: %s", self.module, e)
            return
        self.state = new
        log.info("%s: script reloaded (generation %s)", self.module, gen)

    def request_reload(self) -> dict[str, Any]:
        """RPC: check the script(s) as they are on disk now; if they load, every process
        switches at its next message. Raises ScriptLoadError when they do not."""
        if self.tree is None:
            self.tree = build_ksr(self.cfg.modules)
        sources = self.read_sources()
        self.new_state(sources)   # validation: raises ScriptLoadError
        old = self.generation.get()
        return {"old": old, "new": self.generation.publish(sources)}

    def read_sources(self) -> list[str]:
        """The script files as they are on disk now."""
        out = []
        for path in self.paths:
            try:
                with open(path, encoding="utf-8") as fh:
                    out.append(fh.read())
            except OSError as e:
                raise ScriptLoadError(f"cannot read {path}: {e.strerror or e}") from None
        return out

    # ---- subclass interface --------------------------------------------------------------
    def new_state(self, sources: list[str] | None = None) -> Any:
        """A fresh interpreter with the script(s) loaded: SOURCES (one text per path, as
        published by a reload) or the files on disk. Raises ScriptLoadError."""
        raise NotImplementedError  # pragma: no cover - abstract

    def has_function(self, name: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def invoke(self, name: str, ctx: RouteCtx, args: tuple[Any, ...]) -> int:
        """Call script function NAME; raise ScriptExit for KSR.x.exit/drop."""
        raise NotImplementedError  # pragma: no cover - abstract

    def describe_error(self, exc: BaseException) -> str:
        """'file:line: message' (plus a short traceback) for a script error."""
        return f"{type(exc).__name__}: {exc}"  # pragma: no cover - overridden

    # ---- routing (CompiledConfig delegates here) -----------------------------------------
    def _target(self, kind: str, name: str | None) -> tuple[str | None, tuple[Any, ...]]:
        if kind == "request" or (kind == "route" and name in (None, "0")):
            return "ksr_request_route", ()
        if kind == "reply" or (kind == "onreply" and name is None):
            return self.reply_cb or None, ()
        if kind == "onsend":
            return self.onsend_cb or None, ()
        if kind == "event":
            return self._event_callback(name or ""), (name,)
        return name, ()

    def _event_callback(self, event: str) -> str | None:
        """event_route[mod:ev] -> modparam(mod, "event_callback") if the module declares and
        sets it (Kamailio's per-module KEMI event callbacks), else kemi.event_route_callback."""
        mod = self.cfg.modules.get(event.split(":", 1)[0])
        if mod is not None and "event_callback" in mod.params:
            cb = mod.get_param("event_callback")
            if cb:
                return str(cb)
        return self.event_cb or None

    def has_route(self, kind: str, name: str | None = None) -> bool:
        fname, _ = self._target(kind, name)
        if not fname:
            return False
        self.ensure_state()
        return self.has_function(fname)

    def run(self, kind: str, name: str | None, ctx: RouteCtx) -> int:
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
            log.error("KSR.route: no function %s() in the script", fname)
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
        except Exception as e:  # noqa: BLE001 - a script bug never kills the worker
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
        log.error("%s: error in %s function %s() (Call-ID %s): %s",
                  self.module, self.lang, fname, callid, self.describe_error(exc))
        msg = ctx.msg
        if kind == "request" and msg.is_request:
            ctx.dropped = True
            if msg.method != "ACK" and not ctx.replied:
                from sipcore.reply import send_stateless_reply

                send_stateless_reply(ctx, 500, "Server Internal Error")
