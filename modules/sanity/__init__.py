"""sanity: request sanity checks (R-URI, required headers, CSeq, Content-Length, Expires,
Proxy-Require, URIs, digest credentials, duplicate tags, first Via).

Runs in: SIP workers. Shared state: none (the pending reply of a failed check, for
sanity_reply() with noreply=1, is kept in the message's RouteCtx).
Kamailio equivalent: modules/sanity. Return codes as Kamailio's w_sanity_check(): 1 passed;
on failure 0 (stop the script) with autodrop=1, else -1. A failed check replies through sl's
API unless noreply=1 or the message is an ACK or a reply.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

from sipcore.errors import ParseError
from sipcore.mod import ONREPLY_ROUTE, REQUEST_ROUTE, Fx, ModContext, Module
from sipcore.route.ctx import MsgSlot, RouteCtx

log = logging.getLogger(__name__)

mod = Module("sanity", summary="Sanity checks of received requests.", depends=("sl",))

# check bits (msg_checks)
RURI_SIP_VERSION = 1
RURI_SCHEME = 2
REQUIRED_HEADERS = 4
VIA_SIP_VERSION = 8
VIA_PROTOCOL = 16
CSEQ_METHOD = 32
CSEQ_VALUE = 64
CL = 128
EXPIRES_VALUE = 256
PROXY_REQUIRE = 512
PARSE_URIS = 1024
CHECK_DIGEST = 2048
CHECK_DUPTAGS = 4096
CHECK_AUTHORIZATION = 8192
VIA1_HEADER = 16384
MAX_CHECKS = 32768

# uri_checks bits
URI_RURI = 1
URI_FROM = 2
URI_TO = 4
URI_CONTACT = 8
URI_MAX_CHECKS = 16

DEFAULT_CHECKS = (RURI_SIP_VERSION | RURI_SCHEME | REQUIRED_HEADERS | CSEQ_METHOD | CSEQ_VALUE
                  | CL | EXPIRES_VALUE | PROXY_REQUIRE | CHECK_DIGEST)       # 3047
DEFAULT_URI_CHECKS = URI_RURI | URI_FROM | URI_TO                           # 7


def _range(name: str, hi: int) -> Callable[[int], int]:
    def check(v: int) -> int:
        if not 1 <= v < hi:
            raise ValueError(f"sanity parameter {name} must be in 1..{hi - 1}, got {v}")
        return v
    return check


mod.param("default_checks", int, DEFAULT_CHECKS, validator=_range("default_checks", MAX_CHECKS),
          doc="Checks run by sanity_check() without arguments (sum of check bits).")
mod.param("uri_checks", int, DEFAULT_URI_CHECKS, validator=_range("uri_checks", URI_MAX_CHECKS),
          doc="URIs checked by the parse_uris check (1 R-URI, 2 From, 4 To, 8 Contact).")
mod.param("proxy_require", str, "",
          doc="Comma-separated extensions this proxy supports (Proxy-Require check).")
mod.param("autodrop", int, 1,
          doc="1: a failed check stops the script (function returns 0); 0: returns -1.")
mod.param("noreply", int, 0,
          doc="1: do not send the error reply; sanity_reply() sends it later.")


class _Failed(Exception):
    """A check failed; CODE/REASON is the reply (None: fail without replying)."""

    def __init__(self, code: Optional[int] = None, reason: str = "",
                 headers: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.headers = headers


@dataclass
class PendingReply:
    code: int
    reason: str
    headers: tuple[str, ...] = ()


# ---- the checks (each raises _Failed) --------------------------------------------------------

def check_ruri_sip_version(msg: Any) -> None:
    v = msg.version
    if v and v.upper() != "SIP/2.0":
        raise _Failed(505, "Version Not Supported (R-URI)")


def check_ruri_scheme(msg: Any) -> None:
    try:
        u = msg.parsed_ruri
    except ParseError:
        raise _Failed(400, "Bad Request URI") from None
    if u.scheme not in ("sip", "sips", "tel", "tels"):
        raise _Failed(416, "Unsupported URI Scheme in Request URI")


def check_required_headers(msg: Any) -> None:
    from sipcore.msg import HdrType

    for t in (HdrType.FROM, HdrType.TO, HdrType.CALLID, HdrType.CSEQ, HdrType.VIA):
        if msg.header(t) is None:
            raise _Failed(None, f"missing {t.name} header")   # no Via may mean no reply path
    for t, name in ((HdrType.FROM, "From"), (HdrType.TO, "To"), (HdrType.CALLID, "Call-Id"),
                    (HdrType.CSEQ, "CSeq")):
        if len(msg.header_all(t)) > 1:
            raise _Failed(400, f"Duplicate {name} Header")


def _cseq_parts(msg: Any) -> tuple[str, str]:
    from sipcore.msg import HdrType

    h = msg.header(HdrType.CSEQ)
    if h is None:
        raise _Failed(None, "missing CSeq header")
    num, _, method = h.value.strip().partition(" ")
    return num.strip(), method.strip()


def check_cseq_method(msg: Any) -> None:
    _num, method = _cseq_parts(msg)
    if not method:
        raise _Failed(400, "Missing method in CSeq header")
    if msg.is_request and method != msg.method:
        raise _Failed(400, "CSeq method does not match request method")


def valid_uint(text: str) -> bool:
    """Kamailio str2valid_uint(): 1-10 digits, fitting in 32 bits."""
    return 0 < len(text) <= 10 and text.isascii() and text.isdigit() and int(text) < 2 ** 32


def check_cseq_value(msg: Any) -> None:
    num, _method = _cseq_parts(msg)
    if not num:
        raise _Failed(400, "Missing number in CSeq header")
    if not valid_uint(num):
        raise _Failed(400, "CSeq number is illegal")


def check_cl(msg: Any) -> None:
    from sipcore.msg import HdrType

    h = msg.header(HdrType.CONTENTLENGTH)
    if h is None:
        return
    v = h.value.strip()
    if not v.isdigit() or int(v) != len(msg.buf) - msg.body_offset:
        raise _Failed(400, "Content-Length mis-match")


def check_expires_value(msg: Any) -> None:
    from sipcore.msg import HdrType

    h = msg.header(HdrType.EXPIRES)
    if h is None:
        return
    v = h.value.strip()
    if not v:
        raise _Failed(400, "Missing number in Expires header")
    if not valid_uint(v):
        raise _Failed(400, "Expires value is illegal")


def supported_extensions() -> list[str]:
    return [x.strip() for x in mod.p.proxy_require.split(",") if x.strip()]


def check_proxy_require(msg: Any) -> None:
    from sipcore.msg import HdrType

    supported = supported_extensions()
    for h in msg.header_all(HdrType.PROXYREQUIRE):
        for ext in (x.strip() for x in h.value.split(",")):
            if ext and ext not in supported:
                raise _Failed(420, "Bad Extension", (f"Unsupported: {ext}",))


def check_parse_uris(msg: Any, uri_checks: int) -> None:
    from sipcore.msg import HdrType

    if uri_checks & URI_RURI and msg.is_request:
        try:
            msg.parsed_ruri
        except ParseError:
            raise _Failed(400, "Bad Request URI") from None
    for bit, t, name in ((URI_FROM, HdrType.FROM, "From"), (URI_TO, HdrType.TO, "To")):
        if not uri_checks & bit:
            continue
        if msg.header(t) is None:
            raise _Failed(400, f"Missing {name} Header")
        try:
            na = msg.from_ if t == HdrType.FROM else msg.to
        except ParseError:
            raise _Failed(400, f"Bad {name} header" if name == "From" else "Bad To URI") \
                from None
        try:
            na.parsed_uri
        except ParseError:
            raise _Failed(400, f"Bad {name} URI") from None
    if uri_checks & URI_CONTACT and msg.header(HdrType.CONTACT) is not None:
        try:
            cl = msg.contacts
        except ParseError:
            raise _Failed(400, "Bad Contact Header") from None
        if cl.contacts:
            try:
                cl.contacts[0].parsed_uri
            except ParseError:
                raise _Failed(400, "Bad Contact URI") from None


NOT_APPLICABLE = "n/a"


def _digest_only(msg: Any) -> Optional[str]:
    """None: all credentials are well-formed digest; NOT_APPLICABLE: a non-digest scheme;
    raises _Failed (no reply) for malformed digest credentials."""
    from sipcore.msg import HdrType

    for t in (HdrType.AUTHORIZATION, HdrType.PROXYAUTH):
        hs = msg.header_all(t)
        if not hs:
            continue
        if any(h.value.split(None, 1)[0].lower() != "digest" for h in hs if h.value):
            return NOT_APPLICABLE          # Kamailio parse_credentials() == 1: not digest
        try:
            creds = msg.auth_credentials(t)
        except ParseError:
            raise _Failed(None, "cannot parse credentials") from None
        for c in creds:
            if not c.is_digest:
                return NOT_APPLICABLE
            for field in ("username", "realm", "nonce", "uri", "response"):
                if not getattr(c, field, None):
                    raise _Failed(None, f"digest credentials without {field}")
            if c.qop and (not c.cnonce or not c.nc):
                raise _Failed(None, "digest credentials with qop need cnonce and nc")
    return None


def check_digest(msg: Any) -> None:
    if _digest_only(msg) == NOT_APPLICABLE:
        raise _Failed(None, "not a digest authorization")


def check_authorization(msg: Any) -> None:
    _digest_only(msg)        # a non-digest scheme passes this check


def check_duptags(msg: Any) -> None:
    try:
        nas = (msg.from_, msg.to)
    except ParseError:
        raise _Failed(None, "cannot parse From/To") from None
    for na in nas:
        if sum(1 for k, _ in na.params if k.lower() == "tag") > 1:
            raise _Failed(None, "duplicated tag parameter")


def check_via1(msg: Any) -> None:
    try:
        via = msg.via1
    except ParseError:
        raise _Failed(None, "cannot parse the first Via") from None
    if via is None or not via.host:
        raise _Failed(None, "first Via missing or without host")


# ---- driver ----------------------------------------------------------------------------------

def run_checks(msg: Any, msg_checks: int, uri_checks: int) -> None:
    """Run the selected checks in Kamailio's order; raises _Failed at the first failure."""
    req = msg.is_request
    if msg_checks & RURI_SIP_VERSION and req:
        check_ruri_sip_version(msg)
    if msg_checks & RURI_SCHEME and req:
        check_ruri_scheme(msg)
    if msg_checks & REQUIRED_HEADERS:
        check_required_headers(msg)
    if msg_checks & VIA1_HEADER:
        check_via1(msg)
    # VIA_SIP_VERSION and VIA_PROTOCOL: disabled in Kamailio (the Via parser already checks)
    if msg_checks & CSEQ_METHOD:
        check_cseq_method(msg)
    if msg_checks & CSEQ_VALUE:
        check_cseq_value(msg)
    if msg_checks & CL:
        check_cl(msg)
    if msg_checks & EXPIRES_VALUE:
        check_expires_value(msg)
    if msg_checks & PROXY_REQUIRE:
        check_proxy_require(msg)
    if msg_checks & PARSE_URIS:
        check_parse_uris(msg, uri_checks)
    if msg_checks & CHECK_DIGEST:
        check_digest(msg)
    if msg_checks & CHECK_AUTHORIZATION:
        check_authorization(msg)
    if msg_checks & CHECK_DUPTAGS:
        check_duptags(msg)


#: sl's API, bound in mod_init (Kamailio sanity binds the SL API too)
_sl: Any = None


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Master: bind sl (loaded, as `depends` makes sure)."""
    global _sl
    _sl = ctx.bind_api("sl")


def _send(ctx: RouteCtx, code: int, reason: str, headers: tuple[str, ...]) -> bool:
    """Reply through sl (counted in sl's statistics). Extra headers go to the reply lumps as
    Kamailio's add_lump_rpl() does. Without mod_init (unit tests) the core reply path is used."""
    ctx.reply_lumps.extend(headers)
    if _sl is not None:
        return _sl.zreply(ctx, code, reason) > 0
    from sipcore.reply import send_stateless_reply

    try:
        return send_stateless_reply(ctx, code, reason)
    except ParseError as exc:       # the request is too broken to build a reply to it
        log.warning("sanity: cannot build the %s reply: %s", code, exc)
        return False


def _can_reply(ctx: RouteCtx) -> bool:
    return ctx.msg.is_request and ctx.msg.method != "ACK"


@dataclass(slots=True)
class SanityMsg:
    """sanity's part of one message (noreply=1): the reply of the last failed check, for
    sanity_reply(); failed with reply None: the check sends no reply."""

    reply: Optional[PendingReply] = None
    failed: bool = False

    def copy(self) -> "SanityMsg":
        return SanityMsg(self.reply, self.failed)


SANITY: MsgSlot[SanityMsg] = MsgSlot("sanity", SanityMsg)


def sanity_check(ctx: RouteCtx, msg_checks: int, uri_checks: int) -> int:
    """1 passed, 0 failed (Kamailio SANITY_CHECK_FAILED); the reply is sent or kept."""
    st = SANITY.of(ctx)
    st.reply, st.failed = None, False
    try:
        run_checks(ctx.msg, msg_checks, uri_checks)
    except _Failed as f:
        log.debug("sanity: check failed: %s %s", f.code or '', f.reason)
        if f.code is not None and _can_reply(ctx):
            if mod.p.noreply:
                st.reply, st.failed = PendingReply(f.code, f.reason, f.headers), True
            elif not _send(ctx, f.code, f.reason, f.headers):
                log.warning("sanity: failed to send %s reply", f.code)
        elif mod.p.noreply:
            st.failed = True            # failed without a reply to send
        return 0
    return 1


def _wrap(ctx: RouteCtx, msg_checks: int, uri_checks: int) -> int:
    if not 1 <= msg_checks < MAX_CHECKS:
        log.error("sanity_check: msg_checks %s outside 1..%s", msg_checks, MAX_CHECKS - 1)
        return -1
    if not 1 <= uri_checks < URI_MAX_CHECKS:
        log.error("sanity_check: uri_checks %s outside 1..%s", uri_checks, URI_MAX_CHECKS - 1)
        return -1
    rc = sanity_check(ctx, msg_checks, uri_checks)
    if rc == 0 and not mod.p.autodrop:
        return -1
    return rc


@mod.function("sanity_check", args=(), routes=REQUEST_ROUTE | ONREPLY_ROUTE)
def ki_sanity_check(ctx: RouteCtx) -> int:
    """Run default_checks/uri_checks. 1 passed; failed: 0 (autodrop=1) or -1."""
    return _wrap(ctx, mod.p.default_checks, mod.p.uri_checks)


@mod.function("sanity_check", args=(Fx.IGP,), routes=REQUEST_ROUTE | ONREPLY_ROUTE)
def ki_sanity_check_msg(ctx: RouteCtx, msg_checks: int) -> int:
    """Run MSG_CHECKS (sum of check bits) with the default uri_checks."""
    return _wrap(ctx, msg_checks, mod.p.uri_checks)


@mod.function("sanity_check", args=(Fx.IGP, Fx.IGP), routes=REQUEST_ROUTE | ONREPLY_ROUTE)
def ki_sanity_check_msg_uri(ctx: RouteCtx, msg_checks: int, uri_checks: int) -> int:
    """Run MSG_CHECKS, checking the URIs selected by URI_CHECKS for bit 1024."""
    return _wrap(ctx, msg_checks, uri_checks)


@mod.function("sanity_reply", args=(), routes=REQUEST_ROUTE | ONREPLY_ROUTE)
def ki_sanity_reply(ctx: RouteCtx) -> int:
    """With noreply=1: send the reply of the last failed check (500 'Server Sanity Failure'
    when none is recorded). 1 (also when nothing is to be sent) / -1 send failure."""
    if not _can_reply(ctx) or not mod.p.noreply:
        return 1
    st = SANITY.peek(ctx)
    if st is not None and st.failed and st.reply is None:
        return 1                        # the failed check sends no reply (e.g. missing Via)
    pending = st.reply if st is not None and st.reply is not None \
        else PendingReply(500, "Server Sanity Failure")
    return 1 if _send(ctx, pending.code, pending.reason, pending.headers) else -1


@dataclass
class SanityApi:
    """For other modules (Kamailio sanity_api_t)."""

    def check(self, ctx: RouteCtx, msg_checks: int, uri_checks: int) -> int:
        return sanity_check(ctx, msg_checks, uri_checks)

    def check_defaults(self, ctx: RouteCtx) -> int:
        return sanity_check(ctx, mod.p.default_checks, mod.p.uri_checks)


mod.provides_api(SanityApi())
