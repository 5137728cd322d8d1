"""The security recipes in etc/examples/ (Kamailio book, "Security"), each run unmodified by a
real server on a free loopback port (only LISTEN comes from the test) and checked on the wire:
blocked user agents, blocked destination prefixes, calls per second per source, an IP banned
after failed authentications, concurrent calls per user with dialog profiles. Other sources
are 127.0.0.2 and 127.0.0.3 (loopback)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Optional

import pytest

from sipcore.msg import parse_msg
from sipcore.msg.digest import parse_digest

from .conftest import ROOT, UA
from .test_tm import recv_until, reply_to, sip

pytestmark = pytest.mark.integration

EXAMPLES = ROOT / "etc" / "examples"


def _cfg(name: str) -> str:
    text = (EXAMPLES / name).read_text()
    assert "#!trydef LISTEN udp:127.0.0.1:5060" in text
    return text.replace("#!trydef LISTEN udp:127.0.0.1:5060", "#!trydef LISTEN udp:127.0.0.1:{port}")


def _ctl(srv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bin" / "pykamcmd"), "-s",
                           str(srv.rundir / "pykam_ctl"), *args], cwd=ROOT, timeout=20,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _invite(ua: UA, port: int, ruri: str, user: str = "alice", agent: str = "PyKam-test/1.0",
            extra: str = "", cid: Optional[str] = None, cseq: int = 1) -> tuple[bytes, str]:
    cid = cid or uuid.uuid4().hex
    host = ua.host
    return sip(f"INVITE {ruri} SIP/2.0\n"
               f"Via: SIP/2.0/UDP {host}:{ua.port};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\n"
               f"Max-Forwards: 70\nFrom: <sip:{user}@127.0.0.1>;tag=f{cid[:6]}\n"
               f"To: <{ruri}>\nCall-ID: {cid}\nCSeq: {cseq} INVITE\n"
               f"Contact: <sip:{user}@{host}:{ua.port}>\nUser-Agent: {agent}\n{extra}"
               "Content-Length: 0\n\n"), cid


def _silent(ua: UA, cid: str, timeout: float = 1.0) -> bool:
    """Nothing about call CID reaches UA within TIMEOUT (other calls' messages are skipped)."""
    return recv_until(ua, lambda m: m.callid == cid, timeout) is None


def _got_invite(ua: UA, cid: str) -> bool:
    return recv_until(ua, lambda m: m.is_request and m.method == "INVITE"
                      and m.callid == cid) is not None


def test_block_user_agents(start_server):
    srv = start_server(_cfg("block-user-agents.cfg"))
    caller, callee = UA(), UA()
    try:
        ruri = f"sip:bob@127.0.0.1:{callee.port}"

        def send(agent: str) -> str:
            data, cid = _invite(caller, srv.port, ruri, agent=agent)
            caller.send(data, srv.port)
            return cid

        cid = send("friendly-scanner")
        assert _silent(caller, cid) and _silent(callee, cid, 0.2)    # dropped, no reply at all
        assert _got_invite(callee, send("Linphone/5.2"))
        # an operator blocks another agent at run time, by prefix
        r = _ctl(srv, "secfilter.add_bl", "ua", "BadPhone/1.")
        assert r.returncode == 0, r.stdout + r.stderr
        cid = send("BadPhone/1.7")
        assert _silent(caller, cid) and _silent(callee, cid, 0.2)
        assert _got_invite(callee, send("BadPhone/2.0"))
    finally:
        caller.close()
        callee.close()
    assert "blocked user agent 'friendly-scanner'" in srv.log()


def test_block_destinations(start_server):
    srv = start_server(_cfg("block-destinations.cfg"))
    caller, callee = UA(), UA()

    def final_for(number: str) -> Optional[int]:
        """The final reply to a call to NUMBER; None when the callee got the INVITE."""
        data, cid = _invite(caller, srv.port, f"sip:{number}@127.0.0.1:{callee.port}")
        caller.send(data, srv.port)
        m = recv_until(caller, lambda m: m.is_reply and m.status >= 200 and m.callid == cid,
                       1.0)
        if m is not None:
            return m.status
        assert _got_invite(callee, cid)
        return None

    try:
        assert final_for("+8812345678") == 403
        assert final_for("008825551234") == 403
        assert final_for("4915551234") is None                   # relayed: callee rings it
        r = _ctl(srv, "secfilter.add_dst", "s:0900")                # s: keeps it a string
        assert r.returncode == 0, r.stdout + r.stderr
        assert final_for("0900123456") == 403                    # prefix added at run time
        assert final_for("0800123456") is None
    finally:
        caller.close()
        callee.close()


def test_limit_calls_per_second_per_source(start_server):
    srv = start_server(_cfg("limit-cps-per-source.cfg"))
    fast, other, callee = UA(), UA(host="127.0.0.2"), UA()
    try:
        ruri = f"sip:bob@127.0.0.1:{callee.port}"
        start = time.monotonic()
        for _ in range(15):
            fast.send(_invite(fast, srv.port, ruri)[0], srv.port)
        burst = time.monotonic() - start
        refused = relayed = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            data = fast.recv(0.3)
            if data is None:
                break
            m = parse_msg(data)
            if m.status == 503:
                refused += 1
                assert m.header("Retry-After").value == "1"
        calls = set()                        # INVITEs relayed (tm retransmits them: by Call-ID)
        while True:
            data = callee.recv(0.3)
            if data is None:
                break
            calls.add(parse_msg(data).callid)
        relayed = len(calls)
        # 5 per second: one second, or two if the burst crossed a second boundary
        assert 5 <= relayed <= 10 and refused == 15 - relayed, (relayed, refused, burst)
        # another source is not affected
        data, cid = _invite(other, srv.port, ruri)
        other.send(data, srv.port)
        assert _got_invite(callee, cid)
        # the next second, the fast source may call again
        time.sleep(1.1)
        data, cid = _invite(fast, srv.port, ruri)
        fast.send(data, srv.port)
        assert _got_invite(callee, cid)
    finally:
        for u in (fast, other, callee):
            u.close()


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def _proxy_auth(challenge: str, user: str, password: str, uri: str) -> str:
    ch = parse_digest(challenge)
    resp = _md5(f"{_md5(f'{user}:{ch.realm}:{password}')}:{ch.nonce}:{_md5(f'INVITE:{uri}')}")
    return (f'Proxy-Authorization: Digest username="{user}", realm="{ch.realm}", '
            f'nonce="{ch.nonce}", uri="{uri}", response="{resp}"\n')


def test_ban_after_failed_authentications(start_server):
    srv = start_server(_cfg("ban-failed-auth.cfg"))
    attacker, user, callee = UA(), UA(host="127.0.0.2"), UA()
    ruri = f"sip:bob@127.0.0.1:{callee.port}"

    def attempt(ua: UA, password: Optional[str]) -> Optional[object]:
        data, cid = _invite(ua, srv.port, ruri)
        ua.send(data, srv.port)
        ch = recv_until(ua, lambda m: m.is_reply and m.status >= 200 and m.callid == cid, 1.0)
        if ch is None or ch.status != 407 or password is None:
            return ch
        auth = _proxy_auth(ch.header("Proxy-Authenticate").value, "alice", password, ruri)
        ua.send(_invite(ua, srv.port, ruri, extra=auth, cid=cid, cseq=2)[0], srv.port)
        final = recv_until(ua, lambda m: m.is_reply and m.status >= 200 and m.callid == cid
                           and m.cseq.num == 2, 1.0)
        if final is None:
            assert _got_invite(callee, cid)        # authenticated: relayed, the callee rings
        return final

    try:
        assert attempt(attacker, None).status == 407             # challenged
        assert attempt(attacker, "guess-1").status == 407        # failure 1
        assert attempt(attacker, "guess-2").status == 407        # failure 2
        assert attempt(attacker, "guess-3").status == 403        # failure 3: banned
        assert attempt(attacker, "alice-secret") is None         # ignored, even right password
        dump = _ctl(srv, "--json", "htable.dump", "ipban")
        assert dump.returncode == 0 and "127.0.0.1" in dump.stdout, dump.stdout + dump.stderr
        # a user elsewhere authenticates and is relayed
        assert attempt(user, "alice-secret") is None             # relayed to the callee
        # the operator lifts the ban
        r = _ctl(srv, "htable.delete", "ipban", "127.0.0.1")
        assert r.returncode == 0, r.stdout + r.stderr
        assert attempt(attacker, None).status == 407
    finally:
        for u in (attacker, user, callee):
            u.close()
    assert "banning 127.0.0.1 after 3 failed authentications" in srv.log()


def test_concurrent_calls_per_user(start_server):
    srv = start_server(_cfg("concurrent-calls-per-user.cfg"))
    alice, bob_caller, callee = UA(), UA(), UA()
    ruri = f"sip:carol@127.0.0.1:{callee.port}"
    contact = f"sip:carol@127.0.0.1:{callee.port}"

    def call(ua: UA, user: str) -> tuple[int, Optional[tuple]]:
        data, cid = _invite(ua, srv.port, ruri, user=user)
        ua.send(data, srv.port)
        got = recv_until(callee, lambda m: m.is_request and m.method == "INVITE"
                         and m.callid == cid, 1.5)
        if got is None:
            final = recv_until(ua, lambda m: m.is_reply and m.status >= 200, 1.0)
            return (final.status if final is not None else 0), None
        callee.send(reply_to(got, 200, "OK", f"t{cid[:5]}", contact), srv.port)
        ok = recv_until(ua, lambda m: m.is_reply and m.status == 200 and m.callid == cid)
        assert ok is not None
        route = "".join(f"Route: {v}\n" for v in reversed(ok.header_values("Record-Route")))
        dialog = (cid, ok.header("To").value, route, user)
        _in_dialog(ua, dialog, "ACK", 1)
        assert recv_until(callee, lambda m: m.is_request and m.method == "ACK") is not None
        return 200, dialog

    def _in_dialog(ua: UA, dialog: tuple, method: str, cseq: int) -> None:
        cid, to, route, user = dialog
        ua.send(sip(f"{method} {contact} SIP/2.0\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bK{uuid.uuid4().hex[:10]}"
                    f";rport\n{route}Max-Forwards: 70\n"
                    f"From: <sip:{user}@127.0.0.1>;tag=f{cid[:6]}\nTo: {to}\n"
                    f"Call-ID: {cid}\nCSeq: {cseq} {method}\nContent-Length: 0\n\n"), srv.port)

    try:
        dialogs = []
        for _ in range(5):
            code, d = call(alice, "alice")
            assert code == 200
            dialogs.append(d)
        assert call(alice, "alice")[0] == 403                    # the 6th simultaneous call
        r = _ctl(srv, "--json", "dlg.profile_get_size", "caller", "alice")
        assert r.returncode == 0 and json.loads(r.stdout)["count"] == 5, r.stdout + r.stderr
        listed = _ctl(srv, "--json", "dlg.list")
        assert listed.returncode == 0
        assert {d[0] for d in dialogs} <= set(listed.stdout.split('"')), listed.stdout
        assert call(bob_caller, "bob")[0] == 200                 # another user is not limited
        # alice hangs up one call: a new one goes through
        _in_dialog(alice, dialogs[0], "BYE", 2)
        bye = recv_until(callee, lambda m: m.is_request and m.method == "BYE"
                         and m.callid == dialogs[0][0])
        assert bye is not None
        callee.send(reply_to(bye, 200, "OK", "x", contact), srv.port)
        assert recv_until(alice, lambda m: m.is_reply and m.cseq.method == "BYE") is not None
        time.sleep(0.2)
        assert call(alice, "alice")[0] == 200
    finally:
        for u in (alice, bob_caller, callee):
            u.close()
