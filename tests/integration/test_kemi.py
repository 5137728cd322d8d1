"""The real server routing in Lua and in Python (etc/pykam-lua.cfg, etc/pykam-python.cfg with
etc/pykam.lua, etc/pykam_routing.py): the checks of test_udp_server.py (the relay is stateful
here), REGISTER and a call to the registered user, reload over RPC without restart, a broken
script refused, no request lost while reloading."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sipcore.msg import parse_msg
from tests.services import needs_sipp

from .conftest import ROOT, UA, options

pytestmark = pytest.mark.integration

ENGINES = {
    "lua": ("pykam-lua.cfg", "pykam.lua", "app_lua.reload"),
    "python": ("pykam-python.cfg", "pykam_routing.py", "app_python3.reload"),
}


def kemi_cfg(engine: str, script: Path) -> str:
    """etc/pykam-<engine>.cfg listening on {port} with SCRIPT as the routing script."""
    text = (ROOT / "etc" / ENGINES[engine][0]).read_text()
    first, rest = text.split("\n", 1)
    return (f"{first}\n#!define LISTEN udp:127.0.0.1:{{port}}\n"
            f"#!define KEMI_SCRIPT \"{script}\"\n{rest}")


@pytest.fixture(params=sorted(ENGINES))
def kemi_server(request, start_server, tmp_path):
    engine = request.param
    script = tmp_path / ENGINES[engine][1]
    shutil.copy(ROOT / "etc" / ENGINES[engine][1], script)
    srv = start_server(kemi_cfg(engine, script))
    srv.script, srv.engine = script, engine
    return srv


def ctl(srv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                           str(srv.rundir / "pykam_ctl"), *args],
                          capture_output=True, text=True, timeout=20, cwd=ROOT, check=False)


def ask(ua: UA, srv, **kw) -> object:
    ua.send(options(ua, srv.port, **kw), srv.port)
    data = ua.recv()
    assert data is not None, srv.log()
    return parse_msg(data)


def test_options_keepalive_answered(kemi_server):
    ua = UA()
    try:
        rpl = ask(ua, kemi_server)
        assert rpl.status == 200 and rpl.reason == "Keepalive"
        assert rpl.via1.rport == str(ua.port)          # KSR.force_rport()
        assert rpl.to_tag
    finally:
        ua.close()


def test_request_relayed_statelessly_and_reply_comes_back(kemi_server):
    srv = kemi_server
    caller, callee = UA(), UA()
    try:
        caller.send(options(caller, srv.port, ruri=f"sip:bob@127.0.0.1:{callee.port}"), srv.port)
        data = callee.recv()
        assert data is not None, srv.log()
        fwd = parse_msg(data)
        assert fwd.method == "OPTIONS" and fwd.max_forwards == 69
        assert fwd.vias[0].port == srv.port and fwd.vias[0].branch.startswith("z9hG4bK")
        assert fwd.vias[1].rport == str(caller.port)
        reply = (b"SIP/2.0 200 OK\r\n" +
                 b"".join(fwd.buf[h.start:h.end] for h in fwd.header_all("Via")) +
                 b"".join(fwd.buf[h.start:h.end] for h in fwd.headers
                          if h.canonical_name in ("From", "To", "Call-ID", "CSeq")) +
                 b"Content-Length: 0\r\n\r\n")
        callee.send(reply, srv.port)
        data = caller.recv()
        assert data is not None, srv.log()
        back = parse_msg(data)
        assert back.status == 200 and len(back.vias) == 1 and back.callid == fwd.callid
    finally:
        caller.close()
        callee.close()


def test_too_many_hops_and_local_404(kemi_server):
    srv = kemi_server
    ua = UA()
    try:
        ua.send(options(ua, srv.port, ruri="sip:bob@127.0.0.1:9").replace(
            "Max-Forwards: 70", "Max-Forwards: 0"), srv.port)
        assert parse_msg(ua.recv()).status == 483
        rpl = ask(ua, srv, ruri=f"sip:nobody@127.0.0.1:{srv.port}")
        assert rpl.status == 404
    finally:
        ua.close()
    assert srv.alive() and "Traceback" not in srv.log()


def test_reload_over_rpc_changes_behaviour_and_broken_script_refused(kemi_server):
    srv = kemi_server
    reload_cmd = ENGINES[srv.engine][2]
    src = srv.script.read_text()
    srv.script.write_text(src.replace('"Keepalive"', '"Reloaded"'))
    out = ctl(srv, reload_cmd)
    assert out.returncode == 0, out.stdout + out.stderr + srv.log()
    ua = UA()
    try:
        # every worker (children=2) switches at its next message
        for _ in range(6):
            assert ask(ua, srv).reason == "Reloaded"
        srv.script.write_text(src.replace("function", "fnction").replace("def ", "df "))
        out = ctl(srv, reload_cmd)
        assert out.returncode != 0 and "not reloaded" in (out.stdout + out.stderr)
        for _ in range(6):
            assert ask(ua, srv).reason == "Reloaded"      # the old script stays
    finally:
        ua.close()
    assert srv.alive() and len(srv.children()) >= 3


def test_reload_under_load_loses_no_request(kemi_server):
    """Requests keep being answered while the script is reloaded: each answer comes from
    either the old or the new script, none is lost."""
    srv = kemi_server
    src = srv.script.read_text()
    srv.script.write_text(src.replace('"Keepalive"', '"New"'))
    ua = UA()
    reasons = []
    try:
        proc = None
        for i in range(120):
            if i == 20:
                proc = subprocess.Popen([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                                         str(srv.rundir / "pykam_ctl"),
                                         ENGINES[srv.engine][2]], cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            reasons.append(ask(ua, srv).reason)
        assert proc is not None and proc.wait(20) == 0
        for _ in range(4):
            reasons.append(ask(ua, srv).reason)
    finally:
        ua.close()
    assert set(reasons) <= {"Keepalive", "New"} and len(reasons) == 124
    assert reasons[-4:] == ["New"] * 4


def test_register_then_call_and_busy_through_failure_route(kemi_server):
    srv = kemi_server
    caller, callee = UA(), UA()
    try:
        callee.send(f"REGISTER sip:127.0.0.1:{srv.port} SIP/2.0\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{callee.port};branch=z9hG4bKreg{callee.port}\n"
                    "Max-Forwards: 70\nFrom: <sip:bob@127.0.0.1>;tag=r1\n"
                    "To: <sip:bob@127.0.0.1>\nCall-ID: reg-kemi-1\nCSeq: 1 REGISTER\n"
                    f"Contact: <sip:bob@127.0.0.1:{callee.port}>\nExpires: 60\n"
                    "Content-Length: 0\n\n", srv.port)
        ok = parse_msg(callee.recv())
        assert ok.status == 200, srv.log()
        cid = f"call-kemi-{caller.port}"
        caller.send(f"INVITE sip:bob@127.0.0.1:{srv.port} SIP/2.0\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bKinv{caller.port}\n"
                    "Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=a1\n"
                    "To: <sip:bob@127.0.0.1>\n"
                    f"Call-ID: {cid}\nCSeq: 1 INVITE\n"
                    f"Contact: <sip:alice@127.0.0.1:{caller.port}>\nContent-Length: 0\n\n",
                    srv.port)
        assert parse_msg(caller.recv()).status == 100
        data = callee.recv()
        assert data is not None, srv.log()
        fwd = parse_msg(data)
        assert fwd.method == "INVITE" and fwd.ruri == f"sip:bob@127.0.0.1:{callee.port}"
        assert fwd.header("Record-Route") is not None
        busy = (b"SIP/2.0 486 Busy Here\r\n" +
                b"".join(fwd.buf[h.start:h.end] for h in fwd.header_all("Via")) +
                b"".join(fwd.buf[h.start:h.end] for h in fwd.headers
                         if h.canonical_name in ("From", "Call-ID", "CSeq")) +
                b"To: <sip:bob@127.0.0.1>;tag=b1\r\nContent-Length: 0\r\n\r\n")
        callee.send(busy, srv.port)
        got = None
        for _ in range(5):
            data = caller.recv()
            assert data is not None, srv.log()
            got = parse_msg(data)
            if got.is_reply and got.status >= 200:
                break
        assert got is not None and got.status == 486
    finally:
        caller.close()
        callee.close()
    assert "Traceback" not in srv.log()


@needs_sipp
def test_reload_under_sipp_load_loses_no_request(kemi_server, tmp_path):
    """SIPp sends OPTIONS at 200/s (a retransmitted request counts as a failure only when it is
    never answered); the script is reloaded over RPC midway: every request is answered."""
    import csv
    import time

    srv = kemi_server
    src = srv.script.read_text()
    srv.script.write_text(src.replace('"Keepalive"', '"New"'))
    stat = tmp_path / "opt-stat.csv"
    scen = ROOT / "tests" / "integration" / "sipp" / "options.xml"
    sipp = subprocess.Popen(["sipp", "-sf", str(scen), "-i", "127.0.0.1", "-p", "0",
                             f"127.0.0.1:{srv.port}", "-r", "200", "-m", "1200",
                             "-l", "1200", "-nostdin", "-trace_stat", "-stf", str(stat),
                             "-fd", "3600", "-timeout", "30s"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        time.sleep(2.0)
        assert sipp.poll() is None                 # requests are still being sent
        out = ctl(srv, ENGINES[srv.engine][2])
        assert out.returncode == 0, out.stdout + out.stderr
        rc = sipp.wait(40)
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait(5)
    rows = list(csv.reader(open(stat, newline=""), delimiter=";"))
    st = dict(zip(rows[0], rows[-1]))
    assert rc == 0 and int(st["SuccessfulCall(C)"]) == 1200, st
    ua = UA()
    try:
        assert ask(ua, srv).reason == "New"
    finally:
        ua.close()
    assert "Traceback" not in srv.log()


def cancel_flow(srv) -> None:
    """REGISTER bob; alice calls; bob rings; alice cancels: 200 for the CANCEL, bob sees the
    CANCEL, alice gets 487 for the INVITE. The same for every routing engine."""
    caller, callee = UA(), UA()
    try:
        callee.send(f"REGISTER sip:127.0.0.1:{srv.port} SIP/2.0\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{callee.port};branch=z9hG4bKrc{callee.port}\n"
                    "Max-Forwards: 70\nFrom: <sip:bob@127.0.0.1>;tag=r1\n"
                    "To: <sip:bob@127.0.0.1>\nCall-ID: reg-cancel-1\nCSeq: 1 REGISTER\n"
                    f"Contact: <sip:bob@127.0.0.1:{callee.port}>\nExpires: 60\n"
                    "Content-Length: 0\n\n", srv.port)
        assert parse_msg(callee.recv()).status == 200, srv.log()
        head = (f"sip:bob@127.0.0.1:{srv.port} SIP/2.0\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bKcx{caller.port}\n"
                "Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=a1\n"
                f"To: <sip:bob@127.0.0.1>\nCall-ID: cancel-{caller.port}\n")
        caller.send(f"INVITE {head}CSeq: 1 INVITE\n"
                    f"Contact: <sip:alice@127.0.0.1:{caller.port}>\nContent-Length: 0\n\n",
                    srv.port)
        assert parse_msg(caller.recv()).status == 100
        inv = parse_msg(callee.recv())
        assert inv.method == "INVITE", srv.log()

        def reply(req, code: str) -> bytes:
            return (f"SIP/2.0 {code}\r\n".encode() +
                    b"".join(req.buf[h.start:h.end] for h in req.header_all("Via")) +
                    b"".join(req.buf[h.start:h.end] for h in req.headers
                             if h.canonical_name in ("From", "Call-ID", "CSeq")) +
                    b"To: <sip:bob@127.0.0.1>;tag=b1\r\nContent-Length: 0\r\n\r\n")

        callee.send(reply(inv, "180 Ringing"), srv.port)
        assert parse_msg(caller.recv()).status == 180
        caller.send(f"CANCEL {head}CSeq: 1 CANCEL\nContent-Length: 0\n\n", srv.port)
        seen = {}
        for _ in range(6):                      # CANCEL's 200 and bob's CANCEL, any order
            for ua, who in ((callee, "callee"), (caller, "caller")):
                data = ua.recv(0.5)
                if data is not None:
                    m = parse_msg(data)
                    seen.setdefault(who, []).append(m)
            if "callee" in seen and "caller" in seen:
                break
        cancel = next(m for m in seen.get("callee", []) if m.is_request)
        assert cancel.method == "CANCEL", srv.log()
        assert any(m.is_reply and m.status == 200 and m.cseq.method == "CANCEL"
                   for m in seen["caller"])
        callee.send(reply(cancel, "200 OK"), srv.port)
        callee.send(reply(inv, "487 Request Terminated"), srv.port)
        final = None
        for _ in range(6):
            data = caller.recv(2.0)
            assert data is not None, srv.log()
            m = parse_msg(data)
            if m.is_reply and m.cseq.method == "INVITE" and m.status >= 200:
                final = m
                break
        assert final is not None and final.status == 487
    finally:
        caller.close()
        callee.close()
    assert "Traceback" not in srv.log()


def test_cancel_before_answer_gives_487(kemi_server):
    cancel_flow(kemi_server)
