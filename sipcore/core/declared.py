"""Helpers for declared-only modules: the export table is complete (so `pykam -c` checks names,
arities, fixups, route types and parameters exactly), the functions are not built yet.

Runs in: the master (declarations). A declared-only module is `Module(..., implemented=False)`:
the server refuses to start with it; should one of its functions or PVs be reached anyway
(tests, a KEMI script), it raises ModuleError naming the module - it never pretends.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

from sipcore.errors import ModuleError
from sipcore.mod import ANY_ROUTE, FuncExport, Module, RouteType, RpcExport


def not_implemented(module: str, what: str, note: str) -> ModuleError:
    return ModuleError(f"module {module}: {what} is not implemented yet ({note})")


def _impl(module: str, name: str, note: str) -> Callable[..., int]:
    def impl(ctx: Any, *args: Any) -> int:
        raise not_implemented(module, f"{name}()", note)

    impl.__name__ = f"ki_{name}"
    return impl


def declare_functions(mod: Module,
                      table: Iterable[tuple[str, tuple, RouteType, str]]) -> None:
    """Add (name, args, routes, doc) entries whose impl raises ModuleError."""
    for name, args, routes, doc in table:
        mod.add_function(FuncExport(name, _impl(mod.name, name, mod.pending_note), tuple(args),
                                    routes, True, None, doc, mod.name))


def declare_params(mod: Module, table: Iterable[tuple]) -> None:
    """Add (name, type, default, doc[, multi[, inert]]) parameter entries; INERT says why a
    parameter is accepted without effect (setting it warns)."""
    for entry in table:
        name, type_, default, doc = entry[:4]
        multi = bool(entry[4]) if len(entry) > 4 else False
        inert = str(entry[5]) if len(entry) > 5 else ""
        mod.param(name, type_, default, multi=multi, doc=doc, inert=inert)


def pending_pv(mod: Module, name: str, doc: str,
               inner_ok: Optional[Callable[[Optional[str]], None]] = None) -> None:
    """A PV class that parses (so configs check) but raises ModuleError when read or set."""

    def factory(inner: Optional[str]) -> Any:
        from sipcore.pv.spec import PvSpec

        if inner_ok is not None:
            inner_ok(inner)
        text = f"${name}({inner})" if inner else f"${name}"

        class _PendingPv(PvSpec):
            writable = True

            def get(self, ctx: Any) -> Any:
                raise not_implemented(mod.name, text, mod.pending_note)

            def set(self, ctx: Any, value: Any) -> None:
                raise not_implemented(mod.name, text, mod.pending_note)

        spec = _PendingPv()
        spec.text = text
        return spec

    mod.pv(name, factory, doc=doc)


def declare_rpcs(mod: Module, table: Iterable[tuple[str, str]]) -> None:
    for name, doc in table:
        def handler(*_args: Any, _n: str = name) -> Any:
            from sipcore.errors import RpcFault

            raise RpcFault(500, f"{_n}: module {mod.name} is not implemented yet "
                                f"({mod.pending_note})")

        mod.rpcs[name] = RpcExport(name, handler, doc, "")


__all__ = ["declare_functions", "declare_params", "declare_rpcs", "pending_pv",
           "not_implemented", "ANY_ROUTE"]
