"""RFC 3261 section 17 transaction state machines as pure tables (plus RFC 6026 Accepted).

Runs in: any process (pure functions, no I/O, no shared state). tm's workers and timer
process look up transitions here; the tables are also what the unit tests drive as UAC<->UAS
pairs over a fake link with a fake clock.

A table maps (state, event) to a Transition: the next state and the actions the caller must
perform, in order. An event without an entry is not legal in that state and is ignored
(`step()` returns None): e.g. a timer that fires after its transaction left the state that
armed it.

Timers (RFC 3261 table 4) come from `Timers(t1, t2, t4)`: A/E start at T1 and double (E is
capped at T2 and goes to T2 once a provisional arrived), B/F/H/J are 64*T1, D >= 32 s over
UDP (0 reliable), I/K are T4 over UDP (0 reliable), G starts at T1 and doubles to T2.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Optional


class St(IntEnum):
    """Transaction states. One enum for all four machines (values are stored in shm)."""

    NONE = 0
    CALLING = 1        # client INVITE
    TRYING = 2         # client / server non-INVITE
    PROCEEDING = 3
    COMPLETED = 4
    CONFIRMED = 5      # server INVITE
    ACCEPTED = 6       # RFC 6026: after a 2xx (client and server INVITE)
    TERMINATED = 7


class Ev(IntEnum):
    """Events: messages received or sent by the TU, timers, transport errors."""

    RCV_1XX = 1
    RCV_2XX = 2
    RCV_3XX_6XX = 3
    RCV_REQ = 4        # server: retransmission of the request
    RCV_ACK = 5        # server INVITE: ACK for a non-2xx final reply
    SEND_1XX = 6       # server: TU sends a provisional
    SEND_2XX = 7
    SEND_3XX_6XX = 8
    TIMER_A = 10
    TIMER_B = 11
    TIMER_D = 12
    TIMER_E = 13
    TIMER_F = 14
    TIMER_G = 15
    TIMER_H = 16
    TIMER_I = 17
    TIMER_J = 18
    TIMER_K = 19
    TIMER_L = 20       # RFC 6026: end of the Accepted state
    TIMER_M = 21
    TRANSPORT_ERR = 22
    SEND_REQ = 23      # client: the TU sends the request (the transaction starts)


class Act(IntEnum):
    """What the transaction user/transport must do."""

    PASS_UP = 1          # client: hand the reply to the TU (tm reply processing)
    SEND_ACK = 2         # client INVITE: ACK the non-2xx final reply (hop by hop)
    RETRANSMIT = 3       # client: resend the request; server: resend the last reply
    SEND_REPLY = 4       # server: transmit the reply the TU passed down
    START_A = 5
    START_B = 6
    START_D = 7
    START_E = 8
    START_F = 9
    START_G = 10
    START_H = 11
    START_I = 12
    START_J = 13
    START_K = 14
    START_L = 15
    START_M = 16
    TIMEOUT = 17         # inform the TU: timeout (tm turns it into a 408)
    TRANSPORT_ERROR = 18
    ABSORB = 19          # drop the message (retransmission or ACK consumed)
    STOP_RETR = 20       # cancel A/E/G retransmissions


@dataclass(frozen=True, slots=True)
class Transition:
    state: int                  # an St value, kept as a plain int: cells store it as is
    actions: tuple[Act, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", int(self.state))


T = Transition
Table = dict[tuple[St, Ev], Transition]

# RFC 3261 17.1.1 figure 5, with RFC 6026 Accepted (2xx retransmissions passed up, timer M)
CLIENT_INVITE: Table = {
    (St.NONE, Ev.SEND_REQ): T(St.CALLING, (Act.START_A, Act.START_B)),
    (St.CALLING, Ev.TIMER_A): T(St.CALLING, (Act.RETRANSMIT, Act.START_A)),
    (St.CALLING, Ev.TIMER_B): T(St.TERMINATED, (Act.TIMEOUT,)),
    (St.CALLING, Ev.RCV_1XX): T(St.PROCEEDING, (Act.STOP_RETR, Act.PASS_UP)),
    (St.CALLING, Ev.RCV_2XX): T(St.ACCEPTED, (Act.STOP_RETR, Act.PASS_UP, Act.START_M)),
    (St.CALLING, Ev.RCV_3XX_6XX): T(St.COMPLETED,
                                    (Act.STOP_RETR, Act.SEND_ACK, Act.PASS_UP, Act.START_D)),
    (St.CALLING, Ev.TRANSPORT_ERR): T(St.TERMINATED, (Act.TRANSPORT_ERROR,)),
    (St.PROCEEDING, Ev.RCV_1XX): T(St.PROCEEDING, (Act.PASS_UP,)),
    (St.PROCEEDING, Ev.RCV_2XX): T(St.ACCEPTED, (Act.PASS_UP, Act.START_M)),
    (St.PROCEEDING, Ev.RCV_3XX_6XX): T(St.COMPLETED, (Act.SEND_ACK, Act.PASS_UP, Act.START_D)),
    (St.PROCEEDING, Ev.TIMER_B): T(St.TERMINATED, (Act.TIMEOUT,)),   # tm's fr_inv_timer
    (St.COMPLETED, Ev.RCV_3XX_6XX): T(St.COMPLETED, (Act.SEND_ACK, Act.ABSORB)),
    (St.COMPLETED, Ev.TRANSPORT_ERR): T(St.TERMINATED, (Act.TRANSPORT_ERROR,)),
    (St.COMPLETED, Ev.TIMER_D): T(St.TERMINATED),
    (St.ACCEPTED, Ev.RCV_2XX): T(St.ACCEPTED, (Act.PASS_UP,)),
    (St.ACCEPTED, Ev.RCV_1XX): T(St.ACCEPTED, (Act.ABSORB,)),
    (St.ACCEPTED, Ev.RCV_3XX_6XX): T(St.ACCEPTED, (Act.ABSORB,)),
    (St.ACCEPTED, Ev.TIMER_M): T(St.TERMINATED),
}

# RFC 3261 17.1.2 figure 6
CLIENT_NON_INVITE: Table = {
    (St.NONE, Ev.SEND_REQ): T(St.TRYING, (Act.START_E, Act.START_F)),
    (St.TRYING, Ev.TIMER_E): T(St.TRYING, (Act.RETRANSMIT, Act.START_E)),
    (St.TRYING, Ev.TIMER_F): T(St.TERMINATED, (Act.TIMEOUT,)),
    (St.TRYING, Ev.TRANSPORT_ERR): T(St.TERMINATED, (Act.TRANSPORT_ERROR,)),
    (St.TRYING, Ev.RCV_1XX): T(St.PROCEEDING, (Act.PASS_UP,)),
    (St.TRYING, Ev.RCV_2XX): T(St.COMPLETED, (Act.STOP_RETR, Act.PASS_UP, Act.START_K)),
    (St.TRYING, Ev.RCV_3XX_6XX): T(St.COMPLETED, (Act.STOP_RETR, Act.PASS_UP, Act.START_K)),
    (St.PROCEEDING, Ev.TIMER_E): T(St.PROCEEDING, (Act.RETRANSMIT, Act.START_E)),
    (St.PROCEEDING, Ev.TIMER_F): T(St.TERMINATED, (Act.TIMEOUT,)),
    (St.PROCEEDING, Ev.TRANSPORT_ERR): T(St.TERMINATED, (Act.TRANSPORT_ERROR,)),
    (St.PROCEEDING, Ev.RCV_1XX): T(St.PROCEEDING, (Act.PASS_UP,)),
    (St.PROCEEDING, Ev.RCV_2XX): T(St.COMPLETED, (Act.STOP_RETR, Act.PASS_UP, Act.START_K)),
    (St.PROCEEDING, Ev.RCV_3XX_6XX): T(St.COMPLETED,
                                       (Act.STOP_RETR, Act.PASS_UP, Act.START_K)),
    (St.COMPLETED, Ev.RCV_1XX): T(St.COMPLETED, (Act.ABSORB,)),
    (St.COMPLETED, Ev.RCV_2XX): T(St.COMPLETED, (Act.ABSORB,)),
    (St.COMPLETED, Ev.RCV_3XX_6XX): T(St.COMPLETED, (Act.ABSORB,)),
    (St.COMPLETED, Ev.TIMER_K): T(St.TERMINATED),
}

# RFC 3261 17.2.1 figure 7, with RFC 6026 Accepted (timer L)
SERVER_INVITE: Table = {
    (St.PROCEEDING, Ev.RCV_REQ): T(St.PROCEEDING, (Act.RETRANSMIT, Act.ABSORB)),
    (St.PROCEEDING, Ev.SEND_1XX): T(St.PROCEEDING, (Act.SEND_REPLY,)),
    (St.PROCEEDING, Ev.SEND_2XX): T(St.ACCEPTED, (Act.SEND_REPLY, Act.START_L)),
    (St.PROCEEDING, Ev.SEND_3XX_6XX): T(St.COMPLETED,
                                        (Act.SEND_REPLY, Act.START_G, Act.START_H)),
    (St.PROCEEDING, Ev.TRANSPORT_ERR): T(St.TERMINATED, (Act.TRANSPORT_ERROR,)),
    (St.COMPLETED, Ev.RCV_REQ): T(St.COMPLETED, (Act.RETRANSMIT, Act.ABSORB)),
    (St.COMPLETED, Ev.TIMER_G): T(St.COMPLETED, (Act.RETRANSMIT, Act.START_G)),
    (St.COMPLETED, Ev.TIMER_H): T(St.TERMINATED, (Act.TIMEOUT,)),
    (St.COMPLETED, Ev.RCV_ACK): T(St.CONFIRMED, (Act.STOP_RETR, Act.ABSORB, Act.START_I)),
    (St.COMPLETED, Ev.TRANSPORT_ERR): T(St.TERMINATED, (Act.TRANSPORT_ERROR,)),
    (St.CONFIRMED, Ev.RCV_ACK): T(St.CONFIRMED, (Act.ABSORB,)),
    (St.CONFIRMED, Ev.RCV_REQ): T(St.CONFIRMED, (Act.ABSORB,)),
    (St.CONFIRMED, Ev.TIMER_I): T(St.TERMINATED),
    (St.ACCEPTED, Ev.RCV_REQ): T(St.ACCEPTED, (Act.ABSORB,)),
    (St.ACCEPTED, Ev.SEND_2XX): T(St.ACCEPTED, (Act.SEND_REPLY,)),
    (St.ACCEPTED, Ev.TIMER_L): T(St.TERMINATED),
}

# RFC 3261 17.2.2 figure 8
SERVER_NON_INVITE: Table = {
    (St.TRYING, Ev.RCV_REQ): T(St.TRYING, (Act.ABSORB,)),
    (St.TRYING, Ev.SEND_1XX): T(St.PROCEEDING, (Act.SEND_REPLY,)),
    (St.TRYING, Ev.SEND_2XX): T(St.COMPLETED, (Act.SEND_REPLY, Act.START_J)),
    (St.TRYING, Ev.SEND_3XX_6XX): T(St.COMPLETED, (Act.SEND_REPLY, Act.START_J)),
    (St.PROCEEDING, Ev.RCV_REQ): T(St.PROCEEDING, (Act.RETRANSMIT, Act.ABSORB)),
    (St.PROCEEDING, Ev.SEND_1XX): T(St.PROCEEDING, (Act.SEND_REPLY,)),
    (St.PROCEEDING, Ev.SEND_2XX): T(St.COMPLETED, (Act.SEND_REPLY, Act.START_J)),
    (St.PROCEEDING, Ev.SEND_3XX_6XX): T(St.COMPLETED, (Act.SEND_REPLY, Act.START_J)),
    (St.PROCEEDING, Ev.TRANSPORT_ERR): T(St.TERMINATED, (Act.TRANSPORT_ERROR,)),
    (St.COMPLETED, Ev.RCV_REQ): T(St.COMPLETED, (Act.RETRANSMIT, Act.ABSORB)),
    (St.COMPLETED, Ev.TRANSPORT_ERR): T(St.TERMINATED, (Act.TRANSPORT_ERROR,)),
    (St.COMPLETED, Ev.TIMER_J): T(St.TERMINATED),
}


def initial_state(client: bool, invite: bool) -> int:
    if client:
        return int(St.CALLING if invite else St.TRYING)
    return int(St.PROCEEDING if invite else St.TRYING)


def table_for(client: bool, invite: bool) -> Table:
    if client:
        return CLIENT_INVITE if invite else CLIENT_NON_INVITE
    return SERVER_INVITE if invite else SERVER_NON_INVITE


def step(table: Table, state: int, ev: Ev) -> Optional[Transition]:
    """The transition for EV in STATE (an St, or the plain int a cell stores: an IntEnum
    key matches its int), or None when EV does not apply there."""
    return table.get((state, ev))


_SEND_1XX, _RCV_1XX, _SEND_2XX = Ev.SEND_1XX, Ev.RCV_1XX, Ev.SEND_2XX
_RCV_2XX, _SEND_3XX_6XX, _RCV_3XX_6XX = Ev.RCV_2XX, Ev.SEND_3XX_6XX, Ev.RCV_3XX_6XX


def reply_event(code: int, sending: bool = False) -> Ev:
    """The event a reply with status CODE is (received by a client / sent by a server)."""
    if code < 200:
        return _SEND_1XX if sending else _RCV_1XX
    if code < 300:
        return _SEND_2XX if sending else _RCV_2XX
    return _SEND_3XX_6XX if sending else _RCV_3XX_6XX


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 timer values in ms (table 4), from T1/T2/T4 and the transport."""

    t1: int = 500
    t2: int = 4000
    t4: int = 5000
    reliable: bool = False

    def first_retr(self) -> int:
        """Timer A / E / G start value; no retransmissions over reliable transports."""
        return 0 if self.reliable else self.t1

    def next_retr(self, current: int, invite: bool, proceeding: bool = False) -> int:
        """The next A (doubles without cap), E (doubles up to T2; T2 once proceeding) or G
        (doubles up to T2) interval. For tm, A is capped at T2 too, as Kamailio does."""
        if proceeding and not invite:
            return self.t2
        return min(current * 2, self.t2)

    def duration(self, act: Act) -> int:
        t1, t4 = self.t1, self.t4
        table = {
            Act.START_A: self.first_retr(), Act.START_E: self.first_retr(),
            Act.START_G: self.first_retr(),
            Act.START_B: 64 * t1, Act.START_F: 64 * t1, Act.START_H: 64 * t1,
            Act.START_J: 0 if self.reliable else 64 * t1,
            Act.START_D: 0 if self.reliable else max(32000, 64 * t1),
            Act.START_I: 0 if self.reliable else t4,
            Act.START_K: 0 if self.reliable else t4,
            Act.START_L: 64 * t1, Act.START_M: 64 * t1,
        }
        return table[act]


#: which timer event each START_* action arms
TIMER_OF: dict[Act, Ev] = {
    Act.START_A: Ev.TIMER_A, Act.START_B: Ev.TIMER_B, Act.START_D: Ev.TIMER_D,
    Act.START_E: Ev.TIMER_E, Act.START_F: Ev.TIMER_F, Act.START_G: Ev.TIMER_G,
    Act.START_H: Ev.TIMER_H, Act.START_I: Ev.TIMER_I, Act.START_J: Ev.TIMER_J,
    Act.START_K: Ev.TIMER_K, Act.START_L: Ev.TIMER_L, Act.START_M: Ev.TIMER_M,
}

RETR_TIMERS = frozenset({Ev.TIMER_A, Ev.TIMER_E, Ev.TIMER_G})
