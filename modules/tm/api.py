"""TmApi: what other modules may use of tm (Kamailio load_tm_api / tm_binds).

Runs in: wherever the binding module runs (workers, the timer process, the ctl process).
acc and dialog register final-reply callbacks; dialog sends BYEs as local requests; tmx reads
and changes transactions through these methods, never through tm's internals.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from sipcore.shm import ShmOutOfMemory

from .h_table import T_SUSPENDED, Cell, tid_of
from .state import STATE, TM, table
from .t_create import t_newtran
from .t_ctx import Snapshot, ctx_from_cell
from .t_fwd import release_now
from .t_lookup import cell_of, invite_tid, request_key
from .t_reply import t_reply
from .t_rpc import cancel_transaction, find_by_callid
from .t_set import status_code
from .t_uac import uac_send

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg import SipMsg
    from sipcore.route.ctx import RouteCtx

FinalCallback = Callable[[Cell, int, bytes, Any], None]


class TmApi:
    """Kamailio's tm binds, as PyKam's tm offers them."""

    # ---- callbacks and local requests (acc, dialog) -------------------------------------
    def register_final_callback(self, fn: FinalCallback) -> None:
        """fn(cell, code, reply_buf, core) for every final reply sent upstream (Kamailio
        TMCB_RESPONSE_OUT for finals). Registered in the master, before fork."""
        if fn not in STATE.final_callbacks:
            STATE.final_callbacks.append(fn)

    def t_request(self, method: str, ruri: str, headers: str, body: str = "",
                  nexthop: str = "", socket: str = "", core: Any = None) -> Optional[str]:
        """Send a request generated here as a UAC transaction (Kamailio tmb.t_request /
        t_request_within: dialog's BYEs): HEADERS are "\\r\\n"-separated lines with From
        (tagged) and To, plus Call-ID, CSeq and Route for an in-dialog request; tm adds its
        Via and Content-Length, retransmits, and absorbs the replies. NEXTHOP overrides the
        R-URI as destination, SOCKET ("udp:ip:port") picks the sending socket. Returns the
        transaction id, None when nothing could be sent."""
        return uac_send(core if core is not None else STATE.core, method, ruri, nexthop,
                        socket, headers, body)

    # ---- the transaction of a message --------------------------------------------------
    def tid(self, ctx: "RouteCtx") -> Optional[str]:
        """The transaction ctx's message belongs to, when it has one yet."""
        return TM.of(ctx).tid

    def cell(self, ctx: "RouteCtx") -> Optional[Cell]:
        """The transaction the current route works on (a copy: see update())."""
        return cell_of(ctx)

    def invite_cell(self, msg: "SipMsg") -> Optional[Cell]:
        """The INVITE transaction a CANCEL refers to."""
        tid = invite_tid(msg)
        return table().get(tid) if tid else None

    def get(self, tid: str) -> Optional[Cell]:
        return table().get(tid)

    def update(self, tid: str, fn: Callable[[Cell], Any]) -> tuple[Optional[Cell], Any]:
        """Read-modify-write the cell under its lock: fn only computes (no I/O, no route)."""
        return table().update(tid, fn)

    def tid_of(self, index: int, label: int) -> str:
        """The tid of $T(id_index), $T(id_label)."""
        return tid_of(index, label)

    def find_by_callid(self, callid: str, cseq: str, method: Optional[str] = None
                       ) -> Optional[str]:
        return find_by_callid(callid, cseq, method)

    def request_ctx(self, cell: Cell, core: Any) -> "RouteCtx":
        """A request context rebuilt from the transaction ($T_req, t_continue, acc)."""
        return ctx_from_cell(cell, core)

    def best(self, ctx: "RouteCtx") -> Optional[tuple[int, str, int]]:
        """In failure routes: (code, reason, branch) of the reply that failed the
        transaction."""
        return TM.of(ctx).best

    def status_code(self, ctx: "RouteCtx") -> Optional[int]:
        """The status t_check_status and $T_reply_code look at in the current route."""
        return status_code(ctx)

    # ---- acting on transactions -----------------------------------------------------------
    def t_newtran(self, ctx: "RouteCtx") -> int:
        return t_newtran(ctx)

    def t_reply(self, ctx: "RouteCtx", code: int, reason: str,
                headers: tuple[str, ...] = ()) -> int:
        return t_reply(ctx, code, reason, headers)

    def cancel(self, core: Any, tid: str, skip: int = -1, only: int = -1) -> bool:
        """CANCEL the pending branches of TID (but SKIP, or only ONLY)."""
        return cancel_transaction(core, tid, skip, only)

    def release(self, tid: str) -> None:
        """The transaction leaves the table now (t_drop)."""
        release_now(tid)

    def precheck(self, msg: "SipMsg", ttl: float) -> bool:
        """t_precheck_trans: mark the request as being processed for TTL seconds; False
        when another process marked it first (a retransmission). ACK and CANCEL are never
        marked (the caller checks)."""
        try:
            return table().index_add("p|" + request_key(msg), "-" * 16, ttl) is None
        except ShmOutOfMemory:
            return True

    def suspend(self, ctx: "RouteCtx") -> bool:
        """t_suspend: the transaction (created if needed) keeps the request with the
        script's changes until resume()."""
        st = TM.of(ctx)
        if st.tid is None and t_newtran(ctx) <= 0:
            return False
        snap = Snapshot.of(ctx)
        base = ctx.msg.build()
        ruri = ctx.msg.ruri

        def upd(c: Cell) -> None:
            c.tflags |= T_SUSPENDED
            snap.apply(c)
            c.fwd_base = base
            c.ruri = ruri

        assert st.tid is not None
        cell, _ = table().update(st.tid, upd)
        return cell is not None

    def resume(self, tid: str) -> Optional[Cell]:
        """t_continue: the suspended transaction TID, no longer suspended; None when there
        is no such suspended transaction."""
        was: list[bool] = []

        def upd(c: Cell) -> None:
            was.append(bool(c.tflags & T_SUSPENDED))
            c.tflags &= ~T_SUSPENDED

        cell, _ = table().update(tid, upd)
        return cell if cell is not None and was[0] else None
