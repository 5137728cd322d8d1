"""Timer API: periodic jobs and one-shot callbacks, in-process and through the shm queue."""
import json
import os
import time

import pytest

from sipcore import timer


@pytest.fixture(autouse=True)
def _clean():
    timer.reset()
    yield
    timer.reset()


@pytest.fixture
def shm():
    from sipcore.shm import ShmContext

    ctx = ShmContext.create(4, f"timer{os.getpid()}")
    ctx.unlink()                     # the mapping stays, inherited by forked children
    yield ctx
    ctx.close()


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



def _fork_timer_process(out) -> int:
    """Fork a timer process that runs until the file OUT exists (or 3 s); its pid."""
    tproc = os.fork()
    if tproc == 0:
        start = time.monotonic()
        timer.run_timer_process(lambda: out.exists() or time.monotonic() - start > 3,
                                lambda: True)
        os._exit(0)
    return tproc

def test_schedule_from_another_process_runs_in_timer_process(tmp_path, shm):
    out = tmp_path / "ran"
    timer.register_handler("write", lambda p: out.write_bytes(p))
    timer.init(shm)
    child = os.fork()
    if child == 0:                                   # a worker: schedule and leave
        ok = timer.schedule("write", 10, b"from-worker")
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    tproc = _fork_timer_process(out)
    _, status = os.waitpid(tproc, 0)
    assert out.read_bytes() == b"from-worker"


def test_schedule_many_goes_through_the_ring_in_order_with_due_times(shm):
    ran = []
    timer.register_handler("a", lambda p: ran.append(p))
    timer.init(shm)
    assert timer.schedule_many([("a", 0, b"1"), ("a", 0, b"2"), ("a", 60, b"3")]) == 3
    loop = timer.TimerLoop()
    loop.feed(timer._ring.drain())
    assert timer._ring.drain() == []                 # drained once
    loop.run_due()
    assert ran == [b"1", b"2"]                       # the 60 ms job is not due yet
    time.sleep(0.07)
    loop.run_due()
    assert ran == [b"1", b"2", b"3"]


def test_a_short_delay_wakes_the_timer_process_a_long_one_does_not(shm):
    timer.register_handler("a", lambda p: None)
    timer.init(shm)
    r = timer._pipe[0]
    timer._ring.wake_at = int((time.monotonic() + 1.0) * 1e6)   # it looks again in 1 s
    assert timer.schedule("a", 5000, b"later")
    with pytest.raises(BlockingIOError):
        os.read(r, 16)                               # no wake-up for a job far away
    assert timer.schedule("a", 0, b"now")
    assert os.read(r, 16) == b"!"


def test_full_ring_refuses_and_counts():
    from sipcore.shm import ShmContext, ShmRing

    ctx = ShmContext.create(2, f"ring{os.getpid()}")
    ctx.unlink()
    ring = ShmRing.create(ctx.arena, 256)
    pushed = 0
    while ring.push(b"x" * 40):
        pushed += 1
    assert pushed == 256 // 44 and ring.dropped == 1
    assert ring.drain() == [b"x" * 40] * pushed
    assert ring.push(b"y" * 40) and ring.drain() == [b"y" * 40]   # wraps around the end
    ctx.close()


def test_an_idle_timer_process_is_woken_by_a_job_due_before_its_next_look(tmp_path, shm):
    """The timer process sleeps up to IDLE_MAX_S when idle; a job due in 10 ms pushed
    meanwhile still runs about on time (the push wakes it through the pipe)."""
    out = tmp_path / "ran"
    timer.register_handler("write", lambda p: out.write_text(repr(time.monotonic())))
    timer.init(shm)
    tproc = _fork_timer_process(out)                 # idle at first
    time.sleep(0.2)                                  # it has planned a long sleep by now
    assert timer._ring.wake_at > (time.monotonic() + 0.1) * 1e6
    sent = time.monotonic()
    assert timer.schedule("write", 10, b"")
    _, status = os.waitpid(tproc, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert float(out.read_text()) - sent < 0.15      # not after the planned 0.5 s sleep


def test_a_periodic_job_shorter_than_a_tick_keeps_its_interval(tmp_path, shm):
    """One-shot jobs run on the TICK_MS grid (62.5 ms, Kamailio's resolution); a periodic job
    of 20 ms (rtimer's microsecond intervals) still runs every 20 ms, not once a tick."""
    out = tmp_path / "runs"
    runs: list[float] = []

    def tick() -> None:
        runs.append(time.monotonic())
        if len(runs) == 15:
            out.write_text(json.dumps(runs))

    timer.register_timer("fast", tick, 20)
    timer.init(shm)
    tproc = _fork_timer_process(out)
    _, status = os.waitpid(tproc, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    runs = json.loads(out.read_text())
    span = runs[-1] - runs[0]
    assert 14 * 0.020 * 0.9 <= span < 14 * timer.TICK_MS / 1000 * 0.8, runs
