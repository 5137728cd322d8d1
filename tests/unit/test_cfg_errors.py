"""Diagnostics: the planted-mistakes configs, error rendering, and the stock Kamailio cfg."""
from __future__ import annotations

import os
import re

import pytest

import tests.unit.test_cfg_support  # noqa: F401  (registers the fake modules)
from sipcore.cfg import compile_text, load_config
from sipcore.errors import ConfigErrors
from tests.paths import STOCK_CFG

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "cfg")
STOCK = str(STOCK_CFG)


def errors_for(path: str) -> list[str]:
    with pytest.raises(ConfigErrors) as ei:
        load_config(path)
    return [f"{e.pos.line}:{e.pos.col}: {e.message}" for e in ei.value.errors
            if e.pos is not None and e.pos.file == path]


def test_ten_mistakes_give_ten_precise_errors():
    path = os.path.abspath(os.path.join(DATA, "ten_mistakes.cfg"))
    with open(os.path.join(DATA, "ten_mistakes.expected"), encoding="utf-8") as fh:
        expected = [ln for ln in fh.read().splitlines() if ln.strip()]
    got = errors_for(path)
    assert len(expected) == 10
    assert got == expected


def test_more_mistakes():
    path = os.path.abspath(os.path.join(DATA, "more_mistakes.cfg"))
    got = errors_for(path)
    expected_prefixes = [
        '4:1: modparam: no loaded module matches "ghost"',
        '5:30: modparam("fakemod", "p_int"): parameter p_int of module fakemod expects an '
        'integer, got "abc"',
        '6:1: bad port 99999 in listen address',
        '7:1: log_stderror expects a boolean',
        '10:15: unknown route "MISSING" in t_on_failure() (no failure_route[MISSING] block)',
        '11:2: read only pvar in assignment left side: $si',
        '12:9: unknown flag "NOT_A_FLAG"',
        '13:9: flag 40 out of range (0..31)',
        '14:8: unknown identifier "UNDEFINED_NAME" in argument 1 of f_str()',
        '15:9: bad argument 1 of f_even(): 3 is not even',
        '16:7: bad regular expression "[a-" in argument 1 of f_rx()',
        "17:10: type mismatch: string operand for integer operator '+'",
        "18:10: 'myself' can only be compared with uri, from_uri, to_uri, src_ip or dst_ip",
        '19:17: mixed int and string case labels in the same switch',
        '23:2: t_relay() is not allowed in onreply_route (allowed in: request_route, '
        'failure_route)',
        '27:1: route block route[A] defined twice',
    ]
    assert len(got) == len(expected_prefixes), got
    for g, e in zip(got, expected_prefixes):
        assert g.startswith(e), (g, e)


def test_render_shows_line_and_caret():
    path = os.path.abspath(os.path.join(DATA, "ten_mistakes.cfg"))
    with pytest.raises(ConfigErrors) as ei:
        load_config(path)
    text = ei.value.render()
    assert f"{path}:24:2: wrong number of arguments for f_ret(): got 2, expected 1\n" \
           "    \tf_ret(1, 2);\n    \t^" in text


def test_module_dependency_must_be_loaded():
    with pytest.raises(ConfigErrors) as ei:
        compile_text('loadmodule "fakedep"\n', "d.cfg")
    assert [str(e) for e in ei.value.errors] == ['d.cfg:1:1: module "fakedep" needs '
                                                 'loadmodule "faketm"']


def test_modparam_before_loadmodule_is_error():
    with pytest.raises(ConfigErrors) as ei:
        compile_text('modparam("fakemod", "p_int", 1)\nloadmodule "fakemod"\n', "o.cfg")
    assert ei.value.errors[0].pos.line == 1


def test_unknown_function_without_loadmodule():
    with pytest.raises(ConfigErrors) as ei:
        compile_text("request_route {\n  f_true();\n}\n", "u.cfg")
    assert [str(e) for e in ei.value.errors] == [
        'u.cfg:2:3: unknown function "f_true" (unknown command, missing loadmodule?)']


def test_several_errors_collected_in_one_pass_sorted():
    text = ('loadmodule "fakemod"\nrequest_route {\n  nope();\n  $var(x) = 1 - "a";\n'
            '  f_ret();\n}\nbogus_param = 1\n')
    with pytest.raises(ConfigErrors) as ei:
        compile_text(text, "s.cfg")
    assert [e.pos.line for e in ei.value.errors] == [3, 4, 5, 7]


def test_stock_kamailio_cfg_checks_cleanly():
    cfg = load_config(STOCK)
    assert cfg.has_route("request") and cfg.has_route("reply")
    assert set(cfg.route_names("route")) >= {"RELAY", "REQINIT", "WITHINDLG", "REGISTRAR",
                                             "LOCATION", "PRESENCE", "AUTH", "NATDETECT",
                                             "NATMANAGE", "DLGURI", "SIPOUT", "PSTN",
                                             "TOVOICEMAIL"}
    assert cfg.globals["debug"] == 2 and cfg.globals["children"] == 8
    assert cfg.globals["log_prefix"] == "{$mt $hdr(CSeq) $ci} "


def test_stock_cfg_parses_with_every_feature_switch():
    """Syntax of every #!ifdef branch of the stock cfg (parse only: modules not needed)."""
    from sipcore.cfg import parse_text

    with open(STOCK, encoding="utf-8") as fh:
        text = fh.read()
    feats = sorted(set(re.findall(r"#!ifdef (WITH_\w+)", text)))
    for rtp in ("WITH_RTPENGINE", None):
        defines = {f: None for f in feats if f != "WITH_RTPENGINE"}
        if rtp:
            defines[rtp] = None
        _, errors, _ = parse_text(text, STOCK, defines)
        assert not errors, [str(e) for e in errors]


def test_loadmodulex_and_modparamx_expand_env_and_defines(monkeypatch):
    from tests.unit.test_cfg_support import FAKEMOD

    monkeypatch.setenv("PYKAM_T_MOD", "fakemod")
    compile_text('#!define VAL "abc"\nloadmodulex "$env(PYKAM_T_MOD)"\n'
                 'modparamx("fakemod", "p_str", "x-$def(VAL)-$env(PYKAM_T_MOD)")\n', "x.cfg")
    assert FAKEMOD.p.p_str == "x-abc-fakemod"
    with pytest.raises(ConfigErrors) as ei:
        compile_text('loadmodulex "$env(PYKAM_T_UNSET_VAR)"\n', "x.cfg")
    assert "$env(PYKAM_T_UNSET_VAR) is not set" in str(ei.value)
