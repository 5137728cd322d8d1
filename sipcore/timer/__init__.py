"""Timers for modules: periodic jobs and one-shot callbacks, run in the timer process.

Runs in: registration in the master before forking (module mod_init); `schedule()` from any
process after fork; callbacks only in the timer process (or, in no-fork mode `-D`, in the single
process between messages).

Functions cannot cross process boundaries, so one-shot callbacks are registered by name before
fork (`register_handler`) and scheduled by name with a byte payload. A schedule request is one
record pushed to a ring in shared memory (sipcore.shm.ShmRing): no system call and no wake-up
of the timer process per request. The timer process sleeps until the first point of a
TICK_MS grid at or after its next due job (at most IDLE_MAX_S), and publishes that time in
the ring; a request due sooner writes a byte to a wake-up pipe. So a busy proxy costs at most
1000/TICK_MS wake-ups a second (jobs due within one tick run together, at most TICK_MS late)
and an idle one almost none. A periodic job with an interval shorter than a tick is not held
to the grid. Records carry their absolute due time (CLOCK_MONOTONIC is the
same in every process).
"""
from __future__ import annotations

import heapq
import logging
import os
import select
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

_REC = struct.Struct("<Hd")         # name length, due time (time.monotonic() seconds)
MAX_RECORD = 4096
MAX_PAYLOAD = MAX_RECORD - _REC.size - 64
TICK_MS = 1000 / 16                 # grid of the timer process's wake-ups: Kamailio's timer
                                    # resolution (TIMER_TICKS_HZ 16), 62.5 ms
IDLE_MAX_S = 0.5                    # longest sleep (stop requests, a dead master)
RING_BYTES = 1 << 21

@dataclass
class _Due:
    """One pending job. The heap holds (when, seq, _Due) tuples, compared in C."""

    when: float
    seq: int
    name: str
    payload: bytes = b""
    periodic: Optional["Periodic"] = None


@dataclass
class Periodic:
    name: str
    fn: Callable[[], None]
    interval_ms: int
    first_ms: int
    runs: int = 0
    errors: int = 0


class TimerError(Exception):
    pass


_periodic: dict[str, Periodic] = {}
_handlers: dict[str, Callable[[bytes], None]] = {}
_pipe: Optional[tuple[int, int]] = None       # wake-up pipe of the timer process
_ring: Any = None                             # ShmRing of schedule requests
_own_shm: Any = None                          # the ring's own segment when there is no other
_seq = 0


def register_timer(name: str, fn: Callable[[], None], interval_ms: int,
                   first_ms: Optional[int] = None) -> None:
    """A periodic job (master, before fork): fn() every INTERVAL_MS in the timer process."""
    if interval_ms <= 0:
        raise TimerError(f"timer {name}: interval must be positive")
    if name in _periodic:
        raise TimerError(f"timer {name} registered twice")
    _periodic[name] = Periodic(name, fn, interval_ms,
                               interval_ms if first_ms is None else first_ms)


def register_handler(name: str, fn: Callable[[bytes], None]) -> None:
    """A one-shot callback kind (master, before fork), later scheduled with schedule(name)."""
    if name in _handlers:
        raise TimerError(f"timer handler {name} registered twice")
    _handlers[name] = fn


def reset() -> None:
    """Forget every registration (tests, or a new config in the same process)."""
    global _pipe, _active, _ring
    _active = None
    _ring = None
    _periodic.clear()
    _handlers.clear()
    if _pipe is not None:
        for fd in _pipe:
            try:
                os.close(fd)
            except OSError:
                pass
    _pipe = None


def init(shm: Any = None) -> None:
    """Master, before fork: the schedule ring in shared memory (`shm`: the server's
    ShmContext; without one, a small segment of its own) and the wake-up pipe."""
    global _pipe, _ring
    if _ring is None:
        from sipcore.shm import ShmRing

        if shm is None:
            # a master without a server segment (embedding, tests): a small segment of the
            # queue's own, unlinked at once; the mapping is inherited by the children
            from sipcore.shm import ShmContext

            global _own_shm
            _own_shm = ShmContext.create(RING_BYTES * 2 / (1 << 20) + 1, f"t{os.getpid()}",
                                         name="timer", max_procs=8)
            _own_shm.unlink()
            shm = _own_shm
        _ring = shm.named("timer:queue", lambda a: ShmRing.create(a, RING_BYTES),
                          ShmRing.attach)
    if _pipe is None:
        r, w = os.pipe()
        os.set_blocking(w, False)
        os.set_blocking(r, False)
        _pipe = (r, w)


def _record(name: str, delay_ms: int, payload: bytes, now: Optional[float] = None
            ) -> Optional[bytes]:
    """The queue record of one request (NOW: time.monotonic() already read); None (logged)
    when it cannot be queued."""
    if name not in _handlers:
        log.error("timer: schedule of unknown handler %s", name)
        return None
    nb = name.encode()
    if len(payload) > MAX_PAYLOAD or len(nb) > 64:
        log.error("timer: payload for %s too large (%s bytes)", name, len(payload))
        return None
    if now is None:
        now = time.monotonic()
    return _REC.pack(len(nb), now + max(delay_ms, 0) / 1000.0) + nb + payload


def _wake() -> None:
    try:
        os.write(_pipe[1], b"!")        # type: ignore[index]
    except BlockingIOError:             # already full of wake-ups: it will wake
        pass


def schedule(name: str, delay_ms: int, payload: bytes = b"") -> bool:
    """Run handler NAME with PAYLOAD after DELAY_MS, in the timer process. False when the
    request cannot be queued (unknown handler, payload too big, queue full)."""
    if _active is not None:             # the timer process itself, or no-fork mode
        if _record(name, delay_ms, payload) is None:
            return False
        _active.add(name, max(delay_ms, 0), payload)
        return True
    if _ring is None:
        log.error("timer: %s scheduled but no timer process is running", name)
        return False
    return schedule_many([(name, delay_ms, payload)]) == 1


def schedule_many(items: list[tuple[str, int, bytes]]) -> int:
    """schedule() for several jobs at once (what one message arms): one clock read and at
    most one wake-up for all of them. Returns how many were queued."""
    ring = _ring
    if _active is not None or ring is None:
        return sum(1 for name, delay, payload in items if schedule(name, delay, payload))
    now = time.monotonic()
    n, soonest = 0, 0
    for name, delay_ms, payload in items:
        rec = _record(name, delay_ms, payload, now)
        if rec is None:
            continue
        if not ring.push(rec):
            log.error("timer: queue full, dropping %s", name)
            continue
        if not n or delay_ms < soonest:
            soonest = delay_ms
        n += 1
    # after the pushes: one due before the timer process's planned look -> wake it now
    if n and (now + max(soonest, 0) / 1000.0) * 1e6 < ring.wake_at:
        _wake()
    return n


class TimerLoop:
    """The scheduler state of the process that runs timers."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, _Due]] = []
        now = time.monotonic()
        for p in _periodic.values():
            self._push(now + p.first_ms / 1000.0, p.name, b"", p)

    def _push(self, when: float, name: str, payload: bytes, periodic: Optional[Periodic] = None
              ) -> None:
        global _seq
        _seq += 1
        heapq.heappush(self.heap, (when, _seq, _Due(when, _seq, name, payload, periodic)))

    def add(self, name: str, delay_ms: int, payload: bytes) -> None:
        self._push(time.monotonic() + delay_ms / 1000.0, name, payload)

    def pending(self) -> list[_Due]:
        """Every pending job, soonest first (diagnostics, tests)."""
        return [d for _, _, d in sorted(self.heap)]

    def make_due(self, select: Callable[[_Due], bool]) -> int:
        """Make the jobs SELECT picks due now, keeping their order (tests, benchmarks: "let
        time pass" for those jobs). Returns how many."""
        n = 0
        entries = []
        for when, seq, d in self.heap:
            if select(d):
                n += 1
                d.when = when - 1e6
            entries.append((d.when, seq, d))
        heapq.heapify(entries)
        self.heap = entries
        return n

    def timeout(self, cap: float = 0.5) -> float:
        if not self.heap:
            return cap
        return max(0.0, min(cap, self.heap[0][0] - time.monotonic()))

    def feed(self, records: list[bytes]) -> None:
        """Records drained from the schedule ring become heap entries."""
        for rec in records:
            nlen, due = _REC.unpack_from(rec)
            end = _REC.size + nlen
            self._push(due, rec[_REC.size:end].decode("utf-8", "replace"), rec[end:])

    def run_due(self) -> int:
        """Run every job that is due, including jobs the run itself made due at once (a
        handler scheduling with delay 0: up to three passes); a failing job is logged and
        counted, never fatal."""
        n = 0
        for _ in range(3):
            ran = self._run_due_at(time.monotonic())
            n += ran
            if not ran or not self.heap or self.heap[0][0] > time.monotonic():
                break
        return n

    def _run_due_at(self, now: float) -> int:
        n = 0
        heap = self.heap
        while heap and heap[0][0] <= now:
            d = heapq.heappop(heap)[2]
            n += 1
            try:
                if d.periodic is not None:
                    d.periodic.runs += 1
                    d.periodic.fn()
                else:
                    _handlers[d.name](d.payload)
            except Exception as exc:  # a module bug must not stop the timers
                if d.periodic is not None:
                    d.periodic.errors += 1
                log.error("timer %s: %s: %s", d.name, type(exc).__name__, exc)
            if d.periodic is not None:
                nxt = d.when + d.periodic.interval_ms / 1000.0
                if nxt < now:                    # fell behind: skip missed ticks
                    nxt = now + d.periodic.interval_ms / 1000.0
                self._push(nxt, d.name, b"", d.periodic)
        return n


_active: Optional[TimerLoop] = None


def local_loop() -> TimerLoop:
    """No-fork mode (and tests): this process runs the timers itself; returns the loop that
    the caller drives with timeout()/run_due()."""
    global _active
    _active = TimerLoop()
    return _active


def run_timer_process(should_stop: Callable[[], bool], parent_alive: Callable[[], bool]
                      ) -> None:
    """Body of the timer process: drain the schedule ring, run what is due, sleep until the
    next planned look (or a request due sooner wakes it)."""
    if _ring is None or _pipe is None:
        raise TimerError("timer.init() was not called before fork")
    global _active
    loop = _active = TimerLoop()
    rfd = _pipe[0]
    tick = TICK_MS / 1000.0
    monotonic = time.monotonic
    ring = _ring
    while not should_stop() and parent_alive():
        loop.feed(ring.drain())
        loop.run_due()
        # plan the next look: the grid point at or after the next due job, and publish it
        # before the last drain, so a request pushed from now on that is due sooner wakes
        # us (see schedule())
        now = monotonic()
        nxt = loop.heap[0][0] if loop.heap else None
        wake = now + IDLE_MAX_S
        if nxt is not None and nxt < wake:
            per = loop.heap[0][2].periodic
            if per is not None and per.interval_ms < TICK_MS:
                wake = max(now, nxt)    # a job asking for less than a tick (rtimer "u"
                                        # intervals, Kamailio's utimer) runs on time
            else:
                wake = max(now, -(-nxt // tick) * tick)
        ring.wake_at = int(wake * 1e6)
        late = ring.drain()
        if late:
            loop.feed(late)
            continue
        r, _, _ = select.select([rfd], [], [], max(0.0, wake - monotonic()))
        if r:
            try:
                os.read(rfd, 4096)
            except (BlockingIOError, InterruptedError):
                pass
