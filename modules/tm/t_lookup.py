"""Transaction matching (Kamailio t_lookup.c): requests, ACK, CANCEL and replies.

Runs in: SIP workers and the timer process. The keys are pure functions over parsed
messages; the lookups go through h_table.TmTable (shm).

* RFC 3261 17.2.3: a request whose top Via branch starts with the magic cookie "z9hG4bK"
  matches the server transaction with the same branch, the same sent-by and the same method,
  where an ACK matches its INVITE. A CANCEL has a transaction of its own (method CANCEL) and
  finds the INVITE it cancels with the INVITE key (RFC 3261 9.2).
* RFC 2543 fallback (no magic cookie): Call-ID, CSeq number and method (ACK -> INVITE),
  From tag, the top Via as written and, with ruri_matching, the R-URI.
* Replies (17.1.3) carry our own branch ``z9hG4bK.t<tid>.<idx>``: the tid names the cell.

The matching parameters (via1_matching, callid_matching, callid_cseq_matching, ruri_matching)
are read from the values in effect (config.CFG): the keys must be the same in every process.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from sipcore import stats, timer
from sipcore.mod import Fx
from sipcore.route.ctx import RouteCtx, RouteType

from . import REQ, mod
from .config import CFG
from .h_table import Cell, parse_branch_id
from .jobs import WaitJob
from .state import table, tid_of
from .t_out import send, uas_dest

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg import SipMsg

MAGIC = "z9hG4bK"


def _sent_by(msg: "SipMsg") -> str:
    via = msg.via1
    assert via is not None
    return f"{via.host.lower()}:{via.port or ''}"


def request_key(msg: "SipMsg", method: Optional[str] = None,
                ruri_matching: Optional[bool] = None) -> str:
    """The server matching key of MSG, as METHOD (default: the request's, ACK -> INVITE).
    RURI_MATCHING: the ruri_matching parameter unless given."""
    m = method or msg.method
    if m == "ACK":
        m = "INVITE"
    if CFG.callid_cseq_matching:
        return f"c|{msg.callid}|{msg.cseq.num}|{m}"
    via = msg.via1
    assert via is not None
    branch = via.branch or ""
    if branch.startswith(MAGIC) and len(branch) > len(MAGIC):
        key3 = f"3|{branch}|{_sent_by(msg)}|{m}"
        return key3 + "|" + msg.callid if CFG.callid_matching else key3
    # RFC 2543: Call-ID, CSeq, From tag, top Via, R-URI (17.2.3 last paragraphs)
    key = f"2|{msg.callid}|{msg.cseq.num}|{m}|{msg.from_tag or ''}"
    if CFG.via1_matching:
        key += "|" + str(via)
    if CFG.ruri_matching if ruri_matching is None else ruri_matching:
        key += "|" + msg.orig_ruri
    return key


def invite_key_of(msg: "SipMsg") -> str:
    """The key of the INVITE transaction a CANCEL or ACK refers to."""
    return request_key(msg, "INVITE")


def reply_branch(msg: "SipMsg") -> Optional[tuple[str, int]]:
    """(tid, branch index) when the reply's top Via is one of our tm branches (the branch
    as the C scanner found it: the Via is not parsed for this)."""
    return parse_branch_id(msg.via1_branch)


# ---- lookups ------------------------------------------------------------------------------

def lookup_request(ctx: RouteCtx) -> Optional[str]:
    """The transaction of a received (non-ACK) request, by its matching key."""
    tid = tid_of(ctx)
    if tid is not None:
        return tid
    msg = ctx.msg
    if not msg.is_request:
        return None
    return table().index_get(request_key(msg))


def invite_tid(msg: "SipMsg") -> Optional[str]:
    """The INVITE transaction a CANCEL or ACK refers to, when it exists."""
    return table().index_get(invite_key_of(msg))


def cell_of(ctx: RouteCtx) -> Optional[Cell]:
    """The transaction the current route works on: the message's own, the one a request
    matches (request_route), or the one a reply belongs to (onreply_route)."""
    tid = tid_of(ctx)
    if tid is None and ctx.msg.is_request and ctx.route_type == RouteType.REQUEST \
            and ctx.msg.method != "ACK":
        tid = lookup_request(ctx)
    if tid is None and ctx.msg.is_reply:
        rb = reply_branch(ctx.msg)
        tid = rb[0] if rb else None
    return table().get(tid) if tid is not None else None


def retransmit_reply(ctx: RouteCtx, tid: str) -> int:
    """A retransmitted request: resend the last reply (if any). 1 resent, -1 none yet."""
    cell = table().get(tid)
    stats.inc("tmx:rpl_absorbed")
    if cell is None or not cell.uas_reply:
        return -1
    send(ctx.core, uas_dest(ctx.core, cell), cell.uas_reply)
    return 1


# ---- script functions -----------------------------------------------------------------------

@mod.function("t_lookup_request", args=(), routes=REQ)
def ki_t_lookup_request(ctx: RouteCtx) -> int:
    """True if the request matches an existing transaction."""
    return 1 if lookup_request(ctx) is not None else -1


def _lookup_cancel(ctx: RouteCtx, copy_flags: int) -> int:
    if ctx.msg.method != "CANCEL":
        return -1
    tid = invite_tid(ctx.msg)
    if tid is None:
        return -1
    if copy_flags == 1:
        cell = table().get(tid)
        if cell is not None:
            ctx.flags |= cell.flags
    return 1


@mod.function("t_lookup_cancel", args=(), routes=REQ)
def ki_t_lookup_cancel(ctx: RouteCtx) -> int:
    """True if the INVITE transaction of this CANCEL exists."""
    return _lookup_cancel(ctx, 0)


@mod.function("t_lookup_cancel", args=(Fx.INT,), routes=REQ)
def ki_t_lookup_cancel_flags(ctx: RouteCtx, copy_flags: int) -> int:
    """Same; with 1 copy the INVITE's flags."""
    return _lookup_cancel(ctx, copy_flags)


@mod.function("t_retransmit_reply", args=(), routes=REQ)
def ki_t_retransmit_reply(ctx: RouteCtx) -> int:
    """Resend the last reply of the UAS transaction."""
    tid = lookup_request(ctx)
    return retransmit_reply(ctx, tid) if tid is not None else -1


@mod.function("t_release", args=(), routes=REQ)
def ki_t_release(ctx: RouteCtx) -> int:
    """Put the transaction on the wait timer."""
    tid = lookup_request(ctx)
    if tid is None:
        return -1
    timer.schedule(*WaitJob(tid).request(CFG.wt_timer))
    return 1

