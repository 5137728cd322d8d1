"""dialog BYEs on the wire: the real server (children=2) between a caller and a callee UA.

A confirmed dialog that is never hung up is ended by its timeout (`send_bye`): both sides get
a BYE built from the dialog's leg data (remote target from the Contacts, route set from
Record-Route, the tags, the next CSeq of each side), answer it 200, tm absorbs the 200s
(no retransmission follows), and `dlg.list` / `dialog:*` statistics over pykamcmd show the
dialog ended. `dlg.end_dlg` over RPC does the same on demand.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

import pytest

from sipcore.msg import parse_msg

from .conftest import ROOT, UA

pytestmark = pytest.mark.integration

CFG = """#!KAMAILIO
children=2
listen=udp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "tm"
loadmodule "rr"
loadmodule "siputils"
loadmodule "textops"
loadmodule "dialog"
modparam("dialog", "send_bye", 1)
modparam("dialog", "default_timeout", 3600)
modparam("dialog", "profiles_no_value", "calls")
request_route {
    if (has_totag()) {
        if (loose_route()) { t_relay(); exit; }
        if (is_method("ACK")) { t_check_trans(); exit; }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
    if (is_method("INVITE")) {
        dlg_manage();
        set_dlg_profile("calls");
        if ($fU == "short") { dlg_set_timeout(2); }
        record_route();
    }
    t_relay();
}
"""


def _pykamcmd() -> list[str]:
    exe = Path(sys.executable).parent / "pykamcmd"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sipcore.cli.ctl"]


def _ctl(srv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*_pykamcmd(), "-s", str(srv.rundir / "pykam_ctl"), *args],
                          cwd=ROOT, timeout=15, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)


def _ctl_json(srv, *args: str):
    r = _ctl(srv, "--json", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def _recv(ua: UA, want: Callable, timeout: float):
    """The first message on UA for which want(msg) is true (others are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = ua.recv(max(0.05, deadline - time.monotonic()))
        if data is None:
            break
        m = parse_msg(data)
        if want(m):
            return m
    return None


def _reply(req, code: int, reason: str, to_tag: Optional[str] = None,
           extra: str = "") -> bytes:
    """A UA's reply to REQ: Via/From/To/Call-ID/CSeq copied (Record-Route too for 2xx)."""
    vias = "".join(f"Via: {v}\n" for v in req.header_values("Via"))
    to = req.header("To").value + (f";tag={to_tag}" if to_tag and not req.to_tag else "")
    rr = "".join(f"Record-Route: {v}\n" for v in req.header_values("Record-Route"))
    return _crlf(f"SIP/2.0 {code} {reason}\n{vias}{rr if code < 300 else ''}"
                 f"From: {req.header('From').value}\nTo: {to}\nCall-ID: {req.callid}\n"
                 f"CSeq: {req.cseq.num} {req.cseq.method}\n{extra}Content-Length: 0\n\n")


class Call:
    """A caller UA and a callee UA with one established call through the proxy."""

    def __init__(self, srv, user: str) -> None:
        self.srv = srv
        self.caller, self.callee = UA(), UA()
        self.callid = uuid.uuid4().hex
        self.ftag, self.ttag = "c-" + self.callid[:8], "e-" + self.callid[8:16]
        self.user = user

    def close(self) -> None:
        self.caller.close()
        self.callee.close()

    def establish(self) -> None:
        port = self.srv.port
        self.caller.send(
            f"INVITE sip:bob@127.0.0.1:{self.callee.port} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.caller.port};branch=z9hG4bK{self.callid[:12]}"
            f";rport\nMax-Forwards: 70\n"
            f"From: <sip:{self.user}@127.0.0.1>;tag={self.ftag}\n"
            f"To: <sip:bob@127.0.0.1>\nCall-ID: {self.callid}\nCSeq: 5 INVITE\n"
            f"Contact: <sip:{self.user}@127.0.0.1:{self.caller.port}>\n"
            f"Content-Length: 0\n\n", port)
        inv = _recv(self.callee, lambda m: m.is_request and m.method == "INVITE", 5)
        assert inv is not None, self.srv.log()[-3000:]
        rr = [r.uri for r in inv.record_routes]
        assert len(rr) == 1 and rr[0].startswith(f"sip:127.0.0.1:{port};lr"), rr
        self.callee.send(_reply(inv, 200, "OK", self.ttag,
                                f"Contact: <sip:bob@127.0.0.1:{self.callee.port}>\n"), port)
        ok = _recv(self.caller, lambda m: m.is_reply and m.status == 200, 5)
        assert ok is not None and ok.to_tag == self.ttag, self.srv.log()[-3000:]
        route = "".join(f"Route: <{r.uri}>\n" for r in reversed(ok.record_routes))
        self.caller.send(
            f"ACK sip:bob@127.0.0.1:{self.callee.port} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.caller.port};branch=z9hG4bKack{self.callid[:9]}"
            f";rport\nMax-Forwards: 70\n{route}"
            f"From: <sip:{self.user}@127.0.0.1>;tag={self.ftag}\n"
            f"To: <sip:bob@127.0.0.1>;tag={self.ttag}\nCall-ID: {self.callid}\n"
            f"CSeq: 5 ACK\nContent-Length: 0\n\n", port)
        ack = _recv(self.callee, lambda m: m.is_request and m.method == "ACK", 5)
        assert ack is not None, self.srv.log()[-3000:]

    def expect_byes(self, timeout: float) -> None:
        """Both sides get their BYE (built from the dialog), answer 200, and the
        retransmissions stop (tm matched the 200s)."""
        is_bye = lambda m: m.is_request and m.method == "BYE"  # noqa: E731
        to_callee = _recv(self.callee, is_bye, timeout)
        to_caller = _recv(self.caller, is_bye, 3)
        assert to_callee is not None and to_caller is not None, self.srv.log()[-3000:]
        assert to_callee.ruri == f"sip:bob@127.0.0.1:{self.callee.port}"
        assert (to_callee.from_tag, to_callee.to_tag) == (self.ftag, self.ttag)
        assert (to_callee.cseq.num, to_callee.callid) == (6, self.callid)
        assert to_caller.ruri == f"sip:{self.user}@127.0.0.1:{self.caller.port}"
        assert (to_caller.from_tag, to_caller.to_tag) == (self.ttag, self.ftag)
        assert to_caller.cseq.method == "BYE" and to_caller.callid == self.callid
        assert to_callee.routes == [] and to_caller.routes == []
        self.callee.send(_reply(to_callee, 200, "OK"), self.srv.port)
        self.caller.send(_reply(to_caller, 200, "OK"), self.srv.port)
        # tm matches the 200s and stops retransmitting: unmatched, the BYEs would come again
        # 0.5 s and 1.5 s after the first (timer E); a UA answers any copy that still comes
        again = {"caller": 0, "callee": 0}
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            for side, ua in (("callee", self.callee), ("caller", self.caller)):
                m = _recv(ua, is_bye, 0.05)
                if m is not None:
                    again[side] += 1
                    ua.send(_reply(m, 200, "OK"), self.srv.port)
        assert max(again.values()) <= 1, again


def _stat(srv, name: str) -> int:
    got = _ctl_json(srv, "stats.get_statistics", f"dialog:{name}")
    text = json.dumps(got)
    marker = f"dialog:{name} = "
    assert marker in text, text
    return int(text.split(marker, 1)[1].split('"', 1)[0])


def test_timeout_and_end_dlg_send_bye_to_both_sides(start_server):
    srv = start_server(CFG)
    short, held = Call(srv, "short"), Call(srv, "alice")
    try:
        t0 = time.monotonic()               # before the 2xx: the 2 s count from it
        short.establish()
        held.establish()
        lst = {d["call-id"]: d for d in _ctl_json(srv, "dlg.list")}
        assert {c: d["state"] for c, d in lst.items()} == {short.callid: 4, held.callid: 4}
        assert lst[short.callid]["caller"]["contact"] == \
            f"sip:short@127.0.0.1:{short.caller.port}"
        assert _ctl_json(srv, "dlg.profile_get_size", "calls")["count"] == 2

        # the short dialog times out (2 s, timer sweep every second): BYEs to both sides
        short.expect_byes(timeout=5)
        assert time.monotonic() - t0 >= 1.9          # not before its timeout
        assert [d["call-id"] for d in _ctl_json(srv, "dlg.list")] == [held.callid]
        assert _stat(srv, "expired_dialogs") == 1
        assert _stat(srv, "active_dialogs") == 1

        # the other one is ended over RPC
        d = _ctl_json(srv, "dlg.list")[0]
        r = _ctl(srv, "dlg.end_dlg", str(d["h_entry"]), str(d["h_id"]))
        assert r.returncode == 0, r.stdout + r.stderr
        held.expect_byes(timeout=3)
        assert _ctl_json(srv, "dlg.list") == []
        assert _stat(srv, "active_dialogs") == 0
        assert _stat(srv, "expired_dialogs") == 1
        assert _stat(srv, "processed_dialogs") == 2
        assert _ctl_json(srv, "dlg.profile_get_size", "calls")["count"] == 0
        again = _ctl(srv, "dlg.end_dlg", str(d["h_entry"]), str(d["h_id"]))
        assert again.returncode == 1 and "404" in again.stdout + again.stderr
        assert "Traceback" not in srv.log()
    finally:
        short.close()
        held.close()
