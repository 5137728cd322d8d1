#!/usr/bin/env python3
"""REGISTER benchmark: SIPp registers 10,000 distinct users with pykam (and Kamailio).

    python3 benchmarks/register/run.py [--rate 500] [--users 10000] [--children 2]
                                       [--case noauth-0] [--case auth-2] ... [--db mysql]
                                       [--search] [--search-budget 120] [--no-kamailio]

Cases (repeat --case; default all four): `noauth-0`, `noauth-2`, `auth-0`, `auth-2` =
registrar only or digest authentication (auth_check/auth_challenge against the `subscriber`
table) x usrloc db_mode 0 (memory) or 2 (write-back to the `location` table). Each case
starts a server on a fresh database (MariaDB database / PostgreSQL schema / SQLite file made
by the runner with sipcore.db.create_all, Kamailio's table names and version rows, and
--users subscribers; dropped at the end) and runs SIPp with benchmarks/register/register.xml
(REGISTER -> 200) or register_auth.xml (REGISTER -> 401 -> REGISTER with credentials ->
200), users taken in order from an injection CSV the runner writes (user, password).

A "call" of SIPp is one registration; with auth it is two REGISTERs (the 401 round and the
authenticated one), the CPU per REGISTER message is printed beside it. The first measurement
registers every user once (--users calls: INSERTs into usrloc), search steps re-register
them (refreshes). CPU: utime+stime of the server's master and every descendant from /proc
(benchmarks/sipp/run.py's cpu_sample); in db_mode 2 the reading after the run is taken once
usrloc's timer has written the run back (timer_interval + 2 s later; the idle CPU of that
wait, measured before the run, is subtracted). The database server's own CPU is not counted
(for either server). After each case the server is stopped and, in db_mode 2, the rows of
`location` are counted (SIGTERM / shutdown flush: all users must be there).

Kamailio (/usr/sbin/kamailio) runs the same config for each case it can: db_mode 0 without
auth always; cases with a database only when its db module is installed (Debian:
kamailio-mysql-modules / kamailio-postgres-modules) and --db is not sqlite (no db_sqlite in
the Debian build used here); otherwise the output says it was skipped and why.

Everything runs on 127.0.0.1. Every process started (servers, SIPp) is stopped by PID and
reaped, also on Ctrl-C/SIGTERM.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

# the SIPp runner's process, CPU and server helpers (one implementation for both benchmarks)
_spec = importlib.util.spec_from_file_location("sipp_bench",
                                               ROOT / "benchmarks" / "sipp" / "run.py")
assert _spec is not None and _spec.loader is not None
sb = importlib.util.module_from_spec(_spec)
sys.modules["sipp_bench"] = sb           # dataclasses look their module up there
_spec.loader.exec_module(sb)

HOST = sb.HOST
CLK_TCK = sb.CLK_TCK
KAM_MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
MY_ADMIN = "mysql+pymysql://root:@127.0.0.1:3306/test"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TIMER_INTERVAL = 5              # usrloc timer_interval in db_mode 2 (s)
REALM = HOST

CFG_TEMPLATE = """#!KAMAILIO
# written by benchmarks/register/run.py ({case})
debug={debug}
log_stderror=yes
children={children}
disable_tcp=yes
listen=udp:127.0.0.1:{port}
loadmodule "sl"
{db_module}
loadmodule "usrloc"
loadmodule "registrar"
{auth_modules}
modparam("usrloc", "db_mode", {db_mode})
{usrloc_params}
{auth_params}
request_route {{
    if (method=="OPTIONS" && uri==myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (method!="REGISTER") {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
{auth_block}
    if (!save("location")) {{
        sl_reply_error();
    }}
    exit;
}}
"""

AUTH_BLOCK = """    if (!auth_check("$fd", "subscriber", "1")) {
        auth_challenge("$fd", "0");
        exit;
    }"""


@dataclass(frozen=True)
class Case:
    auth: bool
    db_mode: int

    @property
    def name(self) -> str:
        return f"{'auth' if self.auth else 'noauth'}-{self.db_mode}"

    @property
    def needs_db(self) -> bool:
        return self.auth or self.db_mode != 0

    @property
    def describe(self) -> str:
        what = "digest auth + save()" if self.auth else "save() only"
        return f"{what}, usrloc db_mode {self.db_mode}"


ALL_CASES = [Case(False, 0), Case(False, 2), Case(True, 0), Case(True, 2)]


def parse_case(text: str) -> Case:
    for c in ALL_CASES:
        if c.name == text:
            return c
    raise argparse.ArgumentTypeError(f"unknown case {text} (one of "
                                     f"{', '.join(c.name for c in ALL_CASES)})")


# --------------------------------------------------------------------------- databases

def _db_modules(kind: str) -> tuple[str, str]:
    """(pykam module, Kamailio module file) for a --db kind."""
    return {"mysql": ("db_mysql", "db_mysql.so"), "postgres": ("db_postgres", "db_postgres.so"),
            "sqlite": ("db_sqlite", "db_sqlite.so")}[kind]


@contextmanager
def bench_db(kind: str, work: Path, tag: str, users: int) -> Iterator[str]:
    """A fresh database with Kamailio's tables and USERS subscribers (ha1 = MD5(user:realm:pw));
    yields its Kamailio-style db_url and drops it afterwards."""
    from sqlalchemy import create_engine, insert, text

    from sipcore import db
    from sipcore.db import schema

    name = f"pykam_bench_{tag}_{uuid.uuid4().hex[:8]}"
    admin = None
    if kind == "sqlite":
        url = f"sqlite:///{work / (name + '.sqlite')}"
    else:
        admin = create_engine(MY_ADMIN if kind == "mysql" else PG_ADMIN,
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if kind == "mysql":
                conn.execute(text(f"CREATE DATABASE `{name}`"))
            else:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = (f"mysql://root@127.0.0.1:3306/{name}" if kind == "mysql"
               else f"postgres://postgres@127.0.0.1:5432/{name}")
    try:
        db.create_all(url, ["subscriber", "location"])
        rows = []
        for user, pw in user_list(users):
            ha1 = hashlib.md5(f"{user}:{REALM}:{pw}".encode()).hexdigest()
            ha1b = hashlib.md5(f"{user}@{REALM}:{REALM}:{pw}".encode()).hexdigest()
            rows.append({"username": user, "domain": REALM, "password": pw, "ha1": ha1,
                         "ha1b": ha1b})
        with db.get_engine(url).begin() as conn:
            conn.execute(insert(schema.subscriber), rows)
        db.dispose_engine(url)
        yield url
    finally:
        db.dispose_engine()
        if admin is not None:
            with admin.connect() as conn:
                if kind == "mysql":
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
                else:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def location_rows(url: str) -> int:
    from sqlalchemy import func, select

    from sipcore import db
    from sipcore.db import schema

    try:
        with db.get_engine(url).connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.location)).scalar()
                       or 0)
    finally:
        db.dispose_engine(url)


def user_list(n: int) -> list[tuple[str, str]]:
    return [(f"u{i:05d}", f"pw{i:05d}") for i in range(n)]


def write_injection(path: Path, users: int) -> None:
    """SIPp -inf file: SEQUENTIAL, one `user;password;[authentication ...];` line per user
    (SIPp expands a field holding the whole keyword, not [fieldN] inside it)."""
    lines = ["SEQUENTIAL"] + [f"{u};{p};[authentication username={u} password={p}];"
                              for u, p in user_list(users)]
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- servers

def server_cfg(case: Case, kind: str, url: str | None, port: int, children: int,
               debug: int) -> str:
    mod = _db_modules(kind)[0] if case.needs_db else ""
    usrloc = ""
    if case.db_mode:
        usrloc = (f'modparam("usrloc", "db_url", "{url}")\n'
                  f'modparam("usrloc", "timer_interval", {TIMER_INTERVAL})')
    auth_params = ""
    if case.auth:
        auth_params = (f'modparam("auth_db", "db_url", "{url}")\n'
                       'modparam("auth_db", "calculate_ha1", 0)\n'
                       'modparam("auth_db", "use_domain", 0)')
    return CFG_TEMPLATE.format(
        case=case.describe, debug=debug, children=children, port=port,
        db_module=f'loadmodule "{mod}"' if mod else "",
        auth_modules=('loadmodule "pv"\nloadmodule "auth"\nloadmodule "auth_db"' if case.auth
                      else ""),
        db_mode=case.db_mode, usrloc_params=usrloc, auth_params=auth_params,
        auth_block=AUTH_BLOCK if case.auth else "")


def start_server(name: str, work: Path, cfg_text: str, port: int, children: int,
                 tlsf: bool) -> sb.ServerRun:
    cfg = work / f"{name}.cfg"
    cfg.write_text(cfg_text)
    log = work / f"{name}.log"
    rundir = work / f"{name}-run"
    rundir.mkdir(exist_ok=True)
    if name == "pykam":
        cmd = [sys.executable, "-m", "sipcore", "-DD", "-E", "-f", str(cfg), "-Y", str(rundir),
               "-n", str(children), "-l", f"udp:{HOST}:{port}"]
        proc = sb.spawn(cmd, log, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    else:
        cmd = [sb.KAMAILIO, "-DD", "-E", "-f", str(cfg), "-Y", str(rundir), "-n", str(children),
               "-m", "64", "-M", "8"]
        if tlsf:
            cmd[1:1] = ["-x", "tlsf"]
        proc = sb.spawn(cmd, log, cwd=work)
    srv = sb.ServerRun(name, proc, port, log)
    sb._wait_ready(srv)
    return srv


def kamailio_skip_reason(case: Case, kind: str) -> str | None:
    if not case.needs_db:
        return None
    if kind == "sqlite":
        return "no db_sqlite module in this Kamailio build (use --db mysql)"
    so = _db_modules(kind)[1]
    if not (KAM_MODULES / so).exists():
        pkg = "kamailio-mysql-modules" if kind == "mysql" else "kamailio-postgres-modules"
        return f"{so} not installed ({pkg})"
    return None


# --------------------------------------------------------------------------- SIPp

class Runner:
    """One case on one server: measure(work, srv, rate, calls) as sb.search() expects."""

    def __init__(self, case: Case, inf: Path, idle_ticks_per_s: float) -> None:
        self.case = case
        self.inf = inf
        self.idle = idle_ticks_per_s
        # one SIPp port for every run of the case: the Contact (sip:USER@127.0.0.1:PORT) stays
        # the same, so later runs refresh the users' bindings instead of adding new ones. The
        # port is held by a bound socket between runs (other programs on the machine pick free
        # ports too); a new one is taken only if it was lost anyway.
        self.port = 0
        self.hold: socket.socket | None = None
        self._hold_port()

    def _hold_port(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((HOST, self.port))
        except OSError:
            print(f"  (SIPp port {self.port} was taken meanwhile: a new port, so the next run "
                  "adds bindings instead of refreshing them)", flush=True)
            s.bind((HOST, 0))
        self.port = s.getsockname()[1]
        self.hold = s

    def close(self) -> None:
        if self.hold is not None:
            self.hold.close()
            self.hold = None

    def measure(self, work: Path, srv: sb.ServerRun, rate: float, calls: int) -> sb.Result:
        scen = HERE / ("register_auth.xml" if self.case.auth else "register.xml")
        tag = f"{srv.name}-{self.case.name}-{int(rate)}-{calls}-{uuid.uuid4().hex[:6]}"
        stat = work / f"uac-{tag}.csv"
        nominal = calls / rate
        cmd = ["sipp", "-sf", str(scen), "-inf", str(self.inf), "-i", HOST,
               "-p", str(self.port), "-bind_local", f"{HOST}:{srv.port}",
               "-r", f"{rate:g}", "-rp", "1000", "-m", str(calls), "-l", str(max(1000, calls)),
               "-recv_timeout", "5000", "-timeout", f"{int(nominal * 2 + 20)}s",
               "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "3600"]
        before = sb.cpu_sample(srv.proc.pid)
        t0 = time.monotonic()
        self.close()                    # SIPp binds the port now
        proc = sb.spawn(cmd, work / f"uac-{tag}.log", cwd=work)
        try:
            rc = proc.wait(nominal * 2 + 40)
        except subprocess.TimeoutExpired:
            rc = None
        wall = time.monotonic() - t0
        sb.stop_process(proc)
        self._hold_port()
        extra = 0.0
        if self.case.db_mode == 2:
            # the write-back of this run happens in usrloc's timer: wait for it to be counted
            extra = TIMER_INTERVAL + 2.0
            time.sleep(extra)
        after = sb.cpu_sample(srv.proc.pid)
        st = sb.read_sipp_stats(stat)
        ticks = after.ticks - before.ticks - int(self.idle * extra)
        res = sb.Result(srv.name, rate, calls, sipp_rc=rc, wall=wall, cpu_ticks=max(0, ticks),
                        processes=after.processes, threads=after.threads)
        res.attempted = int(st.get("OutgoingCall(C)", 0) or 0)
        res.completed = int(st.get("SuccessfulCall(C)", 0) or 0)
        res.failed = int(st.get("FailedCall(C)", 0) or 0)
        if srv.proc.poll() is not None:
            raise RuntimeError(f"{srv.name} died during the run (rc {srv.proc.returncode}); "
                               f"log: {srv.log}")
        return res


def per_message(res: sb.Result, case: Case) -> str:
    us = res.cpu_us_per_call
    if us is None:
        return "n/a"
    if case.auth:
        return f"{us:.1f} us/registration = {us / 2:.1f} us/REGISTER (401 round + 200 round)"
    return f"{us:.1f} us/REGISTER"


# --------------------------------------------------------------------------- main

@dataclass
class CaseResult:
    server: str
    case: Case
    first: sb.Result | None = None
    best: sb.Result | None = None
    rows_after_stop: int | None = None
    skipped: str | None = None


def run_case(case: Case, name: str, args: argparse.Namespace, work: Path, inf: Path,
             tlsf: bool) -> CaseResult:
    out = CaseResult(name, case)
    sub = work / f"{name}-{case.name}"
    sub.mkdir()
    if case.needs_db:
        ctx = bench_db(args.db, sub, f"{name[:3]}{case.name.replace('-', '')}", args.users)
    else:
        ctx = _no_db()
    with ctx as url:
        port = sb.free_udp_port()
        srv = start_server(name, sub, server_cfg(case, args.db, url, port, args.children,
                                                 args.debug), port, args.children, tlsf)
        try:
            idle0 = sb.cpu_sample(srv.proc.pid)
            time.sleep(2.0)
            idle1 = sb.cpu_sample(srv.proc.pid)
            idle = (idle1.ticks - idle0.ticks) / 2.0
            print(f"{name} [{case.name}: {case.describe}]: pid {srv.proc.pid}, "
                  f"{idle1.processes} processes, idle CPU {idle * 1000 / CLK_TCK:.0f} ms/s",
                  flush=True)
            runner = Runner(case, inf, idle)
            try:
                res = runner.measure(sub, srv, args.rate, args.users)
                out.first = res
                print(f"  {res.line()}  ({per_message(res, case)}; first registration of "
                      f"{args.users} users)", flush=True)
                if args.search and (name == "pykam" or args.search_kamailio):
                    print(f"  searching the highest rate with >= {100 * sb.PASS_RATIO:.1f} % "
                          f"registered (re-registrations; budget {args.search_budget:g} s)",
                          flush=True)
                    out.best, _ = sb.search(sub, srv, args.search_start or args.rate,
                                            args.search_step, args.search_budget,
                                            min_calls=500, measure=runner.measure)
            finally:
                runner.close()
        finally:
            sb.stop_process(srv.proc, term_timeout=30.0)
            if "Traceback" in srv.log.read_text(errors="replace"):
                print(f"WARNING: {name} log has a Traceback: {srv.log}", flush=True)
                args.keep = True
        if case.db_mode == 2 and url:
            out.rows_after_stop = location_rows(url)
            ok = "" if out.rows_after_stop == args.users else f"  WARNING: expected {args.users}"
            print(f"  location rows after stop: {out.rows_after_stop}{ok}", flush=True)
    return out


@contextmanager
def _no_db() -> Iterator[None]:
    yield None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=500,
                    help="registrations per second of the first run (default 500)")
    ap.add_argument("--users", type=int, default=10000,
                    help="distinct users = calls of the first run (default 10000)")
    ap.add_argument("--children", type=int, default=2, help="UDP workers (-n), default 2")
    ap.add_argument("--case", dest="cases", type=parse_case, action="append",
                    help="noauth-0, noauth-2, auth-0, auth-2 (repeatable; default all)")
    ap.add_argument("--db", choices=("mysql", "postgres", "sqlite"), default="mysql",
                    help="database for subscriber/location (default mysql = MariaDB)")
    ap.add_argument("--search", action="store_true",
                    help="find the highest rate with >= 99.9 %% registrations completed")
    ap.add_argument("--search-start", type=float, default=0, help="default: --rate")
    ap.add_argument("--search-step", type=float, default=5.0, help="seconds per step (5)")
    ap.add_argument("--search-budget", type=float, default=120.0,
                    help="bound on the search time per server and case, s (default 120)")
    ap.add_argument("--search-kamailio", action="store_true", help="search Kamailio too")
    ap.add_argument("--no-kamailio", action="store_true", help="skip Kamailio")
    ap.add_argument("--only", choices=("pykam", "kamailio"), help="run one server only")
    ap.add_argument("--debug", type=int, default=1, help="debug= in the configs (default 1)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args(argv)
    cases: list[Case] = args.cases or ALL_CASES

    if shutil.which("sipp") is None:
        print("sipp not found (apt-get install sip-tester)", file=sys.stderr)
        return 2
    kam = None if args.no_kamailio or not os.access(sb.KAMAILIO, os.X_OK) else sb.KAMAILIO

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    work = Path(tempfile.mkdtemp(prefix="pykam-register-bench-"))
    import platform

    print(f"machine : {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
          f"{sb.cpu_model()}, {platform.system()} {platform.release()}")
    print(f"python  : {platform.python_implementation()} {platform.python_version()} "
          f"({sys.executable})")
    print(f"commit  : {sb.git_commit(ROOT)}")
    print(f"sipp    : {sb.sipp_version()}")
    tlsf = False
    if kam:
        tlsf = sb.kamailio_has_tlsf(kam)
        ver = subprocess.run([kam, "-v"], check=False, capture_output=True,
                             text=True).stdout.splitlines()
        print(f"kamailio: {ver[0].replace('version:', '').strip() if ver else '?'}"
              f"{' (-x tlsf)' if tlsf else ''}")
    else:
        print("kamailio: not run" + (" (--no-kamailio)" if args.no_kamailio
                                     else f" ({sb.KAMAILIO} not found)"))
    print(f"scenario: sipp -sf register[_auth].xml -inf {args.users} users -> server "
          f"(children={args.children}), all on {HOST}; first run {args.users} registrations "
          f"at {args.rate:g}/s; database {args.db} (its own CPU not counted)")
    print(f"work dir: {work}")
    print(flush=True)
    inf = work / "users.csv"
    write_injection(inf, args.users)

    rc = 0
    done: list[CaseResult] = []
    try:
        for case in cases:
            servers = ["pykam"] + (["kamailio"] if kam else [])
            if args.only:
                servers = [s for s in servers if s == args.only]
            for name in servers:
                if name == "kamailio":
                    why = kamailio_skip_reason(case, args.db)
                    if why:
                        print(f"kamailio [{case.name}]: skipped: {why}", flush=True)
                        done.append(CaseResult(name, case, skipped=why))
                        continue
                done.append(run_case(case, name, args, work, inf, tlsf))
            print(flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process started", file=sys.stderr)
        rc = 130
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        rc = 1
        args.keep = True
    finally:
        sb.cleanup_all()

    print("summary (CPU of every server process; a registration with auth = 2 REGISTERs)")
    for r in done:
        label = f"{r.server:8s} {r.case.name:9s}"
        if r.skipped:
            print(f"  {label}: skipped ({r.skipped})")
            continue
        if r.first is not None:
            f = r.first
            print(f"  {label}: {f.completed}/{f.calls} registered at {f.rate:g}/s "
                  f"({f.failed} failed), {per_message(f, r.case)}"
                  + (f", location rows after stop {r.rows_after_stop}"
                     if r.rows_after_stop is not None else ""))
        if r.best is not None:
            b = r.best
            print(f"  {label}: highest rate with >= {100 * sb.PASS_RATIO:.1f} %: "
                  f"{b.rate:g} registrations/s ({b.completed}/{b.calls}, "
                  f"{per_message(b, r.case)})")
        elif args.search and (r.server == "pykam" or args.search_kamailio):
            print(f"  {label}: highest rate: none found within the budget")
        if r.first is not None and r.first.completed_ratio < sb.PASS_RATIO and rc == 0:
            rc = 1
    by = {(r.server, r.case): r for r in done}
    for case in cases:
        p, k = by.get(("pykam", case)), by.get(("kamailio", case))
        if p and k and p.first and k.first and p.first.cpu_us_per_call \
                and k.first.cpu_us_per_call:
            print(f"  ratio pykam/kamailio CPU per registration, {case.name} at "
                  f"{args.rate:g}/s: {p.first.cpu_us_per_call / k.first.cpu_us_per_call:.1f}x")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
