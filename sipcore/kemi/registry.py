"""Build the KSR tree from the export tables (Kamailio's sr_kemi_t arrays, generated).

Runs in: every routing process, after fork (engines build it in child_init). Shared state:
none; every KSR callable acts on CURRENT.ctx, the message the engine is running a route for.

Argument conversion (Kamailio semantics for KEMI parameters):
  Fx.STR / SPVE / ROUTE / ANY   the string is used literally (KEMI does not expand PVs)
  Fx.INT / IGP / FLAG           a number (a digit string is accepted)
  Fx.REGEX                      compiled once per pattern text (POSIX ERE, case-insensitive)
  Fx.PVAR                       parsed with sipcore.pv.cached_pv
  Custom(parse)                 parse(str) once per distinct text; a bad value logs, returns -1
KSR.x.modf("fname", ...) calls any native function by name with string arguments and applies
the cfg fixups (so there SPVE strings *are* expanded, as Kamailio's modf does).

Return values: module functions return their raw int (0 does not stop a KEMI script); the core
functions Kamailio declares boolean (flags, is_*, seturi...) return a language boolean.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sipcore.cfg.regex import compile_posix
from sipcore.mod.exports import ANY_ROUTE, Custom, FuncExport, Fx
from sipcore.pv import PvError, cached_pv, parse_format

log = logging.getLogger(__name__)


class _Current:
    """The message being routed in this process (one at a time) and the running engine."""

    __slots__ = ("ctx", "engine", "registry")

    def __init__(self) -> None:
        self.ctx: Any = None
        self.engine: Any = None
        self.registry: Any = None


CURRENT = _Current()

Conv = Callable[[Any], Any]
KsrFunc = Callable[..., Any]


class KemiArgError(ValueError):
    """A KEMI argument that the function's fixup refuses (logged, the call returns -1)."""


# Core functions that Kamailio's kemi.c declares SR_KEMIP_BOOL (language boolean results).
BOOL_CORE = frozenset({
    "setflag", "resetflag", "isflagset", "force_rport", "add_local_rport", "seturi",
    "setuser", "sethost", "rewriteuri", "rewriteuser", "rewritehost", "rewriteport",
    "rewritehostport", "rewriteuserpass", "rewritehostporttrans", "prefix", "strip",
    "strip_tail", "userphone", "revert_uri", "set_forward_close", "set_forward_no_connect",
    "set_reply_close", "set_reply_no_connect", "force_send_socket",
})
# Kamailio KEMI names for core functions whose cfg name differs.
CORE_KEMI_ALIASES = {"seturi": "rewriteuri", "setuser": "rewriteuser", "sethost": "rewritehost"}

# KSR namespace of modules whose name clashes with a core group (Kamailio: pv -> KSR.pvx).
KEMI_MODULE_NAMES = {"pv": "pvx", "hdr": "hdrx", "x": "xx"}

_RX_FLAGS = re.IGNORECASE | re.MULTILINE
_CACHE_MAX = 512


def _bounded(cache: dict[Any, Any]) -> dict[Any, Any]:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    return cache


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)
    try:
        return int(str(v).strip(), 0)
    except ValueError:
        raise KemiArgError(f"expected an integer, got {v!r}") from None


def _to_str(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return "" if v is None else str(v)


def _any(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def converter(kind: Any, registry: Any, modf: bool = False) -> Conv:
    """The KEMI (or, with MODF, the native-fixup) conversion for one declared argument."""
    if isinstance(kind, Custom):
        cache: dict[str, Any] = {}
        parse = kind.parse

        def conv_custom(v: Any) -> Any:
            text = _to_str(v)
            if modf and "$" in text and kind.dynamic:
                text = _format(text, registry).eval(CURRENT.ctx)
                return parse(text)
            try:
                return cache[text]
            except KeyError:
                pass
            try:
                val = parse(text)
            except ValueError as e:
                raise KemiArgError(str(e)) from None
            _bounded(cache)[text] = val
            return val
        return conv_custom
    if kind in (Fx.INT, Fx.FLAG):
        return _to_int
    if kind is Fx.IGP:
        if not modf:
            return _to_int

        def conv_igp(v: Any) -> int:
            if isinstance(v, str) and "$" in v:
                v = _format(v, registry).eval(CURRENT.ctx)
            return _to_int(v)
        return conv_igp
    if kind is Fx.SPVE and modf:
        def conv_spve(v: Any) -> str:
            text = _to_str(v)
            return _format(text, registry).eval(CURRENT.ctx) if "$" in text else text
        return conv_spve
    if kind in (Fx.STR, Fx.SPVE, Fx.ROUTE):
        return _to_str
    if kind is Fx.ANY:
        return _any
    if kind is Fx.REGEX:
        rx_cache: dict[str, Any] = {}

        def conv_rx(v: Any) -> Any:
            text = _to_str(v)
            rx = rx_cache.get(text)
            if rx is None:
                try:
                    rx = compile_posix(text, _RX_FLAGS)
                except re.error as e:
                    raise KemiArgError(f"bad regular expression {text!r}: {e}") from None
                _bounded(rx_cache)[text] = rx
            return rx
        return conv_rx
    if kind is Fx.PVAR:
        def conv_pv(v: Any) -> Any:
            try:
                return cached_pv(_to_str(v), registry)
            except PvError as e:
                raise KemiArgError(f"bad pseudo-variable {v!r}: {e}") from None
        return conv_pv
    raise ValueError(f"unsupported argument kind {kind!r}")


_FMT_CACHE: dict[tuple[str, int], Any] = {}


def _format(text: str, registry: Any) -> Any:
    key = (text, id(registry))
    fmt = _FMT_CACHE.get(key)
    if fmt is None:
        try:
            fmt = parse_format(text, registry)
        except PvError as e:
            raise KemiArgError(f"bad format {text!r}: {e}") from None
        _bounded(_FMT_CACHE)[key] = fmt
    return fmt


def make_caller(fe: FuncExport, registry: Any, label: str, boolean: bool = False,
                modf: bool = False) -> KsrFunc:
    """A callable taking the script's arguments, converting them as FE's fixups say, and
    running fe.impl on CURRENT.ctx. Route types are checked at call time (-1 and a log line
    when the function is not allowed in the running route)."""
    impl = fe.impl
    convs = tuple(converter(a, registry, modf) for a in fe.args)
    n = len(convs)
    allowed = int(fe.routes)
    check_route = allowed != int(ANY_ROUTE)
    cur = CURRENT

    def call(*args: Any) -> Any:
        ctx = cur.ctx
        if len(args) != n:
            raise TypeError(f"{label}() takes {n} argument{'s' if n != 1 else ''}, "
                            f"{len(args)} given")
        if check_route and not allowed & ctx.route_type.value:
            log.error("%s() is not allowed in %s route", label, ctx.route_name or 'this')
            return False if boolean else -1
        try:
            if n == 0:
                rc = impl(ctx)
            elif n == 1:
                rc = impl(ctx, convs[0](args[0]))
            elif n == 2:
                rc = impl(ctx, convs[0](args[0]), convs[1](args[1]))
            else:
                rc = impl(ctx, *[c(a) for c, a in zip(convs, args)])
        except KemiArgError as e:
            log.error("%s(): %s", label, e)
            return False if boolean else -1
        ctx.rc = rc
        return rc > 0 if boolean else rc

    call.__name__ = label.rsplit(".", 1)[-1]
    call.__qualname__ = label
    call.__doc__ = fe.doc
    return call


def by_arity(label: str, variants: dict[int, KsrFunc]) -> KsrFunc:
    """One KSR name for overloads that differ only in the number of arguments."""
    if len(variants) == 1:
        return next(iter(variants.values()))
    counts = ", ".join(str(n) for n in sorted(variants))

    def dispatch(*args: Any) -> Any:
        fn = variants.get(len(args))
        if fn is None:
            raise TypeError(f"{label}() takes {counts} arguments, {len(args)} given")
        return fn(*args)

    dispatch.__name__ = label.rsplit(".", 1)[-1]
    dispatch.__qualname__ = label
    dispatch.__doc__ = " / ".join(f.__doc__ or "" for f in variants.values())
    return dispatch


@dataclass
class KsrEntry:
    """One native export and where KEMI reaches it (tests, the stub generator, docs)."""

    module: str                 # "core" or the module name
    name: str                   # cfg function name
    nargs: int
    path: str                   # "KSR.sl.sl_send_reply", "KSR.setflag" or "KSR.x.modf"
    arg_kinds: tuple = ()
    doc: str = ""


@dataclass
class KsrTree:
    """Everything a script can call: KSR.<core>, KSR.pv/hdr/x and KSR.<module>.<func>."""

    core: dict[str, KsrFunc] = field(default_factory=dict)
    modules: dict[str, dict[str, KsrFunc]] = field(default_factory=dict)
    pv: dict[str, KsrFunc] = field(default_factory=dict)
    hdr: dict[str, KsrFunc] = field(default_factory=dict)
    x: dict[str, KsrFunc] = field(default_factory=dict)
    entries: list[KsrEntry] = field(default_factory=list)

    def lookup(self, path: str) -> KsrFunc | None:
        """`"sl.sl_send_reply"`, `"pv.get"`, `"is_INVITE"` -> the callable."""
        parts = path.removeprefix("KSR.").split(".")
        if len(parts) == 1:
            return self.core.get(parts[0])
        group = {"pv": self.pv, "hdr": self.hdr, "x": self.x}.get(parts[0])
        if group is None:
            group = self.modules.get(parts[0], {})
        return group.get(parts[1])


def _add_module(tree: KsrTree, mod: Any, registry: Any, target: dict[str, KsrFunc],
                prefix: str, boolean_names: frozenset[str] = frozenset()) -> None:
    grouped: dict[str, dict[int, KsrFunc]] = {}
    for fname, overloads in mod.functions.items():
        for fe in overloads:
            if not fe.kemi:
                tree.entries.append(KsrEntry(mod.name, fname, len(fe.args), "KSR.x.modf",
                                             tuple(fe.args), fe.doc))
                continue
            kname = fe.kemi_name or fe.name
            label = f"{prefix}{kname}"
            fn = make_caller(fe, registry, label, boolean=kname in boolean_names)
            grouped.setdefault(kname, {})[len(fe.args)] = fn
            tree.entries.append(KsrEntry(mod.name, fname, len(fe.args), label,
                                         tuple(fe.args), fe.doc))
    for kname, variants in grouped.items():
        target[kname] = by_arity(f"{prefix}{kname}", variants)


def build_ksr(registry: Any) -> KsrTree:
    """The KSR tree for the modules loaded by one configuration (plus the core)."""
    from sipcore.kemi import core as kcore

    CURRENT.registry = registry
    tree = KsrTree()
    _add_module(tree, registry.core, registry, tree.core, "KSR.", BOOL_CORE)
    for alias, target in CORE_KEMI_ALIASES.items():
        fe = registry.core.lookup(target, 1)
        if fe is not None:
            tree.core[alias] = make_caller(fe, registry, f"KSR.{alias}", boolean=True)
    for mod in registry:
        funcs: dict[str, KsrFunc] = {}
        ns = KEMI_MODULE_NAMES.get(mod.name, mod.name)
        _add_module(tree, mod, registry, funcs, f"KSR.{ns}.")
        tree.modules[ns] = funcs
    kcore.add_core(tree, registry)
    return tree


_MODF_CACHE: dict[tuple[str, int, int], KsrFunc] = {}


def call_native(name: str, *args: Any) -> Any:
    """KSR.x.modf: run native function NAME (any module, also those without a KEMI export)
    with string arguments through its cfg fixups; -1 and a log line if there is no such
    function with that many arguments."""
    registry = CURRENT.registry
    key = (name, len(args), id(registry))
    fn = _MODF_CACHE.get(key)
    if fn is None:
        fe = next((f for f in registry.find_function(name) if len(f.args) == len(args)), None)
        if fe is None:
            log.error("KSR.x.modf: no function %s() with %s arguments", name, len(args))
            return -1
        fn = make_caller(fe, registry, f"KSR.x.modf({name})", modf=True)
        _bounded(_MODF_CACHE)[key] = fn
    return fn(*args)
