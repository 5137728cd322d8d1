"""tm's timer jobs as the timer process runs them (Kamailio timer.c): retransmissions, fr
timeouts, timers G/H, max lifetime, the end of the wait state, the periodic clean.

Runs in: the timer process (or the -D process, or the harness between messages). Each
handler decodes its job (jobs.py), steps the state machine through t_fsm and completes the
transaction when a timeout ends its last branch; failure_route after a timeout runs here.
"""
from __future__ import annotations

import logging
from typing import Any

from sipcore import stats
from sipcore.shm.hashtable import now_ms

from .config import CFG
from .fsm import Ev, St
from .h_table import (
    B_CANCEL_SENT,
    B_FR_ARMED,
    B_REPLIED,
    B_TIMEOUT,
    T_CANCELED,
    T_EXPIRED,
    T_FINAL_SENT,
    T_IN_FAILURE,
    Cell,
)
from .jobs import FrJob, LifeJob, RetrJob, UasJob, WaitJob
from .state import STATE, table
from .t_cancel import cancel_branches, on_cancel_retr_timer, send_cancel
from .t_failure import branch_failure, finish_held, has_branch_failure_route, run_failure
from .t_fsm import client_event, server_event, wait_job
from .t_out import Out, flush
from .t_reply import finish

log = logging.getLogger(__name__)


# enum members looked up once (an Enum class attribute lookup goes through its metaclass)
_CALLING, _TRYING, _PROCEEDING = int(St.CALLING), int(St.TRYING), int(St.PROCEEDING)
_COMPLETED, _TERMINATED, _NONE = int(St.COMPLETED), int(St.TERMINATED), int(St.NONE)
_TIMER_A, _TIMER_E, _TIMER_B, _TIMER_F = Ev.TIMER_A, Ev.TIMER_E, Ev.TIMER_B, Ev.TIMER_F
_TIMER_G, _TIMER_H = Ev.TIMER_G, Ev.TIMER_H


def on_retr_timer(payload: bytes) -> None:
    """Timers A / E: resend the branch request while no reply stopped it. The first job of a
    branch also arms the branch's fr job when the branch is still pending and no worker armed
    one."""
    job = RetrJob.decode(payload)
    sf = table().branch_state(job.tid, job.idx)
    if sf is None:
        return
    state, flags = sf
    if state >= 0 and not (state == _CALLING if job.kind == "A"
                           else state == _TRYING or state == _PROCEEDING) \
            and not (job.first and state < _COMPLETED and not flags & B_FR_ARMED):
        return                      # answered (the usual case): no cell decode for it
    cell = table().get(job.tid)
    if cell is None or job.idx >= len(cell.branches):
        return
    br = cell.branches[job.idx]
    core = STATE.core
    out = Out()
    if job.first and br.state < _COMPLETED and not br.flags & B_FR_ARMED:
        out.timers.append(FrJob(job.tid, job.idx, br.fr_gen).request(
            max(0, br.fr_due - now_ms())))
    # a copy outside the lock: the branch's state does not change on A/E, only the request
    # is resent and the next job armed
    client_event(core, cell, job.idx, _TIMER_A if cell.invite else _TIMER_E, out,
                 retr_interval=job.interval)
    flush(core, out)


def on_fr_timer(payload: bytes) -> None:
    """fr_timer / fr_inv_timer (timers B / F): the branch gets a local 408 (487 when the
    transaction was cancelled) and the transaction may complete: failure_route runs here."""
    job = FrJob.decode(payload)
    idx = job.idx
    core = STATE.core
    out = Out()
    held: list[bool] = []

    def upd(c: Cell) -> None:
        if idx >= len(c.branches):
            return
        b = c.branches[idx]
        if b.fr_gen != job.gen or b.state >= _COMPLETED:
            return
        now = now_ms()
        due = b.inv_fr + c.fr_inv_timer if c.invite and b.inv_fr else b.fr_due
        if c.life_due:
            due = min(due, c.life_due)
        if due > now:           # fr_inv_timer started later: wait for its end
            b.fr_due = due
            out.timers.append(job.request(due - now))
            return
        if c.life_due and now >= c.life_due and not c.tflags & T_FINAL_SENT:
            _expire(core, c, out)   # max lifetime reached (t_relay arms no timer of its own)
            return
        if client_event(core, c, idx, _TIMER_B if c.invite else _TIMER_F, out) is None:
            b.state = _TERMINATED
        b.flags |= B_TIMEOUT
        b.code = 487 if c.tflags & T_CANCELED and c.invite else 408
        b.reply = b""
        stats.inc("tm:branch_timeouts")
        if c.invite and b.flags & B_REPLIED and not b.flags & B_CANCEL_SENT:
            send_cancel(core, c, idx, out)
        if has_branch_failure_route(c, core) and not c.tflags & T_IN_FAILURE:
            # a timed-out branch runs tm:branch-failure too (t_branch_timeout() is true
            # there; RFC 5626 outbound tries the next flow), before the transaction completes
            c.tflags |= T_IN_FAILURE
            held.append(True)
            return
        if not CFG.noisy_ctimer and c.invite and len(c.branches) == 1 and \
                not b.flags & B_REPLIED and not c.on_failure and not c.tflags & T_CANCELED:
            # noisy_ctimer=0: a single never-answered INVITE branch ends silently
            c.tflags |= T_FINAL_SENT
            out.timers.append(wait_job(c))
            return
        finish(core, c, out)

    cell, _ = table().update(job.tid, upd)
    if cell is None:
        return
    flush(core, out)
    if held:
        try:
            branch_failure(cell, idx, core, cell.branches[idx].code, "Request Timeout")
        finally:                # never leave the transaction held
            out = finish_held(job.tid, core)
    if out.failure is not None:
        run_failure(job.tid, out.failure, core)


def on_uas_timer(payload: bytes) -> None:
    """Timers G (resend the final non-2xx reply until the ACK) and H (give up waiting)."""
    job = UasJob.decode(payload)
    core = STATE.core
    out = Out()
    ev = _TIMER_G if job.kind == "G" else _TIMER_H

    def upd(c: Cell) -> None:
        server_event(core, c, ev, out)

    table().update(job.tid, upd)
    flush(core, out)


def _expire(core: Any, c: Cell, out: Out) -> None:
    """Max lifetime reached without a final reply upstream: pending branches are cancelled
    and count as timed out, and the transaction completes (Kamailio's lifetime expiry)."""
    c.tflags |= T_EXPIRED
    if c.tflags & T_IN_FAILURE:
        return
    if c.invite:
        cancel_branches(core, c, out, reason="Reason: SIP;cause=408")
    for b in c.branches:
        if _NONE < b.state < _COMPLETED:
            b.state = _TERMINATED
            b.flags |= B_TIMEOUT
            b.code = 487 if c.tflags & T_CANCELED and c.invite else 408
            b.reply = b""
    finish(core, c, out)


def on_life_timer(payload: bytes) -> None:
    """max_inv_lifetime / max_noninv_lifetime (timer C): a transaction still without a final
    reply upstream is expired: its pending branches are cancelled and count as timed out."""
    tid = LifeJob.decode(payload).tid
    core = STATE.core
    out = Out()

    def upd(c: Cell) -> None:
        if not c.tflags & T_FINAL_SENT:
            _expire(core, c, out)

    cell, _ = table().update(tid, upd)
    if cell is None:
        return
    flush(core, out)
    if out.failure is not None:
        run_failure(tid, out.failure, core)


def on_wait_timer(payload: bytes) -> None:
    """End of the wait state: the cell and its matching keys leave the table."""
    job = WaitJob.decode(payload)
    if job.keys is not None:
        release(job.tid, job.keys)
        return
    cell = table().get(job.tid)
    if cell is not None:
        release(job.tid, cell.keys)


def release(tid: str, keys: str) -> None:
    """The cell TID and its matching KEYS leave the table; the keys only if the cell was
    still there (a second wait job, an earlier t_release) and only while they still map to
    it (a retransmission may have made a new transaction with the same key)."""
    tbl = table()
    if tbl.delete(tid):
        for key in keys.split("\n"):
            if key:
                tbl.index_del(key, tid)


def on_clean_timer() -> None:
    """Periodic: drop entries whose ttl passed (lost timers, crashed processes)."""
    n = table().expire()
    if n:
        log.debug("tm: %s expired table entries removed", n)


def is_expired(cell: Cell) -> bool:
    life = CFG.max_inv_lifetime if cell.invite else CFG.max_noninv_lifetime
    return bool(cell.tflags & T_EXPIRED) or now_ms() - cell.created_ms > life


def register(timers: Any) -> None:
    """mod_init: the job handlers (by the jobs' names) and the periodic clean."""
    timers.register_handler(RetrJob.NAME, on_retr_timer)
    timers.register_handler(FrJob.NAME, on_fr_timer)
    timers.register_handler(UasJob.NAME, on_uas_timer)
    timers.register_handler(WaitJob.NAME, on_wait_timer)
    timers.register_handler(LifeJob.NAME, on_life_timer)
    timers.register_handler("tm:cretr", on_cancel_retr_timer)
    timers.register_timer("tm:clean", on_clean_timer, 2000)


