"""Stateful forwarding (Kamailio t_fwd.c): t_relay and its family, one branch per
destination, the e2e CANCEL, ACK handling, blind branches.

Runs in: SIP workers (request_route, branch_route per branch, failure_route and
tm:branch-failure adding branches), the timer process (failure_route after a timeout).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

from sipcore import stats, timer
from sipcore.errors import ParseError
from sipcore.forward import (
    ForwardError,
    NextHop,
    add_via1_received_rport,
    build_forwarded,
    choose_send_socket,
    forward_request,
    resolve,
    strip_brackets,
    uri_next_hop,
)
from sipcore.mod import Fx
from sipcore.msg import HdrType, parse_msg
from sipcore.net.addr import Dest
from sipcore.route import errcodes as E
from sipcore.route import sendlumps
from sipcore.route.ctx import Branch as Destination
from sipcore.route.ctx import RouteCtx, RouteType
from sipcore.shm import ShmOutOfMemory

from . import HOST, PORT, PROTO, REQ, RFB, mod
from .config import CFG
from .fsm import Ev, St
from .h_table import B_CANCEL_SENT, B_DROPPED, B_LOCAL_FAIL, T_CANCELED, Branch, Cell
from .state import TM, table
from .t_cancel import cancel_branches
from .t_create import absorb_ack, forget_pending, no_memory, store_pending, t_newtran
from .t_ctx import Snapshot
from .t_failure import run_failure
from .t_fsm import client_event
from .t_lookup import invite_tid
from .t_out import Out, flush, send, stat_send
from .t_reply import finish, t_reply
from .t_timer import release

log = logging.getLogger(__name__)


# enum members looked up once (an Enum class attribute lookup is slow)
_FAILURE, _BRANCH_FAILURE = RouteType.FAILURE, RouteType.BRANCH_FAILURE
_SEND_REQ, _NONE = Ev.SEND_REQ, int(St.NONE)


@dataclass
class Built:
    """One branch as built for a destination, before the transaction stores it."""

    branch: Branch
    buf: bytes
    dest: Dest
    error: int = 0


def build_branch(ctx: RouteCtx, cell: Cell, idx: int, tgt: Destination, base: bytes,
                 host: Optional[str], port: Optional[int], proto: Optional[str]
                 ) -> Optional[Built]:
    """Build one branch: per-branch copy of the request, branch_route, next hop, our Via.
    None when branch_route dropped it."""
    routes = ctx.core.routes
    has_br = bool(cell.on_branch) and routes is not None \
        and routes.has_route("branch", cell.on_branch)
    msg = ctx.msg
    if not has_br and not tgt.path and tgt.uri == msg.ruri and tgt.dst_uri == ctx.dst_uri \
            and tgt.bflags == ctx.bflags and tgt.otcpid == ctx.otcpid \
            and (tgt.force_socket or ctx.force_socket) is ctx.force_socket:
        # the R-URI branch with no branch_route: the request as the script left it, so the
        # message itself is built with our Via (BASE is that message built: no re-parse)
        bctx, bmsg = ctx, msg
    else:
        bmsg = parse_msg(base)
        if tgt.uri != bmsg.ruri:
            bmsg.set_ruri(tgt.uri)
        if tgt.path:
            first = bmsg.headers[0]
            for p in reversed([x.strip() for x in tgt.path.split(",") if x.strip()]):
                bmsg.add_header("Route: " + p, before=first)
        bctx = ctx.copy(msg=bmsg, dst_uri=tgt.dst_uri, bflags=tgt.bflags,
                        force_socket=tgt.force_socket or ctx.force_socket,
                        otcpid=tgt.otcpid, branch_index=idx,
                        branches=[])
    if has_br:
        bctx.dropped = False
        routes.run("branch", cell.on_branch, bctx)
        bctx.route_type, bctx.route_name = ctx.route_type, ctx.route_name
        if bctx.dropped:
            log.debug("tm: branch %s dropped in branch_route", idx)
            return None
    br = Branch.make(state=_NONE, uri=bmsg.ruri, dst_uri=bctx.dst_uri or "",
                     bflags=bctx.bflags, ruid=tgt.ruid or "", instance=tgt.instance or "")
    if bctx is not ctx:
        armed = TM.of(bctx).on_reply
        if armed != TM.of(ctx).on_reply:
            br.on_reply = armed or ""   # t_on_reply() in branch_route: this branch only
    try:
        if host is None:
            hop = uri_next_hop(bctx.dst_uri or bmsg.ruri)
        else:
            hop = NextHop(strip_brackets(host), None, None)
        if port is not None:
            hop.port = port
        if proto is not None:
            hop.proto = proto
        elif host is not None:
            hop.proto = ctx.rcv.proto
        ip, dport, dproto = resolve(hop)
        sock = choose_send_socket(bctx, dproto, ip)
        buf = build_forwarded(bctx, sock, dproto, cell.branch_id(idx))
    except ForwardError as exc:
        log.error("tm: branch %s: %s", idx, exc.reason)
        br.state, br.code, br.flags = St.TERMINATED, 503, B_LOCAL_FAIL
        return Built(br, b"", Dest("udp", "", 0), exc.code)
    except (ParseError, ValueError) as exc:
        log.error("tm: branch %s: cannot build the request: %s", idx, exc)
        br.state, br.code, br.flags = St.TERMINATED, 500, B_LOCAL_FAIL
        return Built(br, b"", Dest("udp", "", 0), E.E_BAD_REQ)
    br.proto, br.ip, br.port, br.sock, br.buf = dproto, ip, dport, str(sock), buf
    # the contact's own connection (lookup), unless t_relay(host, ...) names another hop
    br.conn_id = bctx.otcpid if host is None and dproto != "udp" else 0
    br.retr_ms = 0 if dproto != "udp" else cell.t1
    return Built(br, buf, Dest(dproto, ip, dport, sock, br.conn_id))


def add_branches(core: Any, c: Cell, built: list[Built], out: Out) -> None:
    """Append BUILT to the cell (locked update): each branch that went out starts its client
    transaction (its timers armed from the fsm's START_* actions)."""
    for b in built:
        c.branches.append(b.branch)
        if not b.error:
            client_event(core, c, len(c.branches) - 1, _SEND_REQ, out)


def t_relay(ctx: RouteCtx, host: Optional[str] = None, port: Optional[int] = None,
            proto: Optional[str] = None) -> int:
    """Forward statefully; 1 on success, negative on error (Kamailio t_relay)."""
    msg = ctx.msg
    if not msg.is_request:
        log.error("t_relay: not a request")
        return E.E_UNSPEC
    if msg.method == "ACK":
        return _relay_ack(ctx, host, port, proto)
    route_type = ctx.route_type
    if msg.method == "CANCEL" and route_type != _FAILURE:
        inv = invite_tid(msg)
        if inv is not None:
            rc = relay_cancel(ctx, inv)
            return 1 if rc >= 0 else rc
        if CFG.unmatched_cancel == 1:
            return forward_request(ctx, host, port, proto)
        if CFG.unmatched_cancel == 2:
            return 0
    st = TM.of(ctx)
    # failure_route and tm:branch-failure add branches to the transaction; only a
    # failure_route starts a new serial leg (failure_reply_mode)
    pending: list[tuple[Cell, Out, float]] = []
    in_failure = (route_type == _FAILURE or route_type == _BRANCH_FAILURE) \
        and st.tid is not None
    new_leg = in_failure and route_type == _FAILURE
    if not in_failure:
        # a transaction made here is stored once, with its branches (see t_newtran)
        rc = t_newtran(ctx, arm_life=False, pending=pending)
        if rc <= 0:
            return rc if rc < 0 else 0
    tid = st.tid
    assert tid is not None
    tbl = table()
    if pending:
        cell, first_out, life = pending[0]
    else:
        cell = tbl.get(tid, for_update=True)     # only on_branch is set before update()
        if cell is None:
            return E.E_UNSPEC
    # branch_route armed after t_newtran is needed before the branches go out
    if st.on_branch is not None:
        cell.on_branch = st.on_branch
    try:
        add_via1_received_rport(ctx)
        base = msg.build()
    except (ParseError, ValueError) as exc:
        log.error("t_relay: cannot build the request: %s", exc)
        if pending:                 # the transaction exists for the script's own reply
            store_pending(ctx, cell, first_out, life)
        return E.E_BAD_REQ
    start = len(cell.branches)
    built: list[Built] = []
    for tgt in ctx.destinations():
        b = build_branch(ctx, cell, start + len(built), tgt, base, host, port, proto)
        if b is not None:
            built.append(b)
    ok = [b for b in built if not b.error]
    # Record-Route and other send-time lines as rendered for the first branch: kept so that
    # branches added later (failure_route, t_continue) carry them too, as Kamailio's clone does
    send_lines = "\n".join(sendlumps.render(ctx, ok[0].dest.sock)) \
        if ok and ok[0].dest.sock is not None and not in_failure else ""
    if not built:
        log.info("t_relay: no destination left (none set, or every branch_route dropped "
                 "its branch)")
    out = Out()
    # script state armed after t_newtran (t_on_*, t_set_fr...) travels with the transaction
    snapshot = Snapshot.of(ctx)

    def add(c: Cell) -> None:
        if new_leg and ok:
            stats.inc("tm:serial_forks")
            for old in c.branches:          # failure_reply_mode 3: a new leg drops old replies
                if CFG.failure_reply_mode in (1, 3) or \
                        (CFG.failure_reply_mode == 2 and old.code and c.leg):
                    old.flags |= B_DROPPED
            c.leg += 1
        snapshot.apply(c)
        if not base.startswith(b"CANCEL") and not c.fwd_base:
            c.fwd_base = base
            c.send_lines = send_lines
        add_branches(ctx.core, c, built, out)
        if c.tflags & T_CANCELED and c.invite:
            cancel_branches(ctx.core, c, out, reason=c.cancel_reason)

    if pending and not ok:
        # nothing to send: the transaction never existed for anyone else; the 100 Trying
        # still goes out (as Kamailio's t_newtran sent it), the script replies itself
        forget_pending(ctx, cell)
        flush(ctx.core, first_out)
    elif pending:
        add(cell)
        if not store_pending(ctx, cell, first_out, life, send=False):
            return no_memory(ctx)
    else:
        try:
            tbl.update(tid, add)
        except ShmOutOfMemory:
            if not in_failure:
                release_now(tid)
                st.tid = None
            return no_memory(ctx)
    # the sends come last (after the timer requests): a send may hand the CPU to the
    # receiving process before this one is done with the message. A new transaction's
    # 100 Trying goes out just before its branches.
    first_sends: list[tuple[Dest, bytes]] = []
    if pending and ok:
        first_sends = first_out.sends
        out.timers[:0] = first_out.timers
        out.finals[:0] = first_out.finals
    if out.timers:
        timer.schedule_many(out.timers)
        out.timers = []
    for dest, buf in first_sends:
        send(ctx.core, dest, buf)
    for b in ok:
        stat_send(ctx.core, b.dest, b.buf)
    flush(ctx.core, out)
    if ok:
        return 1
    err = built[0].error if built else E.E_UNSPEC
    # sl_reply_error() answers with this: an unreachable next hop is a 503
    ctx.last_error = (503, "Service Unavailable") \
        if err in (E.E_SEND, E.E_BAD_ADDRESS, E.E_NO_SOCKET) else err
    if not in_failure and not pending:
        # nothing went out: forget the transaction so the script can reply itself
        release_now(tid)
        st.tid = None
    return err


def release_now(tid: str) -> None:
    """The cell TID and its matching keys leave the table now."""
    cell = table().get(tid)
    if cell is not None:
        release(tid, cell.keys)


def _relay_ack(ctx: RouteCtx, host: Optional[str], port: Optional[int], proto: Optional[str]
               ) -> int:
    """ACK: one for a non-2xx reply of ours is absorbed (hop by hop); any other ACK (2xx,
    end to end) is forwarded statelessly, as Kamailio's t_relay does."""
    if absorb_ack(ctx):
        return 1
    return forward_request(ctx, host, port, proto)


def relay_cancel(ctx: RouteCtx, inv_tid: str) -> int:
    """A CANCEL matching INVITE transaction INV_TID (Kamailio e2e_cancel): answer it 200 (its
    own transaction) and CANCEL every pending branch of the INVITE. 0 when it was a
    retransmission."""
    rc = t_newtran(ctx)
    if rc <= 0:
        return rc
    t_reply(ctx, 200, "canceling")
    reason = ""
    if CFG.e2e_cancel_reason and not TM.of(ctx).no_e2e_cancel_reason:
        h = ctx.msg.header(HdrType.REASON)
        if h is not None:
            reason = "Reason: " + h.value
    out = Out()

    def upd(c: Cell) -> None:
        c.tflags |= T_CANCELED
        c.cancel_reason = reason
        cancel_branches(ctx.core, c, out, reason=reason)
        finish(ctx.core, c, out)     # cancel_b_method=0 may have ended every branch

    table().update(inv_tid, upd)
    flush(ctx.core, out)
    if out.failure is not None:
        run_failure(inv_tid, out.failure, ctx.core)
    return 1


def add_blind_uac(ctx: RouteCtx) -> int:
    """A branch that is never sent (Kamailio add_blind_uac: t_write_req/t_write_unix): its fr
    timer completes the transaction with 408 when nobody replies in time. 1 / -1."""
    tid = TM.of(ctx).tid
    if tid is None:
        log.error("add_blind_uac: no transaction context")
        return -1
    out = Out()

    def upd(c: Cell) -> bool:
        limit = int(ctx.core.get_global("max_branches", 12) or 12)
        if len(c.branches) >= limit:
            return False
        # nothing went out on it, so there is never anything to CANCEL
        c.branches.append(Branch.make(state=St.NONE, flags=B_CANCEL_SENT))
        client_event(ctx.core, c, len(c.branches) - 1, Ev.SEND_REQ, out)
        return True

    cell, ok = table().update(tid, upd)
    if cell is None or not ok:
        log.error("add_blind_uac: maximum number of branches exceeded")
        return -1
    flush(ctx.core, out)
    return 1


# ---- script functions -----------------------------------------------------------------------

def _port(text: str) -> Optional[int]:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def _proxy(text: str) -> tuple[Optional[str], Optional[str], Optional[int]]:
    """"proto:host:port" with optional parts -> (proto, host, port)."""
    parts = [x for x in text.strip().split(":")]
    proto = None
    if parts and parts[0].lower() in ("udp", "tcp", "tls", "sctp", "ws", "wss"):
        proto = parts.pop(0).lower()
    host = parts[0] if parts and parts[0] else None
    port = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return proto, host, port


def _relay_flags(ctx: RouteCtx, flags: int) -> None:
    st = TM.of(ctx)
    if flags & 1:
        st.no_100 = True
    if flags & 2:
        st.no_internal_reply = True


@mod.function("t_relay", args=(), routes=RFB)
def ki_t_relay(ctx: RouteCtx) -> int:
    """Forward statefully to $du / R-URI."""
    return t_relay(ctx)


@mod.function("t_relay", args=(HOST, PORT), routes=RFB)
def ki_t_relay_hp(ctx: RouteCtx, host: str, port: str) -> int:
    """Forward statefully to HOST:PORT (incoming protocol)."""
    return t_relay(ctx, host, _port(port))


def _declare_proto_family(proto: str) -> None:
    def relay(ctx: RouteCtx) -> int:
        return t_relay(ctx, proto=proto)

    def relay_hp(ctx: RouteCtx, host: str, port: str) -> int:
        return t_relay(ctx, host, _port(port), proto)

    up = proto.upper()
    mod.function(f"t_relay_to_{proto}", args=(), routes=RFB,
                 doc=f"t_relay over {up} to $du / R-URI.")(relay)
    mod.function(f"t_relay_to_{proto}", args=(HOST, PORT), routes=RFB,
                 doc=f"t_relay over {up} to HOST:PORT.")(relay_hp)
    mod.function(f"t_forward_nonack_{proto}", args=(HOST, PORT), routes=REQ,
                 doc=f"Low-level stateful forward over {up}.")(relay_hp)
    mod.function(f"t_replicate_{proto}", args=(HOST, PORT), routes=REQ,
                 doc=f"Stateful copy over {up}.")(
        lambda ctx, host, port: _replicate(ctx, host, _port(port), proto))


@mod.function("t_relay_to", args=(), routes=RFB)
def ki_t_relay_to(ctx: RouteCtx) -> int:
    """t_relay with default flags."""
    return t_relay(ctx)


@mod.function("t_relay_to", args=(Fx.ANY,), routes=RFB)
def ki_t_relay_to1(ctx: RouteCtx, arg: Any) -> int:
    """t_relay_to(proxy) or t_relay_to(flags)."""
    if isinstance(arg, int) or (isinstance(arg, str) and arg.strip().isdigit()):
        _relay_flags(ctx, int(arg))
        return t_relay(ctx)
    proto, host, port = _proxy(str(arg or ""))
    return t_relay(ctx, host, port, proto)


@mod.function("t_relay_to", args=(Fx.SPVE, Fx.IGP), routes=RFB)
def ki_t_relay_to2(ctx: RouteCtx, proxy: str, flags: int) -> int:
    """proxy "proto:host:port" and flags bitmask."""
    _relay_flags(ctx, flags)
    proto, host, port = _proxy(proxy)
    return t_relay(ctx, host, port, proto)


@mod.function("t_forward_nonack", args=(HOST, PORT), routes=REQ)
def ki_t_forward_nonack(ctx: RouteCtx, host: str, port: str) -> int:
    """Low-level stateful forward of a non-ACK."""
    return t_relay(ctx, host, _port(port))


@mod.function("t_forward_nonack_uri", args=(), routes=REQ)
def ki_t_forward_nonack_uri(ctx: RouteCtx) -> int:
    """Low-level stateful forward to the R-URI."""
    return t_relay(ctx)


@mod.function("t_forward_nonack_to", args=(PROTO, Fx.SPVE), routes=REQ)
def ki_t_forward_nonack_to(ctx: RouteCtx, proto: str, hostport: str) -> int:
    """Low-level stateful forward to proto, host:port."""
    _p, host, port = _proxy(hostport)
    return t_relay(ctx, host, port, proto)


@mod.function("t_relay_to_avp", args=(PROTO, Fx.SPVE), routes=REQ)
def ki_t_relay_to_avp(ctx: RouteCtx, proto: str, hostport: str) -> int:
    """Legacy: relay to proto and host:port."""
    return ki_t_forward_nonack_to(ctx, proto, hostport)


@mod.function("t_relay_cancel", args=(), routes=REQ)
def ki_t_relay_cancel(ctx: RouteCtx) -> int:
    """CANCEL: 0 (stop) when the INVITE was found and its branches cancelled, 1 when not
    found, negative on error."""
    if ctx.msg.method != "CANCEL":
        return -1
    inv = invite_tid(ctx.msg)
    if inv is None:
        return 1
    rc = relay_cancel(ctx, inv)
    return 0 if rc >= 0 else rc


@mod.function("t_save_lumps", args=(), routes=REQ)
def ki_t_save_lumps(ctx: RouteCtx) -> int:
    """Store the message changes into the transaction."""
    tid = TM.of(ctx).tid
    if tid is None:
        return -1
    base = ctx.msg.build()

    def upd(c: Cell) -> None:
        c.fwd_base = base

    table().update(tid, upd)
    return 1


# ---- t_replicate: a stateful copy whose replies are absorbed ---------------------------------

def _replicate(ctx: RouteCtx, host: Optional[str] = None, port: Optional[int] = None,
               proto: Optional[str] = None, uri: Optional[str] = None) -> int:
    TM.of(ctx).replicate = True
    if uri:
        ctx.dst_uri = uri
    return t_relay(ctx, host, port, proto)


@mod.function("t_replicate", args=(), routes=REQ)
def ki_t_replicate(ctx: RouteCtx) -> int:
    """Send a stateful copy to $du / R-URI."""
    return _replicate(ctx)


@mod.function("t_replicate", args=(Fx.SPVE,), routes=REQ)
def ki_t_replicate_uri(ctx: RouteCtx, uri: str) -> int:
    """Send a stateful copy to URI."""
    return _replicate(ctx, uri=uri)


@mod.function("t_replicate", args=(HOST, PORT), routes=REQ)
def ki_t_replicate_hp(ctx: RouteCtx, host: str, port: str) -> int:
    """Send a stateful copy to HOST:PORT."""
    return _replicate(ctx, host, _port(port))


@mod.function("t_replicate_to", args=(PROTO, Fx.SPVE), routes=REQ)
def ki_t_replicate_to(ctx: RouteCtx, proto: str, hostport: str) -> int:
    """Stateful copy to proto and host:port."""
    _p, host, port = _proxy(hostport)
    return _replicate(ctx, host, port, proto)


for _proto in ("udp", "tcp", "tls", "sctp"):
    _declare_proto_family(_proto)
