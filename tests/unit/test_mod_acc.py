"""acc: log accounting of transactions completed by tm, and acc_log_request()."""
from __future__ import annotations

import pytest

import modules.acc as acc
import modules.tm as tm
from sipcore import log as klog
from sipcore.testing import Harness
from tests.unit.test_tm_relay import invite, reply_to, sent_to

CFG = """
loadmodule "sl"
loadmodule "tm"
loadmodule "acc"
loadmodule "textops"
modparam("acc", "log_flag", 1)
modparam("acc", "log_missed_flag", 2)
modparam("acc", "failed_transaction_flag", 3)
modparam("acc", "log_extra", "src_user=$fU;dst_user=$rU;src_ip=$si")

request_route {
    if (is_method("OPTIONS")) {
        acc_log_request("404 Not here");
        exit;
    }
    if ($rU == "missed") { setflag(2); } else { setflag(1); }
    $du = "sip:127.0.0.1:5090";
    t_relay();
}
"""



@pytest.fixture(autouse=True)
def _forget_modparams():
    """modparam values live on the module objects: later tests must not inherit them."""
    yield
    for m in (tm.mod, acc.mod):
        m.reset_params()


@pytest.fixture
def h():
    for m in (tm.mod, acc.mod):
        m.reset_params()
    lines = klog.capture()
    level = klog.get_debug()
    klog.set_debug(klog.L_INFO)
    harness = Harness.from_text(CFG)
    harness.lines = lines
    yield harness
    klog.capture(False)
    klog.set_debug(level)


def acc_lines(h):
    return [t for _l, t in h.lines if "ACC:" in t]


def test_answered_call_logged(h):
    out = sent_to(h.request(invite("bob")), 5090)[0]
    h.reply(reply_to(out, 180, "Ringing"))
    assert acc_lines(h) == []
    h.reply(reply_to(out, 200, "OK"))
    [line] = acc_lines(h)
    assert "ACC: transaction answered: timestamp=" in line
    assert ";method=INVITE;from_tag=a1;to_tag=b1;call_id=call-1;code=200;reason=OK;" in line
    assert line.endswith("src_user=alice;dst_user=bob;src_ip=127.0.0.1")


def test_missed_call_logged(h):
    out = sent_to(h.request(invite("missed")), 5090)[0]
    h.reply(reply_to(out, 486, "Busy Here"))
    [line] = acc_lines(h)
    assert "ACC: call missed:" in line and "code=486;reason=Busy Here" in line


def test_failed_without_flag_not_logged(h):
    out = sent_to(h.request(invite("bob")), 5090)[0]
    h.reply(reply_to(out, 486, "Busy Here"))
    assert acc_lines(h) == []


def test_acc_log_request(h):
    h.request("OPTIONS sip:x@example.com SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKo\n"
              "From: <sip:alice@example.com>;tag=f\nTo: <sip:x@example.com>\nCall-ID: o1\n"
              "CSeq: 1 OPTIONS\nContent-Length: 0\n\n")
    [line] = acc_lines(h)
    assert "ACC: request accounted:" in line and "code=404;reason=Not here" in line


def test_bad_extra_rejected():
    from modules.acc.acc_log import parse_extra

    with pytest.raises(ValueError):
        parse_extra("novalue", None)
