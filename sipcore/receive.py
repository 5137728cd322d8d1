"""receive_msg(): the single entry for every received SIP message (Kamailio receive.c).

Runs in: SIP workers (UDP now; TCP readers later) and the in-process test harness.
Parses, checks the mandatory headers, runs request_route / reply_route, and forwards replies
that no module took statelessly by their Via. Bad input never escapes as an exception: it is
answered with a 400 when a reply can be built, otherwise dropped and counted.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Optional

from sipcore import stats
from sipcore.errors import ParseError
from sipcore.forward import forward_reply
from sipcore.log import STATE as log_state
from sipcore.mod.exports import RouteType
from sipcore.msg import HdrType, parse_msg
from sipcore.net.addr import RecvInfo
from sipcore.reply import send_stateless_reply
from sipcore.route.ctx import RouteCtx

log = logging.getLogger(__name__)


_T_VIA = int(HdrType.VIA)
_REQUEST, _ONREPLY = RouteType.REQUEST, RouteType.ONREPLY    # enum lookups once


def _check_mandatory(msg: Any) -> None:
    """Via, From, To, Call-ID and CSeq must be present (RFC 3261 8.1.1). A request's top Via
    is parsed here (its reply goes by it). A reply's is parsed when something reads it: tm
    matches a reply by the branch the C scanner found, so a relayed reply needs no Via parse;
    a defect found later drops the reply (receive_msg). From/To bodies likewise are parsed
    when something reads them; a defect found then is handled by _run_route()."""
    if msg.is_request:
        if msg.via1 is None:
            raise ParseError("missing Via header")
    elif not msg.has_header(_T_VIA):
        raise ParseError("missing Via header")
    for t, name in _MANDATORY:
        if not msg.has_header(t):
            raise ParseError(f"missing {name} header")
    cseq = msg.cseq
    if msg.is_request and cseq.method != msg.method and msg.method != "ACK" \
            and msg.method != "CANCEL":
        raise ParseError("CSeq method does not match the request method")


def _mandatory() -> tuple:
    return ((int(HdrType.FROM), "From"), (int(HdrType.TO), "To"),
            (int(HdrType.CALLID), "Call-ID"), (int(HdrType.CSEQ), "CSeq"))


_MANDATORY = _mandatory()


def _run_route(cfg: Any, core: Any, kind: str, ctx: RouteCtx) -> None:
    """Run a route; a malformed part of the message found on the way (a header first parsed
    by a function) ends the script like a failed parse: 400 for a request not answered yet,
    otherwise a drop, logged and counted."""
    try:
        cfg.run(kind, None, ctx)
    except ParseError as exc:
        stats.inc("core:err_msgs")
        rcv = ctx.rcv
        log.warning("receive_msg: malformed message from %s:%s/%s found while routing: %s",
                    rcv.src_ip, rcv.src_port, rcv.proto, exc.reason)
        ctx.dropped = True
        if ctx.msg.is_request and not ctx.replied:
            _reject(cfg, core, ctx.msg, rcv, exc)


def _reject(cfg: Any, core: Any, msg: Any, rcv: RecvInfo, exc: ParseError) -> None:
    """Answer a broken request with exc.status_hint when a reply can still be built."""
    if msg is None or not msg.is_request or msg.method == "ACK":
        return
    try:
        ctx = RouteCtx(msg=msg, rcv=rcv, core=core)
        reason = "Bad Request" if exc.status_hint == 400 else "Bad Request"
        send_stateless_reply(ctx, exc.status_hint, reason,
                             extra_headers=(f"Warning: 399 pykam \"{_warn_text(exc.reason)}\"",))
    except ParseError:
        pass  # not even the Via stack is usable: nothing can be sent back


def _warn_text(s: str) -> str:
    return s.replace("\\", "").replace('"', "'")[:120]


def _pre_script(cfg: Any) -> list:
    """The loaded modules' request pre-script callbacks, computed once per config."""
    cbs = getattr(cfg, "_pre_script_cbs", None)
    if cbs is None:
        cbs = cfg.modules.pre_script_callbacks()
        cfg._pre_script_cbs = cbs
    return cbs


def _response_cbs(cfg: Any) -> list:
    cbs = getattr(cfg, "_response_cbs", None)
    if cbs is None:
        cbs = cfg.modules.response_callbacks()
        cfg._response_cbs = cbs
    return cbs


def receiver(cfg: Any, core: Any, before: Optional[Callable[[], object]] = None
             ) -> Callable[[bytes, RecvInfo], Optional[RouteCtx]]:
    """What a transport hands each message to (`receive(buf, rcv)`): receive_msg for the
    compiled config CFG and the node CORE. BEFORE runs first, per message: a SIP worker adopts
    runtime cfg changes (cfg.seti) and the debug level there, as Kamailio's cfg_update() does
    (two shm reads when nothing changed)."""
    if before is None:
        return functools.partial(receive_msg, cfg, core)

    def receive(buf: bytes, rcv: RecvInfo) -> Optional[RouteCtx]:
        before()
        return receive_msg(cfg, core, buf, rcv)

    return receive


def receive_msg(cfg: Any, core: Any, buf: bytes, rcv: RecvInfo) -> Optional[RouteCtx]:
    """Process one message; returns the RouteCtx it ran with (None when it was dropped early)."""
    stats.inc("core:rcv_msgs")
    try:
        msg = parse_msg(buf)
    except ParseError as exc:
        stats.inc("core:err_msgs")
        stats.inc("core:drop_msgs")
        log.warning("receive_msg: dropping unparsable message from %s:%s/%s: %s",
                    rcv.src_ip, rcv.src_port, rcv.proto, exc.reason)
        return None
    try:
        _check_mandatory(msg)
    except ParseError as exc:
        stats.inc("core:err_msgs")
        log.warning("receive_msg: bad message from %s:%s/%s: %s",
                    rcv.src_ip, rcv.src_port, rcv.proto, exc.reason)
        _reject(cfg, core, msg, rcv, exc)
        return None

    ctx = RouteCtx(msg=msg, rcv=rcv, core=core)
    # log lines written while the message is routed carry log_prefix, evaluated for it
    log_state.msg_ctx, log_state.msg_prefix = ctx, None
    try:
        if msg.is_request:
            stats.inc("core:rcv_requests")
            ctx.route_type = _REQUEST
            for cb in _pre_script(cfg):
                if not cb(ctx):
                    ctx.dropped = True
                    return ctx
            _run_route(cfg, core, "request", ctx)
            return ctx
        _route_reply(cfg, core, ctx)
        return ctx
    finally:
        log_state.msg_ctx = None


def _route_reply(cfg: Any, core: Any, ctx: RouteCtx) -> None:
    """A received reply: reply_route, the modules' reply hooks (tm), else the stateless
    relay by its Via."""
    msg, rcv = ctx.msg, ctx.rcv
    stats.inc("core:rcv_replies")
    ctx.route_type = _ONREPLY
    if cfg.has_route("reply", None):
        _run_route(cfg, core, "reply", ctx)
        if ctx.dropped and msg.status < 300:
            return
    try:
        for cb in _response_cbs(cfg):
            if cb(ctx):
                return              # a module (tm) owns this reply
        # no transaction took it: relay statelessly by the Via stack (Kamailio forward_reply)
        forward_reply(ctx)
    except ParseError as exc:       # e.g. its top Via, first parsed on the way: drop it
        stats.inc("core:err_msgs")
        stats.inc("core:drop_replies")
        log.warning("receive_msg: bad reply from %s:%s/%s: %s",
                    rcv.src_ip, rcv.src_port, rcv.proto, exc.reason)
        ctx.dropped = True
