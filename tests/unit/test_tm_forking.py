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
    xlog("L_NOTICE", "NEXT code=$T_reply_code reason=$T_reply_reason ci=$T_req($ci)\\n");
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
    res = by_port(h.request(invite("serial")))
    assert list(k for k in res if k > 5100) == [5111]
    first = res[5111][0]
    step2 = by_port(h.reply(reply_to(first.buf, 486, "Busy Here")))
    assert sorted(k for k in step2 if k > 5100) == [5111, 5112, 5113]  # ACK + 2 parallel
    assert [m.method for m in step2[5111]] == ["ACK"]
    assert any("NEXT code=486 reason=Busy Here ci=call-1" in t for _l, t in h.lines)
    b2, b3 = step2[5112][0], step2[5113][0]
    h.reply(reply_to(b2.buf, 404, "Not Found", tag="y2"))
    last = by_port(h.reply(reply_to(b3.buf, 480, "Unavailable", tag="y3")))
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
