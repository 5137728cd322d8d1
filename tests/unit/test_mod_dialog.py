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


# ---- BYEs generated by the module: timeout with send_bye, dlg_bye, dlg.end_dlg ---------------

BYE_CFG = """
loadmodule "sl"
loadmodule "tm"
loadmodule "rr"
loadmodule "siputils"
loadmodule "textops"
loadmodule "dialog"
modparam("dialog", "send_bye", 1)
modparam("dialog", "default_timeout", 100)
modparam("dialog", "timeout_avp", "$avp(dlgto)")
modparam("dialog", "dlg_extra_hdrs", "X-Reason: dialog ended\\r\\n")
request_route {
    if (has_totag()) {
        if (loose_route()) {
            if (is_method("INFO") && $rU == "hangup") {
                if (!dlg_bye("$hdr(X-Side)")) { sl_send_reply("500", "no dialog"); exit; }
                if (is_known_dlg() && $dlg(state) == 5) { sl_send_reply("200", "Ended"); }
                exit;
            }
            t_relay();
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("INVITE")) {
        dlg_manage();
        record_route();
        if ($fU == "avp") { $avp(dlgto) = 1; }
    }
    $du = "sip:127.0.0.1:5090";
    t_relay();
}
"""

UPSTREAM_RR = "<sip:127.0.0.1:5070;lr>"      # a proxy between the caller and us
DOWNSTREAM_RR = "<sip:127.0.0.1:5095;lr>"    # a proxy between us and the callee


@pytest.fixture
def hb():
    tm.mod.reset_params()
    dialog.mod.reset_params()
    yield Harness.from_text(BYE_CFG)
    tm.mod.reset_params()
    dialog.mod.reset_params()


def dlg_call(h: Harness, user: str, callid: str) -> bytes:
    """INVITE (CSeq 7, via an upstream proxy) answered 200 through a downstream proxy: the 2xx
    carries Record-Route downstream, ours, upstream. Returns the relayed 2xx."""
    inv = invite(user, callid).replace("CSeq: 1 INVITE", f"CSeq: 7 INVITE\nRecord-Route: "
                                       f"{UPSTREAM_RR}")
    res = h.request(inv)
    fwd = parse_msg([b for d, b in res.sent if d.port == 5090][0])
    ours = [str(r) for r in fwd.record_routes]
    assert len(ours) == 2 and ours[1] == UPSTREAM_RR          # record_route() on top
    rr = f"Record-Route: {DOWNSTREAM_RR}\n" + "".join(f"Record-Route: {r}\n" for r in ours)
    ok = reply_to(fwd.buf, 200, "OK", f"b-{callid}").replace(
        "Content-Length: 0", f"{rr}Contact: <sip:bob@127.0.0.1:5090>\nContent-Length: 0")
    out = h.reply(ok)
    up = [b for d, b in out.sent if d.port == 5080]
    assert up and parse_msg(up[-1]).status == 200
    return up[-1]


def in_dialog(callid: str, user: str, method: str, cseq: int, from_callee: bool,
              ruri: str = "sip:bob@127.0.0.1:5090", extra: str = "") -> str:
    a, b = f"<sip:{user}@example.com>;tag=a-{callid}", f"<sip:bob@example.com>;tag=b-{callid}"
    frm, to = (b, a) if from_callee else (a, b)
    return (f"{method} {ruri} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK{method}{cseq}{callid}\n"
            f"Route: <sip:127.0.0.1:5060;lr>\n"
            f"From: {frm}\nTo: {to}\nCall-ID: {callid}\nCSeq: {cseq} {method}\n{extra}"
            "Content-Length: 0\n\n")


def byes(sent) -> dict[int, object]:
    """BYEs by destination port."""
    out = {}
    for d, b in sent:
        m = parse_msg(b)
        if m.is_request and m.method == "BYE":
            assert d.port not in out, "one BYE per side"
            out[d.port] = m
    return out


def check_byes(got: dict, callid: str, user: str, caller_cseq: int, callee_cseq: int) -> None:
    """Both BYEs as the dialog's leg data says: next hop = first Route, R-URI = contact."""
    assert set(got) == {5070, 5095}, got
    to_caller, to_callee = got[5070], got[5095]
    assert to_caller.ruri == f"sip:{user}@127.0.0.1:5080"
    assert [str(r) for r in to_caller.routes] == [UPSTREAM_RR]
    assert (to_caller.from_tag, to_caller.to_tag) == (f"b-{callid}", f"a-{callid}")
    assert to_caller.from_.uri == "sip:bob@example.com"
    assert (to_caller.cseq.num, to_caller.cseq.method) == (callee_cseq + 1, "BYE")
    assert to_callee.ruri == "sip:bob@127.0.0.1:5090"
    assert [str(r) for r in to_callee.routes] == [DOWNSTREAM_RR]
    assert (to_callee.from_tag, to_callee.to_tag) == (f"a-{callid}", f"b-{callid}")
    assert to_callee.to.uri == "sip:bob@example.com"
    assert (to_callee.cseq.num, to_callee.cseq.method) == (caller_cseq + 1, "BYE")
    for m in (to_caller, to_callee):
        assert m.callid == callid and m.header("X-Reason").value == "dialog ended"
        assert m.via1.host == "127.0.0.1" and m.via1.port == 5060


def test_leg_data_stored_on_confirm(hb):
    dlg_call(hb, "alice", "l1")
    d = dialog._table().get("l1", "a-l1")
    assert d is not None and d.state == 4
    assert (d.caller_contact, d.callee_contact) == ("sip:alice@127.0.0.1:5080",
                                                    "sip:bob@127.0.0.1:5090")
    assert (d.caller_route_set, d.callee_route_set) == (UPSTREAM_RR, DOWNSTREAM_RR)
    assert (d.caller_cseq, d.callee_cseq) == (7, 0)
    assert (d.caller_sock, d.callee_sock) == ("udp:127.0.0.1:5060", "udp:127.0.0.1:5060")
    info = dialog.rpc_list()[0]
    assert info["caller"]["contact"] == "sip:alice@127.0.0.1:5080"
    assert info["callee"]["route_set"] == DOWNSTREAM_RR


def test_dlg_bye_all_sends_bye_to_both_sides(hb):
    dlg_call(hb, "alice", "b1")
    active = stats.get("dialog:active_dialogs")
    # the callee sends an in-dialog request (its CSeq 3): the BYE to the caller continues it
    res = hb.request(in_dialog("b1", "alice", "INFO", 3, True, "sip:hangup@127.0.0.1:5090",
                               "X-Side: all\n"))
    assert [m.status for m in res.replies] == [200]          # $dlg(state) 5 after dlg_bye
    check_byes(byes(res.sent), "b1", "alice", caller_cseq=7, callee_cseq=3)
    assert dialog.rpc_list() == []
    assert stats.get("dialog:active_dialogs") == active - 1
    # the BYEs' 200s are absorbed by tm (local transactions: nothing goes anywhere)
    for m in byes(res.sent).values():
        assert hb.reply(reply_to(m.buf, 200, "OK", "x")).sent == []
    # the dialog is gone: a second dlg_bye fails and sends nothing
    res = hb.request(in_dialog("b1", "alice", "INFO", 4, True, "sip:hangup@127.0.0.1:5090",
                               "X-Side: all\n"))
    assert [m.status for m in res.replies] == [500] and byes(res.sent) == {}


def test_dlg_bye_one_side_and_bad_side(hb):
    dlg_call(hb, "alice", "s1")
    # the caller re-INVITEs (CSeq 8): the BYE to the callee continues at 9
    hb.request(in_dialog("s1", "alice", "INVITE", 8, False))
    res = hb.request(in_dialog("s1", "alice", "INFO", 9, False, "sip:hangup@127.0.0.1:5090",
                               "X-Side: callee\n"))
    got = byes(res.sent)
    assert set(got) == {5095} and got[5095].cseq.num == 10
    assert dialog.rpc_list() == []
    dlg_call(hb, "alice", "s2")
    res = hb.request(in_dialog("s2", "alice", "INFO", 9, False, "sip:hangup@127.0.0.1:5090",
                               "X-Side: nobody\n"))
    assert [m.status for m in res.replies] == [500] and byes(res.sent) == {}
    assert [d["call-id"] for d in dialog.rpc_list()] == ["s2"]


def test_timeout_sends_bye_to_both_sides(hb):
    dlg_call(hb, "avp", "t1")                 # $avp(dlgto) = 1: timeout_avp
    dlg_call(hb, "carol", "t2")               # default_timeout 100
    assert {d["call-id"]: d["timeout"] - d["start_ts"] for d in dialog.rpc_list()}["t1"] <= 2
    expired = stats.get("dialog:expired_dialogs")
    before = len(hb.core.sent)
    time.sleep(1.1)
    dialog._on_timer()
    check_byes(byes(hb.core.sent[before:]), "t1", "avp", caller_cseq=7, callee_cseq=0)
    assert [d["call-id"] for d in dialog.rpc_list()] == ["t2"]
    assert stats.get("dialog:expired_dialogs") == expired + 1


def test_rpc_end_dlg(hb):
    dlg_call(hb, "alice", "r1")
    d = dialog.rpc_list()[0]
    before = len(hb.core.sent)
    assert dialog.rpc_end_dlg(d["h_entry"], d["h_id"]) == "ok"
    check_byes(byes(hb.core.sent[before:]), "r1", "alice", caller_cseq=7, callee_cseq=0)
    assert dialog.rpc_list() == []
    with pytest.raises(RpcFault) as exc:
        dialog.rpc_end_dlg(d["h_entry"], d["h_id"])
    assert exc.value.code == 404
    dlg_call(hb, "alice", "r2")
    assert dialog.rpc_terminate_dlg("r2", "a-r2", "b-r2") == "ok"
    assert dialog.rpc_list() == []
