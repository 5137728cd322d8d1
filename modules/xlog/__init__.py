"""xlog: formatted logging with pseudo-variables.

Runs in: every process that runs routes. Shared state: none (log output only).
Kamailio equivalent: modules/xlog. The format argument is an Fx.SPVE: the cfg compiler
compiles it once (with every loaded module's PVs) and the function gets the evaluated text.
Unlike Kamailio the text is evaluated even when the level is disabled, because a Custom fixup
(which could keep the compiled Format for a lazy eval) cannot see module PVs yet.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

from sipcore import log as klog
from sipcore.errors import ParseError
from sipcore.mod import ANY_ROUTE, Custom, Fx, Module
from sipcore.route.ctx import RouteCtx

log = logging.getLogger(__name__)

mod = Module("xlog", summary="Formatted logging with pseudo-variables.")

COLOR_CODES = "xsrgybpcwXSRGYBPCW"   # Kamailio $C(xy) letters: black, red, green, ...


def _positive(name: str):
    def check(v: int) -> int:
        if v <= 0:
            raise ValueError(f"xlog parameter {name} must be positive, got {v}")
        return v
    return check


def _facility(v: str) -> str:
    if v:
        klog.facility_from_name(v)      # raises ValueError on unknown names
    return v


def _log_colors(v: str) -> str:
    """`L_ERR=cr` style: level name, '=', foreground + background color letters."""
    for item in filter(None, (x.strip() for x in v.split(";"))):
        name, sep, col = item.partition("=")
        if not sep:
            raise ValueError(f"xlog log_colors item \"{item}\" is not LEVEL=colors")
        klog.level_from_name(name)
        if not 1 <= len(col) <= 2 or any(c not in COLOR_CODES for c in col):
            raise ValueError(f"xlog log_colors: bad color spec \"{col}\"")
    return v


mod.param("buf_size", int, 4096, validator=_positive("buf_size"),
          doc="Maximum size of one log message; longer text is truncated.")
mod.param("force_color", int, 0, doc="1: keep color codes even when not logging to stderr.")
mod.param("long_format", int, 0,
          doc="1: xlogl()/xdbgl() print 'file:line:' instead of 'line:' before the text.")
mod.param("prefix", str, "<script>: ", doc="Text put before every xlog message.")
mod.param("prefix_mode", int, 0,
          doc="1: prefix may contain pseudo-variables, evaluated for every message.")
mod.param("log_facility", str, "", validator=_facility,
          doc="Syslog facility for xlog output (e.g. LOG_LOCAL1); empty: the core's.")
mod.param("log_colors", str, "", validator=_log_colors,
          doc="Color overrides per level, 'L_ERR=cr;L_INFO=gx'.", multi=True)
mod.param("methods_filter", int, -1,
          doc="Bitmask of method ids whose messages xlogm() does not log (-1: all).")


# ---- compile-time fixups ---------------------------------------------------------------------

def parse_fmt(text: str) -> Any:
    """A PV format compiled once (the prefix with prefix_mode=1; core PVs only)."""
    from sipcore.pv import parse_format

    return parse_format(text)


def parse_level(text: str) -> int:
    """"L_INFO" (or an integer); with PVs the value is evaluated per call (dynamic)."""
    return klog.level_from_name(text)


def parse_facility(text: str) -> int:
    return klog.facility_from_name(text)


FMT = Fx.SPVE
LEVEL = Custom(parse_level, dynamic=True, name="log-level")
FACILITY = Custom(parse_facility, name="log-facility")


@dataclass
class _Prefix:
    text: str
    mode: int
    fmt: Any = None


_prefix_cache: Optional[_Prefix] = None


def _prefix(ctx: RouteCtx) -> str:
    global _prefix_cache
    p, mode = mod.p.prefix, mod.p.prefix_mode
    if _prefix_cache is None or _prefix_cache.text != p or _prefix_cache.mode != mode:
        # compiled once per (prefix, prefix_mode): modparam values are fixed after startup
        fmt = parse_fmt(p) if mode == 1 and "$" in p else None
        _prefix_cache = _Prefix(p, mode, fmt)
    if _prefix_cache.fmt is not None:
        return _prefix_cache.fmt.eval(ctx)
    return p


def _default_facility() -> Optional[int]:
    f = mod.p.log_facility
    return klog.facility_from_name(f) if f else None


def xlog_emit(ctx: RouteCtx, level: int, text: str, facility: Optional[int] = None,
              line_prefix: bool = False) -> int:
    """Log TEXT at LEVEL; always 1 (Kamailio: logging never fails the script)."""
    if not klog.enabled(level):
        return 1
    if line_prefix:
        if mod.p.long_format == 1:
            text = f"{ctx.core.get_global('cfg_file', '') or ''}:{ctx.cfg_line}:{text}"
        else:
            text = f"{ctx.cfg_line}:{text}"
    text = _prefix(ctx) + text
    size = mod.p.buf_size
    if len(text) > size:
        text = text[:size]
    log.log(klog.py_level(level), "%s", text, extra=klog.log_record_extra(
        ctx, facility if facility is not None else _default_facility()))
    return 1


# ---- functions -------------------------------------------------------------------------------

@mod.function("xlog", args=(FMT,), routes=ANY_ROUTE)
def ki_xlog(ctx: RouteCtx, text: str) -> int:
    """Log the text at L_ERR."""
    return xlog_emit(ctx, klog.L_ERR, text)


@mod.function("xlog", args=(LEVEL, FMT), routes=ANY_ROUTE)
def ki_xlog_level(ctx: RouteCtx, level: int, text: str) -> int:
    """Log the text at LEVEL ("L_INFO" or a PV holding an integer)."""
    return xlog_emit(ctx, level, text)


@mod.function("xlog", args=(FACILITY, LEVEL, FMT), routes=ANY_ROUTE)
def ki_xlog_facility(ctx: RouteCtx, facility: int, level: int, text: str) -> int:
    """Log the text at LEVEL to syslog FACILITY ("LOG_LOCAL0")."""
    return xlog_emit(ctx, level, text, facility)


def _fixed(name: str, level: int, doc: str) -> None:
    def impl(ctx: RouteCtx, text: str) -> int:
        return xlog_emit(ctx, level, text)

    impl.__name__ = f"ki_{name}"
    impl.__doc__ = doc
    globals()[impl.__name__] = impl
    mod.function(name, args=(FMT,), routes=ANY_ROUTE)(impl)


_fixed("xdbg", klog.L_DBG, "Log the text at L_DBG.")
_fixed("xinfo", klog.L_INFO, "Log the text at L_INFO.")
_fixed("xnotice", klog.L_NOTICE, "Log the text at L_NOTICE.")
_fixed("xwarn", klog.L_WARN, "Log the text at L_WARN.")
_fixed("xerr", klog.L_ERR, "Log the text at L_ERR.")
_fixed("xbug", klog.L_BUG, "Log the text at L_BUG.")
_fixed("xcrit", klog.L_CRIT, "Log the text at L_CRIT.")
_fixed("xalert", klog.L_ALERT, "Log the text at L_ALERT.")


@mod.function("xlogl", args=(FMT,), routes=ANY_ROUTE)
def ki_xlogl(ctx: RouteCtx, text: str) -> int:
    """xlog(TEXT) with the config line ('file:line' with long_format) before the text."""
    return xlog_emit(ctx, klog.L_ERR, text, line_prefix=True)


@mod.function("xlogl", args=(LEVEL, FMT), routes=ANY_ROUTE)
def ki_xlogl_level(ctx: RouteCtx, level: int, text: str) -> int:
    """xlog(LEVEL, TEXT) with the config line before the text."""
    return xlog_emit(ctx, level, text, line_prefix=True)


@mod.function("xlogl", args=(FACILITY, LEVEL, FMT), routes=ANY_ROUTE)
def ki_xlogl_facility(ctx: RouteCtx, facility: int, level: int, text: str) -> int:
    """xlog(FACILITY, LEVEL, TEXT) with the config line before the text."""
    return xlog_emit(ctx, level, text, facility, line_prefix=True)


@mod.function("xdbgl", args=(FMT,), routes=ANY_ROUTE)
def ki_xdbgl(ctx: RouteCtx, text: str) -> int:
    """xdbg(TEXT) with the config line before the text."""
    return xlog_emit(ctx, klog.L_DBG, text, line_prefix=True)


@mod.function("xlogm", args=(LEVEL, FMT), routes=ANY_ROUTE)
def ki_xlogm(ctx: RouteCtx, level: int, text: str) -> int:
    """xlog(LEVEL, TEXT) unless the message's method id is in methods_filter (then 1, silent)."""
    try:
        mid = ctx.msg.method_id
    except ParseError as exc:       # a reply without a parseable CSeq is logged
        log.debug("xlogm: no method id: %s", exc)
        mid = 0
    if mid & mod.p.methods_filter:
        return 1
    return xlog_emit(ctx, level, text)
