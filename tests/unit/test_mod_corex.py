"""corex: append_branch, raw sends, xflags, iflags, sockets, file I/O, Via controls."""
from __future__ import annotations

import pytest

import modules.corex as corex
from sipcore.forward import forward_request
from sipcore.msg import parse_msg
from sipcore.net.addr import SocketInfo
from sipcore.pv.spec import PvSpec
from sipcore.testing import RecordingCore, make_ctx

REQ = ("INVITE sip:bob@192.0.2.20 SIP/2.0\n"
       "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc\n"
       "Max-Forwards: 70\n"
       "From: <sip:alice@a.example>;tag=1\n"
       "To: <sip:bob@b.example>\n"
       "Call-ID: c1\n"
       "CSeq: 1 INVITE\n"
       "Content-Length: 0\n\n")


def call(ctx, name, *args):
    fe = corex.mod.lookup(name, len(args))
    assert fe is not None, f"{name}/{len(args)}"
    return fe.impl(ctx, *args)


@pytest.fixture
def core():
    return RecordingCore([SocketInfo("udp", "127.0.0.1", 5060, name="lan"),
                          SocketInfo("tcp", "127.0.0.1", 5060),
                          SocketInfo("udp", "127.0.0.2", 5070, name="wan")])


@pytest.fixture
def ctx(core):
    return make_ctx(REQ, core=core, src=("192.0.2.5", 5099))


def test_append_branch_forms(ctx):
    ctx.dst_uri = "sip:192.0.2.9"
    ctx.bflags = 4
    assert call(ctx, "append_branch", "sip:carol@c.example") == 1
    assert call(ctx, "append_branch", "sip:dave@d.example", "0.5") == 1
    b1, b2 = ctx.branches
    assert (b1.uri, b1.dst_uri, b1.bflags, b1.q) == ("sip:carol@c.example", "sip:192.0.2.9",
                                                     4, -1)
    assert b2.q == 500
    assert ctx.dst_uri == "sip:192.0.2.9"          # unchanged when a URI is given
    assert call(ctx, "append_branch") == 1          # the R-URI moves into a branch
    assert ctx.branches[-1].uri == "sip:bob@192.0.2.20"
    assert ctx.dst_uri is None and ctx.bflags == 0 and not ctx.ruri_is_new()
    assert call(ctx, "append_branch", "sip:e@x", "1.5") == -1



def test_append_branch_moves_the_lookup_connection_with_the_ruri(ctx):
    ctx.otcpid = 42                                 # lookup(): the contact's TCP connection
    assert call(ctx, "append_branch", "sip:carol@c.example") == 1
    assert ctx.branches[-1].otcpid == 0 and ctx.otcpid == 42
    assert call(ctx, "append_branch") == 1
    assert ctx.branches[-1].otcpid == 42 and ctx.otcpid == 0

def test_append_branch_limit(ctx):
    ctx.core.globals["max_branches"] = 3
    assert call(ctx, "append_branch", "sip:a@x") == 1
    assert call(ctx, "append_branch", "sip:b@x") == 1
    assert call(ctx, "append_branch", "sip:c@x") == -1


@pytest.mark.parametrize("text,q", [("0", 0), ("1", 1000), ("0.5", 500), ("0.125", 125),
                                    ("1.0", 1000)])
def test_parse_q(text, q):
    assert corex.parse_q(text) == q


def test_send_is_the_message_unchanged(ctx, core):
    ctx.msg.add_header("X-Not-Sent: 1")
    assert call(ctx, "send_udp") == 1
    dest, buf = core.sent[-1]
    assert (dest.proto, dest.ip, dest.port) == ("udp", "192.0.2.20", 5060)
    assert buf == ctx.msg.buf                      # no Via added, no lumps applied
    assert call(ctx, "send", "192.0.2.30:5090") == 1
    assert (core.sent[-1][0].ip, core.sent[-1][0].port) == ("192.0.2.30", 5090)
    assert call(ctx, "send_tcp", "192.0.2.31") == 1
    assert (core.sent[-1][0].proto, core.sent[-1][0].port) == ("tcp", 5060)
    assert call(ctx, "send_udp", "[2001:db8::1]:5000") == -1   # no IPv6 socket


def test_send_data_and_sendx(ctx, core):
    assert call(ctx, "send_data", "sip:192.0.2.40:5080", "hello") == 1
    dest, buf = core.sent[-1]
    assert (dest.ip, dest.port, buf) == ("192.0.2.40", 5080, b"hello")
    assert call(ctx, "sendx", "sip:192.0.2.40:5080", "udp:127.0.0.2:5070", "x") == 1
    assert core.sent[-1][0].sock is core.sockets[2]
    assert call(ctx, "sendx", "sip:192.0.2.40", "udp:10.1.1.1:5060", "x") == -1


def test_xflags(ctx):
    assert call(ctx, "setxflag", 40) == 1 and ctx.xflags == 1 << 40
    assert call(ctx, "isxflagset", 40) == 1
    assert call(ctx, "resetxflag", 40) == 1 and call(ctx, "isxflagset", 40) == -1
    assert call(ctx, "setxflag", 64) == -1


def test_msg_iflags(ctx):
    assert call(ctx, "msg_iflag_is_set", "USE_UAC_FROM") == -2
    assert call(ctx, "msg_iflag_set", "use_uac_from") == 1
    assert call(ctx, "msg_iflag_is_set", "USE_UAC_FROM") == 1
    assert call(ctx, "msg_iflag_reset", "USE_UAC_FROM") == 1
    assert call(ctx, "msg_iflag_is_set", "USE_UAC_FROM") == -2
    assert call(ctx, "msg_iflag_set", "NOPE") == -1


class _Var(PvSpec):
    writable = True
    text = "$var(f)"
    value = None

    def get(self, ctx):
        return self.value

    def set(self, ctx, value):
        self.value = value


def test_file_write_read(ctx, tmp_path):
    path = str(tmp_path / "f.txt")
    assert call(ctx, "file_write", path, "line1\nline2") == 1
    var = _Var()
    assert call(ctx, "file_read", path, var) == 1 and var.value == "line1\nline2"
    assert call(ctx, "file_read", str(tmp_path / "missing"), var) == -1
    assert call(ctx, "file_write", path, "") == -1


def test_send_and_recv_sockets(ctx, core):
    assert call(ctx, "set_send_socket", "udp:127.0.0.2:5070") == 1
    assert ctx.force_socket is core.sockets[2]
    assert forward_request(ctx) == 1
    assert parse_msg(core.sent[-1][1]).vias[0].sent_by == "127.0.0.2:5070"
    assert call(ctx, "set_send_socket", "udp:10.0.0.9:5060") == -1
    assert call(ctx, "set_send_socket_name", "lan") == 1 and ctx.force_socket is core.sockets[0]
    assert call(ctx, "set_send_socket_name", "nope") == -1
    assert call(ctx, "set_recv_socket_name", "wan") == 1
    assert (ctx.rcv.dst_ip, ctx.rcv.dst_port) == ("127.0.0.2", 5070)
    assert call(ctx, "set_recv_socket", "udp:127.0.0.1:5060") == 1
    assert ctx.rcv.sock is core.sockets[0]
    assert call(ctx, "is_socket_name", "wan") == 1 and call(ctx, "is_socket_name", "x") == -1


def test_set_source_address(ctx):
    assert call(ctx, "set_source_address", "udp:192.0.2.77:6000") == 1
    assert (ctx.rcv.src_ip, ctx.rcv.src_port) == ("192.0.2.77", 6000)


def test_via_add_srvid(ctx, core):
    core.globals["server_id"] = 7
    assert call(ctx, "via_add_srvid", 1) == 1
    assert forward_request(ctx) == 1
    assert parse_msg(core.sent[-1][1]).vias[0].param("srvid") == "7"
    assert call(ctx, "via_add_srvid", 0) == 1
    assert forward_request(ctx) == 1
    assert parse_msg(core.sent[-1][1]).vias[0].param("srvid") is None


def _set_xavp(ctx, spec: str, value) -> None:
    from sipcore.pv import parse_pv

    parse_pv(spec).set(ctx, value)


def _top_via(core) -> str:
    return parse_msg(core.sent[-1][1]).header("Via").value.split(",")[0]


def test_via_add_xavp_params(ctx, core):
    """Kamailio xavp_serialize_fields(): the fields of $xavp(<xavp_via_params>) newest first,
    `name=value`, a bare name for an empty string, after our own params."""
    core.globals["xavp_via_params"] = "vp"
    _set_xavp(ctx, "$xavp(vp=>tag)", "abc")
    _set_xavp(ctx, "$xavp(vp[0]=>n)", 5)
    _set_xavp(ctx, "$xavp(vp[0]=>flag)", "")
    assert forward_request(ctx) == 1
    assert ";n=" not in _top_via(core)                      # off until asked
    assert call(ctx, "via_add_xavp_params", 1) == 1
    assert forward_request(ctx) == 1
    assert _top_via(core).endswith(";flag;n=5;tag=abc")
    assert call(ctx, "via_add_xavp_params", 0) == 1
    assert forward_request(ctx) == 1
    assert "tag=abc" not in _top_via(core)


def test_via_use_xavp_fields(ctx, core):
    core.globals["xavp_via_fields"] = "vf"
    _set_xavp(ctx, "$xavp(vf=>address)", "edge.example.net")
    _set_xavp(ctx, "$xavp(vf[0]=>port)", "5099")
    _set_xavp(ctx, "$xavp(vf[0]=>proto)", "tls")
    assert call(ctx, "via_use_xavp_fields", 1) == 1
    assert forward_request(ctx) == 1
    assert _top_via(core).startswith("SIP/2.0/TLS edge.example.net:5099;branch=")
    assert core.sent[-1][0].proto == "udp"                 # only the header says so
    assert call(ctx, "via_use_xavp_fields", 0) == 1
    assert forward_request(ctx) == 1
    assert "edge.example.net" not in _top_via(core)


def test_faked_and_incoming(ctx):
    assert call(ctx, "is_faked_msg") == -1
    ctx.faked = True
    assert call(ctx, "is_faked_msg") == 1
    assert call(ctx, "is_incoming") == -1


def test_params_validate():
    corex.mod.reset_params()
    corex.mod.set_param("alias_subdomains", "udp:example.com:5060")
    assert corex.mod.p.alias_subdomains == ["udp:example.com:5060"]
    with pytest.raises(ValueError):
        corex.mod.set_param("dns_cache", "type=MX;name=x")
    corex.mod.set_param("dns_cache", "type=A;name=h.example;addr=192.0.2.1;ttl=60")
    corex.mod.reset_params()


def test_alias_subdomains_check_self():
    corex.mod.reset_params()
    corex.mod.set_param("alias_subdomains", "example.com")
    corex.mod.set_param("alias_subdomains", "udp:voip.example.net:5070")
    for hook in corex.mod.init_hooks:
        hook(None)
    check = corex.mod.api.check_self
    assert check("example.com", None, None) and check("a.b.Example.COM", 5060, "udp")
    assert not check("badexample.com", None, None)
    assert check("pbx.voip.example.net", 5070, "udp")
    assert not check("pbx.voip.example.net", 5080, "udp")
    assert not check("pbx.voip.example.net", 5070, "tcp")
    corex.mod.reset_params()
    for hook in corex.mod.init_hooks:
        hook(None)
    assert not check("example.com", None, None)
