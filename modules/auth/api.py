"""The digest authentication engine shared by auth's own functions and its backends (auth_db):
credentials lookup, nonce checks, response verification, challenges, identity checks
(Kamailio auth api.c, challenge.c, auth_mod.c).

Runs in: SIP workers. Shared state: the nonce secret (set in the master before fork, so every
worker verifies every other worker's nonces) and, when one_time_nonce/nonce_count are on, the
shm table of nid.py. Per message (the AUTH slot): the header that authenticated (for
consume_credentials) and whether the next challenge says stale=true.
"""
from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sipcore.errors import ParseError
from sipcore.msg import HdrType
from sipcore.msg.digest import DigestCredentials, parse_digest
from sipcore.route.ctx import MsgSlot, RouteCtx

from . import nid, rfc2617
from . import nonce as nc

log = logging.getLogger(__name__)

# Kamailio auth_cfg_result_t
AUTH_OK = 1
AUTH_DROP = 0
AUTH_ERROR = -1
AUTH_INVALID_PASSWORD = -2
AUTH_USER_UNKNOWN = -3
AUTH_STALE_NONCE = -4
AUTH_NO_CREDENTIALS = -5
AUTH_NONCE_REUSED = -6
AUTH_USER_MISMATCH = -8

# challenge flags (www_challenge & co)
CHF_QOP_AUTH = 1
CHF_QOP_AUTH_INT = 2
CHF_NO_500 = 4
CHF_STALE = 16

# auth_check / pv_auth_check flags
CHECK_ID = 1
CHECK_SKIP_FWD = 2
_SKIP_FWD_METHODS = frozenset(("INVITE", "BYE", "PRACK", "UPDATE", "MESSAGE"))

WWW = int(HdrType["AUTHORIZATION"])
PROXY = int(HdrType["PROXYAUTH"])


@dataclass
class Settings:
    """auth's parameters as the engine uses them (frozen after mod_init)."""

    secret: bytes = b""
    nonce_expire: int = 300
    max_drift: int = 3
    qop: str = ""
    algorithm: str = "MD5"
    realm_prefix: str = ""
    checks_register: int = 0
    checks_no_dlg: int = 0
    checks_in_dlg: int = 0
    nonce_count: bool = False
    one_time_nonce: bool = False
    force_stateless_reply: bool = False
    add_authinfo_hdr: bool = False
    sl: Any = None              # sl's API when sl is loaded (replies through sl)


S = Settings()


@dataclass(slots=True)
class AuthMsg:
    """auth's part of one message."""

    cred_hdr: Any = None        # the credentials header that authenticated the request
    stale: bool = False         # the nonce was stale: the next challenge says stale=true

    def copy(self) -> "AuthMsg":
        return AuthMsg(self.cred_hdr, self.stale)


AUTH: MsgSlot[AuthMsg] = MsgSlot("auth", AuthMsg)


@dataclass
class PreAuth:
    """Credentials that passed the pre-checks, ready for the password comparison."""

    creds: DigestCredentials
    header: Any                      # sipcore.msg Header carrying them
    alg: str                         # "MD5" | "SHA-256"
    sess: bool
    nid: int


def now() -> int:
    return int(time.time())


def strip_realm(realm: str) -> str:
    """realm_prefix: 'sip.' turns 'sip.example.com' into 'example.com' (Kamailio)."""
    p = S.realm_prefix
    if p and realm.startswith(p) and len(realm) > len(p):
        return realm[len(p):]
    return realm


def default_realm(ctx: RouteCtx) -> str:
    """Realm for an empty realm argument: To domain for REGISTER, From domain otherwise."""
    msg = ctx.msg
    na = msg.to if msg.method == "REGISTER" else msg.from_
    try:
        return na.parsed_uri.host or ""
    except ParseError:
        return ""


def hf_for_method(ctx: RouteCtx) -> int:
    """Authorization for REGISTER (and PUBLISH for $au), Proxy-Authorization otherwise."""
    return WWW if ctx.msg.method == "REGISTER" else PROXY


# ---- credentials ---------------------------------------------------------------------------

def find_credentials(ctx: RouteCtx, realm: str, hftype: int
                     ) -> tuple[int, Any | None, DigestCredentials | None]:
    """(rc, header, creds): rc 1 found, -5 no credentials for REALM, -1 malformed."""
    found_any = False
    for h in ctx.msg.header_all(hftype):
        found_any = True
        try:
            if h.parsed is None:
                h.parsed = parse_digest(h.value)
        except ParseError as exc:
            log.error("auth: malformed credentials in %s: %s", h.name, exc)
            return AUTH_ERROR, None, None
        creds = cast(DigestCredentials, h.parsed)
        if creds.is_digest and creds.realm == realm:
            return 1, h, creds
    if found_any:
        log.debug('auth: no credentials for realm "%s"', realm)
    return AUTH_NO_CREDENTIALS, None, None


def _check_data(ctx: RouteCtx) -> bytes | None:
    """The message fields auth_checks_* bind to the nonce (None when no check applies)."""
    msg = ctx.msg
    if msg.method == "REGISTER":
        mask = S.checks_register
    elif msg.to_tag:
        mask = S.checks_in_dlg
    else:
        mask = S.checks_no_dlg
    if not mask:
        return None
    parts = [str(mask)]
    if mask & nc.CHECK_FULL_URI:
        parts.append(msg.ruri)
    if mask & nc.CHECK_CALLID:
        parts.append(msg.callid)
    if mask & nc.CHECK_FROMTAG:
        parts.append(msg.from_tag or "")
    if mask & nc.CHECK_SRC_IP:
        parts.append(ctx.rcv.src_ip)
    return "\0".join(parts).encode("utf-8", "surrogateescape")


def pre_auth(ctx: RouteCtx, realm: str, hftype: int) -> tuple[int, PreAuth | None]:
    """Find and sanity-check the credentials for REALM: (0, PreAuth) to go on with the
    password check, or (rc, None) with Kamailio's code (1 for ACK/CANCEL/PRACK)."""
    # ACK and CANCEL cannot be challenged (no reply / same CSeq as the INVITE), nor PRACK:
    # Kamailio accepts them as authenticated
    if ctx.msg.method in ("ACK", "CANCEL", "PRACK"):
        return AUTH_OK, None
    if not realm:
        log.error("auth: empty realm")
        return AUTH_ERROR, None
    rc, hdr, creds = find_credentials(ctx, realm, hftype)
    if creds is None:
        return rc, None
    if not creds.username or creds.nonce is None or creds.response is None \
            or creds.uri is None:
        log.error("auth: credentials without username, nonce, uri or response")
        return AUTH_ERROR, None
    try:
        alg, sess = rfc2617.split_algorithm(creds.algorithm)
    except rfc2617.UnsupportedAlgorithm as exc:
        log.error("auth: %s", exc)
        return AUTH_ERROR, None
    if creds.qop is not None:
        if creds.qop not in ("auth", "auth-int") or not creds.nc or creds.cnonce is None:
            log.error('auth: bad qop "%s" or missing nc/cnonce', creds.qop)
            return AUTH_ERROR, None
    elif sess:
        log.error("auth: -sess algorithm without qop")
        return AUTH_ERROR, None
    status, info = nc.check_nonce(S.secret, creds.nonce, now(), max_drift=S.max_drift,
                                  checks=_check_data(ctx))
    if status is nc.NonceStatus.BAD:
        log.debug("auth: invalid nonce value received")
        return AUTH_ERROR, None
    if status is nc.NonceStatus.STALE:
        AUTH.of(ctx).stale = True
        return AUTH_STALE_NONCE, None
    assert info is not None
    return 0, PreAuth(creds, hdr, alg, sess, info.nid)


def post_auth(ctx: RouteCtx, pa: PreAuth, ha1: str, method: str | None = None) -> int:
    """Compare the response with the one computed from HA1 (user:realm:password hash, already
    computed with pa.alg); then replay checks. 1, -2 or -6."""
    creds = pa.creds
    if pa.sess:
        ha1 = rfc2617.calc_ha1_sess(pa.alg, ha1, creds.nonce or "", creds.cnonce or "")
    expected = rfc2617.calc_response(
        pa.alg, ha1.lower(), creds.nonce or "", method or ctx.msg.method, creds.uri or "",
        qop=creds.qop, nc=creds.nc, cnonce=creds.cnonce,
        body=ctx.msg.body if creds.qop == "auth-int" else b"")
    given = (creds.response or "").lower()
    if len(given) != len(expected):
        log.debug("auth: response of the wrong length")
        return AUTH_ERROR
    if not hmac.compare_digest(expected, given):
        return AUTH_INVALID_PASSWORD
    rc = _replay_check(ctx, pa)
    if rc != AUTH_OK:
        return rc
    AUTH.of(ctx).cred_hdr = pa.header
    if S.add_authinfo_hdr and creds.qop is not None:
        ctx.reply_lumps.append(_authinfo_header(ctx, pa, ha1))
    return AUTH_OK


def _authinfo_header(ctx: RouteCtx, pa: PreAuth, ha1: str) -> str:
    """RFC 2617 3.2.3 mutual authentication: rspauth is the response digest with
    A2 = ":" digest-uri (the reply body is not known yet, so auth-int hashes an empty one);
    nextnonce is the current nonce, or a fresh one with one_time_nonce (as in Kamailio)."""
    c = pa.creds
    nextnonce = c.nonce
    if S.one_time_nonce:
        nextnonce = nc.make_nonce(S.secret, now(), S.nonce_expire, nid.new_nid(),
                                  _check_data(ctx))
    rspauth = rfc2617.calc_response(pa.alg, ha1.lower(), c.nonce or "", "", c.uri or "",
                                    qop=c.qop, nc=c.nc, cnonce=c.cnonce)
    return (f"Authentication-Info: nextnonce=\"{nextnonce}\", qop={c.qop}, "
            f"rspauth=\"{rspauth}\", "
            f"cnonce=\"{c.cnonce}\", nc={c.nc}")


def _replay_check(ctx: RouteCtx, pa: PreAuth) -> int:
    if not nid.enabled() or not pa.nid:
        return AUTH_OK
    ttl = float(S.nonce_expire + S.max_drift)
    creds = pa.creds
    if S.nonce_count and creds.qop is not None:
        try:
            count = int(creds.nc or "", 16)
        except ValueError:
            return AUTH_ERROR
        if not nid.nc_check_and_set(pa.nid, count, ttl):
            AUTH.of(ctx).stale = True
            return AUTH_NONCE_REUSED
        return AUTH_OK
    if S.one_time_nonce and not nid.otn_use(pa.nid, ttl):
        AUTH.of(ctx).stale = True
        return AUTH_NONCE_REUSED
    return AUTH_OK


def authenticate(ctx: RouteCtx, realm: str, hftype: int,
                 get_ha1: Callable[[PreAuth], tuple[int, str | None]],
                 method: str | None = None) -> int:
    """pre_auth, then get_ha1(pa) -> (1, ha1) | (rc<0, None), then post_auth."""
    rc, pa = pre_auth(ctx, strip_realm(realm), hftype)
    if pa is None:
        return rc
    rc, ha1 = get_ha1(pa)
    if ha1 is None:
        return rc
    return post_auth(ctx, pa, ha1, method)


def password_ha1(pa: PreAuth, password: str, is_ha1: bool) -> str:
    """HA1 for a plaintext password (username as sent, realm of the credentials)."""
    if is_ha1:
        return password
    return rfc2617.calc_ha1(pa.alg, pa.creds.username or "", pa.creds.realm or "", password)


# ---- identity checks (auth_check flags 1/2, pv_auth_check checks) --------------------------

def check_identity(ctx: RouteCtx, flags: int, use_domain: bool) -> int:
    """After a successful authentication (Kamailio auth_check / pv_auth_check with flag 1):
    the auth username's user part must be the To user (REGISTER, PUBLISH) or the From user
    (others; flag 2 skips this for INVITE, BYE, PRACK, UPDATE, MESSAGE); for REGISTER and
    PUBLISH the From user must equal the To user (and, with USE_DOMAIN, the From host the To
    host), and for PUBLISH also the R-URI user (and host). 1, -8 mismatch, -1 bad URI."""

    if not flags & CHECK_ID:
        return AUTH_OK
    st = AUTH.peek(ctx)
    hdr = st.cred_hdr if st is not None else None
    if hdr is None:
        return AUTH_ERROR
    user = (hdr.parsed.username or "").partition("@")[0]
    msg = ctx.msg
    reg_or_pub = msg.method in ("REGISTER", "PUBLISH")
    try:
        furi = msg.from_.parsed_uri
        turi = msg.to.parsed_uri if reg_or_pub else furi
        ruri = msg.parsed_ruri if msg.method == "PUBLISH" else None
    except ParseError as exc:
        log.error("auth: identity check: bad URI: %s", exc)
        return AUTH_ERROR
    if not (flags & CHECK_SKIP_FWD and msg.method in _SKIP_FWD_METHODS) \
            and (turi.user or "") != user:
        log.debug("auth: auth username %s differs from the From/To user", user)
        return AUTH_USER_MISMATCH
    others = [turi] if reg_or_pub else []
    if ruri is not None:
        others.append(ruri)
    for other in others:
        if (furi.user or "") != (other.user or "") or \
                (use_domain and (furi.host or "") != (other.host or "")):
            log.debug("auth: From user/domain differs from To or R-URI")
            return AUTH_USER_MISMATCH
    return AUTH_OK


# ---- challenges ----------------------------------------------------------------------------

def _qop_for(flags: int) -> str:
    if flags & CHF_QOP_AUTH_INT:
        return "auth-int"
    if flags & CHF_QOP_AUTH:
        return "auth"
    return S.qop


def challenge_value(ctx: RouteCtx, realm: str, flags: int, stale: bool = False,
                    qop: str | None = None) -> str:
    """`Digest realm="...", nonce="..."[, stale=true][, qop="..."], algorithm=...`."""
    from sipcore.msg.params import quote

    realm = strip_realm(realm or default_realm(ctx))
    # a random nid makes every nonce unique (and is the replay-tracking key when enabled)
    value = nc.make_nonce(S.secret, now(), S.nonce_expire, nid.new_nid(), _check_data(ctx))
    parts = [f"Digest realm={quote(realm)}", f"nonce=\"{value}\""]
    st = AUTH.peek(ctx)
    if stale or flags & CHF_STALE or (st is not None and st.stale):
        parts.append("stale=true")
    q = _qop_for(flags) if qop is None else qop
    if q:
        parts.append(f"qop=\"{q}\"")
    parts.append(f"algorithm={S.algorithm}")
    return ", ".join(parts)


def challenge_header(ctx: RouteCtx, realm: str, flags: int, hftype: int,
                     qop: str | None = None) -> str:
    name = "WWW-Authenticate" if hftype == WWW else "Proxy-Authenticate"
    return f"{name}: {challenge_value(ctx, realm, flags, qop=qop)}"


def send_reply(ctx: RouteCtx, code: int, reason: str, headers: list[str]) -> bool:
    """Through sl (stateful when tm has a transaction; counted in sl's statistics) unless
    force_stateless_reply, else the core's stateless reply."""
    sl = S.sl
    if sl is not None:
        saved = list(ctx.reply_lumps)
        ctx.reply_lumps.extend(headers)
        try:
            if S.force_stateless_reply:
                return sl.zreply(ctx, code, reason) == 1
            return sl.freply(ctx, code, reason) == 1
        finally:
            ctx.reply_lumps[:] = saved
    from sipcore.reply import send_stateless_reply

    return send_stateless_reply(ctx, code, reason, extra_headers=headers)


def challenge(ctx: RouteCtx, realm: str, flags: int, hftype: int) -> int:
    """Send 401/407 with a fresh challenge: 1 sent, -1 error (500 sent unless flags & 4)."""
    if not ctx.msg.is_request or ctx.msg.method in ("ACK", "CANCEL"):
        log.error("auth: cannot challenge a %s", ctx.msg.method or 'reply')
        return AUTH_ERROR
    hdr = challenge_header(ctx, realm, flags, hftype)
    code, reason = (401, "Unauthorized") if hftype == WWW else \
        (407, "Proxy Authentication Required")
    if send_reply(ctx, code, reason, [hdr]):
        return AUTH_OK
    log.error("auth: cannot send %s challenge", code)
    if not flags & CHF_NO_500:
        send_reply(ctx, 500, "Internal Server Error", [])
    return AUTH_ERROR


def consume_credentials(ctx: RouteCtx) -> int:
    """Remove the header that authenticated this request: 1, or -1 when none did."""
    st = AUTH.peek(ctx)
    if st is None or st.cred_hdr is None:
        log.error("auth: consume_credentials: no authorized credentials in the request")
        return AUTH_ERROR
    ctx.msg.remove_header(st.cred_hdr)
    st.cred_hdr = None
    return AUTH_OK


def has_credentials(ctx: RouteCtx, realm: str) -> int:
    """1 when Authorization or Proxy-Authorization carries digest credentials for REALM."""
    realm = strip_realm(realm)
    for hftype in (WWW, PROXY):
        _rc, _h, creds = find_credentials(ctx, realm, hftype)
        if creds is not None:
            return AUTH_OK
    return -1


class AuthApi:
    """What auth backends bind (Kamailio auth_api_s: pre_auth, post_auth, build_challenge,
    calc_HA1, check_response)."""

    PreAuth = PreAuth
    pre_auth = staticmethod(pre_auth)
    post_auth = staticmethod(post_auth)
    authenticate = staticmethod(authenticate)
    password_ha1 = staticmethod(password_ha1)
    check_identity = staticmethod(check_identity)
    challenge = staticmethod(challenge)
    challenge_header = staticmethod(challenge_header)
    strip_realm = staticmethod(strip_realm)
    default_realm = staticmethod(default_realm)
    hf_for_method = staticmethod(hf_for_method)
    calc_ha1 = staticmethod(rfc2617.calc_ha1)
    WWW = WWW
    PROXY = PROXY


__all__ = ["AuthApi", "PreAuth", "S", "Settings", "authenticate", "challenge",
           "check_identity", "consume_credentials", "has_credentials", "post_auth", "pre_auth"]
