"""tm forking through the Harness: parallel branches (a 2xx cancels the others), serial
forking by q (t_load_contacts/t_next_contacts), timeouts seen in failure_route, sl's
send_reply going stateful, $T_* variables."""
from __future__ import annotations

import time

import pytest

import modules.tm as tm
import modules.tmx as tmx
from sipcore import log as klog
from sipcore.msg import parse_msg
from sipcore.testing import Harness
from tests.unit.test_tm_relay import invite, reply_to

CFG = """
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "textops"
loadmodule "corex"
loadmodule "xlog"
modparam("tm", "contacts_avp", "tm_contacts")
modparam("tm", "fr_timer", 200)
modparam("tm", "fr_inv_timer", 300)
modparam("tm", "retr_timer1", 500)

request_route {
    if (is_method("ACK")) { t_check_trans(); exit; }
    t_check_trans();
    if ($rU == "par") {
        $ru = "sip:par@127.0.0.1:5101";
        append_branch("sip:par2@127.0.0.1:5102");
        t_relay();
        exit;
    }
    if ($rU == "serial") {
        $ru = "sip:s1@127.0.0.1:5111";
        append_branch("sip:s2@127.0.0.1:5112", "0.5");
        append_branch("sip:s3@127.0.0.1:5113", "0.5");
        $avp(who) = "caller-a";
        $xavp(t=>k) = "v1";
        t_load_contacts();
        t_next_contacts();
        t_on_failure("NEXT");
        t_relay();
        exit;
    }
    if ($rU == "sendreply") {
        t_newtran();
        send_reply("403", "Forbidden here");
        exit;
    }
    t_on_failure("TIMEOUT");
    $du = "sip:127.0.0.1:5120";
    t_relay();
}

failure_route[NEXT] {
    xlog("L_NOTICE", "NEXT code=$T_reply_code reason=$T_reply_reason ci=$T_req($ci) "
         "avp=$avp(who) xavp=$xavp(t=>k)\\n");
    if (t_next_contacts()) {
        t_on_failure("NEXT");
        t_relay();
    }
}

failure_route[TIMEOUT] {
    if (t_branch_timeout()) {
        xlog("L_NOTICE", "TIMEOUT replied=$T_reply_code any=$T(reply_code)\\n");
        if (!t_branch_replied()) {
            t_reply("480", "Nobody home");
        }
    }
}
"""



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
    lines = klog.capture()
    level = klog.get_debug()
    klog.set_debug(klog.L_INFO)
    harness = Harness.from_text(CFG)
    harness.lines = lines
    yield harness
    klog.capture(False)
    klog.set_debug(level)


def by_port(res):
    out: dict[int, list] = {}
    for d, b in res.sent:
        out.setdefault(d.port, []).append(parse_msg(b))
    return out


def test_parallel_2xx_wins_and_cancels_the_other_branch(h):
    res = h.request(invite("par"))
    sent = {d.port: b for d, b in res.sent if d.port in (5101, 5102)}
    assert set(sent) == {5101, 5102}
    h.reply(reply_to(sent[5101], 180, "Ringing", tag="x1"))
    h.reply(reply_to(sent[5102], 180, "Ringing", tag="x2"))
    ok = by_port(h.reply(reply_to(sent[5102], 200, "OK", tag="x2")))
    assert [m.status for m in ok[5080]] == [200]
    assert [m.method for m in ok[5101]] == ["CANCEL"]
    # the cancelled branch answers 487: absorbed (ACKed), nothing more goes upstream
    after = by_port(h.reply(reply_to(sent[5101], 487, "Request Terminated", tag="x1")))
    assert 5080 not in after
    assert [m.method for m in after[5101]] == ["ACK"]


def test_serial_forking_by_q(h):
    # as in Kamailio an unspecified q (the R-URI s1) counts as -1: the q=0.5 pair goes first,
    # in parallel, s1 last
    res = by_port(h.request(invite("serial")))
    assert sorted(k for k in res if k > 5100) == [5112, 5113]
    b2, b3 = res[5112][0], res[5113][0]
    h.reply(reply_to(b2.buf, 486, "Busy Here", tag="y2"))
    step2 = by_port(h.reply(reply_to(b3.buf, 486, "Busy Here", tag="y3")))
    assert sorted(k for k in step2 if k > 5100) == [5111, 5113]      # s1 + the ACK
    assert [m.method for m in step2[5113]] == ["ACK"]
    assert any("NEXT code=486 reason=Busy Here ci=call-1 avp=caller-a xavp=v1" in t
               for _l, t in h.lines)
    last = by_port(h.reply(reply_to(step2[5111][0].buf, 404, "Not Found", tag="y1")))
    # no contacts left: the best reply of the last leg goes upstream
    assert [m.status for m in last[5080]] == [404]


def test_timeout_in_failure_route_local_reply(h):
    h.request(invite("bob"))
    before = len(h.core.sent)
    time.sleep(0.25)
    h.run_timers()
    up = [parse_msg(b) for d, b in h.core.sent[before:] if d.port == 5080]
    assert [m.status for m in up] == [480]
    assert any("TIMEOUT replied=408" in t for _l, t in h.lines)


def test_send_reply_is_stateful_with_a_transaction(h):
    res = h.request(invite("sendreply"))
    assert [m.status for m in res.replies] == [100, 403]
    # the retransmission gets the same reply from the transaction
    again = h.request(invite("sendreply"))
    assert [m.status for m in again.replies] == [403]


def test_suspend_continue_replicate_and_uac():
    import modules.tmx.tmx_impl as ti
    from modules.tm.state import table
    from modules.tm.t_uac import uac_send
    from sipcore.testing import make_ctx

    for m in (tm.mod, tmx.mod):
        m.reset_params()
    h = Harness.from_text("""
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "textops"
loadmodule "pv"

request_route {
    if (is_method("OPTIONS")) {
        t_replicate("sip:127.0.0.1:5130");
        exit;
    }
    t_check_trans();
    t_on_failure("F");
    t_suspend();
    $avp(idx) = $T(id_index);
    $avp(lbl) = $T(id_label);
    exit;
}

route[RESUME] {
    $du = "sip:127.0.0.1:5131";
    t_relay();
}

failure_route[F] {
    t_reply("486", "Busy from failure");
}
""")
    res = h.request(invite("later"))
    assert [m.status for m in res.replies] == [100]
    assert not [d for d, _b in res.sent if d.port == 5131]
    avps = res.ctx.avps
    idx, lbl = avps.values("idx")[0], avps.values("lbl")[0]
    ctx = make_ctx(invite("x"), core=h.core)
    before = len(h.core.sent)
    assert ti.ki_t_continue(ctx, int(idx), int(lbl), "RESUME") == 1
    out = [b for d, b in h.core.sent[before:] if d.port == 5131]
    assert len(out) == 1 and parse_msg(out[0]).method == "INVITE"
    assert ti.ki_t_continue(ctx, int(idx), int(lbl), "RESUME") == -1   # not suspended now
    fail = h.reply(reply_to(out[0], 404, "Not Found"))
    assert [parse_msg(b).status for d, b in fail.sent if d.port == 5080] == [486]
    # t_replicate: the copy goes out statefully, its replies stay here
    opt = ("OPTIONS sip:x@example.com SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKo1\n"
           "From: <sip:a@example.com>;tag=f\nTo: <sip:x@example.com>\nCall-ID: o1\n"
           "CSeq: 1 OPTIONS\nContent-Length: 0\n\n")
    rep = h.request(opt)
    copy = [b for d, b in rep.sent if d.port == 5130]
    assert len(copy) == 1 and rep.replies == []
    r = h.reply(reply_to(copy[0], 200, "OK"))
    assert r.sent == []
    # a local request through tm (t_uac_send / tm.t_uac_start)
    before = len(h.core.sent)
    tid = uac_send(h.core, "OPTIONS", "sip:y@127.0.0.1:5132", "", "",
                           "From: <sip:pykam@127.0.0.1>\r\nTo: <sip:y@127.0.0.1>", "")
    assert tid is not None
    [(dest, buf)] = h.core.sent[before:]
    assert dest.port == 5132 and parse_msg(buf).from_tag
    r = h.reply(reply_to(buf, 200, "OK"))
    assert r.sent == []
    assert table().get(tid).uas_code == 200


EXTRA_CFG = """
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "textops"
loadmodule "xlog"
modparam("tm", "on_sl_reply", "SL")
modparam("tm", "max_inv_lifetime", 200)
modparam("tm", "fr_inv_timer", 5000)
modparam("tm", "fr_timer", 5000)

request_route {
    t_check_trans();
    if ($rU == "nowhere") {
        $du = "sip:unresolvable.invalid";
    } else {
        $du = "sip:127.0.0.1:5140";
    }
    t_on_branch_failure("BF");
    if (!t_relay()) { sl_reply_error(); }
}

event_route[tm:branch-failure:BF] {
    xlog("L_NOTICE", "BRANCH-FAILURE $T_branch_idx $T_reply_code $T_rpl($rr)\\n");
}

onreply_route[SL] {
    xlog("L_NOTICE", "SL-REPLY $rs\\n");
    drop;
}
"""


@pytest.fixture
def hx():
    for m in (tm.mod, tmx.mod):
        m.reset_params()
    lines = klog.capture()
    level = klog.get_debug()
    klog.set_debug(klog.L_INFO)
    harness = Harness.from_text(EXTRA_CFG)
    harness.lines = lines
    yield harness
    klog.capture(False)
    klog.set_debug(level)


def test_branch_failure_event_route(hx):
    out = [b for d, b in hx.request(invite()).sent if d.port == 5140][0]
    hx.reply(reply_to(out, 486, "Busy Here"))
    assert any("BRANCH-FAILURE 0 486 Busy Here" in t for _l, t in hx.lines)


def test_on_sl_reply_drops_unmatched_replies(hx):
    stray = ("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKstray\n"
             "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKx\n"
             "From: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2\nCall-ID: s1\nCSeq: 1 INVITE\n"
             "Content-Length: 0\n\n")
    res = hx.reply(stray)
    assert res.sent == []
    assert any("SL-REPLY 200" in t for _l, t in hx.lines)


def test_max_lifetime_expires_the_transaction(hx):
    out = [b for d, b in hx.request(invite()).sent if d.port == 5140][0]
    hx.reply(reply_to(out, 180, "Ringing"))
    before = len(hx.core.sent)
    time.sleep(0.25)
    hx.run_timers()
    sent = hx.core.sent[before:]
    assert [parse_msg(b).status for d, b in sent if d.port == 5080] == [408]
    assert [parse_msg(b).method for d, b in sent if d.port == 5140] == ["CANCEL"]


def test_unreachable_destination_503(hx):
    res = hx.request(invite("nowhere"))
    assert [m.status for m in res.replies] == [100, 503]


def test_aggregate_challenges(h):
    res = h.request(invite("par"))
    sent = {d.port: b for d, b in res.sent if d.port in (5101, 5102)}

    def challenge(req, realm, tag):
        r = reply_to(req, 407, "Proxy Authentication Required", tag=tag)
        return r.replace("Content-Length: 0",
                         f'Proxy-Authenticate: Digest realm="{realm}", nonce="n{tag}"\n'
                         "Content-Length: 0")

    h.reply(challenge(sent[5101], "one.example", "c1"))
    up = by_port(h.reply(challenge(sent[5102], "two.example", "c2")))[5080]
    [rpl] = up
    realms = sorted(v.split('realm="')[1].split('"')[0]
                    for v in [h_.value for h_ in rpl.header_all("Proxy-Authenticate")])
    assert rpl.status == 407 and realms == ["one.example", "two.example"]


def test_rpcs(h):
    from modules.tm import t_rpc

    out = [b for d, b in h.request(invite("bob")).sent if d.port == 5120][0]
    [entry] = t_rpc.rpc_list()
    assert entry["method"] == "INVITE" and entry["callid"] == "call-1"
    assert entry["outgoings"] == 1
    st = t_rpc.rpc_stats()
    assert st["current"] == 1 and st["total"] >= 1
    # tm.reply_callid answers the pending INVITE from the control interface
    assert t_rpc.rpc_reply_callid(480, "Later", "call-1", "1", ".", ".") == "ok"
    ups = [parse_msg(b) for d, b in h.core.sent if d.port == 5080]
    assert ups[-1].status == 480
    # the branch never answered: its CANCEL waits for a provisional (cancel_b_method=1)
    assert [parse_msg(b).method for d, b in h.core.sent if d.port == 5120] == ["INVITE"]
    h.reply(reply_to(out, 180, "Ringing"))
    assert [parse_msg(b).method for d, b in h.core.sent if d.port == 5120][-1] == "CANCEL"


def test_per_branch_onreply_route_and_branch_flags():
    h = Harness.from_text("""
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "textops"
loadmodule "corex"
loadmodule "xlog"
loadmodule "kex"
request_route {
    $ru = "sip:one@127.0.0.1:5151";
    append_branch("sip:two@127.0.0.1:5152");
    t_on_branch("B");
    t_on_reply("ALL");
    t_relay();
}
branch_route[B] {
    if ($rU == "two") { setbflag(3); t_on_reply("TWO"); }
}
onreply_route[ALL] { xlog("L_NOTICE", "ALL $rs bf=$bf\\n"); }
onreply_route[TWO] { xlog("L_NOTICE", "TWO $rs bf=$bf\\n"); }
""")
    lines = klog.capture()
    level = klog.get_debug()
    klog.set_debug(klog.L_INFO)
    try:
        res = h.request(invite("x"))
        sent = {d.port: b for d, b in res.sent if d.port in (5151, 5152)}
        h.reply(reply_to(sent[5151], 180, "Ringing", tag="o1"))
        h.reply(reply_to(sent[5152], 183, "Progress", tag="o2"))
        got = [t for _l, t in lines]
        assert any("ALL 180 bf=0" in t for t in got)
        assert any("TWO 183 bf=8" in t for t in got)
    finally:
        klog.capture(False)
        klog.set_debug(level)
