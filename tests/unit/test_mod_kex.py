"""kex: script/branch flags, $du helpers, is_myself, debug level, pv_printf, $sruid, stats RPCs."""
from __future__ import annotations

import pytest

import modules.kex as kex
from sipcore import log as klog
from sipcore import stats
from sipcore.errors import RpcFault
from sipcore.net.addr import SocketInfo
from sipcore.pv.spec import PvSpec
from sipcore.route.ctx import Branch
from sipcore.testing import RecordingCore, make_ctx

REQ = ("OPTIONS sip:bob@b.example SIP/2.0\n"
       "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc\n"
       "From: <sip:alice@a.example>;tag=1\n"
       "To: <sip:bob@b.example>\n"
       "Call-ID: c1\n"
       "CSeq: 1 OPTIONS\n"
       "Content-Length: 0\n\n")


def call(ctx, name, *args):
    fe = kex.mod.lookup(name, len(args))
    assert fe is not None, f"{name}/{len(args)}"
    return fe.impl(ctx, *args)


@pytest.fixture
def ctx():
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5060),
                          SocketInfo("tcp", "127.0.0.1", 5060)])
    core.aliases = [("proxy.example", 5060, None)]
    return make_ctx(REQ, core=core)


def test_script_flags(ctx):
    assert call(ctx, "issflagset", 4) == -1
    assert call(ctx, "setsflag", 4) == 1 and ctx.sflags == 16
    assert call(ctx, "issflagset", 4) == 1
    assert call(ctx, "resetsflag", 4) == 1 and ctx.sflags == 0
    assert call(ctx, "setsflag", 40) == -1


def test_branch_flags_main_and_appended(ctx):
    assert call(ctx, "setbflag", 6) == 1 and ctx.bflags == 64
    assert call(ctx, "isbflagset", 6) == 1
    assert call(ctx, "isbflagset", 6, 0) == 1
    ctx.branches.append(Branch("sip:x@y"))
    assert call(ctx, "setbflag", 2, 1) == 1 and ctx.branches[0].bflags == 4
    assert call(ctx, "isbflagset", 2, 1) == 1 and call(ctx, "isbflagset", 2) == -1
    assert call(ctx, "resetbflag", 2, 1) == 1 and ctx.branches[0].bflags == 0
    assert call(ctx, "resetbflag", 6) == 1 and ctx.bflags == 0
    assert call(ctx, "setbflag", 1, 5) == -1          # no such branch
    assert call(ctx, "setbflag", 32) == -1


def test_dsturi(ctx):
    assert call(ctx, "isdsturiset") == -1
    assert call(ctx, "setdsturi", "sip:192.0.2.1:5080") == 1
    assert ctx.dst_uri == "sip:192.0.2.1:5080" and call(ctx, "isdsturiset") == 1
    assert call(ctx, "resetdsturi") == 1 and ctx.dst_uri is None


@pytest.mark.parametrize("arg,rc", [
    ("sip:127.0.0.1", 1), ("sip:127.0.0.1:5060", 1), ("sip:127.0.0.1:5070", -1),
    ("sip:proxy.example", 1), ("127.0.0.1", 1), ("sip:127.0.0.1;transport=tcp", 1),
    ("sip:127.0.0.1;transport=tls", -1), ("sip:192.0.2.9", -1), ("sip:[bad", -1),
])
def test_is_myself(ctx, arg, rc):
    assert call(ctx, "is_myself", arg) == rc


def test_setdebug_resetdebug(ctx):
    old = klog.get_debug()
    try:
        assert call(ctx, "setdebug", 3) == 1 and klog.get_debug() == 3
        assert call(ctx, "resetdebug") == 1 and klog.get_debug() == old
    finally:
        klog.set_debug(old)


class _Var(PvSpec):
    writable = True

    def __init__(self):
        self.value = None
        self.text = "$var(x)"

    def get(self, ctx):
        return self.value

    def set(self, ctx, value):
        self.value = value


def test_pv_printf(ctx):
    var = _Var()
    assert call(ctx, "pv_printf", var, "user=bob") == 1 and var.value == "user=bob"
    assert call(ctx, "avp_printf", var, "x") == 1 and var.value == "x"
    ro = PvSpec()
    assert call(ctx, "pv_printf", ro, "x") == -1


def test_km_append_branch(ctx):
    ctx.dst_uri = "sip:192.0.2.7"
    assert call(ctx, "km_append_branch") == 1
    assert call(ctx, "km_append_branch", "sip:carol@c.example") == 1
    assert [b.uri for b in ctx.branches] == ["sip:bob@b.example", "sip:carol@c.example"]
    assert ctx.branches[0].dst_uri == "sip:192.0.2.7"


def test_sruid_is_unique(ctx):
    spec = kex.mod.pvs["sruid"].factory(None)
    a, b = spec.get(ctx), spec.get(ctx)
    assert a != b and a.startswith("uid-")
    with pytest.raises(ValueError):
        kex.mod.pvs["sruid"].factory("x")


def test_stats_rpcs():
    stats.reset("core:rcv_requests")
    stats.inc("core:rcv_requests", 3)
    stats.inc("kextest:foo", 2)
    assert "core:rcv_requests = 3" in kex.rpc_get_statistics("all")
    assert kex.rpc_get_statistics("kextest:") == ["kextest:foo = 2"]
    assert kex.rpc_fetch("kextest:") == {"kextest.foo": "2"}
    assert kex.rpc_fetchn("foo") == {"kextest.foo": 2}
    assert kex.rpc_clear_statistics("kextest:foo") == ["kextest:foo = 2"]
    assert stats.get("kextest:foo") == 0
    with pytest.raises(RpcFault):
        kex.rpc_reset_statistics()
    with pytest.raises(RpcFault):
        kex.mod.rpcs["pkg.stats"].handler()


def test_stats_rpc_through_jsonrpc_exec():
    """jsonrpcs.jsonrpc_exec runs an RPC of a loaded module; the reply lands in $jsonrpl."""
    import json

    from sipcore.cfg import compile_text

    cfg = compile_text('loadmodule "kex"\nloadmodule "jsonrpcs"\n'
                       'modparam("jsonrpcs", "pretty_format", 0)\n'
                       'modparam("jsonrpcs", "transport", 7)\n'
                       'request_route {\n'
                       '  jsonrpc_exec("{\\"jsonrpc\\":\\"2.0\\",\\"method\\":\\"stats.fetch\\",'
                       '\\"params\\":[\\"kexrpc:\\"],\\"id\\":3}");\n'
                       '  exit;\n'
                       '}\n')
    stats.reset("kexrpc:hits")
    stats.inc("kexrpc:hits", 5)
    core = RecordingCore()
    core.routes = cfg
    ctx = make_ctx(REQ, core=core)
    cfg.run("request", None, ctx)
    jsonrpl = cfg.modules.find_pv("jsonrpl").factory
    assert jsonrpl("code").get(ctx) == 200
    body = json.loads(jsonrpl("body").get(ctx))
    assert body == {"jsonrpc": "2.0", "result": {"kexrpc.hits": "5"}, "id": 3}

    import modules.jsonrpcs as jsonrpcs
    bad = jsonrpcs.execute(ctx, '{"jsonrpc":"2.0","method":"no.such","id":5}')
    assert json.loads(bad["body"])["error"] == {"code": 500, "message": "Method Not Found"}
    assert jsonrpcs.execute(ctx, "not json")["code"] == 400
