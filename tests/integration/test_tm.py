"""tm with the real server (children=2): a dialog through tm between two loopback UAs, replies
matched across workers through shm, a 408 produced by the timer process."""
from __future__ import annotations

import re
import time
import uuid
from typing import Optional

import pytest

from sipcore.msg import parse_msg
from tests.paths import STOCK_CFG as STOCK

from .conftest import UA

CFG = """
debug=2
children=2
listen=udp:127.0.0.1:{port}

loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "rr"
loadmodule "siputils"
loadmodule "textops"
loadmodule "xlog"
loadmodule "pv"

modparam("tm", "fr_timer", 1000)
modparam("tm", "fr_inv_timer", 3000)

request_route {
    if (is_method("OPTIONS") && $rU == $null) {
        sl_send_reply("200", "OK");
        exit;
    }
    xlog("L_NOTICE", "TMREQ $pp $rm $ci\\n");
    if (is_method("CANCEL")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    if (!is_method("ACK")) {
        if (t_precheck_trans()) { t_check_trans(); exit; }
        t_check_trans();
    }
    if (has_totag()) {
        if (loose_route()) { t_relay(); exit; }
        if (is_method("ACK")) {
            if (t_check_trans()) { t_relay(); }
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    record_route();
    t_on_failure("FAIL");
    if (!t_relay()) { sl_reply_error(); }
    exit;
}

reply_route {
    xlog("L_NOTICE", "TMRPL $pp $rs $ci\\n");
}

failure_route[FAIL] {
    xlog("L_NOTICE", "TMFAIL $pp $T_reply_code $ci\\n");
}
"""


def sip(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def recv_until(ua: UA, pred, timeout: float = 5.0) -> Optional[object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = ua.recv(max(0.05, deadline - time.monotonic()))
        if data is None:
            return None
        m = parse_msg(data)
        if pred(m):
            return m
    return None


def reply_to(m, code: int, reason: str, tag: str, contact: str) -> bytes:
    vias = "".join(f"Via: {v}\n" for v in m.header_values("Via"))
    rrs = "".join(f"Record-Route: {v}\n" for v in m.header_values("Record-Route"))
    to = m.header("To").value + (f";tag={tag}" if code > 100 else "")
    return sip(f"SIP/2.0 {code} {reason}\n{vias}{rrs}From: {m.header('From').value}\n"
               f"To: {to}\nCall-ID: {m.callid}\nCSeq: {m.cseq.num} {m.cseq.method}\n"
               f"Contact: <{contact}>\nContent-Length: 0\n\n")


def call(srv_port: int, alice: UA, bob: UA, with_bye: bool = True) -> str:
    cid = uuid.uuid4().hex
    inv = (f"INVITE sip:bob@127.0.0.1:{bob.port} SIP/2.0\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bK{cid[:12]};rport\n"
           f"Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=a{cid[:6]}\n"
           f"To: <sip:bob@127.0.0.1>\nCall-ID: {cid}\nCSeq: 1 INVITE\n"
           f"Contact: <sip:alice@127.0.0.1:{alice.port}>\nContent-Length: 0\n\n")
    alice.send(sip(inv), srv_port)
    trying = recv_until(alice, lambda m: m.is_reply and m.status == 100)
    assert trying is not None, "no 100 Trying"
    got = recv_until(bob, lambda m: m.is_request and m.method == "INVITE")
    assert got is not None, "INVITE not relayed"
    assert got.via1.branch.startswith("z9hG4bK.t")
    bob_contact = f"sip:bob@127.0.0.1:{bob.port}"
    bob.send(reply_to(got, 180, "Ringing", "b1", bob_contact), srv_port)
    assert recv_until(alice, lambda m: m.is_reply and m.status == 180) is not None
    bob.send(reply_to(got, 200, "OK", "b1", bob_contact), srv_port)
    ok = recv_until(alice, lambda m: m.is_reply and m.status == 200)
    assert ok is not None, "200 not relayed"
    route = "".join(f"Route: {v}\n" for v in reversed(ok.header_values("Record-Route")))
    assert route, "no Record-Route in the 200"
    to = ok.header("To").value
    ack = (f"ACK {bob_contact} SIP/2.0\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bKack{cid[:8]};rport\n"
           f"{route}Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=a{cid[:6]}\n"
           f"To: {to}\nCall-ID: {cid}\nCSeq: 1 ACK\nContent-Length: 0\n\n")
    alice.send(sip(ack), srv_port)
    assert recv_until(bob, lambda m: m.is_request and m.method == "ACK") is not None
    if with_bye:
        bye = (f"BYE {bob_contact} SIP/2.0\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bKbye{cid[:8]};rport\n"
               f"{route}Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=a{cid[:6]}\n"
               f"To: {to}\nCall-ID: {cid}\nCSeq: 2 BYE\nContent-Length: 0\n\n")
        alice.send(sip(bye), srv_port)
        got_bye = recv_until(bob, lambda m: m.is_request and m.method == "BYE")
        assert got_bye is not None, "BYE not relayed"
        bob.send(reply_to(got_bye, 200, "OK", "b1", bob_contact), srv_port)
        assert recv_until(alice, lambda m: m.is_reply and m.status == 200
                          and m.cseq.method == "BYE") is not None
    return cid


def test_dialog_through_tm_and_cross_worker_matching(start_server):
    srv = start_server(CFG)
    alice, bob = UA(), UA()
    try:
        cids = [call(srv.port, alice, bob, with_bye=(i == 0)) for i in range(12)]
    finally:
        alice.close()
        bob.close()
    time.sleep(0.3)
    log = srv.log()
    req_pid = {cid: pid for pid, cid in re.findall(r"TMREQ (\d+) INVITE (\w+)", log)}
    crossed = 0
    for cid in cids:
        rpl_pids = set(re.findall(rf"TMRPL (\d+) \d+ {cid}", log))
        if rpl_pids - {req_pid[cid]}:
            crossed += 1
    workers = set(re.findall(r"TMREQ (\d+) ", log)) | set(re.findall(r"TMRPL (\d+) ", log))
    assert len(workers) == 2, log[-2000:]
    # every call completed; replies handled by the other worker still found their transaction
    assert crossed > 0, log[-3000:]


def test_timeout_408_from_timer_process(start_server):
    srv = start_server(CFG)
    alice, mute = UA(), UA()
    try:
        cid = uuid.uuid4().hex
        inv = (f"INVITE sip:nobody@127.0.0.1:{mute.port} SIP/2.0\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bK{cid[:12]};rport\n"
               f"Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=t{cid[:6]}\n"
               f"To: <sip:nobody@127.0.0.1>\nCall-ID: {cid}\nCSeq: 1 INVITE\n"
               f"Contact: <sip:alice@127.0.0.1:{alice.port}>\nContent-Length: 0\n\n")
        alice.send(sip(inv), srv.port)
        t0 = time.monotonic()
        final = recv_until(alice, lambda m: m.is_reply and m.status >= 200, timeout=6)
        assert final is not None and final.status == 408, srv.log()[-2000:]
        assert 0.8 < time.monotonic() - t0 < 4
        # the mute UA saw the INVITE and its retransmissions (timer A)
        copies = 0
        while mute.recv(0.05) is not None:
            copies += 1
        assert copies >= 2
    finally:
        alice.close()
        mute.close()
    log = srv.log()
    fail_pid = re.search(rf"TMFAIL (\d+) 408 {cid}", log)
    assert fail_pid is not None, log[-2000:]
    assert not re.search(rf"TMREQ {fail_pid.group(1)} ", log)     # not a SIP worker


# ---- Kamailio's stock configuration, unmodified ------------------------------------------------


def _stock_server(tmp_path):
    import os
    import subprocess
    import sys

    from .conftest import ROOT, free_udp_port, options

    port = free_udp_port()
    rundir = tmp_path / f"stock-{port}"
    rundir.mkdir()
    log_path = tmp_path / f"stock-{port}.log"
    with open(log_path, "wb") as logf:         # the child keeps its own copy of the fd
        proc = subprocess.Popen([sys.executable, "-m", "sipcore", "-DD", "-E", "-Y",
                                 str(rundir), "-n", "2", "-l", f"udp:127.0.0.1:{port}",
                                 "-f", str(STOCK)], cwd=ROOT, stdout=logf,
                                stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    ua = UA()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()
            ua.send(options(ua, port), port)
            if ua.recv(0.3) is not None:
                break
        else:
            raise AssertionError(log_path.read_text())
    finally:
        ua.close()
    return proc, port, log_path


def _register(ua: UA, user: str, port: int) -> int:
    cid = uuid.uuid4().hex
    ua.send(sip(f"REGISTER sip:127.0.0.1:{port} SIP/2.0\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bK{cid[:10]};rport\n"
                f"Max-Forwards: 70\nFrom: <sip:{user}@127.0.0.1>;tag={cid[:5]}\n"
                f"To: <sip:{user}@127.0.0.1>\nCall-ID: {cid}\nCSeq: 1 REGISTER\n"
                f"Contact: <sip:{user}@127.0.0.1:{ua.port}>\nExpires: 60\n"
                "Content-Length: 0\n\n"), port)
    r = recv_until(ua, lambda m: m.is_reply)
    return r.status if r is not None else 0


def _invite(a: UA, user: str, port: int, cid: str) -> bytes:
    return sip(f"INVITE sip:{user}@127.0.0.1:{port} SIP/2.0\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{a.port};branch=z9hG4bK{cid[:12]};rport\n"
               f"Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=a{cid[:6]}\n"
               f"To: <sip:{user}@127.0.0.1>\nCall-ID: {cid}\nCSeq: 1 INVITE\n"
               f"Contact: <sip:alice@127.0.0.1:{a.port}>\nContent-Length: 0\n\n")


def test_stock_config_call_cancel_busy(tmp_path):
    """Kamailio 5.6's default cfg, unmodified (listen by -l): REGISTER, a call with Record-Route
    and loose_route on the BYE, CANCEL -> 487, 486 to the caller, 404 for an unknown user."""
    import signal

    proc, port, log_path = _stock_server(tmp_path)
    alice, bob = UA(), UA()
    try:
        assert _register(alice, "alice", port) == 200
        assert _register(bob, "bob", port) == 200
        # a full dialog: routed to bob's registered contact; BYE follows the Record-Route
        cid = uuid.uuid4().hex
        alice.send(_invite(alice, "bob", port, cid), port)
        assert recv_until(alice, lambda m: m.is_reply and m.status == 100) is not None
        got = recv_until(bob, lambda m: m.is_request and m.method == "INVITE")
        assert got is not None and got.ruri == f"sip:bob@127.0.0.1:{bob.port}"
        contact = f"sip:bob@127.0.0.1:{bob.port}"
        bob.send(reply_to(got, 180, "Ringing", "b1", contact), port)
        assert recv_until(alice, lambda m: m.is_reply and m.status == 180) is not None
        bob.send(reply_to(got, 200, "OK", "b1", contact), port)
        ok = recv_until(alice, lambda m: m.is_reply and m.status == 200)
        assert ok is not None and ok.header_values("Record-Route")
        route = "".join(f"Route: {v}\n" for v in reversed(ok.header_values("Record-Route")))
        to = ok.header("To").value
        for method, num in (("ACK", 1), ("BYE", 2)):
            alice.send(sip(f"{method} {contact} SIP/2.0\n"
                           f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bK{method}"
                           f"{cid[:8]};rport\n{route}Max-Forwards: 70\n"
                           f"From: <sip:alice@127.0.0.1>;tag=a{cid[:6]}\nTo: {to}\n"
                           f"Call-ID: {cid}\nCSeq: {num} {method}\nContent-Length: 0\n\n"),
                       port)
            req = recv_until(bob, lambda m, mt=method: m.is_request and m.method == mt)
            assert req is not None, method
        bob.send(reply_to(req, 200, "OK", "b1", contact), port)
        assert recv_until(alice, lambda m: m.is_reply and m.cseq.method == "BYE"
                          and m.status == 200) is not None
        # CANCEL before the answer: 200 for the CANCEL, the callee sees it, 487 to the caller
        cid = uuid.uuid4().hex
        alice.send(_invite(alice, "bob", port, cid), port)
        got = recv_until(bob, lambda m: m.is_request and m.method == "INVITE")
        bob.send(reply_to(got, 180, "Ringing", "b2", contact), port)
        assert recv_until(alice, lambda m: m.is_reply and m.status == 180) is not None
        alice.send(sip(f"CANCEL sip:bob@127.0.0.1:{port} SIP/2.0\n"
                       f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bK{cid[:12]};"
                       f"rport\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=a{cid[:6]}\n"
                       f"To: <sip:bob@127.0.0.1>\nCall-ID: {cid}\nCSeq: 1 CANCEL\n"
                       "Content-Length: 0\n\n"), port)
        assert recv_until(alice, lambda m: m.is_reply and m.cseq.method == "CANCEL"
                          and m.status == 200) is not None
        assert recv_until(bob, lambda m: m.is_request and m.method == "CANCEL") is not None
        bob.send(reply_to(got, 487, "Request Terminated", "b2", contact), port)
        assert recv_until(alice, lambda m: m.is_reply and m.status == 487) is not None
        assert recv_until(bob, lambda m: m.is_request and m.method == "ACK") is not None
        # callee busy: the 486 reaches the caller
        cid = uuid.uuid4().hex
        alice.send(_invite(alice, "bob", port, cid), port)
        got = recv_until(bob, lambda m: m.is_request and m.method == "INVITE")
        bob.send(reply_to(got, 486, "Busy Here", "b3", contact), port)
        assert recv_until(alice, lambda m: m.is_reply and m.status == 486) is not None
        # unknown user
        alice.send(_invite(alice, "nobody", port, uuid.uuid4().hex), port)
        assert recv_until(alice, lambda m: m.is_reply and m.status == 404) is not None
    finally:
        alice.close()
        bob.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    log = log_path.read_text()
    assert "ACC: transaction answered:" in log and "Traceback" not in log


def test_stock_config_unanswered_call_408_after_fr_inv_timer(tmp_path):
    """The stock cfg's fr_inv_timer (120 s) lowered at run time, as operators do, with
    `pykamcmd cfg.seti tm fr_inv_timer 1500`: a callee that rings and never answers gets a
    CANCEL and the caller a 408 once fr_inv_timer has run from the 180."""
    import signal
    import subprocess
    import sys

    from .conftest import ROOT

    proc, port, log_path = _stock_server(tmp_path)
    alice, bob = UA(), UA()
    try:
        ctl = str(tmp_path / f"stock-{port}" / "pykam_ctl")
        r = subprocess.run([sys.executable, str(ROOT / "bin" / "pykamcmd"), "-s", ctl,
                            "cfg.seti", "tm", "fr_inv_timer", "1500"], capture_output=True,
                           text=True, timeout=20, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        r = subprocess.run([sys.executable, str(ROOT / "bin" / "pykamcmd"), "-s", ctl,
                            "cfg.get", "tm", "fr_inv_timer"], capture_output=True, text=True,
                           timeout=20, check=False)
        assert r.stdout.strip() == "1500", r.stdout + r.stderr
        assert _register(bob, "bob", port) == 200
        cid = uuid.uuid4().hex
        alice.send(_invite(alice, "bob", port, cid), port)
        got = recv_until(bob, lambda m: m.is_request and m.method == "INVITE")
        assert got is not None
        contact = f"sip:bob@127.0.0.1:{bob.port}"
        bob.send(reply_to(got, 180, "Ringing", "b9", contact), port)
        assert recv_until(alice, lambda m: m.is_reply and m.status == 180) is not None
        rang = time.monotonic()
        cancel = recv_until(bob, lambda m: m.is_request and m.method == "CANCEL", 6.0)
        assert cancel is not None                       # the timed-out branch is cancelled
        waited = time.monotonic() - rang
        assert 1.2 <= waited <= 4.0, waited             # fr_inv_timer, not the stock 120 s
        bob.send(reply_to(got, 487, "Request Terminated", "b9", contact), port)
        final = recv_until(alice, lambda m: m.is_reply and m.status >= 200, 6.0)
        assert final is not None and final.status == 408
    finally:
        alice.close()
        bob.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert "Traceback" not in log_path.read_text()


def test_lost_messages_recovered_by_tm_retransmissions(start_server):
    """The callee loses the first INVITE (timer A resends it); the caller loses the first 486
    (timer G resends it until the ACK, which tm absorbs)."""
    srv = start_server(CFG)
    alice, bob = UA(), UA()
    try:
        cid = uuid.uuid4().hex
        inv = (f"INVITE sip:bob@127.0.0.1:{bob.port} SIP/2.0\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bK{cid[:12]};rport\n"
               f"Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=l{cid[:6]}\n"
               f"To: <sip:bob@127.0.0.1>\nCall-ID: {cid}\nCSeq: 1 INVITE\n"
               f"Contact: <sip:alice@127.0.0.1:{alice.port}>\nContent-Length: 0\n\n")
        alice.send(sip(inv), srv.port)
        first = recv_until(bob, lambda m: m.is_request and m.method == "INVITE")
        assert first is not None                          # "lost": not answered
        t0 = time.monotonic()
        second = recv_until(bob, lambda m: m.is_request and m.method == "INVITE", timeout=2)
        assert second is not None and 0.3 < time.monotonic() - t0 < 1.5
        assert second.via1.branch == first.via1.branch
        bob.send(reply_to(second, 486, "Busy Here", "bz", f"sip:bob@127.0.0.1:{bob.port}"),
                 srv.port)
        assert recv_until(bob, lambda m: m.is_request and m.method == "ACK") is not None
        busy = recv_until(alice, lambda m: m.is_reply and m.status == 486)
        assert busy is not None                           # "lost" too: no ACK yet
        again = recv_until(alice, lambda m: m.is_reply and m.status == 486, timeout=2)
        assert again is not None                          # timer G
        alice.send(sip(f"ACK sip:bob@127.0.0.1:{bob.port} SIP/2.0\n"
                       f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bK{cid[:12]};"
                       f"rport\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=l{cid[:6]}\n"
                       f"To: {again.header('To').value}\nCall-ID: {cid}\nCSeq: 1 ACK\n"
                       "Content-Length: 0\n\n"), srv.port)
        # absorbed hop by hop: bob sees no second ACK, alice no more 486
        assert recv_until(bob, lambda m: m.is_request and m.method == "ACK", timeout=1) is None
        assert recv_until(alice, lambda m: m.is_reply, timeout=1.5) is None
    finally:
        alice.close()
        bob.close()


def test_stock_config_parallel_forking_and_checks(tmp_path):
    """Stock cfg: two contacts of one user ring in parallel, the first 200 wins and the other
    branch is cancelled; OPTIONS keepalive, Max-Forwards 0 -> 483, no user -> 484."""
    import signal

    proc, port, log_path = _stock_server(tmp_path)
    alice, bob1, bob2 = UA(), UA(), UA()
    try:
        assert _register(bob1, "bob", port) == 200
        assert _register(bob2, "bob", port) == 200
        cid = uuid.uuid4().hex
        alice.send(_invite(alice, "bob", port, cid), port)
        inv1 = recv_until(bob1, lambda m: m.is_request and m.method == "INVITE")
        inv2 = recv_until(bob2, lambda m: m.is_request and m.method == "INVITE")
        assert inv1 is not None and inv2 is not None
        assert inv1.via1.branch != inv2.via1.branch
        c1, c2 = f"sip:bob@127.0.0.1:{bob1.port}", f"sip:bob@127.0.0.1:{bob2.port}"
        bob1.send(reply_to(inv1, 180, "Ringing", "p1", c1), port)
        bob2.send(reply_to(inv2, 180, "Ringing", "p2", c2), port)
        bob2.send(reply_to(inv2, 200, "OK", "p2", c2), port)
        ok = recv_until(alice, lambda m: m.is_reply and m.status == 200)
        assert ok is not None and ok.to_tag == "p2"
        cancel = recv_until(bob1, lambda m: m.is_request and m.method == "CANCEL")
        assert cancel is not None and cancel.via1.branch == inv1.via1.branch
        bob1.send(reply_to(cancel, 200, "OK", "p1", c1), port)
        bob1.send(reply_to(inv1, 487, "Request Terminated", "p1", c1), port)
        assert recv_until(bob1, lambda m: m.is_request and m.method == "ACK") is not None
        assert recv_until(alice, lambda m: m.is_reply and m.status >= 300, timeout=1) is None
        # a retransmitted INVITE (landing on either worker) is absorbed: the callee sees one
        cid = uuid.uuid4().hex
        inv = _invite(alice, "bob", port, cid)
        alice.send(inv, port)
        alice.send(inv, port)
        time.sleep(0.05)
        alice.send(inv, port)
        seen = []
        deadline = time.monotonic() + 0.4          # before tm's own timer A (500 ms)
        while time.monotonic() < deadline:
            data = bob1.recv(0.05)
            if data is not None and parse_msg(data).method == "INVITE":
                seen.append(data)
        assert len(seen) == 1, seen
        trying = 0
        while (data := alice.recv(0.1)) is not None:
            trying += parse_msg(data).status == 100
        assert trying >= 1
        # OPTIONS to the server itself: keepalive
        from .conftest import options

        alice.send(options(alice, port), port)
        r = recv_until(alice, lambda m: m.is_reply and m.cseq.method == "OPTIONS")
        assert r is not None and r.status == 200 and r.reason == "Keepalive"
        # Max-Forwards 0 -> 483
        mf0 = _invite(alice, "bob", port, uuid.uuid4().hex).replace(b"Max-Forwards: 70",
                                                                     b"Max-Forwards: 0")
        alice.send(mf0, port)
        assert recv_until(alice, lambda m: m.is_reply and m.status == 483) is not None
        # INVITE with no user in the R-URI -> 484
        nouser = _invite(alice, "bob", port, uuid.uuid4().hex).replace(
            f"INVITE sip:bob@127.0.0.1:{port}".encode(), f"INVITE sip:127.0.0.1:{port}".encode())
        alice.send(nouser, port)
        assert recv_until(alice, lambda m: m.is_reply and m.status == 484) is not None
    finally:
        for ua in (alice, bob1, bob2):
            ua.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert "Traceback" not in log_path.read_text()
