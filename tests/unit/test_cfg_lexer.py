"""Lexer: token kinds, values, positions, glue information."""
from __future__ import annotations

import pytest

from sipcore.cfg.lexer import Lexer, parse_int, tokenize


def lex(text: str):
    toks, errors = tokenize(text, "l.cfg")
    return toks[:-1], errors


@pytest.mark.parametrize("text,value", [
    ("10", 10), ("0x1F", 31), ("017", 15), ("101b", 5), ("0", 0), ("-5", -5),
])
def test_numbers(text, value):
    assert parse_int(text) == value
    if not text.startswith("-"):
        (t,), errs = lex(text)
        assert (t.kind, t.value) == ("INT", value) and not errs


def test_strings_escapes_and_raw_single_quotes():
    (a, b, c), errs = lex(r'"a\tb\n\"q\"\\ \x41\101 \d\+" ' + "'raw\\n\\d' " + '"x\\\ny"')
    assert not errs
    assert a.value == 'a\tb\n"q"\\ AA \\d\\+'
    assert b.value == "raw\\n\\d"
    assert c.value == "xy"


def test_unterminated_string():
    _, errs = lex('"abc')
    assert [str(e) for e in errs] == ["l.cfg:1:1: unterminated string"]


def test_pvs_ip_and_operators():
    toks, errs = lex("$var(x) == $(avp(a)[*]) =~ 10.0.0.1 && $ru != $null || a<=b >> 2 mod 3")
    assert not errs
    assert [(t.kind, t.text) for t in toks] == [
        ("PV", "$var(x)"), ("OP", "=="), ("PV", "$(avp(a)[*])"), ("OP", "=~"),
        ("IP4", "10.0.0.1"), ("OP", "&&"), ("PV", "$ru"), ("OP", "!="), ("PV", "$null"),
        ("OP", "||"), ("ID", "a"), ("OP", "<="), ("ID", "b"), ("OP", ">>"), ("INT", "2"),
        ("ID", "mod"), ("INT", "3")]


def test_pv_with_nested_parens_and_transformations():
    (t,), errs = lex('$(hdr(From){nameaddr.uri}{s.tolower})')
    assert not errs and t.kind == "PV" and t.text == "$(hdr(From){nameaddr.uri}{s.tolower})"


def test_positions_and_ws_flags():
    toks, _ = lex("listen=udp:1.2.3.4:5060\n  if ($x)")
    first = toks[0]
    assert (first.pos.line, first.pos.col, first.ws) == (1, 1, True)
    assert [t.ws for t in toks[1:7]] == [False] * 6
    iff = toks[7]
    assert iff.text == "if" and (iff.pos.line, iff.pos.col) == (2, 3) and iff.ws


def test_percent_is_not_an_operator():
    _, errs = lex("1 % 2")
    assert len(errs) == 1 and "modulo is the keyword 'mod'" in errs[0].message


def test_bracketed_ipv6_token():
    toks, errs = lex("[2001:db8::1] route[1]")
    assert not errs
    assert (toks[0].kind, toks[0].text) == ("IP6", "[2001:db8::1]")
    assert [t.kind for t in toks[1:]] == ["ID", "OP", "INT", "OP"]


def test_define_expansion_token_positions_are_the_use_site():
    lx = Lexer("#!define V 1 + 2\n\n   x = V;\n", "d.cfg")
    toks = lx.tokens()
    plus = [t for t in toks if t.text == "+"][0]
    assert (plus.pos.line, plus.pos.col) == (3, 8)
