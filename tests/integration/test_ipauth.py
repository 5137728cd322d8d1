"""Kamailio's stock configuration, unmodified, with `-A WITH_AUTH -A WITH_IPAUTH` and
`-A 'DBURL="sqlite:///..."'`: permissions loads the `address` rows from the database, and
route[AUTH]'s `allow_source_address()` (group 1) lets a request from an allowed address skip
authentication, while the same request from any other address is challenged (407).

The tables are made with `pykamctl db create`, bob with `pykamctl subscriber add`, and the
address row is written to the `address` table as an operator would (SQL). Listen address and
children come from the command line (-l, -n).
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from typing import Optional

import pytest

from sipcore.msg import parse_msg
from tests.paths import STOCK_CFG as STOCK

from .conftest import ROOT, UA
from .test_auth import _plain_credentials, _register

pytestmark = pytest.mark.integration

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ALLOWED = "127.0.0.2"


def _pykamctl(*args: str) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bin" / "pykamctl"), *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env=ENV, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def _final(sock: socket.socket, callid: str, timeout: float = 5.0):
    """The final reply for CALLID on SOCK (provisionals skipped), None without one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            m = parse_msg(sock.recv(65535))
        except socket.timeout:
            return None
        if m.is_reply and m.callid == callid and m.status >= 200:
            return m
    return None


def _invite_from(ip: str, port: int, bob: UA) -> tuple[Optional[int], bool]:
    """alice@127.0.0.1 (a local user: from_uri==myself) calls bob from source address IP:
    the final status she gets (None: none yet), and whether bob's UA received the INVITE."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 0))
    lport = sock.getsockname()[1]
    cid = uuid.uuid4().hex
    try:
        sock.sendto((f"INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {ip}:{lport};branch=z9hG4bK{cid[:12]};rport\r\n"
                     f"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a{cid[:6]}\r\n"
                     f"To: <sip:bob@127.0.0.1>\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\n"
                     f"Contact: <sip:alice@{ip}:{lport}>\r\nContent-Length: 0\r\n\r\n")
                    .encode(), ("127.0.0.1", port))
        got_invite = False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            data = bob.recv(0.5)
            if data is None:
                continue
            m = parse_msg(data)
            if m.is_request and m.method == "INVITE" and m.callid == cid:
                got_invite = True
                # bob declines: the caller's transaction ends with 486
                vias = "".join(f"Via: {v}\r\n" for v in m.header_values("Via"))
                bob.send(f"SIP/2.0 486 Busy Here\r\n{vias}From: {m.header('From').value}\r\n"
                         f"To: {m.header('To').value};tag=b{cid[:6]}\r\nCall-ID: {cid}\r\n"
                         f"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", port)
                break
        final = _final(sock, cid, 3.0 if got_invite else 1.0)
        return (final.status if final is not None else None), got_invite
    finally:
        sock.close()


def test_stock_config_ipauth_skips_auth_for_allowed_address(start_server, tmp_path):
    db = tmp_path / "ipauth.sqlite"
    url = f"sqlite:///{db}"
    _pykamctl("db", "create", "--db-url", url)
    _pykamctl("subscriber", "add", "bob@127.0.0.1", "bobpw", "--db-url", url)
    with sqlite3.connect(db) as con:
        con.execute("INSERT INTO address (grp, ip_addr, mask, port, tag) "
                    "VALUES (1, ?, 32, 0, 'gw')", (ALLOWED,))
    srv = start_server(STOCK.read_text(), args=(
        "-n", "2", "-l", "udp:127.0.0.1:{port}", "-A", "WITH_AUTH", "-A", "WITH_IPAUTH",
        "-A", f'DBURL="{url}"'))
    bob = UA()
    try:
        dump = subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                               str(srv.rundir / "pykam_ctl"), "--json",
                               "permissions.addressDump"], cwd=ROOT, capture_output=True,
                              text=True, timeout=15, env=ENV, check=False)
        assert dump.returncode == 0, dump.stdout + dump.stderr
        assert ALLOWED in dump.stdout and '"tag": "gw"' in json.dumps(json.loads(dump.stdout))

        # bob registers (REGISTER is always authenticated, even from an allowed address)
        bob.send(_register(bob, srv.port, "bob"), srv.port)
        ch = parse_msg(bob.recv(5.0) or b"")
        assert ch.status == 401, srv.log()[-2000:]
        bob.send(_register(bob, srv.port, "bob", _plain_credentials(
            ch.header("WWW-Authenticate").value, "Authorization", "bob", "bobpw",
            "REGISTER", f"sip:127.0.0.1:{srv.port}"), cseq=2), srv.port)
        assert parse_msg(bob.recv(5.0) or b"").status == 200, srv.log()[-2000:]

        # from the allowed address: no challenge, routed to bob (who answers 486)
        assert _invite_from(ALLOWED, srv.port, bob) == (486, True), srv.log()[-3000:]
        # from addresses not in the table: challenged, bob sees nothing
        assert _invite_from("127.0.0.1", srv.port, bob) == (407, False)
        assert _invite_from("127.0.0.3", srv.port, bob) == (407, False)
        assert "Traceback" not in srv.log()
    finally:
        bob.close()
