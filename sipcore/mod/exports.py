"""Declaration types for module exports: one table per module (Kamailio `module_exports`).

The cfg compiler, KEMI, RPC and the docs generator all read these declarations; nothing else
describes a module's surface.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Optional

from sipcore.route.ctx import (  # noqa: F401  (re-exported: the module-author vocabulary)
    ANY_ROUTE,
    BRANCH_ROUTE,
    EVENT_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    ONSEND_ROUTE,
    REQUEST_ROUTE,
    RouteType,
)


class Fx(Enum):
    """How the compiler fixes up one cfg argument before the call (Kamailio fixups).

    STR     static string (no PVs allowed)                       -> str
    INT     static integer (a string holding an int is accepted) -> int
    SPVE    string with embedded PVs ("$rU@$fd"), evaluated per call -> str   (fixup_spve)
    IGP     integer, or a PV/format evaluating to an integer     -> int   (fixup_igp)
    PVAR    a pseudo-variable spec (writable if the function writes) -> PvSpec object
    REGEX   static POSIX extended regex                          -> compiled re.Pattern
    ROUTE   a route name (checked to exist when routes are known) -> str
    FLAG    static flag number 0..31 (ints or #!define names)    -> int
    ANY     an expression of any type, evaluated per call        -> str | int | None
    """

    STR = "str"
    INT = "int"
    SPVE = "spve"
    IGP = "igp"
    PVAR = "pvar"
    REGEX = "regex"
    ROUTE = "route"
    FLAG = "flag"
    ANY = "any"


@dataclass(frozen=True)
class Custom:
    """A module-specific fixup: `parse(text: str) -> Any` runs once at compile time on a static
    argument and raises ValueError with a message on bad input (reported with file:line:col).
    If `dynamic` is True and the argument contains PVs, the string is evaluated per call and
    `parse` runs at call time instead (errors then make the function return -1)."""

    parse: Callable[[str], Any]
    dynamic: bool = False
    name: str = "custom"


ArgKind = "Fx | Custom"


@dataclass
class FuncExport:
    """One cfg function of a module. Overloads by arity are separate FuncExports with one name.

    impl(ctx, *args) -> int  — ctx is sipcore.route.ctx.RouteCtx; args are the fixed-up values
    in declaration order. >0 true, <0 false, 0 stops the script.
    """

    name: str
    impl: Callable[..., int]
    args: tuple = ()
    routes: RouteType = ANY_ROUTE
    kemi: bool = True
    kemi_name: Optional[str] = None
    doc: str = ""
    module: str = ""


@dataclass
class ParamExport:
    """A module parameter set with modparam("mod", "name", value)."""

    name: str
    type: type                  # int or str (int params accept "123"; str params accept ints)
    default: Any = None
    multi: bool = False         # repeatable: value is a list of every setting in order
    validator: Optional[Callable[[Any], Any]] = None  # may normalise; raises ValueError
    doc: str = ""
    # accepted for compatibility but without effect in PyKam: why (setting it warns at
    # `pykam -c` and at start-up; the docs list it)
    inert: str = ""


@dataclass
class RpcExport:
    name: str
    handler: Callable[..., Any]
    doc: str = ""
    params: str = ""


@dataclass
class PvExport:
    """A pseudo-variable class provided by a module: `$name` or `$name(inner)`.

    factory(inner: str | None) -> sipcore.pv.PvSpec (raises ValueError on a bad inner name).
    """

    name: str
    factory: Callable[..., Any]
    doc: str = ""


@dataclass
class TransformExport:
    """A transformation class `{cls.op,...}` provided by a module (tr class name)."""

    name: str
    factory: Callable[..., Any]
    doc: str = ""


@dataclass
class ModuleState:
    """Runtime-visible facts about a module once loaded."""

    params: dict[str, Any] = field(default_factory=dict)
    initialised: bool = False
