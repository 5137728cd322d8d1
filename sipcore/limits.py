"""Rate-limit algorithms shared by the ratelimit and pipelimit modules (Kamailio keeps two
copies of this logic, in ratelimit.c and pl_ht.c/pipelimit.c; PyKam keeps one).

Runs in: SIP workers (push: count one request and decide), the timer process (tick: close an
interval; update_load: CPU/network load and the FEEDBACK PID controller), the ctl process
(RPC views). Pure functions over compact records: the callers keep the records in shm and call
these under the lock that protects them (no I/O here except reading /proc in the load
readers, which the timer process calls outside any lock).

Algorithms (a pipe's `limit` is per interval of `interval` seconds, times `per_second` when the
module counts per second, as ratelimit does):
  TAILDROP  the first limit requests of an interval pass, the rest are dropped
  RED       random early drop: after an interval with load = counter / limit >= 1, every
            load-th request of the next interval is dropped (Kamailio's deterministic RED)
  NETWORK   drop while the bytes queued in the kernel's UDP sockets exceed limit
  FEEDBACK  drop with the probability computed by a PID controller that steers the CPU load
            to limit percent
  NOP       count only, never drop
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass, replace

ALGOS = ("NOP", "TAILDROP", "RED", "NETWORK", "FEEDBACK")
NOP, TAILDROP, RED, NETWORK, FEEDBACK = range(5)

_PIPE = struct.Struct("=iqqqii")      # algo, limit, counter, last_counter, load, unused ticks
_LOAD = struct.Struct("=ddqddddddqq")  # cpu, drop_rate, net, kp, ki, kd, int_err, last_err,
                                      # setpoint, last cpu total, last cpu idle


def algo_id(name: str) -> int:
    """Algorithm name (case-insensitive) -> id; ValueError for an unknown one."""
    try:
        return ALGOS.index(name.strip().upper())
    except ValueError:
        raise ValueError(f"unknown algorithm \"{name}\" (one of {', '.join(ALGOS)})") from None


@dataclass(frozen=True)
class Pipe:
    algo: int
    limit: int
    counter: int = 0          # requests in the current interval
    last_counter: int = 0     # requests in the previous interval
    load: int = 0             # RED: counter/limit of the previous interval
    unused: int = 0           # intervals without requests (pipelimit clean_unused)

    def pack(self) -> bytes:
        return _PIPE.pack(self.algo, self.limit, self.counter, self.last_counter, self.load,
                          self.unused)

    @classmethod
    def unpack(cls, raw: bytes) -> Pipe:
        return cls(*_PIPE.unpack(raw))

    @property
    def algo_name(self) -> str:
        return ALGOS[self.algo]


@dataclass(frozen=True)
class LoadState:
    """The load inputs and the FEEDBACK PID controller (one per module, in shm)."""
    cpu: float = 0.0            # 0..1, measured each interval
    drop_rate: float = 0.0      # FEEDBACK output, 0..1
    net: int = 0                # bytes queued in UDP sockets
    kp: float = 0.25
    ki: float = 0.25
    kd: float = 0.0
    int_err: float = 0.0
    last_err: float = 0.0
    setpoint: float = 0.0       # FEEDBACK target CPU load, 0..1
    cpu_total: int = 0
    cpu_idle: int = 0

    def pack(self) -> bytes:
        return _LOAD.pack(self.cpu, self.drop_rate, self.net, self.kp, self.ki, self.kd,
                          self.int_err, self.last_err, self.setpoint, self.cpu_total,
                          self.cpu_idle)

    @classmethod
    def unpack(cls, raw: bytes) -> LoadState:
        return cls(*_LOAD.unpack(raw))


def push(p: Pipe, load: LoadState, allowed: int,
         rand: float | None = None) -> tuple[Pipe, int]:
    """Count one request on pipe P. allowed = requests per interval for TAILDROP.
    Returns the updated pipe and 1 (pass) or -1 (drop)."""
    p = replace(p, counter=p.counter + 1, unused=0)
    if p.algo == TAILDROP:
        return p, (1 if p.counter <= allowed else -1)
    if p.algo == RED:
        if p.load <= 0:
            return p, 1
        return p, (-1 if p.counter % p.load == 0 else 1)
    if p.algo == NETWORK:
        return p, (-1 if load.net > p.limit else 1)
    if p.algo == FEEDBACK:
        r = random.random() if rand is None else rand
        return p, (-1 if r < load.drop_rate else 1)
    return p, 1


def tick(p: Pipe, allowed: int) -> Pipe:
    """Close an interval: RED load from its count, counters rotated."""
    load = p.counter // allowed if (p.algo == RED and allowed > 0) else 0
    return replace(p, counter=0, last_counter=p.counter, load=load,
                   unused=p.unused + (1 if p.counter == 0 else 0))


def update_load(st: LoadState, cpu_sample: tuple[int, int] | None, net: int | None,
                setpoint_percent: int | None) -> LoadState:
    """Timer: new CPU load from /proc/stat counters (total, idle), network load, and one step
    of the PID controller toward setpoint_percent (None: no FEEDBACK pipe, rate 0)."""
    cpu = st.cpu
    total, idle = st.cpu_total, st.cpu_idle
    if cpu_sample is not None:
        t, i = cpu_sample
        if st.cpu_total and t > st.cpu_total:
            cpu = max(0.0, min(1.0, 1.0 - (i - st.cpu_idle) / (t - st.cpu_total)))
        total, idle = t, i
    st = replace(st, cpu=cpu, cpu_total=total, cpu_idle=idle,
                 net=st.net if net is None else net)
    if setpoint_percent is None:
        return replace(st, drop_rate=0.0, int_err=0.0, last_err=0.0, setpoint=0.0)
    setpoint = setpoint_percent / 100.0
    err = cpu - setpoint
    int_err = max(-1.0, min(1.0, st.int_err + err))        # anti wind-up
    out = st.kp * err + st.ki * int_err + st.kd * (err - st.last_err)
    return replace(st, drop_rate=max(0.0, min(1.0, out)), int_err=int_err, last_err=err,
                   setpoint=setpoint)


def read_cpu() -> tuple[int, int] | None:
    """(total, idle+iowait) jiffies from /proc/stat, or None when unavailable."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            first = fh.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    vals = [int(v) for v in first[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals[:8]), idle


def read_net_queued() -> int | None:
    """Bytes waiting in the receive and send queues of every UDP socket (Kamailio's
    get_total_bytes_waiting), or None when /proc/net/udp cannot be read."""
    total = 0
    found = False
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path, encoding="ascii") as fh:
                next(fh, None)
                for line in fh:
                    parts = line.split()
                    if len(parts) > 4 and ":" in parts[4]:
                        tx, rx = parts[4].split(":")
                        total += int(tx, 16) + int(rx, 16)
                        found = True
        except OSError:
            continue
    return total if found else None
