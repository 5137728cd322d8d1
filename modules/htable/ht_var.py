"""htable pseudo-variables: $sht, $shtex, $shtcn, $shtcv, $shtinc, $shtdec, $shtitkey,
$shtitval, $shtrecord.

Runs in: the master (factories, at cfg compile time) and every process that runs routes (get/
set). Shared state: the htable shm tables through ht_api (no other state, except the
per-process iterators and the expired record of the timer process).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from modules.htable import ht_api
from modules.htable.ht_api import HTable
from sipcore.pv import PvError, PvSpec, parse_format
from sipcore.pv.spec import PvValue, to_int


def split_name(inner: str | None, pv: str) -> tuple[str, str]:
    """`table=>key` -> (table, key text). ValueError when malformed."""
    if not inner or "=>" not in inner:
        raise ValueError(f"${pv}(table=>key) expected")
    table, _, key = inner.partition("=>")
    table = table.strip()
    if not table:
        raise ValueError(f"${pv}: empty table name in \"{inner}\"")
    return table, key


class _TablePv(PvSpec):
    """Base: a static table name and a key format evaluated per call."""

    def __init__(self, pv: str, inner: str, known: Callable[[str], bool],
                 modreg: Any = None) -> None:
        table, key = split_name(inner, pv)
        if not known(table):
            raise ValueError(f"${pv}: htable \"{table}\" is not defined "
                             f"(modparam(\"htable\", \"htable\", \"{table}=>...\"))")
        self.table_name = table
        fmt = parse_format(key, modreg)
        self._key: Callable[[Any], str] = fmt.eval
        self.text = f"${pv}({inner})"

    def table(self) -> HTable:
        t = ht_api.get_table(self.table_name)
        if t is None:
            raise PvError(f"htable {self.table_name} is not initialised")
        return t


class ShtPv(_TablePv):
    """$sht(t=>k): read/write an item; $null deletes; initval for missing keys."""

    writable = True

    def get(self, ctx: Any) -> PvValue:
        t = self.table()
        v = t.get(self._key(ctx))
        return t.spec.initval if v is None else v

    def set(self, ctx: Any, value: PvValue) -> None:
        t = self.table()
        if value is None:
            t.delete(self._key(ctx))
        else:
            t.set(self._key(ctx), value)


class ShtexPv(_TablePv):
    """$shtex(t=>k): seconds until the item expires (0: never or missing); assign to change."""

    writable = True

    def get(self, ctx: Any) -> PvValue:
        it = self.table().get_item(self._key(ctx))
        if it is None or it.expires is None:
            return 0
        return int(it.expires + 0.5)

    def set(self, ctx: Any, value: PvValue) -> None:
        self.table().set_expire(self._key(ctx), to_int(value))


class ShtIncPv(_TablePv):
    """$shtinc(t=>k) / $shtdec(t=>k): atomic +1 / -1, returns the new value."""

    def __init__(self, pv: str, inner: str, known: Callable[[str], bool], modreg: Any,
                 delta: int) -> None:
        super().__init__(pv, inner, known, modreg)
        self.delta = delta

    def get(self, ctx: Any) -> PvValue:
        return self.table().add_int(self._key(ctx), self.delta)


def count_matcher(expr: str, on_values: bool) -> Callable[[Any], bool]:
    """$shtcn/$shtcv match expressions: `~~re` (default), `%~prefix`, `~%suffix`, `==str`,
    `**` (all), and for values `eq<int>`."""
    op, arg = expr[:2], expr[2:]
    if op == "**":
        return lambda s: True
    if op == "%~":
        return lambda s: isinstance(s, str) and s.startswith(arg)
    if op == "~%":
        return lambda s: isinstance(s, str) and s.endswith(arg)
    if op == "==":
        return lambda s: isinstance(s, str) and s == arg
    if on_values and op == "eq":
        n = to_int(arg)
        return lambda s: isinstance(s, int) and s == n
    if op != "~~":
        arg = expr
    try:
        rx = re.compile(arg)
    except re.error as exc:
        raise PvError(f"bad regular expression \"{arg}\": {exc}") from None
    return lambda s: isinstance(s, str) and rx.search(s) is not None


class ShtCountPv(_TablePv):
    """$shtcn(t=>expr) / $shtcv(t=>expr): number of items whose key / value matches."""

    def __init__(self, pv: str, inner: str, known: Callable[[str], bool], modreg: Any,
                 on_values: bool) -> None:
        super().__init__(pv, inner, known, modreg)
        self.on_values = on_values

    def get(self, ctx: Any) -> PvValue:
        match = count_matcher(self._key(ctx), self.on_values)
        if self.on_values:
            return sum(1 for it in self.table().items() if match(it.value))
        return sum(1 for it in self.table().items() if match(it.key))


class IterPv(PvSpec):
    """$shtitkey(name) / $shtitval(name): the current item of an iterator."""

    def __init__(self, name: str, want_key: bool, text: str) -> None:
        self.name = name
        self.want_key = want_key
        self.text = text

    def get(self, ctx: Any) -> PvValue:
        st = ht_api.ITERATORS.get(self.name)
        cur = st.current if st is not None else None
        if cur is None:
            return None
        return cur.key if self.want_key else cur.value


class RecordPv(PvSpec):
    """$shtrecord(key|value): the expired item in event_route[htable:expired:NAME]."""

    def __init__(self, want_key: bool, text: str) -> None:
        self.want_key = want_key
        self.text = text

    def get(self, ctx: Any) -> PvValue:
        if not ht_api.EXPIRED_RECORD:
            return None
        it = ht_api.EXPIRED_RECORD[-1]
        return it.key if self.want_key else it.value


def factories(known: Callable[[str], bool]) -> dict[str, tuple[Callable[..., PvSpec], str]]:
    """name -> (factory(inner), doc), for Module.pv()."""

    def iter_name(pv: str, inner: str | None) -> str:
        if not inner or not inner.strip():
            raise ValueError(f"${pv}(iterator) expected")
        return inner.strip()

    def record(inner: str | None) -> PvSpec:
        if inner not in ("key", "value"):
            raise ValueError("$shtrecord(key) or $shtrecord(value) expected")
        return RecordPv(inner == "key", f"$shtrecord({inner})")

    def table_pv(make: Callable[[str | None, Any], PvSpec]) -> Callable[..., PvSpec]:
        def factory(inner: str | None, modreg: Any = None) -> PvSpec:
            return make(inner, modreg)
        factory.wants_modreg = True  # type: ignore[attr-defined]
        return factory

    return {
        "sht": (table_pv(lambda i, m: ShtPv("sht", i, known, m)),
                "$sht(table=>key): read/write an item."),
        "shtex": (table_pv(lambda i, m: ShtexPv("shtex", i, known, m)),
                  "$shtex(table=>key): seconds to expiry; assign to set it."),
        "shtcn": (table_pv(lambda i, m: ShtCountPv("shtcn", i, known, m, False)),
                  "$shtcn(table=>expr): number of keys matching expr (~~re, %~, ~%, ==, **)."),
        "shtcv": (table_pv(lambda i, m: ShtCountPv("shtcv", i, known, m, True)),
                  "$shtcv(table=>expr): number of values matching expr (also eqN)."),
        "shtinc": (table_pv(lambda i, m: ShtIncPv("shtinc", i, known, m, 1)),
                   "$shtinc(table=>key): atomic increment, returns the new value."),
        "shtdec": (table_pv(lambda i, m: ShtIncPv("shtdec", i, known, m, -1)),
                   "$shtdec(table=>key): atomic decrement, returns the new value."),
        "shtitkey": (lambda i: IterPv(iter_name("shtitkey", i), True, f"$shtitkey({i})"),
                     "$shtitkey(iterator): key of the current item."),
        "shtitval": (lambda i: IterPv(iter_name("shtitval", i), False, f"$shtitval({i})"),
                     "$shtitval(iterator): value of the current item."),
        "shtrecord": (record, ("$shtrecord(key|value): the expired item in "
                               "event_route[htable:expired:NAME].")),
    }
