"""Timers for modules: periodic jobs and one-shot callbacks, run in the timer process.

Runs in: registration in the master before forking (module mod_init); `schedule()` from any
process after fork; callbacks only in the timer process (or, in no-fork mode `-D`, in the single
process between messages).

Functions cannot cross process boundaries, so one-shot callbacks are registered by name before
fork (`register_handler`) and scheduled by name with a byte payload. A schedule request is one
record written to a pipe that the timer process reads: writes of at most PIPE_BUF bytes are
atomic, so workers never interleave records and never take a lock.
"""
from __future__ import annotations

import heapq
import os
import select
import struct
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from sipcore import log as klog

_REC = struct.Struct("<HIH")        # name length, delay ms, payload length
MAX_RECORD = select.PIPE_BUF
MAX_PAYLOAD = MAX_RECORD - _REC.size - 64


@dataclass(order=True)
class _Due:
    when: float
    seq: int
    name: str = field(compare=False)
    payload: bytes = field(compare=False, default=b"")
    periodic: Optional["Periodic"] = field(compare=False, default=None)


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
_pipe: Optional[tuple[int, int]] = None
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
    global _pipe, _active
    _active = None
    _periodic.clear()
    _handlers.clear()
    if _pipe is not None:
        for fd in _pipe:
            try:
                os.close(fd)
            except OSError:
                pass
    _pipe = None


def init() -> None:
    """Master, before fork: create the schedule pipe (non-blocking write end)."""
    global _pipe
    if _pipe is None:
        r, w = os.pipe()
        os.set_blocking(w, False)
        _pipe = (r, w)


def schedule(name: str, delay_ms: int, payload: bytes = b"") -> bool:
    """Run handler NAME with PAYLOAD after DELAY_MS, in the timer process. False when the
    request cannot be queued (unknown handler, payload too big, pipe full)."""
    if name not in _handlers:
        klog.emit(klog.L_ERR, f"timer: schedule of unknown handler {name}")
        return False
    nb = name.encode()
    if len(payload) > MAX_PAYLOAD or len(nb) > 64:
        klog.emit(klog.L_ERR, f"timer: payload for {name} too large ({len(payload)} bytes)")
        return False
    if _active is not None:             # the timer process itself, or no-fork mode
        _active.add(name, max(delay_ms, 0), payload)
        return True
    if _pipe is None:
        klog.emit(klog.L_ERR, f"timer: {name} scheduled but no timer process is running")
        return False
    rec = _REC.pack(len(nb), max(delay_ms, 0), len(payload)) + nb + payload
    try:
        os.write(_pipe[1], rec)
        return True
    except BlockingIOError:
        klog.emit(klog.L_ERR, f"timer: queue full, dropping {name}")
        return False


def schedule_many(items: list[tuple[str, int, bytes]]) -> int:
    """schedule() for several jobs at once (what one message arms): the records go to the
    timer process in as few pipe writes as possible, each at most PIPE_BUF bytes so it stays
    atomic. Returns how many were queued."""
    if _active is not None or _pipe is None or len(items) == 1:
        return sum(1 for name, delay, payload in items if schedule(name, delay, payload))
    chunks: list[bytes] = []
    cur = b""
    n = 0
    for name, delay, payload in items:
        nb = name.encode()
        if name not in _handlers or len(payload) > MAX_PAYLOAD or len(nb) > 64:
            schedule(name, delay, payload)      # logs why it is refused
            continue
        rec = _REC.pack(len(nb), max(delay, 0), len(payload)) + nb + payload
        if len(cur) + len(rec) > MAX_RECORD:
            chunks.append(cur)
            cur = b""
        cur += rec
        n += 1
    if cur:
        chunks.append(cur)
    for chunk in chunks:
        try:
            os.write(_pipe[1], chunk)
        except BlockingIOError:
            klog.emit(klog.L_ERR, "timer: queue full, dropping timer jobs")
            return 0
    return n


class TimerLoop:
    """The scheduler state of the process that runs timers."""

    def __init__(self) -> None:
        self.heap: list[_Due] = []
        self.buf = b""
        now = time.monotonic()
        for p in _periodic.values():
            self._push(now + p.first_ms / 1000.0, p.name, b"", p)

    def _push(self, when: float, name: str, payload: bytes, periodic: Optional[Periodic] = None
              ) -> None:
        global _seq
        _seq += 1
        heapq.heappush(self.heap, _Due(when, _seq, name, payload, periodic))

    def add(self, name: str, delay_ms: int, payload: bytes) -> None:
        self._push(time.monotonic() + delay_ms / 1000.0, name, payload)

    def timeout(self, cap: float = 0.5) -> float:
        if not self.heap:
            return cap
        return max(0.0, min(cap, self.heap[0].when - time.monotonic()))

    def feed(self, data: bytes) -> None:
        """Bytes read from the schedule pipe: complete records become heap entries."""
        self.buf += data
        while len(self.buf) >= _REC.size:
            nlen, delay, plen = _REC.unpack_from(self.buf)
            end = _REC.size + nlen + plen
            if len(self.buf) < end:
                break
            name = self.buf[_REC.size:_REC.size + nlen].decode("utf-8", "replace")
            payload = self.buf[_REC.size + nlen:end]
            self.buf = self.buf[end:]
            self.add(name, delay, payload)

    def run_due(self) -> int:
        """Run every job that is due; a failing job is logged and counted, never fatal."""
        now = time.monotonic()
        n = 0
        while self.heap and self.heap[0].when <= now:
            d = heapq.heappop(self.heap)
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
                klog.emit(klog.L_ERR, f"timer {d.name}: {type(exc).__name__}: {exc}")
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
    """Body of the timer process."""
    if _pipe is None:
        raise TimerError("timer.init() was not called before fork")
    global _active
    loop = _active = TimerLoop()
    rfd = _pipe[0]
    while not should_stop() and parent_alive():
        r, _, _ = select.select([rfd], [], [], loop.timeout())
        if r:
            try:
                data = os.read(rfd, 65536)
            except InterruptedError:
                data = b""
            if data:
                loop.feed(data)
        loop.run_due()
