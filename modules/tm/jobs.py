"""tm's timer jobs: what each one-shot timer carries, encoded once here.

Runs in: SIP workers and the timer process (encode when arming, decode when the job runs).
A job is scheduled by name with a byte payload (sipcore.timer); the payloads are short dotted
texts (the tid is 16 hex digits), decoded by the handler registered for the name.

| job | name | when | payload fields |
|---|---|---|---|
| RetrJob | tm:retr | timers A / E (request retransmission) | tid, branch, interval, A/E, first |
| FrJob | tm:fr | timers B / F (fr_timer, fr_inv_timer) | tid, branch, generation |
| UasJob | tm:uas | timers G / H (server INVITE, non-2xx) | tid, G/H |
| WaitJob | tm:wait | end of the wait state | tid, matching keys |
| LifeJob | tm:life | max_inv_lifetime / max_noninv_lifetime | tid |
| CancelRetrJob | tm:cretr | CANCEL retransmission | tid, branch, interval, elapsed |
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

Request = tuple[str, int, bytes]        # (job name, delay in ms, payload): Out.timers


@dataclass(slots=True)
class RetrJob:
    """Resend branch IDX of TID after INTERVAL ms (A for INVITE, E otherwise). FIRST: the
    branch's first retransmission job, which also arms its fr job when the branch is still
    pending then and no worker armed one (most branches are answered before T1)."""

    NAME = "tm:retr"
    tid: str
    idx: int
    interval: int
    kind: str                   # "A" or "E"
    first: bool = False

    def request(self) -> Request:
        tail = ".f" if self.first else ""
        return (self.NAME, self.interval,
                f"{self.tid}.{self.idx}.{self.interval}.{self.kind}{tail}".encode())

    @classmethod
    def decode(cls, payload: bytes) -> "RetrJob":
        tid, idx, interval, kind, *first = payload.decode().split(".")
        return cls(tid, int(idx), int(interval), kind, bool(first))


@dataclass(slots=True)
class FrJob:
    """Branch IDX of TID times out, unless its fr timer was re-armed since (GEN)."""

    NAME = "tm:fr"
    tid: str
    idx: int
    gen: int

    def request(self, delay_ms: int) -> Request:
        return (self.NAME, delay_ms, self.payload())

    def payload(self) -> bytes:
        return f"{self.tid}.{self.idx}.{self.gen}".encode()

    @classmethod
    def decode(cls, payload: bytes) -> "FrJob":
        tid, idx, gen = payload.decode().split(".")
        return cls(tid, int(idx), int(gen))


@dataclass(slots=True)
class UasJob:
    """Server INVITE transaction TID: G resends the final non-2xx reply, H gives up on the
    ACK."""

    NAME = "tm:uas"
    tid: str
    kind: str                   # "G" or "H"

    def request(self, delay_ms: int) -> Request:
        return (self.NAME, delay_ms, f"{self.tid}.{self.kind}".encode())

    @classmethod
    def decode(cls, payload: bytes) -> "UasJob":
        tid, kind = payload.decode().split(".")
        return cls(tid, kind)


@dataclass(slots=True)
class WaitJob:
    """End of the wait state: TID and its matching KEYS leave the table (the keys travel
    with the job, so the timer process needs no cell decode; None: read them from the
    cell)."""

    NAME = "tm:wait"
    tid: str
    keys: Optional[str] = None

    def request(self, delay_ms: int) -> Request:
        text = self.tid if self.keys is None else f"{self.tid}\n{self.keys}"
        return (self.NAME, delay_ms, text.encode("utf-8", "surrogateescape"))

    @classmethod
    def decode(cls, payload: bytes) -> "WaitJob":
        tid, nl, keys = payload.decode("utf-8", "surrogateescape").partition("\n")
        return cls(tid, keys if nl else None)


@dataclass(slots=True)
class LifeJob:
    """TID reached max_inv_lifetime / max_noninv_lifetime (timer C)."""

    NAME = "tm:life"
    tid: str

    def request(self, delay_ms: int) -> Request:
        return (self.NAME, delay_ms, self.tid.encode())

    @classmethod
    def decode(cls, payload: bytes) -> "LifeJob":
        return cls(payload.decode())


@dataclass(slots=True)
class CancelRetrJob:
    """Resend the CANCEL of branch IDX of TID; INTERVAL the current one, ELAPSED the time
    since the first send."""

    NAME = "tm:cretr"
    tid: str
    idx: int
    interval: int
    elapsed: int = 0

    def request(self) -> Request:
        return (self.NAME, self.interval,
                f"{self.tid}.{self.idx}.{self.interval}.{self.elapsed}".encode())

    @classmethod
    def decode(cls, payload: bytes) -> "CancelRetrJob":
        tid, idx, interval, elapsed = payload.decode().split(".")
        return cls(tid, int(idx), int(interval), int(elapsed))
