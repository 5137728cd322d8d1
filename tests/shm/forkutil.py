"""Fork helpers for the shm tests: every child is waited for by its PID (never a wildcard
wait) and always leaves through os._exit, so it never runs pytest's teardown."""
from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Callable

import pytest


def shm_files(prefix: str = "pykam.") -> list[str]:
    return sorted(f for f in os.listdir("/dev/shm") if f.startswith(prefix))


def fork(fn: Callable[[], None]) -> int:
    """Run fn in a child process; the child exits 0 if fn returned, 1 if it raised."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException:  # noqa: BLE001 - reported through the exit code
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait(pid: int, timeout: float = 30.0) -> int:
    """waitpid(pid) with a deadline; returns the exit status (or -signal). A child still
    running at the deadline is SIGKILLed, reaped, and the test fails."""
    deadline = time.monotonic() + timeout
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"child {pid} did not finish in {timeout} s")
        time.sleep(0.005)


def run_children(fns: list[Callable[[], None]], timeout: float = 60.0) -> None:
    """Fork one child per fn, wait for each by pid, assert they all exited 0."""
    pids = [fork(fn) for fn in fns]
    codes = [wait(pid, timeout) for pid in pids]
    assert codes == [0] * len(pids), f"child exit codes {codes}"
