"""Helpers the generated route code calls: value coercions, typed operators, calls, route().

Runs in: SIP workers (every compiled route function binds these as globals). Shared state:
none; everything acts on the RouteCtx passed in.

Values in the script are `int`, `str` or `None` ($null), as in Kamailio's rvalues. The
compiler inlines what it can decide from static types and falls back to these helpers only
when an operand's type is known at run time alone (a PV). Keep them small and branch-light:
they run per message.
"""
from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any, Callable, Optional, Union

from sipcore.cfg.regex import compile_posix
from sipcore.errors import ParseError
from sipcore.route.ctx import RouteCtx, ScriptExit

log = logging.getLogger("pykam.script")

Value = Union[int, str, None]

_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


def to_int(v: Value) -> int:
    """Kamailio rval -> int: null is 0, a string is read as a (leading) decimal integer."""
    if v.__class__ is int:
        return v  # type: ignore[return-value]
    if v is None:
        return 0
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    m = _LEADING_INT.match(v)  # type: ignore[arg-type]
    return int(m.group(1)) if m else 0


def to_str(v: Value) -> str:
    """Kamailio rval -> str: null is the empty string, an int its decimal text."""
    if v.__class__ is str:
        return v  # type: ignore[return-value]
    if v is None:
        return ""
    return str(int(v))  # type: ignore[arg-type]


def plus(a: Value, b: Value) -> Value:
    """`+` when the left operand's type is only known at run time: it decides (§8.2)."""
    if a.__class__ is str:
        return a + to_str(b)  # type: ignore[operator]
    if a is None:
        if b.__class__ is str:
            return b
        return to_int(b)
    return to_int(a) + to_int(b)


def eq(a: Value, b: Value) -> bool:
    """`==` typed by the left operand; a null operand takes the other side's type."""
    if a is None:
        if b is None:
            return True
        a = "" if b.__class__ is str else 0
    if a.__class__ is str:
        return a == to_str(b)
    return to_int(a) == to_int(b)


def idiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero); division by zero is an error -> 0."""
    if b == 0:
        log.error("division by zero in script expression")
        return 0
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def imod(a: int, b: int) -> int:
    """C remainder (sign of the dividend); modulo by zero is an error -> 0."""
    if b == 0:
        log.error("modulo by zero in script expression")
        return 0
    return a - b * idiv(a, b)


_RX_CACHE: dict[str, Optional[re.Pattern[str]]] = {}


def rx_search(subject: str, pattern: str) -> bool:
    """`=~` with a regex known only at run time (compiled per value, cached per process)."""
    rx = _RX_CACHE.get(pattern, False)
    if rx is False:
        try:
            rx = compile_posix(pattern, re.IGNORECASE)
        except re.error as e:
            log.error("bad regular expression %r in =~: %s", pattern, e)
            rx = None
        if len(_RX_CACHE) > 1024:
            _RX_CACHE.clear()
        _RX_CACHE[pattern] = rx
    return rx is not None and rx.search(subject) is not None  # type: ignore[union-attr]


def callv(ctx: RouteCtx, rc: int) -> bool:
    """A function call used as a value: sets $rc, stops the script on 0, true iff > 0."""
    ctx.rc = rc
    if rc == 0:
        raise ScriptExit()
    return rc > 0


def route_call(ctx: RouteCtx, fn: Callable[[RouteCtx], int], name: str, max_level: int) -> int:
    """route(NAME): run a sub-route with the recursion limit; its value becomes $rc."""
    level = ctx.level
    if level >= max_level:
        log.error("too many recursive routing levels (%d) calling route[%s]", max_level, name)
        ctx.rc = -1
        return -1
    prev = ctx.route_name
    ctx.level = level + 1
    ctx.route_name = name
    try:
        rc = fn(ctx)
    finally:
        ctx.level = level
        ctx.route_name = prev
    ctx.rc = rc
    return rc


def route_dynamic(ctx: RouteCtx, table: dict[str, Callable[[RouteCtx], int]], name: Value,
                  max_level: int) -> int:
    """route($var(x)): the name is computed per message; an unknown name fails with -1."""
    sname = to_str(name)
    fn = table.get(sname)
    if fn is None:
        log.error("route(%s): no such route block", sname)
        ctx.rc = -1
        return -1
    return route_call(ctx, fn, sname, max_level)


def ret_value(v: int) -> int:
    """`return(expr)` with a run-time value: 0 stops the whole script (§9)."""
    if v == 0:
        raise ScriptExit()
    return v


def while_runaway(limit: int, where: str) -> None:
    log.error("runaway while (%d steps exceeded) at %s", limit, where)


# ---- core keywords -------------------------------------------------------------------------

def kw_uri(ctx: RouteCtx) -> str:
    msg = ctx.msg
    return msg.ruri if msg.is_request else str(msg.status)


def kw_status(ctx: RouteCtx) -> str:
    return str(ctx.msg.status)


def kw_from_uri(ctx: RouteCtx) -> str:
    return ctx.msg.from_.uri


def kw_to_uri(ctx: RouteCtx) -> str:
    return ctx.msg.to.uri


def send_dest(ctx: RouteCtx) -> Any:
    """The destination of the message being sent (onsend_route): ctx.send_dest,
    a sipcore.net.node.Dest set by the sender before running onsend_route."""
    return ctx.send_dest


def kw_snd_ip(ctx: RouteCtx) -> str:
    d = send_dest(ctx)
    return d.sock.ip if d is not None and d.sock is not None else ""


def kw_snd_port(ctx: RouteCtx) -> int:
    d = send_dest(ctx)
    return d.sock.port if d is not None and d.sock is not None else 0


def kw_to_ip(ctx: RouteCtx) -> str:
    d = send_dest(ctx)
    return d.ip if d is not None else ""


def kw_to_port(ctx: RouteCtx) -> int:
    d = send_dest(ctx)
    return d.port if d is not None else 0


def kw_snd_proto(ctx: RouteCtx) -> str:
    d = send_dest(ctx)
    return d.proto if d is not None else ""


def kw_snd_af(ctx: RouteCtx) -> int:
    d = send_dest(ctx)
    return (6 if ":" in d.ip else 4) if d is not None else 0


IpNet = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def ip_in(ip: Value, net: IpNet) -> bool:
    """`src_ip == 10.0.0.0/8` (also plain addresses, as /32 or /128 networks)."""
    s = to_str(ip)
    if s.startswith("["):
        s = s[1:-1]
    try:
        return ipaddress.ip_address(s) in net
    except ValueError:
        return False


def myself_uri(ctx: RouteCtx, uri: str) -> bool:
    """`uri == myself`: host (and port, transport) of the URI name a local socket or alias."""
    from sipcore.msg.uri import parse_uri

    try:
        u = parse_uri(uri)
    except ParseError as e:
        log.debug("myself check: cannot parse %r: %s", uri, e)
        return False
    return ctx.core.is_myself(u.host, u.port, u.transport or None)


def myself_ip(ctx: RouteCtx, ip: str) -> bool:
    return ctx.core.is_myself(ip)
