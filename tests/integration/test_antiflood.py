"""Anti-flood across workers: the real server (children=2) with pike + an htable ipban.

A burst from one source is detected by pike (its counters are in shm, so the hits that land on
either worker add up), the source is banned in $sht(ipban=>$si) (shm, so both workers refuse
it), `htable.dump ipban` over the ctl socket shows the ban, and the ban expires through the
timer process's sweep, which runs event_route[htable:expired:ipban].
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Optional

import pytest

from sipcore.msg import parse_msg
from tests.paths import STOCK_CFG as STOCK
from tests.services import needs_sipp

from .conftest import ROOT, UA

pytestmark = pytest.mark.integration

CFG = """#!KAMAILIO
children=2
listen=udp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "textops"
loadmodule "xlog"
loadmodule "htable"
loadmodule "pike"
modparam("pike", "sampling_time_unit", 2)
modparam("pike", "reqs_density_per_unit", 40)
modparam("pike", "remove_latency", 2)
modparam("htable", "htable", "ipban=>size=8;autoexpire=4;")
modparam("htable", "htable", "events=>size=4;")
modparam("htable", "timer_interval", 1)
request_route {
    append_to_reply("X-Pid: $pp\\r\\n");
    if ($sht(ipban=>$si) != $null) { sl_send_reply("403", "Banned"); exit; }
    if (!pike_check_req()) {
        xlog("L_ALERT", "ALERT: pike blocking $rm from $fu (IP:$si:$sp)\\n");
        $sht(ipban=>$si) = 1;
        sl_send_reply("503", "Flood");
        exit;
    }
    sl_send_reply("200", "OK");
}
event_route[htable:mod-init] {
    $sht(events=>started) = "yes";
}
event_route[htable:expired:ipban] {
    $sht(events=>unbanned) = $shtrecord(key);
}
"""


def _opts(ua: UA, port: int) -> str:
    cid = uuid.uuid4().hex
    return (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bK{cid[:12]}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:flood@127.0.0.1>;tag={cid[:6]}\r\n"
            f"To: <sip:127.0.0.1>\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\n"
            f"Content-Length: 0\r\n\r\n")


def _burst(ua: UA, port: int, n: int) -> list[tuple[int, str]]:
    """Send N requests without waiting, then collect (status, X-Pid) of every reply."""
    for _ in range(n):
        ua.send(_opts(ua, port), port)
    out = []
    while len(out) < n:
        data = ua.recv(2.0)
        if data is None:
            break
        msg = parse_msg(data)
        pid = next((v for k, v in _headers(data) if k.lower() == "x-pid"), "")
        out.append((msg.status, pid))
    return out


def _headers(data: bytes) -> list[tuple[str, str]]:
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")[1:]
    return [(h.split(":", 1)[0].strip(), h.split(":", 1)[1].strip()) for h in head if ":" in h]


def _ctl(srv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                           str(srv.rundir / "pykam_ctl"), *args], cwd=ROOT, timeout=15,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_stock_config_with_antiflood_checks():
    r = subprocess.run([sys.executable, "-m", "sipcore.cli.server", "-c", "-f",
                        str(STOCK), "-A", "WITH_ANTIFLOOD"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_flood_banned_across_workers_and_ban_expires(start_server):
    srv = start_server(CFG)
    time.sleep(2.1)                     # let the readiness probes' pike window pass
    ua = UA()
    try:
        replies = _burst(ua, srv.port, 120)
        codes = [c for c, _ in replies]
        assert len(replies) == 120, f"only {len(replies)} replies:\n{srv.log()}"
        # replies of the two workers interleave, and a request that passed the ban check on
        # one worker while the other was banning gets a second 503: count, don't order
        assert set(codes) == {200, 503, 403}, codes
        assert 20 <= codes.count(200) < 40, codes       # the density (40/window) was reached
        assert 1 <= codes.count(503) <= 3, codes
        # the ban is in shm: both workers refuse the source (bursts until each has answered)
        banned_pids = {p for c, p in replies if c == 403}
        for _ in range(10):
            if len(banned_pids) == 2:
                break
            more = _burst(ua, srv.port, 100)
            assert {c for c, _ in more} == {403}
            banned_pids |= {p for _, p in more}
        assert len(banned_pids) == 2, banned_pids

        started = _ctl(srv, "--json", "htable.get", "events", "started")
        assert json.loads(started.stdout)["item"]["value"] == "yes", started.stderr
        dump = _ctl(srv, "--json", "htable.dump", "ipban")
        assert dump.returncode == 0, dump.stderr
        items = [e for slot in json.loads(dump.stdout) for e in slot["slot"]]
        assert items == [{"name": "127.0.0.1", "value": 1, "type": "int"}]
        top = _ctl(srv, "--json", "pike.top", "HOT")
        assert top.returncode == 0, top.stderr
        assert [e["ip_addr"] for e in json.loads(top.stdout)] == ["127.0.0.1"]

        # autoexpire=4 plus a 1 s sweep: the ban goes, the expired event route runs
        assert _wait(lambda: _ctl(srv, "htable.get", "events", "unbanned").returncode == 0,
                     10), srv.log()
        assert json.loads(_ctl(srv, "--json", "htable.dump", "ipban").stdout) == []
        ev = _ctl(srv, "--json", "htable.get", "events", "unbanned")
        assert ev.returncode == 0, ev.stderr + srv.log()[-3000:]
        assert json.loads(ev.stdout) == {"item": {"name": "unbanned", "value": "127.0.0.1"}}
        time.sleep(2.1)                 # and pike forgot the burst
        assert [c for c, _ in _burst(ua, srv.port, 5)] == [200] * 5
        assert "ALERT: pike blocking OPTIONS" in srv.log()
    finally:
        ua.close()


COUNT_CFG = """#!KAMAILIO
children=2
listen=udp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "textops"
loadmodule "htable"
loadmodule "rtimer"
modparam("htable", "htable", "cnt=>size=4;")
modparam("rtimer", "timer", "name=tick;interval=100000u;mode=1;")
modparam("rtimer", "exec", "timer=tick;route=TICK")
request_route {
    append_to_reply("X-Pid: $pp\\r\\n");
    if ($fU == "count") { $var(n) = $shtinc(cnt=>hits); }
    sl_send_reply("200", "OK");
}
route[TICK] {
    $var(t) = $shtinc(cnt=>ticks);
    $sht(cnt=>ticker) = $pp;
}
"""


def test_counting_across_workers_is_exact(start_server):
    """What pike and the ban rest on: increments from both workers add up exactly; an
    rtimer route in the timer process shares the same table."""
    srv = start_server(COUNT_CFG)
    uas = [UA() for _ in range(4)]
    try:
        pids: set[str] = set()
        total = 0
        for _ in range(5):
            for ua in uas:
                for _ in range(50):
                    ua.send(_opts(ua, srv.port).replace("sip:flood@", "sip:count@"), srv.port)
            for ua in uas:
                got = 0
                while got < 50:
                    data = ua.recv(3.0)
                    assert data is not None, srv.log()
                    pids |= {v for k, v in _headers(data) if k.lower() == "x-pid"}
                    got += 1
            total += 200
        assert len(pids) == 2, pids
        r = _ctl(srv, "--json", "htable.get", "cnt", "hits")
        assert json.loads(r.stdout) == {"item": {"name": "hits", "value": total}}, r.stderr
        # rtimer's route ran in the timer process, not in a worker
        def ticks() -> int:
            r = _ctl(srv, "--json", "htable.get", "cnt", "ticks")
            return json.loads(r.stdout)["item"]["value"] if r.returncode == 0 else 0

        assert _wait(lambda: ticks() >= 3, 5), srv.log()
        ticker = json.loads(_ctl(srv, "--json", "htable.get", "cnt", "ticker").stdout)
        assert str(ticker["item"]["value"]) not in pids
    finally:
        for ua in uas:
            ua.close()


# ---- Kamailio's stock configuration with -A WITH_ANTIFLOOD, under a SIPp flood -------------

FLOOD_XML = Path(__file__).resolve().parent / "sipp" / "flood_options.xml"
FLOOD_RATE, FLOOD_REQS = 2000, 6000          # 3 s from 127.0.0.2
GOOD_INTERVAL = 0.25                         # 127.0.0.3: 8 per pike window (limit 16)


class _Src:
    """A UDP source on another loopback address (127.0.0.0/8 is all local on Linux)."""

    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.port = self.sock.getsockname()[1]

    def ask(self, port: int, timeout: float = 2.0) -> Optional[int]:
        """One OPTIONS to the proxy; the status of its reply, None without one."""
        cid = uuid.uuid4().hex
        self.sock.sendto((f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
                          f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK{cid[:12]};"
                          f"rport\r\nMax-Forwards: 70\r\n"
                          f"From: <sip:probe@{self.ip}>;tag={cid[:6]}\r\n"
                          f"To: <sip:127.0.0.1>\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\n"
                          f"Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", port))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                return None
            m = parse_msg(data)
            if m.is_reply and m.callid == cid:
                return m.status

    def close(self) -> None:
        self.sock.close()


@needs_sipp
def test_stock_config_antiflood_blocks_a_sipp_flood_and_serves_others(start_server, tmp_path):
    """kamailio-5.6-default.cfg -A WITH_ANTIFLOOD (unmodified; listen and children on the
    command line): SIPp floods OPTIONS from 127.0.0.2 at 2,000/s; pike detects it, the script
    bans the source in $sht(ipban) and drops its requests silently, while 127.0.0.3 at a
    normal rate is answered throughout. The stock table keeps a ban 300 s: the operator's
    htable.setex shortens it to 1 s and the source is served again once it expires."""
    from .test_sipp import _last_stats, _spawn, _stop, _tail

    srv = start_server(STOCK.read_text(), args=("-n", "2", "-l", "udp:127.0.0.1:{port}",
                                                "-A", "WITH_ANTIFLOOD"))
    good, probe = _Src("127.0.0.3"), _Src("127.0.0.2")
    flood = None
    try:
        # neither address is "myself" (only 127.0.0.1 is), so the pike check applies to both
        assert good.ask(srv.port) == 200 and probe.ask(srv.port) == 200, srv.log()[-2000:]
        time.sleep(2 * 2.05)                  # both probes leave pike's two windows
        stat, log = tmp_path / "flood-stat.csv", tmp_path / "flood.log"
        flood = _spawn(["sipp", "-sf", str(FLOOD_XML), "-i", "127.0.0.2", "-p", "0",
                        f"127.0.0.1:{srv.port}", "-r", str(FLOOD_RATE), "-m", str(FLOOD_REQS),
                        "-nr", "-timeout", "30s", "-nostdin", "-trace_stat", "-stf",
                        str(stat), "-fd", "3600"], tmp_path, log)
        served: list[Optional[int]] = []
        while flood.poll() is None:           # the good source, at its normal rate
            t = time.monotonic()
            served.append(good.ask(srv.port))
            time.sleep(max(0.0, GOOD_INTERVAL - (time.monotonic() - t)))
        st = _last_stats(stat)
        detail = f"{st}\n{_tail(log, 1500)}\npykam:\n{srv.log()[-3000:]}"
        assert int(st["OutgoingCall(C)"]) == FLOOD_REQS, detail
        assert len(served) >= 10 and served == [200] * len(served), (served, detail)
        # the flood got answers only until pike caught it (16 per 2 s window), then nothing
        assert int(st["SuccessfulCall(C)"]) <= 100, detail
        assert int(st["FailedCall(C)"]) >= FLOOD_REQS - 100, detail
        assert "ALERT: pike blocking OPTIONS from sip:flood@127.0.0.2" in srv.log()

        dump = _ctl(srv, "--json", "htable.dump", "ipban")
        assert dump.returncode == 0, dump.stderr
        items = [e for slot in json.loads(dump.stdout) for e in slot["slot"]]
        assert items == [{"name": "127.0.0.2", "value": 1, "type": "int"}]
        assert probe.ask(srv.port, 1.0) is None           # banned: dropped silently
        assert good.ask(srv.port) == 200

        # once pike's windows have no hits of the flood left, shorten the ban: it expires
        def cooled() -> bool:
            top = json.loads(_ctl(srv, "--json", "pike.top", "ALL").stdout)
            e = [x for x in top if x["ip_addr"] == "127.0.0.2"]
            return not e or e[0]["leaf_hits_prev"] + e[0]["leaf_hits_curr"] == 0

        assert _wait(cooled, 6)
        alerts = srv.log().count("ALERT: pike blocking")   # 1, or 2 when both workers raced
        r = _ctl(srv, "htable.setex", "ipban", "127.0.0.2", "1")
        assert r.returncode == 0, r.stdout + r.stderr
        assert probe.ask(srv.port, 0.5) is None           # still banned for that second
        time.sleep(1.0)
        assert probe.ask(srv.port) == 200, srv.log()[-2000:]
        assert srv.log().count("ALERT: pike blocking") == alerts   # not banned again
    finally:
        if flood is not None:
            _stop(flood)
        good.close()
        probe.close()
