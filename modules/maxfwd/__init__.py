"""maxfwd: Max-Forwards processing (RFC 3261 16.6 step 3).

Runs in: SIP workers. Shared state: none. Kamailio equivalent: modules/maxfwd (maxfwd.c,
mf_funcs.c). The header value is parsed like Kamailio's str2s(): decimal digits only, at most
65535; anything else is an error (-2), not "absent".
"""
from __future__ import annotations

import logging
from typing import Optional

from sipcore.mod import REQUEST_ROUTE, Custom, Module
from sipcore.msg import HdrType, Header
from sipcore.route.ctx import RouteCtx

log = logging.getLogger(__name__)

mod = Module("maxfwd", summary="Max-Forwards header processing.")

_T_MAXFWD = int(HdrType.MAXFORWARDS)    # an Enum lookup once, not per message
MAX_LIMIT_MIN, MAX_LIMIT_MAX = 1, 256


def _limit(v: int) -> int:
    if not MAX_LIMIT_MIN <= v <= MAX_LIMIT_MAX:
        raise ValueError(f"invalid max_limit {v} [{MAX_LIMIT_MIN},{MAX_LIMIT_MAX}]")
    return v


mod.param("max_limit", int, 70, validator=_limit,
          doc="Upper bound (1..256) of the value a request is forwarded with: a larger "
          "received Max-Forwards is lowered to it.")


def parse_max_value(text: str) -> int:
    """Compile-time check of the max_value argument: an integer 1..256."""
    try:
        v = int(text.strip())
    except ValueError:
        raise ValueError(f"invalid Max-Forwards value \"{text}\" (integer expected)") from None
    if not MAX_LIMIT_MIN <= v <= MAX_LIMIT_MAX:
        raise ValueError(f"invalid Max-Forwards value {v} [{MAX_LIMIT_MIN},{MAX_LIMIT_MAX}]")
    return v


MAX_VALUE = Custom(parse_max_value, dynamic=True, name="maxfwd-value")


def _str2s(text: str) -> Optional[int]:
    """Kamailio str2s(): unsigned 16-bit decimal, or None."""
    t = text.strip()
    if not t or not t.isascii() or not t.isdigit() or len(t) > 5:
        return None
    v = int(t)
    return v if v <= 65535 else None


def maxfwd_value(ctx: RouteCtx) -> int:
    """Value of the first Max-Forwards header; -1 when absent, -2 when unparseable."""
    return _value_of(ctx, ctx.msg.header(_T_MAXFWD))


def _value_of(ctx: RouteCtx, h: Optional[Header]) -> int:
    if h is None:
        return -1
    v = _str2s(h.value)
    if v is None:
        log.error('maxfwd: unable to parse the Max-Forwards value "%s"', h.value)
        return -2
    return v


def _process(ctx: RouteCtx, max_value: int) -> int:
    msg = ctx.msg
    if not msg.is_request:
        log.error("maxfwd: Max-Forwards is processed for requests only")
        return -2
    h = msg.header(_T_MAXFWD)
    val = _value_of(ctx, h)
    if val == -1:
        msg.add_header(f"Max-Forwards: {max_value}")
        return 2
    if val == -2:
        return -2
    if val == 0:
        return -1
    limit = mod.p.max_limit
    if val > limit:
        log.debug("maxfwd: value %s lowered to max_limit %s", val, limit)
        val = limit + 1
    msg.replace_header(h, f"{h.name}: {val - 1}")
    return 1


def _process_doc(fn):  # keeps the three aliases' docs identical
    fn.__doc__ = ("Decrement Max-Forwards (lowered to max_limit first), or add it with "
                  "MAX_VALUE when absent. 2: added; 1: decremented; -1: value is 0 (reply 483); "
                  "-2: error.")
    return fn


@mod.function("maxfwd_process", args=(MAX_VALUE,), routes=REQUEST_ROUTE)
@_process_doc
def ki_maxfwd_process(ctx: RouteCtx, max_value: int) -> int:
    return _process(ctx, max_value)


@mod.function("mf_process_maxfwd_header", args=(MAX_VALUE,), routes=REQUEST_ROUTE)
@_process_doc
def ki_mf_process_maxfwd_header(ctx: RouteCtx, max_value: int) -> int:
    return _process(ctx, max_value)


@mod.function("process_maxfwd", args=(MAX_VALUE,), routes=REQUEST_ROUTE)
@_process_doc
def ki_process_maxfwd(ctx: RouteCtx, max_value: int) -> int:
    return _process(ctx, max_value)


def _lt(ctx: RouteCtx, limit: int) -> int:
    val = maxfwd_value(ctx)
    if val == -1:
        return -2
    if val == -2:
        return -3
    return 1 if val < limit else -1


def _lt_doc(fn):
    fn.__doc__ = ("Max-Forwards lower than LIMIT? 1: yes; -1: no; -2: header missing; "
                  "-3: unparseable.")
    return fn


@mod.function("is_maxfwd_lt", args=(MAX_VALUE,), routes=REQUEST_ROUTE)
@_lt_doc
def ki_is_maxfwd_lt(ctx: RouteCtx, limit: int) -> int:
    return _lt(ctx, limit)


@mod.function("maxfwd_at_least", args=(MAX_VALUE,), routes=REQUEST_ROUTE)
@_lt_doc
def ki_maxfwd_at_least(ctx: RouteCtx, limit: int) -> int:
    return _lt(ctx, limit)


@mod.function("mf_lowlimit", args=(MAX_VALUE,), routes=REQUEST_ROUTE)
@_lt_doc
def ki_mf_lowlimit(ctx: RouteCtx, limit: int) -> int:
    return _lt(ctx, limit)
