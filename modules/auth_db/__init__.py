"""auth_db: digest authentication against the `subscriber` table (or one like it).

Runs in: the master (mod_init: binds auth, checks the `version` row of every table named in
the config, then disposes its engine before fork), SIP workers (functions; one engine per
process, opened in child_init). Shared state: none here (auth keeps the nonce state).

Kamailio equivalent: modules/auth_db (authdb_mod.c, authorize.c). Return codes are auth's
(1 ok, -1 error, -2 invalid password, -3 user unknown, -4 stale nonce, -5 no credentials,
-6 nonce reused, -8 user mismatch).
"""
from __future__ import annotations

import logging
from typing import Any

from sipcore import db
from sipcore.errors import ModuleError, ParseError
from sipcore.mod import ANY_ROUTE, REQUEST_ROUTE, Custom, Fx, ModContext, Module
from sipcore.proc import ranks
from sipcore.route.ctx import RouteCtx

from . import authdb

log = logging.getLogger(__name__)

mod = Module("auth_db", summary="Digest authentication with credentials from a database.",
             depends=("auth",))

# table names seen at compile time: their version rows are checked in mod_init
TABLES_SEEN: set[str] = set()


def _table_fixup(name: str) -> str:
    n = authdb.table_name(name)
    TABLES_SEEN.add(n)
    return n


TABLE = Custom(_table_fixup, dynamic=True, name="subscriber table")


def _db_url(value: str) -> str:
    db.sqlalchemy_url(value)            # DbUrlError (a ValueError) on a bad URL
    return value


def _column(value: str) -> str:
    v = value.strip()
    if not v or not v.replace("_", "").isalnum():
        raise ValueError(f"bad column name \"{value}\"")
    return v


def _load_credentials(value: str) -> str:
    authdb.parse_load_credentials(value)
    return value


mod.param("db_url", str, "mysql://kamailioro:kamailioro@localhost/kamailio", validator=_db_url,
          doc="Database with the subscriber table (Kamailio or SQLAlchemy URL).")
mod.param("user_column", str, "username", validator=_column, doc="Column with the user name.")
mod.param("domain_column", str, "domain", validator=_column, doc="Column with the domain.")
mod.param("password_column", str, "ha1", validator=_column,
          doc="Column with HA1 = H(user:realm:password), or the plaintext password when "
              "calculate_ha1 is 1 (then usually \"password\").")
mod.param("password_column_2", str, "ha1b", validator=_column,
          doc="Column with HA1 computed over user@domain, used when the credentials' username "
              "contains '@' and calculate_ha1 is 0.")
mod.param("calculate_ha1", int, 0,
          doc="1: password_column holds plaintext passwords and HA1 is computed (with the "
              "algorithm of the credentials: MD5 or SHA-256).")
mod.param("use_domain", int, 0,
          doc="1: match the domain column too (domain of the auth username, else the realm).")
mod.param("load_credentials", str, "", validator=_load_credentials,
          doc="\"$avp(name)=column;column2\": columns loaded into AVPs after a successful "
              "authentication (a bare column gives an AVP of its own name).")
mod.param("version_table", int, 1,
          doc="1: check at startup that the `version` row of each table is 7 (Kamailio 5.6).")
mod.param("force_generate_avps", int, 0,
          doc="1: load the credential AVPs even when the password check fails.")

_auth: Any = None            # auth's AuthApi (bind_api in mod_init, inherited by the children)
_lookup: authdb.Lookup | None = None
_subs_lookups: dict[bool, authdb.Lookup] = {}      # is_subscriber, by its "use domain" flag


def _make_lookup() -> authdb.Lookup:
    p = mod.p
    cols = authdb.Columns(p.user_column, p.domain_column, p.password_column,
                          p.password_column_2)
    return authdb.Lookup(p.db_url, cols, authdb.parse_load_credentials(p.load_credentials),
                         bool(int(p.use_domain)))


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: bind auth, check table versions, close the connection again."""
    global _auth, _lookup
    _auth = ctx.bind_api("auth")
    _lookup = _make_lookup()
    for by_domain in (False, True):
        _subs_lookups[by_domain] = authdb.Lookup(_lookup.url, _lookup.cols, _lookup.creds,
                                                 by_domain)
    if int(mod.p.version_table) and TABLES_SEEN:
        try:
            for name in sorted(TABLES_SEEN):
                db.check_version(mod.p.db_url, name, authdb.SUBSCRIBER_VERSION)
        except db.DbError as exc:
            raise ModuleError(f"auth_db: {exc}") from None
        finally:
            db.dispose_engine(mod.p.db_url)


@mod.on_child_init
def child_init(ctx: ModContext, rank: int) -> None:
    """Every child: its own engine (created, not connected; connections open on first use)."""
    if rank not in (ranks.PROC_INIT, ranks.PROC_MAIN):
        db.get_engine(mod.p.db_url)


# ---- the HA1 lookup -------------------------------------------------------------------------

def _authenticate(ctx: RouteCtx, realm: str, tname: str, hftype: int,
                  method: str | None = None) -> int:
    assert _auth is not None and _lookup is not None, "auth_db used before mod_init"
    lk = _lookup
    calc = bool(int(mod.p.calculate_ha1))
    force_avps = bool(int(mod.p.force_generate_avps))
    row_seen: dict[str, Any] = {}

    def get_ha1(pa: Any) -> tuple[int, str | None]:
        whole = pa.creds.username or ""
        user, at, dom = whole.partition("@")
        domain = dom if at else (pa.creds.realm or "")
        col = lk.cols.password if calc or not at else lk.cols.password_2
        try:
            row = lk.fetch(tname, user, domain, col)
        except db.DbError:
            return -1, None
        if row is None:
            return -3, None
        row_seen.update(row)
        stored = row.get(col)
        if stored is None:
            return -3, None
        stored = str(stored)
        if calc:
            return 1, _auth.calc_ha1(pa.alg, whole, pa.creds.realm or "", stored)
        return 1, stored

    rc = _auth.authenticate(ctx, realm, hftype, get_ha1, method)
    if row_seen and (rc == 1 or force_avps):
        lk.load_avps(ctx, row_seen)
    return rc


@mod.function("www_authorize", args=(Fx.SPVE, TABLE), routes=REQUEST_ROUTE)
def ki_www_authorize(ctx: RouteCtx, realm: str, table: str) -> int:
    """Check the Authorization credentials for REALM against TABLE."""
    return _authenticate(ctx, realm, table, _api_www())


@mod.function("www_authenticate", args=(Fx.SPVE, TABLE), routes=REQUEST_ROUTE)
def ki_www_authenticate(ctx: RouteCtx, realm: str, table: str) -> int:
    """Same as www_authorize."""
    return _authenticate(ctx, realm, table, _api_www())


@mod.function("www_authenticate", args=(Fx.SPVE, TABLE, Fx.SPVE), routes=REQUEST_ROUTE,
              kemi_name="www_authenticate_method")
def ki_www_authenticate_method(ctx: RouteCtx, realm: str, table: str, method: str) -> int:
    """Same, computing the digest with METHOD (e.g. for a request built elsewhere)."""
    return _authenticate(ctx, realm, table, _api_www(), method or None)


@mod.function("proxy_authorize", args=(Fx.SPVE, TABLE), routes=REQUEST_ROUTE)
def ki_proxy_authorize(ctx: RouteCtx, realm: str, table: str) -> int:
    """Check the Proxy-Authorization credentials for REALM against TABLE."""
    return _authenticate(ctx, realm, table, _api_proxy())


@mod.function("proxy_authenticate", args=(Fx.SPVE, TABLE), routes=REQUEST_ROUTE)
def ki_proxy_authenticate(ctx: RouteCtx, realm: str, table: str) -> int:
    """Same as proxy_authorize."""
    return _authenticate(ctx, realm, table, _api_proxy())


@mod.function("auth_check", args=(Fx.SPVE, TABLE, Fx.IGP), routes=REQUEST_ROUTE)
def ki_auth_check(ctx: RouteCtx, realm: str, table: str, flags: int) -> int:
    """www_authorize for REGISTER, proxy_authorize otherwise (ACK and CANCEL: 1). Flags 1:
    the auth user must be the To user (REGISTER, PUBLISH) or the From user (others), From
    must equal To (REGISTER, PUBLISH; hosts too with use_domain) and the R-URI (PUBLISH);
    flags 2 with 1: the auth user is not compared for INVITE, BYE, PRACK, UPDATE, MESSAGE.
    -8 on a mismatch."""
    assert _auth is not None
    if ctx.msg.method in ("ACK", "CANCEL"):
        return 1
    if not table:
        log.error("auth_check: empty table")
        return -1
    rc = _authenticate(ctx, realm, table, _auth.hf_for_method(ctx))
    if rc == 1 and flags & 1:
        return _auth.check_identity(ctx, flags, bool(int(mod.p.use_domain)))
    return rc


@mod.function("is_subscriber", args=(Fx.SPVE, TABLE, Fx.IGP), routes=ANY_ROUTE)
def ki_is_subscriber(ctx: RouteCtx, uri: str, table: str, flags: int) -> int:
    """1 when the user of URI (flags 1: and its domain) is in TABLE; flags 2: do not load the
    load_credentials AVPs. -1 not found or error."""
    from sipcore.msg import parse_uri

    assert _lookup is not None
    try:
        u = parse_uri(uri.strip())
    except ParseError as exc:
        log.error('is_subscriber: bad URI "%s": %s', uri, exc)
        return -1
    lk = _subs_lookups[bool(flags & 1)]
    try:
        row = lk.fetch(table, u.user or "", (u.host or "").lower(), None)
    except db.DbError:
        return -1
    if row is None:
        return -1
    if not flags & 2:
        lk.load_avps(ctx, row)
    return 1


def _api_www() -> int:
    assert _auth is not None
    return int(_auth.WWW)


def _api_proxy() -> int:
    assert _auth is not None
    return int(_auth.PROXY)


__all__ = ["mod"]
