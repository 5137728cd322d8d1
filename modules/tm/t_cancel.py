"""CANCEL of client branches (Kamailio t_cancel.c): when, how, and its retransmission.

Runs in: SIP workers and the timer process; `cancel_branches` runs inside a locked cell update
(it changes the cell and fills the Out), the retransmission job in the timer process.
"""
from __future__ import annotations

from typing import Any

from sipcore import timer

from .config import CFG
from .fsm import St
from .h_table import B_CANCEL_PENDING, B_CANCEL_REPLIED, B_CANCEL_SENT, B_REPLIED, Cell
from .jobs import CancelRetrJob
from .state import table
from .t_out import Out, branch_dest, build_cancel, send
from .state import STATE


def cancel_branches(core: Any, cell: Cell, out: Out, skip: int = -1, reason: str = "",
                    only: int = -1) -> None:
    """CANCEL every pending INVITE branch (RFC 3261 9.1) but SKIP (or only branch ONLY):
    now when it has received a provisional, else when one arrives (cancel_b_method=1)."""
    for i, br in enumerate(cell.branches):
        if i == skip or (only >= 0 and i != only) or br.state not in (St.CALLING,
                                                                       St.PROCEEDING):
            continue
        if br.flags & (B_CANCEL_SENT | B_CANCEL_PENDING):
            continue
        if br.flags & B_REPLIED or CFG.cancel_b_method == 2:
            send_cancel(core, cell, i, out, reason)
        elif CFG.cancel_b_method == 0:
            # no reply yet: end the branch with a local 487 instead of a CANCEL
            br.state, br.code, br.reply = St.TERMINATED, 487, b""
        else:
            br.flags |= B_CANCEL_PENDING


def send_cancel(core: Any, cell: Cell, idx: int, out: Out, reason: str = "") -> None:
    """CANCEL branch IDX now; over UDP it is retransmitted (timer E of its own non-INVITE
    client transaction) until its reply arrives or the INVITE branch completes."""
    br = cell.branches[idx]
    br.flags = (br.flags & ~B_CANCEL_PENDING) | B_CANCEL_SENT
    out.sends.append((branch_dest(core, cell, idx), build_cancel(br.buf, reason)))
    if br.proto == "udp":
        out.timers.append(CancelRetrJob(cell.tid, idx, cell.t1).request())


def local_reason(value: str) -> str:
    """The Reason line of a CANCEL caused by a final reply (local_cancel_reason)."""
    return f"Reason: {value}" if CFG.local_cancel_reason else ""


def on_cancel_retr_timer(payload: bytes) -> None:
    """Retransmit a CANCEL until answered, the branch completed, or 64*T1 elapsed."""
    job = CancelRetrJob.decode(payload)
    elapsed = job.elapsed + job.interval
    cell = table().get(job.tid)
    if cell is None or job.idx >= len(cell.branches):
        return
    br = cell.branches[job.idx]
    if br.flags & B_CANCEL_REPLIED or br.state >= St.COMPLETED or elapsed >= 64 * cell.t1:
        return
    core = STATE.core
    send(core, branch_dest(core, cell, job.idx), build_cancel(br.buf, cell.cancel_reason))
    nxt = min(job.interval * 2, cell.t2)
    timer.schedule(*CancelRetrJob(job.tid, job.idx, nxt, elapsed).request())
