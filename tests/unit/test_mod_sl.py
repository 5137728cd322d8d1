"""sl: stateless replies on real requests - bytes sent, destination, statistics, 3xx contacts,
reply errors, reply forwarding and local ACK filtering."""
from __future__ import annotations

import pytest

import modules.sl as sl
from modules.sl import sl_stats
from sipcore import stats
from sipcore.mod import RouteType
from sipcore.msg import parse_msg
from sipcore.route.ctx import Branch
from sipcore.testing import RecordingCore, make_ctx


def sip(head: str, body: str = "") -> str:
    b = body.replace("\r\n", "\n").replace("\n", "\r\n")
    return head.replace("\n", "\r\n") + f"\r\nContent-Length: {len(b.encode())}\r\n\r\n" + b


INVITE = sip("""INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: <sip:bob@example.com>
From: <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@10.0.0.1:5070>""")

REPLY = sip("""SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy
Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK776asdhds;received=192.0.2.7;rport=6000
To: <sip:bob@example.com>;tag=b1
From: <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE""")


@pytest.fixture(autouse=True)
def _reset():
    sl.mod.reset_params()
    for n in sl_stats.NAMES:
        stats.reset(f"sl:{n}")
    sl.api.stateful_replier = None
    yield
    sl.mod.reset_params()
    sl.api.stateful_replier = None


def sent_replies(ctx):
    return [parse_msg(d) for _, d in ctx.core.sent]


def test_sl_send_reply_bytes_and_destination():
    ctx = make_ctx(INVITE, src=("192.0.2.7", 6000))
    assert sl.ki_sl_send_reply(ctx, 404, "Not Here") == 1
    (dest, data), = ctx.core.sent
    r = parse_msg(data)
    assert (r.status, r.reason) == (404, "Not Here")
    assert r.callid == "a84b4c76e66710" and r.cseq.num == 314159
    assert r.to_tag                                      # a to-tag was added
    assert (dest.proto, dest.ip, dest.port) == ("udp", "192.0.2.7", 6000)   # rport honoured
    assert ctx.replied


def test_stats_counted_per_class():
    ctx = make_ctx(INVITE)
    sl.ki_sl_send_reply(ctx, 404, "Not Found")
    sl.ki_sl_send_reply(ctx, 200, "OK")
    sl.ki_sl_send_reply(ctx, 183, "Progress")
    sl.ki_sl_send_reply(ctx, 486, "Busy")
    s = sl.api.stats()
    assert s["404_replies"] == 1 and s["200_replies"] == 1 and s["1xx_replies"] == 1
    assert s["4xx_replies"] == 1 and s["sent_replies"] == 4 and s["sent_err_replies"] == 2
    assert sl.rpc_stats() == s
    assert sl_stats.bucket(483) == "483_replies" and sl_stats.bucket(799) == "xxx_replies"


def test_invalid_code_and_ack():
    ctx = make_ctx(INVITE)
    assert sl.ki_sl_send_reply(ctx, 99, "x") == -1
    assert sl.ki_sl_send_reply(ctx, 700, "x") == -1
    ack = make_ctx(INVITE.replace("INVITE sip", "ACK sip").replace("314159 INVITE",
                                                                   "314159 ACK"))
    assert sl.ki_sl_send_reply(ack, 200, "OK") == -1
    assert ack.core.sent == [] and sl.api.stats()["failures"] == 1


def test_send_failure_counted():
    core = RecordingCore()
    core.fail_sends = True
    ctx = make_ctx(INVITE, core=core)
    assert sl.ki_sl_send_reply(ctx, 500, "Oops") == -1
    assert sl.api.stats()["failures"] == 1


def test_append_to_reply_and_reply_body_are_used():
    ctx = make_ctx(INVITE)
    ctx.reply_lumps.append("X-Reason: test")
    ctx.reply_body = (b"sorry", "text/plain")
    assert sl.ki_sl_send_reply(ctx, 403, "Forbidden") == 1
    r, = sent_replies(ctx)
    assert r.header("X-Reason").value == "test"
    assert r.body == b"sorry" and r.header("Content-Type").value == "text/plain"


def test_3xx_carries_destination_set():
    ctx = make_ctx(INVITE)
    ctx.msg.set_ruri("sip:bob@10.0.0.9")
    ctx.branches.append(Branch(uri="sip:bob@10.0.0.10", q=500, bflags=3))
    assert sl.ki_sl_send_reply(ctx, 302, "Moved Temporarily") == 1
    r, = sent_replies(ctx)
    assert r.header("Contact").value == "<sip:bob@10.0.0.9>, <sip:bob@10.0.0.10>;q=0.5"
    sl.mod.set_param("rich_redirect", 1)
    ctx2 = make_ctx(INVITE)
    ctx2.branches.append(Branch(uri="sip:bob@10.0.0.10", bflags=3))
    sl.ki_sl_send_reply(ctx2, 302, "Moved")
    assert sent_replies(ctx2)[0].header("Contact").value == "<sip:bob@10.0.0.10>;flags=3"


def test_send_reply_stateless_and_stateful_hook():
    ctx = make_ctx(INVITE)
    assert sl.ki_send_reply(ctx, 480, "Later") == 1
    assert sent_replies(ctx)[0].status == 480
    calls = []
    sl.api.stateful_replier = lambda c, code, reason: calls.append((code, reason)) or 1
    ctx2 = make_ctx(INVITE)
    assert sl.ki_send_reply(ctx2, 486, "Busy") == 1
    assert calls == [(486, "Busy")] and ctx2.core.sent == []
    sl.mod.set_param("bind_tm", 0)
    assert sl.ki_send_reply(ctx2, 486, "Busy") == 1 and len(ctx2.core.sent) == 1


def test_send_reply_mode_flags():
    ctx = make_ctx(INVITE)
    assert sl.ki_send_reply_mode(ctx, 404, "Nope", 3) == 1
    assert ctx.reply_no_connect and ctx.reply_close


def test_sl_reply_error_mappings():
    ctx = make_ctx(INVITE)
    assert sl.ki_sl_reply_error(ctx) == 1
    ctx.last_error = -478                        # E_BAD_ADDRESS
    sl.ki_sl_reply_error(ctx)
    ctx.last_error = (488, "Not Acceptable Here")
    sl.ki_sl_reply_error(ctx)
    got = [(r.status, r.reason) for r in sent_replies(ctx)]
    assert got == [(500, "Internal Server Error"),
                   (478, "Unresolvable destination (478/SL)"),
                   (488, "Not Acceptable Here")]
    sl.mod.set_param("default_code", 503)
    sl.mod.set_param("default_reason", "Try Later")
    ctx.last_error = None
    sl.ki_sl_reply_error(ctx)
    assert (sent_replies(ctx)[-1].status, sent_replies(ctx)[-1].reason) == (503, "Try Later")


def test_sl_forward_reply():
    ctx = make_ctx(REPLY, route_type=RouteType.ONREPLY)
    assert sl.ki_sl_forward_reply(ctx) == 1
    (dest, data), = ctx.core.sent
    fwd = parse_msg(data)
    assert (dest.ip, dest.port) == ("192.0.2.7", 6000)        # received + rport of Via 2
    assert len(fwd.vias) == 1 and fwd.via1.branch == "z9hG4bK776asdhds"
    assert fwd.status == 180


def test_sl_forward_reply_changing_code():
    ctx = make_ctx(REPLY, route_type=RouteType.ONREPLY)
    assert sl.ki_sl_forward_reply_code_reason(ctx, "183", "Session Progress") == 1
    fwd = parse_msg(ctx.core.sent[0][1])
    assert (fwd.status, fwd.reason) == (183, "Session Progress")
    ctx2 = make_ctx(REPLY, route_type=RouteType.ONREPLY)
    assert sl.ki_sl_forward_reply_code(ctx2, "200") == -1          # other class refused
    assert sl.ki_sl_forward_reply_code(ctx2, "18x") == -1
    assert sl.ki_sl_forward_reply(make_ctx(INVITE)) == -1           # not a reply


def test_ack_filter_for_local_reply():
    inv = make_ctx(INVITE)
    sl.ki_sl_send_reply(inv, 486, "Busy Here")
    tag = sent_replies(inv)[0].to_tag
    ack = make_ctx(INVITE.replace("INVITE sip", "ACK sip").replace("314159 INVITE",
                                                                   "314159 ACK")
                   .replace("To: <sip:bob@example.com>", f"To: <sip:bob@example.com>;tag={tag}"))
    assert sl.api.filter_ack(ack) is True
    assert sl.api.stats()["received_ACKs"] == 1
    other = make_ctx(ack.msg.buf.replace(tag.encode(), b"someone-else"))
    assert sl.filter_ack(other) is False
    assert sl.filter_ack(inv) is False                              # not an ACK


def test_exports():
    f = sl.mod.functions
    assert sorted(len(o.args) for o in f["sl_forward_reply"]) == [0, 1, 2]
    for n, arity in (("sl_send_reply", 2), ("send_reply", 2), ("send_reply_mode", 3),
                     ("sl_reply_error", 0)):
        assert [len(o.args) for o in f[n]] == [arity]
    p = sl.mod.params
    assert p["default_code"].default == 500
    assert p["default_reason"].default == "Internal Server Error"
    assert p["bind_tm"].default == 1 and p["rich_redirect"].default == 0
    assert "sl:filtered-ack" in sl.mod.event_routes


CFG = r"""
loadmodule "sl"
loadmodule "textops"
request_route {
    if (is_method("ACK")) { exit; }
    append_to_reply("X-Info: $ci\r\n");
    if ($rU == "error") { sl_reply_error(); exit; }
    send_reply("404", "Not Found $rU");
}
"""


def test_sl_from_cfg():
    from sipcore.testing import Harness

    h = Harness.from_text(CFG)
    r = h.request(INVITE)
    (rpl,) = r.replies
    assert (rpl.status, rpl.reason) == (404, "Not Found bob")
    assert rpl.header("X-Info").value == "a84b4c76e66710"
    r = h.request(INVITE.replace("sip:bob@", "sip:error@"))
    assert [(m.status, m.reason) for m in r.replies] == [(500, "Internal Server Error")]


def test_filtered_ack_runs_event_route():
    from sipcore.testing import Harness

    h = Harness.from_text('loadmodule "sl"\nloadmodule "xlog"\n'
                          'request_route {\n sl_send_reply("486", "Busy");\n}\n'
                          'event_route[sl:filtered-ack] {\n $var(seen) = 1;\n'
                          ' xinfo("absorbed $rm\\n");\n}\n')
    from sipcore import log as klog

    r = h.request(INVITE)
    tag = r.replies[0].to_tag
    ack = make_ctx(INVITE.replace("INVITE sip", "ACK sip").replace("314159 INVITE",
                                                                   "314159 ACK")
                   .replace("To: <sip:bob@example.com>", f"To: <sip:bob@example.com>;tag={tag}"),
                   core=h.core)
    old = klog.get_debug()
    klog.set_debug(klog.L_INFO)
    lines = klog.capture(True)
    try:
        assert sl.filter_ack(ack) is True
    finally:
        klog.capture(False)
        klog.set_debug(old)
    assert lines == [(klog.L_INFO, "<script>: absorbed ACK")]


def test_bad_code_is_a_config_error():
    from sipcore.errors import ConfigErrors
    from sipcore.testing import Harness

    with pytest.raises(ConfigErrors) as ei:
        Harness.from_text('loadmodule "sl"\nrequest_route {\n sl_send_reply("99", "x");\n}\n')
    assert "<test>:3:" in str(ei.value) and "invalid reply code 99" in str(ei.value)
    assert sl.parse_code(" 404 ") == 404


def test_sl_forward_reply_with_combined_via_line():
    combined = REPLY.replace(
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy\r\nVia: ",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy, ")
    ctx = make_ctx(combined, route_type=RouteType.ONREPLY)
    assert sl.ki_sl_forward_reply(ctx) == 1
    fwd = parse_msg(ctx.core.sent[0][1])
    assert [v.branch for v in fwd.vias] == ["z9hG4bK776asdhds"]
    assert fwd.header("Via").value.startswith("SIP/2.0/UDP 10.0.0.1:5070;")
