"""Creating server transactions (Kamailio t_lookup.c t_newtran, t_check_trans) and what
belongs to a new one: the automatic 100 Trying, the matching keys, ACK absorption.

Runs in: SIP workers. Shared state: the tm table (a new cell and its matching key).
"""
from __future__ import annotations

import logging
from typing import Optional

from sipcore import stats
from sipcore.mod import BRANCH_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE, REQUEST_ROUTE, Fx
from sipcore.reply import reply_dest
from sipcore.route import errcodes as E
from sipcore.route.ctx import RouteCtx, RouteType
from sipcore.shm import ShmOutOfMemory
from sipcore.shm.hashtable import now_ms

from . import REQ, mod
from .config import CFG
from .fsm import Ev, initial_state
from .h_table import (
    T_DISABLE_6XX,
    T_INVITE,
    T_IS_CANCEL,
    T_NO_100,
    T_NO_INTERNAL_REPLY,
    T_REPLICATE,
    Cell,
    new_tid,
)
from .jobs import LifeJob
from .state import TM, table
from .t_fsm import server_event
from .t_lookup import invite_tid, lookup_request, reply_branch, request_key, retransmit_reply
from .t_out import Out, flush
from .t_reply import local_reply, send_upstream, t_reply

log = logging.getLogger(__name__)

Pending = list[tuple[Cell, Out, float]]


def ttl(invite: bool) -> float:
    """How long a cell may stay in the table at most (its max lifetime, the wait state and
    timer H), plus a margin; the periodic clean removes what outlived it."""
    life = CFG.max_inv_lifetime if invite else CFG.max_noninv_lifetime
    return (life + CFG.wt_timer + 64 * CFG.retr_timer1) / 1000.0 + 5.0


def no_memory(ctx: RouteCtx) -> int:
    """Shared memory is full: no transaction; the script's sl_reply_error() answers 500."""
    log.error("tm: no shared memory left for a new transaction")
    stats.inc("tm:shm_oom")
    ctx.last_error = (500, "Server Internal Error (no memory)")
    return E.E_OUT_OF_MEM


def _avp_ms(ctx: RouteCtx, spec: Optional[str]) -> int:
    """fr_timer_avp / fr_inv_timer_avp: the AVP's value in seconds (legacy), as ms; 0 unset."""
    if not spec or ctx.avps is None:
        return 0
    name = spec.strip()
    if name.startswith("$avp(") and name.endswith(")"):
        name = name[5:-1]
    name = name.removeprefix("s:").removeprefix("i:")
    v = ctx.avps.first(int(name) if name.isdigit() else name)
    try:
        return int(v) * 1000 if v is not None else 0
    except ValueError:
        return 0


def _rcv_sock_text(ctx: RouteCtx) -> str:
    s = ctx.core.choose_socket(ctx.rcv.proto, ctx.rcv.src_ip)
    return str(s) if s is not None else ""


def t_newtran(ctx: RouteCtx, arm_life: bool = True, pending: Optional[Pending] = None) -> int:
    """Create the server transaction of ctx.msg. 1 created (or already ours), 0 when it is a
    retransmission (the last reply was resent; the script must stop), negative on error.

    arm_life=False (t_relay): no timer of its own for max_(non)inv_lifetime; the branches'
    fr timers are capped at it and expire the transaction (one timer job less per call).
    PENDING (t_relay): the new cell is not stored yet; (cell, out, ttl) is appended there and
    the caller stores it with its branches in one write, then flushes OUT (the 100 Trying).
    The matching key is in the table from the start, so a retransmission meanwhile is
    absorbed."""
    st = TM.of(ctx)
    if st.tid is not None:
        return 1
    msg = ctx.msg
    if not msg.is_request or msg.method == "ACK":
        log.error("t_newtran: no transaction for ACK or replies")
        return E.E_UNSPEC
    tbl = table()
    invite = msg.method == "INVITE"
    tid = new_tid()
    key = request_key(msg)
    life = ttl(invite)
    try:
        old = tbl.index_add(key, tid, life)
    except ShmOutOfMemory:
        return no_memory(ctx)
    if old is not None:
        retransmit_reply(ctx, old)
        return 0
    dest = reply_dest(msg, ctx.rcv, ctx.force_rport)
    rcv = ctx.rcv
    method = msg.method
    created = now_ms()
    tflags = T_INVITE if invite else 0
    if method == "CANCEL":
        tflags |= T_IS_CANCEL
    if st.no_100 or not CFG.auto_inv_100:
        tflags |= T_NO_100
    if st.replicate:
        tflags |= T_REPLICATE | T_NO_100
    if CFG.disable_6xx_block if st.disable_6xx is None else st.disable_6xx:
        tflags |= T_DISABLE_6XX
    if st.no_internal_reply:
        tflags |= T_NO_INTERNAL_REPLY
    max_life = (st.max_inv_lifetime or CFG.max_inv_lifetime) if invite \
        else (st.max_noninv_lifetime or CFG.max_noninv_lifetime)
    cell = Cell.make(
        tid=tid, tflags=tflags, method=method,
        uas_state=initial_state(False, invite), uas_proto=dest.proto,
        uas_ip=dest.ip, uas_port=dest.port,
        uas_sock=str(rcv.sock) if rcv.sock is not None else _rcv_sock_text(ctx),
        request=msg.buf, src_ip=rcv.src_ip, src_port=rcv.src_port,
        dst_ip=rcv.dst_ip, dst_port=rcv.dst_port, rcv_proto=rcv.proto,
        flags=ctx.flags, ruri=msg.ruri,
        fr_timer=st.fr or _avp_ms(ctx, CFG.fr_timer_avp) or CFG.fr_timer,
        fr_inv_timer=st.fr_inv or _avp_ms(ctx, CFG.fr_inv_timer_avp) or CFG.fr_inv_timer,
        t1=st.t1 or CFG.retr_timer1, t2=st.t2 or CFG.retr_timer2,
        created_ms=created, keys=key, life_due=created + max_life,
        on_failure=st.on_failure or "", on_reply=st.on_reply or "",
        on_branch=st.on_branch or "", on_branch_failure=st.on_branch_failure or "",
        branches=[])
    out = Out()
    if invite and not cell.tflags & T_NO_100:
        buf = local_reply(cell, 100, CFG.auto_inv_100_reason, req=msg)
        send_upstream(ctx.core, cell, out, buf, 100)
    if pending is not None:
        st.tid = tid
        stats.inc("tmx:UAS_transactions")
        pending.append((cell, out, life))
        return 1
    try:
        tbl.insert(cell, life)
    except ShmOutOfMemory:
        tbl.index_del(key)
        return no_memory(ctx)
    st.tid = tid
    if arm_life:
        out.timers.append(LifeJob(tid).request(cell.life_due - cell.created_ms))
    stats.inc("tmx:UAS_transactions")
    flush(ctx.core, out)
    return 1


def store_pending(ctx: RouteCtx, cell: Cell, out: Out, life: float, send: bool = True
                  ) -> bool:
    """Store a transaction t_newtran(pending=) made, then send what it queued (100 Trying;
    send=False: the caller sends it). False (and the transaction forgotten) when shared
    memory is full."""
    try:
        table().insert(cell, life)
    except ShmOutOfMemory:
        forget_pending(ctx, cell)
        return False
    if send:
        flush(ctx.core, out)
    return True


def forget_pending(ctx: RouteCtx, cell: Cell) -> None:
    tbl = table()
    for key in cell.keys.split("\n"):
        if key:
            tbl.index_del(key, cell.tid)
    TM.of(ctx).tid = None


def absorb_ack(ctx: RouteCtx) -> bool:
    """True when ctx.msg is an ACK for a non-2xx final reply of one of our INVITE server
    transactions: the server fsm moves to Confirmed (the wait state starts) and the ACK
    goes no further."""
    tid = invite_tid(ctx.msg)
    if tid is None:
        return False
    out = Out()

    def upd(c: Cell) -> bool:
        if c.uas_code < 300:
            return False
        server_event(ctx.core, c, Ev.RCV_ACK, out)  # None: e.g. confirmed already: absorbed
        return True

    cell, absorbed = table().update(tid, upd)
    if cell is None or not absorbed:
        return False
    stats.inc("tm:ack_absorbed")
    flush(ctx.core, out)
    return True


# ---- script functions -----------------------------------------------------------------------

@mod.function("t_newtran", args=(), routes=REQ)
def ki_t_newtran(ctx: RouteCtx) -> int:
    """Create the transaction atomically; 0 (stop) on a retransmission, negative on
    error."""
    return t_newtran(ctx)


@mod.function("t_check_trans", args=(), routes=REQUEST_ROUTE | ONREPLY_ROUTE | BRANCH_ROUTE)
def ki_t_check_trans(ctx: RouteCtx) -> int:
    """Replies: 1 when ours. CANCEL: 1 when its INVITE exists. ACK to a non-2xx reply of ours:
    absorbed, 0 (stop). Other requests: a retransmission gets the last reply again and the
    script stops (0); -1 when there is no transaction."""
    msg = ctx.msg
    tbl = table()
    if msg.is_reply:
        rb = reply_branch(msg)
        return 1 if rb is not None and tbl.get(rb[0]) is not None else -1
    if msg.method == "CANCEL":
        return 1 if invite_tid(msg) else -1
    if msg.method == "ACK":
        if absorb_ack(ctx):
            return 0
        return 1 if invite_tid(msg) else -1
    if TM.of(ctx).tid is not None:
        return 1
    tid = lookup_request(ctx)
    if tid is None:
        return -1
    retransmit_reply(ctx, tid)
    return 0


@mod.function("t_send_reply", args=(Fx.IGP, Fx.SPVE),
              routes=REQUEST_ROUTE | ONREPLY_ROUTE | FAILURE_ROUTE)
def ki_t_send_reply(ctx: RouteCtx, code: int, reason: str) -> int:
    """Create the transaction if needed, then t_reply."""
    if TM.of(ctx).tid is None and ctx.route_type == RouteType.REQUEST:
        rc = t_newtran(ctx)
        if rc <= 0:
            return rc
    if not 100 <= code <= 699:
        code, reason = CFG.default_code, CFG.default_reason
    return t_reply(ctx, code, reason)
