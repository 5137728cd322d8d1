"""tm's cfg functions, reply hook, mod_init and RPCs (bound onto the declared export table).

Runs in: the master (mod_init: shm table, timer handlers, sl binding), SIP workers (the
functions, `response` hook), the timer process (through t_funcs) and the ctl process (RPCs).
Shared state: the tm table in shm, the tm/tmx counters.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Optional

from sipcore import log as klog
from sipcore import stats, timer
from sipcore.errors import RpcFault
from sipcore.mod import ModContext
from sipcore.mod.exports import RouteType
from sipcore.route.ctx import RouteCtx
from sipcore.shm import ShmHashTable
from sipcore.shm.hashtable import now_ms

from . import mod
from . import t_funcs as tf
from .fsm import St
from .h_table import B_DROPPED, B_REPLIED, B_TIMEOUT, T_CANCELED, TmTable
from .t_lookup import invite_key_of, reply_branch
from .t_lookup import opts as match_opts

TID = tf.TID


def bind(name: str, nargs: int) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Replace the declared (raising) impl of NAME/NARGS with the decorated function."""

    def deco(fn: Callable[..., int]) -> Callable[..., int]:
        fe = mod.lookup(name, nargs)
        if fe is None:  # pragma: no cover - a typo in this file
            raise KeyError(f"tm has no {name}/{nargs}")
        fe.impl = fn
        return fn

    return deco


# ---- mod_init ------------------------------------------------------------------------------

STATS = ("UAS_transactions", "UAC_transactions", "2xx_transactions", "3xx_transactions",
         "4xx_transactions", "5xx_transactions", "6xx_transactions", "rpl_received",
         "rpl_absorbed", "rpl_relayed", "rpl_generated", "rpl_sent")


@mod.on_init
def _mod_init(ctx: ModContext) -> None:

    p = mod.p
    c = tf.cfg
    c.fr_timer, c.fr_inv_timer = p.fr_timer, p.fr_inv_timer
    c.max_inv_lifetime, c.max_noninv_lifetime = p.max_inv_lifetime, p.max_noninv_lifetime
    c.wt_timer, c.t1, c.t2 = p.wt_timer, p.retr_timer1, p.retr_timer2
    c.auto_inv_100, c.auto_inv_100_reason = p.auto_inv_100, p.auto_inv_100_reason
    c.restart_fr_on_each_reply = p.restart_fr_on_each_reply
    c.ruri_matching, c.disable_6xx_block = p.ruri_matching, p.disable_6xx_block
    c.failure_reply_mode, c.remap_503_500 = p.failure_reply_mode, p.remap_503_500
    c.relay_100, c.e2e_cancel_reason = p.relay_100, p.e2e_cancel_reason
    c.unmatched_cancel = p.unmatched_cancel
    c.on_sl_reply = p.on_sl_reply
    c.fr_timer_avp, c.fr_inv_timer_avp = p.fr_timer_avp, p.fr_inv_timer_avp
    c.noisy_ctimer, c.cancel_b_method = p.noisy_ctimer, p.cancel_b_method
    c.local_cancel_reason = p.local_cancel_reason
    c.aggregate_challenges = p.aggregate_challenges
    c.ac_extra_hdrs, c.faked_reply_prio = p.ac_extra_hdrs or "", p.faked_reply_prio
    c.callid_matching = p.callid_matching
    for name in ("via1_matching", "callid_matching", "callid_cseq_matching"):
        setattr(match_opts, name, bool(getattr(p, name)))
    shm = ctx.require_shm()
    tbl = shm.named("tm:table", lambda a: ShmHashTable.create(a, 4096), ShmHashTable.attach)
    tf.set_table(TmTable(tbl))
    tf.final_callbacks.clear()
    mod.runtime_cfg(_apply_cfg, *_CFG_GROUP)
    ctx.timers.register_handler("tm:retr", tf.on_retr_timer)
    ctx.timers.register_handler("tm:fr", tf.on_fr_timer)
    ctx.timers.register_handler("tm:uas", tf.on_uas_timer)
    ctx.timers.register_handler("tm:wait", tf.on_wait_timer)
    ctx.timers.register_handler("tm:life", tf.on_life_timer)
    ctx.timers.register_handler("tm:cretr", tf.on_cancel_retr_timer)
    ctx.timers.register_timer("tm:clean", tf.on_clean_timer, 2000)
    for name in STATS:
        stats.register("tmx:" + name, no_reset=True)
    sl = ctx.api_or_none("sl")
    if sl is not None:
        sl.stateful_replier = stateful_replier


# Kamailio tm's cfg group (tm/config.c) as far as PyKam's tm uses the values: `pykamcmd
# cfg.seti tm fr_inv_timer 2000` changes them in every process without a restart
_CFG_GROUP = ("fr_timer", "fr_inv_timer", "wt_timer", "retr_timer1", "retr_timer2",
              "max_inv_lifetime", "max_noninv_lifetime", "noisy_ctimer", "auto_inv_100",
              "auto_inv_100_reason", "restart_fr_on_each_reply", "aggregate_challenges",
              "unmatched_cancel", "ruri_matching", "cancel_b_method", "disable_6xx_block",
              "local_cancel_reason", "e2e_cancel_reason", "relay_100", "via1_matching",
              "callid_matching", "callid_cseq_matching", "ac_extra_hdrs")
_CFG_ATTR = {"retr_timer1": "t1", "retr_timer2": "t2"}


def _apply_cfg(name: str, value: Any) -> None:
    """A tm cfg value changed at run time (cfg.seti/cfg.sets): new transactions use it."""
    setattr(tf.cfg, _CFG_ATTR.get(name, name), value)
    if hasattr(match_opts, name):
        setattr(match_opts, name, bool(value))
    klog.dbg(f"tm: cfg {name} = {value!r}")


class TmApi:
    """What other modules may use (Kamailio load_tm_api): acc registers its final-reply
    callback here; `t_reply` and `ctx_from_cell` are exposed for module-made replies;
    `t_request` sends local requests (dialog's BYEs)."""

    def register_final_callback(self, fn: Callable[..., None]) -> None:
        if fn not in tf.final_callbacks:
            tf.final_callbacks.append(fn)

    def t_reply(self, ctx: RouteCtx, code: int, reason: str) -> int:
        return tf.t_reply(ctx, code, reason)

    def request_ctx(self, cell: Any, core: Any) -> RouteCtx:
        return tf.ctx_from_cell(cell, core)

    def t_request(self, method: str, ruri: str, headers: str, body: str = "",
                  nexthop: str = "", socket: str = "", core: Any = None) -> Optional[str]:
        """Send a request generated here as a UAC transaction (Kamailio tmb.t_request /
        t_request_within: dialog's BYEs): HEADERS are "\\r\\n"-separated lines with From
        (tagged) and To, plus Call-ID, CSeq and Route for an in-dialog request; tm adds its
        Via and Content-Length, retransmits, and absorbs the replies. NEXTHOP overrides the
        R-URI as destination, SOCKET ("udp:ip:port") picks the sending socket. Returns the
        transaction id, None when nothing could be sent."""
        return tf.uac_send(core if core is not None else tf._core(), method, ruri,
                           nexthop, socket, headers, body)


api = TmApi()
mod.provides_api(api)


def stateful_replier(ctx: RouteCtx, code: int, reason: str) -> Optional[int]:
    """sl's send_reply(): t_reply() when a transaction exists for ctx, else None."""
    if ctx.extra.get(TID) is None and (not ctx.msg.is_request or ctx.msg.method == "ACK"
                                       or tf.lookup_request(ctx) is None):
        return None
    return tf.t_reply(ctx, code, reason)


@mod.response
def _on_reply(ctx: RouteCtx) -> bool:
    return tf.reply_received(ctx)


# ---- creation, relay, reply -------------------------------------------------------------------

@bind("t_newtran", 0)
def ki_t_newtran(ctx: RouteCtx) -> int:
    """Create the transaction; 0 (stop) on a retransmission, negative on error."""
    return tf.t_newtran(ctx)


@bind("t_relay", 0)
def ki_t_relay(ctx: RouteCtx) -> int:
    return tf.t_relay(ctx)


@bind("t_relay", 2)
def ki_t_relay_hp(ctx: RouteCtx, host: str, port: str) -> int:
    return tf.t_relay(ctx, host, _port(port))


def _port(text: str) -> Optional[int]:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def _relay_proto(proto: str) -> None:
    def f0(ctx: RouteCtx) -> int:
        return tf.t_relay(ctx, proto=proto)

    def f2(ctx: RouteCtx, host: str, port: str) -> int:
        return tf.t_relay(ctx, host, _port(port), proto)

    bind(f"t_relay_to_{proto}", 0)(f0)
    bind(f"t_relay_to_{proto}", 2)(f2)
    bind(f"t_forward_nonack_{proto}", 2)(f2)


for _proto in ("udp", "tcp", "tls", "sctp"):
    _relay_proto(_proto)


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
    if flags & 1:
        ctx.extra["tm_no_100"] = True
    if flags & 2:
        ctx.extra["tm_no_internal_reply"] = True


@bind("t_relay_to", 0)
def ki_t_relay_to(ctx: RouteCtx) -> int:
    return tf.t_relay(ctx)


@bind("t_relay_to", 1)
def ki_t_relay_to1(ctx: RouteCtx, arg: Any) -> int:
    if isinstance(arg, int) or (isinstance(arg, str) and arg.strip().isdigit()):
        _relay_flags(ctx, int(arg))
        return tf.t_relay(ctx)
    proto, host, port = _proxy(str(arg or ""))
    return tf.t_relay(ctx, host, port, proto)


@bind("t_relay_to", 2)
def ki_t_relay_to2(ctx: RouteCtx, proxy: str, flags: int) -> int:
    _relay_flags(ctx, flags)
    proto, host, port = _proxy(proxy)
    return tf.t_relay(ctx, host, port, proto)


@bind("t_forward_nonack", 2)
def ki_t_forward_nonack(ctx: RouteCtx, host: str, port: str) -> int:
    return tf.t_relay(ctx, host, _port(port))


@bind("t_forward_nonack_uri", 0)
def ki_t_forward_nonack_uri(ctx: RouteCtx) -> int:
    return tf.t_relay(ctx)


@bind("t_forward_nonack_to", 2)
def ki_t_forward_nonack_to(ctx: RouteCtx, proto: str, hostport: str) -> int:
    _p, host, port = _proxy(hostport)
    return tf.t_relay(ctx, host, port, proto)


@bind("t_relay_to_avp", 2)
def ki_t_relay_to_avp(ctx: RouteCtx, proto: str, hostport: str) -> int:
    return ki_t_forward_nonack_to(ctx, proto, hostport)


@bind("t_relay_cancel", 0)
def ki_t_relay_cancel(ctx: RouteCtx) -> int:
    """CANCEL: 0 (stop) when the INVITE was found and its branches cancelled, 1 when not
    found, negative on error."""
    if ctx.msg.method != "CANCEL":
        return -1
    inv = tf.table().index_get(invite_key_of(ctx.msg, bool(tf.cfg.ruri_matching)))
    if inv is None:
        return 1
    rc = tf.relay_cancel(ctx, inv)
    return 0 if rc >= 0 else rc


@bind("t_reply", 2)
def ki_t_reply(ctx: RouteCtx, code: int, reason: str) -> int:
    if not 100 <= code <= 699:
        code, reason = mod.p.default_code, mod.p.default_reason
    return tf.t_reply(ctx, code, reason)


@bind("t_send_reply", 2)
def ki_t_send_reply(ctx: RouteCtx, code: int, reason: str) -> int:
    if ctx.extra.get(TID) is None and ctx.route_type == RouteType.REQUEST:
        rc = tf.t_newtran(ctx)
        if rc <= 0:
            return rc
    return ki_t_reply(ctx, code, reason)


@bind("t_retransmit_reply", 0)
def ki_t_retransmit_reply(ctx: RouteCtx) -> int:
    tid = tf.lookup_request(ctx)
    return tf.retransmit_reply(ctx, tid) if tid is not None else -1


@bind("t_release", 0)
def ki_t_release(ctx: RouteCtx) -> int:
    tid = tf.lookup_request(ctx)
    if tid is None:
        return -1
    timer.schedule("tm:wait", tf.cfg.wt_timer, tid.encode())
    return 1


@bind("t_save_lumps", 0)
def ki_t_save_lumps(ctx: RouteCtx) -> int:
    tid = ctx.extra.get(TID)
    if tid is None:
        return -1
    base = ctx.msg.build()

    def upd(c: Any) -> None:
        c.fwd_base = base

    tf.table().update(tid, upd)
    return 1


# ---- lookups -------------------------------------------------------------------------------

@bind("t_check_trans", 0)
def ki_t_check_trans(ctx: RouteCtx) -> int:
    """Replies: 1 when ours. CANCEL: 1 when its INVITE exists. ACK to a non-2xx reply of ours:
    absorbed, 0 (stop). Other requests: a retransmission gets the last reply again and the
    script stops (0); -1 when there is no transaction."""
    msg = ctx.msg
    tbl = tf.table()
    if msg.is_reply:
        rb = reply_branch(msg)
        return 1 if rb is not None and tbl.get(rb[0]) is not None else -1
    if msg.method == "CANCEL":
        return 1 if tbl.index_get(invite_key_of(msg, bool(tf.cfg.ruri_matching))) else -1
    if msg.method == "ACK":
        if tf.absorb_ack(ctx):
            return 0
        return 1 if tbl.index_get(invite_key_of(msg, bool(tf.cfg.ruri_matching))) else -1
    if ctx.extra.get(TID) is not None:
        return 1
    tid = tf.lookup_request(ctx)
    if tid is None:
        return -1
    tf.retransmit_reply(ctx, tid)
    return 0


@bind("t_lookup_request", 0)
def ki_t_lookup_request(ctx: RouteCtx) -> int:
    return 1 if tf.lookup_request(ctx) is not None else -1


def _lookup_cancel(ctx: RouteCtx, copy_flags: int) -> int:
    if ctx.msg.method != "CANCEL":
        return -1
    tid = tf.table().index_get(invite_key_of(ctx.msg, bool(tf.cfg.ruri_matching)))
    if tid is None:
        return -1
    if copy_flags == 1:
        cell = tf.table().get(tid)
        if cell is not None:
            ctx.flags |= cell.flags
    return 1


bind("t_lookup_cancel", 0)(lambda ctx: _lookup_cancel(ctx, 0))
bind("t_lookup_cancel", 1)(_lookup_cancel)


# ---- arming routes and per-transaction settings ------------------------------------------

def _arm(what: str) -> Callable[[RouteCtx, str], int]:
    def fn(ctx: RouteCtx, name: str) -> int:
        ctx.extra["tm_" + what] = name or ""
        tid = ctx.extra.get(TID)
        # in branch_route the branch's copy of ctx carries it (t_on_reply: that branch only)
        if tid is not None and ctx.route_type == RouteType.ONREPLY:
            def upd(c: Any) -> None:
                setattr(c, what, name or "")

            tf.table().update(tid, upd)
        return 1

    fn.__name__ = f"ki_t_{what}"
    return fn


for _what in ("on_failure", "on_reply", "on_branch", "on_branch_failure"):
    bind("t_" + _what, 1)(_arm(_what))


@bind("t_is_set", 1)
def ki_t_is_set(ctx: RouteCtx, target: str) -> int:
    what = {"branch_route": "on_branch", "failure_route": "on_failure",
            "onreply_route": "on_reply"}[target]
    if "tm_" + what in ctx.extra:
        return 1 if ctx.extra["tm_" + what] else -1
    cell = _cell(ctx)
    return 1 if cell is not None and getattr(cell, what) else -1


def _cell(ctx: RouteCtx) -> Any:
    tid = ctx.extra.get(TID)
    if tid is None and ctx.msg.is_request and ctx.route_type == RouteType.REQUEST \
            and ctx.msg.method != "ACK":
        tid = tf.lookup_request(ctx)
    if tid is None and ctx.msg.is_reply:
        rb = reply_branch(ctx.msg)
        tid = rb[0] if rb else None
    return tf.table().get(tid) if tid is not None else None


def _set_values(ctx: RouteCtx, pairs: dict[str, int]) -> int:
    for k, v in pairs.items():
        if v:
            ctx.extra[k] = v
    tid = ctx.extra.get(TID)
    if tid is not None:
        def upd(c: Any) -> None:
            if pairs.get("tm_fr_inv"):
                c.fr_inv_timer = pairs["tm_fr_inv"]
            if pairs.get("tm_fr"):
                c.fr_timer = pairs["tm_fr"]
            if pairs.get("tm_t1"):
                c.t1 = pairs["tm_t1"]
            if pairs.get("tm_t2"):
                c.t2 = pairs["tm_t2"]

        tf.table().update(tid, upd)
    return 1


bind("t_set_fr", 1)(lambda ctx, fr_inv: _set_values(ctx, {"tm_fr_inv": fr_inv}))
bind("t_set_fr", 2)(lambda ctx, fr_inv, fr: _set_values(ctx, {"tm_fr_inv": fr_inv,
                                                              "tm_fr": fr}))
bind("t_reset_fr", 0)(lambda ctx: _set_values(ctx, {"tm_fr_inv": tf.cfg.fr_inv_timer,
                                                    "tm_fr": tf.cfg.fr_timer}))
bind("t_set_retr", 2)(lambda ctx, t1, t2: _set_values(ctx, {"tm_t1": t1, "tm_t2": t2}))
bind("t_reset_retr", 0)(lambda ctx: _set_values(ctx, {"tm_t1": tf.cfg.t1, "tm_t2": tf.cfg.t2}))


@bind("t_set_max_lifetime", 2)
def ki_t_set_max_lifetime(ctx: RouteCtx, inv: int, noninv: int) -> int:
    if inv:
        ctx.extra["tm_max_inv_lifetime"] = inv
    if noninv:
        ctx.extra["tm_max_noninv_lifetime"] = noninv
    return 1


@bind("t_reset_max_lifetime", 0)
def ki_t_reset_max_lifetime(ctx: RouteCtx) -> int:
    ctx.extra.pop("tm_max_inv_lifetime", None)
    ctx.extra.pop("tm_max_noninv_lifetime", None)
    return 1


@bind("t_set_auto_inv_100", 1)
def ki_t_set_auto_inv_100(ctx: RouteCtx, on: int) -> int:
    ctx.extra["tm_no_100"] = not on
    return 1


def _flag_setter(key: str) -> Callable[[RouteCtx, int], int]:
    def fn(ctx: RouteCtx, on: int) -> int:
        ctx.extra[key] = bool(on)
        return 1

    return fn


bind("t_set_disable_6xx", 1)(_flag_setter("tm_disable_6xx"))
bind("t_set_disable_failover", 1)(_flag_setter("tm_disable_failover"))
bind("t_set_no_e2e_cancel_reason", 1)(_flag_setter("tm_no_e2e_cancel_reason"))
bind("t_disable_e2e_cancel_reason", 1)(_flag_setter("tm_no_e2e_cancel_reason"))
bind("t_set_disable_internal_reply", 1)(_flag_setter("tm_no_internal_reply"))


# ---- status predicates ------------------------------------------------------------------------

def _failed_branch(ctx: RouteCtx) -> Any:
    cell = _cell(ctx)
    if cell is None:
        return None, None
    best = ctx.extra.get(tf.BEST)
    idx = best[2] if best else ctx.branch_index
    if idx is None or idx < 0 or idx >= len(cell.branches):
        return cell, None
    return cell, cell.branches[idx]


@bind("t_branch_timeout", 0)
def ki_t_branch_timeout(ctx: RouteCtx) -> int:
    _c, br = _failed_branch(ctx)
    return 1 if br is not None and br.flags & B_TIMEOUT else -1


@bind("t_branch_replied", 0)
def ki_t_branch_replied(ctx: RouteCtx) -> int:
    _c, br = _failed_branch(ctx)
    return 1 if br is not None and br.flags & B_REPLIED else -1


@bind("t_any_timeout", 0)
def ki_t_any_timeout(ctx: RouteCtx) -> int:
    cell = _cell(ctx)
    return 1 if cell is not None and any(b.flags & B_TIMEOUT for b in cell.branches) else -1


@bind("t_any_replied", 0)
def ki_t_any_replied(ctx: RouteCtx) -> int:
    cell = _cell(ctx)
    if cell is None:
        return -1
    cur = ctx.branch_index if ctx.route_type == RouteType.ONREPLY else -1
    return 1 if any(b.flags & B_REPLIED for i, b in enumerate(cell.branches)
                    if i != cur) else -1


@bind("t_is_canceled", 0)
def ki_t_is_canceled(ctx: RouteCtx) -> int:
    cell = _cell(ctx)
    return 1 if cell is not None and cell.tflags & T_CANCELED else -1


@bind("t_is_expired", 0)
def ki_t_is_expired(ctx: RouteCtx) -> int:
    cell = _cell(ctx)
    return 1 if cell is not None and tf.mark_expired(cell) else -1


@bind("t_grep_status", 1)
def ki_t_grep_status(ctx: RouteCtx, code: int) -> int:
    cell = _cell(ctx)
    return 1 if cell is not None and any(b.code == code and b.state >= St.COMPLETED
                                         for b in cell.branches) else -1


def status_code(ctx: RouteCtx) -> Optional[int]:
    """The status t_check_status and $T_reply_code look at in the current route."""
    if ctx.route_type in (RouteType.FAILURE, RouteType.BRANCH_FAILURE) \
            and tf.BEST in ctx.extra:
        return ctx.extra[tf.BEST][0]
    if ctx.msg.is_reply:
        return ctx.msg.status
    cell = _cell(ctx)
    if cell is None:
        return None
    return cell.uas_code or None


@bind("t_check_status", 1)
def ki_t_check_status(ctx: RouteCtx, regex: str) -> int:
    code = status_code(ctx)
    if code is None:
        return -1
    try:
        rx = re.compile(regex)
    except re.error:
        klog.err(f"t_check_status: bad regular expression \"{regex}\"", ctx)
        return -1
    return 1 if rx.search(str(code)) else -1


@bind("t_get_status_code", 0)
def ki_t_get_status_code(ctx: RouteCtx) -> int:
    code = status_code(ctx)
    return code if code else -1


@bind("t_drop_replies", 0)
def ki_t_drop_replies(ctx: RouteCtx) -> int:
    return ki_t_drop_replies_mode(ctx, "a")


@bind("t_drop_replies", 1)
def ki_t_drop_replies_mode(ctx: RouteCtx, mode: str) -> int:
    tid = ctx.extra.get(TID)
    if tid is None or mode == "n":
        return 1

    def upd(c: Any) -> None:
        for b in c.branches:
            if b.state >= St.COMPLETED:
                b.flags |= B_DROPPED

    tf.table().update(tid, upd)
    return 1


@bind("t_clean", 0)
def ki_t_clean(ctx: RouteCtx) -> int:
    tf.on_clean_timer()
    return 1


# ---- t_replicate: a stateful copy whose replies are absorbed ---------------------------------

def _replicate(ctx: RouteCtx, host: Optional[str] = None, port: Optional[int] = None,
               proto: Optional[str] = None, uri: Optional[str] = None) -> int:
    ctx.extra["tm_replicate"] = True
    if uri:
        ctx.dst_uri = uri
    return tf.t_relay(ctx, host, port, proto)


bind("t_replicate", 0)(lambda ctx: _replicate(ctx))
bind("t_replicate", 1)(lambda ctx, uri: _replicate(ctx, uri=uri))
bind("t_replicate", 2)(lambda ctx, host, port: _replicate(ctx, host, _port(port)))
for _proto in ("udp", "tcp", "tls", "sctp"):
    bind(f"t_replicate_{_proto}", 2)(
        lambda ctx, host, port, _p=_proto: _replicate(ctx, host, _port(port), _p))


@bind("t_replicate_to", 2)
def ki_t_replicate_to(ctx: RouteCtx, proto: str, hostport: str) -> int:
    _p, host, port = _proxy(hostport)
    return _replicate(ctx, host, port, proto)


# ---- local requests ------------------------------------------------------------------------

@bind("t_uac_send", 6)
def ki_t_uac_send(ctx: RouteCtx, method: str, ruri: str, nexthop: str, socket: str,
                  headers: str, body: str) -> int:
    """Send a local request statefully; 1 sent, -1 error."""
    return 1 if tf.uac_send(ctx.core, method, ruri, nexthop, socket, headers, body) else -1


def _dot(v: Any) -> str:
    return "" if v is None or str(v) == "." else str(v)


def rpc_t_uac_start(method: str = "", ruri: str = "", nexthop: Any = ".", socket: Any = ".",
                    headers: Any = "", body: Any = "", *_args: Any) -> str:
    _rpc_table()
    tid = tf.uac_send(tf._core(), method, ruri, _dot(nexthop), _dot(socket),
                      _dot(headers), _dot(body))
    if tid is None:
        raise RpcFault(500, "cannot send the request")
    return "ok"


def rpc_t_uac_wait_block(method: str = "", ruri: str = "", nexthop: Any = ".",
                         socket: Any = ".", headers: Any = "", body: Any = "",
                         *_args: Any) -> dict[str, Any]:
    """Send, then wait (blocking this RPC process, up to 80 s) for the final reply."""
    import time

    tbl = _rpc_table()
    tid = tf.uac_send(tf._core(), method, ruri, _dot(nexthop), _dot(socket),
                      _dot(headers), _dot(body))
    if tid is None:
        raise RpcFault(500, "cannot send the request")
    deadline = time.monotonic() + 80
    while time.monotonic() < deadline:
        cell = tbl.get(tid)
        if cell is not None and cell.uas_code >= 200:
            return {"code": cell.best_code or cell.uas_code, "reason": cell.best_reason}
        time.sleep(0.02)
    raise RpcFault(500, "no final reply")


def _rpc_reply(tid: Optional[str], code: Any, reason: str, to_tag: Any, hdrs: Any,
               body: Any) -> str:
    if tid is None or _rpc_table().get(tid) is None:
        raise RpcFault(481, "No such transaction")
    cell = tf.table().get(tid)
    assert cell is not None
    core = tf._core()
    ctx = tf.ctx_from_cell(cell, core)
    if _dot(to_tag):
        def upd(c: Any) -> None:
            c.to_tag = _dot(to_tag)

        tf.table().update(tid, upd)
    headers = tuple(h.strip() for h in _dot(hdrs).replace("\r\n", "\n").split("\n")
                    if h.strip())
    if _dot(body):
        ctx.extra["reply_body"] = (_dot(body).encode(), None)
    if tf.t_reply(ctx, int(code), reason, headers) < 0:
        raise RpcFault(500, "reply failed")
    return "ok"


def rpc_reply(code: Any = 0, reason: str = "", trans_id: str = "", to_tag: Any = ".",
              hdrs: Any = ".", body: Any = "", *_args: Any) -> str:
    from .h_table import tid_of

    index, _c, label = str(trans_id).partition(":")
    try:
        tid = tid_of(int(index), int(label))
    except ValueError:
        raise RpcFault(400, "trans_id is index:label") from None
    return _rpc_reply(tid, code, reason, to_tag, hdrs, body)


def rpc_reply_callid(code: Any = 0, reason: str = "", callid: str = "", cseq: Any = "",
                     to_tag: Any = ".", hdrs: Any = ".", body: Any = "", *_args: Any) -> str:
    _rpc_table()
    return _rpc_reply(tf.find_by_callid(callid, str(cseq)), code, reason, to_tag, hdrs, body)


@bind("t_is_retr_async_reply", 0)
def ki_t_is_retr_async_reply(ctx: RouteCtx) -> int:
    """Replies are never suspended in PyKam's tm: always false."""
    return -1


@bind("t_use_uac_headers", 0)
def ki_t_use_uac_headers(ctx: RouteCtx) -> int:
    """Local ACK/CANCEL are always built from the request as sent on the branch (the UAC-side
    headers), so this only confirms it."""
    return 1


# ---- t_write_req / t_write_unix (t_fifo.py) ----------------------------------------------------

@bind("t_write_req", 2)
def ki_t_write_req(ctx: RouteCtx, fifo: str, info: str) -> int:
    from .t_fifo import t_write_req

    return t_write_req(ctx, fifo, info)


@bind("t_write_unix", 2)
def ki_t_write_unix(ctx: RouteCtx, sock: str, info: str) -> int:
    from .t_fifo import t_write_unix

    return t_write_unix(ctx, sock, info)


# ---- serial forking ----------------------------------------------------------------------------

@bind("t_load_contacts", 0)
def ki_t_load_contacts(ctx: RouteCtx) -> int:
    from .t_serial import load_contacts

    return load_contacts(ctx, 0)


@bind("t_load_contacts", 1)
def ki_t_load_contacts_mode(ctx: RouteCtx, mode: int) -> int:
    from .t_serial import load_contacts

    if mode not in (0, 1):
        klog.err(f"t_load_contacts: unknown mode {mode}", ctx)
        return -1
    return load_contacts(ctx, mode)


@bind("t_next_contacts", 0)
def ki_t_next_contacts(ctx: RouteCtx) -> int:
    from .t_serial import next_contacts

    return next_contacts(ctx)


@bind("t_next_contact_flow", 0)
def ki_t_next_contact_flow(ctx: RouteCtx) -> int:
    from .t_serial import next_contact_flow

    return next_contact_flow(ctx)


# ---- RPC ----------------------------------------------------------------------------------

def _rpc_table() -> TmTable:
    try:
        return tf.table()
    except RuntimeError as exc:
        raise RpcFault(500, str(exc)) from None


def rpc_stats(*_args: Any) -> dict[str, int]:
    cells = _rpc_table().cells()
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
    from sipcore.msg import parse_msg

    out = []
    now = now_ms()
    for c in _rpc_table().cells():
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
    tbl = _rpc_table()
    n = len(tbl.cells())
    return {"size": 4096, "used": n, "items": n}


def rpc_cancel(callid: str = "", cseq: str = "", *_args: Any) -> str:
    _rpc_table()
    tid = tf.find_by_callid(callid, cseq, "INVITE")
    if tid is None:
        raise RpcFault(481, "No such transaction")
    core = tf._core()
    out = tf.Out()

    def upd(c: Any) -> None:
        c.tflags |= T_CANCELED
        tf._cancel_branches(core, c, out)

    tf.table().update(tid, upd)
    tf._flush(core, out)
    return "ok"


def rpc_clean(*_args: Any) -> str:
    _rpc_table().expire()
    return "ok"


for _name, _fn, _doc in (
        ("tm.stats", rpc_stats, "Transaction statistics."),
        ("tm.list", rpc_list, "List the transactions."),
        ("tm.hash_stats", rpc_hash_stats, "Transaction hash table statistics."),
        ("tm.cancel", rpc_cancel, "callid cseq: CANCEL a transaction."),
        ("tm.clean", rpc_clean, "Clean old active transactions."),
        ("tm.t_uac_start", rpc_t_uac_start,
         "method ruri nexthop socket headers [body]: send a local request."),
        ("tm.t_uac_wait_block", rpc_t_uac_wait_block,
         "Same, blocking up to 80 s; returns code and reason."),
        ("tm.t_uac_wait", rpc_t_uac_wait_block,
         "Same as tm.t_uac_wait_block (the ctl process answers when the reply is in)."),
        ("tm.reply", rpc_reply,
         "code reason trans_id(index:label) to_tag hdrs [body]: reply to a transaction."),
        ("tm.reply_callid", rpc_reply_callid, "code reason callid cseq to_tag hdrs [body].")):
    mod.rpc(_name, _fn, doc=_doc)
