"""RPC registry: core + module methods, system.*, parameter checks (-32602), faults and
handler bugs as error objects, name clashes."""
from __future__ import annotations

import json

import pytest

from sipcore import log as klog
from sipcore.errors import RpcFault
from sipcore.mod import Module
from sipcore.rpc import jsonrpc
from sipcore.rpc.env import RpcEnv
from sipcore.rpc.registry import RpcRegistry
from sipcore.rpc.runtime_cfg import RuntimeCfg


def _mod() -> Module:
    m = Module("rpctest")

    def add(a: int, b: int = 1) -> int:
        """Add two integers."""
        return a + b

    def join(sep: str, *parts: str) -> str:
        return sep.join(parts)

    def flag(on: bool) -> bool:
        return on

    def ratio(x: float, unit: str | None = None) -> str:
        return f"{x}{unit or ''}"

    def fault() -> None:
        raise RpcFault(404, "no such thing")

    def bug() -> int:
        table: dict[str, int] = {}
        return table["missing"]

    def anything(*args):
        return list(args)

    m.rpc("t.add", add, params="a [b]")
    m.rpc("t.join", join, doc="Join strings.", params="sep part ...")
    m.rpc("t.flag", flag)
    m.rpc("t.ratio", ratio)
    m.rpc("t.fault", fault)
    m.rpc("t.bug", bug)
    m.rpc("t.any", anything)
    m.rpc("core.version", lambda: "module version")          # clashes with the core
    return m


@pytest.fixture()
def reg() -> RpcRegistry:
    env = RpcEnv(runtime_cfg=RuntimeCfg.from_config({}))
    return RpcRegistry.build(env, [_mod()])


def _call(reg, method, params=None, rid=1):
    doc = {"jsonrpc": "2.0", "method": method, "id": rid}
    if params is not None:
        doc["params"] = params
    return json.loads(reg.execute(json.dumps(doc)))


def test_good_calls_and_defaults(reg):
    assert _call(reg, "t.add", [2, 3])["result"] == 5
    assert _call(reg, "t.add", [2])["result"] == 3
    assert _call(reg, "t.join", ["-", "a", "b"])["result"] == "a-b"
    assert _call(reg, "t.any", [1, "x", None])["result"] == [1, "x", None]


def test_autoconversion_of_simple_types(reg):
    assert _call(reg, "t.add", ["2", "0x10"])["result"] == 18
    assert _call(reg, "t.join", ["-", 1, 2.5])["result"] == "1-2.5"
    assert _call(reg, "t.flag", ["yes"])["result"] is True
    assert _call(reg, "t.ratio", ["0.5", "k"])["result"] == "0.5k"


@pytest.mark.parametrize("method,params", [
    ("t.add", []), ("t.add", [1, 2, 3]), ("t.add", ["abc"]), ("t.add", [[1]]),
    ("t.add", [{"a": 1}]), ("t.join", []), ("t.flag", ["maybe"]), ("t.ratio", ["x"]),
    ("core.version", [1]), ("system.methodHelp", []),
])
def test_wrong_params_are_invalid_params(reg, method, params):
    err = _call(reg, method, params)["error"]
    assert err["code"] == jsonrpc.INVALID_PARAMS
    assert method in err["message"]


def test_param_count_message_names_the_usage(reg):
    msg = _call(reg, "t.add", [])["error"]["message"]
    assert "1 to 2 parameters (a [b]), got 0" in msg


def test_unknown_method_like_kamailio(reg):
    assert _call(reg, "no.such", rid=5) == {
        "jsonrpc": "2.0", "error": {"code": 500, "message": "Method Not Found"}, "id": 5}


def test_fault_keeps_its_code(reg):
    assert _call(reg, "t.fault")["error"] == {"code": 404, "message": "no such thing"}


def test_handler_bug_is_a_500_with_the_exception_text(reg):
    lines = klog.capture()
    try:
        err = _call(reg, "t.bug")["error"]
    finally:
        klog.capture(False)
    assert err["code"] == 500 and "KeyError" in err["message"] and "t.bug" in err["message"]
    assert any("t.bug failed" in text for _, text in lines)


def test_system_methods(reg):
    names = _call(reg, "system.listMethods")["result"]
    assert names == sorted(names)
    for n in ("system.listMethods", "system.methodHelp", "core.psx", "t.add", "cfg.seti",
              "stats.get_statistics"):
        assert n in names
    assert _call(reg, "system.methodHelp", ["t.add"])["result"] == "Add two integers."
    assert _call(reg, "system.methodHelp", ["t.join"])["result"] == "Join strings."
    assert _call(reg, "system.methodSignature", ["t.join"])["result"] == ["t.join sep part ..."]
    assert _call(reg, "system.methodHelp", ["nope"])["error"]["code"] == 404


def test_core_wins_over_a_module_reexport(reg):
    assert _call(reg, "core.version")["result"].startswith("pykam ")
    assert reg.get("core.version").origin == "core"


def test_first_module_wins_between_modules():
    a, b = Module("a"), Module("b")
    a.rpc("x.m", lambda: "a")
    b.rpc("x.m", lambda: "b")
    reg = RpcRegistry.build(RpcEnv(), [a, b])
    assert reg.call("x.m", []) == "a"


def test_batch_and_notifications(reg):
    doc = json.dumps([{"jsonrpc": "2.0", "method": "t.add", "params": [1], "id": 1},
                      {"jsonrpc": "2.0", "method": "t.add", "params": [1]},
                      {"jsonrpc": "2.0", "method": "no.such", "id": 2},
                      "junk"])
    out = json.loads(reg.execute(doc))
    assert [o.get("id") for o in out] == [1, 2, None]
    assert out[0]["result"] == 2 and out[1]["error"]["code"] == 500
    assert out[2]["error"]["code"] == jsonrpc.INVALID_REQUEST
    assert reg.execute('{"jsonrpc":"2.0","method":"t.add","params":[1]}') is None


def test_execute_never_raises_on_garbage(reg):
    for doc in (b"", b"\x00\x01", b"{", b"null", b"[[]]", b'{"jsonrpc":"2.0"}', bytes(range(256))):
        reply = reg.execute(doc)
        assert reply is not None and b"error" in reply


def test_module_rpcs_of_real_modules_are_registered():
    from sipcore.mod.loader import import_module_decl

    mods = [import_module_decl(n) for n in ("sl", "kex", "counters", "ctl", "cfg_rpc")]
    reg = RpcRegistry.build(RpcEnv(), mods)
    for n in ("sl.stats", "cnt.get", "ctl.listen", "stats.fetch", "cfg.get"):
        assert n in reg
    assert reg.get("stats.fetch").origin == "core"            # kex's copy is not used
    assert reg.get("sl.stats").origin == "sl"
