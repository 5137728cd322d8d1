"""Log accounting: records for transactions completed by tm, and acc_log_request().

Runs in: the master (mod_init: log_extra parsing, registration with tm's API), SIP workers and
the timer process (tm calls `on_final` after a final reply went upstream, outside its locks).
Shared state: none (reads the transaction record tm passes in).

Record format as Kamailio's acc_log_request/acc_onreply:
``ACC: transaction answered: timestamp=...;method=...;from_tag=...;to_tag=...;call_id=...;
code=...;reason=...;<log_extra>``; ``ACC: call missed: ...`` for log_missed_flag;
``ACC: request accounted: ...`` for acc_log_request().
"""
from __future__ import annotations

import logging
import time
from typing import Any, Optional

from sipcore import log as klog
from sipcore.errors import ParseError
from sipcore.mod import ModContext
from sipcore.route.ctx import RouteCtx

from . import mod

log = logging.getLogger(__name__)


class _State:
    extra: list[tuple[str, Any]] = []      # (name, Format)
    level: int = klog.L_NOTICE
    facility: Optional[int] = None
    tm: Any = None                          # tm's API (bound in mod_init)


_st = _State()


def parse_extra(text: Optional[str], modreg: Any) -> list[tuple[str, Any]]:
    """"name=$pv;name2=text $pv" -> [(name, Format)]; ValueError on a bad item."""
    from sipcore.pv import parse_format

    out: list[tuple[str, Any]] = []
    for item in (text or "").split(";"):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ValueError(f'acc: bad extra "{item}" (name=value expected)')
        out.append((name.strip(), parse_format(value.strip(), modreg)))
    return out


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    _st.extra = parse_extra(mod.p.log_extra, ctx.cfg.modules)
    _st.level = int(mod.p.log_level)
    fac = mod.p.log_facility
    _st.facility = klog.facility_from_name(fac) if fac else None
    _st.tm = ctx.bind_api("tm")
    _st.tm.register_final_callback(on_final)


def _flag(name: str) -> int:
    return int(mod.get_param(name))


def _isset(flags: int, flag: int) -> bool:
    return 0 <= flag < 64 and bool(flags & (1 << flag))


def record(ctx: RouteCtx, code: int, reason: str, to_tag: Optional[str]) -> str:
    """The text after "ACC: <what>: " for request CTX and the reply CODE/REASON."""
    msg = ctx.msg
    core = [("timestamp", str(int(time.time()))), ("method", msg.method),
            ("from_tag", msg.from_tag or ""), ("to_tag", to_tag or msg.to_tag or ""),
            ("call_id", msg.callid), ("code", str(code)), ("reason", reason)]
    extra = [(name, fmt.eval(ctx)) for name, fmt in _st.extra]
    return ";".join(f"{k}={v}" for k, v in core + extra)


def _emit(what: str, text: str, ctx: Optional[RouteCtx]) -> None:
    log.log(klog.py_level(_st.level), "ACC: %s: %s", what, text,
            extra=klog.log_record_extra(ctx, _st.facility))


def on_final(cell: Any, code: int, reply: bytes, core: Any) -> None:
    """tm callback: a final reply went upstream for CELL."""
    from sipcore.msg import parse_msg

    flags = cell.flags
    log_flag, missed = _flag("log_flag"), _flag("log_missed_flag")
    failed = _flag("failed_transaction_flag")
    ok = code < 300
    wanted = (ok and _isset(flags, log_flag)) or \
        (not ok and (_isset(flags, missed) or
                     (_isset(flags, log_flag) and _isset(flags, failed))))
    if not wanted or (cell.method == "CANCEL" and not mod.p.report_cancels):
        return
    try:
        rpl = parse_msg(reply)
        reason, to_tag = rpl.reason, rpl.to_tag
    except ParseError:          # a record without reply details is still written
        reason, to_tag = "", None
    ctx = _st.tm.request_ctx(cell, core) if core is not None and _st.tm is not None else None
    if ctx is None:
        return
    if ok or (_isset(flags, log_flag) and _isset(flags, failed)):
        _emit("transaction answered", record(ctx, code, reason, to_tag), ctx)
    if not ok and _isset(flags, missed):
        _emit("call missed", record(ctx, code, reason, to_tag), ctx)


def _comment(text: str) -> tuple[int, str]:
    """acc_log_request("404 Not found") -> (404, "Not found"); no leading code -> (0, text)."""
    t = text.strip()
    head, _sp, rest = t.partition(" ")
    if head.isdigit() and len(head) == 3:
        return int(head), rest
    return 0, t


def ki_acc_log_request(ctx: RouteCtx, comment: str) -> int:
    """Write an accounting record for the current request now (code/reason from COMMENT)."""
    code, reason = _comment(comment)
    _emit("request accounted", record(ctx, code, reason, None), ctx)
    return 1


mod.lookup("acc_log_request", 1).impl = ki_acc_log_request  # type: ignore[union-attr]
