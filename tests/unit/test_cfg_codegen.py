"""The generated Python of route blocks reads like the configuration: names derived from the
cfg text, one line marker per statement, no unreachable code (sipcore/cfg/codegen.py)."""
from __future__ import annotations

import re

import pytest

from sipcore.cfg import compile_text
from sipcore.cfg.codegen import Names, ident
from sipcore.mod import Custom, Module
from tests.unit.test_cfg_support import (CALLS, HEADER, _register, compile_routes, make_ctx,
                                         run_body, var)


def _build_fakenames() -> Module:
    """Functions whose cfg names are Python builtins, runtime helpers or generated names."""
    m = Module("fakenames", summary="functions named like what the generated code uses")

    def rec(name: str):
        def impl(ctx) -> int:
            CALLS.append((name,))
            return 1
        return impl

    for name in ("len", "str", "callv", "to_int", "ScriptExit", "route_RELAY", "get_var_s",
                 "f_str_2", "match"):
        m.function(name)(rec(name))

    @m.function("f_set", args=(Custom(lambda t: frozenset(t.split("|")), name="set"),))
    def f_set(ctx, s) -> int:
        CALLS.append(("f_set", tuple(sorted(s))))
        return 1

    return m


_register(_build_fakenames())


@pytest.mark.parametrize("text,limit,expected", [
    ("t_relay", 0, "t_relay"),
    ("$var(rc)", 0, "var_rc"),
    ("$(ru{uri.user})", 0, "ru_uri_user"),
    ("tm:local-request", 0, "tm_local_request"),
    ("INVITE|SUBSCRIBE", 0, "INVITE_SUBSCRIBE"),
    ("Malformed SIP request from $si:$sp\n", 24, "Malformed_SIP_request"),
    ("[12][0-9][0-9]", 0, "12_0_9_0_9"),
    ("!!!", 0, "x"),
    ("averyveryverylongwordwithoutbreaks", 10, "averyveryv"),
])
def test_ident(text, limit, expected):
    assert ident(text, limit) == expected
    assert ("x" + expected).isidentifier()


def test_names_hand_out_each_name_once():
    names = Names(["taken"])
    assert names.new("t_relay", "t_relay_2") == "t_relay"
    assert names.new("t_relay", "t_relay_2") == "t_relay_2"
    assert names.new("t_relay", "t_relay_2") == "t_relay_v2"
    assert names.new("taken") == "taken_v2"
    assert names.new("len", "len_0") == "len_0"       # a builtin the generated code may use
    assert names.new("rc") == "rc_v2"                  # a local of every route function
    assert names.new("0day") == "n_0day"               # always an identifier


@pytest.mark.parametrize("body,expected", [
    # cfg function -> its name; the other overload in the same config: NAME_<n args>
    ('f_true(); f_str("a"); f_str("b", "1");',
     ["f_true(ctx)", "f_str(ctx, 'a')", "f_str_2(ctx, 'b', 1)"]),
    # arguments with pseudo-variables parsed per call
    ('$var(x) = 4; f_even_dyn("$var(x)");', ["f_even_dyn_dyn(ctx, fmt_var_x(ctx))",
                                              "set_var_x(ctx, 4)"]),
    # parsed constants: int inline, others named after the fixup and the text, shared
    ('f_even("4"); f_set("A|B"); f_set("A|B"); f_set("C");',
     ["f_even(ctx, 4)", "f_set(ctx, set_A_B)", "f_set(ctx, set_C)"]),
    # PV getters/setters, regexes, networks, route blocks
    ('if ($rU =~ "^bob") route(RELAY); if (src_ip == 10.0.0.0/8) $var(n) = $rU;',
     ["get_rU(ctx)", "rx_bob.search(", "route_call(ctx, route_RELAY, 'RELAY',",
      "ip_in(ctx.rcv.src_ip, net_10_0_0_0_8)", "set_var_n(ctx, get_rU(ctx))"]),
])
def test_generated_names_follow_the_cfg(body, expected):
    cfg = compile_routes(body, 'loadmodule "fakenames"\nroute[RELAY] { f_true(); }\n')
    src = cfg.python_source("request")
    for text in expected:
        assert text in src
    assert not re.search(r"\b[A-Z]{1,3}\d+\b", src)    # no opaque F25/K3/RX7 names


def test_names_never_shadow_builtins_helpers_or_routes():
    """A cfg function named len/str/callv/...: the generated code still uses the builtin or
    helper, and calls the module function under another name."""
    body = """
    $var(s) = "abc";
    $var(n) = strlen($var(s) + 1);
    len(); str(); callv(); to_int(); ScriptExit(); route_RELAY(); get_var_s(); f_str_2(); match();
    if (f_true()) { $var(t) = (int)"12"; }
    route(RELAY);
    f_str("a");
    f_str("a", "1");
    """
    cfg = compile_routes(body, 'loadmodule "fakenames"\nroute[RELAY] { f_false(); }\n')
    src = cfg.python_source("request")
    for fn in ("len", "str", "callv", "to_int", "ScriptExit", "route_RELAY", "match"):
        assert f"ctx.rc = {fn}_0(ctx)\n" in src
    assert "len(to_str(plus(get_var_s(ctx), 1)))" in src and "= get_var_s_0(ctx)\n" in src
    assert "route_call(ctx, route_RELAY, 'RELAY'" in src
    # f_str_2 is the cfg function of fakenames: fakemod's f_str/2 takes the next alternative
    assert "= f_str_2(ctx)" in src and "= f_str(ctx, 'a')" in src
    assert "= f_str__fakemod(ctx, 'a', 1)" in src
    ctx = make_ctx()
    CALLS.clear()
    from sipcore.pv import vars as pvvars

    pvvars.reset_vars()
    assert cfg.run("request", None, ctx) == 1
    assert (var(ctx, "n"), var(ctx, "t")) == (4, 12)
    assert [c[0] for c in CALLS] == ["len", "str", "callv", "to_int", "ScriptExit",
                                     "route_RELAY", "get_var_s", "f_str_2", "match", "f_true",
                                     "f_false", "f_str", "f_str2"]


def test_route_functions_are_named_after_their_blocks():
    cfg = compile_text(HEADER + """
request_route { route(A_B); }
route[A_B] { t_on_failure("F"); t_on_reply("R"); }
route["A-B"] { f_true(); }
failure_route[F] { f_true(); }
onreply_route[R] { f_true(); }
onreply_route { f_true(); }
branch_route[BR] { f_true(); }
event_route[tm:local-request] { f_true(); }
""", "names.cfg")
    expect = {("request", None): "request_route", ("route", "A_B"): "route_A_B",
              ("route", "A-B"): "route_A_B_v2", ("failure", "F"): "failure_route_F",
              ("onreply", "R"): "onreply_route_R", ("reply", None): "reply_route",
              ("branch", "BR"): "branch_route_BR",
              ("event", "tm:local-request"): "event_route_tm_local_request"}
    for (kind, name), fn in expect.items():
        src = cfg.python_source(kind, name)
        assert f"\ndef {fn}(ctx):\n" in src, src
        assert cfg.route_function(kind, name).__name__ == fn


def test_behaviour_unchanged_with_readable_names():
    rc, ctx = run_body('f_set("A|B"); f_set("A|B"); $var(x) = 6; f_even_dyn("$var(x)");',
                       'loadmodule "fakenames"\n')
    assert rc == 1
    assert CALLS == [("f_set", ("A", "B")), ("f_set", ("A", "B")), ("f_even_dyn", 6)]
