"""Scanning and parsing of pseudo-variable tokens and format strings (compile time only).

Runs in: the master while compiling the cfg (and KEMI `KSR.pv.*` on first use of a name).
Grammar (Kamailio 5.6, see reference/pseudo-variables.md §1):

    $name                 $name(inner)              $?
    $(name)  $(name(inner))  $(name(inner)[idx])  $(name(inner)[idx]{tr}{tr}...)

`inner` and transformation bodies may contain nested PV tokens; parentheses in `inner` and
braces in transformations are balanced. The short form never takes an index.
"""
from __future__ import annotations

import logging
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from sipcore.pv import registry
from sipcore.pv.errors import PvError
from sipcore.pv.registry import Inner, PvClass
from sipcore.pv.spec import ALL, Index, PvSpec, PvValue

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.pv.transforms import Transform
    from sipcore.route.ctx import RouteCtx

_NAME_START = frozenset(string.ascii_letters + "_")
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_")
# Core names with a dot ($ruri.user, $err.class): the scanner extends over '.' only into these,
# so "$fU.x" in a format is $fU followed by ".x".
_DOTTED = frozenset({
    "ruri.user", "ruri.domain", "from.user", "from.domain", "to.user", "to.domain",
    "err.class", "err.level", "err.info", "err.rcode", "err.rreason",
})


@dataclass(slots=True)
class _Token:
    name: str
    inner: Optional[str] = None
    index: Optional[str] = None
    trs: list[str] = field(default_factory=list)
    end: int = 0


# ---- scanning ----------------------------------------------------------------------------------

def scan_pv(s: str, i: int) -> int:
    """End index (exclusive) of the PV token starting at s[i] == '$'. Raises PvError."""
    return _scan(s, i).end


def _scan(s: str, i: int) -> _Token:
    n = len(s)
    if i >= n or s[i] != "$":
        raise PvError("expected '$'", i)
    j = i + 1
    if j >= n:
        raise PvError("'$' without a pseudo-variable name", i)
    c = s[j]
    if c == "(":
        return _scan_long(s, i)
    if c == "?":
        return _Token("?", end=j + 1)
    if c not in _NAME_START:
        raise PvError(f"invalid pseudo-variable name after '$' at {s[i:i + 10]!r}", i)
    k = _scan_name(s, j)
    tok = _Token(s[j:k], end=k)
    if k < n and s[k] == "(":
        close = _scan_group(s, k, "(", ")", i)
        tok.inner = s[k + 1:close - 1]
        tok.end = close
    return tok


def _scan_name(s: str, j: int) -> int:
    n = len(s)
    k = j
    while k < n and s[k] in _NAME_CHARS:
        k += 1
    if k < n and s[k] == "." and k + 1 < n and s[k + 1] in _NAME_CHARS:
        m = k + 1
        while m < n and s[m] in _NAME_CHARS:
            m += 1
        if s[j:m] in _DOTTED:
            k = m
    return k


def _scan_long(s: str, i: int) -> _Token:
    n = len(s)
    j = i + 2                                    # after "$("
    if j >= n or s[j] not in _NAME_START:
        raise PvError(f"invalid pseudo-variable name in {s[i:i + 12]!r}", i)
    k = _scan_name(s, j)
    tok = _Token(s[j:k])
    if k < n and s[k] == "(":
        close = _scan_group(s, k, "(", ")", i)
        tok.inner = s[k + 1:close - 1]
        k = close
    if k < n and s[k] == "[":
        close = _scan_group(s, k, "[", "]", i)
        tok.index = s[k + 1:close - 1]
        k = close
    while k < n and s[k] == "{":
        close = _scan_group(s, k, "{", "}", i)
        tok.trs.append(s[k + 1:close - 1])
        k = close
    if k >= n:
        raise PvError(f"unterminated pseudo-variable {s[i:]!r}", i)
    if s[k] != ")":
        raise PvError(f"unexpected {s[k]!r} in pseudo-variable {s[i:k + 1]!r}", k)
    tok.end = k + 1
    return tok


def _scan_group(s: str, k: int, open_: str, close: str, start: int) -> int:
    """s[k] == open_; return the index after the matching close, skipping nested PV tokens."""
    n = len(s)
    depth = 0
    while k < n:
        c = s[k]
        if c == "$" and k + 1 < n and (s[k + 1] in _NAME_START or s[k + 1] == "("):
            k = _scan(s, k).end
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return k + 1
        k += 1
    raise PvError(f"unterminated pseudo-variable {s[start:]!r} (missing {close!r})", start)


# ---- parsing -----------------------------------------------------------------------------------

def parse_pv(text: str, modreg: Any = None) -> PvSpec:
    """Parse one complete PV token (compile time). Raises PvError."""
    text = text.strip()
    tok = _scan(text, 0)
    if tok.end != len(text):
        raise PvError(f"unexpected text {text[tok.end:]!r} after pseudo-variable "
                      f"{text[:tok.end]}", tok.end)
    return _build(tok, text, modreg)


_PV_CACHE: dict[tuple[str, int], PvSpec] = {}
_PV_CACHE_MAX = 1024


def cached_pv(text: str, modreg: Any = None) -> PvSpec:
    """parse_pv() with a bounded per-process cache, for names only known at run time
    (KEMI `KSR.pv.get("$ru")`, pv_evalx). Kamailio keeps the same kind of cache."""
    key = (text, id(modreg))
    spec = _PV_CACHE.get(key)
    if spec is None:
        spec = parse_pv(text, modreg)
        if len(_PV_CACHE) >= _PV_CACHE_MAX:
            _PV_CACHE.clear()
        _PV_CACHE[key] = spec
    return spec


def _build(tok: _Token, text: str, modreg: Any) -> PvSpec:
    cls = registry.lookup(tok.name, modreg)
    if cls is None:
        raise PvError(f"unknown pseudo-variable ${tok.name}")
    if tok.inner is None and cls.inner is Inner.REQUIRED:
        raise PvError(f"pseudo-variable ${tok.name} needs a name: ${tok.name}(...)")
    if tok.inner is not None and cls.inner is Inner.NONE:
        raise PvError(f"pseudo-variable ${tok.name} does not take a name ({tok.inner})")
    index = _parse_index(tok.index, modreg) if tok.index is not None else None
    if cls.dyn_name and tok.inner is not None and "$" in tok.inner:
        spec: PvSpec = DynNamePv(cls, parse_format(tok.inner, modreg), index, modreg)
    else:
        spec = cls.factory(tok.inner, modreg)
        if index is not None:
            spec = spec.with_index(index)
    spec.text = text
    if tok.trs:
        from sipcore.pv.transforms import parse_transform

        chain = tuple(parse_transform(t, modreg) for t in tok.trs)
        spec = TrPv(spec, chain, text)
    return spec


def _parse_index(text: str, modreg: Any) -> Index:
    t = text.strip()
    if t == ALL:
        return Index(ALL)
    try:
        return Index(int(t))
    except ValueError:
        pass
    if t.startswith("$"):
        return Index(None, parse_pv(t, modreg))
    raise PvError(f"invalid index [{text}]: expected an integer, '*' or a pseudo-variable")


class TrPv(PvSpec):
    """A PV followed by a chain of transformations, applied left to right."""

    def __init__(self, base: PvSpec, chain: "tuple[Transform, ...]", text: str) -> None:
        self.base = base
        self.chain = chain
        self.text = text

    def get(self, ctx: "RouteCtx") -> PvValue:
        v = self.base.get(ctx)
        for tr in self.chain:
            if v is None and not tr.accepts_null:
                return None
            v = tr.apply(ctx, v)
        return v


class DynNamePv(PvSpec):
    """A PV whose inner name contains PVs (`$avp($var(n))`, `$hdr($var(h))`).

    The name is evaluated per message; the spec for each distinct name is built once and cached
    (bounded, like Kamailio's pv cache).
    """

    _CACHE_MAX = 256

    def __init__(self, cls: PvClass, fmt: "Format", index: Optional[Index], modreg: Any) -> None:
        self.cls = cls
        self.fmt = fmt
        self.index = index
        self.modreg = modreg
        self._cache: dict[str, PvSpec] = {}
        self.writable = self._build("x").writable

    def _build(self, name: str) -> PvSpec:
        spec = self.cls.factory(name, self.modreg)
        if self.index is not None:
            spec = spec.with_index(self.index)
        return spec

    def _spec(self, ctx: "RouteCtx") -> PvSpec:
        name = self.fmt.eval(ctx)
        spec = self._cache.get(name)
        if spec is None:
            spec = self._build(name)
            if len(self._cache) >= self._CACHE_MAX:
                self._cache.clear()
            self._cache[name] = spec
        return spec

    def get(self, ctx: "RouteCtx") -> PvValue:
        try:
            spec = self._spec(ctx)
        except PvError as e:
            log.error("%s: %s", self.text, e)
            return None
        return spec.get(ctx)

    def set(self, ctx: "RouteCtx", value: PvValue) -> None:
        self._spec(ctx).set(ctx, value)


# ---- format strings ----------------------------------------------------------------------------

NULL_TEXT = "<null>"


class Format:
    """A string with embedded PVs, compiled once: `eval(ctx) -> str`.

    `is_static`/`static_value`: no PVs at all (the compiler can pass a plain str).
    `single`: the format is exactly one PV (then `value(ctx)` keeps its int/None type).
    """

    __slots__ = ("text", "parts", "is_static", "static_value", "single")

    def __init__(self, text: str, parts: list[Any]) -> None:
        self.text = text
        self.parts: tuple[Any, ...] = tuple(parts)
        self.is_static = all(isinstance(p, str) for p in parts)
        self.static_value: Optional[str] = "".join(parts) if self.is_static else None
        self.single: Optional[PvSpec] = (parts[0] if len(parts) == 1
                                         and isinstance(parts[0], PvSpec) else None)

    def eval(self, ctx: "RouteCtx") -> str:
        if self.static_value is not None:
            return self.static_value
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
            else:
                v = p.get(ctx)
                out.append(v if isinstance(v, str) else (NULL_TEXT if v is None else str(v)))
        return "".join(out)

    def value(self, ctx: "RouteCtx") -> PvValue:
        """Like eval, but a format that is one PV returns that PV's value unchanged."""
        if self.single is not None:
            return self.single.get(ctx)
        return self.eval(ctx)

    def pvs(self) -> list[PvSpec]:
        return [p for p in self.parts if isinstance(p, PvSpec)]

    def __repr__(self) -> str:
        return f"<Format {self.text!r}>"


def parse_format(s: str, modreg: Any = None) -> Format:
    """Compile a string with embedded PVs. Unknown `$` sequences raise PvError."""
    parts: list[Any] = []
    lit: list[str] = []
    i = 0
    n = len(s)
    while i < n:
        d = s.find("$", i)
        if d < 0:
            lit.append(s[i:])
            break
        lit.append(s[i:d])
        try:
            tok = _scan(s, d)
            spec = _build(tok, s[d:tok.end], modreg)
        except PvError as e:
            off = d if e.offset is None else e.offset
            raise PvError(f"{e.message} in {s!r}", off) from None
        if lit:
            joined = "".join(lit)
            if joined:
                parts.append(joined)
            lit = []
        parts.append(spec)
        i = tok.end
    joined = "".join(lit)
    if joined:
        parts.append(joined)
    return Format(s, parts)
