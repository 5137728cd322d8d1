"""loadmodule: find a module package by Kamailio name and keep the loaded set in order.

Runs in: the master, at configuration load (and in tests). Only this file imports `modules.*`.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
from typing import Iterator, Optional

from sipcore.errors import ModuleError
from sipcore.mod import FuncExport, Module
from sipcore.mod.context import CoreContext

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def module_name_from_spec(spec: str) -> str:
    """`"tm.so"`, `"tm"`, `"/usr/lib/kamailio/modules/tm.so"` -> `"tm"`."""
    base = os.path.basename(spec.strip())
    if base.endswith(".so"):
        base = base[:-3]
    return base


def import_module_decl(name: str) -> Module:
    """Import `modules.<name>` and return its `mod` declaration, or raise ModuleError."""
    if not _NAME_RE.match(name):
        raise ModuleError(f"invalid module name \"{name}\"")
    if importlib.util.find_spec(f"modules.{name}") is None:
        raise ModuleError(f"module \"{name}\" not found (no modules/{name} package)")
    pkg = importlib.import_module(f"modules.{name}")  # errors inside the module propagate
    mod = getattr(pkg, "mod", None)
    if not isinstance(mod, Module):
        raise ModuleError(f"modules/{name} does not declare `mod = Module(...)`")
    return mod


def available_modules() -> list[str]:
    import modules

    base = os.path.dirname(modules.__file__)
    return sorted(d for d in os.listdir(base)
                  if os.path.isfile(os.path.join(base, d, "__init__.py")))


class ModuleRegistry:
    """The modules loaded by one configuration, in load order, plus the core function table."""

    def __init__(self, core: Optional[Module] = None) -> None:
        """CORE: the core's own function table (sipcore.core.funcs.core_module: forward,
        setflag, ...), looked up before the modules'."""
        self._mods: dict[str, Module] = {}
        self.core: Module = core if core is not None else Module("core")

    def load(self, spec: str) -> Module:
        name = module_name_from_spec(spec)
        if name in self._mods:
            return self._mods[name]
        mod = import_module_decl(name)
        mod.reset_params()
        self._mods[name] = mod
        return mod

    def get(self, name: str) -> Optional[Module]:
        return self._mods.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._mods

    def __iter__(self) -> Iterator[Module]:
        return iter(self._mods.values())

    def names(self) -> list[str]:
        return list(self._mods)

    def match(self, pattern: str) -> list[Module]:
        """modparam module names are regular expressions ("usrloc|registrar")."""
        if pattern in self._mods:
            return [self._mods[pattern]]
        try:
            rx = re.compile(f"^(?:{pattern})$")
        except re.error:
            return []
        return [m for n, m in self._mods.items() if rx.match(n)]

    def pre_script_callbacks(self) -> list:
        """Request pre-script callbacks of every loaded module, in load order."""
        return [cb for m in self._mods.values() for cb in m.pre_script_cbs]

    def response_callbacks(self) -> list:
        """Reply hooks of every loaded module (tm's transaction matching), in load order."""
        return [cb for m in self._mods.values() for cb in m.response_cbs]

    # ---- lifecycle (Kamailio init_modules / init_child / destroy_modules) ------------------
    def init_all(self, base: CoreContext) -> None:
        """Master, before fork: give every module its context and run its on_init hooks, in
        loadmodule order."""
        for m in self._mods.values():
            m.context = base.for_module(m)
        for m in self._mods.values():
            for hook in m.init_hooks:
                hook(m.context)

    def child_init_all(self, rank: int) -> None:
        """Every process after fork (and the master with PROC_INIT/PROC_MAIN): the
        on_child_init hooks with the process RANK, in loadmodule order."""
        for m in self._mods.values():
            for hook in m.child_init_hooks:
                hook(m.context, rank)

    def destroy_all(self) -> None:
        """Master at stop, after every child is reaped: the on_destroy hooks."""
        for m in self._mods.values():
            for hook in m.destroy_hooks:
                try:
                    hook(m.context)
                except Exception as exc:    # the others still get to save their state
                    log.error("module %s destroy: %s: %s", m.name, type(exc).__name__, exc)

    def find_function(self, name: str) -> list[FuncExport]:
        """Every overload of cfg function NAME: core first, then modules in load order."""
        out = list(self.core.functions.get(name, ()))
        for m in self._mods.values():
            out.extend(m.functions.get(name, ()))
        return out

    def find_pv(self, name: str):
        for m in self._mods.values():
            if name in m.pvs:
                return m.pvs[name]
        return None

    def find_transform(self, name: str):
        for m in self._mods.values():
            if name in m.transforms:
                return m.transforms[name]
        return None
