"""Compiled routes: operator typing and semantics, statements, return/exit/drop, $rc, fixups."""
from __future__ import annotations

import pytest

from sipcore.cfg import compile_text
from sipcore.errors import ConfigErrors
from sipcore.mod.exports import RouteType
from tests.unit.test_cfg_support import CALLS, HEADER, compile_routes, make_ctx, run_body, var


def value_of(expr: str, pre: str = ""):
    _, ctx = run_body(f"{pre}\n$var(out) = {expr};")
    return var(ctx, "out")


@pytest.mark.parametrize("expr,expected", [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("7 / 2", 3),
    ("-7 / 2", -3),
    ("7 mod 3", 1),
    ("-7 mod 3", -1),
    ("5 - 10", -5),
    ("6 | 1", 7),
    ("6 & 3", 2),
    ("6 ^ 3", 5),
    ("1 << 4", 16),
    ("256 >> 4", 16),
    ("~0", -1),
    ("-(2 + 3)", -5),
    ('"x" + 1', "x1"),
    ('"a" + "b" + 2 * 3', "ab6"),
    ("1 == 1", 1),
    ("1 != 1", 0),
    ('"abc" == "abc"', 1),
    ("2 < 3", 1),
    ("3 <= 2", 0),
    ("1 && 0", 0),
    ("-1 && 1", 1),          # C truth for && || !: non-zero
    ("0 || -1", 1),
    ("!0", 1),
    ("!-1", 0),
    ('"ABC" =~ "^a.c$"', 1),  # case-insensitive ERE search
    ('"xabcx" =~ "b[[:alpha:]]"', 1),
    ('"abc" =~ "^b"', 0),
    ('"10" eq "10"', 1),
    ('"010" ieq 10', 1),
    ('"a" ne "b"', 1),
    ('(int)"12" + 1', 13),
    ('(str)12 + 1', "121"),
    ('strlen("hello")', 5),
    ('strempty("")', 1),
    ('strempty("x")', 0),
    ('selval(1 > 0, "yes", "no")', "yes"),
    ('selval(0, 1, 2)', 2),
    ("defined $null", 0),
    ('defined "x"', 1),
    ("8 / 0", 0),
])
def test_constant_operators(expr, expected):
    assert value_of(expr) == expected


@pytest.mark.parametrize("pre,expr,expected", [
    ('$var(a) = "5";', "$var(a) + 1", "51"),          # left operand type decides
    ('$var(a) = 5;', "$var(a) + 1", 6),
    ('$var(a) = "5";', "(int)$var(a) + 1", 6),
    ('$var(a) = "5";', "$var(a) - 1", 4),             # string PV converted at runtime
    ('$var(a) = "abc";', "$var(a) == \"abc\"", 1),
    ('$var(a) = 3;', "$var(a) == \"3\"", 1),
    ('$var(a) = "x";', "$var(a) * 2", 0),
    ('$var(s) = "abc";', "$var(s) > 0", 0),
    ('$avp(x) = 1;', "$avp(y) == $null", 1),
    ('$avp(x) = 1;', "$avp(x) != $null", 1),
    ('$avp(x) = 1;', "defined $avp(x)", 1),
    ('$avp(x) = "v";', "$avp(nope) == \"\"", 1),       # null takes the other side's type
    ('$avp(x) = "v";', "$avp(nope) == 0", 1),
    ('$var(re) = "^b";', '"bob" =~ $var(re)', 1),     # regex from a PV
    ('$var(a) = 2;', "$var(a) + $var(a) * $var(a)", 6),
])
def test_runtime_typed_operators(pre, expr, expected):
    assert value_of(expr, pre) == expected


def test_core_keywords():
    body = """
    if (method == "invite") $var(m) = 1;
    if (method =~ "^(INVITE|ACK)$") $var(m2) = 1;
    if (uri == "SIP:bob@127.0.0.1") $var(u) = 1;
    if (uri == myself) $var(me) = 1;
    if (from_uri == myself) $var(fme) = 1; else $var(fme) = 0;
    if (src_ip == 10.0.0.0/8) $var(net) = 1;
    if (src_ip == 10.1.2.3) $var(ip) = 1;
    if (src_ip != 192.168.0.0/255.255.0.0) $var(notnet) = 1;
    if (proto == UDP && af == INET) $var(p) = 1;
    if (src_port == 5060 && msg:len > 100) $var(len) = 1;
    if (to_uri =~ "example.com") $var(to) = 1;
    """
    _, ctx = run_body(body)
    for n in ("m", "m2", "u", "me", "net", "ip", "notnet", "p", "len", "to"):
        assert var(ctx, n) == 1, n
    assert var(ctx, "fme") == 0


def test_if_else_chain_and_switch_fallthrough():
    body = """
    $var(x) = 2;
    if ($var(x) == 1) { $var(r) = "one"; }
    else if ($var(x) == 2) { $var(r) = "two"; }
    else { $var(r) = "other"; }
    switch ($var(x)) {
        case 1: $var(s) = "1";
        case 2: $var(s) = "2";
        case 3: $var(s) = $var(s) + "3"; break;
        case 4: $var(s) = "4";
        default: $var(s) = "d";
    }
    switch ($rU) {
        case "alice": $var(t) = "a"; break;
        case /"^b.b$": $var(t) = "regex"; break;
        default: $var(t) = "def";
    }
    switch ($var(x)) {
        case 9: $var(d) = 9; break;
        default: $var(d) = "default";
    }
    switch ($var(x)) { case 7: $var(n) = 7; }
    """
    _, ctx = run_body(body)
    assert var(ctx, "r") == "two"
    assert var(ctx, "s") == "23"
    assert var(ctx, "t") == "regex"
    assert var(ctx, "d") == "default"
    assert var(ctx, "n") == 0


def test_while_break_and_max_while_loops(caplog):
    body = """
    $var(i) = 0;
    while ($var(i) < 10) { $var(i) = $var(i) + 1; if ($var(i) == 4) break; }
    $var(j) = 0;
    while (1) { $var(j) = $var(j) + 1; }
    $var(after) = 1;
    """
    _, ctx = run_body(body, extra="max_while_loops=50\n")
    assert var(ctx, "i") == 4
    assert var(ctx, "j") == 50
    assert var(ctx, "after") == 1
    assert "runaway while" in caplog.text


def test_function_calls_return_codes_and_rc():
    body = """
    f_true();
    $var(a) = $rc;
    f_false();
    $var(b) = $retcode;
    if (f_false()) { $var(c) = "t"; } else { $var(c) = "f"; }
    if (!f_false()) $var(d) = 1;
    $var(e) = f_ret(-3);
    $var(e2) = $rc;
    $var(g) = f_ret(5) + 1;
    """
    rc, ctx = run_body(body)
    assert rc == 1
    assert (var(ctx, "a"), var(ctx, "b"), var(ctx, "c"), var(ctx, "d")) == (1, -1, "f", 1)
    assert (var(ctx, "e"), var(ctx, "e2"), var(ctx, "g")) == (0, -3, 2)


def test_function_returning_zero_stops_the_script():
    rc, ctx = run_body("$var(a) = 1; f_zero(); $var(a) = 2;")
    assert rc == 0 and var(ctx, "a") == 1
    rc, ctx = run_body("$var(a) = 1; if (f_zero()) { $var(a) = 2; } $var(a) = 3;")
    assert rc == 0 and var(ctx, "a") == 1


def test_route_return_values_and_rc():
    extra = """
route[TWO] { return 2; }
route[NEG] { return(-1); }
route[BARE] { return; }
route[FALL] { $var(fell) = 1; }
route[ZERO] { return(0); }
route[EXPR] { return $var(k) + 1; }
"""
    body = """
    route(TWO); $var(a) = $rc;
    if (route(NEG)) $var(b) = "t"; else $var(b) = "f";
    $var(b2) = $rc;
    route(BARE); $var(c) = $rc;
    route(FALL); $var(d) = $rc;
    $var(k) = 4; route(EXPR); $var(e) = $rc;
    route("TWO"); $var(f) = $rc;
    $var(name) = "NEG"; route($var(name)); $var(g) = $rc;
    route(ZERO);
    $var(never) = 1;
    """
    cfg = compile_routes(body, extra)
    ctx = make_ctx()
    assert cfg.run("request", None, ctx) == 0
    got = {n: var(ctx, n) for n in "a b b2 c d e f g never".split()}
    assert got == {"a": 2, "b": "f", "b2": -1, "c": 1, "d": 1, "e": 5, "f": 2, "g": -1,
                   "never": 0}


def test_top_level_return_value_and_exit_drop():
    cfg = compile_routes("return 5;")
    assert cfg.run("request", None, make_ctx()) == 5
    cfg = compile_routes("$var(z) = 1; exit; $var(z) = 2;")
    ctx = make_ctx()
    assert cfg.run("request", None, ctx) == 0 and var(ctx, "z") == 1 and not ctx.dropped
    cfg = compile_routes("route(D); $var(z) = 3;", "route[D] { drop; }")
    ctx = make_ctx()
    assert cfg.run("request", None, ctx) == 0 and ctx.dropped
    cfg = compile_routes("exit(5);")
    assert cfg.run("request", None, make_ctx()) == 0


def test_max_recursive_level(caplog):
    cfg = compile_routes("route(LOOP); $var(after) = $rc;",
                         "max_recursive_level=5\nroute[LOOP] { $var(n) = $var(n) + 1; "
                         "route(LOOP); return $rc; }")
    ctx = make_ctx()
    assert cfg.run("request", None, ctx) == 1
    assert var(ctx, "n") == 5 and var(ctx, "after") == -1
    assert ctx.level == 0
    assert "too many recursive routing levels" in caplog.text


def test_run_sets_route_type_and_missing_route_is_noop():
    cfg = compile_text(HEADER + """
request_route { exit; }
failure_route[F] { $var(rt) = 1; }
onreply_route { return 3; }
event_route[tm:local-request] { exit; }
event_route[core:worker-one-init] { exit; }
""")
    ctx = make_ctx()
    cfg.run("failure", "F", ctx)
    assert ctx.route_type == RouteType.FAILURE
    assert cfg.run("onreply", None, ctx) == 3 and ctx.route_type == RouteType.ONREPLY
    assert cfg.run("reply", None, ctx) == 3
    cfg.run("event", "tm:local-request", ctx)
    assert ctx.route_type == RouteType.LOCAL
    cfg.run("event", "core:worker-one-init", ctx)
    assert ctx.route_type == RouteType.EVENT
    assert cfg.run("branch", "NOPE", ctx) == 1
    assert cfg.has_route("failure", "F") and not cfg.has_route("branch", "NOPE")
    assert cfg.has_route("onreply", None) and cfg.has_route("reply")
    assert cfg.route_names("event") == ["tm:local-request", "core:worker-one-init"]
    assert cfg.engine == "native"


def test_fixups_static_and_dynamic():
    body = """
    f_str("plain");
    f_str("user $rU at $rd");
    f_str("s", "42");
    f_str(12);
    f_flag(FLT_ACC);
    f_flag(NAMED);
    f_flag(3);
    f_ret("7");
    $var(n) = 9;
    f_ret("$var(n)");
    f_ret($var(n));
    f_rx("^BOB", "$rU");
    f_any($var(n));
    f_any("lit");
    f_any($null);
    f_even(4);
    $var(ev) = "6";
    f_even_dyn("$var(ev)");
    $var(ev) = "7";
    f_even_dyn("$var(ev)");
    $var(dst) = 0;
    f_pvar($var(dst), "written");
    """
    cfg = compile_routes(body, "#!define FLT_ACC 1\nflags NAMED:9\n")
    CALLS.clear()
    ctx = make_ctx()
    cfg.run("request", None, ctx)
    assert CALLS == [
        ("f_str", "plain"), ("f_str", "user bob at 127.0.0.1"), ("f_str2", "s", 42),
        ("f_str", "12"), ("f_flag", 1), ("f_flag", 9), ("f_flag", 3), ("f_ret", 7),
        ("f_ret", 9), ("f_ret", 9), ("f_rx", True), ("f_any", 9), ("f_any", "lit"),
        ("f_any", None), ("f_even", 4), ("f_even_dyn", 6)]
    assert var(ctx, "dst") == "written"


def test_static_args_are_resolved_at_compile_time():
    cfg = compile_routes('f_str("plain"); f_ret("7"); f_flag(2); f_str("s", "42");')
    src = cfg.python_source("request")
    assert "f_str(ctx, 'plain')" in src and "f_ret(ctx, 7)" in src and "f_flag(ctx, 2)" in src
    assert "f_str_2(ctx, 's', 42)" in src   # the other overload of f_str: 2 arguments


def test_generated_code_maps_back_to_cfg_lines():
    cfg = compile_text(HEADER + "request_route {\n  f_true();\n  $var(x) = 1 / $var(y);\n"
                       "  f_any($hdr(X-Nope));\n}\n", "map.cfg")
    fn = cfg.route_function("request")
    lines = cfg.python_source("request").splitlines()
    idx = next(i for i, ln in enumerate(lines) if "f_true" in ln or "= ctx.rc =" in ln)
    pos = cfg.cfg_pos(fn.__code__.co_filename, idx + 1)
    assert pos is not None and (pos.file, pos.line) == ("map.cfg", 4)


def test_exception_in_module_function_is_annotated_with_cfg_position():
    from sipcore.mod import Module
    from tests.unit.test_cfg_support import _register

    m = Module("fakeboom")

    @m.function("boom")
    def boom(ctx) -> int:
        raise RuntimeError("kaboom")

    _register(m)
    cfg = compile_text('loadmodule "fakeboom"\nrequest_route {\n  $var(a) = 1;\n  boom();\n}\n',
                       "boom.cfg")
    with pytest.raises(RuntimeError) as ei:
        cfg.run("request", None, make_ctx())
    assert "while running the configuration at boom.cfg:4:3" in ei.value.__notes__


def test_modparam_values_are_set_on_modules():
    compile_text(HEADER + 'modparam("fakemod", "p_int", 5)\nmodparam("fakemod", "p_str", '
                 '"a" "b")\nmodparam("fake.*", "p_multi", "x")\nmodparam("fakemod", "p_multi", '
                 '"y")\nmodparam("fakemod|faketm", "fr_timer", "1000")\n')
    from tests.unit.test_cfg_support import FAKEMOD, FAKETM

    assert FAKEMOD.p.p_int == 5 and FAKEMOD.p.p_str == "ab"
    assert FAKEMOD.p.p_multi == ["x", "y"]
    assert FAKETM.p.fr_timer == 1000


def test_cfgengine():
    cfg = compile_text('cfgengine "lua"\n')
    assert cfg.engine == "lua" and not cfg.has_route("request")


def test_route_in_subroute_checked_against_callers():
    # f_reply_only is ONREPLY only: fine in a route[] reached from onreply_route
    compile_text(HEADER + "onreply_route[R] { route(S); }\nroute[S] { f_reply_only(); }\n")
    with pytest.raises(ConfigErrors) as ei:
        compile_text(HEADER + "request_route { route(S); }\nroute[S] {\n  f_reply_only();\n}\n",
                     "rt.cfg")
    (e,) = ei.value.errors
    assert (e.pos.line, e.pos.col) == (5, 3)
    assert e.message.startswith("f_reply_only() is not allowed in route[S]")


def test_onsend_keywords_read_the_send_destination():
    from sipcore.net.addr import Dest, SocketInfo

    cfg = compile_text(HEADER + """
onsend_route {
    if (snd_ip == 127.0.0.1 && snd_port == 5060 && to_ip == 10.0.0.66 && to_port == 5070
        && snd_proto == UDP && snd_af == INET) {
        drop;
    }
}
""")
    ctx = make_ctx()
    ctx.send_dest = Dest("udp", "10.0.0.66", 5070, SocketInfo("udp", "127.0.0.1", 5060))
    assert cfg.run("onsend", None, ctx) == 0 and ctx.dropped
    ctx = make_ctx()
    ctx.send_dest = Dest("udp", "10.0.0.67", 5070, SocketInfo("udp", "127.0.0.1", 5060))
    assert cfg.run("onsend", None, ctx) == 1 and not ctx.dropped


def test_ipv6_source_comparisons():
    body = """
    if (src_ip == [2001:db8::]/32) $var(a) = 1;
    if (src_ip == [2001:db8::5]) $var(b) = 1;
    if (src_ip != 10.0.0.0/8) $var(c) = 1;
    """
    _, ctx = run_body(body, ctx=make_ctx(src_ip="2001:db8::5"))
    assert (var(ctx, "a"), var(ctx, "b"), var(ctx, "c")) == (1, 1, 1)


def test_dynamic_route_to_unknown_name_fails(caplog):
    rc, ctx = run_body('$var(r) = "NOPE"; route($var(r)); $var(x) = $rc;')
    assert rc == 1 and var(ctx, "x") == -1
    assert "route(NOPE): no such route block" in caplog.text


def test_exit_inside_loops_and_switch_stops_everything():
    body = """
    $var(i) = 0;
    while ($var(i) < 5) {
        $var(i) = $var(i) + 1;
        switch ($var(i)) { case 3: exit; }
    }
    $var(after) = 1;
    """
    rc, ctx = run_body(body)
    assert rc == 0 and var(ctx, "i") == 3 and var(ctx, "after") == 0


def test_dollar_question_mark_and_retcode_alias():
    _, ctx = run_body("f_false(); $var(a) = $?; f_true(); $var(b) = $retcode;")
    assert (var(ctx, "a"), var(ctx, "b")) == (-1, 1)


def test_deeply_nested_blocks_give_a_config_error_not_a_crash():
    body = "".join("while (0) {\n" for _ in range(25)) + "exit;\n" + "}\n" * 25
    with pytest.raises(ConfigErrors) as ei:
        compile_routes(body)
    assert "too complex" in ei.value.errors[0].message


def test_constant_folding_in_generated_code():
    cfg = compile_routes('$var(a) = 2 * 3 + 1; $var(b) = "x" + 2; $var(c) = strlen("abc");')
    src = cfg.python_source("request")
    assert "(ctx, 7)" in src and "(ctx, 'x2')" in src and "(ctx, 3)" in src


def test_named_route_types_for_subroutes_called_from_several_kinds():
    cfg = compile_text(HEADER + """
request_route { route(COMMON); }
failure_route[F] { route(COMMON); }
route[COMMON] { t_relay(); }
""")
    assert cfg.has_route("route", "COMMON")
    with pytest.raises(ConfigErrors):
        compile_text(HEADER + "onsend_route { route(C); }\nroute[C] { f_reply_only(); }\n")


def test_cfg_line_is_set_before_calls():
    seen = []
    from sipcore.mod import Module
    from tests.unit.test_cfg_support import _register

    m = Module("fakeline")

    @m.function("where")
    def where(ctx) -> int:
        seen.append(ctx.cfg_line)
        return 1

    _register(m)
    cfg = compile_text('loadmodule "fakeline"\nrequest_route {\n  where();\n  $var(a) = 1;\n'
                       '  if (where()) {\n    where();\n  }\n}\n')
    cfg.run("request", None, make_ctx())
    assert seen == [3, 5, 6]


def test_route_value_is_its_last_action_when_it_falls_off_the_end():
    extra = """
route[LASTCALL] { $var(x) = 1; f_false(); }
route[LASTIF] { if ($var(x) == 1) { f_ret(4); } else { f_true(); } }
route[IFFALSE] { if ($var(x) == 99) { f_false(); } }
route[CHAIN] { route(LASTCALL); }
route[ASSIGN] { f_false(); $var(y) = 2; }
"""
    body = """
    if (route(LASTCALL)) $var(a) = "t"; else $var(a) = "f";
    route(LASTIF); $var(b) = $rc;
    route(IFFALSE); $var(c) = $rc;
    route(CHAIN); $var(d) = $rc;
    route(ASSIGN); $var(e) = $rc;
    """
    cfg = compile_routes(body, extra)
    ctx = make_ctx()
    cfg.run("request", None, ctx)
    got = {n: var(ctx, n) for n in "abcde"}
    assert got == {"a": "f", "b": 4, "c": 1, "d": -1, "e": 1}
