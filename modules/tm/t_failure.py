"""failure_route and event_route[tm:branch-failure:NAME] (Kamailio t_reply.c
run_failure_handlers / run_branch_failure_handlers).

Runs in: the SIP worker that got the last final reply, or the timer process after a timeout.
The routes run outside any lock on a request context rebuilt from the cell; what they change
(flags, $avp/$xavp, pending contacts, armed routes) is written back in one update, which also
completes the transaction when nothing new went out.
"""
from __future__ import annotations

from typing import Any

from sipcore import stats
from sipcore.route.ctx import RouteType

from .h_table import T_IN_FAILURE, Cell
from .state import TM, table
from .t_ctx import Snapshot, ctx_from_cell, dump_avps
from .t_out import Out, flush
from .t_reply import finish
from .t_serial import dump


def has_branch_failure_route(cell: Cell, core: Any) -> bool:
    routes = core.routes
    return bool(cell.on_branch_failure) and routes is not None and \
        routes.has_route("event", f"tm:branch-failure:{cell.on_branch_failure}")


def branch_failure(cell: Cell, idx: int, core: Any, code: int, reason: str) -> None:
    """event_route[tm:branch-failure:NAME] (t_on_branch_failure) for a negative reply on
    branch IDX (CODE REASON; 408 when the branch timed out), on the transaction's request
    with the reply available as $T_rpl. As in Kamailio's faked environment the R-URI is
    consumed (t_relay() there sends the branches it added, e.g. t_next_contact_flow(),
    unless $ru/$du change) and the xavps/flags it changes stay with the transaction."""
    routes = core.routes
    name = f"tm:branch-failure:{cell.on_branch_failure}"
    if routes is None or not routes.has_route("event", name):
        return
    fctx = ctx_from_cell(cell, core)
    fctx.branch_index = idx
    st = TM.of(fctx)
    st.best = (code, reason, idx)
    fctx.ruri_consumed = (fctx.msg.ruri, fctx.dst_uri)
    if idx < len(cell.branches):
        fctx.bflags = cell.branches[idx].bflags
        st.branch_instance = cell.branches[idx].instance
    routes.run("event", name, fctx)
    flags, contacts, avps = fctx.flags, dump(fctx), dump_avps(fctx)

    def upd(c: Cell) -> None:
        c.flags, c.contacts, c.avps = flags, contacts, avps

    table().update(cell.tid, upd)


def finish_held(tid: str, core: Any) -> Out:
    """After the branch-failure route: complete the transaction if every branch is done
    (the route may have added branches or replied)."""
    out = Out()

    def upd(c: Cell) -> None:
        c.tflags &= ~T_IN_FAILURE
        finish(core, c, out)

    table().update(tid, upd)
    flush(core, out)
    return out


def run_failure(tid: str, what: tuple[str, int, str, int], core: Any) -> None:
    """Run failure_route NAME for TID (in the worker that got the last final reply, or in the
    timer process after a timeout), then relay the best reply unless the route forwarded
    again (serial forking) or replied itself."""
    name, code, reason, best = what
    tbl = table()
    cell = tbl.get(tid)
    routes = core.routes
    if cell is None:
        return
    fctx = ctx_from_cell(cell, core)
    TM.of(fctx).best = (code, reason, best)
    fctx.route_type = RouteType.FAILURE
    if 0 <= best < len(cell.branches):
        fctx.bflags = cell.branches[best].bflags      # $bf: the failed branch's flags
    if routes is not None and routes.has_route("failure", name):
        stats.inc("tm:failure_routes")
        routes.run("failure", name, fctx)
    snap = Snapshot.of(fctx)
    out = Out()

    def upd(c: Cell) -> None:
        c.tflags &= ~T_IN_FAILURE
        c.flags = snap.flags
        c.contacts = snap.contacts
        c.avps = snap.avps
        if snap.on_failure is not None:
            c.on_failure = snap.on_failure
        if snap.on_reply is not None:
            c.on_reply = snap.on_reply
        finish(core, c, out)

    tbl.update(tid, upd)
    flush(core, out)
    if out.failure is not None:
        run_failure(tid, out.failure, core)
