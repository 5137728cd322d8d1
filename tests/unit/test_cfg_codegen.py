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


# ---- line markers: ctx.cfg_line is set once per statement --------------------------------

LINES: list[int] = []
_STATE: dict = {}


def _build_fakelines() -> Module:
    m = Module("fakelines", summary="functions that record ctx.cfg_line")

    @m.function("where")
    def where(ctx) -> int:
        LINES.append(ctx.cfg_line)
        return 1

    @m.function("countdown")
    def countdown(ctx) -> int:
        """1 while the counter lasts (a while condition), then -1."""
        LINES.append(ctx.cfg_line)
        _STATE["n"] = _STATE.get("n", 0) - 1
        return 1 if _STATE["n"] >= 0 else -1

    @m.function("run_event")
    def run_event(ctx) -> int:
        """Runs event_route[fake:ev] on this ctx, as forward() runs onsend_route."""
        return _STATE["cfg"].run("event", "fake:ev", ctx)

    return m


_register(_build_fakelines())

_MARK = re.compile(r"ctx\.cfg_line = (\d+)")


def _run_lines(text: str, countdown: int = 0):
    from sipcore.pv import vars as pvvars

    cfg = compile_text('loadmodule "fakelines"\n' + text, "lines.cfg")
    _STATE.clear()
    _STATE.update(cfg=cfg, n=countdown)
    LINES.clear()
    pvvars.reset_vars()
    cfg.run("request", None, make_ctx())
    return cfg.python_source("request"), list(LINES)


@pytest.mark.parametrize("text,lines_seen,markers", [
    # a statement inside another one on the same line: the line is set once
    ("request_route {\n  if (where()) where();\n}\n", [3, 3], ["3"]),
    ("request_route {\n  if (!where()) { $var(a) = 1; } else where();\n}\n", [3, 3], ["3"]),
    # two statements on one line, and joined branches that leave the same line
    ("request_route {\n  where(); where();\n  if ($var(x) == 0) { where(); } else { where(); }"
     " where();\n}\n", [3, 3, 4, 4], ["3", "4", "4"]),
    # a route() in between: its own markers run, so the line is set again after it
    ("request_route {\n  if (route(R)) where();\n}\nroute[R] {\n  where();\n}\n",
     [6, 3], ["3", "3"]),
    # a route block a function runs on this ctx gives the line back (CompiledConfig.run)
    ("request_route {\n  if (run_event()) where();\n}\n"
     "event_route[fake:ev] {\n  where();\n}\n", [6, 3], ["3"]),
    # the lines change: each statement sets its own
    ("request_route {\n  where();\n  $var(a) = 1;\n  if (where()) {\n    where();\n  }\n}\n",
     [3, 5, 6], ["3", "5", "6"]),
    # switch cases reached by a jump or by falling through
    ("request_route {\n  switch ($var(x)) {\n  case 0: where();\n  case 1: where(); break;\n"
     "  default: where();\n  }\n}\n", [4, 5], ["4", "5", "6"]),
])
def test_each_statement_sets_its_line_once(text, lines_seen, markers):
    src, seen = _run_lines(text)
    assert seen == lines_seen
    assert _MARK.findall(src) == markers, src


def test_while_condition_runs_at_its_own_line_each_time():
    src, seen = _run_lines("request_route {\n  while (countdown()) {\n    where();\n  }\n"
                           "  where();\n}\n", countdown=2)
    assert seen == [3, 4, 3, 4, 3, 6]
    assert _MARK.findall(src) == ["3", "4", "3", "6"]   # before the loop, and again at its end


DEFINES = ("WITH_MYSQL", "WITH_AUTH", "WITH_USRLOCDB", "WITH_ACCDB", "WITH_IPAUTH", "WITH_NAT",
           "WITH_PSTN", "WITH_ANTIFLOOD", "WITH_BLOCK", "WITH_VOICEMAIL", "WITH_TLS",
           "WITH_NATSIPPING", "WITH_MSGREBUILD")


@pytest.mark.parametrize("path,defines", [
    ("tests/data/compat/kamailio-5.6-default.cfg", ()),
    ("tests/data/compat/kamailio-5.6-default.cfg", DEFINES),
    ("etc/pykam.cfg", ()),
])
def test_real_configs_have_no_duplicate_line_markers(path, defines):
    """These configs have no while loop: a route function sets each line at most once."""
    import os

    from sipcore.cfg import load_config

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = load_config(os.path.join(root, path), defines={d: None for d in defines})
    n = 0
    for kind in ("request", "route", "failure", "branch", "onreply", "reply", "onsend",
                 "event"):
        for name in cfg.route_names(kind):
            marks = _MARK.findall(cfg.python_source(kind, name))
            n += len(marks)
            assert len(marks) == len(set(marks)), (kind, name, marks)
    assert n > 20


def _build_fakeboom() -> Module:
    m = Module("fakeboom2", summary="a function that fails")

    @m.function("boom")
    def boom(ctx) -> int:
        raise RuntimeError("kaboom")

    return m


_register(_build_fakeboom())


@pytest.mark.parametrize("body,where", [
    ("  boom();\n", "5:3"),
    ("  if (f_true()) boom();\n", "5:17"),               # its line marker left out
    ("  $var(a) = 1;\n  boom(); exit;\n", "6:3"),       # the call before exit
    ("  if (f_true()) { if (f_true()) { boom(); } }\n", "5:35"),
    ("  switch ($var(a)) {\n    case 0: boom(); break;\n  }\n", "6:13"),
    ("  route(R);\n}\nroute[R] {\n  f_true();\n  boom(); return 1;\n", "9:3"),
])
def test_runtime_errors_still_point_at_the_cfg_statement(body, where):
    cfg = compile_text('loadmodule "fakeboom2"\n' + HEADER + "request_route {\n" + body + "}\n",
                       "boom.cfg")
    from sipcore.pv import vars as pvvars

    pvvars.reset_vars()
    with pytest.raises(RuntimeError) as ei:
        cfg.run("request", None, make_ctx())
    assert ei.value.__notes__ == [f"while running the configuration at boom.cfg:{where}"]


# ---- no unreachable code -------------------------------------------------------------------

def _stops(body: list) -> bool:
    """A Python statement list that never completes (return/raise/break at its end, or an
    if whose branches all stop)."""
    import ast

    if not body:
        return False
    last = body[-1]
    if isinstance(last, (ast.Return, ast.Raise, ast.Break, ast.Continue)):
        return True
    if isinstance(last, ast.If):
        return bool(last.orelse) and _stops(last.body) and _stops(last.orelse)
    return False


def unreachable_lines(src: str) -> list[str]:
    """Statements of SRC after one that never completes, and an `if rc == 0: raise` check
    right before a plain `raise ScriptExit()` (the script stops either way)."""
    import ast

    lines = src.splitlines()
    found = []
    for node in ast.walk(ast.parse(src)):
        for field in ("body", "orelse"):
            stmts = getattr(node, field, None)
            if not isinstance(stmts, list):
                continue
            for i, st in enumerate(stmts[:-1]):
                if _stops(stmts[: i + 1]):
                    found.extend(lines[x.lineno - 1].strip() for x in stmts[i + 1:])
                    break
                nxt = stmts[i + 1]
                if isinstance(st, ast.If) and ast.unparse(st.test) == "rc == 0" and \
                        isinstance(nxt, ast.Raise) and ast.unparse(nxt) == "raise ScriptExit()":
                    found.append(lines[st.lineno - 1].strip())
    return found


def test_unreachable_lines_finds_what_it_should():
    src = ("def f(ctx):\n    rc = g()\n    if rc == 0:\n        raise ScriptExit()\n"
           "    raise ScriptExit()\n    h()\n")
    assert unreachable_lines(src) == ["if rc == 0:", "h()"]
    src = ("def f(ctx):\n    if a:\n        return 1\n    else:\n        break\n"
           "    x = 1\n    return 1\n")
    assert unreachable_lines(src) == ["x = 1", "return 1"]
    assert unreachable_lines("def f(ctx):\n    if a:\n        return 1\n    return 2\n") == []


@pytest.mark.parametrize("body,rc,calls,absent", [
    # a call right before exit: the script stops whatever the call returns
    ("f_true(); exit;", 0, ["f_true"], ["rc == 0"]),
    ("f_zero(); exit;", 0, ["f_zero"], ["rc == 0"]),
    ("f_false(); return(0);", 0, ["f_false"], ["rc == 0"]),
    # statements after exit, return, drop, break: compiled (checked), not emitted
    ("exit; f_true(); $var(a) = 1;", 0, [], ["f_true", "set_var_a"]),
    ("return 3; f_true();", 3, [], ["f_true", "return 1"]),
    ("if ($var(x) == 0) { f_ret(2); return 2; } else { exit; } f_true();", 2, ["f_ret"],
     ["f_true", "return 1"]),
    ("if ($var(x) == 1) { exit; } else if ($var(x) == 0) { return 4; } else { drop; } f_true();",
     4, [], ["f_true", "return 1"]),
    ("while ($var(x) < 1) { f_true(); break; f_false(); } f_ret(5);", 5, ["f_true", "f_ret"],
     ["f_false"]),
    ("switch ($var(x)) { case 0: f_ret(6); return; f_false(); default: f_true(); }", 1,
     ["f_ret"], ["f_false"]),
])
def test_no_unreachable_code(body, rc, calls, absent):
    cfg = compile_routes(body)
    src = cfg.python_source("request")
    assert unreachable_lines(src) == [], src
    for text in absent:
        assert text not in src, src
    from sipcore.pv import vars as pvvars

    pvvars.reset_vars()
    CALLS.clear()
    assert cfg.run("request", None, make_ctx()) == rc
    assert [c[0] for c in CALLS] == calls


def test_a_call_returning_0_before_drop_stops_without_dropping():
    for ret, dropped in (("f_zero", False), ("f_true", True)):
        cfg = compile_routes(f"{ret}(); drop;")
        ctx = make_ctx()
        assert cfg.run("request", None, ctx) == 0
        assert ctx.dropped is dropped


def test_unreachable_statements_are_still_checked():
    from sipcore.errors import ConfigErrors

    with pytest.raises(ConfigErrors) as ei:
        compile_routes("exit;\nno_such_function();\n$var(a) = $nosuchpv;")
    msgs = [e.message for e in ei.value.errors]
    assert any('unknown function "no_such_function"' in m for m in msgs)
    assert any("$nosuchpv" in m for m in msgs)


@pytest.mark.parametrize("path,defines", [
    ("tests/data/compat/kamailio-5.6-default.cfg", ()),
    ("tests/data/compat/kamailio-5.6-default.cfg", DEFINES),
    ("etc/pykam.cfg", ()),
])
def test_real_configs_have_no_unreachable_code(path, defines):
    import os

    from sipcore.cfg import load_config

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = load_config(os.path.join(root, path), defines={d: None for d in defines})
    for kind in ("request", "route", "failure", "branch", "onreply", "reply", "onsend",
                 "event"):
        for name in cfg.route_names(kind):
            assert unreachable_lines(cfg.python_source(kind, name)) == [], (kind, name)


# ---- pykam -c --print-routes -------------------------------------------------------------

STOCK = "tests/data/compat/kamailio-5.6-default.cfg"


def _root() -> str:
    import os

    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pykam(monkeypatch, *args: str):
    from click.testing import CliRunner

    from sipcore import log as klog
    from sipcore.cli.server import main

    monkeypatch.setattr(klog, "configure", lambda **kw: None)   # keep this process's logging
    return CliRunner().invoke(main, list(args))


SMALL = """\
loadmodule "sl"
loadmodule "tm"
loadmodule "textops"
#!ifdef WITH_TWO
#!define CODE 202
#!else
#!define CODE 200
#!endif
request_route {
    if (is_method("OPTIONS")) { sl_send_reply(CODE, "Keepalive"); exit; }
    if (!t_is_set("failure_route")) t_on_failure("MISS");
    route(RELAY);
}
route[RELAY] {
    if (!t_relay()) sl_reply_error();
    exit;
}
failure_route[MISS] {
    if (t_is_canceled()) exit;
}
"""


def test_print_routes_shows_readable_python(tmp_path, monkeypatch):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL)
    res = _pykam(monkeypatch, "-c", "--print-routes", "-f", str(cfg))
    assert res.exit_code == 0, res.output
    out = res.stdout
    compile(out, "print-routes", "exec")
    assert f"# request_route at {cfg}:9\ndef request_route(ctx):\n" in out
    assert f"# route[RELAY] at {cfg}:14\ndef route_RELAY(ctx):\n" in out
    assert f"# failure_route[MISS] at {cfg}:18\ndef failure_route_MISS(ctx):\n" in out
    assert "if callv(ctx, is_method(ctx, methods_OPTIONS)):" in out
    assert "ctx.rc = sl_send_reply(ctx, 200, 'Keepalive')\n" in out
    assert "if (not callv(ctx, t_relay(ctx))):" in out
    assert "route_call(ctx, route_RELAY, 'RELAY', " in out
    assert "#   t_relay " in out and "#   methods_OPTIONS " in out   # what the names are
    # one marker for `if (!t_is_set(...)) t_on_failure(...);` (line 11)
    assert out.count("ctx.cfg_line = 11\n") == 1
    assert not re.search(r"\b[A-Z]{1,3}\d+\b", out)
    assert "ok, exiting" in res.stderr and "ok, exiting" not in out


def test_print_routes_applies_defines(tmp_path, monkeypatch):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL)
    res = _pykam(monkeypatch, "--print-routes", "-f", str(cfg), "-A", "WITH_TWO")   # -c implied
    assert res.exit_code == 0, res.output
    assert "sl_send_reply(ctx, 202, 'Keepalive')" in res.stdout


def test_print_routes_of_a_bad_config_prints_the_errors(tmp_path, monkeypatch):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(SMALL.replace("t_relay()", "t_relay_nope()"))
    res = _pykam(monkeypatch, "-c", "--print-routes", "-f", str(cfg))
    assert res.exit_code == 1
    assert res.stdout == ""
    assert f'{cfg}:15:10: unknown function "t_relay_nope"' in res.stderr


def test_print_routes_of_the_stock_config():
    """The stock Kamailio config, through the real command line."""
    import os
    import subprocess
    import sys

    assert os.path.exists(os.path.join(_root(), STOCK))
    p = subprocess.run([sys.executable, "-m", "sipcore.cli.server", "-c", "--print-routes",
                        "-f", STOCK, "-A", "WITH_NAT"], cwd=_root(), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    compile(out, "print-routes", "exec")
    for text in ("def request_route(ctx):", "def route_RELAY(ctx):",
                 "def failure_route_MANAGE_FAILURE(ctx):", "t_relay(ctx)",
                 "sl_send_reply(ctx, ", "if callv(ctx, is_method(ctx, methods_CANCEL)):",
                 "route_call(ctx, route_NATMANAGE, 'NATMANAGE', "):
        assert text in out
    assert not re.search(r"\b[A-Z]{1,3}\d+\b", out)
    # every block is there once, headed by its kind/name and cfg file:line
    heads = re.findall(r"^# (\S+) at (\S+):(\d+)\ndef (\w+)\(ctx\):$", out, re.M)
    assert len(heads) == len({h[3] for h in heads}) >= 15
    assert ("request_route", os.path.join(_root(), STOCK), "503", "request_route") in heads
