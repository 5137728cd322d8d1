"""What travels with a transaction between routes and processes: the script state a cell
keeps (flags, armed routes, $avp/$xavp, pending serial-forking contacts), and the request
context rebuilt from a cell for failure_route, onreply_route, tm:branch-failure, t_continue
and $T_req.

Runs in: SIP workers and the timer process. No shared state of its own (the cell is in shm).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from sipcore.msg import parse_msg
from sipcore.net.addr import RecvInfo, SocketInfo
from sipcore.pv.vars import AvpList, Xavp, xavps
from sipcore.route import sendlumps
from sipcore.route.ctx import RouteCtx

from .h_table import Cell
from .state import TM
from .t_serial import dump, restore
from .t_serial import contacts_avp_name


def _xavp_json(x: Any) -> list[Any]:
    v = x.value
    return [x.name, [_xavp_json(c) for c in v] if isinstance(v, list) else v,
            isinstance(v, list)]


def _xavp_from(item: list[Any]) -> Any:
    name, value, struct = item
    return Xavp(name, [_xavp_from(c) for c in value] if struct else value)


def dump_avps(ctx: RouteCtx) -> str:
    """$avp and $xavp of the request as JSON text for the transaction (failure_route,
    onreply_route and t_continue see them, as Kamailio keeps them in the transaction)."""
    out: dict[str, Any] = {}
    if ctx.avps is not None and ctx.avps.items():
        out["a"] = [[k, v] for k, v in ctx.avps.items()]
    if ctx.xavps is not None and ctx.xavps.xavp:
        skip = contacts_avp_name()
        out["x"] = [_xavp_json(x) for x in ctx.xavps.xavp if x.name != skip]
    return json.dumps(out) if out else ""


def restore_avps(ctx: RouteCtx, text: str) -> None:
    if not text:
        return
    data = json.loads(text)
    if data.get("a"):
        ctx.avps = AvpList.from_items(data["a"])
    if data.get("x"):
        xavps(ctx).xavp[:0] = [_xavp_from(i) for i in data["x"]]


@dataclass(slots=True)
class Snapshot:
    """The script state of a request that goes into its cell (t_relay, t_suspend,
    failure_route's end): flags, pending contacts, $avp/$xavp, and what the script armed
    (None: not set, the cell keeps its own)."""

    flags: int
    contacts: str
    avps: str
    on_failure: Optional[str]
    on_reply: Optional[str]
    on_branch: Optional[str]
    on_branch_failure: Optional[str]
    fr: int
    fr_inv: int

    @classmethod
    def of(cls, ctx: RouteCtx) -> "Snapshot":
        st = TM.of(ctx)
        return cls(ctx.flags, dump(ctx), dump_avps(ctx), st.on_failure, st.on_reply,
                   st.on_branch, st.on_branch_failure, st.fr, st.fr_inv)

    def apply(self, cell: Cell) -> None:
        cell.flags = self.flags
        cell.contacts = self.contacts
        cell.avps = self.avps
        if self.on_failure is not None:
            cell.on_failure = self.on_failure
        if self.on_reply is not None:
            cell.on_reply = self.on_reply
        if self.on_branch is not None:
            cell.on_branch = self.on_branch
        if self.on_branch_failure is not None:
            cell.on_branch_failure = self.on_branch_failure
        if self.fr:
            cell.fr_timer = self.fr
        if self.fr_inv:
            cell.fr_inv_timer = self.fr_inv


@dataclass
class SavedLines:
    """A send lump replaying the lines rendered when the transaction was first relayed."""

    lines_: list[str]
    kind: str = "tm-saved"

    def lines(self, ctx: RouteCtx, sock: SocketInfo) -> list[str]:
        return list(self.lines_)


def ctx_from_cell(cell: Cell, core: Any) -> RouteCtx:
    """A request context rebuilt from the transaction (failure_route, $T_req)."""
    msg = parse_msg(cell.fwd_base or cell.request)
    rcv = RecvInfo(proto=cell.rcv_proto, src_ip=cell.src_ip, src_port=cell.src_port,
                   dst_ip=cell.dst_ip, dst_port=cell.dst_port,
                   af=6 if ":" in cell.src_ip else 4, sock=core.socket_by_text(cell.uas_sock))
    ctx = RouteCtx(msg=msg, rcv=rcv, core=core, flags=cell.flags)
    if cell.ruri and cell.ruri != msg.ruri:
        msg.set_ruri(cell.ruri)
    TM.of(ctx).tid = cell.tid
    ctx.via1_rcv_params_added = bool(cell.fwd_base)
    restore_avps(ctx, cell.avps)
    if cell.send_lines:
        sendlumps.add(ctx, SavedLines(cell.send_lines.split("\n")))
    if cell.contacts:
        restore(ctx, cell.contacts)
    return ctx


def run_event_route(ctx: RouteCtx, name: str) -> None:
    """Run event_route[NAME] on CTX when the config has it; ctx's route state is kept."""
    routes = ctx.core.routes
    if routes is None or not routes.has_route("event", name):
        return
    saved = (ctx.route_type, ctx.route_name, ctx.dropped)
    try:
        routes.run("event", name, ctx)
    finally:
        ctx.route_type, ctx.route_name, ctx.dropped = saved
