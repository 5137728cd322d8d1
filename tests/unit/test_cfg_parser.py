"""Parser: top-level items, route kinds, statements, precedence, syntax errors."""
from __future__ import annotations

import pytest

from sipcore.cfg import ast as A
from sipcore.cfg import compile_text, parse_text
from sipcore.errors import ConfigErrors
from sipcore.net.listen import AliasAddr, ListenAddr


def parse(text: str) -> A.Config:
    cfg, errors, _ = parse_text(text, "p.cfg")
    assert not errors, [str(e) for e in errors]
    return cfg


def expr_of(src: str) -> A.Expr:
    cfg = parse("request_route { if (" + src + ") { exit; } }")
    (stmt,) = cfg.items[0].body
    return stmt.cond


def shape(e: A.Expr) -> str:
    """Parenthesized rendering of the tree, to check precedence."""
    if isinstance(e, A.Binary):
        return f"({shape(e.left)} {e.op} {shape(e.right)})"
    if isinstance(e, A.Unary):
        return f"({e.op} {shape(e.operand)})"
    if isinstance(e, A.Const):
        return repr(e.value)
    if isinstance(e, A.Pv):
        return e.text
    if isinstance(e, A.Call):
        return f"{e.name}({', '.join(shape(a) for a in e.args)})"
    if isinstance(e, A.Keyword):
        return e.name
    if isinstance(e, A.IpLit):
        return f"ip:{e.text}"
    if isinstance(e, A.Myself):
        return "myself"
    if isinstance(e, A.Null):
        return "$null"
    return type(e).__name__


@pytest.mark.parametrize("src,expected", [
    ("1 + 2 * 3", "(1 + (2 * 3))"),
    ("1 - 2 - 3", "((1 - 2) - 3)"),
    ("$a & 4 == 4", "($a & (4 == 4))"),
    ("$a | $b & $c ^ $d", "($a | ($b & ($c ^ $d)))"),
    ("$a << 1 >> 2", "($a << (1 >> 2))"),
    ("$a == 1 || $b == 2 && $c == 3", "(($a == 1) || (($b == 2) && ($c == 3)))"),
    ("$a < 2 == $b > 3", "(($a < 2) == ($b > 3))"),
    ("!$a && $b", "((! $a) && $b)"),
    ("not $a or $b and $c", "((! $a) || ($b && $c))"),
    ("-$a + 1", "((- $a) + 1)"),
    ("(int)$a + 1", "(((int) $a) + 1)"),
    ("(str)$a + 1", "(((str) $a) + 1)"),
    ("defined $a && !defined $b", "((defined $a) && (! (defined $b)))"),
    ("$a mod 3 * 2", "(($a mod 3) * 2)"),
    ("$a eq \"x\" ieq 1", "(($a eq 'x') ieq 1)"),
    ("~$a", "(~ $a)"),
    ("(1 + 2) * 3", "((1 + 2) * 3)"),
    ("f(1, \"a\" \"b\") == 1", "(f(1, 'ab') == 1)"),
    ("-5", "-5"),
])
def test_precedence(src, expected):
    assert shape(expr_of(src)) == expected


def test_core_keywords_ip_and_myself():
    assert shape(expr_of("src_ip == 10.0.0.0/8")) == "(src_ip == ip:10.0.0.0/8)"
    assert shape(expr_of("dst_ip != [::1]")) == "(dst_ip != ip:[::1])"
    assert shape(expr_of("uri == myself")) == "(uri == myself)"
    assert shape(expr_of("msg:len > 100")) == "(msg:len > 100)"
    assert shape(expr_of("proto == UDP && af == INET6")) == "((proto == 'udp') && (af == 6))"
    assert shape(expr_of("$ru == $null")) == "($ru == $null)"


def test_onsend_keywords_only_in_onsend_route():
    cfg, errors, _ = parse_text("request_route { if (snd_ip == 1.2.3.4) drop; }", "p.cfg")
    assert [str(e) for e in errors] == ["p.cfg:1:21: 'snd_ip' is allowed only in onsend_route"]
    parse("onsend_route { if (snd_ip == 1.2.3.4 && to_port == 5060) drop; }")


def test_route_kinds_and_names():
    cfg = parse("""
route { exit; }
route[RELAY] { exit; }
route["quoted"] { exit; }
route[2] { exit; }
failure_route[F] { exit; }
branch_route[B] { exit; }
onreply_route[R] { exit; }
onreply_route { exit; }
reply_route { exit; }
onsend_route { exit; }
event_route[tm:local-request] { exit; }
event_route[xhttp:request] { exit; }
""")
    got = [(b.kind, b.name) for b in cfg.items]
    assert got == [("request", None), ("route", "RELAY"), ("route", "quoted"), ("route", "2"),
                   ("failure", "F"), ("branch", "B"), ("onreply", "R"), ("reply", None),
                   ("reply", None), ("onsend", None), ("event", "tm:local-request"),
                   ("event", "xhttp:request")]


def test_statements():
    cfg = parse("""
request_route {
  ;
  if ($a) f(); else if ($b) { g(); } else h();
  switch ($rU) { case 1: case "a": x(); break; case /"^0+": y(); default: ; }
  while ($i < 3) { $i = $i + 1; if ($i == 2) break; }
  $var(x) = 1;
  $(avp(x)[*]) = $null;
  return;
  return(2);
  return -1;
  exit;
  drop;
  route(R);
  noargs;
}""")
    body = cfg.items[0].body
    kinds = [type(s).__name__ for s in body]
    assert kinds == ["If", "Switch", "While", "Assign", "Assign", "Return", "Return", "Return",
                     "Exit", "Drop", "CallStmt", "CallStmt"]
    sw = body[1]
    assert [(c.label.value if c.label else None, c.is_regex) for c in sw.cases] == [
        (1, False), ("a", False), ("^0+", True), (None, False)]
    assert body[4].target.text == "$(avp(x)[*])"
    assert isinstance(body[10].call, A.RouteCall)
    assert body[11].call.name == "noargs"


def test_globals_listen_alias_flags_cfgvars():
    cfg = compile_text("""
debug=-1
log_stderror=yes
log_facility=LOG_LOCAL0
port=5070;
listen=udp:127.0.0.1:5060 advertise 1.2.3.4:5080 name "main"
socket_workers=2
listen=tcp:[::1]:5061
listen=10.0.0.1
alias="sip.example.com"
alias=tls:other.example.com:5061
flags FLAG_A:3, FLAG_B
pstn.gw_ip = "10.0.0.101" desc "PSTN GW Address"
kemi.reply_route_callback="my_reply"
shm=128
""", "g.cfg")
    g = cfg.globals
    assert g["debug"] == -1 and g["log_stderror"] is True and g["log_facility"] == "LOG_LOCAL0"
    assert g["port"] == 5070 and g["shm_mem_size"] == 128
    assert g["listen"] == [
        ListenAddr("udp", "127.0.0.1", 5060, "1.2.3.4", 5080, "main"),
        ListenAddr("tcp", "::1", 5061, workers=2),
        ListenAddr(None, "10.0.0.1", None)]
    assert g["alias"] == [AliasAddr(None, "sip.example.com", None),
                          AliasAddr("tls", "other.example.com", 5061)]
    assert cfg.flags == {"FLAG_A": 3, "FLAG_B": 0}
    assert cfg.cfg_vars == {"pstn.gw_ip": ("10.0.0.101", "PSTN GW Address")}
    assert g["kemi.reply_route_callback"] == "my_reply"
    assert g["max_while_loops"] == 100 and g["children"] == 8   # defaults present


@pytest.mark.parametrize("text,expected", [
    ("request_route {\n  f()\n}\n", "p.cfg:3:1: syntax error: missing ';' before '}'"),
    ("request_route {\n  if $x { }\n}\n", "p.cfg:2:6: syntax error: expected '(' after 'if', "
     "found '$x'"),
    ("request_route {\n  $x += 1;\n}\n", "p.cfg:2:6: syntax error: only '=' assignments to a "
     "pseudo-variable are allowed (use $(name[index]) for indexes)"),
    ("request_route {\n  break;\n}\n", "p.cfg:2:3: 'break' is allowed only inside switch or "
     "while"),
    ("request_route {\n  if ($a !~ \"x\") exit;\n}\n",
     "p.cfg:2:10: syntax error: expected ')' to close the if condition, found '!'"),
    ("failure_route { exit; }\n", "p.cfg:1:1: failure_route needs a name: "
     "failure_route[NAME]"),
    ("event_route[noColon] { exit; }\n", 'p.cfg:1:1: bad event route name "noColon" '
     "(expected group:name)"),
])
def test_syntax_errors_with_positions(text, expected):
    cfg, errors, _ = parse_text(text, "p.cfg")
    assert [str(e) for e in errors][:1] == [expected]


def test_recovery_reports_several_syntax_errors():
    text = "request_route {\n  f(;\n  g();\n  $x = ;\n}\nroute[A] {\n  h() h();\n}\n"
    _, errors, _ = parse_text(text, "p.cfg")
    assert [e.pos.line for e in errors] == [2, 4, 7]


def test_avp_index_without_long_form_is_error():
    with pytest.raises(ConfigErrors) as ei:
        compile_text("request_route {\n  $avp(x)[*] = $null;\n}\n", "p.cfg")
    assert ei.value.errors[0].pos.line == 2


def test_exit_with_empty_parens_and_words():
    cfg = parse("request_route { exit(); drop(); f(uri:host, udp:1.2.3.4:5060); }")
    body = cfg.items[0].body
    assert body[0].value is None and body[1].value is None
    assert [a.text for a in body[2].call.args] == ["uri:host", "udp:1.2.3.4:5060"]


def test_undefined_name_as_case_label_is_reported_cleanly():
    with pytest.raises(ConfigErrors) as ei:
        compile_text("request_route {\n  switch ($rU) {\n    case NOPE: exit;\n  }\n}\n", "c.cfg")
    assert [str(e) for e in ei.value.errors] == [
        'c.cfg:3:10: unknown identifier "NOPE" as case label (missing #!define?)']
