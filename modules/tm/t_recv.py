"""Replies from downstream (Kamailio t_reply.c reply_received): match the reply to a branch,
run onreply_route, step the branch, relay or hold the reply, complete the transaction.

Runs in: SIP workers, for every received reply (tm's `response` hook); failure routes that a
final reply completes run here too.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sipcore import stats
from sipcore.msg import parse_msg
from sipcore.route.ctx import RouteCtx, RouteType
from sipcore.shm.hashtable import now_ms

from . import fsm
from .config import CFG
from .fsm import Act
from .h_table import (
    B_CANCEL_PENDING,
    B_CANCEL_REPLIED,
    B_FR_ARMED,
    B_REPLIED,
    T_2XX_SENT,
    T_DISABLE_6XX,
    T_FINAL_SENT,
    T_IN_FAILURE,
    Cell,
)
from .jobs import FrJob
from .state import TM, table
from .t_cancel import cancel_branches, local_reason, send_cancel
from .t_ctx import restore_avps
from .t_failure import branch_failure, finish_held, has_branch_failure_route, run_failure
from .t_fsm import client_event, fr_due
from .t_lookup import reply_branch
from .t_out import Out, branch_dest, build_ack, flush, send, uas_dest
from .t_reply import finish, relay_buf, send_upstream

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg import SipMsg


_ABSORB, _SEND_ACK = Act.ABSORB, Act.SEND_ACK     # enum members, looked up once
_ONREPLY = RouteType.ONREPLY


def reply_received(ctx: RouteCtx) -> bool:
    """mod.response hook: True when the reply belongs to one of our transactions (it is then
    processed here and never relayed statelessly)."""
    msg = ctx.msg
    rb = reply_branch(msg)
    tbl = table()
    cell = tbl.get(rb[0], for_update=True) if rb is not None else None
    if rb is None or cell is None or rb[1] >= len(cell.branches) \
            or (CFG.callid_matching and not _same_callid(cell, msg)):
        return _sl_reply(ctx)
    tid, idx = rb
    stats.inc("tmx:rpl_received")
    code = msg.status
    if msg.cseq.method == "CANCEL" and cell.method != "CANCEL":
        # the reply to a CANCEL we sent on this branch: it ends that CANCEL's retransmissions
        if code >= 200:
            def cancel_done(c: Cell) -> None:
                c.branches[idx].flags |= B_CANCEL_REPLIED

            tbl.update(tid, cancel_done)
        stats.inc("tmx:rpl_absorbed")
        return True
    br = cell.branches[idx]
    tr = fsm.step(fsm.table_for(True, cell.invite), br.state, fsm.reply_event(code))
    if tr is None or _ABSORB in tr.actions:
        # a retransmission the branch no longer passes up (seen from this copy: no lock)
        if tr is not None and _SEND_ACK in tr.actions:
            send(ctx.core, branch_dest(ctx.core, cell, idx), build_ack(br.buf, msg))
        stats.inc("tmx:rpl_absorbed")
        return True
    st = TM.of(ctx)
    st.tid = tid
    ctx.branch_index = idx
    ctx.flags = cell.flags
    ctx.bflags = br.bflags
    restore_avps(ctx, cell.avps)
    routes = ctx.core.routes
    suppress = False        # `drop` in onreply_route: a 1xx/2xx is not relayed (state moves on)
    on_reply = br.on_reply or cell.on_reply
    if on_reply and routes is not None and routes.has_route("onreply", on_reply):
        ctx.dropped = False
        routes.run("onreply", on_reply, ctx)
        ctx.route_type = _ONREPLY
        suppress = ctx.dropped and code < 300
        if suppress:
            stats.inc("tmx:rpl_absorbed")
    raw = msg.build() if msg.lumps_pending else msg.buf
    relay, relay_code = b"", code
    if code < 300 and (code > 100 or CFG.relay_100) and not suppress:
        # edit the received message itself when the script left no edits (one parse less);
        # RAW, the reply as received, was taken above
        relay, relay_code = relay_buf(raw, parsed=None if msg.lumps_pending else msg)
    flags = ctx.flags
    core = ctx.core
    out = Out()
    # a negative reply runs tm:branch-failure before the transaction may complete (Kamailio)
    bf_route = code >= 300 and has_branch_failure_route(cell, core)
    held: list[bool] = []

    def upd(c: Cell) -> None:
        if client_event(core, c, idx, fsm.reply_event(code), out, reply=msg) is None:
            out.absorb = True
            return
        b = c.branches[idx]
        b.flags |= B_REPLIED
        c.last_code = code
        c.flags = flags
        if code < 200:
            _provisional(core, c, idx, code, out)
            if relay and not c.tflags & T_FINAL_SENT:
                send_upstream(core, c, out, relay, relay_code)
            return
        b.code = code
        if code < 300:
            # every 2xx goes upstream (RFC 3261 16.7 step 5), the others are cancelled
            c.best_code, c.best_reason = code, msg.reason
            if relay and (not c.tflags & T_2XX_SENT or c.invite):
                if c.tflags & T_2XX_SENT:
                    out.sends.append((uas_dest(core, c), relay))    # another 2xx
                else:
                    send_upstream(core, c, out, relay, relay_code)
            if c.invite:
                cancel_branches(core, c, out, skip=idx, reason=local_reason(
                    'SIP;cause=200;text="Call completed elsewhere"'))
            return
        b.reply = raw
        if code >= 600 and c.invite and not c.tflags & T_DISABLE_6XX:
            cancel_branches(core, c, out, skip=idx, reason=local_reason(f"SIP;cause={code}"))
        if bf_route and not c.tflags & T_IN_FAILURE:
            c.tflags |= T_IN_FAILURE        # held until the branch-failure route has run
            held.append(True)
            return
        finish(core, c, out)

    cell, _ = tbl.update(tid, upd)
    if cell is None:
        return True
    flush(core, out)
    try:
        if code >= 300 and cell.on_branch_failure and not out.absorb:
            branch_failure(cell, idx, ctx.core, code, msg.reason)
    finally:
        if held:                # never leave the transaction held
            out = finish_held(tid, core)
    if out.failure is not None:
        run_failure(tid, out.failure, core)
    return True


def _provisional(core: object, c: Cell, idx: int, code: int, out: Out) -> None:
    """A 1xx on branch IDX: its code, a pending CANCEL goes out now, and for INVITE the
    fr_inv_timer runs from now (restart_fr_on_each_reply: from every 1xx)."""
    b = c.branches[idx]
    if b.code < code:
        b.code = code
    if b.flags & B_CANCEL_PENDING:
        send_cancel(core, c, idx, out, c.cancel_reason)
    if c.invite and (CFG.restart_fr_on_each_reply or not b.inv_fr):
        # the armed fr timer, when it fires, sees the later deadline and re-arms itself in
        # the timer process; a new job is queued only when the deadline comes sooner
        now = now_ms()
        b.inv_fr = now
        due = fr_due(c, now, c.fr_inv_timer)
        if due < b.fr_due:
            b.fr_gen += 1
            b.fr_due = due
            b.flags |= B_FR_ARMED
            out.timers.append(FrJob(c.tid, idx, b.fr_gen).request(due - now))


def _same_callid(cell: Cell, msg: "SipMsg") -> bool:
    """callid_matching: a reply matches only with the Call-ID of the transaction's request."""
    return parse_msg(cell.request).callid == msg.callid


def _sl_reply(ctx: RouteCtx) -> bool:
    """A reply of no transaction: on_sl_reply's route may drop it (True: not forwarded)."""
    name = CFG.on_sl_reply
    routes = ctx.core.routes
    if not name or routes is None or not routes.has_route("onreply", name):
        return False
    ctx.dropped = False
    rc = routes.run("onreply", name, ctx)
    return ctx.dropped or rc == 0


