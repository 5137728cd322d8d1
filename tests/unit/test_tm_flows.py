"""RFC 5626 flows through tm (Kamailio t_serial.c semantics): t_load_contacts() /
t_next_contacts() keep one contact per +sip.instance in the destination set and park the other
flows in contact_flows_avp; t_next_contact_flow() in event_route[tm:branch-failure] brings the
next flow of the failed instance, t_relay() sends it. Real wire messages in, what is sent
asserted."""
from __future__ import annotations

import time

import pytest

import modules.tm as tm
import modules.tmx as tmx
from sipcore import log as klog
from sipcore.msg import parse_msg
from sipcore.testing import Harness, make_ctx
from tests.unit.test_tm_relay import invite, reply_to

INSTANCE = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"

CFG = f"""
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "corex"
loadmodule "textops"
loadmodule "xlog"
modparam("tm", "contacts_avp", "tm_contacts")
modparam("tm", "contact_flows_avp", "tm_contact_flows")

request_route {{
    if (is_method("ACK")) {{ t_check_trans(); exit; }}
    t_check_trans();
    $var(who) = $rU;
    # one UA registered twice (reg-id 1 and 2, two flows), plus an unrelated device
    $ru = "sip:bob@127.0.0.1:5161;ob";
    append_branch();
    $(branch(instance)[0]) = "{INSTANCE}";
    append_branch("sip:bob@127.0.0.1:5162;ob");
    $(branch(instance)[1]) = "{INSTANCE}";
    if ($var(who) == "three") {{
        append_branch("sip:bob@127.0.0.1:5163");
    }}
    t_load_contacts();
    t_next_contacts();
    $var(rc) = $rc;
    t_next_contact_flow();
    $var(flow) = $rc;
    xlog("L_NOTICE", "NEXT rc=$var(rc) flow=$var(flow) parked=$xavp(tm_contact_flows=>uri)\\n");
    t_on_branch_failure("outbound");
    t_relay();
}}

event_route[tm:branch-failure:outbound] {{
    if (t_check_status("430")) {{
        t_next_contact_flow();
        $var(f) = $rc;
        xlog("L_NOTICE", "FLOW $T_reply_code rc=$var(f)\\n");
        if ($var(f) > 0) {{
            t_relay();
        }}
    }}
}}
"""


@pytest.fixture(autouse=True)
def _forget_modparams():
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


def by_port(sent):
    out: dict[int, list] = {}
    for d, b in sent:
        out.setdefault(d.port, []).append(parse_msg(b))
    return out


def logged(h, text):
    return any(text in t for _l, t in h.lines)


def test_one_flow_per_instance_then_the_other_flow_on_430(h):
    first = by_port(h.request(invite("bob")).sent)
    # equal q: Kamailio tries the contact appended last first; its sibling flow is parked
    assert sorted(p for p in first if p > 5100) == [5162]
    assert [m.status for m in first[5080]] == [100]
    # in request_route there is no failed branch: -2
    assert logged(h, "NEXT rc=1 flow=-2 parked=sip:bob@127.0.0.1:5161;ob")
    inv1 = first[5162][0]
    # the flow fails (RFC 5626 430 Flow Failed): the branch-failure route loads the other
    # flow before the transaction may complete, nothing goes upstream
    step = by_port(h.reply(reply_to(inv1.buf, 430, "Flow Failed", tag="f1")).sent)
    assert logged(h, "FLOW 430 rc=1")
    assert 5080 not in step
    assert [m.method for m in step[5162]] == ["ACK"]
    [inv2] = step[5161]
    assert inv2.method == "INVITE" and inv2.ruri == "sip:bob@127.0.0.1:5161;ob"
    assert inv2.via1.branch.endswith(".1")          # a new branch of the same transaction
    assert inv2.callid == inv1.callid
    ok = by_port(h.reply(reply_to(inv2.buf, 200, "OK", tag="f2")).sent)
    assert [m.status for m in ok[5080]] == [200]


def test_no_flow_left_completes_with_the_best_reply(h):
    inv1 = by_port(h.request(invite("bob")).sent)[5162][0]
    inv2 = by_port(h.reply(reply_to(inv1.buf, 430, "Flow Failed", tag="f1")).sent)[5161][0]
    last = by_port(h.reply(reply_to(inv2.buf, 430, "Flow Failed", tag="f2")).sent)
    assert logged(h, "FLOW 430 rc=-2")               # contact_flows_avp is empty now
    assert [m.status for m in last[5080]] == [430]


def test_other_device_rings_in_parallel_with_one_flow(h):
    first = by_port(h.request(invite("three")).sent)
    assert sorted(p for p in first if p > 5100) == [5162, 5163]
    assert logged(h, "parked=sip:bob@127.0.0.1:5161;ob")


def test_return_codes_without_the_parameters():
    from modules.tm import t_serial

    for m in (tm.mod, tmx.mod):
        m.reset_params()
    h = Harness.from_text('loadmodule "tm"\nrequest_route { exit; }\n')
    ctx = make_ctx(invite("bob"), core=h.core)
    assert t_serial.next_contact_flow(ctx) == -1     # contact_flows_avp not set
    assert t_serial.load_contacts(ctx) == -1         # contacts_avp not set
    assert t_serial.next_contacts(ctx) == -1
    tm.mod.reset_params()
    h = Harness.from_text('loadmodule "tm"\nmodparam("tm", "contacts_avp", "c")\n'
                          'request_route { exit; }\n')
    ctx = make_ctx(invite("bob"), core=h.core)
    assert t_serial.next_contacts(ctx) == -2         # nothing loaded


def test_load_contacts_order_and_q_flag():
    """q groups from the head, the last one of each group flagged; unspecified q last."""
    from sipcore.route.ctx import Branch

    from modules.tm import t_serial

    for m in (tm.mod, tmx.mod):
        m.reset_params()
    h = Harness.from_text('loadmodule "tm"\nmodparam("tm", "contacts_avp", "c")\n'
                          'request_route { exit; }\n')
    ctx = make_ctx(invite("bob"), core=h.core)
    ctx.msg.set_ruri("sip:r@h")                     # q unspecified (-1)
    ctx.branches = [Branch(uri="sip:a@h", q=500), Branch(uri="sip:b@h", q=1000),
                    Branch(uri="sip:c@h", q=500, path="<sip:p@h;lr>")]
    assert t_serial.load_contacts(ctx) == 1 and ctx.branches == []
    got = [{k.name: k.value for k in x.value} for x in ctx.xavps.xavp if x.name == "c"]
    assert [(g["uri"], g["q_flag"]) for g in got] == [
        ("sip:b@h", 4), ("sip:a@h", 0), ("sip:c@h", 4), ("sip:r@h", 0)]
    assert got[2]["path"] == "<sip:p@h;lr>"
    assert t_serial.next_contacts(ctx) == 1 and ctx.msg.ruri == "sip:b@h"
    assert ctx.branches == []
    assert t_serial.next_contacts(ctx) == 1 and ctx.msg.ruri == "sip:a@h"
    assert [b.uri for b in ctx.branches] == ["sip:c@h"]
    assert ctx.branches[0].path == "<sip:p@h;lr>"
    ctx.branches.clear()
    assert t_serial.next_contacts(ctx) == 1 and ctx.msg.ruri == "sip:r@h"
    assert t_serial.next_contacts(ctx) == -2


def test_load_contacts_proportional_mode():
    """Mode 1: one contact per step (every q_flag set), q <= 0 ones last as backups."""
    from sipcore.route.ctx import Branch

    from modules.tm import t_serial

    for m in (tm.mod, tmx.mod):
        m.reset_params()
    h = Harness.from_text('loadmodule "tm"\nmodparam("tm", "contacts_avp", "c")\n'
                          'request_route { exit; }\n')
    seen_first = set()
    for _ in range(200):               # b (q=0.1) comes first ~10 % of the time
        ctx = make_ctx(invite("bob"), core=h.core)
        ctx.ruri_consumed = True
        ctx.branches = [Branch(uri="sip:a@h", q=900), Branch(uri="sip:z@h", q=0),
                        Branch(uri="sip:b@h", q=100)]
        assert t_serial.load_contacts(ctx, 1) == 1
        got = [{k.name: k.value for k in x.value} for x in ctx.xavps.xavp]
        assert all(g["q_flag"] == 4 for g in got)
        assert got[-1]["uri"] == "sip:z@h" and len(got) == 3
        seen_first.add(got[0]["uri"])
        assert t_serial.next_contacts(ctx) == 1 and ctx.branches == []
    assert seen_first == {"sip:a@h", "sip:b@h"}


def test_flow_timeout_runs_branch_failure_and_tries_the_other_flow():
    """A flow that never answers: the fr timer gives the branch a local 408 and, as in
    Kamailio's outbound recipe, event_route[tm:branch-failure] runs with t_branch_timeout()
    true and sends the other flow; nothing goes upstream meanwhile."""
    for m in (tm.mod, tmx.mod):
        m.reset_params()
    cfg = CFG.replace('if (t_check_status("430")) {{'.replace("{{", "{"),
                      'if (t_check_status("430") || (t_branch_timeout() && '
                      '!t_branch_replied())) {')
    assert "t_branch_timeout()" in cfg
    cfg = cfg.replace('loadmodule "xlog"\n', 'loadmodule "xlog"\nmodparam("tm", "fr_timer", 150)\n')
    lines = klog.capture()
    level = klog.get_debug()
    klog.set_debug(klog.L_INFO)
    try:
        h = Harness.from_text(cfg)
        first = by_port(h.request(invite("bob")).sent)
        assert sorted(p for p in first if p > 5100) == [5162]
        before = len(h.core.sent)
        time.sleep(0.2)                              # fr_timer (150 ms) runs out
        h.timers.make_due(lambda d: d.name == "tm:fr")
        h.run_timers()
        step = by_port(h.core.sent[before:])
        assert any("FLOW 408 rc=1" in t for _l, t in lines), [t for _l, t in lines]
        assert 5080 not in step                      # no 408 upstream: another flow is tried
        [inv2] = step[5161]
        assert inv2.method == "INVITE" and inv2.via1.branch.endswith(".1")
        ok = by_port(h.reply(reply_to(inv2.buf, 200, "OK", tag="f2")).sent)
        assert [m.status for m in ok[5080]] == [200]
    finally:
        klog.capture(False)
        klog.set_debug(level)
