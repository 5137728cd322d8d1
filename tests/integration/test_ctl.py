"""The control interface end to end: a small prefork "master" (subprocess) forks a worker that
adopts runtime cfg changes and a ctl process running sipcore.rpc.server.run_ctl on a temp
unix socket, 127.0.0.1 TCP and a jsonrpcs unix datagram socket; pykamcmd (as a subprocess)
and raw sockets talk to it.

Every process started here is stopped and reaped by PID on teardown: the test kills the
master (SIGTERM, then SIGKILL) and waits for it; the master kills and reaps its children by
PID; children that outlive it notice the re-parenting and exit.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

MASTER = r'''
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
rundir, tcp_port = sys.argv[2], int(sys.argv[3])

from sipcore import log as klog
from sipcore.mod import Module
from sipcore.mod.loader import import_module_decl
from sipcore.mod.context import CoreContext
from sipcore.rpc.env import RpcEnv
from sipcore.rpc.runtime_cfg import RuntimeCfg
from sipcore.net.addr import SocketInfo

klog.configure(debug=0, to_stderr=True)
ctl = import_module_decl("ctl"); ctl.reset_params()
ctl.set_param("binrpc", "unix:pykam_ctl")                 # relative: under rundir
ctl.set_param("binrpc", f"tcp:127.0.0.1:{tcp_port}")
js = import_module_decl("jsonrpcs"); js.reset_params()
js.set_param("transport", 4)
js.set_param("dgram_socket", "pykam_rpc.sock")
sl = import_module_decl("sl")
test = Module("ctltest")
test.rpc("test.bug", lambda: 1 // 0, doc="Raises ZeroDivisionError.")
test.rpc("test.slow", lambda: time.sleep(0.3) or "done", doc="Takes 0.3 s.")

class Table:
    """Stand-in for the shm process table: rows in a file every process reads."""
    path = os.path.join(rundir, "proc_table.json")
    def __init__(self): self.rows = [(0, os.getpid(), 0, "main process - attendant")]
    def add(self, row):
        import json
        self.rows.append(row)
        with open(self.path + ".tmp", "w") as fh: json.dump(self.rows, fh)
        os.replace(self.path + ".tmp", self.path)
    def entries(self):
        import json
        with open(self.path) as fh: return [tuple(r) for r in json.load(fh)]

table = Table()
table.add((0, os.getpid(), 0, "main process - attendant")); table.rows.pop()
rc = RuntimeCfg.from_config({"debug": 0})
env = RpcEnv(rundir=rundir, proc_table=table, runtime_cfg=rc, extra_modules=[ctl, js, sl, test],
             shm_stats=lambda: {"total": 1 << 20, "free": 1 << 19, "used": 1 << 18,
                                "real_used": 1 << 18, "max_used": 1 << 18, "fragments": 1},
             sockets=[SocketInfo("udp", "127.0.0.1", 5060)], argv=sys.argv)
base = CoreContext(cfg=None, core=None, rpc=env)     # what the modules' RPCs run with
for m in (ctl, js, sl, test):
    m.context = base.for_module(m)
master = os.getpid()
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))

def orphaned(): return os.getppid() != master

def worker():
    status = os.path.join(rundir, "worker.debug")
    while not stop and not orphaned():
        if rc.refresh() or not os.path.exists(status):
            with open(status + ".tmp", "w") as fh: fh.write(str(klog.get_debug()))
            os.replace(status + ".tmp", status)
        time.sleep(0.02)

def ctl_proc():
    from sipcore.rpc.server import run_ctl
    run_ctl(env, lambda: bool(stop) or orphaned(), idle_timeout=3.0,
            ready=lambda s: open(os.path.join(rundir, "ready"), "w").close())

children = []
for rank, desc, fn in ((1, "udp receiver child=0", worker), (-3, "ctl handler", ctl_proc)):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
        code = 0
        try:
            fn()
        except BaseException as exc:
            print("child failed:", repr(exc), file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    children.append(pid)
    table.add((len(table.rows), pid, rank, desc))

while not stop:
    time.sleep(0.05)
for pid in children:
    try: os.kill(pid, signal.SIGTERM)
    except ProcessLookupError: pass
deadline = time.time() + 3
for pid in children:
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done or time.time() > deadline:
            break
        time.sleep(0.02)
    if not done:
        os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)
'''


def _free_tcp_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, rundir: Path, proc: subprocess.Popen, tcp_port: int) -> None:
        self.rundir = rundir
        self.proc = proc
        self.tcp_port = tcp_port
        self.unix = str(rundir / "pykam_ctl")
        self.dgram = str(rundir / "pykam_rpc.sock")
        self.tcp = f"tcp:127.0.0.1:{tcp_port}"


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    rundir = tmp_path / "run"
    rundir.mkdir()
    # a stale socket file from a "crashed" server: must be replaced at start
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(rundir / "pykam_ctl"))
    stale.close()
    script = tmp_path / "master.py"
    script.write_text(MASTER)
    port = _free_tcp_port()
    proc = subprocess.Popen([sys.executable, str(script), str(ROOT), str(rundir), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    srv = Server(rundir, proc, port)
    try:
        deadline = time.time() + 10
        while not (rundir / "ready").exists() or not (rundir / "worker.debug").exists():
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("ctl did not start: " + proc.stderr.read().decode())
            time.sleep(0.02)
        yield srv
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def pykamcmd(*args: str, stdin: str | None = None, env: dict | None = None
             ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bin" / "pykamcmd"), *args],
                          input=stdin, capture_output=True, text=True, timeout=20, check=False,
                          env={**os.environ, **(env or {})})


def raw_exchange(path_or_port: Any, data: bytes, timeout: float = 3.0) -> list[dict]:
    """Send DATA on a new stream connection, half-close, read every reply line."""
    if isinstance(path_or_port, int):
        s = socket.create_connection(("127.0.0.1", path_or_port), timeout)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path_or_port)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
    finally:
        s.close()
    return [json.loads(line) for line in buf.splitlines() if line.strip()]


def req(method: str, params: list | None = None, rid: Any = 1) -> bytes:
    doc: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": rid}
    if params is not None:
        doc["params"] = params
    return json.dumps(doc).encode() + b"\n"


# ---- pykamcmd ---------------------------------------------------------------------------------

def test_socket_file_mode_and_stale_file_replaced(server: Server):
    st = os.stat(server.unix)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660


def test_pykamcmd_psx_uptime_and_tree_output(server: Server):
    r = pykamcmd("-s", server.unix, "core.psx")
    assert r.returncode == 0, r.stderr
    assert "DSC: main process - attendant" in r.stdout
    assert "DSC: udp receiver child=0" in r.stdout and "DSC: ctl handler" in r.stdout
    assert r.stdout.count("{") == 3
    r = pykamcmd("-s", server.unix, "core.uptime")
    assert r.returncode == 0 and "\tuptime: " in r.stdout and r.stdout.startswith("{")


def test_pykamcmd_json_typed_params_and_tcp(server: Server):
    r = pykamcmd("-s", server.tcp, "--json", "core.echo", "12", "s:12", "i:7", "-1", "x y")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [12, "12", 7, -1, "x y"]
    r = pykamcmd("-s", f"unix:{server.unix}", "--json", "core.shmmem", "k")
    assert json.loads(r.stdout)["total"] == 1024
    r = pykamcmd("-s", server.unix, "core.sockets_list")
    assert "socket: {" in r.stdout and "port: 5060" in r.stdout
    r = pykamcmd("-s", server.unix, "sl.stats")
    assert r.returncode == 0


def test_pykamcmd_errors(server: Server, tmp_path: Path):
    r = pykamcmd("-s", server.unix, "no.such")
    assert r.returncode == 1 and r.stderr.strip() == "error: 500 - Method Not Found"
    r = pykamcmd("-s", server.unix, "cfg.get", "core")
    assert r.returncode == 1 and r.stderr.startswith("error: -32602 - Invalid params")
    r = pykamcmd("-s", str(tmp_path / "nothing_here"), "core.psx")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "cannot connect to pykam" in r.stderr
    r = pykamcmd("-s", f"tcp:127.0.0.1:{_free_tcp_port()}", "core.psx")
    assert r.returncode == 1 and "Connection refused" in r.stderr


def test_pykamcmd_over_the_jsonrpcs_datagram_socket(server: Server):
    r = pykamcmd("-s", f"unixd:{server.dgram}", "--json", "core.echo", "a")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == ["a"]


def test_interactive_shell_and_history(server: Server, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    r = pykamcmd("-s", server.unix, stdin="core.version\nhelp core.psx\nno.such\n"
                 "core.echo 'a b' 3\nhelp\nquit\ncore.version\n", env={"HOME": str(home)})
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("pykam ") and out[1] == "Processes: an array of {IDX, PID, DSC}."
    assert out[2:4] == ["a b", "3"] and "system.listMethods" in out
    assert out.count(out[0]) == 1                    # nothing ran after quit
    assert "error: 500 - Method Not Found" in r.stderr


# ---- runtime cfg ------------------------------------------------------------------------------

def test_cfg_seti_debug_reaches_the_worker(server: Server):
    status = server.rundir / "worker.debug"
    assert status.read_text() == "0"
    r = pykamcmd("-s", server.unix, "cfg.seti", "core", "debug", "3")
    assert r.returncode == 0, r.stderr
    deadline = time.time() + 3
    while status.read_text() != "3" and time.time() < deadline:
        time.sleep(0.02)
    assert status.read_text() == "3"
    assert pykamcmd("-s", server.tcp, "cfg.get", "core", "debug").stdout.strip() == "3"


# ---- raw sockets: bad input never kills the server -------------------------------------------

def test_malformed_unknown_wrong_params_and_garbage_on_one_connection(server: Server):
    data = (b'{"jsonrpc":"2.0","method":,"id":1}\n'       # malformed JSON
            b"\x00\xff\xfe garbage \x01\n"
            + req("no.such", rid=2)
            + req("cfg.get", ["core"], rid=3)
            + req("test.bug", rid=4)
            + b'{"jsonrpc":"2.0","method":"core.echo","params":[1],"id":5}'
            + b'[{"jsonrpc":"2.0","method":"core.echo","params":[2],"id":6},7]\n'
            + req("core.version", rid="last"))
    replies = raw_exchange(server.unix, data)
    codes = [r.get("error", {}).get("code") for r in replies[:6]]
    assert codes[:6] == [-32700, -32700, 500, -32602, 500, None]
    assert replies[2]["id"] == 2 and replies[3]["id"] == 3
    assert "ZeroDivisionError" in replies[4]["error"]["message"]
    assert replies[5] == {"jsonrpc": "2.0", "result": [1], "id": 5}
    assert [x.get("id") for x in replies[6]] == [6, None]
    assert replies[7]["id"] == "last" and replies[7]["result"].startswith("pykam ")
    assert len(replies) == 8


def test_incomplete_request_then_close_gets_a_parse_error(server: Server):
    replies = raw_exchange(server.tcp_port, b'{"jsonrpc":"2.0","method":"core.psx"')
    assert len(replies) == 1 and replies[0]["error"]["code"] == -32700


def test_oversized_request_is_refused(server: Server):
    big = b'{"jsonrpc":"2.0","method":"core.echo","params":["' + b"x" * (2 << 20)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(server.unix)
    try:
        try:
            s.sendall(big)
        except (BrokenPipeError, ConnectionResetError):
            pass                                   # the server may close while we write
        buf = b""
        try:
            while chunk := s.recv(65536):
                buf += chunk
        except ConnectionResetError:
            pass
    finally:
        s.close()
    if buf:
        assert json.loads(buf.splitlines()[0])["error"]["code"] == -32600
    assert pykamcmd("-s", server.unix, "core.version").returncode == 0


def test_stalled_clients_do_not_block_others(server: Server):
    stalled = []
    try:
        for i in range(5):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(server.unix)
            if i % 2:
                s.sendall(b'{"jsonrpc":"2.0","method":"core.ps')   # half a request
            stalled.append(s)
        t0 = time.monotonic()
        for _ in range(5):
            assert raw_exchange(server.tcp_port, req("core.version"))[0]["result"]
        assert time.monotonic() - t0 < 2.0
        r = pykamcmd("-s", server.unix, "--json", "ctl.connections")
        assert r.returncode == 0 and json.loads(r.stdout) >= 6
    finally:
        for s in stalled:
            s.close()


def test_idle_connections_are_closed(server: Server):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(8)
    s.connect(server.unix)
    try:
        t0 = time.monotonic()
        assert s.recv(10) == b""                    # closed by the server (idle_timeout=3)
        assert 2.0 < time.monotonic() - t0 < 7.0
    finally:
        s.close()


def test_ctl_rpcs_and_listing(server: Server):
    r = pykamcmd("-s", server.unix, "--json", "ctl.listen")
    listen = json.loads(r.stdout)
    assert {x["transport"] for x in listen} == {"unix_stream", "tcp", "unix_dgram"}
    r = pykamcmd("-s", server.unix, "--json", "system.listMethods")
    names = json.loads(r.stdout)
    for n in ("core.psx", "stats.get_statistics", "cfg.seti", "sl.stats", "test.bug"):
        assert n in names


def test_a_second_server_does_not_steal_a_live_socket(server: Server):
    from sipcore.rpc.env import RpcEnv
    from sipcore.rpc.registry import RpcRegistry
    from sipcore.rpc.server import CtlError, CtlServer, parse_address

    second = CtlServer(RpcRegistry.build(RpcEnv(), []),
                       [parse_address(f"unix:{server.unix}", "/")])
    with pytest.raises(CtlError):
        second.open()
    second.close()
    assert pykamcmd("-s", server.unix, "core.version").returncode == 0


def test_stop_removes_socket_files(server: Server):
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(5)
    assert not os.path.exists(server.unix)
    assert not os.path.exists(server.dgram)


# ---- with the real prefork master (sipcore.proc.master) ----------------------------------------

REAL_MASTER = r'''
import os, sys
sys.path.insert(0, sys.argv[1])
rundir, sip_port = sys.argv[2], int(sys.argv[3])
from sipcore import log as klog
from sipcore.cfg import compile_text
from sipcore.proc import ranks
from sipcore.proc.master import Master
from sipcore import timer
from sipcore.mod.context import CoreContext
from sipcore.net.listen import core_from_config
from sipcore.net.node import NetCore
from sipcore.rpc.env import RpcEnv
from sipcore.rpc.runtime_cfg import RuntimeCfg
from sipcore.rpc.server import ctl_child_body

cfg = compile_text(f"""
debug=0
children=2
listen=udp:127.0.0.1:{sip_port}
loadmodule "sl"
loadmodule "xlog"
loadmodule "ctl"
modparam("ctl", "binrpc", "unix:pykam_ctl")
request_route {{
    xlog("L_DBG", "dbg-line $ci\\n");
    sl_send_reply("200", "OK");
    exit;
}}
""")
klog.configure(debug=0, to_stderr=True)
core = core_from_config(cfg, NetCore)
core.bind()
env = RpcEnv(rundir=rundir, cfg=cfg, sockets=core.sockets, aliases=core.aliases, argv=sys.argv)
cfg.setup_process()
cfg.modules.init_all(CoreContext(cfg, core, None, timer, env))
env.runtime_cfg = RuntimeCfg.from_config(cfg.globals, cfg.cfg_vars)
master = Master(cfg, core, children=2, rundir=rundir, runtime_cfg=env.runtime_cfg,
                extra_children=[(ranks.PROC_RPC, "ctl handler", ctl_child_body(env))])
sys.exit(master.run())
'''


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _options(port: int, ua: socket.socket, cid: str) -> bytes:
    me = ua.getsockname()[1]
    return (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{cid};rport\r\n"
            f"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: {cid}\r\n"
            f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def test_with_the_real_master_psx_and_debug_reaches_workers(tmp_path: Path):
    rundir = tmp_path / "run"
    rundir.mkdir()
    script = tmp_path / "real_master.py"
    script.write_text(REAL_MASTER)
    sip_port = _free_udp_port()
    with open(tmp_path / "stderr.log", "wb") as errlog:
        proc = subprocess.Popen([sys.executable, str(script), str(ROOT), str(rundir),
                                 str(sip_port)], stdout=subprocess.DEVNULL, stderr=errlog)
    ctl = str(rundir / "pykam_ctl")
    ua = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ua.bind(("127.0.0.1", 0))
    ua.settimeout(2)
    try:
        deadline = time.time() + 15
        while not os.path.exists(ctl):
            assert proc.poll() is None and time.time() < deadline, \
                (tmp_path / "stderr.log").read_text()
            time.sleep(0.05)
        r = pykamcmd("-s", ctl, "--json", "core.psx")
        assert r.returncode == 0, r.stderr
        dsc = [p["DSC"] for p in json.loads(r.stdout)]
        assert dsc[0] == "main process - attendant" and "timer" in dsc and "ctl handler" in dsc
        assert sum(d.startswith("udp receiver") for d in dsc) == 2
        ua.sendto(_options(sip_port, ua, "before1"), ("127.0.0.1", sip_port))
        assert ua.recv(65535).startswith(b"SIP/2.0 200")
        assert pykamcmd("-s", ctl, "cfg.seti", "core", "debug", "3").returncode == 0
        assert pykamcmd("-s", ctl, "cfg.get", "core", "debug").stdout.strip() == "3"
        seen = False
        for i in range(40):                    # both workers adopt it at their next wake-up
            ua.sendto(_options(sip_port, ua, f"after{i}"), ("127.0.0.1", sip_port))
            assert ua.recv(65535).startswith(b"SIP/2.0 200")
            if f"dbg-line after{i}" in (tmp_path / "stderr.log").read_text():
                seen = True
                break
            time.sleep(0.1)
        assert seen
        assert "dbg-line before1" not in (tmp_path / "stderr.log").read_text()
    finally:
        ua.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert not os.path.exists(ctl)
