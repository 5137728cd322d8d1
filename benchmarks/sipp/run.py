#!/usr/bin/env python3
"""End-to-end stateless proxy benchmark: SIPp built-in `uac` -> pykam -> SIPp `uas`.

    python3 benchmarks/sipp/run.py [--rate 200] [--calls N] [--children 2] [--search]
                                   [--search-budget 240] [--no-kamailio] [--stateful]
                                   [--transport udp|tcp|both] [--rounds N]

Everything runs on 127.0.0.1 (free ports picked at start). For one rate it prints the calls
attempted, completed and failed (from SIPp's -trace_stat file), and the server's CPU time per
completed call: utime+stime of the master and of every descendant process (found through the
ppid field of /proc/*/stat), read from /proc/PID/stat before and after the run. Children that
exited and were reaped during the run are still counted through their parent's cutime+cstime.
With --search it steps the rate up (doubling) and then bisects to find the highest rate at which
>= 99.9 % of the calls complete, within a bounded total time.

When /usr/sbin/kamailio exists, the same scenario runs through Kamailio with an equivalent
stateless config (same script body: forward() to the R-URI, which SIPp points at the uas), and the
ratio pykam/kamailio of CPU microseconds per call is printed. --rounds N measures each server N
times, alternating them (pykam, Kamailio, pykam, ...), and reports the median round of each:
other load on the machine moves a single run by as much as a quarter, Kamailio's most.

--transport tcp runs the same stateless scenario with both legs over TCP: SIPp's uac on one
connection (-t t1) to the server, and the server relaying over one connection it opens to a SIPp
uas listening on TCP (-t t1; the script sets $du to the R-URI host with ;transport=tcp).
--transport both runs UDP then TCP for each server.

The uas is SIPp's built-in scenario plus a short pause between 180 and 200 (uas_ring_pause.xml,
--uas-pause; 0 = the unmodified built-in `-sn uas`): a proxy with several workers may relay two
back-to-back replies out of order, and the built-in uac fails a call whose 180 follows its 200.
Likewise the uac waits --call-length ms (default 20) between its ACK and its BYE: sent back to
back, two workers may relay the BYE first, and SIPp's uas fails the call (Kamailio with -n 2
lost ~3.5 % of calls that way at 500 calls/s stateful; results before this option used 0).

Every process started here (servers, SIPp) is stopped by PID and reaped, also on Ctrl-C/SIGTERM.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAMAILIO = "/usr/sbin/kamailio"
HOST = "127.0.0.1"          # never anything else
CLK_TCK = os.sysconf("SC_CLK_TCK")
PASS_RATIO = 0.999

# One script body for both servers: a stateless proxy. The R-URI that SIPp's uac sends is
# sip:service@127.0.0.1:<uas port> (SIPp sends it to the proxy with -rsa), so forward() relays it
# to the uas; replies go back by Via. OPTIONS to the proxy itself are answered (readiness probe).
CFG_TEMPLATE = """#!KAMAILIO
# written by benchmarks/sipp/run.py
debug={debug}
log_stderror=yes
children={children}
disable_tcp=yes
listen=udp:127.0.0.1:{port}
{extra}
loadmodule "sl"
loadmodule "maxfwd"
{modules}
request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (method=="OPTIONS" && uri==myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    {relay}
    exit;
}}
"""
# --transport tcp: both legs over TCP (SIPp uac -t t1 -> server -> SIPp uas -t t1). The UDP
# socket stays for the readiness probe; $du sends the relayed request over TCP to the uas.
TCP_EXTRA = """tcp_children={children}
listen=tcp:127.0.0.1:{port}
"""
TCP_DU = '$du = "sip:" + $rd + ":" + $rp + ";transport=tcp";\n    '
TRANSPORTS = ("udp", "tcp")


def render_cfg(port: int, children: int, debug: int, transport: str) -> str:
    """The config of both servers for TRANSPORT (udp: as before; tcp: TCP on, $du over TCP)."""
    if transport == "udp":
        return CFG_TEMPLATE.format(port=port, children=children, debug=debug, extra="", **MODE)
    cfg = CFG_TEMPLATE.replace("disable_tcp=yes\n", "")
    return cfg.format(port=port, children=children, debug=debug,
                      extra=TCP_EXTRA.format(children=children, port=port),
                      modules=MODE["modules"] + 'loadmodule "pv"\n',
                      relay=TCP_DU + MODE["relay"])


# --stateful: the same with tm: every request is relayed in a transaction (2xx ACKs statelessly)
STATELESS = {"modules": "", "relay": "forward();"}
MODE = STATELESS
STATEFUL = {"modules": 'loadmodule "tm"\n',
            "relay": "if (!t_relay()) {{ sl_reply_error(); }}".replace("{{", "{").replace("}}", "}")}


# --------------------------------------------------------------------------- processes

_started: list[subprocess.Popen] = []       # every child process, for cleanup by PID
# (pid, start time) of every descendant seen per started process: if a server's master dies
# first, its orphaned workers are still found and stopped
_seen: dict[int, set[tuple[int, str | None]]] = {}


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'
    rest = data.rpartition(")")[2].split()
    return rest          # rest[0] = state (field 3), rest[1] = ppid (field 4), ...


def descendants(root: int) -> list[int]:
    """PIDs of all live descendants of root, from the ppid field of /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = _stat_fields(int(name))
        if f is None:
            continue
        children.setdefault(int(f[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in children.get(p, ()):
            out.append(c)
            todo.append(c)
    return out


@dataclass
class CpuSample:
    ticks: int                 # utime+stime(+cutime+cstime) over the tree, clock ticks
    processes: int
    threads: int
    per_pid: dict[int, int] = field(default_factory=dict)


def cpu_sample(root: int) -> CpuSample:
    """utime+stime over root and all its descendants (each process' stat covers all its threads,
    live and exited; /proc/PID/task lists the live ones), plus cutime+cstime: the CPU of children
    already reaped, so a worker that died and was respawned mid-run is not lost."""
    total = procs = threads = 0
    per: dict[int, int] = {}
    for pid in [root] + descendants(root):
        f = _stat_fields(pid)
        if f is None:
            continue
        if pid != root:
            _seen.setdefault(root, set()).add((pid, f[19]))
        # fields 14..17 (1-based) = utime stime cutime cstime -> rest[11..14]; a zombie still
        # reports its times (they move to the parent's cutime/cstime only when it is reaped)
        t = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        per[pid] = t
        total += t
        if f[0] == "Z":
            continue
        procs += 1
        try:
            threads += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return CpuSample(total, procs, threads, per)


def stop_process(proc: subprocess.Popen, term_timeout: float = 3.0) -> None:
    """SIGTERM the process (a server master stops its children), wait, SIGKILL what is left
    (the process and any descendant found beforehand), reap."""
    # (pid, start time): never SIGKILL a recycled PID
    tree = {(pid, _starttime(pid)) for pid in descendants(proc.pid)} | _seen.pop(proc.pid, set())
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(term_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    else:
        proc.wait()
    deadline = time.monotonic() + 2.0
    for pid, start in tree:
        while time.monotonic() < deadline and _alive(pid, start):
            time.sleep(0.05)
        if _alive(pid, start):
            print(f"killing leftover pid {pid} of {proc.pid}", file=sys.stderr)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if proc in _started:
        _started.remove(proc)


def _starttime(pid: int) -> str | None:
    f = _stat_fields(pid)
    return f[19] if f else None          # field 22 (1-based): start time since boot


def _alive(pid: int, start: str | None = None) -> bool:
    f = _stat_fields(pid)
    return f is not None and f[0] != "Z" and (start is None or f[19] == start)


def cleanup_all() -> None:
    for proc in list(reversed(_started)):
        try:
            stop_process(proc)
        except (OSError, subprocess.SubprocessError) as exc:    # keep stopping the others
            print(f"cleanup: pid {proc.pid}: {exc}", file=sys.stderr)


def spawn(cmd: list[str], log: Path, **kw) -> subprocess.Popen:
    # own session: a terminal Ctrl-C reaches only this runner, which stops them in order
    with open(log, "ab") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    _started.append(proc)
    return proc


# --------------------------------------------------------------------------- servers

def options_probe(port: int, timeout: float) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.settimeout(0.3)
    lport = s.getsockname()[1]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            cid = uuid.uuid4().hex
            msg = (f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {HOST}:{lport};branch=z9hG4bK{cid[:12]};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:bench@{HOST}>;tag={cid[:8]}\r\n"
                   f"To: <sip:{HOST}:{port}>\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\n"
                   f"Content-Length: 0\r\n\r\n")
            s.sendto(msg.encode(), (HOST, port))
            try:
                data = s.recv(65535)
                if data.startswith(b"SIP/2.0 200"):
                    return True
            except TimeoutError:
                pass
        return False
    finally:
        s.close()


def kamailio_has_tlsf(binary: str) -> bool:
    try:
        out = subprocess.run([binary, "-v"], check=False, capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "TLSF_MALLOC" in out


@dataclass
class ServerRun:
    name: str
    proc: subprocess.Popen
    port: int
    log: Path
    transport: str = "udp"      # of the SIPp legs (the UDP socket is always there for probes)


def start_pykam(work: Path, children: int, debug: int, root: Path = ROOT,
                transport: str = "udp") -> ServerRun:
    port = free_udp_port()
    cfg = work / "pykam.cfg"
    cfg.write_text(render_cfg(port, children, debug, transport))
    log = work / "pykam.log"
    rundir = work / "pykam-run"
    rundir.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "sipcore", "-DD", "-E", "-f", str(cfg), "-Y", str(rundir),
           "-n", str(children), "-l", f"udp:{HOST}:{port}", "-m", str(SHM_MB)]
    if transport == "tcp":
        cmd += ["-l", f"tcp:{HOST}:{port}"]
    proc = spawn(cmd, log, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    srv = ServerRun("pykam", proc, port, log, transport)
    _wait_ready(srv)
    return srv


def start_kamailio(work: Path, children: int, debug: int, tlsf: bool,
                   transport: str = "udp") -> ServerRun:
    port = free_udp_port()
    rundir = work / "kamailio-run"
    rundir.mkdir(exist_ok=True)
    cfg = work / "kamailio.cfg"
    cfg.write_text(render_cfg(port, children, debug, transport))
    log = work / "kamailio.log"
    # 256 MB of shm: with 64 MB, Kamailio's tm ran out of shared memory at 500 calls/s
    # stateful ("build_cell(): could not allocate shared memory") and failed ~3.6 % of calls
    cmd = [KAMAILIO, "-DD", "-E", "-f", str(cfg), "-Y", str(rundir), "-n", str(children),
           "-m", str(SHM_MB), "-M", "8"]
    if tlsf:
        cmd[1:1] = ["-x", "tlsf"]
    proc = spawn(cmd, log, cwd=work)
    srv = ServerRun("kamailio", proc, port, log, transport)
    _wait_ready(srv)
    return srv


def _wait_ready(srv: ServerRun) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise RuntimeError(f"{srv.name} exited with {srv.proc.returncode}:\n"
                               f"{srv.log.read_text(errors='replace')[-3000:]}")
        if options_probe(srv.port, 0.5):
            return
    raise RuntimeError(f"{srv.name} does not answer OPTIONS on {HOST}:{srv.port}:\n"
                       f"{srv.log.read_text(errors='replace')[-3000:]}")


# --------------------------------------------------------------------------- SIPp

@dataclass
class Result:
    server: str
    rate: float
    calls: int
    attempted: int = 0
    completed: int = 0
    failed: int = 0
    wall: float = 0.0
    cpu_ticks: int = 0
    processes: int = 0
    threads: int = 0
    sipp_rc: int | None = None

    @property
    def cpu_us_per_call(self) -> float | None:
        if not self.completed:
            return None
        return self.cpu_ticks * 1e6 / CLK_TCK / self.completed

    @property
    def completed_ratio(self) -> float:
        return self.completed / self.calls if self.calls else 0.0

    @property
    def passed(self) -> bool:
        # >= 99.9 % of the calls asked for completed, and the run kept (roughly) to schedule:
        # a proxy that only completes calls by queueing them far behind the offered rate is not
        # sustaining that rate
        nominal = self.calls / self.rate
        return self.completed_ratio >= PASS_RATIO and self.wall <= nominal * 1.5 + 5

    def line(self) -> str:
        us = self.cpu_us_per_call
        us_s = f"{us:8.1f}" if us is not None else "     n/a"
        return (f"{self.server:12s} rate {self.rate:7.1f}/s  attempted {self.attempted:6d}  "
                f"completed {self.completed:6d}  failed {self.failed:5d}  "
                f"({100 * self.completed_ratio:6.2f} %)  wall {self.wall:6.1f} s  "
                f"cpu {self.cpu_ticks / CLK_TCK:6.2f} s  cpu/call {us_s} us  "
                f"[{self.processes} proc, {self.threads} thr]")


UAS_SCENARIO = Path(__file__).resolve().parent / "uas_ring_pause.xml"
UAS_PAUSE_MS = 20
CALL_LENGTH_MS = 20     # the uac's pause between ACK and BYE (SIPp -d)
SHM_MB = 256            # -m for both servers


class Uas:
    """SIPp's built-in uas with a pause of UAS_PAUSE_MS between 180 and 200 (see the xml: with
    several workers a proxy may reorder back-to-back replies, and the built-in uac fails a call
    that sees its 180 after the 200); UAS_PAUSE_MS = 0 runs the unmodified built-in `-sn uas`."""

    def __init__(self, work: Path, transport: str = "udp") -> None:
        self.port = free_udp_port()
        log = work / f"sipp-uas-{self.port}.log"
        scen = (["-sf", str(UAS_SCENARIO), "-d", str(UAS_PAUSE_MS)] if UAS_PAUSE_MS > 0
                else ["-sn", "uas"])
        self.proc = spawn(["sipp", *scen, "-i", HOST, "-p", str(self.port), "-nostdin",
                           "-bind_local", *_sipp_transport(transport)], log, cwd=work)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError(f"sipp uas exited with {self.proc.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        stop_process(self.proc)


def _sipp_transport(transport: str) -> list[str]:
    """SIPp's -t option: UDP on one socket (u1), TCP on one connection (t1)."""
    return ["-t", "t1"] if transport == "tcp" else ["-t", "u1"]


def read_sipp_stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def run_uac(work: Path, srv: ServerRun, rate: float, calls: int,
            recv_timeout_ms: int = 5000) -> Result:
    """One measurement with a fresh uas (no leftovers of an earlier overloaded step)."""
    uas = Uas(work, srv.transport)
    try:
        return _run_uac(work, srv, uas, rate, calls, recv_timeout_ms)
    finally:
        uas.stop()


def _run_uac(work: Path, srv: ServerRun, uas: Uas, rate: float, calls: int,
             recv_timeout_ms: int) -> Result:
    tag = f"{srv.name}-{srv.transport}-{int(rate)}-{calls}-{uuid.uuid4().hex[:6]}"
    stat = work / f"uac-{tag}.csv"
    nominal = calls / rate
    cmd = ["sipp", "-sn", "uac", "-i", HOST, "-p", str(free_udp_port()), "-bind_local",
           "-rsa", f"{HOST}:{srv.port}", f"{HOST}:{uas.port}",
           "-r", f"{rate:g}", "-rp", "1000", "-m", str(calls), "-l", str(max(1000, calls)),
           "-recv_timeout", str(recv_timeout_ms), "-timeout", f"{int(nominal * 2 + 20)}s",
           "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "3600",
           "-d", str(CALL_LENGTH_MS),
           *_sipp_transport(srv.transport)]
    before = cpu_sample(srv.proc.pid)
    t0 = time.monotonic()
    proc = spawn(cmd, work / f"uac-{tag}.log", cwd=work)
    try:
        rc = proc.wait(nominal * 2 + 40)
    except subprocess.TimeoutExpired:
        rc = None
    wall = time.monotonic() - t0
    after = cpu_sample(srv.proc.pid)
    stop_process(proc)
    st = read_sipp_stats(stat)
    label = srv.name if srv.transport == "udp" else f"{srv.name}/{srv.transport}"
    res = Result(label, rate, calls, sipp_rc=rc, wall=wall,
                 cpu_ticks=after.ticks - before.ticks,
                 processes=after.processes, threads=after.threads)
    res.attempted = int(st.get("OutgoingCall(C)", 0) or 0)
    res.completed = int(st.get("SuccessfulCall(C)", 0) or 0)
    res.failed = int(st.get("FailedCall(C)", 0) or 0)
    if srv.proc.poll() is not None:
        raise RuntimeError(f"{srv.name} died during the run (rc {srv.proc.returncode}); "
                           f"log: {srv.log}")
    return res


def search(work: Path, srv: ServerRun, start: float, step_seconds: float,
           budget: float, min_calls: int, measure: Callable[..., Result] | None = None
           ) -> tuple[Result | None, list[Result]]:
    """Double the rate while it passes, then bisect between the last pass and the first failure
    until they are within 10 % or the time budget is spent. measure(work, srv, rate, calls)
    runs one step (default run_uac; benchmarks/register/run.py passes its REGISTER run)."""
    measure = measure or run_uac
    t_end = time.monotonic() + budget
    results: list[Result] = []
    best: Result | None = None
    lo, hi = 0.0, None
    rate = start

    def step(r: float) -> Result:
        calls = max(min_calls, int(r * step_seconds))
        res = measure(work, srv, r, calls)
        results.append(res)
        print("  " + res.line() + ("  PASS" if res.passed else "  FAIL"), flush=True)
        time.sleep(1.0 if res.passed else 3.0)     # let the server's queue drain
        return res

    def fits(r: float) -> bool:
        return time.monotonic() + max(min_calls / r, step_seconds) * 1.5 + 4 < t_end

    while fits(rate):
        res = step(rate)
        if res.passed:
            best, lo = res, rate
            if hi is not None:
                break
            rate *= 2
        else:
            hi = rate
            if lo == 0.0:
                rate /= 2          # the start rate is already too high: go down
                if rate < 5:
                    break
                continue
            break
    while hi is not None and lo > 0 and hi / lo > 1.1:
        mid = round((lo + hi) / 2)
        if not fits(mid):
            break
        res = step(mid)
        if res.passed:
            best, lo = res, mid
        else:
            hi = mid
    return best, results


# --------------------------------------------------------------------------- main

def median_result(rs: list[Result]) -> Result:
    """The round whose CPU per call is the median (the lower middle one for an even count);
    rounds without a figure sort last."""
    ordered = sorted(rs, key=lambda r: (r.cpu_us_per_call is None, r.cpu_us_per_call or 0.0))
    return ordered[(len(ordered) - 1) // 2]


def git_commit(root: Path = ROOT) -> str:
    if not (root / ".git").exists():
        return f"unknown ({root} is not a git checkout)"
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             check=False, capture_output=True, text=True, timeout=10)
        # GIT_OPTIONAL_LOCKS=0: status must not refresh (write) the index of a shared checkout
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               check=False, capture_output=True, text=True, timeout=10,
                               env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}).stdout.strip()
        return out.stdout.strip() + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def sipp_version() -> str:
    try:
        out = subprocess.run(["sipp", "-v"], check=False, capture_output=True, text=True,
                             timeout=10)
        for line in (out.stdout + out.stderr).splitlines():
            if "SIPp v" in line:
                return line.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    global UAS_PAUSE_MS, CALL_LENGTH_MS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=200, help="calls per second (default 200)")
    ap.add_argument("--calls", type=int, default=0,
                    help="calls per measurement (default: 10 s worth at --rate, at least 1000)")
    ap.add_argument("--children", type=int, default=2,
                    help="UDP workers (-n) for both servers (default 2)")
    ap.add_argument("--search", action="store_true",
                    help="also find the highest rate with >= 99.9 %% of calls completed")
    ap.add_argument("--search-start", type=float, default=0,
                    help="first rate of the search (default: --rate)")
    ap.add_argument("--search-step", type=float, default=5.0,
                    help="seconds of calls per search step (default 5)")
    ap.add_argument("--search-budget", type=float, default=240.0,
                    help="bound on the search time per server, seconds (default 240)")
    ap.add_argument("--search-kamailio", action="store_true",
                    help="run the search for Kamailio too (SIPp itself may be the limit)")
    ap.add_argument("--no-kamailio", action="store_true", help="skip Kamailio even if installed")
    ap.add_argument("--uas-pause", type=int, default=UAS_PAUSE_MS,
                    help="ms between the uas' 180 and 200 (default %(default)s; 0 = SIPp's "
                         "unmodified built-in uas)")
    ap.add_argument("--call-length", type=int, default=CALL_LENGTH_MS,
                    help="ms between the uac's ACK and BYE (SIPp -d, default %(default)s; 0 "
                         "sends them back to back: two workers may then relay the BYE first "
                         "and SIPp's uas fails the call)")
    ap.add_argument("--only", choices=("pykam", "kamailio"), help="run one server only")
    ap.add_argument("--kamailio", default=KAMAILIO, help=argparse.SUPPRESS)
    ap.add_argument("--pykam-root", type=Path, default=ROOT,
                    help="checkout to run pykam from (default: this one)")
    ap.add_argument("--debug", type=int, default=1, help="debug= in both configs (default 1)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    ap.add_argument("--stateful", action="store_true",
                    help="relay with tm's t_relay() instead of stateless forward()")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure each server this many times, alternating servers (a fresh "
                         "start each round), and report the median CPU per call (default 1): "
                         "load from elsewhere on the machine moves single runs by +-25 %%")
    ap.add_argument("--transport", choices=("udp", "tcp", "both"), default="udp",
                    help="SIPp legs over UDP (default), TCP (one connection each side: -t t1), "
                         "or both, one after the other")
    args = ap.parse_args(argv)
    global MODE
    MODE = STATEFUL if args.stateful else STATELESS

    if shutil.which("sipp") is None:
        print("sipp not found (apt-get install sip-tester)", file=sys.stderr)
        return 2
    calls = args.calls or max(1000, int(args.rate * 10))
    UAS_PAUSE_MS = args.uas_pause
    CALL_LENGTH_MS = args.call_length
    kam = None if args.no_kamailio or not os.access(args.kamailio, os.X_OK) else args.kamailio

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started with SIGINT ignored

    work = Path(tempfile.mkdtemp(prefix="pykam-sipp-bench-"))
    print(f"machine : {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
          f"{cpu_model()}, {platform.system()} {platform.release()}")
    print(f"python  : {platform.python_implementation()} {platform.python_version()} "
          f"({sys.executable})")
    print(f"commit  : {git_commit(args.pykam_root.resolve())} ({args.pykam_root.resolve()})")
    print(f"sipp    : {sipp_version()}")
    tlsf = False
    if kam:
        tlsf = kamailio_has_tlsf(kam)
        ver = subprocess.run([kam, "-v"], check=False, capture_output=True,
                             text=True).stdout.splitlines()
        print(f"kamailio: {ver[0].replace('version:', '').strip() if ver else '?'} "
              f"(-x tlsf {'used' if tlsf else 'not supported by this build: default shm manager'})")
    else:
        print("kamailio: not run" + (" (--no-kamailio)" if args.no_kamailio
                                     else f" ({args.kamailio} not found)"))
    uas_desc = (f"sipp uas (built-in + {UAS_PAUSE_MS} ms ringing pause)" if UAS_PAUSE_MS > 0
                else "sipp -sn uas")
    relay = "stateful t_relay()" if args.stateful else "stateless forward()"
    transports = TRANSPORTS if args.transport == "both" else (args.transport,)
    rounds = max(1, args.rounds)
    print(f"scenario: sipp -sn uac (-d {CALL_LENGTH_MS} ms between ACK and BYE) -> server "
          f"({relay}, children={args.children}) "
          f"-> {uas_desc}, all on {HOST}; {calls} calls at {args.rate:g}/s"
          + (f", {rounds} rounds alternating servers" if rounds > 1 else "") + "; over "
          + " and ".join("UDP" if t == "udp" else "TCP (sipp -t t1 both sides, "
                         f"tcp_children={args.children})" for t in transports))
    print(f"work dir: {work}")
    print(flush=True)

    rc = 0
    rounds_of: dict[str, list[Result]] = {}
    best: dict[str, Result | None] = {}
    try:
        servers = [("pykam", None)] + ([("kamailio", kam)] if kam else [])
        if args.only:
            servers = [s for s in servers if s[0] == args.only]
        runs = [(r, s, t) for r in range(rounds) for s in servers for t in transports]
        for rnd, (name, _), transport in runs:
            label = name if transport == "udp" else f"{name}/{transport}"
            sub = work / (label.replace("/", "-") + (f"-{rnd + 1}" if rounds > 1 else ""))
            sub.mkdir()
            if name == "pykam":
                srv = start_pykam(sub, args.children, args.debug, args.pykam_root.resolve(),
                                  transport)
            else:
                srv = start_kamailio(sub, args.children, args.debug, tlsf, transport)
            try:
                idle0 = cpu_sample(srv.proc.pid)
                time.sleep(1.0)
                idle = cpu_sample(srv.proc.pid)
                print(f"{label}: pid {srv.proc.pid}, {idle.processes} processes "
                      f"({idle.threads} threads), idle CPU "
                      f"{(idle.ticks - idle0.ticks) * 1000 / CLK_TCK:.0f} ms/s", flush=True)
                res = run_uac(sub, srv, args.rate, calls)
                rounds_of.setdefault(label, []).append(res)
                print("  " + res.line(), flush=True)
                if args.search and rnd == 0 and (name == "pykam" or args.search_kamailio):
                    print(f"{label}: searching the highest rate with >= {100 * PASS_RATIO:.1f} % "
                          f"completed (budget {args.search_budget:g} s)", flush=True)
                    b, _ = search(sub, srv, args.search_start or args.rate,
                                  args.search_step, args.search_budget, min_calls=500)
                    best[label] = b
            finally:
                stop_process(srv.proc)
                if "Traceback" in srv.log.read_text(errors="replace"):
                    print(f"WARNING: {label} log has a Traceback: {srv.log}", flush=True)
                    args.keep = True
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process started", file=sys.stderr)
        rc = 130
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        rc = 1
        args.keep = True
    finally:
        cleanup_all()

    # per server: the round with the median CPU per call (the only one when rounds == 1)
    results = {name: median_result(rs) for name, rs in rounds_of.items()}
    print()
    print("summary")
    for name, res in results.items():
        us = res.cpu_us_per_call
        rs = rounds_of[name]
        print(f"  {name:12s}: attempted {res.attempted}, completed {res.completed}, failed "
              f"{res.failed} at {res.rate:g} calls/s; CPU per call "
              f"{'n/a' if us is None else f'{us:.1f} us'} (all {res.processes} processes)"
              + (f"; median of {len(rs)} rounds: "
                 + ", ".join("n/a" if r.cpu_us_per_call is None else f"{r.cpu_us_per_call:.0f}"
                             for r in rs) + " us" if len(rs) > 1 else ""))
    for name, b in best.items():
        print(f"  {name:12s}: highest rate with >= {100 * PASS_RATIO:.1f} % completed: "
              + (f"{b.rate:g} calls/s ({b.completed}/{b.calls}, {b.cpu_us_per_call:.1f} us/call)"
                 if b else "none found within the budget"))
    for t in transports:
        sfx = "" if t == "udp" else f"/{t}"
        p, k = results.get("pykam" + sfx), results.get("kamailio" + sfx)
        if p and k and p.cpu_us_per_call and k.cpu_us_per_call:
            print(f"  ratio pykam/kamailio CPU per call over {t.upper()} at {p.rate:g} "
                  f"calls/s: {p.cpu_us_per_call / k.cpu_us_per_call:.1f}x")
        if rc == 0 and any(r.completed_ratio < PASS_RATIO
                           for r in rounds_of.get("pykam" + sfx, [])):
            rc = 1
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
