"""KSR is generated from the export tables: every native function is reachable, arguments are
converted as the fixups say, and return values follow Kamailio's KEMI rules."""
from __future__ import annotations

import re
import types

import pytest

from sipcore.kemi import CURRENT, build_ksr
from sipcore.kemi.registry import KEMI_MODULE_NAMES, make_caller
from sipcore.kemi.stub import all_modules_registry, generate
from sipcore.mod import REQUEST_ROUTE, Custom, FuncExport, Fx
from sipcore.mod.exports import RouteType
from sipcore.mod.loader import available_modules, import_module_decl
from sipcore.testing import make_ctx

OPTS = ("OPTIONS sip:alice@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK1\n"
        "Max-Forwards: 70\nFrom: <sip:a@b>;tag=1\nTo: <sip:b@c>\nCall-ID: c1\n"
        "CSeq: 1 OPTIONS\nContent-Length: 0\n\n")


@pytest.fixture(scope="module")
def registry():
    return all_modules_registry()


@pytest.fixture(scope="module")
def tree(registry):
    return build_ksr(registry)


def _implemented() -> list[str]:
    return [n for n in available_modules() if import_module_decl(n).implemented]


def test_all_implemented_modules_are_loaded(registry):
    assert set(registry.names()) == set(_implemented())
    assert len(registry.names()) >= 15


def test_every_native_function_is_reachable_through_ksr(registry, tree):
    missing = []
    for mod in [registry.core, *registry]:
        ns = "" if mod is registry.core else KEMI_MODULE_NAMES.get(mod.name, mod.name) + "."
        for fname, overloads in mod.functions.items():
            for fe in overloads:
                if not fe.kemi:
                    # native-only: KSR.x.modf finds it by name and arity
                    if not any(f is fe for f in registry.find_function(fname)):
                        missing.append(f"modf:{mod.name}.{fname}/{len(fe.args)}")
                    continue
                path = f"KSR.{ns}{fe.kemi_name or fe.name}"
                fn = tree.lookup(path)
                if fn is None:
                    missing.append(f"{path}/{len(fe.args)}")
    assert not missing, missing
    kemi_entries = [e for e in tree.entries if e.path != "KSR.x.modf"]
    assert len(kemi_entries) > 300


def test_entries_cover_every_export(registry, tree):
    n_exports = sum(len(o) for m in [registry.core, *registry] for o in m.functions.values())
    assert len(tree.entries) == n_exports


def test_kamailio_core_names_present(tree):
    for name in ("is_INVITE", "is_ACK", "is_BYE", "is_CANCEL", "is_REGISTER", "is_OPTIONS",
                 "is_method_in", "is_method", "setflag", "resetflag", "isflagset",
                 "setbflag", "resetbflag", "isbflagset", "setsflag", "issflagset", "info",
                 "err", "warn", "notice", "dbg", "crit", "log", "seturi", "setuser",
                 "sethost", "setdsturi", "resetdsturi", "isdsturiset", "forward",
                 "forward_uri", "is_myself", "is_myself_ruri", "is_UDP", "set_drop", "route"):
        assert callable(tree.core.get(name)), name
    assert set(tree.pv) >= {"get", "gete", "getw", "geti", "sets", "seti", "unset", "is_null"}
    assert set(tree.hdr) >= {"append", "append_after", "insert", "insert_before", "remove",
                             "rmappend", "rminsert", "is_present", "get", "gete", "getw",
                             "append_to_reply"}
    assert set(tree.x) == {"exit", "drop", "modf"}
    assert "pvx" in tree.modules and "pv" not in tree.modules


def _with_ctx(registry, raw=OPTS, rtype=RouteType.REQUEST):
    from sipcore.testing import RecordingCore

    ctx = make_ctx(raw, core=RecordingCore(), route_type=rtype)
    CURRENT.ctx, CURRENT.registry = ctx, registry
    return ctx


def test_arguments_converted_by_fixup(registry):
    seen = []

    def impl(ctx, s, i, rx, pv, custom):
        seen.append((s, i, rx, pv, custom))
        return 0

    fe = FuncExport("f", impl, (Fx.SPVE, Fx.IGP, Fx.REGEX, Fx.PVAR, Custom(lambda t: t.upper())))
    call = make_caller(fe, registry, "KSR.t.f")
    ctx = _with_ctx(registry)
    assert call("$ru", 7.0, "^ab+", "$rU", "xy") == 0          # 0 is just a value
    s, i, rx, pv, custom = seen[0]
    assert s == "$ru"                          # KEMI strings are literal, no PV expansion
    assert i == 7 and isinstance(i, int)
    assert isinstance(rx, re.Pattern) and rx.search("ABBy")   # case-insensitive like cfg
    assert pv.get(ctx) == "alice" and custom == "XY"
    with pytest.raises(TypeError):
        call("only one")


def test_bad_custom_argument_returns_minus_one(registry):
    def parse(t):
        raise ValueError("nope")

    fe = FuncExport("g", lambda ctx, v: 1, (Custom(parse),))
    _with_ctx(registry)
    assert make_caller(fe, registry, "KSR.t.g")("x") == -1


def test_route_type_checked_at_call_time(registry):
    fe = FuncExport("h", lambda ctx: 1, (), REQUEST_ROUTE)
    call = make_caller(fe, registry, "KSR.t.h")
    ctx = _with_ctx(registry)
    assert call() == 1
    ctx.route_type = RouteType.ONREPLY
    assert call() == -1


def test_modf_applies_native_fixups(registry, tree):
    ctx = _with_ctx(registry)
    # append_hf: SPVE is expanded by modf (Kamailio's modf runs the cfg fixups)
    assert tree.x["modf"]("append_hf", "X-User: $rU\r\n") == 1
    assert b"X-User: alice\r\n" in ctx.msg.build()
    assert tree.x["modf"]("no_such_function") == -1


def test_boolean_core_and_int_module_returns(registry, tree):
    ctx = _with_ctx(registry)
    assert tree.core["setflag"](3) is True
    assert tree.core["isflagset"](3) is True and ctx.flags == 8
    assert tree.core["isflagset"](4) is False
    assert tree.core["is_OPTIONS"]() is True and tree.core["is_INVITE"]() is False
    assert tree.core["is_method_in"]("io") is True and tree.core["is_method_in"]("RB") is False
    assert tree.modules["sl"]["sl_send_reply"](404, "Not Found") == 1
    assert tree.modules["siputils"]["has_totag"]() == -1
    assert tree.core["seturi"]("sip:bob@127.0.0.2") is True
    assert tree.pv["get"]("$ru") == "sip:bob@127.0.0.2"


def test_overloads_dispatch_by_arity(registry, tree):
    ctx = _with_ctx(registry)
    append_hf = tree.modules["textops"]["append_hf"]
    assert append_hf("X-A: 1\r\n") == 1
    assert append_hf("X-B: 2\r\n", "Call-ID") == 1
    out = ctx.msg.build()
    assert out.index(b"Call-ID: c1") < out.index(b"X-B: 2") < out.index(b"X-A: 1")
    with pytest.raises(TypeError):
        append_hf()


def test_stub_lists_every_ksr_name(registry, tree):
    text = generate(registry)
    compile(text, "KSR.pyi", "exec")
    for name in tree.core:
        assert f"def {name}(" in text
    for ns, funcs in tree.modules.items():
        assert f"class _{ns}:" in text and f"{ns}: _{ns}" in text
        for name in funcs:
            assert f"def {name}(" in text
    assert "def sl_send_reply(code: str | int, reason: str) -> int" in text


def test_python_ksr_module_importable(tree):
    from modules.app_python3.py_engine import ksr_module

    ksr = ksr_module(tree)
    import KSR
    import KSR.sl

    assert isinstance(ksr, types.ModuleType)
    assert KSR.sl.sl_send_reply is tree.modules["sl"]["sl_send_reply"]
    assert KSR.pv.get is tree.pv["get"] and KSR.x.modf is tree.x["modf"]
