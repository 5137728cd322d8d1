"""Core KSR functions that are not cfg functions: KSR.is_*, branch/script flags, logging,
destination URI, KSR.pv.*, KSR.hdr.*, KSR.x.* (Kamailio core kemi.c, 5.6 names).

Runs in: every routing process; all functions act on CURRENT.ctx. Return conventions as
Kamailio: BOOL functions give a language boolean, INT ones 1/-1, STR ones str or None.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sipcore import log as klog
from sipcore.cfg import runtime as RT
from sipcore.kemi.registry import CURRENT, KsrTree, _to_int, _to_str, call_native
from sipcore.pv import NULL_TEXT, PvError, cached_pv
from sipcore.route.ctx import ScriptExit

_log = logging.getLogger(__name__)

# is_method_in letters (kemi.c sr_kemi_core_is_method_in)
METHOD_LETTERS = {
    "I": "INVITE", "A": "ACK", "B": "BYE", "C": "CANCEL", "M": "MESSAGE", "R": "REGISTER",
    "E": "PRACK", "P": "PUBLISH", "S": "SUBSCRIBE", "N": "NOTIFY", "O": "OPTIONS",
    "F": "REFER", "G": "GET", "U": "UPDATE", "K": "KDMQ", "D": "DELETE", "T": "POST",
    "V": "PUT",
}
IS_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "SUBSCRIBE", "PUBLISH",
              "NOTIFY", "REFER", "INFO", "UPDATE", "PRACK", "MESSAGE", "KDMQ", "GET", "POST",
              "PUT", "DELETE")
PROTO_LETTERS = {"u": "udp", "t": "tcp", "l": "tls", "s": "sctp", "w": "ws", "W": "wss"}
LOG_LEVELS = {
    "dbg": klog.L_DBG, "debug": klog.L_DBG, "info": klog.L_INFO, "notice": klog.L_NOTICE,
    "warn": klog.L_WARN, "err": klog.L_ERR, "error": klog.L_ERR, "crit": klog.L_CRIT,
    "alert": klog.L_ALERT, "bug": klog.L_BUG,
}

cur = CURRENT


def _method(ctx: Any) -> str:
    msg = ctx.msg
    return msg.method if msg.is_request else msg.cseq.method


def _make_is(method: str) -> Callable[[], bool]:
    def is_m() -> bool:
        return _method(cur.ctx) == method
    is_m.__name__ = f"is_{method}"
    is_m.__doc__ = f"True if the message is a {method} request (or a reply to one)."
    return is_m


def is_method(m: str) -> bool:
    """True if the method is exactly M."""
    return _method(cur.ctx) == _to_str(m).upper()


def is_method_in(letters: str) -> bool:
    """True if the method is one of the LETTERS (I=INVITE, A=ACK, B=BYE, R=REGISTER, ...)."""
    m = _method(cur.ctx)
    return any(METHOD_LETTERS.get(c) == m for c in _to_str(letters).upper())


# ---- flags ----------------------------------------------------------------------------------

def _flag(n: Any) -> int | None:
    f = _to_int(n)
    if not 0 <= f <= 31:
        _log.error("flag %s out of range (0..31)", f)
        return None
    return f


def _bflags_get(ctx: Any, branch: int) -> int | None:
    if branch == 0:
        return ctx.bflags
    if 0 < branch <= len(ctx.branches):
        return ctx.branches[branch - 1].bflags
    return None


def _bflags_set(ctx: Any, branch: int, value: int) -> bool:
    if branch == 0:
        ctx.bflags = value
        return True
    if 0 < branch <= len(ctx.branches):
        ctx.branches[branch - 1].bflags = value
        return True
    return False


def setbiflag(flag: Any, branch: Any) -> bool:
    """Set branch flag FLAG of branch BRANCH (0 = the R-URI branch)."""
    f, b = _flag(flag), _to_int(branch)
    cur_f = _bflags_get(cur.ctx, b)
    return f is not None and cur_f is not None and _bflags_set(cur.ctx, b, cur_f | (1 << f))


def resetbiflag(flag: Any, branch: Any) -> bool:
    """Clear branch flag FLAG of branch BRANCH."""
    f, b = _flag(flag), _to_int(branch)
    cur_f = _bflags_get(cur.ctx, b)
    return f is not None and cur_f is not None and _bflags_set(cur.ctx, b, cur_f & ~(1 << f))


def isbiflagset(flag: Any, branch: Any) -> bool:
    """True if branch flag FLAG of branch BRANCH is set."""
    f, b = _flag(flag), _to_int(branch)
    cur_f = _bflags_get(cur.ctx, b)
    return f is not None and cur_f is not None and bool(cur_f & (1 << f))


def setbflag(flag: Any) -> bool:
    """Set branch flag FLAG of branch 0."""
    return setbiflag(flag, 0)


def resetbflag(flag: Any) -> bool:
    """Clear branch flag FLAG of branch 0."""
    return resetbiflag(flag, 0)


def isbflagset(flag: Any) -> bool:
    """True if branch flag FLAG of branch 0 is set."""
    return isbiflagset(flag, 0)


def setsflag(flag: Any) -> bool:
    """Set script flag FLAG."""
    f = _flag(flag)
    if f is None:
        return False
    cur.ctx.sflags |= 1 << f
    return True


def resetsflag(flag: Any) -> bool:
    """Clear script flag FLAG."""
    f = _flag(flag)
    if f is None:
        return False
    cur.ctx.sflags &= ~(1 << f)
    return True


def issflagset(flag: Any) -> bool:
    """True if script flag FLAG is set."""
    f = _flag(flag)
    return f is not None and bool(cur.ctx.sflags & (1 << f))


# ---- myself, transport, destination --------------------------------------------------------

def is_myself(uri: Any) -> bool:
    """True if URI's host (and port, transport) is a local socket or alias."""
    return RT.myself_uri(cur.ctx, _to_str(uri))


def is_myself_ruri() -> bool:
    """True if the R-URI is local."""
    ctx = cur.ctx
    return ctx.msg.is_request and RT.myself_uri(ctx, ctx.msg.ruri)


def is_myself_duri() -> bool:
    """True if $du is set and local."""
    ctx = cur.ctx
    return bool(ctx.dst_uri) and RT.myself_uri(ctx, ctx.dst_uri)


def is_myself_nhuri() -> bool:
    """True if the next hop ($du, else the R-URI) is local."""
    ctx = cur.ctx
    return ctx.msg.is_request and RT.myself_uri(ctx, ctx.dst_uri or ctx.msg.ruri)


def is_myself_furi() -> bool:
    """True if the From URI is local."""
    return RT.myself_uri(cur.ctx, RT.kw_from_uri(cur.ctx))


def is_myself_turi() -> bool:
    """True if the To URI is local."""
    return RT.myself_uri(cur.ctx, RT.kw_to_uri(cur.ctx))


def is_myself_srcip() -> bool:
    """True if the source IP is a local address."""
    return RT.myself_ip(cur.ctx, cur.ctx.rcv.src_ip)


def _make_is_proto(proto: str) -> Callable[[], bool]:
    def is_p() -> bool:
        return cur.ctx.rcv.proto == proto
    is_p.__name__ = f"is_{proto.upper()}"
    is_p.__doc__ = f"True if the message was received over {proto.upper()}."
    return is_p


def is_proto(letters: Any) -> bool:
    """True if the receiving transport is one of LETTERS (u udp, t tcp, l tls, s sctp, w ws,
    W wss)."""
    p = cur.ctx.rcv.proto
    return any(PROTO_LETTERS.get(c) == p for c in _to_str(letters))


def is_IPv4() -> bool:
    """True if received over IPv4."""
    return cur.ctx.rcv.af == 4


def is_IPv6() -> bool:
    """True if received over IPv6."""
    return cur.ctx.rcv.af == 6


def is_src_port(port: Any) -> bool:
    """True if the source port is PORT."""
    return cur.ctx.rcv.src_port == _to_int(port)


def is_dst_port(port: Any) -> bool:
    """True if the local receiving port is PORT."""
    return cur.ctx.rcv.dst_port == _to_int(port)


def setdsturi(uri: Any) -> bool:
    """Set the destination URI ($du)."""
    u = _to_str(uri)
    if not u:
        return False
    cur.ctx.dst_uri = u
    return True


def resetdsturi() -> bool:
    """Clear the destination URI ($du)."""
    cur.ctx.dst_uri = None
    return True


def isdsturiset() -> bool:
    """True if a destination URI ($du) is set."""
    return bool(cur.ctx.dst_uri)


def set_drop() -> None:
    """Mark the message to be dropped (the script continues)."""
    cur.ctx.dropped = True


def get_debug() -> int:
    """The current log level."""
    return klog.get_debug()


def route(name: Any) -> Any:
    """Run the script function NAME (KSR.route("ksr_route_relay"))."""
    return cur.engine.route(_to_str(name), cur.ctx)


# ---- logging ---------------------------------------------------------------------------------

def _make_log(level: int, name: str) -> Callable[[Any], None]:
    def log_at(msg: Any) -> None:
        if level <= klog.get_debug():
            _log.log(klog.py_level(level), "%s", _to_str(msg))
    log_at.__name__ = name
    log_at.__doc__ = f"Log MSG at level {name} (add the newline yourself)."
    return log_at


def log(level: Any, msg: Any) -> None:
    """Log MSG at LEVEL ("dbg", "info", "notice", "warn", "err", "crit")."""
    lv = LOG_LEVELS.get(_to_str(level).lower().removeprefix("l_"), klog.L_ERR)
    if lv <= klog.get_debug():
        _log.log(klog.py_level(lv), "%s", _to_str(msg))


# ---- KSR.pv ----------------------------------------------------------------------------------

def _pv(name: Any) -> Any:
    try:
        return cached_pv(_to_str(name), cur.registry)
    except PvError as e:
        _log.error("KSR.pv: bad pseudo-variable %r: %s", name, e)
        return None


def pv_get(name: Any) -> Any:
    """Value of the PV (str or int), None for $null."""
    spec = _pv(name)
    return None if spec is None else spec.get(cur.ctx)


def pv_gete(name: Any) -> Any:
    """Value of the PV, "" for $null."""
    v = pv_get(name)
    return "" if v is None else v


def pv_getw(name: Any) -> Any:
    """Value of the PV, "<null>" for $null."""
    v = pv_get(name)
    return NULL_TEXT if v is None else v


def pv_geti(name: Any) -> int:
    """Integer value of the PV, 0 for $null or a non-numeric string."""
    v = pv_get(name)
    if isinstance(v, int):
        return v
    try:
        return int(v) if v is not None else 0
    except ValueError:
        return 0


def pv_getvn(name: Any, default: Any) -> Any:
    """Value of the PV, DEFAULT (an int) for $null."""
    v = pv_get(name)
    return _to_int(default) if v is None else v


def pv_getvs(name: Any, default: Any) -> Any:
    """Value of the PV, DEFAULT (a string) for $null."""
    v = pv_get(name)
    return _to_str(default) if v is None else v


def _pv_set(name: Any, value: Any) -> int:
    spec = _pv(name)
    if spec is None:
        return -1
    try:
        spec.set(cur.ctx, value)
    except (PvError, ValueError) as e:
        _log.error("KSR.pv: cannot set %s: %s", name, e)
        return -1
    return 1


def pv_sets(name: Any, value: Any) -> int:
    """Assign the string VALUE to a writable PV. 1 / -1."""
    return _pv_set(name, _to_str(value))


def pv_seti(name: Any, value: Any) -> int:
    """Assign the integer VALUE to a writable PV. 1 / -1."""
    return _pv_set(name, _to_int(value))


def pv_unset(name: Any) -> int:
    """Set the PV to $null (delete an AVP, reset $du...). 1 / -1."""
    return _pv_set(name, None)


def pv_is_null(name: Any) -> bool:
    """True if the PV is $null."""
    return pv_get(name) is None


# ---- KSR.hdr ---------------------------------------------------------------------------------

def _hdr_line(txt: Any) -> str | None:
    text = _to_str(txt)
    if ":" not in text:
        _log.error("KSR.hdr: not a header line: %r", text)
        return None
    return text


def _edit(op: Callable[[], None]) -> int:
    try:
        op()
    except ValueError as e:
        _log.error("KSR.hdr: %s", e)
        return -1
    return 1


def hdr_append(txt: Any) -> int:
    """Append header line(s) TXT (with name and trailing CRLF) after the last header."""
    line = _hdr_line(txt)
    return -1 if line is None else _edit(lambda: cur.ctx.msg.add_header(line))


def hdr_insert(txt: Any) -> int:
    """Insert header line(s) TXT before the first header."""
    line = _hdr_line(txt)
    return -1 if line is None else _edit(lambda: cur.ctx.msg.add_header(line, first=True))


def hdr_append_after(txt: Any, hname: Any) -> int:
    """Add TXT after the first header named HNAME; -1 if there is none."""
    line = _hdr_line(txt)
    h = cur.ctx.msg.header(_to_str(hname))
    if line is None or h is None:
        return -1
    return _edit(lambda: cur.ctx.msg.add_header(line, after=h))


def hdr_insert_before(txt: Any, hname: Any) -> int:
    """Add TXT before the first header named HNAME; -1 if there is none."""
    line = _hdr_line(txt)
    h = cur.ctx.msg.header(_to_str(hname))
    if line is None or h is None:
        return -1
    return _edit(lambda: cur.ctx.msg.add_header(line, before=h))


def hdr_remove(hname: Any) -> int:
    """Remove every header named HNAME: 1, or -1 if there was none."""
    msg = cur.ctx.msg
    hs = msg.header_all(_to_str(hname))
    for h in hs:
        msg.remove_header(h)
    return 1 if hs else -1


def hdr_rmappend(hrm: Any, txt: Any) -> int:
    """Remove headers named HRM, then append TXT."""
    hdr_remove(hrm)
    return hdr_append(txt)


def hdr_rminsert(hrm: Any, txt: Any) -> int:
    """Remove headers named HRM, then insert TXT first."""
    hdr_remove(hrm)
    return hdr_insert(txt)


def hdr_is_present(hname: Any) -> int:
    """1 if a header named HNAME is present, else -1."""
    return 1 if cur.ctx.msg.header(_to_str(hname)) is not None else -1


def hdr_append_to_reply(txt: Any) -> int:
    """Queue header line(s) TXT for the next local reply."""
    lines = [ln for ln in _to_str(txt).replace("\r\n", "\n").split("\n") if ln.strip()]
    if not lines:
        return -1
    cur.ctx.reply_lumps.extend(lines)
    return 1


def hdr_get_idx(hname: Any, idx: Any) -> str | None:
    """Body of the IDX-th header named HNAME (negative counts from the end), None if absent."""
    hs = cur.ctx.msg.header_all(_to_str(hname))
    i = _to_int(idx)
    try:
        return hs[i].value
    except IndexError:
        return None


def hdr_get(hname: Any) -> str | None:
    """Body of the first header named HNAME, None if absent."""
    h = cur.ctx.msg.header(_to_str(hname))
    return None if h is None else h.value


def hdr_gete(hname: Any) -> str:
    """Body of the first header named HNAME, "" if absent."""
    v = hdr_get(hname)
    return "" if v is None else v


def hdr_getw(hname: Any) -> str:
    """Body of the first header named HNAME, "<null>" if absent."""
    v = hdr_get(hname)
    return NULL_TEXT if v is None else v


def hdr_gete_idx(hname: Any, idx: Any) -> str:
    """hdr.get_idx, "" if absent."""
    v = hdr_get_idx(hname, idx)
    return "" if v is None else v


def hdr_getw_idx(hname: Any, idx: Any) -> str:
    """hdr.get_idx, "<null>" if absent."""
    v = hdr_get_idx(hname, idx)
    return NULL_TEXT if v is None else v


def hdr_match_content(hname: Any, op: Any, val: Any, idx: Any) -> int:
    """Compare the body of header HNAME (IDX: "a" any, "f" first, "l" last) with VAL using
    OP: "eq", "ne", "starts", "has". 1 if it matches, else -1."""
    hs = cur.ctx.msg.header_all(_to_str(hname))
    which = _to_str(idx)
    if which == "f":
        hs = hs[:1]
    elif which == "l":
        hs = hs[-1:]
    v, o = _to_str(val), _to_str(op)
    tests = {"eq": lambda s: s == v, "ne": lambda s: s != v,
             "starts": lambda s: s.startswith(v), "has": lambda s: v in s}
    t = tests.get(o)
    if t is None:
        _log.error("KSR.hdr.match_content: unknown operator %r", o)
        return -1
    return 1 if any(t(h.value) for h in hs) else -1


# ---- KSR.x ------------------------------------------------------------------------------------

def x_exit() -> None:
    """Stop the script (native `exit`)."""
    raise ScriptExit()


def x_drop() -> None:
    """Drop the message and stop the script (native `drop`)."""
    raise ScriptExit(drop=True)


def x_modf(name: Any, *args: Any) -> Any:
    """Call native function NAME with string arguments (also functions without a KEMI
    export); cfg fixups apply, so PVs in the arguments are expanded."""
    return call_native(_to_str(name), *args)


def add_core(tree: KsrTree, registry: Any) -> None:
    """Add the non-cfg core functions, KSR.pv, KSR.hdr and KSR.x to TREE."""
    c = tree.core
    fn: Callable[..., Any]
    for m in IS_METHODS:
        c[f"is_{m}"] = _make_is(m)
    for p in ("udp", "tcp", "tls", "sctp", "ws", "wss"):
        c[f"is_{p.upper()}"] = _make_is_proto(p)
    c["is_WSX"] = lambda: cur.ctx.rcv.proto in ("ws", "wss")
    for fn in (is_method, is_method_in, setbflag, resetbflag, isbflagset, setbiflag,
               resetbiflag, isbiflagset, setsflag, resetsflag, issflagset, is_myself,
               is_myself_ruri, is_myself_duri, is_myself_nhuri, is_myself_furi,
               is_myself_turi, is_myself_srcip, is_proto, is_IPv4, is_IPv6, is_src_port,
               is_dst_port, setdsturi, resetdsturi, isdsturiset, set_drop, get_debug, route,
               log):
        c[fn.__name__] = fn
    for name, level in (("dbg", klog.L_DBG), ("info", klog.L_INFO),
                        ("notice", klog.L_NOTICE), ("warn", klog.L_WARN),
                        ("err", klog.L_ERR), ("crit", klog.L_CRIT)):
        c[name] = _make_log(level, name)
    for fn in (pv_get, pv_gete, pv_getw, pv_geti, pv_getvn, pv_getvs, pv_sets, pv_seti,
               pv_unset, pv_is_null):
        tree.pv[fn.__name__.removeprefix("pv_")] = fn
    for fn in (hdr_append, hdr_insert, hdr_append_after, hdr_insert_before, hdr_remove,
               hdr_rmappend, hdr_rminsert, hdr_is_present, hdr_append_to_reply, hdr_get,
               hdr_gete, hdr_getw, hdr_get_idx, hdr_gete_idx, hdr_getw_idx,
               hdr_match_content):
        tree.hdr[fn.__name__.removeprefix("hdr_")] = fn
    tree.x.update(exit=x_exit, drop=x_drop, modf=x_modf)
