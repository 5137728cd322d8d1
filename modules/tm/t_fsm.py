"""The one place where the transaction state machines' actions are carried out.

Runs in: SIP workers and the timer process, inside a locked cell update: everything here only
changes the cell and fills the Out (sends and timer jobs happen when it is flushed).

fsm.py says, as tables, which state an event leads to and which actions follow; tm's
policy (which reply goes upstream, fr_inv_timer, failure_route) lives in t_reply/t_fwd.
`client_event` steps one branch (a client transaction), `server_event` the server
transaction, and both carry out the actions:

| action | client branch | server transaction |
|---|---|---|
| START_A / START_E | retransmission job at T1, then doubled (UDP only) | |
| START_B / START_F | fr job at fr_timer, capped by the max lifetime (1) | |
| START_G | | resend the final non-2xx reply at T1, doubled up to T2 (UDP only) |
| START_H | | give up waiting for the ACK after 64*T1 |
| START_I/J/L | | the wait state (wt_timer): then the cell leaves the table |
| START_D/K/M | covered by the cell's wait state | |
| SEND_ACK | hop-by-hop ACK of the non-2xx reply | |
| RETRANSMIT | resend the request | resend the last reply |
| SEND_REPLY | | the reply goes upstream |
| TIMEOUT | (the caller makes the local 408) | wait state ends at once |

(1) over UDP the first retransmission job arms it, when the branch is still pending then:
most branches are answered before T1 and need no fr job at all.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from sipcore import stats
from sipcore.shm.hashtable import now_ms

from . import fsm
from .config import CFG
from .fsm import (
    CLIENT_INVITE,
    CLIENT_NON_INVITE,
    SERVER_INVITE,
    SERVER_NON_INVITE,
    Act,
    Ev,
    St,
    Transition,
)
from .h_table import B_FR_ARMED, T_INVITE, Cell
from .jobs import FrJob, RetrJob, UasJob, WaitJob
from .t_out import Out, branch_dest, build_ack, uas_dest

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg import SipMsg


# the enum members as module constants: a class attribute lookup on an Enum goes through the
# enum metaclass (slow); these run for every action of every message
_START_A, _START_E, _START_B, _START_F = Act.START_A, Act.START_E, Act.START_B, Act.START_F
_START_G, _START_H, _SEND_ACK, _RETRANSMIT = Act.START_G, Act.START_H, Act.SEND_ACK, \
    Act.RETRANSMIT
_SEND_REPLY, _TIMEOUT = Act.SEND_REPLY, Act.TIMEOUT
_WAIT_ACTS = frozenset((Act.START_I, Act.START_J, Act.START_L))
_SEND_REQ = Ev.SEND_REQ
_PROCEEDING = int(St.PROCEEDING)


def wait_job(cell: Cell, delay_ms: Optional[int] = None) -> tuple[str, int, bytes]:
    """The job that ends CELL's wait state (after wt_timer by default): its tid and matching
    keys travel with it, so the timer process releases the cell without decoding it."""
    return WaitJob(cell.tid, cell.keys).request(CFG.wt_timer if delay_ms is None
                                                else delay_ms)


def fr_due(cell: Cell, now: int, timeout_ms: int) -> int:
    """When an fr timer of TIMEOUT_MS started NOW fires: capped by the max lifetime."""
    due = now + timeout_ms
    if cell.life_due:
        due = min(due, max(cell.life_due, now))
    return due


def client_event(core: Any, cell: Cell, idx: int, ev: Ev, out: Out,
                 reply: Optional["SipMsg"] = None, retr_interval: int = 0
                 ) -> Optional[Transition]:
    """Step branch IDX with EV and carry out the actions. REPLY: the received reply (for
    SEND_ACK); RETR_INTERVAL: the current A/E interval (for the next one). None when EV does
    not apply in the branch's state."""
    br = cell.branches[idx]
    invite = cell.tflags & T_INVITE
    tr = (CLIENT_INVITE if invite else CLIENT_NON_INVITE).get((br.state, ev))
    if tr is None:
        return None
    br.state = tr.state
    for act in tr.actions:
        if act is _START_A or act is _START_E:
            if br.retr_ms:
                kind = "A" if act is _START_A else "E"
                if ev is _SEND_REQ:
                    # the first job arms the fr job when the branch is still pending then:
                    # most branches are answered sooner and need none
                    job = RetrJob(cell.tid, idx, br.retr_ms, kind, first=True)
                else:
                    nxt = fsm.Timers(cell.t1, cell.t2).next_retr(
                        retr_interval, bool(invite), br.state == _PROCEEDING)
                    job = RetrJob(cell.tid, idx, nxt, kind)
                out.timers.append(job.request())
        elif act is _START_B or act is _START_F:
            now = now_ms()
            br.fr_due = fr_due(cell, now, cell.fr_timer)
            if not (br.retr_ms and br.fr_due > now + br.retr_ms):
                br.flags |= B_FR_ARMED
                out.timers.append(FrJob(cell.tid, idx, br.fr_gen).request(br.fr_due - now))
        elif act is _SEND_ACK and reply is not None:
            out.sends.append((branch_dest(core, cell, idx), build_ack(br.buf, reply)))
        elif act is _RETRANSMIT:
            out.sends.append((branch_dest(core, cell, idx), br.buf))
            stats.inc("tm:retransmissions")
    return tr


def server_event(core: Any, cell: Cell, ev: Ev, out: Out, buf: bytes = b""
                 ) -> Optional[Transition]:
    """Step the server transaction with EV and carry out the actions; BUF: the reply the TU
    sends (SEND_REPLY). None when EV does not apply in its state."""
    tr = (SERVER_INVITE if cell.tflags & T_INVITE else SERVER_NON_INVITE).get(
        (cell.uas_state, ev))
    if tr is None:
        return None
    cell.uas_state = tr.state
    reliable = cell.uas_proto != "udp"
    for act in tr.actions:
        if act is _SEND_REPLY:
            out.sends.append((uas_dest(core, cell), buf))
            stats.inc("tmx:rpl_sent")
        elif act is _RETRANSMIT:
            if cell.uas_reply:
                out.sends.append((uas_dest(core, cell), cell.uas_reply))
        elif act is _START_G:
            if not reliable:
                cell.uas_retr_ms = min(cell.uas_retr_ms * 2, cell.t2) if cell.uas_retr_ms \
                    else cell.t1
                out.timers.append(UasJob(cell.tid, "G").request(cell.uas_retr_ms))
        elif act is _START_H:
            out.timers.append(UasJob(cell.tid, "H").request(64 * cell.t1))
        elif act in _WAIT_ACTS:
            out.timers.append(wait_job(cell))
        elif act is _TIMEOUT:
            out.timers.append(wait_job(cell, 0))
    return tr
