"""tm parameters that change behaviour (Kamailio params.xml): faked_reply_prio,
ac_extra_hdrs, via1_matching, callid_matching, callid_cseq_matching. Real wire messages in,
assertions on what is sent."""
from __future__ import annotations

import time

import pytest

import modules.tm as tm
import modules.tmx as tmx
from modules.tm.state import TM, table
from sipcore.msg import parse_msg
from sipcore.testing import Harness
from tests.unit.test_tm_relay import invite, reply_to

CFG = """
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "textops"
loadmodule "corex"
modparam("tm", "fr_timer", 200)
modparam("tm", "fr_inv_timer", 5000)
{params}

request_route {{
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (is_method("ACK")) {{ t_check_trans(); exit; }}
    t_check_trans();
    $ru = "sip:bob@127.0.0.1:5201";
    append_branch("sip:bob2@127.0.0.1:5202");
    t_on_branch("B");
    t_relay();
}}

branch_route[B] {{
    append_hf("X-Acct-Id: 42\\r\\n");
    append_hf("X-Other: 1\\r\\n");
}}
"""


@pytest.fixture(autouse=True)
def _forget_modparams():
    yield
    for m in (tm.mod, tmx.mod):
        m.reset_params()
    from modules.tm.config import CFG

    CFG.via1_matching, CFG.callid_matching, CFG.callid_cseq_matching = 1, 0, 0


def harness(**params: object) -> Harness:
    for m in (tm.mod, tmx.mod):
        m.reset_params()
    lines = "\n".join(f'modparam("tm", "{k}", {v!r})'.replace("'", '"')
                      for k, v in params.items())
    return Harness.from_text(CFG.format(params=lines))


def sent_to(res_or_list, port):
    items = res_or_list.sent if hasattr(res_or_list, "sent") else res_or_list
    return [parse_msg(b) for d, b in items if d.port == port]


def _timeout_vs_486(h: Harness) -> int:
    res = h.request(invite("x"))
    [b1] = sent_to(res, 5201)
    h.reply(reply_to(b1.buf, 486, "Busy Here"))
    before = len(h.core.sent)
    time.sleep(0.25)                  # the other branch never answers: a local 408
    h.run_timers()
    [final] = [m for m in sent_to(h.core.sent[before:], 5080)]
    return final.status


def test_faked_reply_prio_lets_a_received_reply_win():
    assert _timeout_vs_486(harness()) == 408          # 408 is the better 4xx by default
    assert _timeout_vs_486(harness(faked_reply_prio=2000)) == 486


def test_ac_extra_hdrs_copied_into_ack_and_cancel():
    h = harness(ac_extra_hdrs="x-acct-")
    res = h.request(invite("x"))
    [b1], [b2] = sent_to(res, 5201), sent_to(res, 5202)
    assert b1.header("X-Acct-Id") is not None
    [ack] = sent_to(h.reply(reply_to(b1.buf, 486, "Busy Here")), 5201)
    assert ack.method == "ACK"
    assert ack.header("X-Acct-Id").value == "42" and ack.header("X-Other") is None
    h.reply(reply_to(b2.buf, 180, "Ringing", tag="r2"))
    [cancel] = sent_to(h.request(
        invite("x").replace("INVITE sip", "CANCEL sip").replace("1 INVITE", "1 CANCEL")),
        5202)
    assert cancel.method == "CANCEL" and cancel.header("X-Acct-Id").value == "42"
    # without the parameter: no extra header
    h2 = harness()
    res = h2.request(invite("x", callid="c2"))
    [b1] = sent_to(res, 5201)
    [ack] = sent_to(h2.reply(reply_to(b1.buf, 486, "Busy Here")), 5201)
    assert ack.header("X-Acct-Id") is None


def _rfc2543_invite(branch: str) -> str:
    return invite("x").replace("branch=z9hG4bKuac1", f"branch={branch}")


def test_via1_matching_off_matches_rfc2543_retransmission_with_another_via():
    h = harness()
    assert len(sent_to(h.request(_rfc2543_invite("old1")), 5201)) == 1
    assert len(sent_to(h.request(_rfc2543_invite("old2")), 5201)) == 1   # a new transaction
    h = harness(via1_matching=0)
    assert len(sent_to(h.request(_rfc2543_invite("old1")), 5201)) == 1
    again = h.request(_rfc2543_invite("old2"))
    assert sent_to(again, 5201) == [] and [m.status for m in again.replies] == [100]


def test_callid_matching_requests_and_replies():
    h = harness()
    h.request(invite("x"))
    again = h.request(invite("x", callid="mangled"))      # same branch: a retransmission
    assert sent_to(again, 5201) == []
    h = harness(callid_matching=1)
    res = h.request(invite("x"))
    assert len(sent_to(h.request(invite("x", callid="mangled")), 5201)) == 1
    [b1] = sent_to(res, 5201)
    # a reply whose Call-ID was mangled does not match the transaction: no ACK from tm
    bad = reply_to(b1.buf, 486, "Busy Here").replace("Call-ID: call-1", "Call-ID: other")
    assert sent_to(h.reply(bad), 5201) == []
    tid = TM.of(res.ctx).tid
    assert table().get(tid).branches[0].code == 0
    [ack] = sent_to(h.reply(reply_to(b1.buf, 486, "Busy Here")), 5201)
    assert ack.method == "ACK"


def test_callid_cseq_matching_ignores_the_branch():
    h = harness(callid_cseq_matching=1)
    assert len(sent_to(h.request(invite("x")), 5201)) == 1
    other_branch = invite("x").replace("z9hG4bKuac1", "z9hG4bKuac9")
    again = h.request(other_branch)
    assert sent_to(again, 5201) == [] and [m.status for m in again.replies] == [100]
