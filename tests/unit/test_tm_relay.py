"""tm end to end through the in-process Harness: t_relay, replies, forking, CANCEL, timers."""
from __future__ import annotations

import time

import pytest

import modules.tm as tm
import modules.tmx as tmx
from sipcore.msg import parse_msg
from sipcore.testing import Harness

CFG = """
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "rr"
loadmodule "textops"
loadmodule "corex"
modparam("tm", "fr_timer", 300)
modparam("tm", "fr_inv_timer", 400)
modparam("tm", "retr_timer1", 100)
modparam("tm", "retr_timer2", 400)
modparam("tm", "wt_timer", 200)

request_route {
    if (is_method("CANCEL")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    if (!is_method("ACK")) {
        if (t_precheck_trans()) { t_check_trans(); exit; }
        t_check_trans();
    }
    if (is_method("ACK")) {
        if (t_check_trans()) { t_relay(); exit; }
        t_relay();
        exit;
    }
    if ($rU == "fork") {
        $ru = "sip:fork@127.0.0.1:5093";
        append_branch("sip:carol@127.0.0.1:5092");
    }
    if ($rU == "local") {
        t_newtran();
        t_reply("404", "Not here");
        exit;
    }
    record_route();
    t_on_failure("FAIL");
    t_on_reply("REPLY");
    t_on_branch("BR");
    $du = "sip:127.0.0.1:5090";
    if ($rU == "fork") { $du = $null; }
    if (!t_relay()) { sl_reply_error(); }
    exit;
}

branch_route[BR] {
    append_hf("X-Branch: $T_branch_idx\\r\\n");
}

onreply_route[REPLY] {
    $var(seen) = $rs;
}

failure_route[FAIL] {
    if (t_is_canceled()) exit;
    if (t_check_status("486") && $rU == "serial") {
        $du = "sip:127.0.0.1:5091";
        append_hf("X-Reply: $T_reply_code\\r\\n");
        t_relay();
        exit;
    }
}
"""

VIA = "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKuac{n};rport"


def invite(user: str = "bob", n: str = "1", callid: str = "call-1") -> str:
    return (f"INVITE sip:{user}@example.com SIP/2.0\n"
            f"Via: {VIA.format(n=n)}\n"
            "Max-Forwards: 70\n"
            "From: <sip:alice@example.com>;tag=a1\n"
            f"To: <sip:{user}@example.com>\n"
            f"Call-ID: {callid}\n"
            "CSeq: 1 INVITE\n"
            "Contact: <sip:alice@127.0.0.1:5080>\n"
            "Content-Length: 0\n\n")


def cancel(user: str = "bob", n: str = "1", callid: str = "call-1") -> str:
    return (f"CANCEL sip:{user}@example.com SIP/2.0\n"
            f"Via: {VIA.format(n=n)}\n"
            "Max-Forwards: 70\n"
            "From: <sip:alice@example.com>;tag=a1\n"
            f"To: <sip:{user}@example.com>\n"
            f"Call-ID: {callid}\n"
            "CSeq: 1 CANCEL\n"
            "Content-Length: 0\n\n")


def ack_for(reply: bytes, user: str = "bob", n: str = "1") -> str:
    to = parse_msg(reply).header("To").value
    return (f"ACK sip:{user}@example.com SIP/2.0\n"
            f"Via: {VIA.format(n=n)}\n"
            "Max-Forwards: 70\n"
            "From: <sip:alice@example.com>;tag=a1\n"
            f"To: {to}\n"
            "Call-ID: call-1\n"
            "CSeq: 1 ACK\n"
            "Content-Length: 0\n\n")


def reply_to(req: bytes, code: int, reason: str, tag: str = "b1") -> str:
    """The downstream UAS's reply to a request tm sent (all its Vias copied)."""
    m = parse_msg(req)
    vias = "".join(f"Via: {v}\n" for v in m.header_values("Via"))
    to = m.header("To").value + (f";tag={tag}" if code > 100 else "")
    return (f"SIP/2.0 {code} {reason}\n{vias}"
            f"From: {m.header('From').value}\nTo: {to}\nCall-ID: {m.callid}\n"
            f"CSeq: {m.cseq.num} {m.cseq.method}\nContent-Length: 0\n\n")



@pytest.fixture(autouse=True)
def _forget_modparams():
    """modparam values live on the module objects: later tests must not inherit them."""
    yield
    for m in (tm.mod, tmx.mod):
        m.reset_params()


@pytest.fixture
def h():
    for m in (tm.mod, tmx.mod):
        m.reset_params()
    harness = Harness.from_text(CFG)
    yield harness


def sent_to(res, port):
    return [b for d, b in res.sent if d.port == port]


def test_invite_relayed_with_100_and_new_branch(h):
    res = h.request(invite())
    replies = res.replies
    assert [r.status for r in replies] == [100]
    out = sent_to(res, 5090)
    assert len(out) == 1
    m = parse_msg(out[0])
    assert m.via1.branch.startswith("z9hG4bK.t")
    assert m.vias[1].branch == "z9hG4bKuac1"
    assert m.header("Record-Route") is not None
    assert m.header("X-Branch").value == "0"


def test_replies_relayed_back(h):
    out = sent_to(h.request(invite()), 5090)[0]
    r180 = h.reply(reply_to(out, 180, "Ringing"))
    assert [(d.port, parse_msg(b).status) for d, b in r180.sent] == [(5080, 180)]
    relayed = parse_msg(r180.sent[0][1])
    assert len(relayed.vias) == 1 and relayed.via1.branch == "z9hG4bKuac1"
    r200 = h.reply(reply_to(out, 200, "OK"))
    assert [(d.port, parse_msg(b).status) for d, b in r200.sent] == [(5080, 200)]
    # a retransmitted 200 is relayed again (the UAC needs it until its ACK)
    again = h.reply(reply_to(out, 200, "OK"))
    assert [parse_msg(b).status for _, b in again.sent] == [200]


def test_retransmitted_invite_absorbed(h):
    first = h.request(invite())
    assert len(sent_to(first, 5090)) == 1
    again = h.request(invite())
    assert sent_to(again, 5090) == []
    assert [r.status for r in again.replies] == [100]     # the last reply is resent


def test_serial_forking_after_486(h):
    out = sent_to(h.request(invite("serial")), 5090)[0]
    h.reply(reply_to(out, 180, "Ringing"))
    res = h.reply(reply_to(out, 486, "Busy Here"))
    acks = [parse_msg(b) for d, b in res.sent if d.port == 5090]
    assert [a.method for a in acks] == ["ACK"]
    assert acks[0].via1.branch == parse_msg(out).via1.branch
    new = sent_to(res, 5091)
    assert len(new) == 1 and parse_msg(new[0]).method == "INVITE"
    assert parse_msg(new[0]).header("X-Reply").value == "486"
    # the Record-Route added before the first t_relay() is on the new leg too
    assert parse_msg(new[0]).header("Record-Route").value == \
        parse_msg(out).header("Record-Route").value
    assert not [b for d, b in res.sent if d.port == 5080 and parse_msg(b).status >= 300]
    # the second leg answers 200: relayed upstream
    ok = h.reply(reply_to(new[0], 200, "OK", tag="c1"))
    assert [(d.port, parse_msg(b).status) for d, b in ok.sent] == [(5080, 200)]


def test_486_relayed_when_failure_route_does_nothing(h):
    out = sent_to(h.request(invite("bob")), 5090)[0]
    res = h.reply(reply_to(out, 486, "Busy Here"))
    up = [parse_msg(b) for d, b in res.sent if d.port == 5080]
    assert [m.status for m in up] == [486]
    # the upstream ACK for the 486 is absorbed hop by hop
    ack = h.request(ack_for(res.sent[-1][1] if res.sent[-1][0].port == 5080 else
                            [b for d, b in res.sent if d.port == 5080][0]))
    assert ack.sent == []


def test_parallel_forking_best_reply(h):
    res = h.request(invite("fork"))
    b1 = [b for d, b in res.sent if d.port in (5093, 5092)]
    assert len(b1) == 2
    by_uri = {parse_msg(b).ruri: b for b in b1}
    a = by_uri["sip:fork@127.0.0.1:5093"]
    c = by_uri["sip:carol@127.0.0.1:5092"]
    r1 = h.reply(reply_to(a, 404, "Not Found"))
    assert not [b for d, b in r1.sent if d.port == 5080 and parse_msg(b).status >= 300]
    r2 = h.reply(reply_to(c, 486, "Busy Here", tag="c2"))
    up = [parse_msg(b).status for d, b in r2.sent if d.port == 5080]
    assert up == [404]          # same class: the lower code wins (Kamailio get_prio)


def test_cancel_gives_487(h):
    out = sent_to(h.request(invite()), 5090)[0]
    h.reply(reply_to(out, 180, "Ringing"))
    res = h.request(cancel())
    assert [r.status for r in res.replies] == [200]
    down = [parse_msg(b) for d, b in res.sent if d.port == 5090]
    assert [m.method for m in down] == ["CANCEL"]
    assert down[0].via1.branch == parse_msg(out).via1.branch
    r487 = h.reply(reply_to(out, 487, "Request Terminated"))
    up = [parse_msg(b).status for d, b in r487.sent if d.port == 5080]
    assert up == [487]
    assert [parse_msg(b).method for d, b in r487.sent if d.port == 5090] == ["ACK"]


def test_fr_inv_timer_gives_408(h):
    out = sent_to(h.request(invite()), 5090)[0]
    h.reply(reply_to(out, 180, "Ringing"))
    before = len(h.core.sent)
    time.sleep(0.45)
    h.run_timers()
    sent = h.core.sent[before:]
    up = [parse_msg(b).status for d, b in sent if d.port == 5080]
    assert up == [408]
    assert [parse_msg(b).method for d, b in sent if d.port == 5090] == ["CANCEL"]


def test_retransmissions_downstream_double(h):
    h.request(invite())
    before = len(h.core.sent)
    for _ in range(4):
        time.sleep(0.11)
        h.run_timers()
    resent = [b for d, b in h.core.sent[before:] if d.port == 5090]
    assert 1 <= len(resent) <= 3      # 100 ms, then 200 ms (doubling)


def test_local_t_reply_and_ack_absorbed(h):
    res = h.request(invite("local"))
    statuses = [r.status for r in res.replies]
    assert statuses == [100, 404]
    ack = h.request(ack_for(res.sent[-1][1], "local"))
    assert ack.sent == []


def test_t_newtran_retransmission_of_local_reply(h):
    first = h.request(invite("local"))
    again = h.request(invite("local"))
    assert [r.status for r in again.replies] == [404]
    assert first.replies[-1].to_tag == again.replies[0].to_tag


def test_cancel_reply_absorbed_and_cancel_retransmitted(h):
    out = sent_to(h.request(invite()), 5090)[0]
    h.reply(reply_to(out, 180, "Ringing"))
    res = h.request(cancel())
    [cancel_sent] = [b for d, b in res.sent if d.port == 5090]
    time.sleep(0.12)
    h.run_timers()                               # T1 = 100 ms: the CANCEL goes out again
    again = [b for d, b in h.core.sent if d.port == 5090 and parse_msg(b).method == "CANCEL"]
    assert len(again) >= 2
    # the downstream 200 for the CANCEL is not a reply to the INVITE: nothing goes upstream
    r = h.reply(reply_to(cancel_sent, 200, "canceling"))
    assert r.sent == []
    n = len(h.core.sent)
    time.sleep(0.25)
    h.run_timers()
    assert not [b for d, b in h.core.sent[n:] if parse_msg(b).method == "CANCEL"]


def test_cancel_b_method_0_local_487():
    for m in (tm.mod, tmx.mod):
        m.reset_params()
    h = Harness.from_text(CFG.replace('modparam("tm", "wt_timer", 200)',
                                      'modparam("tm", "wt_timer", 200)\n'
                                      'modparam("tm", "cancel_b_method", 0)'))
    out = sent_to(h.request(invite()), 5090)[0]
    assert parse_msg(out).method == "INVITE"
    res = h.request(cancel())
    statuses = sorted(r.status for r in res.replies)
    assert statuses == [200, 487]                 # 200 for the CANCEL, 487 for the INVITE
    assert not [b for d, b in res.sent if d.port == 5090]     # nothing sent downstream


def test_drop_in_onreply_route_stops_relay_not_state():
    for m in (tm.mod, tmx.mod):
        m.reset_params()
    h = Harness.from_text(CFG.replace("    $var(seen) = $rs;", "    if ($rs == 180) { drop; }"))
    out = sent_to(h.request(invite()), 5090)[0]
    r = h.reply(reply_to(out, 180, "Ringing"))
    assert r.sent == []                               # not relayed upstream
    n = len(h.core.sent)
    time.sleep(0.22)
    h.run_timers()                                    # but timer A stopped: no resend
    assert not [b for d, b in h.core.sent[n:] if d.port == 5090]
