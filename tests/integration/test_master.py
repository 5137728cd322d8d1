"""The prefork master: children, respawn, clean stop, orphan prevention, daemon mode."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sipcore.msg import parse_msg

from .conftest import ROOT, UA, child_pids, free_udp_port, options, pid_alive

pytestmark = pytest.mark.integration

CFG = """#!KAMAILIO
children=2
listen=udp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "textops"
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
    sl_send_reply("404", "Not Found");
}
"""


def _wait(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _ask(port: int) -> int:
    ua = UA()
    try:
        ua.send(options(ua, port), port)
        data = ua.recv(2.0)
        return parse_msg(data).status if data else 0
    finally:
        ua.close()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_children_forked_and_respawned_after_kill(start_server):
    srv = start_server(CFG)
    assert _wait(lambda: len(srv.children()) == 4)          # 2 UDP workers, timer, ctl
    kids = srv.children()
    victim = kids[0]
    os.kill(victim, signal.SIGKILL)
    assert _wait(lambda: victim not in srv.children() and len(srv.children()) == 4)
    assert _ask(srv.port) == 200
    assert "killed by signal SIGKILL" in srv.log()


def test_sigterm_stops_every_process_quickly(start_server):
    srv = start_server(CFG)
    assert _wait(lambda: len(srv.children()) == 4)
    kids = srv.children()
    assert os.path.exists(f"/dev/shm/pykam.{srv.proc.pid}.main")
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(5) == 0
    assert time.monotonic() - t0 < 2.0
    assert not [p for p in kids if pid_alive(p)]
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"pykam.{srv.proc.pid}.")]


def test_killed_master_leaves_no_workers(start_server):
    srv = start_server(CFG)
    assert _wait(lambda: len(srv.children()) == 4)
    kids = srv.children()
    srv.extra_pids.extend(kids)          # teardown kills leftovers by PID if this fails
    srv.proc.kill()
    srv.proc.wait(5)
    assert _wait(lambda: not [p for p in kids if pid_alive(p)], timeout=3.0)
    # the orphans unlinked the segment the dead master could not
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"pykam.{srv.proc.pid}.")]


def test_no_fork_mode_single_process(start_server):
    srv = start_server(CFG, dflag="-D")
    assert _ask(srv.port) == 200
    assert srv.children() == []


def test_daemon_mode_detaches_and_stops_by_pidfile(tmp_path):
    port = free_udp_port()
    cfg = tmp_path / "d.cfg"
    cfg.write_text(CFG.replace("{port}", str(port)))
    pidfile = tmp_path / "pykam.pid"
    rundir = tmp_path / "run"
    rundir.mkdir()
    t0 = time.monotonic()
    rc = subprocess.run([sys.executable, "-m", "sipcore", "-f", str(cfg), "-P", str(pidfile),
                         "-Y", str(rundir)], cwd=ROOT, timeout=30,
                        env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode
    assert rc == 0 and time.monotonic() - t0 < 20
    pid = int(pidfile.read_text())
    kids = child_pids(pid)
    try:
        assert pid_alive(pid) and "sipcore" in _cmdline(pid)
        assert os.getsid(pid) != os.getsid(0)              # own session: detached
        assert _ask(port) == 200
    finally:
        os.kill(pid, signal.SIGTERM)
        assert _wait(lambda: not pid_alive(pid), timeout=5.0)
        for k in kids:
            if pid_alive(k):
                os.kill(k, signal.SIGKILL)
    assert not pidfile.exists()


def _pykamcmd(srv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                           str(srv.rundir / "pykam_ctl"), *args], cwd=ROOT, timeout=15,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_psx_lists_processes_and_restart_is_counted(start_server):
    srv = start_server(CFG)
    assert _wait(lambda: (srv.rundir / "pykam_ctl").exists())
    out = _pykamcmd(srv, "--json", "core.psx")
    assert out.returncode == 0, out.stderr
    import json

    procs = json.loads(out.stdout)
    descs = [p["DSC"] for p in procs]
    assert descs[0] == "main process - attendant"
    assert sum(d.startswith("udp receiver child=") for d in descs) == 2
    assert "timer" in descs and "ctl handler" in descs
    assert procs[0]["PID"] == srv.proc.pid
    worker = next(p["PID"] for p in procs if p["DSC"].startswith("udp receiver child=0"))
    os.kill(worker, signal.SIGKILL)
    assert _wait(lambda: worker not in srv.children() and len(srv.children()) == 4)
    stats = _pykamcmd(srv, "stats.get_statistics", "core:child_restarts")
    assert "core:child_restarts = 1" in stats.stdout, stats.stdout + stats.stderr
    procs2 = json.loads(_pykamcmd(srv, "--json", "core.psx").stdout)
    assert worker not in [p["PID"] for p in procs2]
    assert _ask(srv.port) == 200


def test_pykamcmd_without_server_fails_cleanly(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                          str(tmp_path / "nope"), "core.uptime"], cwd=ROOT, timeout=15,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
