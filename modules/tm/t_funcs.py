"""The transaction layer: create, forward, reply, match replies, CANCEL, ACK, timers.

Runs in: SIP workers (t_newtran/t_relay/t_reply from the script, `reply_received` for every
received reply) and the timer process (retransmissions, fr timeouts -> 408 and failure_route,
timers G/H, wait timer, periodic clean). Shared state: the tm table in shm (h_table), the
`tmx:*`/`tm:*` counters. Every cell update is a locked read-modify-write (TmTable.update)
whose callback only computes; sends, timers and route runs happen after the lock is released.

Kamailio equivalents: t_funcs.c, t_fwd.c (branches), t_reply.c (reply processing, picking the
best reply, relaying), t_cancel.c, timer.c.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from sipcore import log as klog
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
from sipcore.mod.exports import RouteType
from sipcore.msg import HdrType, parse_msg
from sipcore.msg.builder import build_reply
from sipcore.msg.spans import remove_via1, via1_value_span
from sipcore.net.addr import Dest, RecvInfo, SocketInfo
from sipcore.pv.vars import AvpList, Xavp, xavps
from sipcore.reply import reply_dest, server_header
from sipcore.route import errcodes as E
from sipcore.route import sendlumps
from sipcore.route.ctx import Branch as RBranch
from sipcore.route.ctx import RouteCtx
from sipcore.shm import ShmOutOfMemory
from sipcore.shm.hashtable import now_ms

from . import fsm
from .fsm import Act, Ev, St
from .h_table import (
    B_CANCEL_PENDING,
    B_CANCEL_REPLIED,
    B_CANCEL_SENT,
    B_DROPPED,
    B_FR_ARMED,
    B_LOCAL_FAIL,
    B_REPLIED,
    B_TIMEOUT,
    T_2XX_SENT,
    T_CANCELED,
    T_DISABLE_6XX,
    T_EXPIRED,
    T_FINAL_SENT,
    T_IN_FAILURE,
    T_INVITE,
    T_IS_CANCEL,
    T_LOCAL,
    T_LOCAL_REPLY,
    T_NO_100,
    T_NO_INTERNAL_REPLY,
    T_REPLICATE,
    Branch,
    Cell,
    TmTable,
    new_tid,
)
from .t_lookup import invite_key_of, reply_branch, request_key
from .t_serial import BRANCH_INSTANCE, dump, restore
from .t_serial import _name as _contacts_avp_name

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg import SipMsg

TID = "tm_tid"                  # ctx.extra: the transaction of this message
BEST = "tm_best"                # ctx.extra in failure_route: (code, reason, branch idx)
REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 408: "Request Timeout",
           487: "Request Terminated", 500: "Server Internal Error",
           503: "Service Unavailable"}


class TmConfig:
    """The module parameters tm reads at run time (filled by mod_init from modparam)."""

    fr_timer = 30000
    fr_inv_timer = 120000
    max_inv_lifetime = 180000
    max_noninv_lifetime = 32000
    wt_timer = 5000
    t1 = 500
    t2 = 4000
    auto_inv_100 = 1
    auto_inv_100_reason = "trying -- your call is important to us"
    restart_fr_on_each_reply = 1
    ruri_matching = 1
    disable_6xx_block = 0
    failure_reply_mode = 3
    remap_503_500 = 1
    relay_100 = 0
    e2e_cancel_reason = 1
    unmatched_cancel = 0
    on_sl_reply: Optional[str] = None
    fr_timer_avp: Optional[str] = None
    fr_inv_timer_avp: Optional[str] = None
    noisy_ctimer = 1
    aggregate_challenges = 1
    cancel_b_method = 1
    local_cancel_reason = 1
    ac_extra_hdrs = ""          # header-name prefix copied from the INVITE into CANCEL/ACK
    faked_reply_prio = 0        # priority penalty of faked replies (local 408/487/503)
    callid_matching = 0         # replies must also carry the transaction's Call-ID


cfg = TmConfig()


class _State:
    table: Optional[TmTable] = None


_st = _State()


def table() -> TmTable:
    if _st.table is None:
        raise RuntimeError("tm: the transaction table does not exist (mod_init not run)")
    return _st.table


def set_table(t: Optional[TmTable]) -> None:
    _st.table = t


def _ttl(invite: bool) -> float:
    life = cfg.max_inv_lifetime if invite else cfg.max_noninv_lifetime
    return (life + cfg.wt_timer + 64 * cfg.t1) / 1000.0 + 5.0


# ---- helpers ----------------------------------------------------------------------------

def _dest(core: Any, proto: str, ip: str, port: int, sock: str, conn_id: int = 0) -> Dest:
    return Dest(proto, ip, port, core.socket_by_text(sock) or core.choose_socket(proto, ip),
                conn_id)


def _send(core: Any, dest: Dest, buf: bytes) -> bool:
    ok = core.send(dest, buf)
    if not ok:
        klog.err(f"tm: send to {dest.proto}:{dest.ip}:{dest.port} failed")
    return ok


def _via1_line(m: "SipMsg") -> str:
    _h, s, e = via1_value_span(m)
    return "Via: " + m.buf[s:e].decode("utf-8", "surrogateescape")


def _hdr_lines(m: "SipMsg", name: str) -> list[str]:
    return [m.buf[h.start:h.end].decode("utf-8", "surrogateescape").rstrip("\r\n")
            for h in m.header_all(name)]


def build_local_request(sent: bytes, method: str, to_line: Optional[str] = None,
                        reason: str = "") -> bytes:
    """CANCEL (RFC 3261 9.1) or ACK for a non-2xx reply (17.1.1.3) of the request SENT:
    same R-URI, our top Via only, Route set, From, Call-ID, CSeq number; To from the reply
    for ACK."""
    m = parse_msg(sent)
    lines = [f"{method} {m.ruri} SIP/2.0", _via1_line(m)]
    lines += _hdr_lines(m, "Route")
    lines += _hdr_lines(m, "From")
    lines.append(to_line if to_line else _hdr_lines(m, "To")[0])
    lines += _hdr_lines(m, "Call-ID")
    lines.append(f"CSeq: {m.cseq.num} {method}")
    if cfg.ac_extra_hdrs:
        prefix = cfg.ac_extra_hdrs.lower()
        lines += [m.buf[h.start:h.end].decode("utf-8", "surrogateescape").rstrip("\r\n")
                  for h in m.headers
                  if not int(h.type) and h.name.lower().startswith(prefix)]   # unknown types
    lines.append("Max-Forwards: 70")
    if reason:
        lines.append(reason)
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def _relay_buf(raw: bytes, extra: tuple[str, ...] = (), parsed: Optional["SipMsg"] = None
               ) -> tuple[bytes, int]:
    """A received reply ready to go upstream: our Via removed, 503 -> 500 (remap_503_500),
    EXTRA header lines added (aggregated challenges). PARSED: RAW already parsed, with no
    edits pending; it is edited in place (its buffer and parsed headers stay as received)."""
    if parsed is not None and not extra:
        # the usual reply: our Via alone on its header line, nothing else to change -> the
        # received bytes without that line (what the lump below would build)
        h = parsed.header(HdrType.VIA)
        code = parsed.status
        if h is not None and (code != 503 or not cfg.remap_503_500):
            b = parsed.buf
            if b.find(b",", h.value_start, h.value_end) < 0:
                return b[:h.start] + b[h.end:], code
    m = parsed if parsed is not None else parse_msg(raw)
    remove_via1(m)
    for line in extra:
        m.add_header(line)
    code = m.status
    if code == 503 and cfg.remap_503_500:
        eol = m.buf.find(b"\r\n")
        m.replace_range(0, eol, b"SIP/2.0 500 Server Internal Error")
        code = 500
    return m.build(), code


def _local_reply(cell: Cell, code: int, reason: str, headers: tuple[str, ...] = (),
                 body: bytes = b"", ctype: Optional[str] = None,
                 server: Optional[str] = None, req: Optional["SipMsg"] = None) -> bytes:
    """A reply generated by tm to the transaction's request (t_reply, 408, 487, 100). REQ:
    that request already parsed (its headers as received are used, not script edits)."""
    if req is None or req.buf is not cell.request:
        req = parse_msg(cell.request)
    to_tag = None
    if code > 100 and not req.to_tag:
        if not cell.to_tag:
            # not sl's tag: sl's pre-script filter would swallow the ACKs tm must see
            cell.to_tag = hashlib.md5(("tm\x00" + req.hash_key()).encode()).hexdigest()
        to_tag = cell.to_tag
    via = req.via1
    received = cell.src_ip if via is not None and \
        via.host.strip("[]").lower() != cell.src_ip.lower() else None
    rport = cell.src_port if via is not None and via.rport is not None else None
    return build_reply(req, code, reason, to_tag=to_tag, extra_headers=list(headers),
                       body=body, content_type=ctype, server_header=server,
                       via_received=received, via_rport=rport)


def _pick_prio(code: int) -> int:
    """Kamailio t_reply.c get_prio(): lower wins; 6xx beats 3xx beats 4xx beats 5xx, some
    4xx (auth challenges, 415/420/484) are preferred to other 4xx, 503 is the worst 5xx."""
    cls = code // 100
    base = {6: 1000, 2: 0, 3: 3000, 4: 4000, 5: 5000}.get(cls, 32000)
    if code in (401, 407, 415, 420, 484):
        return 2900 + code % 100
    if code == 503:
        return 5900
    return base + code % 100


def pick_branch(cell: Cell) -> Optional[int]:
    """The branch whose final reply goes upstream, None when some branch is still pending."""
    best, best_prio = None, 1 << 30
    for i, br in enumerate(cell.branches):
        if br.flags & B_DROPPED:
            continue
        if br.state < St.COMPLETED and br.state != St.NONE:
            return None
        if br.code < 200:
            continue
        p = _pick_prio(br.code)
        if not br.reply:
            p += cfg.faked_reply_prio      # a local 408/487/503 (Kamailio FAKED_REPLY)
        if p < best_prio:
            best, best_prio = i, p
    return best


# ---- outcome of a locked update --------------------------------------------------------------

class Out:
    """What to do once the cell lock is released (a plain slotted class: one per message)."""

    __slots__ = ("sends", "timers", "failure", "absorb", "ok", "finals")

    def __init__(self) -> None:
        self.sends: list[tuple[Dest, bytes]] = []
        self.timers: list[tuple[str, int, bytes]] = []
        self.failure: Optional[tuple[str, int, str, int]] = None  # route, code, reason, branch
        self.absorb = False
        self.ok = True
        self.finals: list[tuple[Cell, int, bytes]] = []     # final replies sent


#: fn(cell, code, reply_buf, core) for every final reply sent upstream (Kamailio
#: TMCB_RESPONSE_OUT for finals): acc registers here through tm's API. Run after the lock.
final_callbacks: list[Callable[[Cell, int, bytes, Any], None]] = []


def _flush(core: Any, out: Out) -> None:
    """Carry out what a locked update collected: timer requests, then sends (a send may hand
    the CPU to the receiving process), then the final-reply callbacks."""
    if out.timers:
        timer.schedule_many(out.timers)
    for dest, buf in out.sends:
        _send(core, dest, buf)
    for cell, code, buf in out.finals:
        for cb in final_callbacks:
            try:
                cb(cell, code, buf, core)
            except Exception as exc:  # noqa: BLE001 - a module callback must not break tm
                klog.err(f"tm: final reply callback {cb.__qualname__}: "
                         f"{type(exc).__name__}: {exc}")


def _uas_dest(core: Any, cell: Cell) -> Dest:
    return _dest(core, cell.uas_proto, cell.uas_ip, cell.uas_port, cell.uas_sock)


def _send_upstream(core: Any, cell: Cell, out: Out, buf: bytes, code: int) -> None:
    """Record a reply to the upstream (server transaction), per the server fsm."""
    if cell.tflags & (T_REPLICATE | T_LOCAL):
        # no upstream: a replicated or locally generated request only records the outcome
        cell.uas_code = code
        if code >= 200 and not cell.tflags & T_FINAL_SENT:
            cell.tflags |= T_FINAL_SENT
            out.finals.append((cell, code, buf))
            out.timers.append(("tm:wait", cfg.wt_timer, _wait_payload(cell)))
        return
    ev = fsm.reply_event(code, sending=True)
    tr = fsm.step(fsm.table_for(False, cell.invite), cell.uas_state, ev)
    if tr is None:
        return
    cell.uas_state = tr.state
    cell.uas_code = code
    cell.uas_reply = buf
    out.sends.append((_uas_dest(core, cell), buf))
    stats.inc("tmx:rpl_sent")
    if code >= 200:
        out.finals.append((cell, code, buf))
        cell.tflags |= T_FINAL_SENT
        if code < 300:
            cell.tflags |= T_2XX_SENT
        stats.inc(f"tmx:{code // 100}xx_transactions")
        reliable = cell.uas_proto != "udp"
        if Act.START_G in tr.actions and not reliable:
            cell.uas_retr_ms = cell.t1
            out.timers.append(("tm:uas", cell.t1, f"{cell.tid}.G".encode()))
        if Act.START_H in tr.actions:
            out.timers.append(("tm:uas", 64 * cell.t1, f"{cell.tid}.H".encode()))
        else:
            out.timers.append(("tm:wait", cfg.wt_timer, _wait_payload(cell)))


def _cancel_branches(core: Any, cell: Cell, out: Out, skip: int = -1, reason: str = "") -> None:
    """CANCEL every pending INVITE branch (RFC 3261 9.1): now when it has received a
    provisional, else when one arrives (cancel_b_method=1)."""
    for i, br in enumerate(cell.branches):
        if i == skip or br.state not in (St.CALLING, St.PROCEEDING):
            continue
        if br.flags & (B_CANCEL_SENT | B_CANCEL_PENDING):
            continue
        if br.flags & B_REPLIED or cfg.cancel_b_method == 2:
            send_cancel(core, cell, i, out, reason)
        elif cfg.cancel_b_method == 0:
            # no reply yet: end the branch with a local 487 instead of a CANCEL
            br.state, br.code, br.reply = St.TERMINATED, 487, b""
        else:
            br.flags |= B_CANCEL_PENDING


def send_cancel(core: Any, cell: Cell, idx: int, out: Out, reason: str = "") -> None:
    """CANCEL branch IDX now; over UDP it is retransmitted (timer E of its own non-INVITE
    client transaction) until its reply arrives or the INVITE branch completes."""
    br = cell.branches[idx]
    br.flags = (br.flags & ~B_CANCEL_PENDING) | B_CANCEL_SENT
    out.sends.append((_dest(core, br.proto, br.ip, br.port, br.sock, br.conn_id),
                      build_local_request(br.buf, "CANCEL", reason=reason)))
    if br.proto == "udp":
        out.timers.append(("tm:cretr", cell.t1, f"{cell.tid}.{idx}.{cell.t1}.0".encode()))


def on_cancel_retr_timer(payload: bytes) -> None:
    """Retransmit a CANCEL until answered, the branch completed, or 64*T1 elapsed."""
    tid, sidx, sint, selapsed = payload.decode().split(".")
    idx, interval, elapsed = int(sidx), int(sint), int(selapsed) + int(sint)
    cell = table().get(tid)
    if cell is None or idx >= len(cell.branches):
        return
    br = cell.branches[idx]
    if br.flags & B_CANCEL_REPLIED or br.state >= St.COMPLETED or elapsed >= 64 * cell.t1:
        return
    core = _core()
    _send(core, _dest(core, br.proto, br.ip, br.port, br.sock, br.conn_id),
          build_local_request(br.buf, "CANCEL", reason=cell.cancel_reason))
    nxt = min(interval * 2, cell.t2)
    timer.schedule("tm:cretr", nxt, f"{tid}.{idx}.{nxt}.{elapsed}".encode())


def _local_reason(value: str) -> str:
    """The Reason line of a CANCEL caused by a final reply (local_cancel_reason)."""
    return f"Reason: {value}" if cfg.local_cancel_reason else ""


def _challenges(cell: Cell, best: Optional[int]) -> tuple[str, ...]:
    """aggregate_challenges: the WWW-/Proxy-Authenticate lines of the other 401/407 branches,
    added to the 401/407 that goes upstream (RFC 3261 16.7 step 7)."""
    if not cfg.aggregate_challenges:
        return ()
    lines: list[str] = []
    for i, b in enumerate(cell.branches):
        if i == best or b.flags & B_DROPPED or b.code not in (401, 407) or not b.reply:
            continue
        m = parse_msg(b.reply)
        for name in ("WWW-Authenticate", "Proxy-Authenticate"):
            lines += _hdr_lines(m, name)
    return tuple(lines)


def _finish(core: Any, cell: Cell, out: Out) -> None:
    """All branches completed: run failure_route (once armed) or relay the best reply."""
    if cell.tflags & (T_FINAL_SENT | T_IN_FAILURE):
        return
    best = pick_branch(cell)
    if best is None:
        if any(b.state < St.COMPLETED and b.state != St.NONE and not b.flags & B_DROPPED
               for b in cell.branches):
            return
        code, reason, raw = 500, "No branch", b""       # nothing could be sent
    else:
        br = cell.branches[best]
        code, raw = br.code, br.reply
        reason = REASONS.get(code, "Error")
        if raw:
                    reason = parse_msg(raw).reason
    cell.best_code, cell.best_reason = code, reason
    if cell.on_failure and code >= 300:
        name, cell.on_failure = cell.on_failure, ""     # failure_route runs once per arming
        cell.tflags |= T_IN_FAILURE
        out.failure = (name, code, reason, -1 if best is None else best)
        return
    if raw:
        buf, code = _relay_buf(raw, _challenges(cell, best) if code in (401, 407) else ())
        stats.inc("tmx:rpl_relayed")
    else:
        buf = _local_reply(cell, code, reason)
        stats.inc("tmx:rpl_generated")
    _send_upstream(core, cell, out, buf, code)


# ---- transaction creation ----------------------------------------------------------------

def current_tid(ctx: RouteCtx) -> Optional[str]:
    return ctx.extra.get(TID)


def lookup_request(ctx: RouteCtx) -> Optional[str]:
    """The transaction of a received (non-ACK) request, by its matching key."""
    tid = ctx.extra.get(TID)
    if tid is not None:
        return tid
    msg = ctx.msg
    if not msg.is_request:
        return None
    return table().index_get(request_key(msg, ruri_matching=bool(cfg.ruri_matching)))


def retransmit_reply(ctx: RouteCtx, tid: str) -> int:
    """A retransmitted request: resend the last reply (if any). 1 resent, -1 none yet."""
    cell = table().get(tid)
    stats.inc("tmx:rpl_absorbed")
    if cell is None or not cell.uas_reply:
        return -1
    _send(ctx.core, _uas_dest(ctx.core, cell), cell.uas_reply)
    return 1


def t_newtran(ctx: RouteCtx, arm_life: bool = True,
              pending: Optional[list[tuple[Cell, "Out", float]]] = None) -> int:
    """Create the server transaction of ctx.msg. 1 created (or already ours), 0 when it is a
    retransmission (the last reply was resent; the script must stop), negative on error.

    arm_life=False (t_relay): no timer of its own for max_(non)inv_lifetime; the branches'
    fr timers are capped at it and expire the transaction (one timer job less per call).
    PENDING (t_relay): the new cell is not stored yet; (cell, out, ttl) is appended there and
    the caller stores it with its branches in one write, then flushes OUT (the 100 Trying).
    The matching key is in the table from the start, so a retransmission meanwhile is
    absorbed."""
    if ctx.extra.get(TID) is not None:
        return 1
    msg = ctx.msg
    if not msg.is_request or msg.method == "ACK":
        klog.err("t_newtran: no transaction for ACK or replies", ctx)
        return E.E_UNSPEC
    tbl = table()
    invite = msg.method == "INVITE"
    tid = new_tid()
    key = request_key(msg, ruri_matching=bool(cfg.ruri_matching))
    ttl = _ttl(invite)
    try:
        old = tbl.index_add(key, tid, ttl)
    except ShmOutOfMemory:
        return _no_memory(ctx)
    if old is not None:
        retransmit_reply(ctx, old)
        return 0
    dest = reply_dest(msg, ctx.rcv, ctx.force_rport)
    rcv = ctx.rcv
    ex = ctx.extra
    method = msg.method
    created = now_ms()
    tflags = T_INVITE if invite else 0
    if method == "CANCEL":
        tflags |= T_IS_CANCEL
    if ex.get("tm_no_100") or not cfg.auto_inv_100:
        tflags |= T_NO_100
    if ex.get("tm_replicate"):
        tflags |= T_REPLICATE | T_NO_100
    if ex.get("tm_disable_6xx", cfg.disable_6xx_block):
        tflags |= T_DISABLE_6XX
    if ex.get("tm_no_internal_reply"):
        tflags |= T_NO_INTERNAL_REPLY
    cell = Cell.make(
        tid=tid, tflags=tflags, method=method,
        uas_state=fsm.initial_state(False, invite), uas_proto=dest.proto,
        uas_ip=dest.ip, uas_port=dest.port,
        uas_sock=str(rcv.sock) if rcv.sock is not None else _rcv_sock_text(ctx),
        request=msg.buf, src_ip=rcv.src_ip, src_port=rcv.src_port,
        dst_ip=rcv.dst_ip, dst_port=rcv.dst_port, rcv_proto=rcv.proto,
        flags=ctx.flags, ruri=msg.ruri,
        fr_timer=int(ex.get("tm_fr", 0) or _avp_ms(ctx, cfg.fr_timer_avp) or cfg.fr_timer),
        fr_inv_timer=int(ex.get("tm_fr_inv", 0) or _avp_ms(ctx, cfg.fr_inv_timer_avp)
                         or cfg.fr_inv_timer),
        t1=int(ex.get("tm_t1", 0) or cfg.t1), t2=int(ex.get("tm_t2", 0) or cfg.t2),
        created_ms=created, keys=key,
        life_due=created + int(
            ex.get("tm_max_inv_lifetime" if invite else "tm_max_noninv_lifetime", 0)
            or (cfg.max_inv_lifetime if invite else cfg.max_noninv_lifetime)),
        on_failure=ex.get("tm_on_failure", ""), on_reply=ex.get("tm_on_reply", ""),
        on_branch=ex.get("tm_on_branch", ""),
        on_branch_failure=ex.get("tm_on_branch_failure", ""),
        branches=[])
    out = Out()
    if invite and not cell.tflags & T_NO_100:
        buf = _local_reply(cell, 100, cfg.auto_inv_100_reason, req=msg)
        _send_upstream(ctx.core, cell, out, buf, 100)
    if pending is not None:
        ctx.extra[TID] = tid
        stats.inc("tmx:UAS_transactions")
        pending.append((cell, out, ttl))
        return 1
    try:
        tbl.insert(cell, ttl)
    except ShmOutOfMemory:
        tbl.index_del(key)
        return _no_memory(ctx)
    ctx.extra[TID] = tid
    if arm_life:
        out.timers.append(("tm:life", cell.life_due - cell.created_ms, tid.encode()))
    stats.inc("tmx:UAS_transactions")
    _flush(ctx.core, out)
    return 1


def _avp_ms(ctx: RouteCtx, spec: Optional[str]) -> int:
    """fr_timer_avp / fr_inv_timer_avp: the AVP's value in seconds (legacy), as ms; 0 unset."""
    if not spec or ctx.avps is None:
        return 0
    name = spec.strip()
    if name.startswith("$avp(") and name.endswith(")"):
        name = name[5:-1]
    name = name.removeprefix("s:").removeprefix("i:")
    v = ctx.avps.first(int(name) if name.isdigit() else name)
    try:
        return int(v) * 1000 if v is not None else 0
    except ValueError:
        return 0


def _no_memory(ctx: RouteCtx) -> int:
    """Shared memory is full: no transaction; the script's sl_reply_error() answers 500."""
    klog.err("tm: no shared memory left for a new transaction", ctx)
    stats.inc("tm:shm_oom")
    ctx.extra["last_error"] = (500, "Server Internal Error (no memory)")
    return E.E_OUT_OF_MEM


def _rcv_sock_text(ctx: RouteCtx) -> str:
    s = ctx.core.choose_socket(ctx.rcv.proto, ctx.rcv.src_ip)
    return str(s) if s is not None else ""


# ---- forwarding (t_relay) ---------------------------------------------------------------

def _targets(ctx: RouteCtx) -> list[Any]:
    return ctx.destinations()


@dataclass
class _Built:
    branch: Branch
    buf: bytes
    dest: Dest
    error: int = 0


def _build_branch(ctx: RouteCtx, cell: Cell, idx: int, tgt: RBranch, base: bytes,
                  host: Optional[str], port: Optional[int], proto: Optional[str]
                  ) -> Optional[_Built]:
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
                        otcpid=tgt.otcpid, branch_index=idx, extra=dict(ctx.extra),
                        branches=[])
    if has_br:
        bctx.dropped = False
        routes.run("branch", cell.on_branch, bctx)
        bctx.route_type, bctx.route_name = ctx.route_type, ctx.route_name
        if bctx.dropped:
            klog.dbg(f"tm: branch {idx} dropped in branch_route", ctx)
            return None
    br = Branch.make(state=fsm.initial_state(True, cell.invite), uri=bmsg.ruri,
                     dst_uri=bctx.dst_uri or "", bflags=bctx.bflags, ruid=tgt.ruid or "",
                     instance=tgt.instance or "")
    if bctx.extra.get("tm_on_reply") != ctx.extra.get("tm_on_reply"):
        br.on_reply = bctx.extra.get("tm_on_reply") or ""     # t_on_reply in branch_route
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
        klog.err(f"tm: branch {idx}: {exc.reason}", ctx)
        br.state, br.code, br.flags = St.TERMINATED, 503, B_LOCAL_FAIL
        return _Built(br, b"", Dest("udp", "", 0), exc.code)
    except (ParseError, ValueError) as exc:
        klog.err(f"tm: branch {idx}: cannot build the request: {exc}", ctx)
        br.state, br.code, br.flags = St.TERMINATED, 500, B_LOCAL_FAIL
        return _Built(br, b"", Dest("udp", "", 0), E.E_BAD_REQ)
    br.proto, br.ip, br.port, br.sock, br.buf = dproto, ip, dport, str(sock), buf
    # the contact's own connection (lookup), unless t_relay(host, ...) names another hop
    br.conn_id = bctx.otcpid if host is None and dproto != "udp" else 0
    br.retr_ms = 0 if dproto != "udp" else cell.t1
    return _Built(br, buf, Dest(dproto, ip, dport, sock, br.conn_id))


def t_relay(ctx: RouteCtx, host: Optional[str] = None, port: Optional[int] = None,
            proto: Optional[str] = None) -> int:
    """Forward statefully; 1 on success, negative on error (Kamailio t_relay)."""
    msg = ctx.msg
    if not msg.is_request:
        klog.err("t_relay: not a request", ctx)
        return E.E_UNSPEC
    if msg.method == "ACK":
        return _relay_ack(ctx, host, port, proto)
    if msg.method == "CANCEL" and ctx.route_type != RouteType.FAILURE:
        inv = table().index_get(invite_key_of(msg, bool(cfg.ruri_matching)))
        if inv is not None:
            rc = relay_cancel(ctx, inv)
            return 1 if rc >= 0 else rc
        if cfg.unmatched_cancel == 1:
            return forward_request(ctx, host, port, proto)
        if cfg.unmatched_cancel == 2:
            return 0
    # failure_route and tm:branch-failure add branches to the transaction; only a
    # failure_route starts a new serial leg (failure_reply_mode)
    pending: list[tuple[Cell, Out, float]] = []
    in_failure = ctx.route_type in (RouteType.FAILURE, RouteType.BRANCH_FAILURE) \
        and ctx.extra.get(TID) is not None
    new_leg = in_failure and ctx.route_type == RouteType.FAILURE
    if not in_failure:
        # a transaction made here is stored once, with its branches (see t_newtran)
        rc = t_newtran(ctx, arm_life=False, pending=pending)
        if rc <= 0:
            return rc if rc < 0 else 0
    tid = ctx.extra[TID]
    tbl = table()
    if pending:
        cell, first_out, ttl = pending[0]
    else:
        cell = tbl.get(tid, for_update=True)     # only on_branch is set before update()
        if cell is None:
            return E.E_UNSPEC
    # script state armed after t_newtran (t_on_*, t_set_fr...) travels with the transaction
    _sync_from_ctx(ctx, cell)
    try:
        add_via1_received_rport(ctx)
        base = msg.build()
    except (ParseError, ValueError) as exc:
        klog.err(f"t_relay: cannot build the request: {exc}", ctx)
        if pending:                 # the transaction exists for the script's own reply
            _store_pending(ctx, cell, first_out, ttl)
        return E.E_BAD_REQ
    start = len(cell.branches)
    built: list[_Built] = []
    for tgt in _targets(ctx):
        b = _build_branch(ctx, cell, start + len(built), tgt, base, host, port, proto)
        if b is not None:
            built.append(b)
    ok = [b for b in built if not b.error]
    # Record-Route and other send-time lines as rendered for the first branch: kept so that
    # branches added later (failure_route, t_continue) carry them too, as Kamailio's clone does
    send_lines = "\n".join(sendlumps.render(ctx, ok[0].dest.sock)) \
        if ok and ok[0].dest.sock is not None and not in_failure else ""
    if not built:
        klog.info("t_relay: no destination left (none set, or every branch_route dropped "
                  "its branch)", ctx)
    out = Out()
    snapshot = _ctx_snapshot(ctx)

    def add(c: Cell) -> None:
        if new_leg and ok:
            stats.inc("tm:serial_forks")
            for old in c.branches:          # failure_reply_mode 3: a new leg drops old replies
                if cfg.failure_reply_mode in (1, 3) or \
                        (cfg.failure_reply_mode == 2 and old.code and c.leg):
                    old.flags |= B_DROPPED
            c.leg += 1
        _apply_snapshot(c, snapshot)
        if not base.startswith(b"CANCEL") and not c.fwd_base:
            c.fwd_base = base
            c.send_lines = send_lines
        for b in built:
            c.branches.append(b.branch)
            if b.error:
                continue
            br = b.branch
            idx = len(c.branches) - 1
            now = now_ms()
            br.fr_due = now + c.fr_timer
            if c.life_due:
                br.fr_due = min(br.fr_due, max(c.life_due, now))
            # over UDP the first retransmission job (T1, marked "f") arms the fr job if the
            # branch is still pending then: most are answered sooner and need none
            lazy_fr = bool(br.retr_ms) and br.fr_due > now + br.retr_ms
            if br.retr_ms:
                ev = ("A" if c.invite else "E") + (".f" if lazy_fr else "")
                out.timers.append(("tm:retr", br.retr_ms, f"{c.tid}.{idx}.{br.retr_ms}.{ev}"
                                   .encode()))
            if not lazy_fr:
                out.timers.append(("tm:fr", br.fr_due - now,
                                   f"{c.tid}.{idx}.{br.fr_gen}".encode()))
        if c.tflags & T_CANCELED and c.invite:
            _cancel_branches(ctx.core, c, out, reason=c.cancel_reason)

    if pending and not ok:
        # nothing to send: the transaction never existed for anyone else; the 100 Trying
        # still goes out (as Kamailio's t_newtran sent it), the script replies itself
        _forget_pending(ctx, cell)
        _flush(ctx.core, first_out)
    elif pending:
        add(cell)
        if not _store_pending(ctx, cell, first_out, ttl, flush=False):
            return _no_memory(ctx)
    else:
        try:
            tbl.update(tid, add)
        except ShmOutOfMemory:
            if not in_failure:
                t_release_now(tid)
                ctx.extra.pop(TID, None)
            return _no_memory(ctx)
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
        _send(ctx.core, dest, buf)
    for b in ok:
        if _send(ctx.core, b.dest, b.buf):
            stats.inc("core:fwd_requests")
        else:
            stats.inc("core:err_requests")
    _flush(ctx.core, out)
    if ok:
        return 1
    err = built[0].error if built else E.E_UNSPEC
    # sl_reply_error() answers with this: an unreachable next hop is a 503
    ctx.extra["last_error"] = (503, "Service Unavailable") \
        if err in (E.E_SEND, E.E_BAD_ADDRESS, E.E_NO_SOCKET) else err
    if not in_failure and not pending:
        # nothing went out: forget the transaction so the script can reply itself
        t_release_now(tid)
        ctx.extra.pop(TID, None)
    return err


def _store_pending(ctx: RouteCtx, cell: Cell, out: "Out", ttl: float, flush: bool = True
                   ) -> bool:
    """Store a transaction t_newtran(pending=) made, then send what it queued (100 Trying;
    flush=False: the caller sends it). False (and the transaction forgotten) when shared
    memory is full."""
    try:
        table().insert(cell, ttl)
    except ShmOutOfMemory:
        _forget_pending(ctx, cell)
        return False
    if flush:
        _flush(ctx.core, out)
    return True


def _forget_pending(ctx: RouteCtx, cell: Cell) -> None:
    tbl = table()
    for key in cell.keys.split("\n"):
        if key:
            tbl.index_del(key, cell.tid)
    ctx.extra.pop(TID, None)


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
    if ctx.avps is not None and ctx.avps._d:
        out["a"] = [[k, v] for k, v in ctx.avps._d.items()]
    if ctx.xavps is not None and ctx.xavps.xavp:
        skip = _contacts_avp_name()
        out["x"] = [_xavp_json(x) for x in ctx.xavps.xavp if x.name != skip]
    return json.dumps(out) if out else ""


def restore_avps(ctx: RouteCtx, text: str) -> None:
    if not text:
        return
    data = json.loads(text)
    if data.get("a"):
        lst = ctx.avps = AvpList()
        for name, values in data["a"]:
            lst._d[name] = list(values)
    if data.get("x"):
        xavps(ctx).xavp[:0] = [_xavp_from(i) for i in data["x"]]


_SNAP_KEYS = ("tm_on_failure", "tm_on_reply", "tm_on_branch", "tm_on_branch_failure",
              "tm_fr", "tm_fr_inv")


def _ctx_snapshot(ctx: RouteCtx) -> dict[str, Any]:
    snap = {"flags": ctx.flags, "contacts": dump(ctx), "avps": dump_avps(ctx)}
    ex = ctx.extra
    for k in _SNAP_KEYS:
        if k in ex:
            snap[k] = ex[k]
    return snap


def _apply_snapshot(cell: Cell, snap: dict[str, Any]) -> None:
    cell.flags = snap["flags"]
    cell.contacts = snap["contacts"]
    cell.avps = snap["avps"]
    for name in ("on_failure", "on_reply", "on_branch", "on_branch_failure"):
        if "tm_" + name in snap:
            setattr(cell, name, snap["tm_" + name])
    if snap.get("tm_fr"):
        cell.fr_timer = int(snap["tm_fr"])
    if snap.get("tm_fr_inv"):
        cell.fr_inv_timer = int(snap["tm_fr_inv"])


def _sync_from_ctx(ctx: RouteCtx, cell: Cell) -> None:
    """Arm what the script set on ctx (branch_route is needed before the branches go out)."""
    if "tm_on_branch" in ctx.extra:
        cell.on_branch = ctx.extra["tm_on_branch"]


def _relay_ack(ctx: RouteCtx, host: Optional[str], port: Optional[int], proto: Optional[str]
               ) -> int:
    """ACK: one for a non-2xx reply of ours is absorbed (hop by hop); any other ACK (2xx,
    end to end) is forwarded statelessly, as Kamailio's t_relay does."""
    if absorb_ack(ctx):
        return 1
    return forward_request(ctx, host, port, proto)


def absorb_ack(ctx: RouteCtx) -> bool:
    """True when ctx.msg is an ACK for a non-2xx final reply of one of our INVITE server
    transactions: the server fsm moves to Confirmed and the ACK goes no further."""
    tid = table().index_get(invite_key_of(ctx.msg, bool(cfg.ruri_matching)))
    if tid is None:
        return False

    def upd(c: Cell) -> bool:
        if c.uas_code < 300:
            return False
        tr = fsm.step(fsm.SERVER_INVITE, c.uas_state, Ev.RCV_ACK)
        if tr is None:
            return True                 # e.g. already confirmed: absorb the retransmission
        c.uas_state = tr.state
        return True

    cell, absorbed = table().update(tid, upd)
    if cell is None or not absorbed:
        return False
    stats.inc("tm:ack_absorbed")
    timer.schedule("tm:wait", cfg.wt_timer, tid.encode())
    return True


# ---- CANCEL --------------------------------------------------------------------------------

def relay_cancel(ctx: RouteCtx, inv_tid: str) -> int:
    """A CANCEL matching INVITE transaction INV_TID: answer it 200 (its own transaction) and
    CANCEL every pending branch of the INVITE. 0 when it was a retransmission."""
    rc = t_newtran(ctx)
    if rc <= 0:
        return rc
    t_reply(ctx, 200, "canceling")
    reason = ""
    if cfg.e2e_cancel_reason and not ctx.extra.get("tm_no_e2e_cancel_reason"):
        h = ctx.msg.header(HdrType.REASON)
        if h is not None:
            reason = "Reason: " + h.value
    out = Out()

    def upd(c: Cell) -> None:
        c.tflags |= T_CANCELED
        c.cancel_reason = reason
        _cancel_branches(ctx.core, c, out, reason=reason)
        _finish(ctx.core, c, out)     # cancel_b_method=0 may have ended every branch

    table().update(inv_tid, upd)
    _flush(ctx.core, out)
    if out.failure is not None:
        run_failure(inv_tid, out.failure, ctx.core)
    return 1


# ---- local replies (t_reply) ------------------------------------------------------------

def t_reply(ctx: RouteCtx, code: int, reason: str, headers: tuple[str, ...] = ()) -> int:
    """Reply statefully to the transaction of ctx (request or failure route). 1 / -1."""
    tid = ctx.extra.get(TID)
    if tid is None and ctx.msg.is_request:
        tid = lookup_request(ctx)
    if tid is None:
        klog.err("t_reply: no transaction (call t_newtran first)", ctx)
        return -1
    hdrs = tuple(headers) + tuple(ctx.reply_lumps)
    if 300 <= code < 400:
        from modules.sl import _reply_dset_contacts

        contact = _reply_dset_contacts(ctx)
        if contact is not None:
            hdrs += (contact,)
    body, ctype = ctx.extra.get("reply_body", (b"", None))
    out = Out()
    srv = server_header(ctx)

    def upd(c: Cell) -> bool:
        if code >= 200 and c.tflags & T_FINAL_SENT and not (code < 300 and c.invite):
            return False
        buf = _local_reply(c, code, reason, hdrs, body, ctype, srv)
        before = c.uas_state
        _send_upstream(ctx.core, c, out, buf, code)
        if c.uas_state == before and not out.sends:
            return False
        if code >= 200:
            c.tflags |= T_LOCAL_REPLY
            c.best_code, c.best_reason = code, reason
            if c.invite:
                _cancel_branches(ctx.core, c, out, reason=_local_reason(f"SIP;cause={code}"))
        return True

    cell, ok = table().update(tid, upd)
    if cell is None or not ok:
        klog.err(f"t_reply: cannot send {code} in the transaction's state", ctx)
        return -1
    ctx.extra[TID] = tid
    ctx.replied = True
    stats.inc("tmx:rpl_generated")
    _flush(ctx.core, out)
    _event_route(ctx, "tm:local-response")
    return 1


def _event_route(ctx: RouteCtx, name: str) -> None:
    """Run event_route[NAME] on CTX when the config has it; ctx's route state is kept."""
    routes = ctx.core.routes
    if routes is None or not routes.has_route("event", name):
        return
    saved = (ctx.route_type, ctx.route_name, ctx.dropped)
    try:
        routes.run("event", name, ctx)
    finally:
        ctx.route_type, ctx.route_name, ctx.dropped = saved


# ---- replies from downstream ----------------------------------------------------------------

def reply_received(ctx: RouteCtx) -> bool:
    """mod.response hook: True when the reply belongs to one of our transactions (it is then
    processed here and never relayed statelessly)."""
    msg = ctx.msg
    rb = reply_branch(msg)
    tbl = table()
    cell = tbl.get(rb[0], for_update=True) if rb is not None else None
    if rb is None or cell is None or rb[1] >= len(cell.branches) \
            or (cfg.callid_matching and not _same_callid(cell, msg)):
        return _sl_reply(ctx)
    tid, idx = rb
    stats.inc("tmx:rpl_received")
    code = msg.status
    if msg.cseq.method == "CANCEL" and cell.method != "CANCEL":
        # the reply to a CANCEL we sent on this branch: it ends that CANCEL's retransmissions
        if code >= 200:
            def cancel_done(c: Cell) -> None:
                c.branches[idx].flags |= B_CANCEL_REPLIED

            tbl.update(tid, cancel_done)
        stats.inc("tmx:rpl_absorbed")
        return True
    br = cell.branches[idx]
    tr = fsm.step(fsm.table_for(True, cell.invite), br.state, fsm.reply_event(code))
    if tr is None or Act.ABSORB in tr.actions:
        if tr is not None and Act.SEND_ACK in tr.actions:
            _send(ctx.core, _dest(ctx.core, br.proto, br.ip, br.port, br.sock, br.conn_id),
                  _ack_for(br.buf, msg))
        stats.inc("tmx:rpl_absorbed")
        return True
    ctx.extra[TID] = tid
    ctx.branch_index = idx
    ctx.flags = cell.flags
    ctx.bflags = br.bflags
    restore_avps(ctx, cell.avps)
    routes = ctx.core.routes
    suppress = False        # `drop` in onreply_route: a 1xx/2xx is not relayed (state moves on)
    on_reply = br.on_reply or cell.on_reply
    if on_reply and routes is not None and routes.has_route("onreply", on_reply):
        ctx.dropped = False
        routes.run("onreply", on_reply, ctx)
        ctx.route_type = RouteType.ONREPLY
        suppress = ctx.dropped and code < 300
        if suppress:
            stats.inc("tmx:rpl_absorbed")
    raw = msg.build() if msg.lumps_pending else msg.buf
    relay_buf, relay_code = b"", code
    if code < 300 and (code > 100 or cfg.relay_100) and not suppress:
        # edit the received message itself when the script left no edits (one parse less);
        # RAW, the reply as received, was taken above
        relay_buf, relay_code = _relay_buf(raw, parsed=None if msg.lumps_pending else msg)
    flags = ctx.flags
    core = ctx.core
    out = Out()
    # a negative reply runs tm:branch-failure before the transaction may complete (Kamailio)
    bf_route = code >= 300 and _has_branch_failure_route(cell, core)
    deferred: list[bool] = []

    def upd(c: Cell) -> None:
        b = c.branches[idx]
        t = fsm.step(fsm.table_for(True, c.invite), b.state, fsm.reply_event(code))
        if t is None:
            out.absorb = True
            return
        b.state = t.state
        b.flags |= B_REPLIED
        c.last_code = code
        c.flags = flags
        if Act.SEND_ACK in t.actions:
            out.sends.append((_dest(core, b.proto, b.ip, b.port, b.sock, b.conn_id),
                              _ack_for(b.buf, msg)))
        if code < 200:
            if b.code < code:
                b.code = code
            if b.flags & B_CANCEL_PENDING:
                send_cancel(core, c, idx, out, c.cancel_reason)
            if c.invite and (cfg.restart_fr_on_each_reply or not b.inv_fr):
                # fr_inv_timer runs from now: the armed fr timer, when it fires, sees the
                # later deadline and re-arms itself in the timer process; a new job is
                # queued only when the deadline comes sooner than the armed one
                now = now_ms()
                b.inv_fr = now
                due = now + c.fr_inv_timer
                if c.life_due:
                    due = min(due, max(c.life_due, now))
                if due < b.fr_due:
                    b.fr_gen += 1
                    b.fr_due = due
                    b.flags |= B_FR_ARMED
                    out.timers.append(("tm:fr", due - now, f"{c.tid}.{idx}.{b.fr_gen}"
                                       .encode()))
            if relay_buf and not c.tflags & T_FINAL_SENT:
                _send_upstream(core, c, out, relay_buf, relay_code)
            return
        b.code = code
        if code < 300:
            # every 2xx goes upstream (RFC 3261 16.7 step 5), the others are cancelled
            c.best_code, c.best_reason = code, msg.reason
            if relay_buf and (not c.tflags & T_2XX_SENT or c.invite):
                if c.tflags & T_2XX_SENT:
                    out.sends.append((_uas_dest(core, c), relay_buf))   # another 2xx
                else:
                    _send_upstream(core, c, out, relay_buf, relay_code)
            if c.invite:
                _cancel_branches(core, c, out, skip=idx, reason=_local_reason(
                    'SIP;cause=200;text="Call completed elsewhere"'))
            return
        b.reply = raw
        if code >= 600 and c.invite and not c.tflags & T_DISABLE_6XX:
            _cancel_branches(core, c, out, skip=idx, reason=_local_reason(f"SIP;cause={code}"))
        if bf_route and not c.tflags & T_IN_FAILURE:
            c.tflags |= T_IN_FAILURE        # held until the branch-failure route has run
            deferred.append(True)
            return
        _finish(core, c, out)

    cell, _ = tbl.update(tid, upd)
    if cell is None:
        return True
    _flush(core, out)
    try:
        if code >= 300 and cell.on_branch_failure and not out.absorb:
            _branch_failure(cell, idx, ctx.core, code, msg.reason)
    finally:
        if deferred:            # never leave the transaction held
            out = _finish_held(tid, core)
    if out.failure is not None:
        run_failure(tid, out.failure, core)
    return True


def _same_callid(cell: Cell, msg: "SipMsg") -> bool:
    """callid_matching: a reply matches only with the Call-ID of the transaction's request."""
    return parse_msg(cell.request).callid == msg.callid


def _sl_reply(ctx: RouteCtx) -> bool:
    """A reply of no transaction: on_sl_reply's route may drop it (True: not forwarded)."""
    name = cfg.on_sl_reply
    routes = ctx.core.routes
    if not name or routes is None or not routes.has_route("onreply", name):
        return False
    ctx.dropped = False
    rc = routes.run("onreply", name, ctx)
    return ctx.dropped or rc == 0


def _has_branch_failure_route(cell: Cell, core: Any) -> bool:
    routes = core.routes
    return bool(cell.on_branch_failure) and routes is not None and \
        routes.has_route("event", f"tm:branch-failure:{cell.on_branch_failure}")


def _branch_failure(cell: Cell, idx: int, core: Any, code: int, reason: str) -> None:
    """event_route[tm:branch-failure:NAME] (t_on_branch_failure) for a negative reply on
    branch IDX (CODE REASON; 408 when the branch timed out), on the transaction's request
    with the reply available as $T_rpl. As in
    Kamailio's faked environment the R-URI is consumed (t_relay() there sends the branches
    it added, e.g. t_next_contact_flow(), unless $ru/$du change) and the xavps/flags it
    changes stay with the transaction."""
    routes = core.routes
    name = f"tm:branch-failure:{cell.on_branch_failure}"
    if routes is None or not routes.has_route("event", name):
        return
    fctx = ctx_from_cell(cell, core)
    fctx.branch_index = idx
    fctx.extra[BEST] = (code, reason, idx)
    fctx.ruri_consumed = (fctx.msg.ruri, fctx.dst_uri)
    if idx < len(cell.branches):
        fctx.bflags = cell.branches[idx].bflags
        fctx.extra[BRANCH_INSTANCE] = cell.branches[idx].instance
    routes.run("event", name, fctx)
    flags, contacts, avps = fctx.flags, dump(fctx), dump_avps(fctx)

    def upd(c: Cell) -> None:
        c.flags, c.contacts, c.avps = flags, contacts, avps

    table().update(cell.tid, upd)


def _finish_held(tid: str, core: Any) -> Out:
    """After the branch-failure route: complete the transaction if every branch is done
    (the route may have added branches or replied)."""
    out = Out()

    def upd(c: Cell) -> None:
        c.tflags &= ~T_IN_FAILURE
        _finish(core, c, out)

    table().update(tid, upd)
    _flush(core, out)
    return out


def _ack_for(sent: bytes, reply: "SipMsg") -> bytes:
    h = reply.header(HdrType.TO)
    to_line = reply.buf[h.start:h.end].decode("utf-8", "surrogateescape").rstrip("\r\n") \
        if h is not None else None
    return build_local_request(sent, "ACK", to_line=to_line)


# ---- failure_route ---------------------------------------------------------------------------

@dataclass
class _SavedLines:
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
    ctx.extra[TID] = cell.tid
    ctx.via1_rcv_params_added = bool(cell.fwd_base)
    restore_avps(ctx, cell.avps)
    if cell.send_lines:
        sendlumps.add(ctx, _SavedLines(cell.send_lines.split("\n")))
    if cell.contacts:

        restore(ctx, cell.contacts)
    return ctx


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
    fctx.extra[BEST] = (code, reason, best)
    fctx.route_type = RouteType.FAILURE
    if 0 <= best < len(cell.branches):
        fctx.bflags = cell.branches[best].bflags      # $bf: the failed branch's flags
    if routes is not None and routes.has_route("failure", name):
        stats.inc("tm:failure_routes")
        routes.run("failure", name, fctx)
    flags = fctx.flags
    snap = _ctx_snapshot(fctx)
    out = Out()

    def upd(c: Cell) -> None:
        c.tflags &= ~T_IN_FAILURE
        c.flags = flags
        c.contacts = snap["contacts"]
        c.avps = snap["avps"]
        if "tm_on_failure" in snap:
            c.on_failure = snap["tm_on_failure"]
        if "tm_on_reply" in snap:
            c.on_reply = snap["tm_on_reply"]
        _finish(core, c, out)

    tbl.update(tid, upd)
    _flush(core, out)
    if out.failure is not None:
        run_failure(tid, out.failure, core)


# ---- timers (timer process) ------------------------------------------------------------------

def _core() -> Any:
    """The node (CoreApi) tm was initialised with: timer callbacks and RPCs send through it."""
    from . import mod

    return mod.context.core


def on_retr_timer(payload: bytes) -> None:
    """Timers A / E: resend the branch request while no reply stopped it. The first job of a
    t_relay() branch (marked "f") also arms the branch's fr job when the branch is still
    pending and no worker armed one."""
    tid, sidx, sint, kind, *first = payload.decode().split(".")
    idx, interval = int(sidx), int(sint)
    sf = table().branch_state(tid, idx)
    if sf is None:
        return
    state, flags = sf
    if state >= 0 and not (state == St.CALLING if kind == "A"
                           else state in (St.TRYING, St.PROCEEDING)) \
            and not (first and state < St.COMPLETED and not flags & B_FR_ARMED):
        return                      # answered (the usual case): no cell decode for it
    cell = table().get(tid)
    if cell is None or idx >= len(cell.branches):
        return
    br = cell.branches[idx]
    invite = cell.invite
    if first and br.state < St.COMPLETED and not br.flags & B_FR_ARMED:
        timer.schedule("tm:fr", max(0, br.fr_due - now_ms()),
                       f"{tid}.{idx}.{br.fr_gen}".encode())
    if br.state not in ((St.CALLING,) if invite else (St.TRYING, St.PROCEEDING)):
        return
    core = _core()
    if _send(core, _dest(core, br.proto, br.ip, br.port, br.sock, br.conn_id), br.buf):
        stats.inc("tm:retransmissions")
    timers = fsm.Timers(cell.t1, cell.t2)
    nxt = timers.next_retr(interval, invite, br.state == St.PROCEEDING)
    timer.schedule("tm:retr", nxt, f"{tid}.{idx}.{nxt}.{kind}".encode())


def on_fr_timer(payload: bytes) -> None:
    """fr_timer / fr_inv_timer (timers B / F): the branch gets a local 408 (487 when the
    transaction was cancelled) and the transaction may complete: failure_route runs here."""
    tid, sidx, sgen = payload.decode().split(".")
    idx, gen = int(sidx), int(sgen)
    core = _core()
    out = Out()
    deferred: list[bool] = []

    def upd(c: Cell) -> None:
        if idx >= len(c.branches):
            return
        b = c.branches[idx]
        if b.fr_gen != gen or b.state >= St.COMPLETED:
            return
        now = now_ms()
        due = b.inv_fr + c.fr_inv_timer if c.invite and b.inv_fr else b.fr_due
        if c.life_due:
            due = min(due, c.life_due)
        if due > now:           # fr_inv_timer started later: wait for its end
            b.fr_due = due
            out.timers.append(("tm:fr", due - now, payload))
            return
        if c.life_due and now >= c.life_due and not c.tflags & T_FINAL_SENT:
            _expire(core, c, out)   # max lifetime reached (t_relay arms no timer of its own)
            return
        ev = Ev.TIMER_B if c.invite else Ev.TIMER_F
        t = fsm.step(fsm.table_for(True, c.invite), b.state, ev)
        b.state = t.state if t is not None else int(St.TERMINATED)
        b.flags |= B_TIMEOUT
        b.code = 487 if c.tflags & T_CANCELED and c.invite else 408
        b.reply = b""
        stats.inc("tm:branch_timeouts")
        if c.invite and b.flags & B_REPLIED and not b.flags & B_CANCEL_SENT:
            send_cancel(core, c, idx, out)
        if _has_branch_failure_route(c, core) and not c.tflags & T_IN_FAILURE:
            # a timed-out branch runs tm:branch-failure too (t_branch_timeout() is true
            # there; RFC 5626 outbound tries the next flow), before the transaction completes
            c.tflags |= T_IN_FAILURE
            deferred.append(True)
            return
        if not cfg.noisy_ctimer and c.invite and len(c.branches) == 1 and \
                not b.flags & B_REPLIED and not c.on_failure and not c.tflags & T_CANCELED:
            # noisy_ctimer=0: a single never-answered INVITE branch ends silently
            c.tflags |= T_FINAL_SENT
            out.timers.append(("tm:wait", cfg.wt_timer, _wait_payload(c)))
            return
        _finish(core, c, out)

    cell, _ = table().update(tid, upd)
    if cell is None:
        return
    _flush(core, out)
    if deferred:
        try:
            _branch_failure(cell, idx, core, cell.branches[idx].code, "Request Timeout")
        finally:                # never leave the transaction held
            out = _finish_held(tid, core)
    if out.failure is not None:
        run_failure(tid, out.failure, core)


def on_uas_timer(payload: bytes) -> None:
    """Timers G (resend the final non-2xx reply until the ACK) and H (give up waiting)."""
    tid, kind = payload.decode().split(".")
    core = _core()
    out = Out()
    ev = Ev.TIMER_G if kind == "G" else Ev.TIMER_H

    def upd(c: Cell) -> None:
        t = fsm.step(fsm.SERVER_INVITE, c.uas_state, ev)
        if t is None:
            return
        c.uas_state = t.state
        if Act.RETRANSMIT in t.actions:
            out.sends.append((_uas_dest(core, c), c.uas_reply))
            c.uas_retr_ms = min(c.uas_retr_ms * 2, c.t2)
            out.timers.append(("tm:uas", c.uas_retr_ms, f"{c.tid}.G".encode()))
        if t.state == St.TERMINATED:
            out.timers.append(("tm:wait", 0, _wait_payload(c)))

    table().update(tid, upd)
    _flush(core, out)


def _expire(core: Any, c: Cell, out: Out) -> None:
    """Max lifetime reached without a final reply upstream: pending branches are cancelled
    and count as timed out, and the transaction completes (Kamailio's lifetime expiry)."""
    c.tflags |= T_EXPIRED
    if c.tflags & T_IN_FAILURE:
        return
    if c.invite:
        _cancel_branches(core, c, out, reason="Reason: SIP;cause=408")
    for b in c.branches:
        if St.NONE < b.state < St.COMPLETED:
            b.state = int(St.TERMINATED)
            b.flags |= B_TIMEOUT
            b.code = 487 if c.tflags & T_CANCELED and c.invite else 408
            b.reply = b""
    _finish(core, c, out)


def on_life_timer(payload: bytes) -> None:
    """max_inv_lifetime / max_noninv_lifetime (timer C): a transaction still without a final
    reply upstream is expired: its pending branches are cancelled and count as timed out."""
    tid = payload.decode()
    core = _core()
    out = Out()

    def upd(c: Cell) -> None:
        if not c.tflags & T_FINAL_SENT:
            _expire(core, c, out)

    cell, _ = table().update(tid, upd)
    if cell is None:
        return
    _flush(core, out)
    if out.failure is not None:
        run_failure(tid, out.failure, core)


def _wait_payload(cell: Cell) -> bytes:
    """The wait job's payload: the tid and the cell's matching keys, so the timer process
    releases the transaction without reading and decoding the cell."""
    return f"{cell.tid}\n{cell.keys}".encode("utf-8", "surrogateescape")


def on_wait_timer(payload: bytes) -> None:
    """End of the wait state: the cell and its matching keys leave the table."""
    tid, nl, keys = payload.decode("utf-8", "surrogateescape").partition("\n")
    if nl:
        _release(tid, keys)
    else:
        t_release_now(tid)


def add_blind_uac(ctx: RouteCtx) -> int:
    """A branch that is never sent (Kamailio add_blind_uac: t_write_req/t_write_unix): its fr
    timer completes the transaction with 408 when nobody replies in time. 1 / -1."""
    tid = ctx.extra.get(TID)
    if tid is None:
        klog.err("add_blind_uac: no transaction context", ctx)
        return -1
    out = Out()

    def upd(c: Cell) -> bool:
        limit = int(ctx.core.get_global("max_branches", 12) or 12)
        if len(c.branches) >= limit:
            return False
        # nothing went out on it, so there is never anything to CANCEL
        br = Branch(state=fsm.initial_state(True, c.invite), flags=B_CANCEL_SENT)
        c.branches.append(br)
        now = now_ms()
        br.fr_due = now + c.fr_timer
        if c.life_due:
            br.fr_due = min(br.fr_due, max(c.life_due, now))
        out.timers.append(("tm:fr", br.fr_due - now,
                           f"{c.tid}.{len(c.branches) - 1}.{br.fr_gen}".encode()))
        return True

    cell, ok = table().update(tid, upd)
    if cell is None or not ok:
        klog.err("add_blind_uac: maximum number of branches exceeded", ctx)
        return -1
    _flush(ctx.core, out)
    return 1


def t_release_now(tid: str) -> None:
    cell = table().get(tid)
    if cell is not None:
        _release(tid, cell.keys)


def _release(tid: str, keys: str) -> None:
    """The cell TID and its matching KEYS leave the table; the keys only if the cell was
    still there (a second wait job, an earlier t_release) and only while they still map to
    it (a retransmission may have made a new transaction with the same key)."""
    tbl = table()
    if tbl.delete(tid):
        for key in keys.split("\n"):
            if key:
                tbl.index_del(key, tid)


def on_clean_timer() -> None:
    """Periodic: drop entries whose ttl passed (lost timers, crashed processes)."""
    n = table().expire()
    if n:
        klog.dbg(f"tm: {n} expired table entries removed")


def mark_expired(cell: Cell) -> bool:
    life = cfg.max_inv_lifetime if cell.invite else cfg.max_noninv_lifetime
    return bool(cell.tflags & T_EXPIRED) or now_ms() - cell.created_ms > life


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


# ---- local requests (t_uac_send, tm.t_uac_start) ------------------------------------------

def uac_send(core: Any, method: str, ruri: str, nexthop: str, socket: str, headers: str,
             body: str) -> Optional[str]:
    """Send a request generated here as a UAC transaction (its replies stay here: the final
    status is kept in the cell for tm.t_uac_wait_block). Returns the tid, None on error."""
    method = method.strip().upper()
    hdrs = [h.strip() for h in headers.replace("\r\n", "\n").split("\n") if h.strip()]
    names = {h.split(":", 1)[0].strip().lower() for h in hdrs}
    if not (names & {"from", "f"} and names & {"to", "t"}):
        klog.err("t_uac_send: the headers need From and To")
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
        klog.err(f"t_uac_send: bad request: {exc}")
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
                method=method, uas_state=fsm.initial_state(False, invite), request=raw,
                fwd_base=raw, ruri=ruri, fr_timer=cfg.fr_timer, fr_inv_timer=cfg.fr_inv_timer,
                t1=cfg.t1, t2=cfg.t2, created_ms=now_ms())
    ctx.extra[TID] = tid
    _event_route(ctx, "tm:local-request")      # may still change $du / $fs
    b = _build_branch(ctx, cell, 0, RBranch(uri=ctx.msg.ruri, dst_uri=ctx.dst_uri), raw, None, None, None)
    if b is None or b.error:
        return None
    b.branch.fr_due = now_ms() + cell.fr_timer
    cell.branches.append(b.branch)
    table().insert(cell, _ttl(invite))
    stats.inc("tmx:UAC_transactions")
    out = Out()
    if b.branch.retr_ms:
        out.timers.append(("tm:retr", b.branch.retr_ms,
                           f"{tid}.0.{b.branch.retr_ms}.{'A' if invite else 'E'}".encode()))
    out.timers.append(("tm:fr", cell.fr_timer, f"{tid}.0.0".encode()))
    if not _send(core, b.dest, b.buf):
        t_release_now(tid)
        return None
    _flush(core, out)
    return tid
