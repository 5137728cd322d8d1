"""nathelper through the harness: NAT detection on real messages, Contact/R-URI/SDP rewriting
as sent on the wire, fix_nated_register + registrar storing `received`, and the NAT pinger
sending keepalives to usrloc contacts (to 127.0.0.1 only; the harness records, never sends)."""
from __future__ import annotations

import uuid

import pytest

from modules.nathelper import nh_addr, rpc_enable_ping
from sipcore.msg import parse_msg
from sipcore.testing import Harness
from tests.paths import STOCK_CFG
from tests.services import skip

NAT_BFLAG = 6
SIPPING_BFLAG = 7

REG_CFG = """
loadmodule "sl"
loadmodule "textops"
loadmodule "pv"
loadmodule "kex"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "nathelper"
modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")
modparam("usrloc", "nat_bflag", 6)
modparam("nathelper", "natping_interval", 30)
modparam("nathelper", "ping_nated_only", 1)
modparam("nathelper", "sipping_bflag", 7)
modparam("nathelper", "sipping_from", "sip:pinger@127.0.0.1")
request_route {
    if (nat_uac_test("19")) {
        if (is_method("REGISTER")) {
            fix_nated_register();
        }
        setflag(5);
    }
    if (is_method("REGISTER")) {
        if (isflagset(5)) {
            setbflag(6);
            if ($hdr(X-Sip-Ping) == "yes") setbflag(7);
        }
        save("location");
        exit;
    }
    sl_send_reply("404", "Not here");
}
"""

FWD_CFG = """
loadmodule "sl"
loadmodule "textops"
loadmodule "pv"
loadmodule "nathelper"
request_route {
    nat_uac_test("$hdr(X-Test)");
    $var(t) = $rc;
    append_to_reply("X-Nat: $var(t)\\r\\n");
    if ($hdr(X-Do) == "contact") fix_nated_contact();
    if ($hdr(X-Do) == "alias") { set_contact_alias(); $var(r) = $rc; append_to_reply("X-Rc: $var(r)\\r\\n"); }
    if ($hdr(X-Do) == "alias_fix") { set_contact_alias(); fix_nated_contact(); }
    if ($hdr(X-Do) == "rcv") add_rcv_param();
    if ($hdr(X-Do) == "rcv1") add_rcv_param("1");
    if ($hdr(X-Do) == "sdp") { fix_nated_sdp("$hdr(X-Flags)"); $var(r) = $rc; append_to_reply("X-Rc: $var(r)\\r\\n"); }
    if ($hdr(X-Do) == "sdpip") fix_nated_sdp("2", "203.0.113.9");
    if ($hdr(X-Do) == "ruri") {
        handle_ruri_alias();
        $var(r) = $rc;
        append_to_reply("X-Rc: $var(r)\\r\\nX-Du: $du\\r\\n");
    }
    if ($hdr(X-Do) == "pv") {
        if (set_alias_to_pv("$var(u)")) append_to_reply("X-U: $var(u)\\r\\n");
    }
    if ($hdr(X-Do) == "1918") {
        if (is_rfc1918("$hdr(X-Ip)")) append_to_reply("X-P: yes\\r\\n");
        else append_to_reply("X-P: no\\r\\n");
    }
    if ($hdr(X-Fwd) == "yes") { forward("127.0.0.1", "5099"); exit; }
    sl_send_reply("200", "OK");
}
"""

SDP = ("v=0\r\no=alice 2890844526 2890844526 IN IP4 10.0.0.5\r\ns=-\r\n"
       "c=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtcp:49171 IN IP4 10.0.0.5\r\n"
       "m=video 0 RTP/AVP 31\r\n")


def request(method: str = "OPTIONS", via: str = "10.1.2.3:5060",
            contact: str = "<sip:alice@10.1.2.3:5060>", extra: str = "", body: str = "",
            ruri: str = "sip:bob@127.0.0.1") -> str:
    lines = [f"{method} {ruri} SIP/2.0",
             f"Via: SIP/2.0/UDP {via};branch=z9hG4bK{uuid.uuid4().hex[:10]}",
             "Max-Forwards: 70", "From: <sip:alice@127.0.0.1>;tag=a1",
             "To: <sip:bob@127.0.0.1>", f"Call-ID: {uuid.uuid4().hex}", f"CSeq: 1 {method}"]
    if contact:
        lines.append(f"Contact: {contact}")
    lines += [ln for ln in extra.split("\n") if ln]
    if body:
        lines.append("Content-Type: application/sdp")
    raw = "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n" + body
    return raw


def hdr(res, name: str) -> str:
    (rep,) = res.replies
    h = rep.header(name)
    return h.value if h is not None else ""


@pytest.fixture(scope="module")
def fwd() -> Harness:
    return Harness.from_text(FWD_CFG)


# ---- nat_uac_test ---------------------------------------------------------------------------

@pytest.mark.parametrize("test,kw,src,proto,expected", [
    (1, {}, ("127.0.0.1", 5060), "udp", "1"),                        # private Contact
    (1, {"contact": "<sip:a@127.0.0.1:5060>"}, ("127.0.0.1", 5060), "udp", "-1"),
    (2, {}, ("127.0.0.1", 5060), "udp", "1"),                        # Via != source
    (2, {"via": "127.0.0.1:5060"}, ("127.0.0.1", 5060), "udp", "-1"),
    (4, {}, ("127.0.0.1", 5060), "udp", "1"),                        # Via private
    (4, {"via": "192.0.2.1"}, ("127.0.0.1", 5060), "udp", "-1"),
    (8, {"body": SDP}, ("127.0.0.1", 5060), "udp", "1"),             # SDP private
    (8, {}, ("127.0.0.1", 5060), "udp", "-1"),
    (16, {"via": "127.0.0.1:5060"}, ("127.0.0.1", 40000), "udp", "1"),  # rport differs
    (16, {"via": "127.0.0.1"}, ("127.0.0.1", 5060), "udp", "-1"),   # default port 5060
    (32, {}, ("127.0.0.1", 5060), "udp", "-1"),                      # source private?
    (64, {}, ("127.0.0.1", 5060), "udp", "-1"),                      # not WebSocket
    (128, {"contact": "<sip:a@127.0.0.1:5070>"}, ("127.0.0.1", 5060), "udp", "1"),
    (256, {"body": SDP}, ("127.0.0.1", 5060), "udp", "1"),
    (19, {"via": "127.0.0.1:5060", "contact": "<sip:a@127.0.0.1:5060>"},
     ("127.0.0.1", 5060), "udp", "-1"),
])
def test_nat_uac_test_bits(fwd, test, kw, src, proto, expected):
    res = fwd.request(request(extra=f"X-Test: {test}", **kw), src=src, proto=proto)
    assert hdr(res, "X-Nat") == expected


def test_nat_uac_test_private_source_and_websocket():
    # bits 32 and 64 depend on the receive info: checked directly on a RouteCtx
    from modules.nathelper import nh_funcs as nf
    from sipcore.testing import make_ctx

    cfg = nf.NhConfig()
    ctx = make_ctx(request(), src=("10.9.9.9", 5060))
    assert nf.nat_uac_test(ctx, cfg, 32) == 1
    ctx = make_ctx(request(), src=("127.0.0.1", 5060), proto="ws")
    assert nf.nat_uac_test(ctx, cfg, 64) == 1
    ctx = make_ctx(request(), src=("100.64.1.1", 5060))
    assert nf.nat_uac_test(ctx, cfg, 32) == 1
    assert nf.nat_uac_test(ctx, nf.NhConfig(nat_addr_mode=0), 32) == -1


def test_is_rfc1918(fwd):
    for ip, want in (("10.0.0.1", "yes"), ("172.31.255.255", "yes"), ("172.32.0.1", "no"),
                     ("192.168.1.1", "yes"), ("127.0.0.1", "no"), ("100.64.0.1", "yes"),
                     ("example.com", "no")):
        res = fwd.request(request(extra=f"X-Do: 1918\nX-Ip: {ip}"))
        assert hdr(res, "X-P") == want, ip


# ---- Contact rewriting (what goes on the wire) ------------------------------------------------

def forwarded(fwd, raw: str, src=("127.0.0.1", 40123), proto="udp"):
    res = fwd.request(raw, src=src, proto=proto)
    (req,) = res.requests
    return req


def test_fix_nated_contact_rewrites_hostport(fwd):
    req = forwarded(fwd, request(contact='"Al" <sip:alice@10.1.2.3:5060;ob>;expires=60',
                                 extra="X-Do: contact\nX-Fwd: yes"))
    assert req.header("Contact").value == '"Al" <sip:alice@127.0.0.1:40123;ob>;expires=60'


def test_set_contact_alias_then_fix_contact_see_each_other(fwd):
    req = forwarded(fwd, request(contact="<sip:alice@10.1.2.3:5060>",
                                 extra="X-Do: alias_fix\nX-Fwd: yes"))
    assert req.header("Contact").value == \
        "<sip:alice@127.0.0.1:40123;alias=127.0.0.1~40123~1>"


def test_set_contact_alias_addr_spec_and_tcp(fwd):
    req = forwarded(fwd, request(contact="sip:alice@10.1.2.3:5060;expires=30",
                                 extra="X-Do: alias\nX-Fwd: yes"), proto="tcp")
    assert req.header("Contact").value == \
        "<sip:alice@10.1.2.3:5060;alias=127.0.0.1~40123~2>;expires=30"


def test_set_contact_alias_not_needed(fwd):
    res = fwd.request(request(contact="<sip:alice@127.0.0.1:40123>", extra="X-Do: alias"),
                      src=("127.0.0.1", 40123))
    assert hdr(res, "X-Rc") == "2"


def test_add_rcv_param(fwd):
    req = forwarded(fwd, request(contact="<sip:a@10.1.2.3>;q=0.5, <sip:b@10.1.2.4>",
                                 extra="X-Do: rcv\nX-Fwd: yes"))
    assert req.header("Contact").value == (
        '<sip:a@10.1.2.3>;q=0.5;received="sip:127.0.0.1:40123", '
        '<sip:b@10.1.2.4>;received="sip:127.0.0.1:40123"')
    req = forwarded(fwd, request(contact="<sip:a@10.1.2.3>", extra="X-Do: rcv1\nX-Fwd: yes"),
                    proto="tcp")
    assert req.header("Contact").value == \
        "<sip:a@10.1.2.3;received=sip:127.0.0.1:40123%3Btransport%3Dtcp>"


def test_handle_ruri_alias(fwd):
    res = fwd.request(request(ruri="sip:bob@10.1.2.3:5060;alias=127.0.0.1~40500~2;x=1",
                              extra="X-Do: ruri\nX-Fwd: yes"))
    (req,) = res.requests
    assert req.ruri == "sip:bob@10.1.2.3:5060;x=1"
    assert res.ctx.dst_uri == "sip:127.0.0.1:40500;transport=tcp"
    res = fwd.request(request(extra="X-Do: ruri"))
    assert hdr(res, "X-Rc") == "2"


def test_set_alias_to_pv(fwd):
    res = fwd.request(request(contact="<sip:alice@10.1.2.3:5060;alias=127.0.0.1~5088~1>",
                              extra="X-Do: pv"))
    assert hdr(res, "X-U") == "sip:alice@127.0.0.1:5088"


# ---- SDP ------------------------------------------------------------------------------------

def test_fix_nated_sdp_flags(fwd):
    res = fwd.request(request(body=SDP, extra="X-Do: sdp\nX-Flags: 15\nX-Fwd: yes"),
                      src=("127.0.0.1", 40123))
    (req,) = res.requests
    body = req.body.decode()
    assert "c=IN IP4 127.0.0.1\r\na=oldmediaip:10.0.0.5\r\n" in body
    assert "o=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\n" in body
    assert "a=rtcp:49171 IN IP4 127.0.0.1\r\n" in body
    assert "a=direction:active\r\n" in body and "a=nortpproxy:yes\r\n" in body
    assert "10.0.0.5" not in body.replace("a=oldmediaip:10.0.0.5", "")
    assert req.content_length == len(req.body)


def test_fix_nated_sdp_given_ip_and_return_codes(fwd):
    res = fwd.request(request(body=SDP, extra="X-Do: sdpip\nX-Fwd: yes"))
    (req,) = res.requests
    assert b"c=IN IP4 203.0.113.9\r\n" in req.body
    res = fwd.request(request(extra="X-Do: sdp\nX-Flags: 2"))           # no SDP
    assert hdr(res, "X-Rc") == "-1"
    same = SDP.replace("10.0.0.5", "127.0.0.1")
    res = fwd.request(request(body=same, extra="X-Do: sdp\nX-Flags: 2"))   # nothing to do
    assert hdr(res, "X-Rc") == "2"


# ---- REGISTER from behind NAT, registrar, pinging --------------------------------------------

def register(contact: str = "<sip:alice@10.1.2.3:5060>", extra: str = "") -> str:
    return request("REGISTER", ruri="sip:127.0.0.1", contact=contact,
                   extra="Expires: 600\n" + extra).replace(
        "To: <sip:bob@127.0.0.1>", "To: <sip:alice@127.0.0.1>")


@pytest.fixture()
def reg() -> Harness:
    return Harness.from_text(REG_CFG)


def location(h: Harness) -> list:
    from sipcore.mod import bind_api

    ul = bind_api(h.cfg.modules, "usrloc", "test")
    return ul.register_udomain("location").get("alice")


def test_register_behind_nat_stores_received(reg):
    res = reg.request(register(), src=("127.0.0.1", 41000))
    (rep,) = res.replies
    assert rep.status == 200
    (c,) = location(reg)
    assert c.c == "sip:alice@10.1.2.3:5060"
    assert c.received == "sip:127.0.0.1:41000"
    assert c.cflags & (1 << NAT_BFLAG)
    # the 200 OK shows the binding with its received parameter
    assert 'received="sip:127.0.0.1:41000"' in rep.header("Contact").value


def test_register_not_behind_nat_has_no_received(reg):
    reg.request(register(contact="<sip:alice@127.0.0.1:41000>").replace(
        "10.1.2.3:5060;branch", "127.0.0.1:41000;branch"), src=("127.0.0.1", 41000))
    (c,) = location(reg)
    assert c.received == "" and not c.cflags & (1 << NAT_BFLAG)


def _run_natping(h: Harness) -> list:
    before = len(h.core.sent)
    h.timers.make_due(lambda d: d.name == "nathelper:natping")
    h.run_timers()
    return h.core.sent[before:]


def test_natping_udp_and_sip_pings(reg):
    reg.request(register(), src=("127.0.0.1", 41000))
    bob = register(contact="<sip:bob@10.1.2.9:5060>", extra="X-Sip-Ping: yes").replace(
        "alice@127.0.0.1>", "bob@127.0.0.1>")
    reg.request(bob, src=("127.0.0.1", 41001))
    # not NATed: never pinged with ping_nated_only
    carol = register(contact="<sip:carol@127.0.0.1:41002>").replace(
        "alice@127.0.0.1>", "carol@127.0.0.1>").replace("10.1.2.3:5060;branch",
                                                        "127.0.0.1:41002;branch")
    reg.request(carol, src=("127.0.0.1", 41002))
    sent = _run_natping(reg)
    by_port = {d.port: data for d, data in sent}
    assert set(by_port) == {41000, 41001}
    assert all(d.ip == "127.0.0.1" for d, _ in sent)
    assert by_port[41000] == b"\x00\x00\x00\x00"
    ping = parse_msg(by_port[41001])
    assert ping.method == "OPTIONS" and ping.ruri == "sip:bob@10.1.2.9:5060"
    assert ping.from_.uri == "sip:pinger@127.0.0.1"
    # its reply is absorbed, not relayed
    reply = (f"SIP/2.0 200 OK\r\n{ping.header('Via').name}: {ping.header('Via').value}\r\n"
             f"From: {ping.header('From').value}\r\nTo: {ping.header('To').value};tag=x\r\n"
             f"Call-ID: {ping.callid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    res = reg.reply(reply, src=("127.0.0.1", 41001))
    assert res.sent == []


def test_enable_ping_rpc_stops_pinging(reg):
    reg.request(register(), src=("127.0.0.1", 41000))
    assert rpc_enable_ping() == {"enabled": 1}
    assert rpc_enable_ping(0) == {"enabled": 0}
    assert _run_natping(reg) == []
    rpc_enable_ping(1)
    assert len(_run_natping(reg)) == 1


def test_addr_helpers():
    assert nh_addr.replace_hostport("sip:u@h:1;a=b?x=y", "::1", 5) == "sip:u@[::1]:5;a=b?x=y"
    assert nh_addr.remove_uri_param("sip:h;alias=a;x;alias=b", "alias", "last") == \
        ("sip:h;alias=a;x", ["b"])
    assert nh_addr.decode_alias("10.0.0.1~5060~6") == ("10.0.0.1", 5060, "wss")
    with pytest.raises(ValueError):
        nh_addr.decode_alias("10.0.0.1~5060")


# ---- the Kamailio 5.6 default configuration with WITH_NAT --------------------------------------

DEFAULT_CFG = str(STOCK_CFG)


def test_default_cfg_nat_flow():
    """route[NATDETECT]/[NATMANAGE] of the stock config: a NATed REGISTER is saved with its
    received address and nat bflag; a call to it goes to that address, the NATed caller's
    Contact gets an alias and the INVITE's SDP is relayed through (a fake) rtpproxy on the
    config's 127.0.0.1:7722, the 200 OK's SDP too."""
    from .test_mod_rtpproxy import FakeRtpproxy

    try:
        fake = FakeRtpproxy(port=7722)
    except OSError:
        skip("ports", "127.0.0.1:7722 (the stock cfg's rtpproxy_sock) is in use")
    try:
        h = Harness.from_file(DEFAULT_CFG, defines={"WITH_NAT": None})
        res = h.request(register(), src=("127.0.0.1", 41000))
        (rep,) = res.replies
        assert rep.status == 200
        (c,) = location(h)
        assert c.received == "sip:127.0.0.1:41000" and c.cflags & (1 << NAT_BFLAG)

        sdp = ("v=0\r\no=bob 1 1 IN IP4 10.9.9.9\r\ns=-\r\nc=IN IP4 10.9.9.9\r\nt=0 0\r\n"
               "m=audio 4000 RTP/AVP 0\r\n")
        inv = request("INVITE", ruri="sip:alice@127.0.0.1", via="10.9.9.9:5060",
                      contact="<sip:bob@10.9.9.9:5060>", body=sdp)
        res = h.request(inv, src=("127.0.0.1", 42000))
        (fwd_inv,) = [m for m in res.requests if m.method == "INVITE"]
        (dest,) = [d for d, b in res.sent if b.startswith(b"INVITE")]
        assert (dest.ip, dest.port) == ("127.0.0.1", 41000)
        assert fwd_inv.ruri == "sip:alice@10.1.2.3:5060"
        assert fwd_inv.header("Contact").value == \
            "<sip:bob@10.9.9.9:5060;alias=127.0.0.1~42000~1>"
        assert fake.commands[0].startswith(f"U {fwd_inv.callid} 127.0.0.1 4000 a1;1")
        assert fwd_inv.body == (b"v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
                                b"c=IN IP4 127.0.0.1\r\nt=0 0\r\na=nortpproxy:yes\r\n"
                                b"m=audio 35002 RTP/AVP 0\r\n")

        answer = ("v=0\r\no=alice 2 2 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\n"
                  "t=0 0\r\nm=audio 5000 RTP/AVP 0\r\n")
        ok = (f"SIP/2.0 200 OK\r\nVia: {fwd_inv.header('Via').value}\r\n"
              + "".join(f"{h_.name}: {h_.value}\r\n" for h_ in fwd_inv.header_all("Via")[1:])
              + f"From: {fwd_inv.header('From').value}\r\n"
              f"To: {fwd_inv.header('To').value};tag=al1\r\nCall-ID: {fwd_inv.callid}\r\n"
              "CSeq: 1 INVITE\r\nContact: <sip:alice@10.1.2.3:5060>\r\n"
              f"Content-Type: application/sdp\r\nContent-Length: {len(answer)}\r\n\r\n{answer}")
        res = h.reply(ok, src=("127.0.0.1", 41000))
        assert fake.commands[-1].startswith(f"L {fwd_inv.callid} 127.0.0.1 5000 a1;1 al1;1")
        (relayed,) = res.replies
        assert relayed.status == 200
        assert b"m=audio 35004 RTP/AVP 0" in relayed.body
        assert relayed.header("Contact").value == \
            "<sip:alice@10.1.2.3:5060;alias=127.0.0.1~41000~1>"
    finally:
        fake.close()


def test_mod_init_checks_params():
    from sipcore.errors import ModuleError

    base = 'loadmodule "nathelper"\n{}\nrequest_route {{ exit; }}\n'
    with pytest.raises(ModuleError, match="sipping_from"):
        Harness.from_text(base.format('modparam("nathelper", "sipping_bflag", 7)'))
    with pytest.raises(ModuleError, match="keepalive_timeout"):
        Harness.from_text(base.format('modparam("nathelper", "keepalive_timeout", 30)'))
    with pytest.raises(ModuleError, match="usrloc"):
        Harness.from_text(base.format('modparam("nathelper", "natping_interval", 10)'))
