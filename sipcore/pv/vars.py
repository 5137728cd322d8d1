"""Container PVs: $var/$vz/$vn (per process), $avp (per message), $xavp/$xavu/$xavi (per
message), $shv (shared, see shv.py) and $cnt.

Runs in: SIP workers (and the timer process for routes it runs). Shared state: the $var
stores are module globals of *this process* on purpose (Kamailio script variables live in pkg
memory and keep their value between messages handled by the same process). AVPs and XAVPs live
on the RouteCtx (`ctx.avps`, `ctx.xavps`); tm moves them into the transaction.

Ordering follows Kamailio: adding an AVP or XAVP puts it at the head, so index 0 is the most
recently added value and -1 the oldest.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

from sipcore.pv import registry, shv
from sipcore.pv.errors import PvError
from sipcore.pv.registry import Inner
from sipcore.pv.spec import ALL, Index, PvSpec, PvValue, pick, to_str

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.route.ctx import RouteCtx

# ---- $var / $vz / $vn ----------------------------------------------------------------------------

# Script variables of this process. $var never reads $null: unset or reset reads int 0.
VARS: dict[str, Union[int, str]] = {}
# $vn variables may hold $null (None); unset reads $null.
VARS_N: dict[str, PvValue] = {}


class VarPv(PvSpec):
    writable = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get(self, ctx: "RouteCtx") -> PvValue:
        return VARS.get(self.name, 0)

    def set(self, ctx: "RouteCtx", value: PvValue) -> None:
        VARS[self.name] = 0 if value is None else value


class VarNullPv(PvSpec):
    writable = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get(self, ctx: "RouteCtx") -> PvValue:
        return VARS_N.get(self.name)

    def set(self, ctx: "RouteCtx", value: PvValue) -> None:
        VARS_N[self.name] = value


def _var_name(inner: Optional[str]) -> str:
    name = (inner or "").strip()
    if not name:
        raise PvError("empty script variable name")
    return name


def init_var(name: str, value: Union[int, str]) -> None:
    """modparam("pv", "varset", "name=i:1"): initial value of $var(name) in every process."""
    VARS[name] = value


def reset_vars() -> None:
    """Forget every script variable (tests; a fresh process starts empty anyway)."""
    VARS.clear()
    VARS_N.clear()


def parse_typed_value(text: str) -> tuple[str, Union[int, str]]:
    """"name=i:1" / "name=s:text" (varset, shvset) -> (name, value); ValueError if malformed."""
    name, eq, rest = text.partition("=")
    name = name.strip()
    if not eq or not name:
        raise ValueError(f"expected name=i:INT or name=s:STR, got \"{text}\"")
    kind, colon, val = rest.partition(":")
    kind = kind.strip().lower()
    if not colon or kind not in ("i", "s"):
        raise ValueError(f"expected name=i:INT or name=s:STR, got \"{text}\"")
    if kind == "i":
        try:
            return name, int(val.strip(), 0)
        except ValueError:
            raise ValueError(f"not an integer in \"{text}\"") from None
    return name, val


# ---- $avp ----------------------------------------------------------------------------------------

AvpName = Union[str, int]
# modparam("pv", "avp_aliases", "alias=name;...") -> alias -> real name
AVP_ALIASES: dict[str, AvpName] = {}


class AvpList:
    """The AVPs of one message: name -> values, newest first."""

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d: dict[AvpName, list[PvValue]] = {}

    def add(self, name: AvpName, value: PvValue) -> None:
        self._d.setdefault(name, []).insert(0, value)

    def values(self, name: AvpName) -> list[PvValue]:
        return self._d.get(name, [])

    def first(self, name: AvpName) -> PvValue:
        vals = self._d.get(name)
        return vals[0] if vals else None

    def replace(self, name: AvpName, idx: int, value: PvValue) -> bool:
        vals = self._d.get(name)
        if not vals:
            return False
        n = len(vals)
        i = idx + n if idx < 0 else idx
        if not 0 <= i < n:
            return False
        vals[i] = value
        return True

    def delete(self, name: AvpName, idx: Union[int, str] = 0) -> int:
        """Remove the value at idx (ALL: every value). Returns how many were removed."""
        vals = self._d.get(name)
        if not vals:
            return 0
        if idx == ALL:
            del self._d[name]
            return len(vals)
        n = len(vals)
        i = idx + n if idx < 0 else idx  # type: ignore[operator]
        if not 0 <= i < n:  # type: ignore[operator]
            return 0
        del vals[i]  # type: ignore[arg-type]
        if not vals:
            del self._d[name]
        return 1

    def items(self) -> list[tuple[AvpName, list[PvValue]]]:
        """(name, values newest first) of every AVP (tm keeps them with the transaction)."""
        return list(self._d.items())

    @classmethod
    def from_items(cls, items: list) -> "AvpList":
        """The list `items()` gave (as stored with a transaction)."""
        lst = cls()
        for name, values in items:
            lst._d[name] = list(values)
        return lst

    def names(self) -> list[AvpName]:
        return list(self._d)

    def __contains__(self, name: AvpName) -> bool:
        return name in self._d

    def __repr__(self) -> str:
        return f"AvpList({self._d!r})"


def avps(ctx: "RouteCtx") -> AvpList:
    """The AVP list of ctx, created on first use."""
    lst = ctx.avps
    if lst is None:
        lst = ctx.avps = AvpList()
    return lst


def parse_avp_name(text: str) -> AvpName:
    """`x`, `s:x` -> "x"; `i:5` -> 5; aliases (avp_aliases) resolved."""
    t = text.strip()
    if not t:
        raise PvError("empty AVP name")
    if t in AVP_ALIASES:
        return AVP_ALIASES[t]
    if t[:2] in ("i:", "I:"):
        try:
            return int(t[2:])
        except ValueError:
            raise PvError(f"AVP id {t!r} is not an integer") from None
    if t[:2] in ("s:", "S:"):
        t = t[2:]
        if not t:
            raise PvError("empty AVP name")
    return t


class AvpPv(PvSpec):
    """$avp(name) / $(avp(name)[i]) / $(avp(name)[*])."""

    writable = True

    def __init__(self, name: AvpName, index: Optional[Index] = None) -> None:
        self.name = name
        self.index = index

    def with_index(self, idx: Index) -> PvSpec:
        spec = AvpPv(self.name, idx)
        spec.text = self.text
        return spec

    def get(self, ctx: "RouteCtx") -> PvValue:
        lst = ctx.avps
        if lst is None:
            return None
        if self.index is None:
            return lst.first(self.name)
        idx = self.index.resolve(ctx)
        vals = lst.values(self.name)
        if idx == ALL:
            if not vals:
                return None
            return ", ".join("<null>" if v is None else str(v) for v in vals)
        return pick(vals, idx)

    def set(self, ctx: "RouteCtx", value: PvValue) -> None:
        lst = avps(ctx)
        if self.index is None:
            if value is None:
                lst.delete(self.name, 0)
            else:
                lst.add(self.name, value)
            return
        idx = self.index.resolve(ctx)
        if idx == ALL:
            lst.delete(self.name, ALL)
            if value is not None:
                lst.add(self.name, value)
            return
        if value is None:
            lst.delete(self.name, idx)
        elif not lst.replace(self.name, idx, value):  # type: ignore[arg-type]
            if idx == 0 and not lst.values(self.name):
                lst.add(self.name, value)
            else:
                raise PvError(f"{self.text or '$avp'}: no value at index {idx}")

    def count(self, ctx: "RouteCtx") -> int:
        lst = ctx.avps
        return 0 if lst is None else len(lst.values(self.name))


# ---- $xavp / $xavu / $xavi -----------------------------------------------------------------------

class Xavp:
    """One named xavp: a simple value or a list of child xavps (a structure)."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: "XavpValue") -> None:
        self.name = name
        self.value = value

    @property
    def is_struct(self) -> bool:
        return isinstance(self.value, list)

    def __repr__(self) -> str:
        return f"Xavp({self.name!r}, {self.value!r})"


XavpValue = Union[str, int, None, list]   # list = list[Xavp] (children, newest first)


class XavpStore:
    """The xavp, xavu and xavi root lists of one message."""

    __slots__ = ("xavp", "xavu", "xavi")

    def __init__(self) -> None:
        self.xavp: list[Xavp] = []
        self.xavu: list[Xavp] = []
        self.xavi: list[Xavp] = []

    def roots(self, kind: str) -> list[Xavp]:
        return getattr(self, kind)


def xavps(ctx: "RouteCtx") -> XavpStore:
    st = ctx.xavps
    if st is None:
        st = ctx.xavps = XavpStore()
    return st


def xavp_find_all(lst: list[Xavp], name: str, ci: bool = False) -> list[Xavp]:
    if ci:
        low = name.lower()
        return [x for x in lst if x.name.lower() == low]
    return [x for x in lst if x.name == name]


def xavp_get(lst: list[Xavp], name: str, idx: int = 0, ci: bool = False) -> Optional[Xavp]:
    return pick(xavp_find_all(lst, name, ci), idx)


def xavp_add(lst: list[Xavp], name: str, value: XavpValue) -> Xavp:
    x = Xavp(name, value)
    lst.insert(0, x)
    return x


def xavp_root_fields(ctx: "RouteCtx", root: str) -> list[Xavp]:
    """The children of $xavp(ROOT) (the first ROOT), newest first; [] when it is unset or not
    a structure."""
    st = ctx.xavps
    x = xavp_get(st.xavp, root) if st is not None else None
    return x.value if x is not None and isinstance(x.value, list) else []


def xavp_serialize_fields(fields: list[Xavp]) -> str:
    """Kamailio xavp_serialize_fields(): `name=value;` for each int or string field in list
    order (newest first), a bare `name;` for an empty string; other values are skipped."""
    out = []
    for f in fields:
        v = f.value
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            continue
        if isinstance(v, int):
            out.append(f"{f.name}={v & 0xFFFFFFFFFFFFFFFF};")
        elif v == "":
            out.append(f"{f.name};")
        else:
            out.append(f"{f.name}={v};")
    return "".join(out)


def xavp_rm(lst: list[Xavp], name: str, idx: Union[int, str] = ALL, ci: bool = False) -> int:
    """Remove the idx-th xavp NAME (ALL: every one). Returns how many were removed."""
    found = xavp_find_all(lst, name, ci)
    if idx == ALL:
        victims = found
    else:
        v = pick(found, idx)
        victims = [v] if v is not None else []
    for v in victims:
        lst.remove(v)
    return len(victims)


def xavp_count(lst: list[Xavp], name: str, ci: bool = False) -> int:
    return len(xavp_find_all(lst, name, ci))


def xavp_render(x: Optional[Xavp]) -> PvValue:
    if x is None:
        return None
    if isinstance(x.value, list):
        return f"<<xavp:{id(x):x}>>"
    return x.value


class XavpPath:
    """Parsed `root[idx]=>field[idx]`; an index is an int, ALL, or None (not given)."""

    __slots__ = ("root", "ridx", "field", "fidx")

    def __init__(self, text: str) -> None:
        root, arrow, field = text.partition("=>")
        self.root, self.ridx = _name_index(root, text)
        self.field: Optional[str] = None
        self.fidx: Union[int, str, None] = None
        if arrow:
            self.field, self.fidx = _name_index(field, text)

    def __repr__(self) -> str:
        return f"XavpPath({self.root}[{self.ridx}]=>{self.field}[{self.fidx}])"


def _name_index(part: str, whole: str) -> tuple[str, Union[int, str, None]]:
    p = part.strip()
    idx: Union[int, str, None] = None
    if p.endswith("]"):
        lb = p.find("[")
        if lb < 0:
            raise PvError(f"bad xavp name {whole!r}")
        it = p[lb + 1:-1].strip()
        p = p[:lb].strip()
        if it == ALL:
            idx = ALL
        else:
            try:
                idx = int(it)
            except ValueError:
                raise PvError(f"bad index [{it}] in xavp name {whole!r}") from None
    if not p or any(c in p for c in "[]=>()"):
        raise PvError(f"bad xavp name {whole!r}")
    return p, idx


class XavpPv(PvSpec):
    """$xavp(root[i]=>field[j]) and the $xavi (case-insensitive) variant."""

    writable = True

    def __init__(self, path: XavpPath, kind: str = "xavp") -> None:
        self.path = path
        self.kind = kind
        self.ci = kind == "xavi"

    def _root(self, ctx: "RouteCtx") -> Optional[Xavp]:
        st = ctx.xavps
        if st is None:
            return None
        p = self.path
        ridx = 0 if p.ridx is None or p.ridx == ALL else p.ridx
        return xavp_get(st.roots(self.kind), p.root, ridx, self.ci)  # type: ignore[arg-type]

    def get(self, ctx: "RouteCtx") -> PvValue:
        r = self._root(ctx)
        p = self.path
        if p.field is None:
            return xavp_render(r)
        if r is None or not isinstance(r.value, list):
            return None
        if p.fidx == ALL:
            # Kamailio joins every value of the field with ", "
            vals = xavp_find_all(r.value, p.field, self.ci)
            if not vals:
                return None
            return ", ".join(to_str(v) if (v := xavp_render(x)) is not None else "<null>"
                             for x in vals)
        fidx = 0 if p.fidx is None else p.fidx
        return xavp_render(xavp_get(r.value, p.field, fidx, self.ci))  # type: ignore[arg-type]

    def count(self, ctx: "RouteCtx") -> int:
        st = ctx.xavps
        if st is None:
            return 0
        p = self.path
        if p.field is None:
            return xavp_count(st.roots(self.kind), p.root, self.ci)
        r = self._root(ctx)
        if r is None or not isinstance(r.value, list):
            return 0
        return xavp_count(r.value, p.field, self.ci)

    # Assignment rules follow Kamailio pv_set_xavp():
    #   $xavp(r) = v          new root item r (at index 0)
    #   $xavp(r[i]) = v       replace the value of item i (error if missing; [*] is an error)
    #   $xavp(r=>f) = v       new root item r holding field f
    #   $xavp(r[i]=>f) = v    add field f to item i (nothing happens if item i does not exist)
    #   $xavp(r[i]=>f[j]) = v replace the j-th f of item i (nothing if missing)
    #   = $null               removes the first match (or the indexed one, or all with [*])
    def set(self, ctx: "RouteCtx", value: PvValue) -> None:
        roots = xavps(ctx).roots(self.kind)
        p = self.path
        if p.field is None:
            self._set_root(roots, value)
        elif value is None:
            self._rm_field(roots)
        elif p.ridx is None:
            xavp_add(roots, p.root, [Xavp(p.field, value)])
        elif p.ridx == ALL:
            return                                   # Kamailio ignores it
        else:
            r = xavp_get(roots, p.root, p.ridx, self.ci)  # type: ignore[arg-type]
            if r is None:
                return
            if not isinstance(r.value, list):
                raise PvError(f"{self.text}: item {p.ridx} of {p.root} holds a value, "
                              f"not fields")
            if p.fidx is None:
                xavp_add(r.value, p.field, value)
            elif p.fidx != ALL:
                f = xavp_get(r.value, p.field, p.fidx, self.ci)  # type: ignore[arg-type]
                if f is not None:
                    f.value = value

    def _rm_field(self, roots: list[Xavp]) -> None:
        p = self.path
        assert p.field is not None
        if p.ridx == ALL:
            items = xavp_find_all(roots, p.root, self.ci)
        else:
            one = xavp_get(roots, p.root, p.ridx or 0, self.ci)  # type: ignore[arg-type]
            items = [one] if one is not None else []
        for r in items:
            if isinstance(r.value, list):
                xavp_rm(r.value, p.field, 0 if p.fidx is None else p.fidx, self.ci)

    def _set_root(self, roots: list[Xavp], value: PvValue) -> None:
        p = self.path
        if value is None:
            xavp_rm(roots, p.root, 0 if p.ridx is None else p.ridx, self.ci)
            return
        if p.ridx is None:
            xavp_add(roots, p.root, value)
            return
        if p.ridx == ALL:
            raise PvError(f"{self.text}: cannot assign every item at once")
        r = xavp_get(roots, p.root, p.ridx, self.ci)  # type: ignore[arg-type]
        if r is None:
            raise PvError(f"{self.text}: no item at index {p.ridx}")
        r.value = value


class XavuPv(PvSpec):
    """$xavu(root=>field): one value per name; assignment replaces."""

    writable = True

    def __init__(self, path: XavpPath) -> None:
        if path.ridx is not None or path.fidx is not None:
            raise PvError("$xavu does not take indexes")
        self.path = path

    def get(self, ctx: "RouteCtx") -> PvValue:
        st = ctx.xavps
        if st is None:
            return None
        r = xavp_get(st.xavu, self.path.root)
        if self.path.field is None:
            return xavp_render(r)
        if r is None or not isinstance(r.value, list):
            return None
        return xavp_render(xavp_get(r.value, self.path.field))

    def count(self, ctx: "RouteCtx") -> int:
        return 0 if self.get(ctx) is None else 1

    def set(self, ctx: "RouteCtx", value: PvValue) -> None:
        roots = xavps(ctx).xavu
        p = self.path
        if p.field is None:
            xavp_rm(roots, p.root)
            if value is not None:
                xavp_add(roots, p.root, value)
            return
        r = xavp_get(roots, p.root)
        if r is None or not isinstance(r.value, list):
            if value is None:
                return
            xavp_rm(roots, p.root)
            r = xavp_add(roots, p.root, [])
        xavp_rm(r.value, p.field)  # type: ignore[arg-type]
        if value is not None:
            xavp_add(r.value, p.field, value)  # type: ignore[arg-type]


# ---- $shv ---------------------------------------------------------------------------------------

class ShvPv(PvSpec):
    writable = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get(self, ctx: "RouteCtx") -> PvValue:
        return shv.get(self.name)

    def set(self, ctx: "RouteCtx", value: PvValue) -> None:
        shv.set(self.name, value)


# ---- $cnt(pv) -----------------------------------------------------------------------------------

class CntPv(PvSpec):
    """$cnt($avp(x)) / $cnt($xavp(r)) / $cnt($xavp(r=>f)): number of values."""

    def __init__(self, target: PvSpec) -> None:
        counter = getattr(target, "count", None)
        if counter is None:
            raise PvError(f"$cnt() needs an $avp or $xavp, got {target.text}")
        self.get = counter  # type: ignore[method-assign]


def _cnt_factory(inner: Optional[str], modreg: Any) -> PvSpec:
    from sipcore.pv.parser import parse_pv

    return CntPv(parse_pv((inner or "").strip(), modreg))


def iter_vars() -> Iterator[tuple[str, Union[int, str]]]:
    return iter(list(VARS.items()))


# ---- registration --------------------------------------------------------------------------------

registry.register("var", lambda inner, _m: VarPv(_var_name(inner)), Inner.REQUIRED,
                  dyn_name=True, doc="script variable (per process)")
registry.register("vz", lambda inner, _m: VarPv(_var_name(inner)), Inner.REQUIRED,
                  dyn_name=True, doc="script variable (same store as $var)")
registry.register("vn", lambda inner, _m: VarNullPv(_var_name(inner)), Inner.REQUIRED,
                  dyn_name=True, doc="script variable that can hold $null")
registry.register("avp", lambda inner, _m: AvpPv(parse_avp_name(inner or "")), Inner.REQUIRED,
                  dyn_name=True, doc="AVP: per-message value stack")
registry.register("xavp", lambda inner, _m: XavpPv(XavpPath(inner or "")), Inner.REQUIRED,
                  dyn_name=True, doc="extended AVP root[i]=>field[j]")
registry.register("xavi", lambda inner, _m: XavpPv(XavpPath(inner or ""), "xavi"),
                  Inner.REQUIRED, dyn_name=True, doc="xavp with case-insensitive names")
registry.register("xavu", lambda inner, _m: XavuPv(XavpPath(inner or "")), Inner.REQUIRED,
                  dyn_name=True, doc="xavp with one value per name")
registry.register("shv", lambda inner, _m: ShvPv(_var_name(inner)), Inner.REQUIRED,
                  dyn_name=True, doc="shared variable")
registry.register("cnt", _cnt_factory, Inner.REQUIRED, doc="number of AVP/XAVP values")
