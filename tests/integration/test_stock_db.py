"""Kamailio's stock configuration, unmodified, with `-A WITH_MYSQL -A WITH_AUTH -A WITH_USRLOCDB`
and `-A 'DBURL="..."'` on each real database: MariaDB and PostgreSQL on 127.0.0.1 (a fresh
database / schema per test, dropped after) and SQLite (a file).

The tables are made with `pykamctl db create` and the users with `pykamctl subscriber add` (the
operator's tools), then, as a UA sees it: REGISTER without credentials gets 401 with a digest
challenge, with them 200; a wrong password is challenged again (401, as the stock cfg's
auth_check/auth_challenge do in Kamailio); `ul.dump` shows both users; usrloc's db_mode 2 of the
stock cfg writes the bindings to `location` (ul.flush, and SIGTERM); an authenticated INVITE
from alice reaches bob and completes (200, ACK along the Record-Route); after a restart the
registrations are preloaded from the database and bob is still reachable.

The backend's test skips only when its server does not answer (127.0.0.1 unless
PYKAM_TEST_POSTGRES / PYKAM_TEST_MYSQL say otherwise: tests/services.py).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sipcore.msg import parse_msg
from tests.paths import STOCK_CFG as STOCK
from tests.unit.test_db_engine import temp_db

from .conftest import ROOT, UA, child_pids, free_udp_port, options, pid_alive
from .test_auth import _plain_credentials, _register

pytestmark = pytest.mark.integration

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
DEFINES = ("-A", "WITH_MYSQL", "-A", "WITH_AUTH", "-A", "WITH_USRLOCDB")
WAIT = 8.0                                  # per reply: generous for a loaded 2-core machine


def pykamctl(url: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "bin" / "pykamctl"), *args, "--db-url", url],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, env=ENV)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def pykamcmd(rundir: Path, *args: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                          str(rundir / "pykam_ctl"), "--json", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=30, env=ENV)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def location_rows(url: str) -> list[dict[str, Any]]:
    """The `location` table as `pykamctl db show location` prints it (JSON lines)."""
    text = pykamctl(url, "db", "show", "location")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class Stock:
    """One pykam running the stock cfg; stop() ends it (SIGTERM, then SIGKILL by PID)."""

    proc: subprocess.Popen
    port: int
    rundir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        kids = child_pids(self.proc.pid)
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait(5)
        for pid in kids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        return rc


def start_stock(tmp_path: Path, url: str, port: int, tag: str) -> Stock:
    rundir = tmp_path / f"run-{tag}"
    rundir.mkdir()
    log_path = tmp_path / f"stock-{tag}.log"
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sipcore", "-DD", "-E", "-Y", str(rundir), "-n", "2",
             "-l", f"udp:127.0.0.1:{port}", "-f", str(STOCK), *DEFINES, "-A", f'DBURL="{url}"'],
            cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, env=ENV)
    srv = Stock(proc, port, rundir, log_path)
    probe = UA()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"pykam exited with {proc.returncode}:\n{srv.log()}")
            probe.send(options(probe, port), port)
            if probe.recv(0.5) is not None:
                return srv
        srv.stop()
        raise AssertionError(f"pykam did not answer on {port}:\n{srv.log()}")
    finally:
        probe.close()


def recv_msg(ua: UA, srv: Stock, *, final: bool = True) -> Any:
    """The next request, or the next final reply (provisional replies are skipped)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        data = ua.recv(max(0.1, deadline - time.monotonic()))
        if data is None:
            break
        msg = parse_msg(data)
        if not final or not msg.is_reply or msg.status >= 200:
            return msg
    raise AssertionError(f"nothing received on {ua.port}:\n{srv.log()}")


def register(ua: UA, srv: Stock, user: str, password: str) -> tuple[Any, Any]:
    """REGISTER without credentials (the 401), then with them: (challenge, final reply)."""
    callid = uuid.uuid4().hex
    ua.send(_register(ua, srv.port, user, cseq=1, callid=callid), srv.port)
    ch = recv_msg(ua, srv)
    assert ch.status == 401, srv.log()
    www = ch.header("WWW-Authenticate").value
    assert www.startswith("Digest ") and "nonce=" in www
    auth = _plain_credentials(www, "Authorization", user, password, "REGISTER",
                              f"sip:127.0.0.1:{srv.port}")
    ua.send(_register(ua, srv.port, user, auth, cseq=2, callid=callid), srv.port)
    return ch, recv_msg(ua, srv)


class Call:
    """alice's INVITE to bob through the proxy: 407, authenticated INVITE, bob answers 200,
    alice ACKs along the Record-Route."""

    def __init__(self, srv: Stock, alice: UA, bob: UA) -> None:
        self.srv, self.alice, self.bob = srv, alice, bob
        self.cid = uuid.uuid4().hex
        self.ruri = f"sip:bob@127.0.0.1:{srv.port}"
        self.ftag = "a" + self.cid[:6]

    def invite(self, cseq: int, auth: str = "") -> str:
        a = self.alice
        return (f"INVITE {self.ruri} SIP/2.0\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{a.port};branch=z9hG4bK{self.cid[:8]}{cseq};rport\n"
                f"Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag={self.ftag}\n"
                f"To: <sip:bob@127.0.0.1>\nCall-ID: {self.cid}\nCSeq: {cseq} INVITE\n"
                f"Contact: <sip:alice@127.0.0.1:{a.port}>\n{auth}Content-Length: 0\n\n")

    def run(self) -> None:
        srv, alice, bob = self.srv, self.alice, self.bob
        alice.send(self.invite(1), srv.port)
        rep = recv_msg(alice, srv)
        assert rep.status == 407, srv.log()
        alice.send(f"ACK {self.ruri} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{alice.port};"
                   f"branch=z9hG4bK{self.cid[:8]}1;rport\nMax-Forwards: 70\n"
                   f"From: <sip:alice@127.0.0.1>;tag={self.ftag}\n"
                   f"To: <sip:bob@127.0.0.1>;tag={rep.to_tag}\nCall-ID: {self.cid}\n"
                   "CSeq: 1 ACK\nContent-Length: 0\n\n", srv.port)
        pa = _plain_credentials(rep.header("Proxy-Authenticate").value, "Proxy-Authorization",
                                "alice", "alicepw", "INVITE", self.ruri)
        alice.send(self.invite(2, pa), srv.port)
        inv = recv_msg(bob, srv, final=False)
        assert inv.is_request and inv.method == "INVITE", srv.log()
        assert inv.ruri == f"sip:bob@127.0.0.1:{bob.port}"       # the registered contact
        assert inv.header("Proxy-Authorization") is None         # consume_credentials()
        vias = "".join(f"Via: {h.value}\n" for h in inv.header_all("Via"))
        rrs = "".join(f"Record-Route: {h.value}\n" for h in inv.header_all("Record-Route"))
        assert rrs, "the stock cfg record-routes the INVITE"
        bob.send(f"SIP/2.0 200 OK\n{vias}{rrs}From: <sip:alice@127.0.0.1>;tag={self.ftag}\n"
                 f"To: <sip:bob@127.0.0.1>;tag=b{self.cid[:6]}\nCall-ID: {self.cid}\n"
                 f"CSeq: 2 INVITE\nContact: <sip:bob@127.0.0.1:{bob.port}>\n"
                 "Content-Length: 0\n\n", srv.port)
        ok = recv_msg(alice, srv)
        assert ok.status == 200, srv.log()
        route = ", ".join(reversed([v.strip() for v in
                                    ok.header_values("Record-Route")]))
        alice.send(f"ACK sip:bob@127.0.0.1:{bob.port} SIP/2.0\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bK{self.cid[:8]}ack;"
                   f"rport\nMax-Forwards: 70\nRoute: {route}\n"
                   f"From: <sip:alice@127.0.0.1>;tag={self.ftag}\n"
                   f"To: <sip:bob@127.0.0.1>;tag=b{self.cid[:6]}\nCall-ID: {self.cid}\n"
                   "CSeq: 2 ACK\nContent-Length: 0\n\n", srv.port)
        ack = recv_msg(bob, srv, final=False)
        assert ack.is_request and ack.method == "ACK", srv.log()


def dumped_aors(rundir: Path) -> dict[str, list[str]]:
    dump = pykamcmd(rundir, "ul.dump")
    (dom,) = dump["Domains"]
    return {a["Info"]["AoR"]: [c["Contact"]["Address"] for c in a["Info"]["Contacts"]]
            for a in dom["Domain"]["AoRs"]}


@pytest.mark.parametrize("kind", ["mysql", "postgres", "sqlite"])
def test_stock_cfg_auth_usrlocdb(kind: str, tmp_path: Path) -> None:
    with temp_db(kind, tmp_path) as url:
        assert "created" in pykamctl(url, "db", "create")
        pykamctl(url, "subscriber", "add", "alice@127.0.0.1", "alicepw")
        pykamctl(url, "subscriber", "add", "bob@127.0.0.1", "bobpw")
        port = free_udp_port()
        alice, bob = UA(), UA()
        srv = start_stock(tmp_path, url, port, "1")
        try:
            # REGISTER: challenged, then accepted
            for ua, user, pw in ((alice, "alice", "alicepw"), (bob, "bob", "bobpw")):
                _ch, ok = register(ua, srv, user, pw)
                assert ok.status == 200, srv.log()
                assert [c.uri for c in ok.contacts.contacts] == [
                    f"sip:{user}@127.0.0.1:{ua.port}"]
            # a wrong password is challenged again (auth_check -2 -> auth_challenge)
            bad = UA()
            try:
                ch, rep = register(bad, srv, "alice", "not-the-password")
                assert rep.status == 401, srv.log()
                assert rep.header("WWW-Authenticate") is not None
            finally:
                bad.close()
            aors = dumped_aors(srv.rundir)
            assert aors == {"alice": [f"sip:alice@127.0.0.1:{alice.port}"],
                            "bob": [f"sip:bob@127.0.0.1:{bob.port}"]}
            # db_mode 2 (stock WITH_USRLOCDB): the timer writes every 60 s; ul.flush now
            pykamcmd(srv.rundir, "ul.flush")
            rows = {(r["username"], r["contact"]) for r in location_rows(url)}
            assert rows == {("alice", f"sip:alice@127.0.0.1:{alice.port}"),
                            ("bob", f"sip:bob@127.0.0.1:{bob.port}")}
            Call(srv, alice, bob).run()
        finally:
            rc = srv.stop()
        assert rc == 0, srv.log()
        # restart: the bindings come back from the database (preload), bob stays reachable
        srv = start_stock(tmp_path, url, port, "2")
        try:
            assert set(dumped_aors(srv.rundir)) == {"alice", "bob"}
            Call(srv, alice, bob).run()
        finally:
            srv.stop()
            alice.close()
            bob.close()
