"""receive_msg(): pre-script callbacks, bad input handling, stateless reply relay."""
from sipcore import stats
from sipcore.testing import Harness

CFG = """
loadmodule "sl"
loadmodule "textops"
request_route {
    if (is_method("ACK")) { append_hf("X-Seen: ack\\r\\n"); forward("127.0.0.1", "5999"); exit; }
    sl_send_reply("404", "Not Here");
}
"""

INVITE = """INVITE sip:bob@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKinv1
Max-Forwards: 70
From: <sip:alice@127.0.0.1>;tag=aa1
To: <sip:bob@127.0.0.1>
Call-ID: rcv-1@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0

"""


def _ack(to_tag: str, branch: str = "z9hG4bKinv1") -> str:
    return (INVITE.replace("INVITE sip", "ACK sip").replace("1 INVITE", "1 ACK")
            .replace("To: <sip:bob@127.0.0.1>", f"To: <sip:bob@127.0.0.1>;tag={to_tag}")
            .replace("z9hG4bKinv1", branch))


def test_ack_to_local_stateless_reply_is_absorbed():
    h = Harness.from_text(CFG)
    r = h.request(INVITE)
    [rpl] = r.replies
    assert rpl.status == 404 and rpl.to_tag
    before = stats.get("sl:received_ACKs")
    r2 = h.request(_ack(rpl.to_tag))
    assert r2.sent == [] and r2.dropped          # never reached request_route
    assert stats.get("sl:received_ACKs") == before + 1
    r3 = h.request(_ack("someone-elses-tag"))    # not ours: the script sees it
    [fwd] = r3.requests
    assert fwd.method == "ACK" and fwd.header("X-Seen").value == "ack"


def test_unparsable_datagram_is_dropped_and_counted():
    h = Harness.from_text(CFG)
    before = stats.get("core:drop_msgs")
    r = h.request(b"\x00\x01garbage without a first line\r\n\r\n")
    assert r.sent == [] and r.ctx is None
    assert stats.get("core:drop_msgs") == before + 1


def test_request_missing_call_id_gets_400():
    h = Harness.from_text(CFG)
    r = h.request(INVITE.replace("Call-ID: rcv-1@127.0.0.1\n", ""))
    [rpl] = r.replies
    assert rpl.status == 400
    assert "Call-ID" in rpl.header("Warning").value


def test_reply_without_our_via_is_not_relayed():
    h = Harness.from_text(CFG)
    r = h.reply("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx\n"
                "From: <sip:a@127.0.0.1>;tag=1\nTo: <sip:b@127.0.0.1>;tag=2\n"
                "Call-ID: r@x\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
    assert r.sent == []


def test_reply_relayed_by_second_via():
    h = Harness.from_text(CFG)
    r = h.reply("SIP/2.0 180 Ringing\n"
                "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKours\n"
                "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKtheirs;rport=5082;received=127.0.0.1\n"
                "From: <sip:a@127.0.0.1>;tag=1\nTo: <sip:b@127.0.0.1>;tag=2\n"
                "Call-ID: r@x\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
    [(dest, buf)] = r.sent
    assert (dest.ip, dest.port) == ("127.0.0.1", 5082)
    assert b"z9hG4bKours" not in buf and b"z9hG4bKtheirs" in buf


def test_reply_with_a_malformed_top_via_is_dropped_and_counted():
    """A reply's top Via is parsed when first needed (tm matches by the scanned branch); a
    reply no transaction takes is relayed by its Vias, so a malformed one is dropped there,
    counted, and the worker goes on."""
    h = Harness.from_text(CFG)
    before = stats.get("core:drop_replies")
    r = h.reply("SIP/2.0 180 Ringing\n"
                "Via: SIP/2.0/UDP 127.0.0.1:5060:99999;branch=z9hG4bKours\n"
                "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKtheirs\n"
                "From: <sip:a@127.0.0.1>;tag=1\nTo: <sip:b@127.0.0.1>;tag=2\n"
                "Call-ID: r@x\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
    assert r.sent == [] and r.dropped
    assert stats.get("core:drop_replies") == before + 1
    r = h.reply("SIP/2.0 180 Ringing\n"
                "From: <sip:a@127.0.0.1>;tag=1\nTo: <sip:b@127.0.0.1>;tag=2\n"
                "Call-ID: r@x\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
    assert r.sent == [] and r.ctx is None            # no Via at all: refused at once


def test_sip_warning_adds_warning_header():
    h = Harness.from_text("sip_warning=yes\n" + CFG)
    [rpl] = h.request(INVITE).replies
    w = rpl.header("Warning").value
    assert w.startswith("392 127.0.0.1:5060 ") and "req_src_ip=127.0.0.1" in w


def test_server_signature_and_header():
    h = Harness.from_text('server_header="Server: Test-Proxy"\n' + CFG)
    assert h.request(INVITE).replies[0].header("Server").value == "Test-Proxy"
    h2 = Harness.from_text("server_signature=no\n" + CFG)
    assert h2.request(INVITE).replies[0].header("Server") is None


def test_log_lines_escape_control_bytes():
    import logging

    from sipcore import log as klog

    lines = klog.capture(True)
    try:
        klog.set_debug(3)
        logging.getLogger("sipcore.receive").error("peer sent %s and é\tok", "\x00\x01\x1b[31m")
        assert lines[-1][1] == "peer sent \\x00\\x01\\x1b[31m and é\tok"
    finally:
        klog.capture(False)
        klog.set_debug(0)


def test_parse_error_found_while_routing_gets_400(monkeypatch):
    """A header first parsed by a function and found malformed ends the script with a 400."""
    import sys
    import types

    from sipcore.mod import Module

    fake = Module("fakeparse")

    @fake.function("read_from_tag")
    def _read(ctx):
        return 1 if ctx.msg.from_.tag else -1

    pkg = types.ModuleType("modules.fakeparse")
    pkg.mod = fake
    monkeypatch.setitem(sys.modules, "modules.fakeparse", pkg)
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, _orig=importlib.util.find_spec:
                        object() if name == "modules.fakeparse" else _orig(name, *a))
    h = Harness.from_text("""
loadmodule "sl"
loadmodule "fakeparse"
request_route { read_from_tag(); sl_send_reply("200", "OK"); }
""")
    r = h.request(INVITE.replace("From: <sip:alice@127.0.0.1>;tag=aa1",
                                 "From: <sip:alice@127.0.0.1;tag=aa1"))
    [rpl] = r.replies
    assert rpl.status == 400 and r.dropped
    ok = h.request(INVITE)
    assert ok.replies[0].status == 200
