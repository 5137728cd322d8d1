"""Scanning and parsing of PV tokens and format strings; module-provided PV classes."""
from __future__ import annotations

from typing import Optional

import pytest

from sipcore.mod import Module
from sipcore.mod.loader import ModuleRegistry
from sipcore.pv import (
    Format, FuncPv, PvError, PvSpec, parse_format, parse_pv, scan_pv,
)
from sipcore.pv.parser import DynNamePv, TrPv
from sipcore.testing import make_ctx

TOKENS = [
    "$ru", "$var(x)", "$hdr(From)", "$sht(t=>$ci)", "$(ru{s.len})", "$(hdr(Via)[1]{s.tolower})",
    "$xavp(a[0]=>b)", "$_s($rU@$rd)", "$T_reply_code", "$ruri.user", "$?", "$(avp(x)[*])",
    "$(avp($var(n))[$var(i)]{s.substr,0,$var(k)})", "$sht(t=>$(ci{s.md5}))",
    "$(rb{re.subst,/a(b)c/x\\1/g})", "$(var(x){s.select,0,)})", "$(var(x){re.subst,/a{2}/b/})",
    "$timef(%Y-%m-%d %H:%M)",
]


@pytest.mark.parametrize("tok", TOKENS)
def test_scan_token_end(tok: str) -> None:
    for tail in ("", " rest", ";x", ")", ".", "-x", "@h"):
        assert scan_pv(tok + tail, 0) == len(tok)
    assert scan_pv("ab " + tok + " cd", 3) == 3 + len(tok)


@pytest.mark.parametrize("bad", ["$", "$ ", "$(ru", "$hdr(X", "$(hdr(X)[1]", "$(ru{s.len)",
                                 "$(ru{s.len}", "$1", "$(1)", "$(ru]"])
def test_scan_unterminated(bad: str) -> None:
    with pytest.raises(PvError):
        scan_pv(bad, 0)


def test_scan_dotted_names_only_for_known() -> None:
    assert scan_pv("$fU.x", 0) == 3
    assert scan_pv("$from.user", 0) == len("$from.user")
    assert scan_pv("$rd.com", 0) == 3


def test_parse_structure() -> None:
    s = parse_pv("$(hdr(Via)[1]{s.tolower}{s.len})")
    assert isinstance(s, TrPv) and len(s.chain) == 2 and not s.writable
    assert s.text == "$(hdr(Via)[1]{s.tolower}{s.len})"
    assert isinstance(parse_pv("$avp($var(n))"), DynNamePv)
    assert parse_pv("$(ru)").text == "$(ru)"
    assert parse_pv(" $ru ").text == "$ru"


@pytest.mark.parametrize("bad,msg", [
    ("$foo", "unknown pseudo-variable $foo"),
    ("$hdr", "needs a name"),
    ("$ru(x)", "does not take a name"),
    ("$(ru[1])", "does not take an index"),
    ("$(hdr(X)[a])", "invalid index"),
    ("$ru x", "unexpected text"),
    ("$via0(nope)", "unknown attribute"),
    ("$K(FOO)", "unknown constant"),
    ("$hdr(a b)", "invalid header name"),
    ("$var()", "empty script variable name"),
    ("$(var(x){s.nope})", "unknown transformation"),
])
def test_parse_errors(bad: str, msg: str) -> None:
    with pytest.raises(PvError, match=msg.replace("$", r"\$").replace("(", r"\(")):
        parse_pv(bad)


def test_cached_pv() -> None:
    from sipcore.pv import cached_pv

    a = cached_pv("$(ru{s.len})")
    assert cached_pv("$(ru{s.len})") is a
    with pytest.raises(PvError):
        cached_pv("$nope")


def test_pv_error_is_value_error_with_offset() -> None:
    with pytest.raises(ValueError):
        parse_pv("$nope")
    with pytest.raises(PvError) as ei:
        parse_format("abc $hdr(X")
    assert ei.value.offset == 4


def test_format_parts_and_static() -> None:
    f = parse_format("sip:$rU@$rd")
    assert isinstance(f, Format) and not f.is_static and f.static_value is None
    assert [p if isinstance(p, str) else p.text for p in f.parts] == ["sip:", "$rU", "@", "$rd"]
    s = parse_format("no pvs here")
    assert s.is_static and s.static_value == "no pvs here"
    assert parse_format("").is_static and parse_format("").static_value == ""
    assert parse_format("$ci").single is not None
    assert [p.text for p in parse_format("$var(a)$var(b)").pvs()] == ["$var(a)", "$var(b)"]


@pytest.mark.parametrize("bad", ["cost $5", "a $ b", "trailing $", "$$", "$unknownpv here"])
def test_format_unknown_dollar_is_error(bad: str) -> None:
    with pytest.raises(PvError):
        parse_format(bad)


def test_format_null_rendering() -> None:
    ctx = make_ctx("OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n"
                   "From: <sip:x@y>;tag=1\nTo: <sip:a@b>\nCall-ID: c1\nCSeq: 1 OPTIONS\n"
                   "Content-Length: 0\n\n")
    assert parse_format("[$du][$tt][$rU][$cs]").eval(ctx) == "[<null>][<null>][a][1]"
    assert parse_format("$fU.x $rd.com").eval(ctx) == "x.x b.com"


class _Reg(ModuleRegistry):
    """A registry holding just the given modules (no core function table)."""

    def __init__(self, mods: list[Module]) -> None:
        self._mods = {m.name: m for m in mods}


def test_module_pv_class() -> None:
    m = Module("demo")
    store: dict[str, object] = {}

    class DemoPv(PvSpec):
        writable = True

        def __init__(self, key: str) -> None:
            self.key = key

        def get(self, ctx):  # type: ignore[no-untyped-def]
            return store.get(self.key)

        def set(self, ctx, value):  # type: ignore[no-untyped-def]
            store[self.key] = value

    def factory(inner: Optional[str]) -> PvSpec:
        if not inner:
            raise ValueError("$demo needs a key")
        return DemoPv(inner)

    m.pv("demo", factory)
    m.pv("T_reply_code", lambda inner: FuncPv(lambda ctx: 487))
    reg = _Reg([m])
    with pytest.raises(PvError, match="unknown pseudo-variable"):
        parse_pv("$demo(a)")
    d = parse_pv("$demo(t=>$ci)", reg)
    assert d.writable and d.text == "$demo(t=>$ci)" and d.key == "t=>$ci"
    d.set(None, "v")                                   # type: ignore[arg-type]
    assert parse_pv("$(demo(t=>$ci){s.toupper})", reg).get(None) == "V"  # type: ignore[arg-type]
    with pytest.raises(PvError, match="needs a key"):
        parse_pv("$demo", reg)
    assert parse_pv("$T_reply_code", reg).get(None) == 487  # type: ignore[arg-type]
    fmt = parse_format("code=$T_reply_code", reg)
    assert fmt.eval(None) == "code=487"  # type: ignore[arg-type]
    with pytest.raises(PvError):
        parse_pv("$(demo(a)[0])", reg)


def test_core_names_win_over_modules() -> None:
    m = Module("shadow")
    m.pv("ru", lambda inner: FuncPv(lambda ctx: "module"))
    ctx = make_ctx("OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n"
                   "From: <sip:x@y>;tag=1\nTo: <sip:a@b>\nCall-ID: c1\nCSeq: 1 OPTIONS\n"
                   "Content-Length: 0\n\n")
    assert parse_pv("$ru", _Reg([m])).get(ctx) == "sip:a@b"
