"""SIPp's built-in uac -> pykam (stateless forward(), children=2) -> SIPp's uas.

Acceptance of the runtime milestone: 1,000 calls at 100 calls/s complete with 0 failures, and the
server still answers an OPTIONS afterwards. Uses only the command line and the wire, so it holds
for the single-process server and for the prefork master alike. Skipped without /usr/bin/sipp
(apt-get install sip-tester). Every SIPp process is stopped and reaped by PID.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sipcore.msg import parse_msg
from tests.services import needs_sipp

from .conftest import ROOT, UA, free_udp_port, options

pytestmark = [
    pytest.mark.integration,
    needs_sipp,
]

CALLS = 1000
RATE = 100
# SIPp's built-in uas plus a 50 ms pause between 180 and 200: with two workers the proxy may
# relay back-to-back replies out of order, and the built-in uac fails a call whose 180 arrives
# after its 200 (see the comment in the xml)
UAS_XML = Path(__file__).resolve().parent / "sipp" / "uas_ring_pause.xml"

# SIPp sends R-URI sip:service@127.0.0.1:<uas port> to the proxy (-rsa): forward() relays it to
# the uas, replies come back by Via. OPTIONS to the proxy itself are answered.
CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
listen=udp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "maxfwd"
request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (method=="OPTIONS" && uri==myself) { sl_send_reply("200", "Keepalive"); exit; }
    if (!forward()) { sl_send_reply("503", "Service Unavailable"); }
    exit;
}
"""


def _spawn(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "wb") as logf:
        return subprocess.Popen(cmd, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _last_stats(path: Path) -> dict[str, str]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert len(rows) >= 2, f"empty SIPp statistics file {path}"
    return dict(zip(rows[0], rows[-1]))


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else f"({path} missing)"


def _run_calls(srv, tmp_path: Path, calls: int, rate: int, during=None) -> None:
    """SIPp uac -> SRV -> SIPp uas for CALLS calls at RATE; DURING(uac) runs while the calls
    are being made. Asserts every call completed."""
    uas_port, uac_port = free_udp_port(), free_udp_port()
    uas_log, uac_log = tmp_path / "uas.log", tmp_path / "uac.log"
    stat, errs = tmp_path / "uac-stat.csv", tmp_path / "uac-errors.log"
    uas = _spawn(["sipp", "-sf", str(UAS_XML), "-d", "50", "-i", "127.0.0.1",
                  "-p", str(uas_port), "-bind_local", "-nostdin"], tmp_path, uas_log)
    uac = None
    try:
        time.sleep(0.3)
        assert uas.poll() is None, f"sipp uas exited: {_tail(uas_log)}"
        uac = _spawn(["sipp", "-sn", "uac", "-i", "127.0.0.1", "-p", str(uac_port),
                      "-bind_local", "-rsa", f"127.0.0.1:{srv.port}", f"127.0.0.1:{uas_port}",
                      "-r", str(rate), "-m", str(calls), "-l", str(calls),
                      # 20 ms between ACK and BYE: sent back to back, two workers may relay
                      # the BYE before the ACK and SIPp's uas aborts the call (a real UA
                      # waits for the call's length)
                      "-d", "20",
                      "-recv_timeout", "5000", "-timeout", "25s",
                      "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "3600",
                      "-trace_err", "-error_file", str(errs)], tmp_path, uac_log)
        if during is not None:
            during(uac)
        try:
            rc = uac.wait(30)
        except subprocess.TimeoutExpired:
            rc = None
        st = _last_stats(stat)
        detail = (f"sipp rc={rc}\nstats: created={st.get('OutgoingCall(C)')} "
                  f"ok={st.get('SuccessfulCall(C)')} failed={st.get('FailedCall(C)')} "
                  f"retrans={st.get('Retransmissions(C)')}\nerrors:\n{_tail(errs)}\n"
                  f"uac:\n{_tail(uac_log, 1500)}\npykam:\n{srv.log()[-3000:]}")
        assert rc == 0, detail                       # SIPp: 0 = all calls successful
        assert int(st["OutgoingCall(C)"]) == calls, detail
        assert int(st["SuccessfulCall(C)"]) == calls, detail
        assert int(st["FailedCall(C)"]) == 0, detail
    finally:
        if uac is not None:
            _stop(uac)
        _stop(uas)


def _options_answered(srv) -> None:
    assert srv.alive(), srv.log()[-3000:]
    ua = UA()
    try:
        ua.send(options(ua, srv.port), srv.port)
        data = ua.recv(3.0)
        assert data is not None, srv.log()[-3000:]
        rpl = parse_msg(data)
        assert rpl.status == 200 and rpl.cseq.method == "OPTIONS"
    finally:
        ua.close()


def test_sipp_uac_through_stateless_proxy_to_uas(start_server, tmp_path):
    srv = start_server(CFG)
    _run_calls(srv, tmp_path, CALLS, RATE)
    _options_answered(srv)
    assert "Traceback" not in srv.log()


def test_worker_killed_under_load_is_respawned_and_calls_complete(start_server, tmp_path):
    srv = start_server(CFG)
    killed: list[int] = []

    def kill_a_worker(uac: subprocess.Popen) -> None:
        time.sleep(2.0)                                  # mid-run: ~200 calls made
        assert uac.poll() is None
        psx = subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                              str(srv.rundir / "pykam_ctl"), "--json", "core.psx"], cwd=ROOT,
                             capture_output=True, text=True, timeout=15,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        victim = next(p["PID"] for p in json.loads(psx.stdout)
                      if p["DSC"].startswith("udp receiver child=0"))
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    _run_calls(srv, tmp_path, 500, RATE, during=kill_a_worker)
    assert killed and killed[0] not in srv.children()
    assert len(srv.children()) == 4                      # 2 workers, timer, ctl: respawned
    out = subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                          str(srv.rundir / "pykam_ctl"), "stats.get_statistics",
                          "core:child_restarts"], cwd=ROOT, capture_output=True, text=True,
                         timeout=15, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "core:child_restarts = 1" in out.stdout, out.stdout + out.stderr
    _options_answered(srv)


def _processes_using(text: str) -> list[str]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                cwd = os.readlink(f"/proc/{name}/cwd")
            except OSError:
                continue
            if text in cmd or cwd.startswith(text):
                out.append(f"{name}: {cmd}")
    return out


def test_benchmark_runner_smoke(tmp_path):
    """benchmarks/sipp/run.py measures a short run and leaves no process behind."""
    runner = ROOT / "benchmarks" / "sipp" / "run.py"
    proc = subprocess.run([sys.executable, str(runner), "--rate", "200", "--calls", "400",
                           "--no-kamailio"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    m = re.search(r"pykam\s*: attempted (\d+), completed (\d+), failed (\d+) at 200 calls/s; "
                  r"CPU per call ([\d.]+) us", out)
    assert m, out
    assert (int(m[1]), int(m[2]), int(m[3])) == (400, 400, 0), out
    assert float(m[4]) > 0, out
    work = re.search(r"work dir: (\S+)", out)[1]
    assert not Path(work).exists(), out                # temp dir removed
    left = _processes_using(work)
    assert not left, f"processes left behind: {left}"


STATEFUL_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=4
listen=udp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "maxfwd"
loadmodule "tm"
loadmodule "xlog"
request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (method=="OPTIONS" && uri==myself) { sl_send_reply("200", "Keepalive"); exit; }
    xinfo("seen pid=$pp ci=$ci what=$rm\\n");
    if (!t_relay()) { sl_reply_error(); }
    exit;
}
reply_route {
    xinfo("seen pid=$pp ci=$ci what=$rs\\n");
}
"""


def test_stateful_children4_messages_of_one_transaction_on_different_workers(start_server,
                                                                             tmp_path):
    """tm state is in shm: with 4 workers, the INVITE, its replies and the ACK/BYE of one call
    land on different workers and still match (every call completes)."""
    srv = start_server(STATEFUL_CFG)
    _run_calls(srv, tmp_path, 300, RATE)
    pids_by_call: dict[str, set[str]] = {}
    for m in re.finditer(r"seen pid=(\d+) ci=(\S+) what=", srv.log()):
        pids_by_call.setdefault(m[2], set()).add(m[1])
    assert len(pids_by_call) >= 300
    spread = [ci for ci, pids in pids_by_call.items() if len(pids) > 1]
    assert len(spread) > 30, f"only {len(spread)} calls handled by more than one worker"
    assert len({p for pids in pids_by_call.values() for p in pids}) == 4
    _options_answered(srv)
    assert "Traceback" not in srv.log()
