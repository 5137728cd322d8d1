"""pykamcmd pieces without a server: typed params, the kamcmd-like tree, shell completion,
and jsonrpcs' jsonrpc_exec through the shared registry."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sipcore.cli.ctl import Shell, main, render
from sipcore.cli.rpcclient import typed_param
from sipcore.rpc.jsonrpc import Pairs


@pytest.mark.parametrize("text,value", [
    ("12", 12), ("-3", -3), ("0.5", 0.5), ("s:12", "12"), ("i:12", 12), ("i:0x10", 16),
    ("abc", "abc"), ("1_000", "1_000"), ("192.168.0.1", "192.168.0.1"), ("", ""),
    ("s:", ""), ("nan", "nan"), ("12abc", "12abc"),
])
def test_typed_param(text, value):
    out = typed_param(text)
    assert out == value and type(out) is type(value)


def test_typed_param_bad_int():
    with pytest.raises(ValueError):
        typed_param("i:abc")


def test_render_struct_list_nested():
    assert render({"now": "x", "uptime": 9}) == ["{", "\tnow: x", "\tuptime: 9", "}"]
    assert render([{"IDX": 0}, {"IDX": 1}]) == ["{", "\tIDX: 0", "}", "{", "\tIDX: 1", "}"]
    assert render(["a", "b"]) == ["a", "b"]
    assert render("pykam 0.1.0") == ["pykam 0.1.0"]
    assert render({"a": {"b": 1}, "l": [1, 2], "t": True, "n": None}) == [
        "{", "\ta: {", "\t\tb: 1", "\t}", "\tl: [", "\t\t1", "\t\t2", "\t]", "\tt: true",
        "\tn: ", "}"]
    assert render(Pairs([("socket", {"port": "1"}), ("socket", {"port": "2"})])) == [
        "{", "\tsocket: {", "\t\tport: 1", "\t}", "\tsocket: {", "\t\tport: 2", "\t}", "}"]


def test_shell_completion():
    sh = Shell("/nonexistent", False, 1.0)
    sh.methods = ["core.ps", "core.psx", "core.uptime", "stats.fetch"]
    got = []
    i = 0
    while (m := sh.complete("core.p", i)) is not None:
        got.append(m)
        i += 1
    assert got == ["core.ps", "core.psx"]
    assert sh.complete("zzz", 0) is None


def test_not_running_is_one_line_and_exit_1(tmp_path):
    res = CliRunner().invoke(main, ["-s", str(tmp_path / "nope"), "core.uptime"])
    assert res.exit_code == 1
    assert "cannot connect to pykam" in res.output and "is pykam running?" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(main, ["-s", str(tmp_path / "nope")])       # the shell
    assert res.exit_code == 1 and "cannot connect" in res.output


def test_jsonrpc_exec_uses_the_registry():
    from modules import jsonrpcs
    from sipcore.testing import Harness, make_ctx

    h = Harness.from_text('loadmodule "sl"\nloadmodule "jsonrpcs"\n'
                          'modparam("jsonrpcs", "pretty_format", 0)\n'
                          'request_route { exit; }\n')
    ctx = make_ctx("OPTIONS sip:b@b.example SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\n"
                   "From: <sip:a@a.example>;tag=1\nTo: <sip:b@b.example>\nCall-ID: c1\n"
                   "CSeq: 1 OPTIONS\nContent-Length: 0\n\n", core=h.core)
    ok = jsonrpcs.execute(ctx, '{"jsonrpc":"2.0","method":"core.psx","id":1}')
    assert ok["code"] == 200 and json.loads(ok["body"])["result"][0]["IDX"] == 0
    assert "sl.stats" in json.loads(jsonrpcs.execute(
        ctx, '{"jsonrpc":"2.0","method":"system.listMethods","id":2}')["body"])["result"]
    bad = jsonrpcs.execute(ctx, '{"jsonrpc":"2.0","method":"cfg.get","params":[],"id":3}')
    assert bad["code"] == 400 and json.loads(bad["body"])["error"]["code"] == -32602
    socks = jsonrpcs.execute(ctx, '{"jsonrpc":"2.0","method":"core.sockets_list","id":4}')
    assert socks["code"] == 200 and json.loads(socks["body"])["result"]
    note = jsonrpcs.execute(ctx, '{"jsonrpc":"2.0","method":"core.psx"}')
    assert note == {"code": 200, "text": "OK", "body": ""}
