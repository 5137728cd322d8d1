"""Per-transaction settings and questions from the script: t_on_*(), t_set_*(), t_is_set(),
the t_branch_*/t_any_*/t_is_*/t_*_status predicates, t_drop_replies(), t_clean().

Runs in: SIP workers and the timer process (inside routes). Settings made before the
transaction exists go to the message's tm state (state.TM) and into the cell when it is
created or relayed; made after, they update the cell too.
"""
from __future__ import annotations

import logging
import re
from typing import Callable, Optional

from sipcore.mod import ANY_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE, Fx
from sipcore.route.ctx import RouteCtx, RouteType

from . import BF, DROP_MODE, IS_SET, RF, RFB, RFOB, REQ, mod
from .config import CFG
from .fsm import St
from .h_table import B_DROPPED, B_REPLIED, B_TIMEOUT, T_CANCELED, Branch, Cell
from .state import TM, table
from .t_lookup import cell_of
from .t_timer import is_expired, on_clean_timer

log = logging.getLogger(__name__)

_ARMABLE = {"on_failure": "failure_route[NAME]", "on_reply": "onreply_route[NAME]",
            "on_branch": "branch_route[NAME]",
            "on_branch_failure": "event_route[tm:branch-failure:NAME]"}


def _arm(what: str) -> Callable[[RouteCtx, str], int]:
    def fn(ctx: RouteCtx, name: str) -> int:
        st = TM.of(ctx)
        setattr(st, what, name or "")
        # in branch_route the branch's copy of ctx carries it (t_on_reply: that branch only)
        if st.tid is not None and ctx.route_type == RouteType.ONREPLY:
            def upd(c: Cell) -> None:
                setattr(c, what, name or "")

            table().update(st.tid, upd)
        return 1

    fn.__name__ = f"ki_t_{what}"
    fn.__doc__ = f"Arm {_ARMABLE[what]}."
    return fn


for _what in ("on_failure", "on_reply", "on_branch_failure"):
    mod.function("t_" + _what, args=(Fx.ROUTE,), routes=RFOB)(_arm(_what))
mod.function("t_on_branch", args=(Fx.ROUTE,), routes=RF)(_arm("on_branch"))


@mod.function("t_is_set", args=(IS_SET,), routes=ANY_ROUTE)
def ki_t_is_set(ctx: RouteCtx, target: str) -> int:
    """True if branch_route/failure_route/onreply_route is armed."""
    what = {"branch_route": "on_branch", "failure_route": "on_failure",
            "onreply_route": "on_reply"}[target]
    armed = getattr(TM.of(ctx), what)
    if armed is not None:
        return 1 if armed else -1
    cell = cell_of(ctx)
    return 1 if cell is not None and getattr(cell, what) else -1


# ---- per-transaction timer values ------------------------------------------------------------

def _set_values(ctx: RouteCtx, fr_inv: int = 0, fr: int = 0, t1: int = 0, t2: int = 0
                ) -> int:
    st = TM.of(ctx)
    for name, v in (("fr_inv", fr_inv), ("fr", fr), ("t1", t1), ("t2", t2)):
        if v:
            setattr(st, name, v)
    if st.tid is not None:
        def upd(c: Cell) -> None:
            if fr_inv:
                c.fr_inv_timer = fr_inv
            if fr:
                c.fr_timer = fr
            if t1:
                c.t1 = t1
            if t2:
                c.t2 = t2

        table().update(st.tid, upd)
    return 1


@mod.function("t_set_fr", args=(Fx.IGP,), routes=RFOB)
def ki_t_set_fr_inv(ctx: RouteCtx, fr_inv: int) -> int:
    """Set fr_inv_timer (ms) for this transaction."""
    return _set_values(ctx, fr_inv=fr_inv)


@mod.function("t_set_fr", args=(Fx.IGP, Fx.IGP), routes=RFOB)
def ki_t_set_fr(ctx: RouteCtx, fr_inv: int, fr: int) -> int:
    """Set fr_inv_timer and fr_timer (ms)."""
    return _set_values(ctx, fr_inv=fr_inv, fr=fr)


@mod.function("t_reset_fr", args=(), routes=RFOB)
def ki_t_reset_fr(ctx: RouteCtx) -> int:
    """Back to the module's fr timers."""
    return _set_values(ctx, fr_inv=CFG.fr_inv_timer, fr=CFG.fr_timer)


@mod.function("t_set_retr", args=(Fx.IGP, Fx.IGP), routes=RFOB)
def ki_t_set_retr(ctx: RouteCtx, t1: int, t2: int) -> int:
    """Set T1 and T2 (ms) for this transaction."""
    return _set_values(ctx, t1=t1, t2=t2)


@mod.function("t_reset_retr", args=(), routes=RFOB)
def ki_t_reset_retr(ctx: RouteCtx) -> int:
    """Back to the module's retransmission timers."""
    return _set_values(ctx, t1=CFG.retr_timer1, t2=CFG.retr_timer2)


@mod.function("t_set_max_lifetime", args=(Fx.IGP, Fx.IGP), routes=RFOB)
def ki_t_set_max_lifetime(ctx: RouteCtx, inv: int, noninv: int) -> int:
    """Max lifetime INVITE / non-INVITE (ms)."""
    st = TM.of(ctx)
    if inv:
        st.max_inv_lifetime = inv
    if noninv:
        st.max_noninv_lifetime = noninv
    return 1


@mod.function("t_reset_max_lifetime", args=(), routes=RFOB)
def ki_t_reset_max_lifetime(ctx: RouteCtx) -> int:
    """Back to the module's max lifetimes."""
    st = TM.of(ctx)
    st.max_inv_lifetime = st.max_noninv_lifetime = 0
    return 1


@mod.function("t_set_auto_inv_100", args=(Fx.IGP,), routes=REQ)
def ki_t_set_auto_inv_100(ctx: RouteCtx, on: int) -> int:
    """Per-transaction auto_inv_100."""
    TM.of(ctx).no_100 = not on
    return 1


def _switch(name: str, doc: str) -> Callable[[RouteCtx, int], int]:
    def fn(ctx: RouteCtx, on: int) -> int:
        setattr(TM.of(ctx), name, bool(on))
        return 1

    fn.__doc__ = doc
    return fn


mod.function("t_set_disable_6xx", args=(Fx.IGP,), routes=RFOB)(
    _switch("disable_6xx", "Per-transaction disable_6xx_block."))
mod.function("t_set_disable_failover", args=(Fx.IGP,), routes=RFOB)(
    _switch("disable_failover", "Per-transaction DNS failover off/on (no DNS failover yet: "
                                "the setting is kept, nothing reads it)."))
mod.function("t_set_no_e2e_cancel_reason", args=(Fx.IGP,), routes=RFOB)(
    _switch("no_e2e_cancel_reason", "1: don't copy Reason from CANCEL."))
mod.function("t_disable_e2e_cancel_reason", args=(Fx.IGP,), routes=RFOB)(
    _switch("no_e2e_cancel_reason", "Alias of t_set_no_e2e_cancel_reason."))
mod.function("t_set_disable_internal_reply", args=(Fx.IGP,), routes=ANY_ROUTE)(
    _switch("no_internal_reply", "Disable the internal reply on relay error."))


# ---- status predicates ------------------------------------------------------------------------

def _failed_branch(ctx: RouteCtx) -> tuple[Optional[Cell], Optional[Branch]]:
    cell = cell_of(ctx)
    if cell is None:
        return None, None
    best = TM.of(ctx).best
    idx = best[2] if best else ctx.branch_index
    if idx is None or idx < 0 or idx >= len(cell.branches):
        return cell, None
    return cell, cell.branches[idx]


@mod.function("t_branch_timeout", args=(), routes=BF)
def ki_t_branch_timeout(ctx: RouteCtx) -> int:
    """True if the failed branch timed out."""
    _c, br = _failed_branch(ctx)
    return 1 if br is not None and br.flags & B_TIMEOUT else -1


@mod.function("t_branch_replied", args=(), routes=BF)
def ki_t_branch_replied(ctx: RouteCtx) -> int:
    """True if the failed branch had received a reply."""
    _c, br = _failed_branch(ctx)
    return 1 if br is not None and br.flags & B_REPLIED else -1


@mod.function("t_any_timeout", args=(), routes=RFOB)
def ki_t_any_timeout(ctx: RouteCtx) -> int:
    """True if any branch timed out."""
    cell = cell_of(ctx)
    return 1 if cell is not None and any(b.flags & B_TIMEOUT for b in cell.branches) else -1


@mod.function("t_any_replied", args=(), routes=RFOB)
def ki_t_any_replied(ctx: RouteCtx) -> int:
    """True if any branch got a reply."""
    cell = cell_of(ctx)
    if cell is None:
        return -1
    cur = ctx.branch_index if ctx.route_type == RouteType.ONREPLY else -1
    return 1 if any(b.flags & B_REPLIED for i, b in enumerate(cell.branches)
                    if i != cur) else -1


@mod.function("t_is_canceled", args=(), routes=RFOB)
def ki_t_is_canceled(ctx: RouteCtx) -> int:
    """True if the transaction was CANCELed."""
    cell = cell_of(ctx)
    return 1 if cell is not None and cell.tflags & T_CANCELED else -1


@mod.function("t_is_expired", args=(), routes=RFOB)
def ki_t_is_expired(ctx: RouteCtx) -> int:
    """True if the max lifetime elapsed."""
    cell = cell_of(ctx)
    return 1 if cell is not None and is_expired(cell) else -1


@mod.function("t_grep_status", args=(Fx.IGP,), routes=RFOB)
def ki_t_grep_status(ctx: RouteCtx, code: int) -> int:
    """True if some branch's final reply had CODE."""
    cell = cell_of(ctx)
    return 1 if cell is not None and any(b.code == code and b.state >= St.COMPLETED
                                         for b in cell.branches) else -1


def status_code(ctx: RouteCtx) -> Optional[int]:
    """The status t_check_status and $T_reply_code look at in the current route."""
    best = TM.of(ctx).best
    if ctx.route_type in (RouteType.FAILURE, RouteType.BRANCH_FAILURE) and best is not None:
        return best[0]
    if ctx.msg.is_reply:
        return ctx.msg.status
    cell = cell_of(ctx)
    if cell is None:
        return None
    return cell.uas_code or None


@mod.function("t_check_status", args=(Fx.SPVE,), routes=RFB | ONREPLY_ROUTE)
def ki_t_check_status(ctx: RouteCtx, regex: str) -> int:
    """Regex against the relevant status code."""
    code = status_code(ctx)
    if code is None:
        return -1
    try:
        rx = re.compile(regex)
    except re.error:
        log.error("t_check_status: bad regular expression \"%s\"", regex)
        return -1
    return 1 if rx.search(str(code)) else -1


@mod.function("t_get_status_code", args=(), routes=ANY_ROUTE)
def ki_t_get_status_code(ctx: RouteCtx) -> int:
    """The most relevant status code, -1 if none."""
    code = status_code(ctx)
    return code if code else -1


# ---- replies and cleaning -------------------------------------------------------------------

@mod.function("t_drop_replies", args=(), routes=FAILURE_ROUTE)
def ki_t_drop_replies(ctx: RouteCtx) -> int:
    """Drop all received replies (mode a)."""
    return ki_t_drop_replies_mode(ctx, "a")


@mod.function("t_drop_replies", args=(DROP_MODE,), routes=FAILURE_ROUTE)
def ki_t_drop_replies_mode(ctx: RouteCtx, mode: str) -> int:
    """Drop replies: a all, l last leg, n none."""
    tid = TM.of(ctx).tid
    if tid is None or mode == "n":
        return 1

    def upd(c: Cell) -> None:
        for b in c.branches:
            if b.state >= St.COMPLETED:
                b.flags |= B_DROPPED

    table().update(tid, upd)
    return 1


@mod.function("t_clean", args=(), routes=ANY_ROUTE)
def ki_t_clean(ctx: RouteCtx) -> int:
    """Clean very old active transactions."""
    on_clean_timer()
    return 1


@mod.function("t_is_retr_async_reply", args=(), routes=ONREPLY_ROUTE)
def ki_t_is_retr_async_reply(ctx: RouteCtx) -> int:
    """True if a reply is suspended; replies are never suspended in PyKam's tm: always
    false."""
    return -1


@mod.function("t_use_uac_headers", args=(), routes=ANY_ROUTE)
def ki_t_use_uac_headers(ctx: RouteCtx) -> int:
    """Build local ACK/CANCEL from the UAC-side headers: they always are (from the request
    as sent on the branch), so this only confirms it."""
    return 1


