"""auth: digest authentication core - nonces, challenges, response checks, the `auth` API.

Runs in: the master (mod_init: secret, shm table for replay protection, its expiry timer),
SIP workers (functions), the timer process (nid sweep). Shared state: the secret (set before
fork: a nonce from any worker verifies in every other one) and, with one_time_nonce or
nonce_count, the shm table "auth:nid" (see nid.py).

Kamailio equivalent: modules/auth (auth_mod.c, api.c, challenge.c, nonce.c, nc.c,
ot_nonce.c). Return codes are Kamailio's auth_cfg_result_t (api.py). Backends (auth_db) bind
the API with bind_api("auth").
"""
from __future__ import annotations

import logging
import os

from sipcore.errors import ModuleError
from sipcore.mod import ANY_ROUTE, REQUEST_ROUTE, Fx, ModContext, Module
from sipcore.pv import PvError, PvSpec
from sipcore.route.ctx import RouteCtx

from . import api, nid, rfc2617

log = logging.getLogger(__name__)

mod = Module("auth", summary="Digest authentication: nonces, challenges, credential checks.")


def _algorithm(value: str) -> str:
    v = (value or "").strip()
    if not v:
        return ""
    name, sess = rfc2617.split_algorithm(v)
    if sess:
        raise ValueError("algorithm: use MD5 or SHA-256 (-sess variants are not advertised)")
    return name


def _qop(value: str) -> str:
    v = (value or "").strip()
    if v not in ("", "auth", "auth-int"):
        raise ValueError(f"qop must be \"auth\" or \"auth-int\", not \"{v}\"")
    return v


def _non_negative(value: int) -> int:
    if value < 0:
        raise ValueError("must not be negative")
    return value


mod.param("secret", str, None,
          doc="Nonce secret; random per start when unset. Set the same value on every node "
              "that must accept the others' nonces.")
mod.param("nonce_expire", int, 300, validator=_non_negative,
          doc="Nonce lifetime in seconds; an expired nonce gives -4 and stale=true.")
mod.param("nonce_auth_max_drift", int, 3, validator=_non_negative,
          doc="Seconds a nonce's creation time may lie in the future (clock drift).")
mod.param("qop", str, "", validator=_qop,
          doc="qop offered by challenges whose flags ask for none: \"\", \"auth\", \"auth-int\".")
mod.param("algorithm", str, "", validator=_algorithm,
          doc="Digest algorithm advertised in challenges: MD5 (default) or SHA-256 (RFC 8760). "
              "Responses are verified with the algorithm the credentials name.")
mod.param("auth_checks_register", int, 0,
          doc="Fields bound to nonces of REGISTER: 1 R-URI, 2 Call-ID, 4 From tag, 8 source IP.")
mod.param("auth_checks_no_dlg", int, 0,
          doc="Same for requests outside dialogs (no To tag).")
mod.param("auth_checks_in_dlg", int, 0,
          doc="Same for requests inside dialogs (To tag present).")
mod.param("nonce_count", int, 0,
          doc="1: track nc of qop credentials in shm; a non-increasing nc gives -6.")
mod.param("one_time_nonce", int, 0,
          doc="1: a nonce authenticates one request only (qop-less credentials with "
              "nonce_count); reuse gives -6.")
mod.param("nc_array_size", int, 1048576, validator=_non_negative,
          doc="Nonces tracked in flight for nonce_count/one_time_nonce: sizes the shm table.")
mod.param("otn_in_flight_no", int, 1048576, validator=_non_negative,
          doc="Same sizing hint for one_time_nonce (the larger of the two is used).")
mod.param("force_stateless_reply", int, 0,
          doc="1: challenges are always sent statelessly, even with a transaction.")
mod.param("add_authinfo_hdr", int, 0,
          doc="1: after a successful check of qop credentials, add Authentication-Info "
              "(qop, rspauth, cnonce, nc; RFC 2617 3.2.3) to the reply sent for the request.")
mod.param("realm_prefix", str, "",
          doc="Prefix stripped from realms (\"sip.\" turns sip.example.com into example.com).")
mod.param("use_domain", int, 0,
          doc="pv_auth_check() with checks=1 compares the URI domains with the realm too.")
mod.param("challenge_avp", str, "$avp(digest_challenge)",
          doc="AVP receiving the WWW-Authenticate header built by pv_www_authenticate flags "
              "2/4/8.")
mod.param("proxy_challenge_avp", str, "$avp(digest_challenge)",
          doc="AVP receiving the Proxy-Authenticate header built by pv_proxy_authenticate "
              "flags 2/4/8.")

mod.provides_api(api.AuthApi())


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: freeze the settings, pick the secret, create the nid table."""
    p = mod.p
    secret = p.secret
    api.S = api.Settings(
        secret=secret.encode() if secret else os.urandom(32),
        nonce_expire=int(p.nonce_expire),
        max_drift=int(p.nonce_auth_max_drift),
        qop=p.qop or "",
        algorithm=p.algorithm or "MD5",
        realm_prefix=p.realm_prefix or "",
        checks_register=int(p.auth_checks_register),
        checks_no_dlg=int(p.auth_checks_no_dlg),
        checks_in_dlg=int(p.auth_checks_in_dlg),
        nonce_count=bool(int(p.nonce_count)),
        one_time_nonce=bool(int(p.one_time_nonce)),
        force_stateless_reply=bool(int(p.force_stateless_reply)),
        add_authinfo_hdr=bool(int(p.add_authinfo_hdr)),
        sl=ctx.api_or_none("sl"),
    )
    nid.forget()
    if api.S.nonce_count or api.S.one_time_nonce:
        if ctx.shm is None:
            raise ModuleError("auth: nonce_count/one_time_nonce need shared memory")
        want = max(int(p.nc_array_size), int(p.otn_in_flight_no))
        nid.create(ctx.shm, max(64, min(want // 16, 1 << 16)))
        ctx.timers.register_timer("auth:nid-expire", nid.sweep, 10_000)


# ---- challenges -----------------------------------------------------------------------------

@mod.function("www_challenge", args=(Fx.SPVE, Fx.IGP), routes=REQUEST_ROUTE)
def ki_www_challenge(ctx: RouteCtx, realm: str, flags: int) -> int:
    """Reply 401 with WWW-Authenticate. Flags: 1 qop=auth, 2 qop=auth-int, 4 no automatic
    500 on failure, 16 stale=true. 1 sent, -1 error."""
    return api.challenge(ctx, realm, flags, api.WWW)


@mod.function("proxy_challenge", args=(Fx.SPVE, Fx.IGP), routes=REQUEST_ROUTE)
def ki_proxy_challenge(ctx: RouteCtx, realm: str, flags: int) -> int:
    """Reply 407 with Proxy-Authenticate; flags as www_challenge."""
    return api.challenge(ctx, realm, flags, api.PROXY)


@mod.function("auth_challenge", args=(Fx.SPVE, Fx.IGP), routes=REQUEST_ROUTE)
def ki_auth_challenge(ctx: RouteCtx, realm: str, flags: int) -> int:
    """www_challenge for REGISTER, proxy_challenge for other methods."""
    return api.challenge(ctx, realm, flags, api.hf_for_method(ctx))


@mod.function("auth_get_www_authenticate", args=(Fx.SPVE, Fx.IGP, Fx.PVAR), routes=ANY_ROUTE)
def ki_auth_get_www_authenticate(ctx: RouteCtx, realm: str, flags: int, dst: PvSpec) -> int:
    """Store a `WWW-Authenticate: Digest ...` header line (no CRLF) in DST: 1, -1 error."""
    try:
        dst.set(ctx, api.challenge_header(ctx, realm, flags, api.WWW))
    except PvError as exc:
        log.error("auth_get_www_authenticate: %s", exc)
        return -1
    return 1


# ---- credentials ----------------------------------------------------------------------------

@mod.function("consume_credentials", args=(), routes=REQUEST_ROUTE)
def ki_consume_credentials(ctx: RouteCtx) -> int:
    """Remove the Authorization/Proxy-Authorization header that authenticated the request."""
    return api.consume_credentials(ctx)


@mod.function("has_credentials", args=(Fx.SPVE,), routes=REQUEST_ROUTE)
def ki_has_credentials(ctx: RouteCtx, realm: str) -> int:
    """1 when the request carries digest credentials for REALM, else -1."""
    return api.has_credentials(ctx, realm)


def _pv_authenticate(ctx: RouteCtx, realm: str, passwd: str, flags: int, hftype: int,
                     method: str | None = None) -> int:
    def ha1(pa: api.PreAuth) -> tuple[int, str | None]:
        return 1, api.password_ha1(pa, passwd, bool(flags & 1))

    rc = api.authenticate(ctx, realm, hftype, ha1, method or None)
    if rc < 0 and flags & (2 | 4 | 8):
        qop = "auth-int" if flags & 8 else "auth" if flags & 4 else ""
        hdr = api.challenge_header(ctx, realm, 16 if flags & 16 else 0, hftype, qop=qop)
        _set_challenge_avp(ctx, hftype, hdr)
    return rc


def _set_challenge_avp(ctx: RouteCtx, hftype: int, hdr: str) -> None:
    from sipcore.pv import cached_pv

    name = mod.p.challenge_avp if hftype == api.WWW else mod.p.proxy_challenge_avp
    mc = mod.context
    try:
        cached_pv(name, mc.cfg.modules if mc is not None else None).set(ctx, hdr)
    except PvError as exc:
        log.error("auth: cannot store the challenge in %s: %s", name, exc)


@mod.function("pv_www_authenticate", args=(Fx.SPVE, Fx.SPVE, Fx.IGP), routes=REQUEST_ROUTE)
def ki_pv_www_authenticate(ctx: RouteCtx, realm: str, passwd: str, flags: int) -> int:
    """Check Authorization against PASSWD (flags 1: PASSWD is HA1; 2/4/8: on failure put a
    challenge without qop / qop=auth / qop=auth-int into challenge_avp; 16: stale=true)."""
    return _pv_authenticate(ctx, realm, passwd, flags, api.WWW)


@mod.function("pv_www_authenticate", args=(Fx.SPVE, Fx.SPVE, Fx.IGP, Fx.SPVE),
              routes=REQUEST_ROUTE, kemi_name="pv_www_authenticate_method")
def ki_pv_www_authenticate_method(ctx: RouteCtx, realm: str, passwd: str, flags: int,
                                  method: str) -> int:
    """Same, computing the digest with METHOD instead of the request's method."""
    return _pv_authenticate(ctx, realm, passwd, flags, api.WWW, method)


@mod.function("pv_proxy_authenticate", args=(Fx.SPVE, Fx.SPVE, Fx.IGP), routes=REQUEST_ROUTE)
def ki_pv_proxy_authenticate(ctx: RouteCtx, realm: str, passwd: str, flags: int) -> int:
    """Check Proxy-Authorization against PASSWD; flags as pv_www_authenticate."""
    return _pv_authenticate(ctx, realm, passwd, flags, api.PROXY)


@mod.function("pv_auth_check", args=(Fx.SPVE, Fx.SPVE, Fx.IGP, Fx.IGP), routes=REQUEST_ROUTE)
def ki_pv_auth_check(ctx: RouteCtx, realm: str, passwd: str, flags: int, checks: int) -> int:
    """pv_www_authenticate for REGISTER, pv_proxy_authenticate otherwise; checks 1: the
    To user (REGISTER, PUBLISH) or From user (others) must be the auth user, From must equal
    To (REGISTER, PUBLISH; hosts too with use_domain) and the R-URI (PUBLISH): -8 if not."""
    rc = _pv_authenticate(ctx, realm, passwd, flags, api.hf_for_method(ctx))
    if rc == api.AUTH_OK and checks & api.CHECK_ID:
        return api.check_identity(ctx, checks, bool(int(mod.p.use_domain)))
    return rc


__all__ = ["mod"]
