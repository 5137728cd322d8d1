"""Kamailio-style logging: numeric levels (`debug=`), stderr or syslog, per-message prefix.

Runs in: every process. The level is a per-process value set from the `debug` global (and by
`setdebug()`); `-E`/`log_stderror` sends to stderr, otherwise syslog with `log_facility`.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import syslog
from typing import Any, Callable, Optional

L_ALERT = -5
L_BUG = -4
L_CRIT2 = -3
L_CRIT = -2
L_ERR = -1
L_WARN = 0
L_NOTICE = 1
L_INFO = 2
L_DBG = 3

LEVEL_NAMES: dict[str, int] = {
    "L_ALERT": L_ALERT, "L_BUG": L_BUG, "L_CRIT2": L_CRIT2, "L_CRIT": L_CRIT, "L_ERR": L_ERR,
    "L_WARN": L_WARN, "L_NOTICE": L_NOTICE, "L_INFO": L_INFO, "L_DBG": L_DBG,
}
_LABEL = {L_ALERT: "ALERT", L_BUG: "BUG", L_CRIT2: "CRITICAL", L_CRIT: "CRITICAL",
          L_ERR: "ERROR", L_WARN: "WARNING", L_NOTICE: "NOTICE", L_INFO: "INFO", L_DBG: "DEBUG"}
_SYSLOG_PRIO = {L_ALERT: syslog.LOG_ALERT, L_BUG: syslog.LOG_CRIT, L_CRIT2: syslog.LOG_CRIT,
                L_CRIT: syslog.LOG_CRIT, L_ERR: syslog.LOG_ERR, L_WARN: syslog.LOG_WARNING,
                L_NOTICE: syslog.LOG_NOTICE, L_INFO: syslog.LOG_INFO, L_DBG: syslog.LOG_DEBUG}
_PY_LEVEL = {L_ALERT: logging.CRITICAL, L_BUG: logging.CRITICAL, L_CRIT2: logging.CRITICAL,
             L_CRIT: logging.CRITICAL, L_ERR: logging.ERROR, L_WARN: logging.WARNING,
             L_NOTICE: logging.INFO, L_INFO: logging.INFO, L_DBG: logging.DEBUG}

FACILITIES: dict[str, int] = {
    name: getattr(syslog, name) for name in (
        "LOG_AUTH", "LOG_CRON", "LOG_DAEMON", "LOG_KERN", "LOG_LOCAL0", "LOG_LOCAL1",
        "LOG_LOCAL2", "LOG_LOCAL3", "LOG_LOCAL4", "LOG_LOCAL5", "LOG_LOCAL6", "LOG_LOCAL7",
        "LOG_LPR", "LOG_MAIL", "LOG_NEWS", "LOG_USER", "LOG_UUCP")
}


class _State:
    debug: int = L_WARN
    to_stderr: bool = True
    color: bool = False
    facility: int = syslog.LOG_DAEMON
    name: str = "pykam"
    prefix: Optional[Callable[[Any], str]] = None   # evaluates log_prefix for a message
    capture: Optional[list[tuple[int, str]]] = None  # tests: collect instead of writing
    syslog_open: bool = False
    proc_desc: str = "main"


_st = _State()


def level_from_name(name: str) -> int:
    """"L_INFO" -> 2; also accepts a plain integer string. Raises ValueError."""
    n = name.strip()
    if n in LEVEL_NAMES:
        return LEVEL_NAMES[n]
    try:
        return int(n)
    except ValueError:
        raise ValueError(f"unknown log level \"{name}\"") from None


def facility_from_name(name: str) -> int:
    n = name.strip().upper()
    if not n.startswith("LOG_"):
        n = "LOG_" + n
    if n not in FACILITIES:
        raise ValueError(f"unknown log facility \"{name}\"")
    return FACILITIES[n]


def configure(*, debug: Optional[int] = None, to_stderr: Optional[bool] = None,
              color: Optional[bool] = None, facility: Optional[str | int] = None,
              name: Optional[str] = None) -> None:
    if debug is not None:
        _st.debug = debug
    if to_stderr is not None:
        _st.to_stderr = to_stderr
    if color is not None:
        _st.color = color
    if facility is not None:
        _st.facility = facility if isinstance(facility, int) else facility_from_name(facility)
    if name is not None:
        _st.name = name
    pylevel = _PY_LEVEL.get(max(min(_st.debug, L_DBG), L_ALERT), logging.WARNING)
    logging.getLogger("pykam").setLevel(pylevel)


def set_prefix(fn: Optional[Callable[[Any], str]]) -> None:
    """Install the evaluator of the `log_prefix` global (called with the RouteCtx)."""
    _st.prefix = fn


def set_process(desc: str) -> None:
    _st.proc_desc = desc


def set_debug(level: int) -> None:
    _st.debug = level


def get_debug() -> int:
    return _st.debug


def enabled(level: int) -> bool:
    return level <= _st.debug


def capture(on: bool = True) -> list[tuple[int, str]]:
    """Tests: start (or stop) collecting emitted lines; returns the live list."""
    _st.capture = [] if on else None
    return _st.capture if on else []


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _sanitize(text: str) -> str:
    """Peer bytes in a log line (a malformed message quoted in an error) are escaped, so logs
    stay text: control characters become \\xNN; newlines and tabs stay."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


_COLORS = {L_ERR: "\033[31m", L_WARN: "\033[33m", L_NOTICE: "\033[36m", L_INFO: "\033[32m",
           L_DBG: "\033[37m"}


def emit(level: int, text: str, ctx: Any = None, facility: Optional[int] = None,
         name: Optional[str] = None) -> None:
    """Write one log line if LEVEL is enabled (the caller may check enabled() first)."""
    if level > _st.debug:
        return
    if ctx is not None and _st.prefix is not None:
        try:
            text = _st.prefix(ctx) + text
        except Exception as exc:  # a broken prefix must not lose the message
            text = f"<log_prefix error: {exc}> " + text
    text = text.rstrip("\n")
    if not text.isprintable():
        text = _sanitize(text)
    if _st.capture is not None:
        _st.capture.append((level, text))
        return
    label = _LABEL.get(level, str(level))
    if _st.to_stderr:
        line = f" {os.getpid()} [{_st.proc_desc}] {label}: {name + ': ' if name else ''}{text}\n"
        if _st.color and level in _COLORS:
            line = _COLORS[level] + line + "\033[0m"
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        return
    if not _st.syslog_open:
        syslog.openlog(_st.name, syslog.LOG_PID, _st.facility)
        _st.syslog_open = True
    prio = _SYSLOG_PRIO.get(level, syslog.LOG_INFO)
    syslog.syslog((facility if facility is not None else _st.facility) | prio,
                  f"{label}: {name + ': ' if name else ''}{text}")


def err(text: str, ctx: Any = None) -> None:
    emit(L_ERR, text, ctx)


def warn(text: str, ctx: Any = None) -> None:
    emit(L_WARN, text, ctx)


def info(text: str, ctx: Any = None) -> None:
    emit(L_INFO, text, ctx)


def dbg(text: str, ctx: Any = None) -> None:
    emit(L_DBG, text, ctx)
