"""dialog basics through the Harness with tm: states from the final reply, BYE, timeouts,
flags, profiles for concurrent-call limiting, RPCs, sharing between processes."""
from __future__ import annotations

import os
import time

import pytest

from modules import dialog, tm
from sipcore import stats
from sipcore.errors import RpcFault
from sipcore.msg import parse_msg
from sipcore.testing import Harness

CFG = """
loadmodule "sl"
loadmodule "tm"
loadmodule "textops"
loadmodule "dialog"
modparam("dialog", "profiles_with_value", "caller")
modparam("dialog", "profiles_no_value", "calls")
modparam("dialog", "default_timeout", 100)
request_route {
    if (is_known_dlg()) {
        if (is_method("BYE") && ($dlg(state) != 5 || $dlg_var(who) != "alice")) {
            sl_send_reply("500", "state"); exit;
        }
        $du = "sip:127.0.0.1:5090";
        t_relay(); exit;
    }
    if (is_method("INVITE")) {
        dlg_manage();
        get_profile_size("caller", "$fU", "$var(n)");
        if ($var(n) >= 2) { sl_send_reply("486", "Too many calls $var(n)"); exit; }
        set_dlg_profile("caller", "$fU");
        set_dlg_profile("calls");
        $dlg_var(who) = $fU;
        $dlg_var(gone) = "x";
        $dlg_var(gone) = $null;
        dlg_setflag(3);
        if ($fU == "short") { dlg_set_timeout(1); }
        if (!dlg_isflagset(3) || !is_in_profile("caller", "$fU")) {
            sl_send_reply("500", "flags"); exit;
        }
    }
    $du = "sip:127.0.0.1:5090";
    t_relay();
}
"""


def invite(user: str, callid: str) -> str:
    return (f"INVITE sip:bob@example.com SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK{callid}\n"
            f"From: <sip:{user}@example.com>;tag=a-{callid}\nTo: <sip:bob@example.com>\n"
            f"Call-ID: {callid}\nCSeq: 1 INVITE\nContact: <sip:{user}@127.0.0.1:5080>\n"
            "Content-Length: 0\n\n")


def bye(callid: str, user: str, from_callee: bool = False) -> str:
    a, b = f"<sip:{user}@example.com>;tag=a-{callid}", f"<sip:bob@example.com>;tag=b-{callid}"
    frm, to = (b, a) if from_callee else (a, b)
    return (f"BYE sip:bob@127.0.0.1:5090 SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKbye{callid}\n"
            f"From: {frm}\nTo: {to}\nCall-ID: {callid}\nCSeq: 2 BYE\nContent-Length: 0\n\n")


def reply_to(req: bytes, code: int, reason: str, tag: str) -> str:
    m = parse_msg(req)
    vias = "".join(f"Via: {v}\n" for v in m.header_values("Via"))
    return (f"SIP/2.0 {code} {reason}\n{vias}From: {m.header('From').value}\n"
            f"To: {m.header('To').value};tag={tag}\nCall-ID: {m.callid}\n"
            f"CSeq: {m.cseq.num} {m.cseq.method}\nContent-Length: 0\n\n")


@pytest.fixture
def h():
    tm.mod.reset_params()
    yield Harness.from_text(CFG)
    tm.mod.reset_params()


def call(h: Harness, user: str, callid: str, code: int = 200) -> int:
    """INVITE through the proxy, answered CODE by the UAS; the status sent upstream."""
    res = h.request(invite(user, callid))
    fwd = [b for d, b in res.sent if d.port == 5090]
    if not fwd:
        return res.replies[-1].status
    out = h.reply(reply_to(fwd[0], code, "Answer", f"b-{callid}"))
    return [parse_msg(b).status for d, b in out.sent if d.port == 5080][-1]


def test_states_profiles_and_bye(h):
    assert call(h, "alice", "c1") == 200
    assert call(h, "alice", "c2") == 200
    assert call(h, "alice", "c3") == 486                      # 2 calls per caller
    assert call(h, "carol", "c4") == 200
    assert dialog.rpc_profile_get_size("caller", "alice")["count"] == 2
    lst = {d["call-id"]: d for d in dialog.rpc_list()}
    assert lst["c1"]["state"] == 4 and lst["c1"]["to_tag"] == "b-c1"
    assert lst["c1"]["profiles"] == [{"caller": "alice"}, "calls"]
    d1 = dialog._table().get("c1", "a-c1")
    assert d1 is not None and d1.vars == (("who", "alice"),)
    res = h.request(bye("c1", "alice", from_callee=True))     # BYE from the callee ends it
    assert [d.port for d, _ in res.sent] == [5090]            # known dialog: relayed
    assert dialog.rpc_profile_get_size("caller", "alice")["count"] == 1
    assert call(h, "alice", "c5") == 200                      # a new call goes through
    assert {d["call-id"] for d in dialog.rpc_profile_list("caller", "alice")} == {"c2", "c5"}
    h.request(bye("c2", "alice"))
    assert dialog.rpc_stats_active()["ongoing"] == 2          # c4 (carol) and c5
    assert stats.get("dialog:processed_dialogs") >= 4


def test_failed_call_releases_profile(h):
    assert call(h, "dave", "f1", code=486) == 486
    assert dialog.rpc_list() == []
    assert dialog.rpc_profile_get_size("calls")["count"] == 0
    assert stats.get("dialog:failed_dialogs") >= 1


def test_timeout_ends_dialog(h):
    assert call(h, "short", "t1") == 200
    assert call(h, "erin", "t2") == 200
    time.sleep(1.1)
    h.run_timers()
    dialog._on_timer()
    assert [d["call-id"] for d in dialog.rpc_list()] == ["t2"]
    assert dialog.rpc_profile_get_size("calls")["count"] == 1


def test_profile_counts_shared_across_processes(h):
    pid = os.fork()
    if pid == 0:
        os._exit(0 if call(h, "frank", "p1") == 200 else 1)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0
    assert dialog.rpc_profile_get_size("caller", "frank")["count"] == 1
    with pytest.raises(RpcFault):
        dialog.rpc_profile_get_size("nosuch")
