"""auth + auth_db + registrar in the real prefork server (children=2) on SQLite: a REGISTER is
challenged (401 with a nonce), the credentials computed as a UA does are accepted by whichever
worker receives them (the nonce secret is shared by all workers), a replayed one-time nonce is
refused by every worker (shm), a wrong password is rejected, and the binding is stored. The subscriber is added with `pykamctl subscriber add`,
so the ha1 written by the operations tool is the one the server verifies."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid

import pytest

from sipcore.msg import parse_msg
from sipcore.msg.digest import parse_digest
from tests.paths import STOCK_CFG as STOCK

from .conftest import ROOT, UA

pytestmark = pytest.mark.integration

CFG = """#!KAMAILIO
children=2
listen=udp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "auth"
loadmodule "auth_db"
modparam("auth_db", "db_url", "DBURL")
modparam("auth_db", "calculate_ha1", 0)
modparam("auth", "one_time_nonce", 1)
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
    if (!auth_check("$fd", "subscriber", "1")) {
        append_to_reply("X-Rc: $rc\\r\\nX-Pid: $pp\\r\\n");
        auth_challenge("$fd", "1");
        exit;
    }
    append_to_reply("X-Pid: $pp\\r\\n");
    if (is_method("REGISTER")) { save("location"); exit; }
    sl_send_reply("404", "Not Found");
}
"""


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def _register(ua: UA, port: int, user: str, auth: str = "", cseq: int = 1,
              callid: str = "") -> str:
    branch = uuid.uuid4().hex[:10]
    return (f"REGISTER sip:127.0.0.1:{port} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bK{branch};rport\n"
            "Max-Forwards: 70\n"
            f"From: <sip:{user}@127.0.0.1>;tag=t{branch[:6]}\n"
            f"To: <sip:{user}@127.0.0.1>\n"
            f"Call-ID: {callid or uuid.uuid4().hex}\nCSeq: {cseq} REGISTER\n"
            f"Contact: <sip:{user}@127.0.0.1:{ua.port}>\nExpires: 600\n"
            f"{auth}Content-Length: 0\n\n")


def _credentials(challenge: str, user: str, password: str, uri: str, nc: int) -> str:
    ch = parse_digest(challenge)
    ha1 = _md5(f"{user}:{ch.realm}:{password}")
    ha2 = _md5(f"REGISTER:{uri}")
    cnonce = uuid.uuid4().hex[:8]
    resp = _md5(f"{ha1}:{ch.nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (f'Authorization: Digest username="{user}", realm="{ch.realm}", '
            f'nonce="{ch.nonce}", uri="{uri}", response="{resp}", algorithm=MD5, '
            f'qop=auth, nc={nc:08x}, cnonce="{cnonce}"\n')


def test_register_challenged_then_accepted_on_any_worker(start_server, tmp_path):
    url = f"sqlite:///{tmp_path / 'auth.sqlite'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in (["db", "create"], ["subscriber", "add", "alice@127.0.0.1", "s3cret"]):
        out = subprocess.run([sys.executable, str(ROOT / "bin" / "pykamctl"), *args,
                              "--db-url", url], check=False, cwd=ROOT, capture_output=True, text=True,
                             timeout=60, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
    srv = start_server(CFG.replace("DBURL", url))
    port = srv.port
    uri = f"sip:127.0.0.1:{port}"
    ua = UA()
    try:
        # many REGISTERs: each challenge and each answer lands on whichever worker the
        # kernel wakes, so nonces issued by one worker are verified by the other
        statuses: list[int] = []
        crossed = 0                          # nonces verified by another worker than the issuer
        callid = uuid.uuid4().hex
        for i in range(12):
            ua.send(_register(ua, port, "alice", cseq=2 * i + 1, callid=callid), port)
            rep = parse_msg(ua.recv(5.0) or b"")
            assert rep.status == 401 and rep.header("X-Rc").value == "-5"
            ch = rep.header("WWW-Authenticate").value
            assert parse_digest(ch).qop == "auth"
            auth = _credentials(ch, "alice", "s3cret", uri, 1)
            ua.send(_register(ua, port, "alice", auth, cseq=2 * i + 2, callid=callid), port)
            ok = parse_msg(ua.recv(5.0) or b"")
            statuses.append(ok.status)
            crossed += ok.header("X-Pid").value != rep.header("X-Pid").value
        assert statuses == [200] * 12, srv.log()[-3000:]
        assert ok.header("Contact") is not None
        assert crossed >= 1, "every answer reached the worker that issued its nonce"

        # one_time_nonce: the used nonce is marked in shm, so a replay fails on every worker
        for i in range(4):
            ua.send(_register(ua, port, "alice", auth, cseq=100 + i, callid=callid), port)
            replay = parse_msg(ua.recv(5.0) or b"")
            assert replay.status == 401 and replay.header("X-Rc").value == "-6"
            assert parse_digest(replay.header("WWW-Authenticate").value).params["stale"] == "true"

        ua.send(_register(ua, port, "alice"), port)
        ch = parse_msg(ua.recv(5.0) or b"").header("WWW-Authenticate").value
        ua.send(_register(ua, port, "alice", _credentials(ch, "alice", "wrong", uri, 1)), port)
        bad = parse_msg(ua.recv(5.0) or b"")
        assert bad.status == 401 and bad.header("X-Rc").value == "-2"
    finally:
        ua.close()
    assert srv.alive()


# ---- Kamailio's stock configuration with -A WITH_AUTH, unmodified ---------------------------


def _plain_credentials(challenge: str, header: str, user: str, password: str, method: str,
                       uri: str) -> str:
    ch = parse_digest(challenge)
    resp = _md5(f"{_md5(f'{user}:{ch.realm}:{password}')}:{ch.nonce}:{_md5(f'{method}:{uri}')}")
    return (f'{header}: Digest username="{user}", realm="{ch.realm}", nonce="{ch.nonce}", '
            f'uri="{uri}", response="{resp}"\n')


def _recv_final(ua: UA) -> object:
    while True:
        data = ua.recv(5.0)
        assert data is not None, "no reply"
        msg = parse_msg(data)
        if not msg.is_reply or msg.status >= 200:
            return msg


def test_stock_config_with_auth_on_sqlite(tmp_path):
    """kamailio-5.6-default.cfg -A WITH_AUTH with DBURL on SQLite (calculate_ha1=yes, the
    password column): REGISTER 401 then 200; an INVITE from alice is challenged with 407,
    then relayed to bob's registered contact without the Proxy-Authorization header."""
    import signal
    import time

    from .conftest import free_udp_port, options

    url = f"sqlite:///{tmp_path / 'stock.sqlite'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in (["db", "create"], ["subscriber", "add", "alice@127.0.0.1", "alicepw"],
                 ["subscriber", "add", "bob@127.0.0.1", "bobpw"]):
        out = subprocess.run([sys.executable, str(ROOT / "bin" / "pykamctl"), *args,
                              "--db-url", url], check=False, cwd=ROOT, capture_output=True,
                             text=True, timeout=60, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
    port = free_udp_port()
    rundir = tmp_path / "run"
    rundir.mkdir()
    log_path = tmp_path / "stock.log"
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "sipcore", "-DD", "-E", "-Y", str(rundir),
                                 "-n", "2", "-l", f"udp:127.0.0.1:{port}", "-f", str(STOCK),
                                 "-A", "WITH_AUTH", "-A", f'DBURL="{url}"'],
                                cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, env=env)
    alice, bob = UA(), UA()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()
            alice.send(options(alice, port), port)
            if alice.recv(0.3) is not None:
                break
        else:
            raise AssertionError(log_path.read_text())
        uri = f"sip:127.0.0.1:{port}"
        for ua, user, pw in ((alice, "alice", "alicepw"), (bob, "bob", "bobpw")):
            ua.send(_register(ua, port, user), port)
            rep = _recv_final(ua)
            assert rep.status == 401, log_path.read_text()[-2000:]
            ch = rep.header("WWW-Authenticate").value
            ua.send(_register(ua, port, user, _plain_credentials(
                ch, "Authorization", user, pw, "REGISTER", uri)), port)
            assert _recv_final(ua).status == 200, log_path.read_text()[-2000:]

        cid = uuid.uuid4().hex
        ruri = f"sip:bob@127.0.0.1:{port}"

        def invite(cseq: int, auth: str = "") -> str:
            return (f"INVITE {ruri} SIP/2.0\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{alice.port};branch=z9hG4bK{cid[:8]}{cseq};rport\n"
                    f"Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=a{cid[:6]}\n"
                    f"To: <sip:bob@127.0.0.1>\nCall-ID: {cid}\nCSeq: {cseq} INVITE\n"
                    f"Contact: <sip:alice@127.0.0.1:{alice.port}>\n{auth}Content-Length: 0\n\n")

        alice.send(invite(1), port)
        rep = _recv_final(alice)
        assert rep.status == 407
        ack = (f"ACK {ruri} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{alice.port};"
               f"branch=z9hG4bK{cid[:8]}1;rport\nMax-Forwards: 70\n"
               f"From: <sip:alice@127.0.0.1>;tag=a{cid[:6]}\nTo: <sip:bob@127.0.0.1>;"
               f"tag={rep.to_tag}\nCall-ID: {cid}\nCSeq: 1 ACK\nContent-Length: 0\n\n")
        alice.send(ack, port)
        ch = rep.header("Proxy-Authenticate").value
        alice.send(invite(2, _plain_credentials(ch, "Proxy-Authorization", "alice", "alicepw",
                                                "INVITE", ruri)), port)
        got = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data = bob.recv(1.0)
            if data is not None and parse_msg(data).is_request:
                got = parse_msg(data)
                break
        assert got is not None and got.method == "INVITE", log_path.read_text()[-3000:]
        assert got.header("Proxy-Authorization") is None          # consume_credentials()
    finally:
        alice.close()
        bob.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
