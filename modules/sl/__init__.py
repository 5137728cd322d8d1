"""sl: stateless replies, their statistics, and filtering of ACKs to our own local replies.

Runs in: SIP workers (functions, ACK filter). Shared state: the `sl:*` counters in
`sipcore.stats` (process-local for now; the runtime moves them to shm without changing callers).

Kamailio equivalent: modules/sl (sl.c, sl_funcs.c, sl_stats.c). Our replies get a to-tag from
`sipcore.msg.builder.gen_to_tag()`, a hash of Call-ID, CSeq number, From-tag and top Via
branch; an ACK for a non-2xx reply carries the same values (RFC 3261 17.1.1.3), so recomputing
the tag from the ACK and comparing it with its To-tag is the signature check
(`SlApi.filter_ack`).
"""
from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Callable, Optional

from sipcore import stats
from sipcore.errors import ParseError
from sipcore.forward import default_port
from sipcore.mod import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    Custom,
    Fx,
    Module,
)
from sipcore.msg.builder import gen_to_tag
from sipcore.msg.spans import remove_via1
from sipcore.net.addr import Dest
from sipcore.route.ctx import RouteCtx

from . import sl_stats

log = logging.getLogger(__name__)

mod = Module("sl", summary="Stateless replies, sl statistics and local-ACK filtering.")

mod.param("default_code", int, 500, doc="Reply code used by sl_reply_error() when the last "
          "internal error does not map to a SIP code.")
mod.param("default_reason", str, "Internal Server Error",
          doc="Reason phrase used with default_code.")
mod.param("bind_tm", int, 1, doc="1: send_reply() replies statefully when tm registered a "
          "stateful replier and a transaction exists; 0: always stateless.")
mod.param("rich_redirect", int, 0,
          validator=lambda v: _check_range("rich_redirect", v, 0, 3),
          doc="For 3xx replies built from the destination set: 1 = add the branch flags as "
          "';flags=N' Contact param, 2 = add the path as '?Route=' URI header; additive.")
mod.param("event_callback_fl_ack", str, "",
          doc="KEMI function run instead of event_route[sl:filtered-ack].")
mod.param("event_callback_lres_sent", str, "",
          doc="KEMI function run instead of event_route[sl:local-response].")

mod.event_routes.extend(["sl:filtered-ack", "sl:local-response"])


def _check_range(name: str, v: int, lo: int, hi: int) -> int:
    if not lo <= v <= hi:
        raise ValueError(f"sl parameter {name} must be between {lo} and {hi}, got {v}")
    return v


# ---- reply code validation -------------------------------------------------------------------

def check_code(code: int) -> Optional[str]:
    """An error message when CODE cannot be a reply status, else None."""
    if code < 100 or code > 699:
        return f"invalid reply code {code} (must be 100..699)"
    return None


def parse_code(text: str) -> int:
    """Fixup of the code argument: checked at config load when static, per call with PVs."""
    try:
        code = int(text.strip())
    except ValueError:
        raise ValueError(f"invalid reply code \"{text}\"") from None
    err = check_code(code)
    if err is not None:
        raise ValueError(err)
    return code


CODE = Custom(parse_code, dynamic=True, name="reply-code")


def reply_dset_contacts(ctx: RouteCtx) -> Optional[str]:
    """The 'Contact:' line for a 3xx reply: the rewritten R-URI plus every appended branch
    (Kamailio print_dset()), or None when the destination set is empty."""
    rich = mod.p.rich_redirect
    items: list[str] = []
    msg = ctx.msg
    # the R-URI counts when rewritten and not already moved into a branch (Kamailio
    # ruri_is_new; append_branch() without a URI moves it into a branch)
    if msg.ruri != msg.orig_ruri and ctx.ruri_is_new():
        items.append(_dset_item(msg.ruri, ctx.ruri_q, ctx.bflags, ctx.path_vec, rich))
    for b in ctx.branches:
        items.append(_dset_item(b.uri, b.q, b.bflags, b.path, rich))
    if not items:
        return None
    return "Contact: " + ", ".join(items)


def _q_text(q: int) -> str:
    if q >= 1000:
        return "1"
    return "0." + f"{q:03d}".rstrip("0") if q > 0 else "0"


def _dset_item(uri: str, q: int, bflags: int, path: Optional[str], rich: int) -> str:
    inner = uri
    if rich & 2 and path:
        from urllib.parse import quote

        inner += "?Route=" + quote(path, safe="")
    out = f"<{inner}>"
    if q is not None and q >= 0:
        out += ";q=" + _q_text(q)
    if rich & 1:
        out += f";flags={bflags}"
    return out


# ---- the reply path used by every sl function ------------------------------------------------

def sl_reply(ctx: RouteCtx, code: int, reason: str, *, extra_headers: tuple[str, ...] = ()
             ) -> int:
    """Send a stateless reply to ctx.msg and count it. 1 on success, -1 on failure.

    Adds the destination set as Contact for 3xx, and a body set by textops set_reply_body()
    (kept in ctx.reply_body as (bytes, content_type)).
    """
    from sipcore.reply import send_stateless_reply

    msg = ctx.msg
    if not msg.is_request or msg.method == "ACK":
        # never reply to ACKs or to replies (Kamailio sl_reply_helper)
        sl_stats.failure()
        return -1
    headers = list(extra_headers)
    if 300 <= code < 400:
        contact = reply_dset_contacts(ctx)
        if contact is not None:
            headers.append(contact)
    body, ctype = ctx.reply_body if ctx.reply_body is not None else (b"", None)
    try:
        ok = send_stateless_reply(ctx, code, reason, extra_headers=headers, body=body,
                                  content_type=ctype)
    except ParseError as exc:       # too broken to build a reply (e.g. unparseable CSeq)
        log.error("sl: cannot build the %s reply: %s", code, exc)
        ok = False
    if not ok:
        sl_stats.failure()
        return -1
    sl_stats.sent(code)
    return 1


# ---- API for other modules (tm, sanity, siputils, the core pre-script hook) -------------------

StatefulReplier = Callable[[RouteCtx, int, str], Optional[int]]


@dataclass
class SlApi:
    """What other modules may use (Kamailio sl_api_t)."""

    #: tm registers this: returns None when no transaction exists for ctx, else t_reply()'s rc.
    stateful_replier: Optional[StatefulReplier] = None

    def zreply(self, ctx: RouteCtx, code: int, reason: str) -> int:
        return sl_reply(ctx, code, reason)

    def freply(self, ctx: RouteCtx, code: int, reason: str) -> int:
        """send_reply(): stateful when tm has a transaction for ctx, else stateless."""
        return ki_send_reply(ctx, code, reason)

    def filter_ack(self, ctx: RouteCtx) -> bool:
        return filter_ack(ctx)

    def dset_contacts(self, ctx: RouteCtx) -> Optional[str]:
        """The Contact line of a 3xx reply to ctx: the destination set (Kamailio
        print_dset()), None when it is empty. tm's t_reply() adds it as sl does."""
        return reply_dset_contacts(ctx)

    def stats(self) -> dict[str, int]:
        return sl_stats.snapshot()


api = SlApi()
mod.provides_api(api)


@mod.pre_script
def _absorb_local_acks(ctx: RouteCtx) -> bool:
    """ACKs to our own stateless non-2xx replies end here (Kamailio sl_filter_ACK)."""
    return not filter_ack(ctx)


def filter_ack(ctx: RouteCtx) -> bool:
    """Pre-script check (Kamailio sl_filter_ACK): True when ctx.msg is an ACK to a local
    stateless reply; the caller then drops it. Counts `sl:received_ACKs`."""
    msg = ctx.msg
    if not msg.is_request or msg.method != "ACK":
        return False
    try:
        tag = msg.to_tag
        # our tags are 32 hex digits (an md5): any other length is not ours, no hash needed
        if not tag or len(tag) != 32 or tag != gen_to_tag(msg):
            return False
    except ParseError as exc:       # a malformed ACK is simply not ours
        log.debug("sl: ACK not checked for local to-tag: %s", exc)
        return False
    sl_stats.filtered_ack()
    log.debug("sl: local ACK found -> dropping it")
    _run_event_route(ctx, "sl:filtered-ack")
    return True


def _run_event_route(ctx: RouteCtx, name: str) -> None:
    """Run event_route[NAME] on ctx when the config defines it (the ACK is dropped anyway,
    so the route works on the message's own context)."""
    routes = ctx.core.routes
    if routes is not None and routes.has_route("event", name):
        routes.run("event", name, ctx)


# ---- cfg functions ---------------------------------------------------------------------------

@mod.function("sl_send_reply", args=(CODE, Fx.SPVE),
              routes=REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE)
def ki_sl_send_reply(ctx: RouteCtx, code: int, reason: str) -> int:
    """Send a stateless reply CODE REASON. 1 sent, -1 error (bad code, ACK, send failure)."""
    err = check_code(code)
    if err is not None:
        log.error("sl_send_reply: %s", err)
        return -1
    return sl_reply(ctx, code, reason)


@mod.function("send_reply", args=(CODE, Fx.SPVE),
              routes=REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE)
def ki_send_reply(ctx: RouteCtx, code: int, reason: str) -> int:
    """Reply statefully if tm has a transaction for this request, else statelessly."""
    err = check_code(code)
    if err is not None:
        log.error("send_reply: %s", err)
        return -1
    if mod.p.bind_tm and api.stateful_replier is not None:
        rc = api.stateful_replier(ctx, code, reason)
        if rc is not None:
            return rc
    if not ctx.msg.is_request:
        log.error("send_reply: no transaction and the message is not a request")
        return -1
    return sl_reply(ctx, code, reason)


SEND_REPLY_NO_CONNECT = 1
SEND_REPLY_CLOSE = 2


@mod.function("send_reply_mode", args=(CODE, Fx.SPVE, Fx.IGP),
              routes=REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE)
def ki_send_reply_mode(ctx: RouteCtx, code: int, reason: str, mode: int) -> int:
    """send_reply() with connection flags: 1 = do not open a new connection, 2 = close it
    after sending (recorded in ctx for the TCP layer)."""
    if mode & SEND_REPLY_NO_CONNECT:
        ctx.reply_no_connect = True
    if mode & SEND_REPLY_CLOSE:
        ctx.reply_close = True   # as core set_reply_close()
    return ki_send_reply(ctx, code, reason)


# err2reason_phrase() of Kamailio's core error.c: internal error -> (SIP code, text)
_ERR_TEXT: dict[int, tuple[Optional[int], str]] = {
    -477: (None, "Unfortunately error on sending to next hop occurred"),   # E_SEND
    -478: (None, "Unresolvable destination"),                              # E_BAD_ADDRESS
    -400: (None, "Bad Request"),                                           # E_BAD_REQ
    -401: (400, "Regretfully, we were not able to process the URI"),      # E_BAD_URI
    -9: (400, "Transaction tuple incomplete"),                             # E_BAD_TUPEL
    -13: (400, "Bad To"),                                                  # E_BAD_TO
    -11: (500, "Error in external logic"),                                 # E_EXEC
    -12: (500, "Forking capacity exceeded"),                               # E_TOO_MANY_BRANCHES
}


def reply_for_error(err: object, default_code: int, default_reason: str) -> tuple[int, str]:
    """Map ctx.last_error to a reply: a (code, reason) pair is used as is; a
    Kamailio E_* int is translated like err2reason_phrase(); anything else gives the default."""
    if isinstance(err, tuple) and len(err) == 2 and isinstance(err[0], int):
        code, reason = err
        if 300 <= code <= 699:
            return code, str(reason)
        return default_code, default_reason
    if isinstance(err, int) and err in _ERR_TEXT:
        code, text = _ERR_TEXT[err]
        code = code if code is not None else -err
        return code, f"{text} ({-err}/SL)"
    return default_code, default_reason


@mod.function("sl_reply_error", args=(), routes=REQUEST_ROUTE)
def ki_sl_reply_error(ctx: RouteCtx) -> int:
    """Reply with the code/reason of the last internal error (or default_code/reason)."""
    code, reason = reply_for_error(ctx.last_error, mod.p.default_code,
                                   mod.p.default_reason)
    return sl_reply(ctx, code, reason)


def _status_line_span(buf: bytes) -> tuple[int, int]:
    """Offsets of 'CODE REASON' in a reply's first line (after 'SIP/2.0 ')."""
    eol = buf.find(b"\r\n")
    if eol < 0:
        eol = buf.find(b"\n")
    sp = buf.find(b" ", 0, eol)
    return sp + 1, eol


def _forward_dest(ctx: RouteCtx) -> Optional[Dest]:
    """Where a stateless proxy forwards a reply: the second Via (received/rport honoured)."""
    via = ctx.msg.via2
    if via is None:
        return None
    host = via.received or via.host
    host = host[1:-1] if host.startswith("[") else host
    proto = (via.transport or "udp").lower()
    port = via.port or default_port(proto)
    if via.rport:
        try:
            port = int(via.rport)
        except ValueError:
            pass
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            ip = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0]
        except OSError:
            return None
    return Dest(proto, ip, port, ctx.core.choose_socket(proto, ip))


def _without_top_via(ctx: RouteCtx) -> None:
    """Record the removal of our own (top) Via value as an edit of ctx.msg."""
    remove_via1(ctx.msg)


def _forward_reply(ctx: RouteCtx, code: Optional[int], reason: Optional[str]) -> int:
    msg = ctx.msg
    if not msg.is_reply:
        log.error("sl_forward_reply: not a reply")
        return -1
    if code is not None:
        if check_code(code) is not None or code // 100 != msg.status // 100:
            log.error("sl_forward_reply: code %s is not in the class of %s", code, msg.status)
            return -1
        start, end = _status_line_span(msg.buf)
        msg.delete_range(start, end)
        msg.insert_before(start, f"{code} {reason if reason else msg.reason}".encode())
    dest = _forward_dest(ctx)
    if dest is None:
        log.error("sl_forward_reply: no second Via to forward the reply to")
        return -1
    _without_top_via(ctx)
    if not ctx.core.send(dest, msg.build()):
        return -1
    stats.inc("core:fwd_replies")
    return 1


@mod.function("sl_forward_reply", args=(), routes=ONREPLY_ROUTE)
def ki_sl_forward_reply(ctx: RouteCtx) -> int:
    """Forward the received reply statelessly to the address of its second Via."""
    return _forward_reply(ctx, None, None)


@mod.function("sl_forward_reply", args=(Fx.SPVE,), routes=ONREPLY_ROUTE)
def ki_sl_forward_reply_code(ctx: RouteCtx, code: str) -> int:
    """Forward the reply with its status code changed (same class)."""
    try:
        icode = int(code.strip())
    except ValueError:
        log.error('sl_forward_reply: invalid code "%s"', code)
        return -1
    return _forward_reply(ctx, icode, None)


@mod.function("sl_forward_reply", args=(Fx.SPVE, Fx.SPVE), routes=ONREPLY_ROUTE)
def ki_sl_forward_reply_code_reason(ctx: RouteCtx, code: str, reason: str) -> int:
    """Forward the reply with its status code (same class) and reason changed."""
    try:
        icode = int(code.strip())
    except ValueError:
        log.error('sl_forward_reply: invalid code "%s"', code)
        return -1
    return _forward_reply(ctx, icode, reason)


# ---- RPC -------------------------------------------------------------------------------------

def rpc_stats(*_args: object) -> dict[str, int]:
    """sl.stats: the reply counters of this module."""
    return sl_stats.snapshot()


mod.rpc("sl.stats", rpc_stats, doc="Counters of stateless replies sent by sl.")

__all__ = ["mod", "api", "SlApi", "sl_reply", "filter_ack", "reply_for_error"]
