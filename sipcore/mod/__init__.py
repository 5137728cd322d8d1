"""The author-facing module API: one `Module` declaration per module package.

Example (modules/sl/__init__.py):

    from sipcore.mod import Module, Fx, REQUEST_ROUTE, FAILURE_ROUTE
    mod = Module("sl", summary="Stateless replies")
    mod.param("default_code", int, 500, doc="...")

    @mod.function("sl_send_reply", args=(Fx.IGP, Fx.SPVE), routes=REQUEST_ROUTE | FAILURE_ROUTE)
    def ki_sl_send_reply(ctx, code: int, reason: str) -> int: ...

Runs in: the master (loading, modparam, mod_init) and every child (child_init, functions).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from sipcore.errors import ModuleError
from sipcore.mod.context import CoreContext, ModContext  # noqa: F401  (re-exported)
from sipcore.mod.exports import (  # noqa: F401  (re-exported)
    ANY_ROUTE,
    BRANCH_ROUTE,
    EVENT_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    ONSEND_ROUTE,
    REQUEST_ROUTE,
    Custom,
    FuncExport,
    Fx,
    ParamExport,
    PvExport,
    RouteType,
    RpcExport,
    TransformExport,
)

_UNSET = object()


class Params:
    """Attribute and item access to a module's parameter values (`mod.p.fr_timer`)."""

    def __init__(self, owner: "Module") -> None:
        object.__setattr__(self, "_owner", owner)

    def __getattr__(self, name: str) -> Any:
        return self._owner.get_param(name)

    def __getitem__(self, name: str) -> Any:
        return self._owner.get_param(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("module parameters are set with modparam(), not assigned")


class Module:
    """Declaration of one module: params, functions, PVs, transformations, RPCs, hooks, API.

    `implemented=False` marks a module whose export table is declared (so configs that load it
    check with `pykam -c`) but whose functions are not built yet: the server refuses to start
    with it and says so, instead of running functions that do nothing.
    """

    def __init__(self, name: str, summary: str = "", depends: tuple[str, ...] = (),
                 implemented: bool = True, pending_note: str = "") -> None:
        self.name = name
        self.summary = summary
        self.depends = depends
        self.implemented = implemented
        self.pending_note = pending_note
        self.params: dict[str, ParamExport] = {}
        self.functions: dict[str, list[FuncExport]] = {}
        self.pvs: dict[str, PvExport] = {}
        self.transforms: dict[str, TransformExport] = {}
        self.rpcs: dict[str, RpcExport] = {}
        self.event_routes: list[str] = []
        self.api: Any = None
        self.init_hooks: list[Callable[[ModContext], None]] = []
        self.child_init_hooks: list[Callable[[ModContext, int], None]] = []
        self.destroy_hooks: list[Callable[[ModContext], None]] = []
        # the running server as this module sees it: set by ModuleRegistry.init_all() before
        # the on_init hooks run (None while only declared, e.g. in `pykam -c`)
        self.context: Optional[ModContext] = None
        self.pre_script_cbs: list[Callable[[Any], bool]] = []
        self.response_cbs: list[Callable[[Any], bool]] = []
        self._values: dict[str, Any] = {}
        self.p = Params(self)
        # Kamailio's cfg framework group of the module: param name -> applied in a process
        # when `cfg.seti/cfg.sets MODULE NAME VALUE` changed it (see runtime_cfg())
        self.cfg_group: list[str] = []
        self.cfg_apply: Optional[Callable[[str, Any], None]] = None

    # ---- declarations ------------------------------------------------------------------
    def param(self, name: str, type_: type, default: Any = None, *, multi: bool = False,
              validator: Optional[Callable[[Any], Any]] = None, doc: str = "",
              inert: str = "") -> ParamExport:
        """Declare modparam NAME. INERT: accepted for compatibility but without effect, and
        why (setting it warns when the config is checked and at start-up)."""
        if name in self.params:
            raise ModuleError(f"module {self.name}: parameter {name} declared twice")
        pe = ParamExport(name, type_, default, multi, validator, doc, inert)
        self.params[name] = pe
        return pe

    def runtime_cfg(self, apply: Callable[[str, Any], None], *names: str) -> None:
        """Declare the module's cfg group (Kamailio's cfg framework): params NAMES can be
        changed at run time with `cfg.seti MODULE NAME VALUE` (or cfg.sets); every process
        calls APPLY(name, value) when it sees the new value (between messages)."""
        for n in names:
            if n not in self.params:
                raise ModuleError(f"module {self.name}: cfg group names unknown param {n}")
        self.cfg_group = list(names)
        self.cfg_apply = apply

    def function(self, name: str, args: tuple = (), routes: RouteType = ANY_ROUTE, *,
                 kemi: bool = True, kemi_name: Optional[str] = None, doc: str = ""
                 ) -> Callable[[Callable[..., int]], Callable[..., int]]:
        """Decorator: export `impl(ctx, *args) -> int` as cfg function NAME with ARGS fixups."""

        def deco(fn: Callable[..., int]) -> Callable[..., int]:
            self.add_function(FuncExport(name, fn, tuple(args), routes, kemi, kemi_name,
                                         doc or (fn.__doc__ or "").strip(), self.name))
            return fn

        return deco

    def add_function(self, fe: FuncExport) -> None:
        fe.module = self.name
        overloads = self.functions.setdefault(fe.name, [])
        if any(len(o.args) == len(fe.args) for o in overloads):
            raise ModuleError(f"module {self.name}: {fe.name}/{len(fe.args)} declared twice")
        overloads.append(fe)

    def pv(self, name: str, factory: Callable[..., Any], doc: str = "") -> None:
        self.pvs[name] = PvExport(name, factory, doc)

    def transform(self, name: str, factory: Callable[..., Any], doc: str = "") -> None:
        self.transforms[name] = TransformExport(name, factory, doc)

    def rpc(self, name: str, handler: Callable[..., Any], doc: str = "", params: str = "") -> None:
        self.rpcs[name] = RpcExport(name, handler, doc, params)

    def provides_api(self, api: Any) -> None:
        self.api = api

    def on_init(self, fn: Callable[[ModContext], None]) -> Callable[[ModContext], None]:
        """Master, pre-fork, once, after every modparam: fn(ctx), ctx the ModContext."""
        self.init_hooks.append(fn)
        return fn

    def on_child_init(self, fn: Callable[[ModContext, int], None]
                      ) -> Callable[[ModContext, int], None]:
        """Every process after fork (and ranks PROC_INIT/PROC_MAIN in the master):
        fn(ctx, rank)."""
        self.child_init_hooks.append(fn)
        return fn

    def pre_script(self, fn: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """Kamailio PRE_SCRIPT_CB|REQUEST_CB: fn(ctx) runs in a SIP worker on every received
        request before request_route; returning False drops the request (e.g. sl's
        absorption of ACKs to its own replies)."""
        self.pre_script_cbs.append(fn)
        return fn

    def response(self, fn: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """Kamailio module `response_f`: fn(ctx) runs in a SIP worker for every received reply,
        after the core reply_route; returning True means the module consumed the reply (tm
        matched it to a transaction), so the core does not relay it statelessly."""
        self.response_cbs.append(fn)
        return fn

    def on_destroy(self, fn: Callable[[ModContext], None]) -> Callable[[ModContext], None]:
        """Master, at shutdown, after every child is reaped: fn(ctx)."""
        self.destroy_hooks.append(fn)
        return fn

    # ---- parameter values --------------------------------------------------------------
    def set_param(self, name: str, value: Any) -> None:
        """modparam(): validates type and value; raises ValueError with a user message."""
        pe = self.params.get(name)
        if pe is None:
            raise KeyError(name)
        if pe.type is int:
            if isinstance(value, str):
                try:
                    value = int(value.strip(), 0)
                except ValueError:
                    raise ValueError(f"parameter {name} of module {self.name} expects an "
                                     f"integer, got \"{value}\"") from None
        elif pe.type is str:
            if isinstance(value, int):
                value = str(value)
        if pe.validator is not None:
            value = pe.validator(value)
        if pe.multi:
            self._values.setdefault(name, []).append(value)
        else:
            self._values[name] = value

    def get_param(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        pe = self.params.get(name)
        if pe is None:
            raise AttributeError(f"module {self.name} has no parameter {name}")
        return list(pe.default or ()) if pe.multi else pe.default

    def reset_params(self) -> None:
        """Forget modparam values (tests load many configs in one process)."""
        self._values.clear()

    def lookup(self, name: str, nargs: int) -> Optional[FuncExport]:
        for fe in self.functions.get(name, ()):
            if len(fe.args) == nargs:
                return fe
        return None


def bind_api(registry: "Any", name: str, by: str) -> Any:
    """Return the API object of loaded module NAME for module BY, or raise ModuleError."""
    mod = registry.get(name)
    if mod is None or mod.api is None:
        raise ModuleError(f"module {by} needs loadmodule \"{name}\"")
    return mod.api
