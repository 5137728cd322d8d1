"""Timer API: periodic jobs and one-shot callbacks, in-process and through the fork pipe."""
import os
import time

import pytest

from sipcore import timer


@pytest.fixture(autouse=True)
def _clean():
    timer.reset()
    yield
    timer.reset()


def test_periodic_and_one_shot_in_local_loop():
    ticks, shots = [], []
    timer.register_timer("tick", lambda: ticks.append(time.monotonic()), 20, first_ms=0)
    timer.register_handler("shot", shots.append)
    loop = timer.local_loop()
    assert timer.schedule("shot", 30, b"payload-1")
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        time.sleep(loop.timeout(0.01))
        loop.run_due()
    assert shots == [b"payload-1"]
    # a loaded machine may delay ticks (missed ones are skipped, not bunched up): at least a
    # few ran, never more than the interval allows, and never closer together than ~interval
    assert 3 <= len(ticks) <= 12
    assert all(b - a >= 0.015 for a, b in zip(ticks, ticks[1:]))


def test_failing_job_is_counted_not_fatal():
    def boom():
        raise RuntimeError("bad module")
    timer.register_timer("boom", boom, 10, first_ms=0)
    loop = timer.local_loop()
    time.sleep(0.001)
    loop.run_due()
    time.sleep(0.012)
    loop.run_due()
    assert timer._periodic["boom"].errors == 2


def test_unknown_handler_and_oversized_payload_refused():
    timer.register_handler("h", lambda p: None)
    timer.local_loop()
    assert not timer.schedule("nope", 1)
    assert not timer.schedule("h", 1, b"x" * (timer.MAX_PAYLOAD + 1))


def test_schedule_from_another_process_runs_in_timer_process(tmp_path):
    out = tmp_path / "ran"
    timer.register_handler("write", lambda p: out.write_bytes(p))
    timer.init()
    child = os.fork()
    if child == 0:                                   # a worker: schedule and leave
        ok = timer.schedule("write", 10, b"from-worker")
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    tproc = os.fork()
    if tproc == 0:                                   # the timer process
        start = time.monotonic()
        timer.run_timer_process(lambda: out.exists() or time.monotonic() - start > 3,
                                lambda: True)
        os._exit(0)
    _, status = os.waitpid(tproc, 0)
    assert out.read_bytes() == b"from-worker"


def test_schedule_many_through_the_pipe_is_one_write_and_all_run(tmp_path):
    ran = []
    timer.register_handler("a", lambda p: ran.append(p))
    timer.init()
    r, w = timer._pipe
    assert timer.schedule_many([("a", 0, b"1"), ("a", 0, b"2"), ("a", 0, b"3")]) == 3
    data = os.read(r, 65536)                         # everything arrived in one read
    loop = timer.TimerLoop()
    loop.feed(data)
    loop.run_due()
    assert ran == [b"1", b"2", b"3"]
