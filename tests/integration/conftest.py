"""Integration fixtures: a real pykam process on a free 127.0.0.1 port, and a tiny SIP UA.

Every process started here is stopped (SIGTERM, then SIGKILL) and reaped by PID on teardown.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_udp_port() -> int:
    """A loopback port free for UDP and for TCP too: configs listen on both with one {port},
    and a port the kernel gives for UDP may be the local port of some TCP connection."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
            t.close()
        return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


class UA:
    """A UDP SIP endpoint on a loopback address (127.0.0.1 unless HOST says another, e.g. a
    second source 127.0.0.2) for tests: send raw messages, receive with a timeout."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.host = host

    def send(self, data: bytes | str, port: int, host: str = "127.0.0.1") -> None:
        if isinstance(data, str):
            data = data.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        self.sock.sendto(data, (host, port))

    def recv(self, timeout: float = 3.0) -> Optional[bytes]:
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65535)
            return data
        except socket.timeout:
            return None

    def close(self) -> None:
        self.sock.close()


def options(ua: UA, server_port: int, ruri: Optional[str] = None, extra: str = "") -> str:
    cid = uuid.uuid4().hex
    ruri = ruri or f"sip:127.0.0.1:{server_port}"
    return (f"OPTIONS {ruri} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bK{cid[:10]};rport\n"
            f"Max-Forwards: 70\n"
            f"From: <sip:tester@127.0.0.1>;tag={cid[:6]}\n"
            f"To: <sip:127.0.0.1>\n"
            f"Call-ID: {cid}\n"
            f"CSeq: 1 OPTIONS\n"
            f"{extra}"
            f"Content-Length: 0\n\n")


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log_path: Path
    rundir: Optional[Path] = None
    extra_pids: list = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.extra_pids is None:
            self.extra_pids = []

    def children(self) -> list[int]:
        return child_pids(self.proc.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None


def _pykam_cmd() -> list[str]:
    return [sys.executable, "-m", "sipcore"]


def child_pids(pid: int) -> list[int]:
    """Direct children of PID, from /proc (the workers, timer and ctl of a master)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return out


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """start_server(cfg_text_with_{port}, args=(...{port}...)) -> Server, ready to answer
    OPTIONS."""
    started: list[Server] = []

    def _start(cfg_text: str, ready_check: bool = True, args: tuple[str, ...] = (),
               dflag: str = "-DD") -> Server:
        port = free_udp_port()
        cfg = tmp_path / f"pykam-{port}.cfg"
        cfg.write_text(cfg_text.replace("{port}", str(port)))
        args = tuple(a.replace("{port}", str(port)) for a in args)    # e.g. -l udp:...:{port}
        log_path = tmp_path / f"pykam-{port}.log"
        logf = open(log_path, "wb")
        rundir = tmp_path / f"run-{port}"
        rundir.mkdir()
        proc = subprocess.Popen(_pykam_cmd() + [dflag, "-E", "-Y", str(rundir), "-f", str(cfg)]
                                + list(args), cwd=ROOT,
                                stdout=logf, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        srv = Server(proc, port, log_path, rundir)
        started.append(srv)
        if ready_check:
            ua = UA()
            try:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    if proc.poll() is not None:
                        raise AssertionError(f"pykam exited with {proc.returncode}:\n{srv.log()}")
                    ua.send(options(ua, port), port)
                    if ua.recv(0.3) is not None:
                        break
                else:
                    raise AssertionError(f"pykam did not answer on {port}:\n{srv.log()}")
            finally:
                ua.close()
        return srv

    yield _start
    for srv in started:
        kids = child_pids(srv.proc.pid) if srv.proc.poll() is None else []
        if srv.proc.poll() is None:
            srv.proc.send_signal(signal.SIGTERM)
            try:
                srv.proc.wait(5)
            except subprocess.TimeoutExpired:
                srv.proc.kill()
                srv.proc.wait(5)
        for pid in kids + srv.extra_pids:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
