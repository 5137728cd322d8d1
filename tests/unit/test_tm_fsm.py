"""RFC 3261 section 17 state machines (modules/tm/fsm.py) driven as UAC<->UAS pairs over a
fake link with a fake clock: retransmissions, losses, timeouts, ACK absorption."""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Optional

import pytest

from modules.tm import fsm
from modules.tm.fsm import Act, Ev, St


@dataclass
class Clock:
    now: int = 0
    heap: list = field(default_factory=list)
    seq: int = 0

    def at(self, delay: int, fn) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (self.now + delay, self.seq, fn))

    def run_until(self, t: int) -> None:
        while self.heap and self.heap[0][0] <= t:
            when, _s, fn = heapq.heappop(self.heap)
            self.now = when
            fn()
        self.now = t


class Link:
    """Delivers after 10 ms; drops the messages whose sequence numbers are in LOSE."""

    def __init__(self, clock: Clock, lose: frozenset[int] = frozenset()) -> None:
        self.clock, self.lose, self.n = clock, lose, 0
        self.log: list[tuple[int, str, str]] = []

    def send(self, to: "Tx", what: str) -> None:
        self.n += 1
        lost = self.n in self.lose
        self.log.append((self.clock.now, what, "lost" if lost else "ok"))
        if not lost:
            self.clock.at(10, lambda: to.receive(what))


class Tx:
    """One transaction endpoint driven only by the fsm tables."""

    def __init__(self, client: bool, invite: bool, clock: Clock, link: Link,
                 timers: fsm.Timers) -> None:
        self.client, self.invite = client, invite
        self.table = fsm.table_for(client, invite)
        self.state = fsm.initial_state(client, invite)
        self.clock, self.link, self.timers = clock, link, timers
        self.peer: Optional[Tx] = None
        self.retr = timers.first_retr()
        self.gen = 0                    # invalidates retransmission timers on STOP_RETR
        self.passed_up: list[str] = []
        self.timeouts = 0
        self.last_reply: Optional[str] = None
        self.tu_reply: Optional[str] = None     # server TU: what to answer, set by the test

    def start(self) -> None:
        assert self.client and self.peer is not None
        self.link.send(self.peer, "REQ")
        self._arm(Act.START_A if self.invite else Act.START_E)
        self._arm(Act.START_B if self.invite else Act.START_F)

    def _arm(self, act: Act) -> None:
        ev = fsm.TIMER_OF[act]
        if ev in fsm.RETR_TIMERS:
            if self.retr == 0:
                return
            gen, delay = self.gen, self.retr
            self.clock.at(delay, lambda: gen == self.gen and self.event(ev))
        else:
            self.clock.at(self.timers.duration(act), lambda: self.event(ev))

    def event(self, ev: Ev, what: str = "") -> None:
        tr = fsm.step(self.table, self.state, ev)
        if tr is None:
            return
        self.state = tr.state
        for act in tr.actions:
            if act == Act.RETRANSMIT:
                assert self.peer is not None
                if not self.client and self.last_reply is None:
                    continue            # nothing sent yet: nothing to resend
                self.link.send(self.peer, "REQ" if self.client else self.last_reply or "")
                if ev in fsm.RETR_TIMERS:
                    self.retr = self.timers.next_retr(self.retr, self.invite,
                                                      self.state == St.PROCEEDING)
            elif act == Act.STOP_RETR:
                self.gen += 1
            elif act == Act.PASS_UP:
                self.passed_up.append(what)
            elif act == Act.SEND_ACK:
                assert self.peer is not None
                self.link.send(self.peer, "ACK")
            elif act == Act.SEND_REPLY:
                assert self.peer is not None
                self.last_reply = what
                self.link.send(self.peer, what)
            elif act == Act.TIMEOUT:
                self.timeouts += 1
            elif act in fsm.TIMER_OF:
                self._arm(act)

    def receive(self, what: str) -> None:
        if self.client:
            self.event(fsm.reply_event(int(what)), what)
        elif what == "ACK":
            self.event(Ev.RCV_ACK)
        elif self.last_reply is None and self.tu_reply is not None:
            self.send_reply(self.tu_reply)      # the TU answers the first copy
        else:
            self.event(Ev.RCV_REQ)

    def send_reply(self, code: str) -> None:
        self.event(fsm.reply_event(int(code), sending=True), code)


def pair(invite: bool, lose: frozenset[int] = frozenset(), reliable: bool = False,
         timers: Optional[fsm.Timers] = None):
    clock = Clock()
    link = Link(clock, lose)
    t = timers or fsm.Timers(500, 4000, 5000, reliable)
    uac, uas = Tx(True, invite, clock, link, t), Tx(False, invite, clock, link, t)
    uac.peer, uas.peer = uas, uac
    return clock, link, uac, uas


def test_invite_non_2xx_ack_hop_by_hop():
    clock, link, uac, uas = pair(True)
    uas.tu_reply = "486"
    uac.start()
    clock.run_until(100)
    assert uac.passed_up == ["486"] and uac.state == St.COMPLETED
    assert uas.state == St.CONFIRMED                 # the ACK reached the UAS transaction
    assert [w for _t, w, _s in link.log] == ["REQ", "486", "ACK"]
    clock.run_until(40000)
    assert uac.state == St.TERMINATED and uas.state == St.TERMINATED


def test_invite_2xx_goes_to_accepted_and_retransmissions_pass_up():
    clock, _link, uac, uas = pair(True)
    uac.start()
    clock.run_until(50)
    uas.send_reply("180")
    uas.send_reply("200")
    uas.send_reply("200")                        # the TU retransmits its 2xx (RFC 6026)
    clock.run_until(100)
    assert uac.passed_up == ["180", "200", "200"]
    assert uac.state == St.ACCEPTED and uas.state == St.ACCEPTED
    clock.run_until(64 * 500 + 100)
    assert uac.state == St.TERMINATED and uas.state == St.TERMINATED


def test_invite_retransmits_with_doubling_until_timer_b():
    clock, link, uac, _uas = pair(True, lose=frozenset(range(1, 100)))
    uac.start()
    clock.run_until(64 * 500 + 1)
    sends = [t for t, w, _s in link.log if w == "REQ"]
    gaps = [b - a for a, b in zip(sends, sends[1:], strict=False)]
    assert gaps[:4] == [500, 1000, 2000, 4000]
    assert max(gaps) == 4000                      # capped at T2, as tm does
    assert uac.timeouts == 1 and uac.state == St.TERMINATED


def test_lost_request_recovered_by_timer_a():
    clock, link, uac, uas = pair(True, lose=frozenset({1}))
    uas.tu_reply = "404"
    uac.start()
    clock.run_until(1000)
    assert uac.passed_up == ["404"]
    assert [w for _t, w, s in link.log if s == "lost"] == ["REQ"]


def test_lost_final_reply_is_retransmitted_by_timer_g_or_on_request_retransmission():
    clock, _link, uac, uas = pair(True, lose=frozenset({2}))
    uas.tu_reply = "486"
    uac.start()
    clock.run_until(2000)
    assert uac.passed_up == ["486"]
    assert uas.state == St.CONFIRMED


def test_non_invite_timer_e_goes_to_t2_in_proceeding():
    clock, link, uac, uas = pair(False, lose=frozenset({5, 6, 7, 8, 9, 10}))
    uac.start()
    clock.run_until(20)
    uas.send_reply("100")
    clock.run_until(20000)
    sends = [t for t, w, _s in link.log if w == "REQ"]
    gaps = [b - a for a, b in zip(sends, sends[1:], strict=False)]
    # the timer armed in Trying fires at T1; from Proceeding on it is T2 (RFC 3261 17.1.2.2)
    assert gaps[0] == 500 and gaps[1:] and all(g == 4000 for g in gaps[1:])
    assert uac.timeouts == 0 and uac.state == St.PROCEEDING
    clock.run_until(64 * 500 + 1)
    assert uac.timeouts == 1


def test_non_invite_completes_and_absorbs_retransmissions():
    clock, link, uac, uas = pair(False, lose=frozenset({2}))
    uas.tu_reply = "200"
    uac.start()
    clock.run_until(600)
    # the lost 200 is answered again when the retransmitted request arrives
    assert uac.passed_up == ["200"] and uac.state == St.COMPLETED
    assert [w for _t, w, _s in link.log] == ["REQ", "200", "REQ", "200"]
    clock.run_until(64 * 500 + 6000)
    assert uac.state == St.TERMINATED and uas.state == St.TERMINATED


def test_reliable_transport_no_retransmissions():
    clock, link, uac, _uas = pair(True, reliable=True, lose=frozenset({1}))
    uac.start()
    clock.run_until(64 * 500 + 1)
    assert [w for _t, w, _s in link.log] == ["REQ"]
    assert uac.timeouts == 1


@pytest.mark.parametrize("table", [fsm.CLIENT_INVITE, fsm.CLIENT_NON_INVITE,
                                   fsm.SERVER_INVITE, fsm.SERVER_NON_INVITE])
def test_tables_never_leave_terminated(table):
    assert not [k for k in table if k[0] == St.TERMINATED]
    for tr in table.values():     # plain ints (stored in shm as they are), all St values
        assert type(tr.state) is int and St(tr.state) in St


def test_step_ignores_events_not_in_state():
    assert fsm.step(fsm.CLIENT_INVITE, St.COMPLETED, Ev.TIMER_A) is None
    assert fsm.reply_event(183) == Ev.RCV_1XX and fsm.reply_event(603) == Ev.RCV_3XX_6XX
    assert fsm.reply_event(200, sending=True) == Ev.SEND_2XX
