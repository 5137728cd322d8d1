"""Kamailio-style logging: numeric levels (`debug=`), stderr or syslog, per-message prefix.

Runs in: every process. The level is a per-process value set from the `debug` global (and by
`setdebug()`); `-E`/`log_stderror` sends to stderr, otherwise syslog with `log_facility`.

Code logs through the standard library, lazily: `log = logging.getLogger(__name__)`, then
`log.error("cannot bind %s: %s", addr, why)`. The loggers of `sipcore`, `modules` and `pykam`
(the script's) go to one handler here, which writes Kamailio's line format; their level
follows `debug` (Kamailio's L_DBG 3 .. L_ALERT -5, see PY_LEVELS; NOTICE is level 25). The
script's own log functions (xlog, KSR.log) pass a Kamailio level, a facility and a name in
`extra` (`log_record_extra()`). While a message is processed (`begin_message()`), the
`log_prefix` global is evaluated once against it and prefixed to every line.
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
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")
#: Kamailio level -> standard library level (CRITICAL and above keep Kamailio's distinctions)
PY_LEVELS = {L_ALERT: 55, L_BUG: 52, L_CRIT2: 51, L_CRIT: logging.CRITICAL,
             L_ERR: logging.ERROR, L_WARN: logging.WARNING, L_NOTICE: NOTICE,
             L_INFO: logging.INFO, L_DBG: logging.DEBUG}
_KAM_BY_PY = sorted(((py, kam) for kam, py in PY_LEVELS.items()), reverse=True)
#: the loggers whose records this module writes (and whose level follows `debug`)
LOGGER_ROOTS = ("sipcore", "modules", "pykam")


def py_level(level: int) -> int:
    """Kamailio level (debug= numbers, above L_DBG too) -> standard library level."""
    return PY_LEVELS.get(max(min(level, L_DBG), L_ALERT), logging.DEBUG)


def kam_level(pylevel: int) -> int:
    """Standard library level -> Kamailio level."""
    for py, kam in _KAM_BY_PY:
        if pylevel >= py:
            return kam
    return L_DBG

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
    msg_ctx: Any = None                 # the message being processed (begin_message)
    msg_prefix: Optional[str] = None    # log_prefix evaluated for it, on first use
    capture: Optional[list[tuple[int, str]]] = None  # tests: collect instead of writing
    syslog_open: bool = False
    proc_desc: str = "main"


_st = _State()
STATE = _st        # the per-process logging state (receive_msg sets msg_ctx per message)


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
    _apply_level()


def _apply_level() -> None:
    pylevel = py_level(_st.debug)
    for name in LOGGER_ROOTS:
        lg = logging.getLogger(name)
        if lg.level != pylevel:
            lg.setLevel(pylevel)


def set_prefix(fn: Optional[Callable[[Any], str]]) -> None:
    """Install the evaluator of the `log_prefix` global (called with the RouteCtx)."""
    _st.prefix = fn


def set_process(desc: str) -> None:
    _st.proc_desc = desc


def set_debug(level: int) -> None:
    _st.debug = level
    _apply_level()


def get_debug() -> int:
    return _st.debug


def enabled(level: int) -> bool:
    return level <= _st.debug


def begin_message(ctx: Any) -> None:
    """The message CTX is being processed: lines logged until end_message() carry its
    log_prefix (evaluated once, when the first line is written)."""
    _st.msg_ctx = ctx
    _st.msg_prefix = None


def end_message() -> None:
    _st.msg_ctx = None
    _st.msg_prefix = None


def _message_prefix() -> str:
    if _st.prefix is None or _st.msg_ctx is None:
        return ""
    if _st.msg_prefix is None:
        try:
            _st.msg_prefix = _st.prefix(_st.msg_ctx)
        except Exception as exc:  # a broken prefix must not lose the message
            _st.msg_prefix = f"<log_prefix error: {exc}> "
    return _st.msg_prefix


def log_record_extra(ctx: Any = None, facility: Optional[int] = None,
                     name: Optional[str] = None) -> dict[str, Any]:
    """`extra=` of a script log call (xlog, KSR.log): the message to evaluate log_prefix with,
    a syslog facility and a log name other than the global ones."""
    return {"kam_ctx": ctx, "kam_facility": facility, "kam_name": name}


class KamailioHandler(logging.Handler):
    """Writes the records of LOGGER_ROOTS in Kamailio's format, to stderr or syslog."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            _write(kam_level(record.levelno), text, getattr(record, "kam_ctx", None),
                   getattr(record, "kam_facility", None), getattr(record, "kam_name", None))
        except Exception:   # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


_handler = KamailioHandler()
for _name in LOGGER_ROOTS:
    logging.getLogger(_name).addHandler(_handler)
_apply_level()


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


def _write(level: int, text: str, ctx: Any = None, facility: Optional[int] = None,
           name: Optional[str] = None) -> None:
    if level > _st.debug:
        return
    if ctx is not None and _st.prefix is not None and ctx is not _st.msg_ctx:
        try:
            text = _st.prefix(ctx) + text
        except Exception as exc:  # a broken prefix must not lose the message
            text = f"<log_prefix error: {exc}> " + text
    else:
        text = _message_prefix() + text
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
