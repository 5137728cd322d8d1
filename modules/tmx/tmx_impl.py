"""tmx functions and $T_* pseudo-variables over tm's transactions.

Runs in: SIP workers and the timer process (inside routes). Shared state: tm's table in shm
(read through modules.tm.t_funcs; t_precheck_trans adds short-lived "p|" index entries).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from sipcore import log as klog
from sipcore.mod.exports import RouteType
from sipcore.route.ctx import RouteCtx

from . import _any_inner, _no_inner, _t_inner, mod

PRECHECK_TTL = 1.0      # s: covers the time a worker needs to create the transaction


def _tm() -> Any:
    from modules.tm import t_funcs

    return t_funcs


def bind(name: str, nargs: int) -> Callable[[Callable[..., int]], Callable[..., int]]:
    def deco(fn: Callable[..., int]) -> Callable[..., int]:
        fe = mod.lookup(name, nargs)
        if fe is None:  # pragma: no cover
            raise KeyError(f"tmx has no {name}/{nargs}")
        fe.impl = fn
        return fn

    return deco


def _cell(ctx: RouteCtx) -> Any:
    from modules.tm import t_script

    return t_script._cell(ctx)


# ---- functions ---------------------------------------------------------------------------

@bind("t_precheck_trans", 0)
def ki_t_precheck_trans(ctx: RouteCtx) -> int:
    """True when the same request (a retransmission) is being processed by another process
    and has no transaction yet; ACK and CANCEL are never prechecked."""
    from modules.tm.t_lookup import request_key

    msg = ctx.msg
    if not mod.p.precheck_trans or not msg.is_request or msg.method in ("ACK", "CANCEL"):
        return -1
    tf = _tm()
    key = "p|" + request_key(msg, ruri_matching=bool(tf.cfg.ruri_matching))
    if tf.table().index_add(key, "-" * 16, PRECHECK_TTL) is None:
        return -1          # first copy: this process handles it
    return 1


@bind("t_flush_flags", 0)
def ki_t_flush_flags(ctx: RouteCtx) -> int:
    tid = ctx.extra.get(_tm().TID)
    if tid is None:
        return -1
    flags = ctx.flags

    def upd(c: Any) -> None:
        c.flags = flags

    _tm().table().update(tid, upd)
    return 1


def _route_is(rt: RouteType) -> Callable[[RouteCtx], int]:
    def fn(ctx: RouteCtx) -> int:
        return 1 if ctx.route_type & rt else -1

    return fn


bind("t_is_failure_route", 0)(_route_is(RouteType.FAILURE))
bind("t_is_branch_route", 0)(_route_is(RouteType.BRANCH))
bind("t_is_reply_route", 0)(_route_is(RouteType.ONREPLY))
bind("t_is_request_route", 0)(_route_is(RouteType.REQUEST))


@bind("t_reply_callid", 4)
def ki_t_reply_callid(ctx: RouteCtx, callid: str, cseq: str, code: int, reason: str) -> int:
    tf = _tm()
    tid = tf.find_by_callid(callid, cseq)
    if tid is None:
        klog.err(f"t_reply_callid: no transaction for {callid} {cseq}", ctx)
        return -1
    cell = tf.table().get(tid)
    if cell is None:
        return -1
    tctx = tf.ctx_from_cell(cell, ctx.core)
    return tf.t_reply(tctx, code, reason)


def _cancel(ctx: RouteCtx, tid: str, skip: int, only: int = -1) -> int:
    tf = _tm()
    out = tf.Out()

    def upd(c: Any) -> None:
        if only >= 0:
            keep = [i for i in range(len(c.branches)) if i != only]
            saved = [(i, c.branches[i].state) for i in keep]
            for i in keep:
                c.branches[i].state = 0
            tf._cancel_branches(ctx.core, c, out)
            for i, st in saved:
                c.branches[i].state = st
        else:
            tf._cancel_branches(ctx.core, c, out, skip=skip)

    cell, _ = tf.table().update(tid, upd)
    tf._flush(ctx.core, out)
    return 1 if cell is not None else -1


@bind("t_cancel_branches", 1)
def ki_t_cancel_branches(ctx: RouteCtx, which: str) -> int:
    tid = ctx.extra.get(_tm().TID)
    if tid is None:
        return -1
    idx = ctx.branch_index
    if which == "all":
        return _cancel(ctx, tid, -1)
    if which == "others":
        return _cancel(ctx, tid, idx)
    return _cancel(ctx, tid, -1, only=idx)


def _cancel_callid(ctx: RouteCtx, callid: str, cseq: str, flag: int, rcode: int = 0) -> int:
    tf = _tm()
    tid = tf.find_by_callid(callid, cseq, "INVITE")
    if tid is None:
        return -1
    if flag > 0:
        def setf(c: Any) -> None:
            c.flags |= 1 << flag

        tf.table().update(tid, setf)
    return _cancel(ctx, tid, -1)


bind("t_cancel_callid", 3)(lambda ctx, c, s, f: _cancel_callid(ctx, c, s, f))
bind("t_cancel_callid", 4)(_cancel_callid)


@bind("t_drop", 0)
def ki_t_drop(ctx: RouteCtx) -> int:
    return ki_t_drop_code(ctx, 500)


@bind("t_drop", 1)
def ki_t_drop_code(ctx: RouteCtx, code: int) -> int:
    """Drop the transaction: no reply goes out; its cell leaves the table."""
    tf = _tm()
    tid = ctx.extra.get(tf.TID)
    if tid is None:
        return -1

    def upd(c: Any) -> None:
        c.uas_code = code
        c.tflags |= 8      # T_FINAL_SENT: nothing more goes upstream

    tf.table().update(tid, upd)
    tf.t_release_now(tid)
    return 0


@bind("t_flush_xflags", 0)
def ki_t_flush_xflags(ctx: RouteCtx) -> int:
    tid = ctx.extra.get(_tm().TID)
    if tid is None:
        return -1
    xflags = ctx.xflags

    def upd(c: Any) -> None:
        c.xflags = xflags

    _tm().table().update(tid, upd)
    return 1


@bind("t_suspend", 0)
def ki_t_suspend(ctx: RouteCtx) -> int:
    """Suspend the request's processing (the transaction is created if needed): the script
    should exit; t_continue($T(id_index), $T(id_label), "ROUTE") resumes it later, in any
    process."""
    from modules.tm.h_table import T_SUSPENDED

    tf = _tm()
    if ctx.extra.get(tf.TID) is None:
        rc = tf.t_newtran(ctx)
        if rc <= 0:
            return -1
    snap = tf._ctx_snapshot(ctx)
    base = ctx.msg.build()

    def upd(c: Any) -> None:
        c.tflags |= T_SUSPENDED
        tf._apply_snapshot(c, snap)
        c.fwd_base = base
        c.ruri = ctx.msg.ruri

    cell, _ = tf.table().update(ctx.extra[tf.TID], upd)
    return 1 if cell is not None else -1


@bind("t_continue", 3)
def ki_t_continue(ctx: RouteCtx, index: int, label: int, route: str) -> int:
    """Resume the suspended transaction index:label by running route[ROUTE] on its request
    (it may t_relay() or t_reply()). 1 done, -1 no such suspended transaction."""
    from modules.tm.h_table import T_SUSPENDED, tid_of

    tf = _tm()
    tid = tid_of(index, label)
    was: list[bool] = []

    def upd(c: Any) -> None:
        was.append(bool(c.tflags & T_SUSPENDED))
        c.tflags &= ~T_SUSPENDED

    cell, _ = tf.table().update(tid, upd)
    if cell is None or not was[0]:
        klog.err(f"t_continue: no suspended transaction {index}:{label}", ctx)
        return -1
    rctx = tf.ctx_from_cell(cell, ctx.core)
    routes = ctx.core.routes
    if routes is not None and routes.has_route("route", route):
        routes.run("route", route, rctx)
    return 1


# ---- pseudo-variables ------------------------------------------------------------------------

def _best(ctx: RouteCtx) -> tuple[Optional[int], Optional[str]]:
    from modules.tm import t_script

    if ctx.route_type in (RouteType.FAILURE, RouteType.BRANCH_FAILURE) \
            and _tm().BEST in ctx.extra:
        code, reason, _i = ctx.extra[_tm().BEST]
        return code, reason
    if ctx.msg.is_reply:
        return ctx.msg.status, ctx.msg.reason
    cell = _cell(ctx)
    if cell is None:
        return None, None
    code = t_script.status_code(ctx)
    return code, cell.best_reason or None


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
    best = ctx.extra.get(_tm().BEST)
    idx = best[2] if best else ctx.branch_index
    if cell is None or idx is None or not 0 <= idx < len(cell.branches):
        return None
    return cell.branches[idx].ruid or None


class _Nested:
    """$T_req(pv) / $T_rpl(pv) / $T_inv(pv): the inner PV on another message."""

    def __init__(self, which: str, inner: str) -> None:
        self.which = which
        self.inner = inner.strip()

    def _spec(self) -> Any:
        from sipcore.pv import cached_pv

        from . import mod

        mc = mod.context
        return cached_pv(self.inner, mc.cfg.modules if mc is not None else None)

    def get(self, ctx: RouteCtx) -> Any:
        from sipcore.msg import parse_msg
        from sipcore.route.ctx import RouteCtx as Ctx

        tf = _tm()
        if self.which == "inv":
            if ctx.msg.method != "CANCEL":
                return None
            from modules.tm.t_lookup import invite_key_of

            tid = tf.table().index_get(invite_key_of(ctx.msg, bool(tf.cfg.ruri_matching)))
            cell = tf.table().get(tid) if tid else None
        else:
            cell = _cell(ctx)
        if cell is None:
            return None
        if self.which in ("req", "inv"):
            other = tf.ctx_from_cell(cell, ctx.core)
        else:
            best = ctx.extra.get(tf.BEST)
            idx = best[2] if best else ctx.branch_index
            if ctx.msg.is_reply:
                other = ctx
            elif idx is None or idx < 0 or idx >= len(cell.branches) or \
                    not cell.branches[idx].reply:
                return None
            else:
                other = Ctx(msg=parse_msg(cell.branches[idx].reply), rcv=ctx.rcv,
                            core=ctx.core, route_type=RouteType.ONREPLY)
        return self._spec().get(other)


def _t_attr(name: str) -> Callable[[RouteCtx], Any]:
    def get(ctx: RouteCtx) -> Any:
        cell = _cell(ctx)
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
        if cell is None:
            return None
        if name == "id_index":
            return int(cell.tid[:8], 16)
        if name == "id_label":
            return int(cell.tid[8:], 16)
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
        from sipcore.pv.spec import FuncPv

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
