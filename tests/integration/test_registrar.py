"""registrar + usrloc in the real prefork server (children=2): a REGISTER handled by one worker
is visible to every worker (shm), INVITEs are redirected to the registered contact whichever
worker takes them, `ul.dump` over the ctl socket (pykamcmd) shows the binding, and db_mode 2
writes the binding to SQLite and a restart preloads it."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest

from sipcore.msg import parse_msg

from .conftest import ROOT, UA

pytestmark = pytest.mark.integration

CFG = """#!KAMAILIO
children=2
listen=udp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "textops"
loadmodule "usrloc"
loadmodule "registrar"
{params}
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
    if (is_method("REGISTER")) { save("location"); exit; }
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    sl_send_reply("302", "Moved Temporarily");
}
"""


def _register(ua: UA, port: int, user: str, contact: str, expires: int = 600) -> str:
    cid = uuid.uuid4().hex
    return (f"REGISTER sip:127.0.0.1:{port} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bK{cid[:10]};rport\n"
            "Max-Forwards: 70\n"
            f"From: <sip:{user}@127.0.0.1>;tag={cid[:6]}\n"
            f"To: <sip:{user}@127.0.0.1>\n"
            f"Call-ID: {cid}\nCSeq: 1 REGISTER\n"
            f"Contact: <{contact}>\nExpires: {expires}\nContent-Length: 0\n\n")


def _invite(ua: UA, port: int, user: str) -> str:
    cid = uuid.uuid4().hex
    return (f"INVITE sip:{user}@127.0.0.1:{port} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bK{cid[:10]};rport\n"
            "Max-Forwards: 70\n"
            f"From: <sip:caller@127.0.0.1>;tag={cid[:6]}\n"
            f"To: <sip:{user}@127.0.0.1>\n"
            f"Call-ID: {cid}\nCSeq: 1 INVITE\nContent-Length: 0\n\n")


def _ask(port: int, text_of) -> object:
    ua = UA()
    try:
        ua.send(text_of(ua), port)
        data = ua.recv(3.0)
        assert data is not None, "no reply"
        return parse_msg(data)
    finally:
        ua.close()


def _pykamcmd(rundir, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                          str(rundir / "pykam_ctl"), "--json", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=20,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_register_in_one_worker_lookup_from_all(start_server):
    srv = start_server(CFG.replace("{params}", ""))
    rep = _ask(srv.port, lambda ua: _register(ua, srv.port, "alice", "sip:alice@127.0.0.1:5999"))
    assert rep.status == 200
    assert [c.uri for c in rep.contacts.contacts] == ["sip:alice@127.0.0.1:5999"]
    # many INVITEs: the kernel spreads them over both workers; every one finds alice
    for _ in range(12):
        rep = _ask(srv.port, lambda ua: _invite(ua, srv.port, "alice"))
        assert rep.status == 302
        assert [c.uri for c in rep.contacts.contacts] == ["sip:alice@127.0.0.1:5999"]
    assert _ask(srv.port, lambda ua: _invite(ua, srv.port, "nobody")).status == 404
    dump = _pykamcmd(srv.rundir, "ul.dump")
    (dom,) = dump["Domains"]
    aors = {a["Info"]["AoR"]: a["Info"]["Contacts"] for a in dom["Domain"]["AoRs"]}
    assert list(aors) == ["alice"]
    assert aors["alice"][0]["Contact"]["Address"] == "sip:alice@127.0.0.1:5999"
    look = _pykamcmd(srv.rundir, "ul.lookup", "location", "alice")
    assert look["AoR"] == "alice"
    show = subprocess.run([sys.executable, "-m", "sipcore.cli.ops", "-s",
                           str(srv.rundir / "pykam_ctl"), "ul", "show", "--brief"], cwd=ROOT,
                          capture_output=True, text=True, timeout=20,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert show.returncode == 0 and "sip:alice@127.0.0.1:5999" in show.stdout
    _pykamcmd(srv.rundir, "ul.rm", "location", "alice")
    assert _ask(srv.port, lambda ua: _invite(ua, srv.port, "alice")).status == 404


def test_write_back_survives_restart(start_server, tmp_path):
    from sipcore import db

    path = tmp_path / "loc.sqlite"
    url = f"sqlite:///{path}"
    db.create_all(url, ["location"])
    db.dispose_engine(url)
    params = (f'modparam("usrloc", "db_url", "{url}")\n'
              'modparam("usrloc", "db_mode", 2)\nmodparam("usrloc", "timer_interval", 1)')
    srv = start_server(CFG.replace("{params}", params))
    rep = _ask(srv.port, lambda ua: _register(ua, srv.port, "bob", "sip:bob@127.0.0.1:5998"))
    assert rep.status == 200

    def rows() -> list:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT username, contact FROM location").fetchall()

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not rows():
        time.sleep(0.1)
    assert rows() == [("bob", "sip:bob@127.0.0.1:5998")]        # written by the timer
    srv.proc.terminate()
    assert srv.proc.wait(10) == 0
    srv2 = start_server(CFG.replace("{params}", params))
    rep = _ask(srv2.port, lambda ua: _invite(ua, srv2.port, "bob"))
    assert rep.status == 302 and rep.contacts.contacts[0].uri == "sip:bob@127.0.0.1:5998"


def test_write_back_flushed_on_sigterm(start_server, tmp_path):
    from sipcore import db

    path = tmp_path / "loc2.sqlite"
    url = f"sqlite:///{path}"
    db.create_all(url, ["location"])
    db.dispose_engine(url)
    params = (f'modparam("usrloc", "db_url", "{url}")\n'
              'modparam("usrloc", "db_mode", 2)\nmodparam("usrloc", "timer_interval", 600)')
    srv = start_server(CFG.replace("{params}", params))
    rep = _ask(srv.port, lambda ua: _register(ua, srv.port, "carol", "sip:carol@127.0.0.1:5997"))
    assert rep.status == 200
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM location").fetchone() == (0,)
    srv.proc.terminate()
    assert srv.proc.wait(10) == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT username, contact FROM location").fetchall() == [
            ("carol", "sip:carol@127.0.0.1:5997")]


def test_db_only_two_instances_share_registrations(start_server, tmp_path):
    """db_mode 3 on PostgreSQL: a REGISTER to one pykam is found by another one."""
    from sipcore import db
    from tests.unit.test_db_engine import temp_db

    with temp_db("postgres", tmp_path) as url:
        db.create_all(url, ["location"])
        db.dispose_engine(url)
        params = f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 3)'
        a = start_server(CFG.replace("{params}", params))
        b = start_server(CFG.replace("{params}", params))
        rep = _ask(a.port, lambda ua: _register(ua, a.port, "dave", "sip:dave@127.0.0.1:5996"))
        assert rep.status == 200
        rep = _ask(b.port, lambda ua: _invite(ua, b.port, "dave"))
        assert rep.status == 302 and rep.contacts.contacts[0].uri == "sip:dave@127.0.0.1:5996"
        a.proc.terminate()
        b.proc.terminate()
        a.proc.wait(10)
        b.proc.wait(10)


class _Relay:
    """A TCP relay 127.0.0.1:port -> host:port that the test can cut and restore (the shared
    database server itself is never stopped)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        import socket
        import threading

        self.target = (target_host, target_port)
        self.lsock: socket.socket | None = None
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()

    def start(self) -> None:
        import socket
        import threading

        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(16)
        self.lsock = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls) -> None:
        import socket
        import threading

        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, s]
            for x, y in ((c, s), (s, c)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        import socket

        if self.lsock is not None:
            try:                        # wakes the accept() thread (close alone does not)
                self.lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.lsock.close()
            self.lsock = None
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.conns = []


def test_database_cut_gives_500_and_service_resumes(start_server, tmp_path):
    from sqlalchemy.engine import make_url

    from sipcore import db
    from tests.unit.test_db_engine import temp_db

    with temp_db("postgres", tmp_path) as url:
        db.create_all(url, ["location"])
        db.dispose_engine(url)
        server = make_url(url)
        relay = _Relay(server.host or "127.0.0.1", server.port or 5432)
        relay.start()
        try:
            rurl = (server.set(host="127.0.0.1", port=relay.port)
                    .render_as_string(hide_password=False))
            params = (f'modparam("usrloc", "db_url", "{rurl}")\n'
                      'modparam("usrloc", "db_mode", 1)')
            srv = start_server(CFG.replace("{params}", params))
            def reg(user: str):
                return lambda ua: _register(ua, srv.port, user, f"sip:{user}@127.0.0.1:5995")

            assert _ask(srv.port, reg("erin")).status == 200
            relay.cut()
            kids = srv.children()
            for _ in range(3):
                assert _ask(srv.port, reg("erin")).status == 500
            assert srv.children() == kids and srv.alive()        # no worker died
            relay.start()
            deadline = time.monotonic() + 10
            status = 0
            while time.monotonic() < deadline:
                status = _ask(srv.port, reg("frank")).status
                if status == 200:
                    break
                time.sleep(0.2)
            assert status == 200
            srv.proc.terminate()
            srv.proc.wait(10)
        finally:
            relay.cut()
