"""secfilter: block and allow lists for user agents, countries, domains, IPs, users and
destinations, plus a basic SQL-injection character check.

Runs in: the master (mod_init: lists loaded from the DB, engine disposed before fork; the
shm table), SIP workers (secf_check_* functions), the ctl process (secfilter.* RPCs, which
add entries or reload the DB for every process).
Shared state: the ShmHashTable "secfilter:lists": b"list:ACTION:TYPE" -> the entries as
UTF-8 lines, and b"stat:NAME" -> int64 counters. A worker keeps the parsed form of a list
until its bytes change (one shm read per check).

Matching: user agents and IPs match as case-insensitive prefixes ("friendly-scanner" blocks
"friendly-scanner 1.0", "10.0.0." blocks 10.0.0.0/24); countries, domains and users match
exactly (case-insensitive); from/to display names match as prefixes; destinations exactly
(dst_exact_match=1) or by prefix. An allow-list hit wins over a block-list hit.
Kamailio equivalent: modules/secfilter.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import column, select, table

from sipcore import db
from sipcore.errors import ModuleError, RpcFault
from sipcore.mod import ANY_ROUTE, REQUEST_ROUTE, Fx, ModContext, Module
from sipcore.msg import ParseError
from sipcore.route.ctx import RouteCtx
from sipcore.shm import ShmHashTable

log = logging.getLogger(__name__)

mod = Module("secfilter", summary="Block/allow lists (user agent, country, domain, IP, user, "
             "destination) and an SQL-injection check.")

mod.param("db_url", str, "", doc="Database with the lists (empty: none).")
mod.param("table_name", str, "secfilter", doc="Table of the lists.")
mod.param("action_col", str, "action", doc="Column: 0 blacklist, 1 whitelist, 2 blacklisted "
          "destination.")
mod.param("type_col", str, "type", doc="Column: 0 user agent (destination for action 2), "
          "1 country, 2 domain, 3 IP, 4 user.")
mod.param("data_col", str, "data", doc="Column with the value.")
mod.param("dst_exact_match", int, 1, doc="1: destinations must match exactly; 0: by prefix.")

BL, WL, DST = 0, 1, 2
UA, COUNTRY, DOMAIN, IP, USER = 0, 1, 2, 3, 4
TYPE_NAMES = {"ua": UA, "country": COUNTRY, "domain": DOMAIN, "ip": IP, "user": USER}
_SQLI = ("'", '"', ";", "--", "/*", "#", "%27", "%22", "%3b", "%23", "%2d%2d")

_state: dict[str, Any] = {"table": None}
_cache: dict[bytes, tuple[bytes, list[str]]] = {}


def _t() -> ShmHashTable:
    t = _state["table"]
    if t is None:
        raise ModuleError("secfilter: not initialised")
    return t


def _key(action: int, typ: int) -> bytes:
    return b"list:%d:%d" % (action, typ)


def entries(action: int, typ: int) -> list[str]:
    """The (lower-cased) entries of one list, parsed once per change."""
    key = _key(action, typ)
    raw = _t().get(key) or b""
    hit = _cache.get(key)
    if hit is not None and hit[0] == raw:
        return hit[1]
    parsed = [ln.lower() for ln in raw.decode("utf-8", "replace").split("\n") if ln]
    _cache[key] = (raw, parsed)
    return parsed


def add_entry(action: int, typ: int, value: str) -> None:
    key = _key(action, typ)
    with _t().locked(key) as b:
        old = b.get(key) or b""
        lines = old.decode("utf-8", "replace").split("\n") if old else []
        if value not in lines:
            lines.append(value)
        b.set(key, "\n".join(lines).encode())


def _count(name: str) -> None:
    _t().incr(b"stat:" + name.encode())


def _prefix(value: str, lst: list[str]) -> bool:
    v = value.lower()
    return any(v.startswith(e) for e in lst)


def _exact(value: str, lst: list[str]) -> bool:
    return value.lower() in lst


def _check(typ: int, value: str, match: Callable[[str, list[str]], bool], stat: str) -> int:
    """2 allowed, -2 blocked, 1 not listed."""
    if match(value, entries(WL, typ)):
        _count(f"whitelisted_{stat}")
        return 2
    if match(value, entries(BL, typ)):
        _count(f"blacklisted_{stat}")
        return -2
    return 1


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: the shm table, the DB lists."""
    _state["table"] = ctx.require_shm().named("secfilter:lists",
                                              lambda a: ShmHashTable.create(a, 64),
                                              ShmHashTable.attach)
    _t().clear()
    _cache.clear()
    if mod.p.db_url:
        try:
            n = load_db(str(mod.p.db_url))
        except db.DbError as exc:
            raise ModuleError(f"secfilter: cannot load {mod.p.table_name}: {exc}") from None
        log.info("secfilter: %s entries loaded", n)


def load_db(url: str) -> int:
    """Replace every list with the rows of table_name; returns the number of rows used."""
    p = mod.p
    t = table(p.table_name, column(p.action_col), column(p.type_col), column(p.data_col))

    def run() -> list[Any]:
        with db.get_engine(url).connect() as conn:
            return list(conn.execute(select(t)).all())

    try:
        rows = db.guarded(f"secfilter: load of {p.table_name}", run)
    finally:
        db.dispose_engine(url)
    lists: dict[bytes, list[str]] = {}
    n = 0
    for action, typ, data in rows:
        action, typ = int(action or 0), int(typ or 0)
        if action not in (BL, WL, DST) or not 0 <= typ <= USER or not data:
            log.warning("secfilter: ignoring row action=%s type=%s", action, typ)
            continue
        lists.setdefault(_key(action, typ), []).append(str(data))
        n += 1
    tb = _t()
    for action in (BL, WL, DST):
        for typ in range(USER + 1):
            key = _key(action, typ)
            tb.set(key, "\n".join(lists.get(key, [])).encode())
    return n


# ---- functions -------------------------------------------------------------------------------

@mod.function("secf_check_ip", args=())
def ki_secf_check_ip(ctx: RouteCtx) -> int:
    """Source IP against the IP lists: 2 allowed, 1 not listed, -2 blocked."""
    return _check(IP, ctx.rcv.src_ip, _prefix, "ip")


@mod.function("secf_check_ua", args=())
def ki_secf_check_ua(ctx: RouteCtx) -> int:
    """User-Agent against the UA lists: 2 allowed, 1 not listed (or no header), -2 blocked."""
    ua = ctx.msg.user_agent
    if not ua:
        return 1
    return _check(UA, ua, _prefix, "ua")


@mod.function("secf_check_country", args=(Fx.SPVE,))
def ki_secf_check_country(ctx: RouteCtx, country: str) -> int:
    """Country code (e.g. from geoip) against the lists: 2 allowed, 1 not listed, -2
    blocked, -1 empty code."""
    if not country:
        return -1
    return _check(COUNTRY, country, _exact, "country")


def _check_nameaddr(display: str, user: str, domain: str) -> int:
    if display and _prefix(display, entries(WL, UA)):
        return 4
    if domain and _exact(domain, entries(WL, DOMAIN)):
        return 3
    if user and _exact(user, entries(WL, USER)):
        return 2
    if user and _exact(user, entries(BL, USER)):
        _count("blacklisted_user")
        return -2
    if domain and _exact(domain, entries(BL, DOMAIN)):
        _count("blacklisted_domain")
        return -3
    if display and _prefix(display, entries(BL, UA)):
        _count("blacklisted_name")
        return -4
    return 1


def _from_to(ctx: RouteCtx, which: str) -> int:
    try:
        na = ctx.msg.from_ if which == "from" else ctx.msg.to
        uri = na.parsed_uri
    except ParseError:
        return 1
    return _check_nameaddr(na.display or "", uri.user or "", uri.host or "")


@mod.function("secf_check_from_hdr", args=())
def ki_secf_check_from_hdr(ctx: RouteCtx) -> int:
    """From display name, user and domain: 4 name allowed, 3 domain allowed, 2 user allowed,
    1 not listed, -2 user blocked, -3 domain blocked, -4 name blocked (names use the UA
    lists, as Kamailio)."""
    return _from_to(ctx, "from")


@mod.function("secf_check_to_hdr", args=())
def ki_secf_check_to_hdr(ctx: RouteCtx) -> int:
    """Same for the To header."""
    return _from_to(ctx, "to")


@mod.function("secf_check_contact_hdr", args=())
def ki_secf_check_contact_hdr(ctx: RouteCtx) -> int:
    """First Contact user and domain: 3 domain allowed, 2 user allowed, 1 not listed (or no
    Contact), -1 error, -2 user blocked, -3 domain blocked."""
    try:
        cl = ctx.msg.contacts
    except ParseError:
        return -1
    if cl.star or not cl.contacts:
        return 1
    uri = cl.contacts[0].parsed_uri
    rc = _check_nameaddr("", uri.user or "", uri.host or "")
    return -1 if rc == -4 else rc


@mod.function("secf_check_dst", args=(Fx.SPVE,), routes=REQUEST_ROUTE)
def ki_secf_check_dst(ctx: RouteCtx, number: str) -> int:
    """Destination NUMBER against the blacklisted destinations: -2 blocked, 1 otherwise."""
    lst = entries(DST, UA)
    hit = _exact(number, lst) if int(mod.p.dst_exact_match) else _prefix(number, lst)
    if hit:
        _count("blacklisted_dst")
        return -2
    return 1


def has_sqli(value: str) -> bool:
    v = value.lower()
    return any(s in v for s in _SQLI)


@mod.function("secf_check_sqli_hdr", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_secf_check_sqli_hdr(ctx: RouteCtx, value: str) -> int:
    """-1 if VALUE holds SQL-injection characters (' " ; -- /* # and their %-escapes), else 1."""
    if has_sqli(value):
        _count("sqli")
        return -1
    return 1


def _sqli_targets(ctx: RouteCtx) -> list[tuple[str, str]]:
    """(header, value) pairs checked by secf_check_sqli_all: the User-Agent, and the display
    name, user and host of From, To and the Contacts (not the raw header text, whose quotes
    and `;params` are legitimate)."""
    msg = ctx.msg
    out = [("User-Agent", msg.user_agent or "")]
    nas = []
    for name, get in (("From", lambda: msg.from_), ("To", lambda: msg.to),
                      ("Contact", lambda: msg.contacts.contacts)):
        try:
            v = get()
        except ParseError:
            continue
        nas += [(name, na) for na in (v if isinstance(v, list) else [v])]
    for name, na in nas:
        uri = na.parsed_uri
        out += [(name, na.display or ""), (name, uri.user or ""), (name, uri.host or "")]
    return out


@mod.function("secf_check_sqli_all", args=(), routes=REQUEST_ROUTE)
def ki_secf_check_sqli_all(ctx: RouteCtx) -> int:
    """Check the User-Agent and the name, user and domain of From, To and Contact: 0 (the
    message is dropped) on a hit, else 1."""
    for name, value in _sqli_targets(ctx):
        if has_sqli(value):
            _count("sqli")
            log.warning("secfilter: SQL injection characters in %s from %s", name, ctx.rcv.src_ip)
            return 0
    return 1


# ---- RPC ---------------------------------------------------------------------------------------

def _type(name: Any) -> int:
    typ = TYPE_NAMES.get(str(name).lower())
    if typ is None:
        raise RpcFault(400, f"type must be one of {', '.join(TYPE_NAMES)}")
    return typ


def rpc_reload() -> dict[str, Any]:
    """secfilter.reload: load the lists again from the database."""
    if not mod.p.db_url:
        raise RpcFault(500, "No database configured")
    try:
        load_db(str(mod.p.db_url))
    except db.DbError as exc:
        raise RpcFault(500, f"Reload failed: {exc}") from None
    return {}


def rpc_print(what: str | None = None) -> dict[str, Any]:
    """secfilter.print [ua|country|domain|user|ip|dst]: the lists."""
    names = [str(what).lower()] if what else [*TYPE_NAMES, "dst"]
    out: dict[str, Any] = {}
    for n in names:
        if n == "dst":
            out["dst"] = {"blacklisted": entries(DST, UA)}
            continue
        typ = _type(n)
        out[n] = {"blacklisted": entries(BL, typ), "whitelisted": entries(WL, typ)}
    return out


def rpc_stats() -> dict[str, int]:
    """secfilter.stats: counters of blocked and allowed checks."""
    out = {}
    for c in _t().items():
        if c.key.startswith(b"stat:"):
            out[c.key[5:].decode()] = int.from_bytes(c.value, "little", signed=True)
    return dict(sorted(out.items()))


def rpc_stats_reset() -> dict[str, Any]:
    """secfilter.stats_reset: zero the counters."""
    t = _t()
    for c in t.items():
        if c.key.startswith(b"stat:"):
            t.delete(c.key)
    return {}


def rpc_add_dst(number: Any) -> dict[str, Any]:
    """secfilter.add_dst number: block a destination."""
    add_entry(DST, UA, str(number))
    return {}


def rpc_add_bl(typ: Any, value: Any) -> dict[str, Any]:
    """secfilter.add_bl type value: block a ua|country|domain|ip|user."""
    add_entry(BL, _type(typ), str(value))
    return {}


def rpc_add_wl(typ: Any, value: Any) -> dict[str, Any]:
    """secfilter.add_wl type value: allow a ua|country|domain|ip|user."""
    add_entry(WL, _type(typ), str(value))
    return {}


mod.rpc("secfilter.reload", rpc_reload, doc="Reload the lists from the database.")
mod.rpc("secfilter.print", rpc_print, doc="Print the lists.",
        params="[ua|country|domain|user|ip|dst]")
mod.rpc("secfilter.stats", rpc_stats, doc="Counters of blocked and allowed checks.")
mod.rpc("secfilter.stats_reset", rpc_stats_reset, doc="Zero the counters.")
mod.rpc("secfilter.add_dst", rpc_add_dst, doc="Block a destination.", params="number")
mod.rpc("secfilter.add_bl", rpc_add_bl, doc="Add to a block list.", params="type value")
mod.rpc("secfilter.add_wl", rpc_add_wl, doc="Add to an allow list.", params="type value")

__all__ = ["mod"]
