"""Time, system and miscellaneous PVs: $null $true $Ts $TS $Tf $TF $Tb $TV $time $utime
$timef $utimef $pp $sid $version $ksr $env $envn $def $defn $cfg $mi $ruid $location_ua
$hu $sel $_s $sbranch.

Runs in: SIP workers. Shared state: none across processes. The static branch of $sbranch and
the message-id counter are per process (as in Kamailio). The cfg defines used by $def/$defn
come from a provider installed by the cfg compiler (`set_defines_provider`).
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

import sipcore
from sipcore.pv import registry
from sipcore.pv.msgstate import PV
from sipcore.pv.errors import PvError
from sipcore.pv.msgpv import BranchPv, reg, reg_attrs
from sipcore.pv.registry import Inner
from sipcore.pv.spec import ConstPv, FuncPv, PvSpec, PvValue, to_int

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.route.ctx import Branch, RouteCtx

STARTUP_TIME = int(time.time())

registry.register("null", lambda _i, _m: ConstPv(None), doc="the null value")
registry.register("true", lambda _i, _m: ConstPv(1), doc="constant 1")


# ---- time ---------------------------------------------------------------------------------------

def msg_time(ctx: "RouteCtx") -> tuple[int, int]:
    """(seconds, microseconds) taken once per message (Kamailio msg_set_time)."""
    st = PV.of(ctx)
    tv = st.tv
    if tv is None:
        now = time.time()
        sec = int(now)
        tv = st.tv = (sec, int((now - sec) * 1_000_000))
    return tv


def _now() -> tuple[int, int]:
    now = time.time()
    sec = int(now)
    return sec, int((now - sec) * 1_000_000)


reg("Ts", lambda ctx: msg_time(ctx)[0], doc="Unix time, cached for the message")
reg("TS", lambda ctx: int(time.time()), doc="current Unix time")
reg("Tf", lambda ctx: time.ctime(msg_time(ctx)[0]), doc="formatted time, cached")
reg("TF", lambda ctx: time.ctime(), doc="current formatted time")
reg("Tb", lambda ctx: STARTUP_TIME, doc="startup Unix time")

reg_attrs("TV", {
    "s": lambda ctx: msg_time(ctx)[0],
    "u": lambda ctx: msg_time(ctx)[1],
    "sn": lambda ctx: _now()[0],
    "un": lambda ctx: _now()[1],
    "Sn": lambda ctx: "%d.%06d" % _now(),
    "Fn": lambda ctx: (lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t[0]))
                       + ".%06d" % t[1])(_now()),
}, doc="seconds/microseconds, cached or now")


def _tm_getters(conv: Callable[[float], time.struct_time]) -> dict[str, Callable[..., PvValue]]:
    def f(fn: Callable[[time.struct_time], int]) -> Callable[["RouteCtx"], PvValue]:
        return lambda ctx: fn(conv(msg_time(ctx)[0]))

    return {
        "sec": f(lambda t: t.tm_sec), "min": f(lambda t: t.tm_min),
        "hour": f(lambda t: t.tm_hour), "mday": f(lambda t: t.tm_mday),
        "mon": f(lambda t: t.tm_mon), "year": f(lambda t: t.tm_year),
        # C tm_wday counts from Sunday = 0; Kamailio adds 1 (Sunday = 1 ... Saturday = 7)
        "wday": f(lambda t: (t.tm_wday + 1) % 7 + 1),
        "yday": f(lambda t: t.tm_yday), "isdst": f(lambda t: max(t.tm_isdst, 0)),
    }


reg_attrs("time", _tm_getters(time.localtime), doc="local broken-down time")
reg_attrs("utime", _tm_getters(time.gmtime), doc="UTC broken-down time")


def _timef_factory(conv: Callable[[float], time.struct_time]) -> Callable[..., PvSpec]:
    def factory(inner: Optional[str], _m: Any) -> PvSpec:
        fmt = inner or ""
        return FuncPv(lambda ctx: time.strftime(fmt, conv(time.time())))
    return factory


registry.register("timef", _timef_factory(time.localtime), Inner.REQUIRED,
                  doc="strftime of the current local time")
registry.register("utimef", _timef_factory(time.gmtime), Inner.REQUIRED,
                  doc="strftime of the current UTC time")


# ---- process, node, version -------------------------------------------------------------------

reg("pp", lambda ctx: os.getpid(), doc="pid of the current process")
reg("sid", lambda ctx: ctx.core.get_global("server_id", 0), doc="server_id")

_VERSION = getattr(sipcore, "__version__", "0.0.0")


def _verval(v: str) -> int:
    parts = [int(p) if p.isdigit() else 0 for p in v.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return parts[0] * 1_000_000 + parts[1] * 1_000 + parts[2]


reg_attrs("version", {
    "num": lambda ctx: _VERSION,
    "full": lambda ctx: f"pykam {_VERSION}",
    "hash": lambda ctx: "",
}, doc="version strings")
reg_attrs("ksr", {"ver": lambda ctx: _VERSION, "verval": lambda ctx: _verval(_VERSION)},
          doc="version / numeric version")


def _env_factory(numeric: bool) -> Callable[..., PvSpec]:
    def factory(inner: Optional[str], _m: Any) -> PvSpec:
        name = (inner or "").strip()
        if not name:
            raise PvError("empty environment variable name")
        if numeric:
            return FuncPv(lambda ctx: None if (v := os.environ.get(name)) is None
                          else to_int(v))
        return FuncPv(lambda ctx: os.environ.get(name))
    return factory


registry.register("env", _env_factory(False), Inner.REQUIRED, doc="environment variable")
registry.register("envn", _env_factory(True), Inner.REQUIRED, doc="environment variable as int")


# ---- cfg defines and position ------------------------------------------------------------------

DefinesProvider = Callable[[str], Optional[str]]
_defines: Optional[DefinesProvider] = None


def set_defines_provider(fn: Optional[DefinesProvider]) -> None:
    """Install the lookup of `#!define NAME value` (the cfg preprocessor calls this)."""
    global _defines
    _defines = fn


def _def_factory(numeric: bool) -> Callable[..., PvSpec]:
    def factory(inner: Optional[str], _m: Any) -> PvSpec:
        name = (inner or "").strip()
        if not name:
            raise PvError("empty define name")

        def get(ctx: "RouteCtx") -> PvValue:
            v = _defines(name) if _defines is not None else None
            if v is None:
                return None
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            return to_int(v) if numeric else v
        return FuncPv(get)
    return factory


registry.register("def", _def_factory(False), Inner.REQUIRED, doc="cfg define as string")
registry.register("defn", _def_factory(True), Inner.REQUIRED, doc="cfg define as number")

def _cfg_file(ctx: "RouteCtx") -> PvValue:
    """The main config file (cfg global "cfg_file")."""
    return ctx.core.get_global("cfg_file", "") or None


reg_attrs("cfg", {
    "line": lambda ctx: ctx.cfg_line,
    "name": _cfg_file,
    "file": _cfg_file,
    "route": lambda ctx: ctx.route_name or None,
}, doc="current cfg line / file / route name")


# ---- $err.*: the last error (Kamailio err_info, set by parse errors / sl_reply_error) ----------

@dataclass(slots=True)
class ErrInfo:
    """What `$err.class`... read; whoever records an error stores one in
    ctx.err_info (0 / $null when nothing was recorded)."""

    eclass: int = 0
    level: int = 0
    info: Optional[str] = None
    rcode: int = 0
    rreason: Optional[str] = None


def _err(attr: str, default: PvValue) -> Callable[["RouteCtx"], PvValue]:
    def get(ctx: "RouteCtx") -> PvValue:
        ei = ctx.err_info
        return default if ei is None else getattr(ei, attr)
    return get


reg("err.class", _err("eclass", 0), doc="class of the last error")
reg("err.level", _err("level", 0), doc="level of the last error")
reg("err.info", _err("info", None), doc="text of the last error")
reg("err.rcode", _err("rcode", 0), doc="reply code suggested by the last error")
reg("err.rreason", _err("rreason", None), doc="reply reason suggested by the last error")


# ---- message id, contact of lookup(), misc -----------------------------------------------------

_msg_ids = itertools.count(1)


def _get_mi(ctx: "RouteCtx") -> PvValue:
    mid = getattr(ctx.msg, "id", None)
    if isinstance(mid, int):
        return mid
    st = PV.of(ctx)
    if st.mid is None:
        st.mid = next(_msg_ids)
    return st.mid


reg("mi", _get_mi, doc="message id (per process counter)")
reg("ruid", lambda ctx: ctx.ruid, doc="ruid of the contact chosen by lookup()")
reg("location_ua", lambda ctx: ctx.location_ua,
    doc="User-Agent of the contact chosen by lookup()")


def _get_hu(ctx: "RouteCtx") -> PvValue:
    msg = ctx.msg
    if msg.is_request and msg.version.upper().startswith("HTTP/"):
        return msg.ruri
    return None


reg("hu", _get_hu, doc="HTTP request URL")
registry.register("sel", lambda _i, _m: ConstPv(None), Inner.REQUIRED,
                  doc="legacy select expressions: accepted, always $null")


def _s_factory(inner: Optional[str], modreg: Any) -> PvSpec:
    from sipcore.pv.parser import parse_format

    fmt = parse_format(inner or "", modreg)
    return FuncPv(fmt.eval)


registry.register("_s", _s_factory, Inner.REQUIRED, doc="evaluate a format string")


# ---- $sbranch: the static branch of this process (pv sbranch_* functions) -----------------------

_sbranch: Optional["Branch"] = None


def sbranch() -> "Branch":
    global _sbranch
    if _sbranch is None:
        from sipcore.route.ctx import Branch

        _sbranch = Branch(uri="")
    return _sbranch


def sbranch_reset() -> None:
    global _sbranch
    _sbranch = None


class SbranchPv(BranchPv):
    def __init__(self, attr: str) -> None:
        super().__init__(attr)
        if attr == "count":
            raise PvError("$sbranch has no count attribute")

    def with_index(self, idx: Any) -> PvSpec:
        raise PvError("$sbranch does not take an index")

    def _branch(self, ctx: "RouteCtx") -> Any:
        b = sbranch()
        return b

    def get(self, ctx: "RouteCtx") -> PvValue:
        v = super().get(ctx)
        return None if v == "" else v


registry.register("sbranch", lambda inner, _m: SbranchPv((inner or "").strip()), Inner.REQUIRED,
                  doc="static branch used by sbranch_* functions")
