"""htable acceptance under SIPp load: the real server, two workers, one shared key.

Two UDP sockets with `children=1` give one worker per socket, so each of two SIPp instances
drives exactly one worker: both workers increment the same `$sht` key 10,000 times each,
concurrently, with `$shtinc` (the atomic form). `htable.dump` through the real `pykamcmd`
must show exactly 20,000, and the per-process keys (`$pp`) prove that two distinct worker
processes (the ones `core.psx` lists as UDP receivers) did 10,000 each. Meanwhile an item of an
`autoexpire` table disappears and runs `event_route[htable:expired:NAME]`.

SIPp runs with -nr (no retransmissions: a retransmitted OPTIONS would be counted twice by the
stateless script) and a bounded number of outstanding requests (-l), so nothing is dropped on
loopback. Skipped without sipp.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.services import needs_sipp

from .conftest import ROOT, free_udp_port
from .test_sipp import _last_stats, _spawn, _stop, _tail

pytestmark = [
    pytest.mark.integration,
    needs_sipp,
]

PER_WORKER = 10_000
OPTIONS_XML = Path(__file__).resolve().parent / "sipp" / "options.xml"

CFG = """#!KAMAILIO
children=1
listen=udp:127.0.0.1:{port}
listen=udp:127.0.0.1:{port2}
loadmodule "sl"
loadmodule "htable"
modparam("htable", "htable", "cnt=>size=8;")
modparam("htable", "htable", "tmp=>size=4;autoexpire=2;")
modparam("htable", "htable", "events=>size=4;")
modparam("htable", "timer_interval", 1)
request_route {
    if ($fU == "sipp") {
        $var(n) = $shtinc(cnt=>total);
        $var(p) = $shtinc(cnt=>pid-$pp);
        $var(s) = $shtinc(cnt=>port-$Rp);
    }
    sl_send_reply("200", "OK");
}
event_route[htable:expired:tmp] {
    $sht(events=>expired) = $shtrecord(key);
}
"""


def _pykamcmd(srv, *args: str) -> subprocess.CompletedProcess:
    """The installed `pykamcmd` console script (python -m sipcore.cli.ctl without it)."""
    exe = Path(sys.executable).parent / "pykamcmd"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "sipcore.cli.ctl"]
    return subprocess.run([*cmd, "-s", str(srv.rundir / "pykam_ctl"), *args], cwd=ROOT,
                          timeout=20, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _dump(srv, table: str) -> dict[str, object]:
    r = _pykamcmd(srv, "--json", "htable.dump", table)
    assert r.returncode == 0, r.stdout + r.stderr
    return {e["name"]: e["value"] for slot in json.loads(r.stdout) for e in slot["slot"]}


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def test_two_workers_increment_one_key_20000_times(start_server, tmp_path):
    port2 = free_udp_port()
    srv = start_server(CFG.replace("{port2}", str(port2)))
    ports = (srv.port, port2)
    psx = json.loads(_pykamcmd(srv, "--json", "core.psx").stdout)
    workers = {p["PID"]: p["DSC"] for p in psx if p["DSC"].startswith("udp receiver")}
    assert len(workers) == 2, psx                       # one per socket

    r = _pykamcmd(srv, "htable.sets", "tmp", "marker", "set-before-load")
    assert r.returncode == 0, r.stderr
    assert _dump(srv, "tmp") == {"marker": "set-before-load"}

    sipps, stats = [], []
    try:
        t0 = time.monotonic()
        for i, port in enumerate(ports):
            stat = tmp_path / f"sipp{i}-stat.csv"
            stats.append(stat)
            sipps.append(_spawn(["sipp", "-sf", str(OPTIONS_XML), "-i", "127.0.0.1", "-p", "0",
                                 f"127.0.0.1:{port}", "-r", "2500", "-m", str(PER_WORKER),
                                 "-l", "64", "-nr", "-recv_timeout", "10000",
                                 "-timeout", "60s", "-nostdin", "-trace_stat", "-stf",
                                 str(stat), "-fd", "3600"], tmp_path,
                                tmp_path / f"sipp{i}.log"))
        rcs = []
        for p in sipps:
            try:
                rcs.append(p.wait(70))
            except subprocess.TimeoutExpired:
                rcs.append(None)
        elapsed = time.monotonic() - t0
        for i, stat in enumerate(stats):
            st = _last_stats(stat)
            detail = f"sipp{i} rc={rcs[i]} {st}\n{_tail(tmp_path / f'sipp{i}.log', 1500)}"
            assert rcs[i] == 0, detail
            assert int(st["SuccessfulCall(C)"]) == PER_WORKER, detail
            assert int(st["FailedCall(C)"]) == 0, detail
    finally:
        for p in sipps:
            _stop(p)

    cnt = _dump(srv, "cnt")
    assert cnt["total"] == 2 * PER_WORKER, cnt
    # each socket's worker did its 10,000, and those are the two UDP receiver processes
    assert {k: v for k, v in cnt.items() if k.startswith("port-")} == \
        {f"port-{p}": PER_WORKER for p in ports}, cnt
    per_pid = {int(k[4:]): v for k, v in cnt.items() if k.startswith("pid-")}
    assert per_pid == {pid: PER_WORKER for pid in workers}, (per_pid, workers)

    # the autoexpire item (2 s) went during the load (it takes longer than that), removed by
    # the timer process's sweep, which ran the expired event route with its key
    assert elapsed > 2.0, elapsed
    assert _wait(lambda: _dump(srv, "events") == {"expired": "marker"}, 5), srv.log()[-2000:]
    assert _dump(srv, "tmp") == {}
    assert "Traceback" not in srv.log()


def test_worker_killed_mid_load_loses_no_increment_of_the_survivor(start_server, tmp_path):
    """Same load; the first socket's worker is SIGKILLed mid-run (possibly holding a bucket
    lock: the locks are robust). The master respawns it; the other worker's 10,000 requests
    all complete with exactly 10,000 increments, and the shared total equals the sum of the
    per-process counts (each increment counted once, none lost), give or take the one message
    the victim may have been killed in the middle of."""
    import signal

    port2 = free_udp_port()
    srv = start_server(CFG.replace("{port2}", str(port2)))
    ports = (srv.port, port2)
    psx = json.loads(_pykamcmd(srv, "--json", "core.psx").stdout)
    by_port = {p["DSC"].rsplit(":", 1)[1]: p["PID"] for p in psx
               if p["DSC"].startswith("udp receiver")}
    victim, survivor = by_port[str(ports[0])], by_port[str(ports[1])]
    sipps, stats = [], []
    try:
        for i, port in enumerate(ports):
            stat = tmp_path / f"k{i}-stat.csv"
            stats.append(stat)
            sipps.append(_spawn(["sipp", "-sf", str(OPTIONS_XML), "-i", "127.0.0.1", "-p", "0",
                                 f"127.0.0.1:{port}", "-r", "2500", "-m", str(PER_WORKER),
                                 "-l", "64", "-nr", "-recv_timeout", "2000",
                                 "-timeout", "60s", "-nostdin", "-trace_stat", "-stf",
                                 str(stat), "-fd", "3600"], tmp_path,
                                tmp_path / f"k{i}.log"))
        time.sleep(1.5)
        assert all(p.poll() is None for p in sipps)         # mid-run
        os.kill(victim, signal.SIGKILL)
        rcs = []
        for p in sipps:
            try:
                rcs.append(p.wait(70))
            except subprocess.TimeoutExpired:
                rcs.append(None)
    finally:
        for p in sipps:
            _stop(p)
    hit, calm = _last_stats(stats[0]), _last_stats(stats[1])
    detail = f"{rcs} {hit}\n{calm}\n{srv.log()[-2000:]}"
    assert rcs[1] == 0 and int(calm["SuccessfulCall(C)"]) == PER_WORKER, detail
    ok_hit, failed_hit = int(hit["SuccessfulCall(C)"]), int(hit["FailedCall(C)"])
    assert ok_hit + failed_hit == PER_WORKER and failed_hit <= 64, detail   # only in-flight lost

    cnt = _dump(srv, "cnt")
    per_pid = {int(k[4:]): v for k, v in cnt.items() if k.startswith("pid-")}
    assert per_pid[survivor] == PER_WORKER, (per_pid, survivor)
    assert victim in per_pid and len(per_pid) == 3, per_pid     # victim + its replacement
    # the script increments total, then pid-$pp: the SIGKILL may land between the two, so
    # the victim's last message may have counted in total only (never the other way round)
    assert sum(per_pid.values()) <= cnt["total"] <= sum(per_pid.values()) + 1, cnt
    assert cnt[f"port-{ports[1]}"] == PER_WORKER, cnt
    # the killed socket's requests: every answered one was counted, at most the in-flight
    # ones (answered by nobody) were counted without an answer
    assert ok_hit <= cnt[f"port-{ports[0]}"] <= ok_hit + failed_hit, (cnt, detail)
    restarts = _pykamcmd(srv, "stats.get_statistics", "core:child_restarts")
    assert "core:child_restarts = 1" in restarts.stdout, restarts.stdout + restarts.stderr
    assert srv.alive()
