"""What the core hands a module: `ModContext`, the one way in to the running server.

Runs in: the master builds one `CoreContext` before mod_init (the server in sipcore.cli.server,
the in-process harness in sipcore.testing) and gives each module its `ModContext` in
`on_init`; children inherit it through fork, and `on_child_init`/`on_destroy` get the same
object. A module keeps it in its own state for the code that runs outside a hook (functions
get the message's RouteCtx, whose `core` is the same node; timer callbacks and RPC handlers
use the kept context).

A module takes from it: the compiled config (routes to run, globals), the node (`core`: listen
sockets, myself, send), the shared-memory context, the timer API, and other modules' APIs
through `bind_api()`; never process globals of the core or another module's private names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from sipcore.errors import ModuleError

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.mod import Module


@dataclass
class CoreContext:
    """The server's side of every ModContext."""

    cfg: Any            # sipcore.cfg.CompiledConfig: routes (run/has_route), globals, modules
    core: Any           # sipcore.net.node.CoreApi: listen sockets, aliases, myself, send
    shm: Any = None     # sipcore.shm.ShmContext: the server's segment (the harness's own)
    timers: Any = None  # the timer API: sipcore.timer (register_timer/handler, schedule)
    rpc: Any = None     # sipcore.rpc.env.RpcEnv: what RPC handlers read (jsonrpcs' registry)

    def for_module(self, module: "Module") -> "ModContext":
        return ModContext(module, self)


class ModContext:
    """One module's view of the server (see the module docstring)."""

    __slots__ = ("module", "base")

    def __init__(self, module: "Module", base: CoreContext) -> None:
        self.module = module
        self.base = base

    @property
    def cfg(self) -> Any:
        return self.base.cfg

    @property
    def core(self) -> Any:
        return self.base.core

    @property
    def shm(self) -> Any:
        return self.base.shm

    @property
    def timers(self) -> Any:
        return self.base.timers

    @property
    def rpc(self) -> Any:
        return self.base.rpc

    @property
    def params(self) -> Any:
        """This module's parameter values (`ctx.params.fr_timer`)."""
        return self.module.p

    @property
    def globals(self) -> dict[str, Any]:
        """The core's cfg globals (typed values)."""
        return self.base.cfg.globals if self.base.cfg is not None else {}

    def require_shm(self) -> Any:
        """The shared-memory context, or ModuleError when the server runs without one."""
        if self.base.shm is None:
            raise ModuleError(f"module {self.module.name} needs the shared memory segment")
        return self.base.shm

    def has_module(self, name: str) -> bool:
        cfg = self.base.cfg
        return cfg is not None and name in cfg.modules

    def bind_api(self, name: str) -> Any:
        """The API object of loaded module NAME (Kamailio's load_<name>_api), or ModuleError
        asking for its loadmodule."""
        mod = self.base.cfg.modules.get(name) if self.base.cfg is not None else None
        if mod is None or mod.api is None:
            raise ModuleError(f"module {self.module.name} needs loadmodule \"{name}\"")
        return mod.api

    def api_or_none(self, name: str) -> Optional[Any]:
        """The API of module NAME when it is loaded (an optional binding), else None."""
        mod = self.base.cfg.modules.get(name) if self.base.cfg is not None else None
        return mod.api if mod is not None else None

    def has_route(self, kind: str, name: Optional[str]) -> bool:
        cfg = self.base.cfg
        return cfg is not None and cfg.has_route(kind, name)

    def run_route(self, kind: str, name: Optional[str], ctx: Any) -> int:
        """Run route KIND[NAME] of the script on the RouteCtx CTX; its return value."""
        return int(self.base.cfg.run(kind, name, ctx))

    def run_event_route(self, name: str, kind: str = "event") -> Optional[int]:
        """Run KIND[NAME] (an event_route by default) on a faked request, as Kamailio does
        for routes not triggered by a message; None when the script has no such route."""
        from sipcore.route.event import run_route

        return run_route(self.base.cfg, self.base.core, kind, name)
