"""tmx functions and $T_* pseudo-variables over tm's transactions.

Runs in: SIP workers and the timer process (inside routes). Shared state: tm's table in shm,
read and changed only through tm's API (bound in tmx's mod_init); t_precheck_trans adds
short-lived entries to it.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from sipcore.mod import ANY_ROUTE, EVENT_ROUTE, ONREPLY_ROUTE, REQUEST_ROUTE, Custom, Fx
from sipcore.msg import parse_msg
from sipcore.pv import cached_pv
from sipcore.pv.spec import FuncPv
from sipcore.route.ctx import Branch as Destination
from sipcore.route.ctx import RouteCtx, RouteType

from . import _any_inner, _no_inner, _t_inner, mod

log = logging.getLogger(__name__)

PRECHECK_TTL = 1.0      # s: covers the time a worker needs to create the transaction
T_FINAL_SENT = 8        # tm's flag: nothing more goes upstream (t_drop)


class _Bound:
    tm: Any = None      # tm's TmApi (mod_init)


TM = _Bound()


def _cell(ctx: RouteCtx) -> Any:
    return TM.tm.cell(ctx)


def _tid(ctx: RouteCtx) -> Optional[str]:
    return TM.tm.tid(ctx)


# ---- functions ---------------------------------------------------------------------------

@mod.function("t_precheck_trans", args=(), routes=REQUEST_ROUTE)
def ki_t_precheck_trans(ctx: RouteCtx) -> int:
    """True when the same request (a retransmission) is being processed by another process
    and has no transaction yet; ACK and CANCEL are never prechecked."""
    msg = ctx.msg
    if not mod.p.precheck_trans or not msg.is_request or msg.method in ("ACK", "CANCEL"):
        return -1
    return -1 if TM.tm.precheck(msg, PRECHECK_TTL) else 1


def _flush(ctx: RouteCtx, attr: str) -> int:
    tid = _tid(ctx)
    if tid is None:
        return -1
    value = getattr(ctx, attr)

    def upd(c: Any) -> None:
        setattr(c, attr, value)

    TM.tm.update(tid, upd)
    return 1


@mod.function("t_flush_flags", args=(), routes=ANY_ROUTE)
def ki_t_flush_flags(ctx: RouteCtx) -> int:
    """Copy the message flags into the transaction."""
    return _flush(ctx, "flags")


@mod.function("t_flush_xflags", args=(), routes=ANY_ROUTE)
def ki_t_flush_xflags(ctx: RouteCtx) -> int:
    """Copy the extended flags into the transaction."""
    return _flush(ctx, "xflags")


def _route_is(rt: RouteType, doc: str) -> Callable[[RouteCtx], int]:
    def fn(ctx: RouteCtx) -> int:
        return 1 if ctx.route_type & rt else -1

    fn.__doc__ = doc
    return fn


mod.function("t_is_failure_route", args=(), routes=ANY_ROUTE)(
    _route_is(RouteType.FAILURE, "True in a failure_route."))
mod.function("t_is_branch_route", args=(), routes=ANY_ROUTE)(
    _route_is(RouteType.BRANCH, "True in a branch_route."))
mod.function("t_is_reply_route", args=(), routes=ANY_ROUTE)(
    _route_is(RouteType.ONREPLY, "True in an onreply_route."))
mod.function("t_is_request_route", args=(), routes=ANY_ROUTE)(
    _route_is(RouteType.REQUEST, "True in the request route."))


@mod.function("t_reply_callid", args=(Fx.SPVE, Fx.SPVE, Fx.IGP, Fx.SPVE), routes=ANY_ROUTE)
def ki_t_reply_callid(ctx: RouteCtx, callid: str, cseq: str, code: int, reason: str) -> int:
    """Reply to the transaction found by Call-ID and CSeq."""
    tm = TM.tm
    tid = tm.find_by_callid(callid, cseq)
    if tid is None:
        log.error("t_reply_callid: no transaction for %s %s", callid, cseq)
        return -1
    cell = tm.get(tid)
    if cell is None:
        return -1
    return tm.t_reply(tm.request_ctx(cell, ctx.core), code, reason)


def _which(text: str) -> str:
    t = text.strip()
    if t not in ("all", "others", "this"):
        raise ValueError(f"t_cancel_branches: \"{text}\" (all, others or this expected)")
    return t


@mod.function("t_cancel_branches", args=(Custom(_which, name="which"),), routes=ONREPLY_ROUTE)
def ki_t_cancel_branches(ctx: RouteCtx, which: str) -> int:
    """CANCEL branches: all, others or this."""
    tid = _tid(ctx)
    if tid is None:
        return -1
    idx = ctx.branch_index
    if which == "all":
        ok = TM.tm.cancel(ctx.core, tid)
    elif which == "others":
        ok = TM.tm.cancel(ctx.core, tid, skip=idx)
    else:
        ok = TM.tm.cancel(ctx.core, tid, only=idx)
    return 1 if ok else -1


def _cancel_callid(ctx: RouteCtx, callid: str, cseq: str, flag: int, rcode: int = 0) -> int:
    tm = TM.tm
    tid = tm.find_by_callid(callid, cseq, "INVITE")
    if tid is None:
        return -1
    if flag > 0:
        def setf(c: Any) -> None:
            c.flags |= 1 << flag

        tm.update(tid, setf)
    return 1 if tm.cancel(ctx.core, tid) else -1


@mod.function("t_cancel_callid", args=(Fx.SPVE, Fx.SPVE, Fx.IGP), routes=ANY_ROUTE)
def ki_t_cancel_callid(ctx: RouteCtx, callid: str, cseq: str, flag: int) -> int:
    """CANCEL the INVITE transaction with Call-ID and CSeq; set flag."""
    return _cancel_callid(ctx, callid, cseq, flag)


@mod.function("t_cancel_callid", args=(Fx.SPVE, Fx.SPVE, Fx.IGP, Fx.IGP), routes=ANY_ROUTE)
def ki_t_cancel_callid_reason(ctx: RouteCtx, callid: str, cseq: str, flag: int,
                              rcode: int) -> int:
    """Same with the Reason cause code."""
    return _cancel_callid(ctx, callid, cseq, flag, rcode)


@mod.function("t_drop", args=(), routes=ANY_ROUTE)
def ki_t_drop(ctx: RouteCtx) -> int:
    """Drop the transaction (status 500)."""
    return ki_t_drop_code(ctx, 500)


@mod.function("t_drop", args=(Fx.IGP,), routes=ANY_ROUTE)
def ki_t_drop_code(ctx: RouteCtx, code: int) -> int:
    """Drop the transaction with status CODE: no reply goes out; its cell leaves the
    table."""
    tid = _tid(ctx)
    if tid is None:
        return -1

    def upd(c: Any) -> None:
        c.uas_code = code
        c.tflags |= T_FINAL_SENT

    TM.tm.update(tid, upd)
    TM.tm.release(tid)
    return 0


@mod.function("t_suspend", args=(), routes=ANY_ROUTE)
def ki_t_suspend(ctx: RouteCtx) -> int:
    """Suspend the request's processing (the transaction is created if needed): the script
    should exit; t_continue($T(id_index), $T(id_label), "ROUTE") resumes it later, in any
    process."""
    return 1 if TM.tm.suspend(ctx) else -1


@mod.function("t_continue", args=(Fx.IGP, Fx.IGP, Fx.ROUTE), routes=ANY_ROUTE)
def ki_t_continue(ctx: RouteCtx, index: int, label: int, route: str) -> int:
    """Resume the suspended transaction index:label by running route[ROUTE] on its request
    (it may t_relay() or t_reply()). 1 done, -1 no such suspended transaction."""
    tm = TM.tm
    cell = tm.resume(tm.tid_of(index, label))
    if cell is None:
        log.error("t_continue: no suspended transaction %s:%s", index, label)
        return -1
    rctx = tm.request_ctx(cell, ctx.core)
    routes = ctx.core.routes
    if routes is not None and routes.has_route("route", route):
        routes.run("route", route, rctx)
    return 1


@mod.function("t_reuse_branch", args=(), routes=EVENT_ROUTE | RouteType.BRANCH_FAILURE)
def ki_t_reuse_branch(ctx: RouteCtx) -> int:
    """In tm:branch-failure: the failed branch becomes the destination again (its URI,
    destination, flags, Path, socket and instance), for a t_relay() that resends it (RFC 5626
    outbound retries on another flow). 1 done, -1 outside tm:branch-failure."""
    cell = _cell(ctx)
    best = TM.tm.best(ctx)
    if ctx.route_type != RouteType.BRANCH_FAILURE or cell is None or best is None:
        log.error("t_reuse_branch: only in event_route[tm:branch-failure]")
        return -1
    idx = best[2]
    if not 0 <= idx < len(cell.branches):
        return -1
    br = cell.branches[idx]
    ctx.set_branch0(Destination(uri=br.uri, dst_uri=br.dst_uri or None, bflags=br.bflags,
                                force_socket=ctx.core.socket_by_text(br.sock) if br.sock
                                else None, instance=br.instance or None,
                                ruid=br.ruid or None))
    ctx.ruri_consumed = False
    return 1


# ---- pseudo-variables ------------------------------------------------------------------------

def _best(ctx: RouteCtx) -> tuple[Optional[int], Optional[str]]:
    best = TM.tm.best(ctx)
    if ctx.route_type in (RouteType.FAILURE, RouteType.BRANCH_FAILURE) and best is not None:
        return best[0], best[1]
    if ctx.msg.is_reply:
        return ctx.msg.status, ctx.msg.reason
    cell = _cell(ctx)
    if cell is None:
        return None, None
    return TM.tm.status_code(ctx), cell.best_reason or None


def _branch_of_reply(ctx: RouteCtx) -> Optional[int]:
    best = TM.tm.best(ctx)
    return best[2] if best else ctx.branch_index


def _t_branch_idx(ctx: RouteCtx) -> Any:
    return ctx.branch_index


def _t_reply_code(ctx: RouteCtx) -> Any:
    code, _r = _best(ctx)
    return code if code is not None else 0


def _t_reply_reason(ctx: RouteCtx) -> Any:
    _c, reason = _best(ctx)
    return reason


def _t_reply_last(ctx: RouteCtx) -> Any:
    cell = _cell(ctx)
    return cell.last_code if cell is not None and cell.last_code else None


def _t_reply_ruid(ctx: RouteCtx) -> Any:
    """ruid of the branch whose reply is being handled (failure_route: the winning one)."""
    cell = _cell(ctx)
    idx = _branch_of_reply(ctx)
    if cell is None or idx is None or not 0 <= idx < len(cell.branches):
        return None
    return cell.branches[idx].ruid or None


class _Nested:
    """$T_req(pv) / $T_rpl(pv) / $T_inv(pv): the inner PV on another message."""

    def __init__(self, which: str, inner: str) -> None:
        self.which = which
        self.inner = inner.strip()

    def _spec(self) -> Any:
        mc = mod.context
        return cached_pv(self.inner, mc.cfg.modules if mc is not None else None)

    def get(self, ctx: RouteCtx) -> Any:
        tm = TM.tm
        if self.which == "inv":
            if ctx.msg.method != "CANCEL":
                return None
            cell = tm.invite_cell(ctx.msg)
        else:
            cell = _cell(ctx)
        if cell is None:
            return None
        if self.which in ("req", "inv"):
            other = tm.request_ctx(cell, ctx.core)
        else:
            idx = _branch_of_reply(ctx)
            if ctx.msg.is_reply:
                other = ctx
            elif idx is None or idx < 0 or idx >= len(cell.branches) or \
                    not cell.branches[idx].reply:
                return None
            else:
                other = RouteCtx(msg=parse_msg(cell.branches[idx].reply), rcv=ctx.rcv,
                                 core=ctx.core, route_type=RouteType.ONREPLY)
        return self._spec().get(other)


def _t_attr(name: str) -> Callable[[RouteCtx], Any]:
    def get(ctx: RouteCtx) -> Any:
        if name == "branch_index":
            return ctx.branch_index
        if name == "reply_code":
            return _t_reply_code(ctx)
        if name == "reply_reason":
            return _t_reply_reason(ctx)
        if name == "reply_last":
            return _t_reply_last(ctx)
        if name == "reply_type":
            return 1 if ctx.msg.is_reply else 0
        cell = _cell(ctx)
        if cell is None:
            return None
        if name == "id_index":
            return int(cell.tid[:8], 16)
        if name == "id_label":
            return int(cell.tid[8:], 16)
        if name == "ruid":
            return _t_reply_ruid(ctx)
        return None

    return get


def _t_branch(inner: str) -> Callable[[RouteCtx], Any]:
    def get(ctx: RouteCtx) -> Any:
        cell = _cell(ctx)
        idx = ctx.branch_index
        if cell is None or idx is None or idx >= len(cell.branches):
            return None
        br = cell.branches[idx]
        return {"flags": br.bflags, "uri": br.uri, "ruid": br.ruid or None}.get(inner)

    return get


PVS: list[tuple[str, Callable[[Optional[str]], None], str]] = [
    ("T_branch_idx", _no_inner, "Index of the branch being processed."),
    ("T_reply_code", _no_inner, "Status of the reply that completed the transaction."),
    ("T_reply_reason", _no_inner, "Reason phrase of that reply."),
    ("T_reply_last", _no_inner, "Last received reply status."),
    ("T_reply_ruid", _no_inner, "ruid of the contact of the winning branch."),
    ("T_req", _any_inner, "$T_req(pv): PV evaluated on the transaction's request."),
    ("T_rpl", _any_inner, "$T_rpl(pv): PV evaluated on the reply."),
    ("T_inv", _any_inner, "$T_inv(pv): PV evaluated on the INVITE of a CANCEL."),
    ("T_branch", _any_inner, "$T_branch(name): attribute of the current branch."),
    ("T", _t_inner, "$T(name): transaction attribute."),
]

_SIMPLE: dict[str, Callable[[RouteCtx], Any]] = {
    "T_branch_idx": _t_branch_idx, "T_reply_code": _t_reply_code,
    "T_reply_reason": _t_reply_reason, "T_reply_last": _t_reply_last,
    "T_reply_ruid": _t_reply_ruid,
}


def pv_factory(name: str, check: Callable[[Optional[str]], None]) -> Callable[..., Any]:
    def factory(inner: Optional[str]) -> Any:
        check(inner)
        text = f"${name}({inner})" if inner else f"${name}"
        if name in _SIMPLE:
            return FuncPv(_SIMPLE[name], text=text)
        assert inner is not None
        if name == "T":
            return FuncPv(_t_attr(inner.strip()), text=text)
        if name == "T_branch":
            return FuncPv(_t_branch(inner.strip()), text=text)
        nested = _Nested(name[2:], inner)
        return FuncPv(nested.get, text=text)

    return factory
