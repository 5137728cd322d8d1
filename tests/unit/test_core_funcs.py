"""Core cfg functions (sipcore.core.funcs): return codes and what ends up in the message."""
from __future__ import annotations

import pytest

from sipcore import log as klog
from sipcore.core.funcs import core_module
from sipcore.mod import Fx
from sipcore.msg import parse_msg
from sipcore.net.addr import SocketInfo
from sipcore.net.sockspec import parse_socket_spec
from sipcore.route import errcodes as E
from sipcore.route.ctx import Branch
from sipcore.testing import RecordingCore, make_ctx

REQ = ("INVITE {ruri} SIP/2.0\n"
       "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc\n"
       "Max-Forwards: 70\n"
       "From: <sip:alice@a.example>;tag=1\n"
       "To: <sip:bob@b.example>\n"
       "Call-ID: c1\n"
       "CSeq: 1 INVITE\n"
       "Content-Length: 0\n\n")


def ctx_for(ruri: str = "sip:bob:secret@b.example:5070;transport=udp;lr?subject=x", **kw):
    return make_ctx(REQ.format(ruri=ruri), **kw)


def call(ctx, name: str, *args):
    fe = core_module.lookup(name, len(args))
    assert fe is not None, f"{name}/{len(args)} not exported"
    return fe.impl(ctx, *args)


# ---- flags ------------------------------------------------------------------------------------

def test_flags():
    ctx = ctx_for()
    assert call(ctx, "isflagset", 3) == -1
    assert call(ctx, "setflag", 3) == 1
    assert call(ctx, "isflagset", 3) == 1 and ctx.flags == 8
    assert call(ctx, "resetflag", 3) == 1
    assert call(ctx, "isflagset", 3) == -1
    assert call(ctx, "setflag", 32) == E.E_CFG
    assert core_module.lookup("setflag", 1).args == (Fx.FLAG,)


# ---- R-URI rewriting --------------------------------------------------------------------------

@pytest.mark.parametrize("names,arg,expected", [
    (("rewriteuri", "seturi"), "sip:x@y.example", "sip:x@y.example"),
    (("rewritehost", "sethost", "seth"), "h.example",
     "sip:bob:secret@h.example:5070;transport=udp;lr?subject=x"),
    (("rewritehostport", "sethostport", "sethp"), "h.example:6000",
     "sip:bob:secret@h.example:6000;transport=udp;lr?subject=x"),
    (("rewritehostport",), "h.example",
     "sip:bob:secret@h.example;transport=udp;lr?subject=x"),
    (("rewritehostporttrans", "sethostporttrans", "sethpt"), "h.example:6000;transport=tcp",
     "sip:bob:secret@h.example:6000;transport=tcp;lr?subject=x"),
    (("rewriteuser", "setuser", "setu"), "carol",
     "sip:carol:secret@b.example:5070;transport=udp;lr?subject=x"),
    (("rewriteuserpass", "setuserpass", "setup"), "carol:pw",
     "sip:carol:pw@b.example:5070;transport=udp;lr?subject=x"),
    (("rewriteport", "setport", "setp"), "5090",
     "sip:bob:secret@b.example:5090;transport=udp;lr?subject=x"),
    (("rewriteport",), "", "sip:bob:secret@b.example;transport=udp;lr?subject=x"),
])
def test_rewrite_family(names, arg, expected):
    for name in names:
        ctx = ctx_for()
        assert call(ctx, name, arg) == 1
        assert ctx.msg.ruri == expected


def test_rewrite_ipv6_host():
    ctx = ctx_for("sip:bob@b.example")
    assert call(ctx, "sethostport", "[2001:db8::1]:5062") == 1
    assert ctx.msg.ruri == "sip:bob@[2001:db8::1]:5062"


def test_rewriteuser_empty_removes_user():
    ctx = ctx_for("sip:bob@b.example")
    assert call(ctx, "rewriteuser", "") == 1
    assert ctx.msg.ruri == "sip:b.example"


def test_prefix_strip_strip_tail():
    ctx = ctx_for("sip:0049301234@gw.example")
    assert call(ctx, "strip", 2) == 1
    assert ctx.msg.parsed_ruri.user == "49301234"
    assert call(ctx, "prefix", "+") == 1
    assert ctx.msg.parsed_ruri.user == "+49301234"
    assert call(ctx, "strip_tail", 4) == 1
    assert ctx.msg.ruri == "sip:+4930@gw.example"
    assert call(ctx, "strip", 99) == 1             # too long: the user is deleted
    assert ctx.msg.ruri == "sip:gw.example"


def test_userphone_and_revert_uri():
    ctx = ctx_for("sip:123@gw.example")
    assert call(ctx, "userphone") == 1
    assert ctx.msg.ruri == "sip:123@gw.example;user=phone"
    assert call(ctx, "userphone") == 1             # not added twice
    assert ctx.msg.ruri == "sip:123@gw.example;user=phone"
    assert call(ctx, "revert_uri") == 1
    assert ctx.msg.ruri == "sip:123@gw.example"


def test_rewritten_ruri_is_what_gets_forwarded():
    ctx = ctx_for("sip:bob@192.0.2.20")
    assert call(ctx, "sethostport", "192.0.2.30:5090") == 1
    assert call(ctx, "forward") == 1
    dest, buf = ctx.core.sent[-1]
    assert (dest.ip, dest.port) == ("192.0.2.30", 5090)
    assert parse_msg(buf).ruri == "sip:bob@192.0.2.30:5090"


# ---- forward family ---------------------------------------------------------------------------

def test_forward_variants():
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5060),
                          SocketInfo("tcp", "127.0.0.1", 5060)])
    ctx = ctx_for("sip:bob@192.0.2.20:5070", core=core)
    assert call(ctx, "forward", "192.0.2.40") == 1
    assert (core.sent[-1][0].ip, core.sent[-1][0].port) == ("192.0.2.40", 5060)
    assert call(ctx, "forward", "192.0.2.41", "5099") == 1
    assert core.sent[-1][0].port == 5099
    assert call(ctx, "forward", "uri:host", "uri:port") == 1
    assert (core.sent[-1][0].ip, core.sent[-1][0].port) == ("192.0.2.20", 5070)
    assert call(ctx, "forward", "uri:host") == 1
    assert core.sent[-1][0].port == 5060
    assert call(ctx, "forward_tcp") == 1
    assert core.sent[-1][0].proto == "tcp"
    assert call(ctx, "forward_udp", "192.0.2.42", "5000") == 1
    assert core.sent[-1][0].proto == "udp"
    assert call(ctx, "forward", "192.0.2.41", "notaport") == E.E_BAD_ADDRESS
    assert call(ctx, "forward_tls") == E.E_NO_SOCKET


# ---- destination set --------------------------------------------------------------------------

def test_remove_and_clear_branches():
    ctx = ctx_for()
    ctx.branches[:] = [Branch("sip:a@x"), Branch("sip:b@x"), Branch("sip:c@x")]
    assert call(ctx, "remove_branch", 1) == 1
    assert [b.uri for b in ctx.branches] == ["sip:a@x", "sip:c@x"]
    assert call(ctx, "remove_branch") == 1
    assert [b.uri for b in ctx.branches] == ["sip:c@x"]
    assert call(ctx, "remove_branch", 5) == -1
    assert call(ctx, "clear_branches") == 1
    assert ctx.branches == [] and call(ctx, "remove_branch") == -1


# ---- Via / socket controls --------------------------------------------------------------------

def test_via_and_connection_controls():
    ctx = ctx_for()
    for name in ("force_rport", "add_rport", "add_local_rport", "set_forward_no_connect",
                 "set_reply_no_connect", "set_forward_close", "set_reply_close"):
        assert call(ctx, name) == 1
    assert ctx.force_rport and ctx.local_rport
    assert ctx.forward_no_connect and ctx.reply_no_connect
    assert ctx.forward_close and ctx.reply_close
    assert call(ctx, "set_advertised_address", "pub.example") == 1
    assert call(ctx, "set_advertised_port", 5080) == 1
    assert (ctx.advertised_address, ctx.advertised_port) == ("pub.example", 5080)
    assert call(ctx, "set_advertised_port", 70000) == E.E_UNSPEC
    assert call(ctx, "udp_mtu_try_proto", "tcp") == 1
    assert ctx.udp_mtu_try_proto == "tcp"


def test_force_send_socket():
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5060),
                          SocketInfo("udp", "127.0.0.2", 5070)])
    ctx = ctx_for("sip:bob@192.0.2.20", core=core)
    fe = core_module.lookup("force_send_socket", 1)
    spec = fe.args[0].parse("udp:127.0.0.2:5070")     # compile-time fixup
    assert fe.impl(ctx, spec) == 1 and ctx.force_socket is core.sockets[1]
    assert call(ctx, "forward") == 1
    assert core.sent[-1][0].sock is core.sockets[1]
    assert fe.impl(ctx, parse_socket_spec("udp:10.9.9.9:5060")) == E.E_UNSPEC
    with pytest.raises(ValueError):
        fe.args[0].parse("udp:[::1")


def test_force_tcp_alias_only_on_streams():
    ctx = ctx_for()
    assert call(ctx, "force_tcp_alias") == 1 and not ctx.core.tcp_aliases
    ctx = ctx_for(proto="tcp")
    assert call(ctx, "add_tcp_alias", 5090) == 1
    assert call(ctx, "force_tcp_alias") == 1
    assert [(port, proto) for _c, port, proto in ctx.core.tcp_aliases] == \
        [(5090, "tcp"), (5070, "tcp")]


# ---- logging and cfg groups -------------------------------------------------------------------

def test_log_and_error():
    lines = klog.capture(True)
    old = klog.get_debug()
    try:
        klog.set_debug(3)
        ctx = ctx_for()
        assert call(ctx, "log", "hidden at L_DBG+1") == 1
        assert call(ctx, "log", -1, "shown") == 1
        assert call(ctx, "error", "a", "b") == 1
    finally:
        klog.set_debug(old)
        klog.capture(False)
    texts = [t for _, t in lines]
    assert any("<script>: shown" in t for t in texts)
    assert not any("hidden" in t for t in texts)
    assert any('error("a", "b") not implemented' in t for t in texts)


def test_cfg_select_and_reset():
    core = RecordingCore()
    core.globals["cfg_group_instances"] = {"pstn": {1, 2}}
    ctx = ctx_for(core=core)
    assert call(ctx, "cfg_select", "pstn", 2) == 1
    assert ctx.cfg_select == {"pstn": 2}
    assert call(ctx, "cfg_select", "pstn", 9) == -1
    assert call(ctx, "cfg_reset", "pstn") == 1
    assert ctx.cfg_select == {}


def test_every_section11_function_is_exported():
    expected = {
        "forward": (0, 1, 2), "forward_udp": (0, 1, 2), "forward_tcp": (0, 1, 2),
        "forward_tls": (0, 1, 2), "forward_sctp": (0, 1, 2), "setflag": (1,),
        "resetflag": (1,), "isflagset": (1,), "rewriteuri": (1,), "seturi": (1,),
        "rewritehost": (1,), "sethost": (1,), "seth": (1,), "rewritehostport": (1,),
        "sethostport": (1,), "sethp": (1,), "rewritehostporttrans": (1,),
        "sethostporttrans": (1,), "sethpt": (1,), "rewriteuser": (1,), "setuser": (1,),
        "setu": (1,), "rewriteuserpass": (1,), "setuserpass": (1,), "setup": (1,),
        "rewriteport": (1,), "setport": (1,), "setp": (1,), "prefix": (1,), "strip": (1,),
        "strip_tail": (1,), "userphone": (0,), "revert_uri": (0,), "remove_branch": (0, 1),
        "clear_branches": (0,), "force_rport": (0,), "add_rport": (0,),
        "add_local_rport": (0,), "set_advertised_address": (1,),
        "set_advertised_port": (1,), "force_send_socket": (1,), "force_tcp_alias": (0, 1),
        "add_tcp_alias": (0, 1), "udp_mtu_try_proto": (1,), "set_forward_no_connect": (0,),
        "set_reply_no_connect": (0,), "set_forward_close": (0,), "set_reply_close": (0,),
        "log": (1, 2), "error": (2,), "cfg_select": (2,), "cfg_reset": (1,),
    }
    for name, arities in expected.items():
        got = sorted(len(f.args) for f in core_module.functions[name])
        assert got == sorted(arities), name


def test_core_functions_from_a_config():
    from sipcore.testing import Harness

    h = Harness.from_text(
        '#!define FLT_ACC 3\n'
        'loadmodule "kex"\n'
        'loadmodule "corex"\n'
        'request_route {\n'
        '  setflag(FLT_ACC);\n'
        '  if (!isflagset(FLT_ACC)) { drop; }\n'
        '  force_rport();\n'
        '  strip(2);\n'
        '  prefix("+");\n'
        '  sethostport("192.0.2.30:5090");\n'
        '  setsflag(1);\n'
        '  append_branch("sip:other@192.0.2.31");\n'
        '  if (!forward()) { drop; }\n'
        '  exit;\n'
        '}\n')
    r = h.request(REQ.format(ruri="sip:0049301234@gw.example").replace(
        "branch=z9hG4bKabc", "branch=z9hG4bKabc;rport"), src=("192.0.2.5", 5099))
    assert len(r.sent) == 1
    dest, buf = r.sent[0]
    out = parse_msg(buf)
    assert (dest.ip, dest.port) == ("192.0.2.30", 5090)
    assert out.ruri == "sip:+49301234@192.0.2.30:5090"
    assert out.vias[1].rport == "5099" and out.vias[1].received == "192.0.2.5"
    assert r.ctx.isflagset(3) and r.ctx.sflags == 2
    assert [b.uri for b in r.ctx.branches] == ["sip:other@192.0.2.31"]
