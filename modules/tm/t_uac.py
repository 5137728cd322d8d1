"""Requests generated here (Kamailio t_uac.c): t_uac_send(), tm.t_uac_start, dialog's BYEs
through tm's API. Their replies stay here: the final status is kept in the cell.

Runs in: SIP workers (t_uac_send), the ctl process (the RPCs), the timer process (dialog's
BYEs on timeout).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Optional

from sipcore import stats
from sipcore.errors import ParseError, RpcFault
from sipcore.mod import ANY_ROUTE, Fx
from sipcore.msg import parse_msg
from sipcore.net.addr import RecvInfo
from sipcore.route.ctx import Branch as Destination
from sipcore.route.ctx import RouteCtx
from sipcore.shm.hashtable import now_ms

from . import mod
from .config import CFG
from .fsm import initial_state
from .h_table import T_INVITE, T_LOCAL, T_NO_100, Cell, new_tid
from .state import STATE, TM, table
from .t_create import ttl
from .t_ctx import run_event_route
from .t_fwd import add_branches, build_branch, release_now
from .t_out import Out, flush, send

log = logging.getLogger(__name__)


def uac_send(core: Any, method: str, ruri: str, nexthop: str, socket: str, headers: str,
             body: str) -> Optional[str]:
    """Send a request generated here as a UAC transaction (its replies stay here: the final
    status is kept in the cell for tm.t_uac_wait_block). Returns the tid, None on error."""
    method = method.strip().upper()
    hdrs = [h.strip() for h in headers.replace("\r\n", "\n").split("\n") if h.strip()]
    names = {h.split(":", 1)[0].strip().lower() for h in hdrs}
    if not (names & {"from", "f"} and names & {"to", "t"}):
        log.error("t_uac_send: the headers need From and To")
        return None
    tid = new_tid()
    if "call-id" not in names and "i" not in names:
        hdrs.append(f"Call-ID: {tid}@pykam")
    if "cseq" not in names:
        hdrs.append(f"CSeq: 10 {method}")
    if "max-forwards" not in names:
        hdrs.append("Max-Forwards: 70")
    lines = [f"{method} {ruri} SIP/2.0"] + hdrs
    bbody = body.encode("utf-8", "surrogateescape")
    lines.append(f"Content-Length: {len(bbody)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + bbody
    try:
        msg = parse_msg(raw)
        if msg.from_tag is None:
            msg.replace_header(msg.header("From"),
                               "From: " + msg.header("From").value + f";tag={tid[:10]}")
            raw = msg.build()
            msg = parse_msg(raw)
    except ParseError as exc:
        log.error("t_uac_send: bad request: %s", exc)
        return None
    sock = core.sockets[0] if core.sockets else None
    rcv = RecvInfo(proto="udp", src_ip=sock.ip if sock else "127.0.0.1",
                   src_port=sock.port if sock else 5060, sock=sock)
    ctx = RouteCtx(msg=msg, rcv=rcv, core=core)
    ctx.dst_uri = nexthop.strip() or None
    if socket.strip():
        ctx.force_socket = core.socket_by_text(socket.strip())
    invite = method == "INVITE"
    cell = Cell(tid=tid, tflags=(T_INVITE if invite else 0) | T_LOCAL | T_NO_100,
                method=method, uas_state=initial_state(False, invite), request=raw,
                fwd_base=raw, ruri=ruri, fr_timer=CFG.fr_timer, fr_inv_timer=CFG.fr_inv_timer,
                t1=CFG.retr_timer1, t2=CFG.retr_timer2, created_ms=now_ms())
    TM.of(ctx).tid = tid
    run_event_route(ctx, "tm:local-request")      # may still change $du / $fs
    b = build_branch(ctx, cell, 0, Destination(uri=ctx.msg.ruri, dst_uri=ctx.dst_uri), raw,
                     None, None, None)
    if b is None or b.error:
        return None
    out = Out()
    add_branches(core, cell, [b], out)
    table().insert(cell, ttl(invite))
    stats.inc("tmx:UAC_transactions")
    if not send(core, b.dest, b.buf):
        release_now(tid)
        return None
    flush(core, out)
    return tid


@mod.function("t_uac_send", args=(Fx.SPVE,) * 6, routes=ANY_ROUTE)
def ki_t_uac_send(ctx: RouteCtx, method: str, ruri: str, nexthop: str, socket: str,
                  headers: str, body: str) -> int:
    """Send a local request: method, ruri, nexthop, socket, headers, body; 1 sent, -1
    error."""
    return 1 if uac_send(ctx.core, method, ruri, nexthop, socket, headers, body) else -1


# ---- RPC ----------------------------------------------------------------------------------

def _dot(v: Any) -> str:
    return "" if v is None or str(v) == "." else str(v)


def rpc_table() -> Any:
    try:
        return table()
    except RuntimeError as exc:
        raise RpcFault(500, str(exc)) from None


def rpc_t_uac_start(method: str = "", ruri: str = "", nexthop: Any = ".", socket: Any = ".",
                    headers: Any = "", body: Any = "", *_args: Any) -> str:
    rpc_table()
    tid = uac_send(STATE.core, method, ruri, _dot(nexthop), _dot(socket), _dot(headers),
                   _dot(body))
    if tid is None:
        raise RpcFault(500, "cannot send the request")
    return "ok"


def rpc_t_uac_wait_block(method: str = "", ruri: str = "", nexthop: Any = ".",
                         socket: Any = ".", headers: Any = "", body: Any = "",
                         *_args: Any) -> dict[str, Any]:
    """Send, then wait (blocking this RPC process, up to 80 s) for the final reply."""
    tbl = rpc_table()
    tid = uac_send(STATE.core, method, ruri, _dot(nexthop), _dot(socket), _dot(headers),
                   _dot(body))
    if tid is None:
        raise RpcFault(500, "cannot send the request")
    deadline = time.monotonic() + 80
    while time.monotonic() < deadline:
        cell = tbl.get(tid)
        if cell is not None and cell.uas_code >= 200:
            return {"code": cell.best_code or cell.uas_code, "reason": cell.best_reason}
        time.sleep(0.02)
    raise RpcFault(500, "no final reply")


mod.rpc("tm.t_uac_start", rpc_t_uac_start,
        doc="method ruri nexthop socket headers [body]: send a local request.")
mod.rpc("tm.t_uac_wait_block", rpc_t_uac_wait_block,
        doc="Same, blocking up to 80 s; returns code and reason.")
mod.rpc("tm.t_uac_wait", rpc_t_uac_wait_block,
        doc="Same as tm.t_uac_wait_block (the ctl process answers when the reply is in).")
