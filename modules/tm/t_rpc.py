"""tm's RPCs (Kamailio tm_rpc / t_stats): tm.stats, tm.list, tm.hash_stats, tm.cancel,
tm.clean, tm.reply, tm.reply_callid.

Runs in: the ctl process (and workers running jsonrpc_exec). The table scans are operator
tools, not the hot path.
"""
from __future__ import annotations

from typing import Any, Optional

from sipcore import stats
from sipcore.errors import ParseError, RpcFault
from sipcore.msg import parse_msg
from sipcore.shm.hashtable import now_ms

from . import STATS, mod
from .h_table import T_CANCELED, Cell, tid_of
from .state import STATE, table
from .t_cancel import cancel_branches
from .t_ctx import ctx_from_cell
from .t_out import Out, flush
from .t_reply import t_reply
from .t_uac import _dot, rpc_table


def find_by_callid(callid: str, cseq: str, method: Optional[str] = None) -> Optional[str]:
    """The transaction with Call-ID CALLID and CSeq number CSEQ (tm.cancel, t_reply_callid,
    t_cancel_callid): a scan of the table (these are operator tools, not the hot path)."""
    num = cseq.strip().split(" ")[0]
    for c in table().cells():
        if method is not None and c.method != method:
            continue
        try:
            m = parse_msg(c.request)
            if m.callid == callid and str(m.cseq.num) == num:
                return c.tid
        except ParseError:
            continue
    return None


def rpc_stats(*_args: Any) -> dict[str, int]:
    cells = rpc_table().cells()
    waiting = sum(1 for c in cells if c.uas_code >= 200)
    snap = {name: stats.get("tmx:" + name) for name in STATS}
    return {"current": len(cells), "waiting": waiting, "total": snap["UAS_transactions"],
            "total_local": snap["UAC_transactions"], "rpl_received": snap["rpl_received"],
            "rpl_generated": snap["rpl_generated"], "rpl_sent": snap["rpl_sent"],
            "6xx": snap["6xx_transactions"], "5xx": snap["5xx_transactions"],
            "4xx": snap["4xx_transactions"], "3xx": snap["3xx_transactions"],
            "2xx": snap["2xx_transactions"], "created": snap["UAS_transactions"],
            "freed": max(0, snap["UAS_transactions"] - len(cells)), "delayed_free": 0}


def rpc_list(*_args: Any) -> list[dict[str, Any]]:
    out = []
    now = now_ms()
    for c in rpc_table().cells():
        try:
            m = parse_msg(c.request)
            callid, cseq, from_, to = m.callid, f"{m.cseq.num} {m.cseq.method}", \
                m.header("From").value, m.header("To").value
        except Exception as exc:  # noqa: BLE001 - a broken stored request is still listed
            callid = cseq = from_ = to = f"<unparsable: {exc}>"
        out.append({"tindex": c.tid, "tlabel": c.tid, "method": c.method,
                    "from": from_, "to": to, "callid": callid, "cseq": cseq,
                    "uas_request": c.method, "flags": c.tflags, "outgoings": len(c.branches),
                    "ref_count": 1, "lifetime": now - c.created_ms, "status": c.uas_code})
    return out


def rpc_hash_stats(*_args: Any) -> dict[str, int]:
    n = len(rpc_table().cells())
    return {"size": 4096, "used": n, "items": n}


def cancel_transaction(core: Any, tid: str, skip: int = -1, only: int = -1,
                       mark: bool = False) -> bool:
    """CANCEL the pending branches of TID (but SKIP, or only ONLY); MARK: the transaction
    counts as cancelled (t_is_canceled). False when it is gone."""
    out = Out()

    def upd(c: Cell) -> None:
        if mark:
            c.tflags |= T_CANCELED
        cancel_branches(core, c, out, skip=skip, only=only)

    cell, _ = table().update(tid, upd)
    flush(core, out)
    return cell is not None


def rpc_cancel(callid: str = "", cseq: str = "", *_args: Any) -> str:
    rpc_table()
    tid = find_by_callid(callid, cseq, "INVITE")
    if tid is None:
        raise RpcFault(481, "No such transaction")
    cancel_transaction(STATE.core, tid, mark=True)
    return "ok"


def rpc_clean(*_args: Any) -> str:
    rpc_table().expire()
    return "ok"


def _rpc_reply(tid: Optional[str], code: Any, reason: str, to_tag: Any, hdrs: Any,
               body: Any) -> str:
    if tid is None or rpc_table().get(tid) is None:
        raise RpcFault(481, "No such transaction")
    cell = table().get(tid)
    assert cell is not None
    ctx = ctx_from_cell(cell, STATE.core)
    if _dot(to_tag):
        def upd(c: Cell) -> None:
            c.to_tag = _dot(to_tag)

        table().update(tid, upd)
    headers = tuple(h.strip() for h in _dot(hdrs).replace("\r\n", "\n").split("\n")
                    if h.strip())
    if _dot(body):
        ctx.reply_body = (_dot(body).encode(), None)
    if t_reply(ctx, int(code), reason, headers) < 0:
        raise RpcFault(500, "reply failed")
    return "ok"


def rpc_reply(code: Any = 0, reason: str = "", trans_id: str = "", to_tag: Any = ".",
              hdrs: Any = ".", body: Any = "", *_args: Any) -> str:
    index, _c, label = str(trans_id).partition(":")
    try:
        tid = tid_of(int(index), int(label))
    except ValueError:
        raise RpcFault(400, "trans_id is index:label") from None
    return _rpc_reply(tid, code, reason, to_tag, hdrs, body)


def rpc_reply_callid(code: Any = 0, reason: str = "", callid: str = "", cseq: Any = "",
                     to_tag: Any = ".", hdrs: Any = ".", body: Any = "", *_args: Any) -> str:
    rpc_table()
    return _rpc_reply(find_by_callid(callid, str(cseq)), code, reason, to_tag, hdrs, body)


for _name, _fn, _doc in (
        ("tm.stats", rpc_stats, "Transaction statistics."),
        ("tm.list", rpc_list, "List the transactions."),
        ("tm.hash_stats", rpc_hash_stats, "Transaction hash table statistics."),
        ("tm.cancel", rpc_cancel, "callid cseq: CANCEL a transaction."),
        ("tm.clean", rpc_clean, "Clean old active transactions."),
        ("tm.reply", rpc_reply,
         "code reason trans_id(index:label) to_tag hdrs [body]: reply to a transaction."),
        ("tm.reply_callid", rpc_reply_callid, "code reason callid cseq to_tag hdrs [body].")):
    mod.rpc(_name, _fn, doc=_doc)
