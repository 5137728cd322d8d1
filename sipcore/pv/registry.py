"""Name -> pseudo-variable class table for the core PVs, and the hook for module PVs.

Runs in: the master at import and cfg compile time (read-only afterwards). Core PV files
(msgpv.py, netpv.py, miscpv.py, vars.py) register here when `sipcore.pv` is imported; module
classes come from `Module.pv(name, factory)` through the ModuleRegistry passed to parse_pv.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Optional

from sipcore.pv.errors import PvError
from sipcore.pv.spec import PvSpec


class Inner(enum.Enum):
    """Whether a class takes the `(inner name)` part."""

    NONE = "none"          # $ru
    REQUIRED = "required"  # $hdr(From)
    OPTIONAL = "optional"  # $af / $af(name)


# factory(inner_name_or_None, modreg) -> PvSpec; raises PvError on a bad inner name.
CoreFactory = Callable[[Optional[str], Any], PvSpec]


@dataclass(frozen=True, slots=True)
class PvClass:
    name: str
    factory: CoreFactory
    inner: Inner = Inner.NONE
    dyn_name: bool = False    # inner name may contain PVs, evaluated per message ($avp($var(n)))
    doc: str = ""


_CLASSES: dict[str, PvClass] = {}


def register(name: str, factory: CoreFactory, inner: Inner = Inner.NONE, *,
             dyn_name: bool = False, doc: str = "", aliases: tuple[str, ...] = ()) -> None:
    """Add a core PV class (and its aliases); a duplicate name is a programming error."""
    for n in (name, *aliases):
        if n in _CLASSES:
            raise PvError(f"pseudo-variable class ${n} registered twice")
        _CLASSES[n] = PvClass(n, factory, inner, dyn_name, doc)


def lookup(name: str, modreg: Any = None) -> Optional[PvClass]:
    """The class for NAME: core first, then the loaded modules (Module.pv exports)."""
    cls = _CLASSES.get(name)
    if cls is not None or modreg is None:
        return cls
    exp = modreg.find_pv(name)
    if exp is None:
        return None
    factory = exp.factory

    def _module_factory(inner: Optional[str], _modreg: Any) -> PvSpec:
        try:
            # a factory marked `wants_modreg = True` also gets the module registry, so the
            # PVs inside its name ($sht(t=>$fU-$shtinc(x=>y))) may be module PVs too
            spec = (factory(inner, _modreg) if getattr(factory, "wants_modreg", False)
                    else factory(inner))
        except PvError:
            raise
        except ValueError as e:
            raise PvError(str(e)) from None
        if not isinstance(spec, PvSpec):
            raise PvError(f"module pseudo-variable ${name} factory returned {type(spec)!r}")
        return spec

    # Module classes get the raw inner text and parse dynamic parts themselves.
    return PvClass(name, _module_factory, Inner.OPTIONAL, False, exp.doc)


def core_names() -> list[str]:
    return sorted(_CLASSES)


def is_core_name(name: str) -> bool:
    return name in _CLASSES
