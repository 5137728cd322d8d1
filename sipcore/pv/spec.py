"""The compiled pseudo-variable object (PvSpec) and its building blocks.

Runs in: the master (built once at cfg compile time) and SIP workers (`get`/`set` per message).
No shared state here; containers live in vars.py / shv.py.

Value model (Kamailio pv_value_t): a PV yields `str`, `int`, or `None` for `$null`.
Hot path rule: everything that can be decided from the PV text is decided when the spec is
built, so `get(ctx)` is a couple of attribute reads and a call.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from sipcore.pv.errors import PvError

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.route.ctx import RouteCtx

PvValue = Union[str, int, None]
Getter = Callable[["RouteCtx"], PvValue]
Setter = Callable[["RouteCtx", PvValue], None]


class PvSpec:
    """A parsed pseudo-variable: `get(ctx)`, `set(ctx, value)`, `writable`, `text`.

    Subclasses override `get` (and `set` + `writable=True` when assignable). Classes that
    accept `$(name(x)[i])` override `with_index`.
    """

    writable: bool = False
    text: str = ""

    def get(self, ctx: "RouteCtx") -> PvValue:  # pragma: no cover - abstract
        raise NotImplementedError

    def set(self, ctx: "RouteCtx", value: PvValue) -> None:
        raise PvError(f"read only pseudo-variable {self.text or type(self).__name__}")

    def with_index(self, idx: "Index") -> "PvSpec":
        raise PvError(f"pseudo-variable {self.text or type(self).__name__} "
                      f"does not take an index")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.text}>"


class FuncPv(PvSpec):
    """A PV made of a getter (and optional setter) chosen at parse time.

    The functions are stored as instance attributes, so `spec.get(ctx)` calls the getter
    directly with no extra dispatch.
    """

    def __init__(self, getter: Getter, setter: Optional[Setter] = None, text: str = "") -> None:
        self.get = getter  # type: ignore[method-assign]
        if setter is not None:
            self.set = setter  # type: ignore[method-assign]
            self.writable = True
        self.text = text


class ConstPv(PvSpec):
    """A PV whose value is fixed at parse time ($null, $true, $K(UDP), $def(X) when known)."""

    def __init__(self, value: PvValue, text: str = "") -> None:
        self.value = value
        self.text = text

    def get(self, ctx: "RouteCtx") -> PvValue:
        return self.value


ALL = "*"


class Index:
    """The `[i]` part of `$(name[i])`: an int (negative counts from the end), `*`, or a PV."""

    __slots__ = ("static", "dyn")

    def __init__(self, static: Union[int, str, None] = None, dyn: Optional[PvSpec] = None
                 ) -> None:
        self.static = static      # int, ALL, or None when dynamic
        self.dyn = dyn

    @property
    def is_all(self) -> bool:
        return self.static == ALL

    def resolve(self, ctx: "RouteCtx") -> Union[int, str]:
        """The index for this message: an int or ALL. A dynamic non-int index raises PvError."""
        if self.dyn is None:
            return self.static  # type: ignore[return-value]
        v = self.dyn.get(ctx)
        if isinstance(v, int):
            return v
        if v == ALL:
            return ALL
        try:
            return int(str(v).strip())
        except ValueError:
            raise PvError(f"index {v!r} of {self.dyn.text} is not an integer") from None

    def __repr__(self) -> str:
        return f"[{self.dyn.text if self.dyn else self.static}]"


def pick(items: list[Any], idx: Union[int, str]) -> Any:
    """items[idx] with Kamailio rules: negative counts from the end; out of range -> None."""
    n = len(items)
    if idx < 0:  # type: ignore[operator]
        idx += n  # type: ignore[operator]
    if 0 <= idx < n:  # type: ignore[operator]
        return items[idx]  # type: ignore[index]
    return None


def to_str(v: PvValue) -> str:
    """The string form of a value ($null renders as "<null>" only in formats, not here)."""
    return v if isinstance(v, str) else ("" if v is None else str(v))


def to_int(v: PvValue) -> int:
    """Kamailio str2sint-like: leading optional sign + digits; anything else gives 0."""
    if isinstance(v, int):
        return v
    if v is None:
        return 0
    s = v.strip()
    end = 1 if s[:1] in ("-", "+") else 0
    while end < len(s) and s[end].isdigit():
        end += 1
    try:
        return int(s[:end])
    except ValueError:
        return 0
