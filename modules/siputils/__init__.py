"""siputils: SIP helper functions - OPTIONS replies, URI and number checks, contact
encodings, RPID, GRUU, P-Charging-Vector.

Runs in: SIP workers (functions, $pcv) and the master (fixups, parameter checks).
Shared state: none. Kamailio equivalent: modules/siputils. Local replies go through sl's API.
"""
from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Optional

from sipcore.errors import ParseError
from sipcore.mod import (
    ANY_ROUTE,
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    Custom,
    Fx,
    ModContext,
    Module,
)
from sipcore.route.ctx import MsgSlot, RouteCtx

from . import contact_enc

log = logging.getLogger(__name__)

mod = Module("siputils", summary="SIP helpers: options_reply, URI/number checks, contact "
             "encoding, RPID, GRUU, P-Charging-Vector.", depends=("sl",))

#: sl's API, bound in mod_init (options_reply() answers through it, as Kamailio's siputils)
_sl: Any = None


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Master: bind sl (loaded, as `depends` makes sure)."""
    global _sl
    _sl = ctx.bind_api("sl")


def _sep(v: str) -> str:
    if len(v) != 1:
        raise ValueError(f"contact_flds_separator must be one character, got \"{v}\"")
    return v


mod.param("options_accept", str, "*/*", doc="Accept header value of options_reply().")
mod.param("options_accept_encoding", str, "", doc="Accept-Encoding value of options_reply().")
mod.param("options_accept_language", str, "en",
          doc="Accept-Language value of options_reply().")
mod.param("options_support", str, "", doc="Supported header value of options_reply().")
mod.param("contact_flds_separator", str, "*", validator=_sep,
          doc="Separator of the fields encode_contact() packs into the user part.")
mod.param("rpid_prefix", str, "", doc="Text put before the RPID value by append_rpid_hf().")
mod.param("rpid_suffix", str, ";party=calling;id-type=subscriber;screen=yes",
          doc="Text put after the RPID value by append_rpid_hf().")
mod.param("rpid_avp", str, "$avp(s:rpid)",
          doc="PV holding the RPID value (filled e.g. by auth_db load_credentials).")

#: methods announced by options_reply() in Allow
ALLOW_LIST = ("INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, "
              "UPDATE, PRACK, REGISTER, PUBLISH")

RFL = REQUEST_ROUTE | FAILURE_ROUTE | LOCAL_ROUTE
RO = REQUEST_ROUTE | ONREPLY_ROUTE


def _reply(ctx: RouteCtx, code: int, reason: str, headers: list[str]) -> int:
    """send_reply() through sl (stateful when tm has a transaction); HEADERS go to the reply
    lumps like Kamailio's add_lump_rpl(). Without mod_init (unit tests) the core path is used."""
    ctx.reply_lumps.extend(headers)
    if _sl is not None:
        return _sl.freply(ctx, code, reason)
    from sipcore.reply import send_stateless_reply

    return 1 if send_stateless_reply(ctx, code, reason) else -1


# ---- OPTIONS ---------------------------------------------------------------------------------

@mod.function("options_reply", args=(), routes=REQUEST_ROUTE)
def ki_options_reply(ctx: RouteCtx) -> int:
    """Answer an OPTIONS for this server (R-URI without user) with 200 and Allow, Accept,
    Accept-Encoding, Accept-Language, Supported. 1 sent; -1 not an OPTIONS to the server or
    the reply could not be sent (a 500 is tried when building fails)."""
    msg = ctx.msg
    if not msg.is_request or msg.method != "OPTIONS":
        log.error("options_reply: called for a non-OPTIONS request")
        return -1
    try:
        if msg.parsed_ruri.user:
            log.error("options_reply: the R-URI has a user part (not for this server)")
            return -1
    except ParseError as exc:
        log.error("options_reply: bad R-URI: %s", exc)
        return -1
    p = mod.p
    headers = [f"Allow: {ALLOW_LIST}", f"Accept: {p.options_accept}",
               f"Accept-Encoding: {p.options_accept_encoding}",
               f"Accept-Language: {p.options_accept_language}",
               f"Supported: {p.options_support}"]
    try:
        return _reply(ctx, 200, "OK", headers)
    except (ParseError, ValueError) as exc:
        log.error("options_reply: cannot build the reply: %s", exc)
        return _reply(ctx, 500, "Server internal error", [])


# ---- identity / dialog -----------------------------------------------------------------------

@mod.function("is_user", args=(Fx.SPVE,), routes=REQUEST_ROUTE)
def ki_is_user(ctx: RouteCtx, user: str) -> int:
    """The username of the (first) digest credentials equals USER: 1, else -1."""
    from sipcore.msg import HdrType

    for t in (HdrType.AUTHORIZATION, HdrType.PROXYAUTH):
        try:
            creds = ctx.msg.auth_credentials(t)
        except ParseError:
            continue
        for c in creds:
            if c.username is not None:
                return 1 if c.username == user else -1
    return -1


@mod.function("has_totag", args=(), routes=ANY_ROUTE)
def ki_has_totag(ctx: RouteCtx) -> int:
    """The To header has a tag (in-dialog request): 1, else -1."""
    try:
        return 1 if ctx.msg.to_tag else -1
    except ParseError:
        return -1


# ---- R-URI parameters ------------------------------------------------------------------------

def _ruri(ctx: RouteCtx) -> Any:
    try:
        return ctx.msg.parsed_ruri
    except (ParseError, ValueError) as exc:
        log.error("siputils: bad R-URI: %s", exc)
        return None


def _ruri_param(ctx: RouteCtx, name: str) -> tuple[bool, Optional[str]]:
    """(present, value) of R-URI param NAME; value None when present without '='."""
    u = _ruri(ctx)
    if u is None:
        return False, None
    for k, v in u.params:
        if k.lower() == name.lower():
            return True, v
    return False, None


@mod.function("uri_param", args=(Fx.SPVE,), routes=REQUEST_ROUTE)
def ki_uri_param(ctx: RouteCtx, name: str) -> int:
    """The R-URI has parameter NAME without a value: 1, else -1."""
    present, value = _ruri_param(ctx, name)
    return 1 if present and value is None else -1


@mod.function("uri_param", args=(Fx.SPVE, Fx.SPVE), routes=REQUEST_ROUTE)
def ki_uri_param_value(ctx: RouteCtx, name: str, value: str) -> int:
    """The R-URI has parameter NAME with VALUE: 1, else -1."""
    present, v = _ruri_param(ctx, name)
    return 1 if present and v is not None and v == value else -1


@mod.function("uri_param_any", args=(Fx.SPVE,), routes=REQUEST_ROUTE)
def ki_uri_param_any(ctx: RouteCtx, name: str) -> int:
    """The R-URI has parameter NAME (with or without value): 1, else -1."""
    return 1 if _ruri_param(ctx, name)[0] else -1


def _rebuild_ruri(ctx: RouteCtx, change: Any) -> int:
    from sipcore.route.ruri import UriParts

    u = _ruri(ctx)
    if u is None or not u.is_sip:
        return -1
    parts = UriParts.from_uri(u)
    if change(parts) is False:
        return -1
    return _set_ruri(ctx, parts.text())


def _set_ruri(ctx: RouteCtx, uri: str) -> int:
    try:
        ctx.msg.set_ruri(uri)
    except ValueError as exc:
        log.error("siputils: cannot set the R-URI to %r: %s", uri, exc)
        return -1
    return 1


@mod.function("add_uri_param", args=(Fx.SPVE,), routes=REQUEST_ROUTE)
def ki_add_uri_param(ctx: RouteCtx, param: str) -> int:
    """Append ';PARAM' ('name' or 'name=value') to the R-URI. 1 / -1."""
    param = param.strip().lstrip(";")
    if not param:
        return -1
    name, eq, value = param.partition("=")

    def change(p: Any) -> None:
        p.params.append((name, value if eq else None))
    return _rebuild_ruri(ctx, change)


@mod.function("get_uri_param", args=(Fx.SPVE, Fx.PVAR), routes=REQUEST_ROUTE)
def ki_get_uri_param(ctx: RouteCtx, name: str, dst: Any) -> int:
    """Store the value of R-URI parameter NAME in DST ('' without value). 1 / -1 absent."""
    present, value = _ruri_param(ctx, name)
    if not present:
        return -1
    dst.set(ctx, value or "")
    return 1


@mod.function("uri_param_rm", args=(Fx.SPVE,), routes=REQUEST_ROUTE)
def ki_uri_param_rm(ctx: RouteCtx, name: str) -> int:
    """Remove parameter NAME from the R-URI. 1 / -1 when it is not there."""
    def change(p: Any) -> bool:
        kept = [(n, v) for n, v in p.params if n.lower() != name.lower()]
        if len(kept) == len(p.params):
            return False
        p.params = kept
        return True
    return _rebuild_ruri(ctx, change)


# ---- numbers and URIs ------------------------------------------------------------------------

_VISUAL_SEPARATORS = str.maketrans("", "", "-.()")
_E164 = re.compile(r"^\+[0-9]{2,15}$")


def tel_to_sip(uri: str, hostpart: str) -> Optional[str]:
    """tel:+1-201-555-0123;x=y -> sip:+12015550123;x=y@HOSTPART;user=phone (lower-cased,
    visual separators removed from the number only); None when URI is not a tel URI."""
    if len(uri) < 4 or uri[:4].lower() != "tel:":
        return None
    number, sep, params = uri[4:].partition(";")
    user = number.translate(_VISUAL_SEPARATORS).lower()
    if sep:
        user += ";" + params.lower()
    return f"sip:{user}@{hostpart};user=phone"


@mod.function("tel2sip", args=(Fx.SPVE, Fx.SPVE, Fx.PVAR), routes=ANY_ROUTE)
def ki_tel2sip(ctx: RouteCtx, uri: str, hostpart: str, dst: Any) -> int:
    """Convert tel URI URI to a SIP URI at HOSTPART, stored in DST. 1 converted,
    2 not a tel URI (nothing done), -1 error."""
    if not hostpart:
        return -1
    out = tel_to_sip(uri.strip(), hostpart.strip())
    if out is None:
        return 2
    dst.set(ctx, out)
    return 1


def is_e164_text(s: str) -> bool:
    return bool(_E164.match(s))


@mod.function("is_e164", args=(Fx.SPVE,), routes=RFL)
def ki_is_e164(ctx: RouteCtx, value: str) -> int:
    """VALUE is '+' followed by 2-15 digits: 1, else -1."""
    return 1 if is_e164_text(value) else -1


def _uri_user(text: str) -> Optional[str]:
    from sipcore.msg import parse_uri

    try:
        return parse_uri(text.strip()).user
    except ParseError:
        return None


@mod.function("is_uri_user_e164", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_is_uri_user_e164(ctx: RouteCtx, uri: str) -> int:
    """The user part of URI is an E.164 number: 1; not: -1; URI unparseable: -2."""
    user = _uri_user(uri)
    if user is None:
        return -2
    return 1 if is_e164_text(user) else -1


@mod.function("is_uri", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_is_uri(ctx: RouteCtx, value: str) -> int:
    """VALUE parses as a URI: 1, else -1."""
    from sipcore.msg import parse_uri

    try:
        parse_uri(value)
    except ParseError:
        return -1
    return 1


@mod.function("is_tel_number", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_is_tel_number(ctx: RouteCtx, value: str) -> int:
    """VALUE is an optional '+' then one or more digits: 1; else -1; empty: -2."""
    if not value:
        return -2
    return 1 if re.fullmatch(r"\+?[0-9]+", value) else -1


@mod.function("is_numeric", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_is_numeric(ctx: RouteCtx, value: str) -> int:
    """VALUE is one or more digits: 1; else -1; empty: -2."""
    if not value:
        return -2
    return 1 if re.fullmatch(r"[0-9]+", value) else -1


@mod.function("is_alphanum", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_is_alphanum(ctx: RouteCtx, value: str) -> int:
    """VALUE is ASCII letters and digits only: 1; else -1; empty: -2."""
    if not value:
        return -2
    return 1 if re.fullmatch(r"[A-Za-z0-9]+", value) else -1


@mod.function("is_alphanumex", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_is_alphanumex(ctx: RouteCtx, value: str, eset: str) -> int:
    """VALUE is letters, digits and characters of ESET only: 1; else -1; empty: -2."""
    if not value:
        return -2
    ok = all(c.isascii() and (c.isalnum() or c in eset) for c in value)
    return 1 if ok else -1


# ---- comparisons -----------------------------------------------------------------------------

@mod.function("cmp_uri", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_cmp_uri(ctx: RouteCtx, s1: str, s2: str) -> int:
    """RFC 3261 19.1.4 URI equality: 1 equal, -1 different, -2 unparseable."""
    from sipcore.msg import parse_uri, uri_equal

    try:
        return 1 if uri_equal(parse_uri(s1.strip()), parse_uri(s2.strip())) else -1
    except ParseError:
        return -2


@mod.function("cmp_aor", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_cmp_aor(ctx: RouteCtx, s1: str, s2: str) -> int:
    """Same address of record (user case-sensitive, host case-insensitive, port with 5060 /
    5061 defaults): 1; different -1; unparseable -2."""
    from sipcore.msg import parse_uri

    try:
        a, b = parse_uri(s1.strip()), parse_uri(s2.strip())
    except ParseError:
        return -2

    def port(u: Any) -> int:
        return u.port or (5061 if u.scheme == "sips" else 5060)
    same = (a.user == b.user and a.host.lower() == b.host.lower()
            and (not a.is_sip or port(a) == port(b)))
    return 1 if same else -1


@mod.function("cmp_hdr_name", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_cmp_hdr_name(ctx: RouteCtx, s1: str, s2: str) -> int:
    """Same header name (case-insensitive, compact forms equal their long form): 1 / -1."""
    from sipcore.msg import HdrType, hdr_type_of

    n1, n2 = s1.strip(), s2.strip()
    t1, t2 = hdr_type_of(n1), hdr_type_of(n2)
    if t1 != HdrType.OTHER or t2 != HdrType.OTHER:
        return 1 if t1 == t2 else -1
    return 1 if n1.lower() == n2.lower() else -1


# ---- RPID ------------------------------------------------------------------------------------

_rpid_fmt: dict[str, Any] = {}


def _rpid_value(ctx: RouteCtx) -> Optional[str]:
    from sipcore.pv import parse_format

    spec = mod.p.rpid_avp
    if not spec:
        return None
    fmt = _rpid_fmt.get(spec)
    if fmt is None:
        fmt = _rpid_fmt[spec] = parse_format(spec)
    v = fmt.eval(ctx)
    return v if v and v != "<null>" else None


def _append_rpid(ctx: RouteCtx, prefix: str, suffix: str) -> int:
    rpid = _rpid_value(ctx)
    if rpid is None:
        log.debug("append_rpid_hf: no RPID value")
        return -1
    try:
        ctx.msg.add_header(f"Remote-Party-ID: {prefix}{rpid}{suffix}")
    except ValueError as exc:
        log.error("append_rpid_hf: %s", exc)
        return -1
    return 1


@mod.function("append_rpid_hf", args=(), routes=REQUEST_ROUTE | BRANCH_ROUTE | FAILURE_ROUTE)
def ki_append_rpid_hf(ctx: RouteCtx) -> int:
    """Add 'Remote-Party-ID: rpid_prefix + RPID + rpid_suffix'. 1 / -1 without RPID."""
    return _append_rpid(ctx, mod.p.rpid_prefix, mod.p.rpid_suffix)


@mod.function("append_rpid_hf", args=(Fx.SPVE, Fx.SPVE),
              routes=REQUEST_ROUTE | BRANCH_ROUTE | FAILURE_ROUTE)
def ki_append_rpid_hf_ps(ctx: RouteCtx, prefix: str, suffix: str) -> int:
    """append_rpid_hf() with PREFIX and SUFFIX instead of the module parameters."""
    return _append_rpid(ctx, prefix, suffix)


@mod.function("is_rpid_user_e164", args=(), routes=REQUEST_ROUTE)
def ki_is_rpid_user_e164(ctx: RouteCtx) -> int:
    """The user of the RPID URI (name-addr or plain URI) is E.164: 1, else -1."""
    from sipcore.msg import parse_nameaddr

    rpid = _rpid_value(ctx)
    if rpid is None:
        return -1
    try:
        uri = parse_nameaddr(rpid).uri
    except ParseError:
        uri = rpid
    user = _uri_user(uri)
    return 1 if user is not None and is_e164_text(user) else -1


# ---- writable URI PVs ------------------------------------------------------------------------

def _set_uri_part(ctx: RouteCtx, pv: Any, setter: Any) -> int:
    from sipcore.msg import parse_uri
    from sipcore.route.ruri import UriParts

    cur = pv.get(ctx)
    if not isinstance(cur, str) or not cur:
        return -1
    try:
        parts = UriParts.from_uri(parse_uri(cur))
    except ParseError:
        return -1
    setter(parts)
    pv.set(ctx, parts.text())
    return 1


@mod.function("set_uri_user", args=(Fx.PVAR, Fx.SPVE), routes=ANY_ROUTE)
def ki_set_uri_user(ctx: RouteCtx, pv: Any, user: str) -> int:
    """Set the user part of the URI held in the writable PV. 1 / -1."""
    return _set_uri_part(ctx, pv, lambda p: setattr(p, "user", user))


@mod.function("set_uri_host", args=(Fx.PVAR, Fx.SPVE), routes=ANY_ROUTE)
def ki_set_uri_host(ctx: RouteCtx, pv: Any, host: str) -> int:
    """Set the host part of the URI held in the writable PV. 1 / -1."""
    if not host:
        return -1
    return _set_uri_part(ctx, pv, lambda p: setattr(p, "host", host))


# ---- message kind, GRUU, Supported, first hop, Date ------------------------------------------

@mod.function("is_request", args=(), routes=ANY_ROUTE)
def ki_is_request(ctx: RouteCtx) -> int:
    """The message is a request: 1, else -1."""
    return 1 if ctx.msg.is_request else -1


@mod.function("is_reply", args=(), routes=ANY_ROUTE)
def ki_is_reply(ctx: RouteCtx) -> int:
    """The message is a reply: 1, else -1."""
    return 1 if ctx.msg.is_reply else -1


def _gruu(u: Any) -> int:
    gr = None
    for k, v in u.params:
        if k.lower() == "gr":
            gr = v
            break
    else:
        return -1
    return 1 if gr else 2


@mod.function("is_gruu", args=(), routes=ANY_ROUTE)
def ki_is_gruu(ctx: RouteCtx) -> int:
    """The R-URI is a GRUU: 1 public (gr=value), 2 temporary (gr without value), -1 not."""
    u = _ruri(ctx) if ctx.msg.is_request else None
    return -1 if u is None else _gruu(u)


@mod.function("is_gruu", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_is_gruu_uri(ctx: RouteCtx, uri: str) -> int:
    """is_gruu() for URI."""
    from sipcore.msg import parse_uri

    try:
        return _gruu(parse_uri(uri.strip()))
    except ParseError:
        return -1


SUPPORTED_OPTIONS = ("path", "100rel", "timer", "eventlist", "gruu", "outbound")


def parse_option(text: str) -> str:
    t = text.strip().lower()
    if t not in SUPPORTED_OPTIONS:
        raise ValueError(f"unknown option \"{text}\" (one of {', '.join(SUPPORTED_OPTIONS)})")
    return t


@mod.function("is_supported", args=(Custom(parse_option, name="option"),), routes=ANY_ROUTE)
def ki_is_supported(ctx: RouteCtx, option: str) -> int:
    """OPTION (path, 100rel, timer, eventlist, gruu, outbound) is in Supported: 1, else -1."""
    from sipcore.msg import HdrType

    vals = [v.strip().lower() for v in ctx.msg.header_values(HdrType.SUPPORTED)]
    return 1 if option in vals else -1


def _first_hop(ctx: RouteCtx, mode: int) -> int:
    msg = ctx.msg
    if mode == 1:
        try:
            rrs = msg.record_routes
        except ParseError:
            return -1
        if msg.is_request:
            return 1 if not rrs else -1
        if not rrs:
            return -1
        u = rrs[-1].parsed_uri
        return 1 if ctx.core.is_myself(u.host, u.port) else -1
    try:
        n = len(msg.vias)
    except ParseError:
        return -1
    return 1 if n == (1 if msg.is_request else 2) else -1


@mod.function("is_first_hop", args=(), routes=ANY_ROUTE)
def ki_is_first_hop(ctx: RouteCtx) -> int:
    """Best effort: a request with one Via (a reply with two) comes from / goes to the UA
    next to us: 1, else -1."""
    return _first_hop(ctx, 0)


@mod.function("is_first_hop", args=(Fx.IGP,), routes=ANY_ROUTE)
def ki_is_first_hop_mode(ctx: RouteCtx, mode: int) -> int:
    """is_first_hop(); MODE 1 checks Record-Route only: a request without Record-Route, or a
    reply whose last Record-Route is this server."""
    return _first_hop(ctx, mode)


@mod.function("hdr_date_check", args=(Fx.IGP,), routes=ANY_ROUTE)
def ki_hdr_date_check(ctx: RouteCtx, tdiff: int) -> int:
    """The Date header exists and is not older than TDIFF seconds: 1; missing -1;
    unparseable -2; too old -3."""
    from sipcore.msg import HdrType

    h = ctx.msg.header(HdrType.DATE)
    if h is None:
        return -1
    try:
        when = parsedate_to_datetime(h.value).timestamp()
    except (TypeError, ValueError):
        return -2
    return 1 if time.time() <= when + tdiff else -3


# ---- contact encoding ------------------------------------------------------------------------

def _contact_uri_spans(ctx: RouteCtx) -> list[tuple[int, int, str]]:
    """(start, end, uri) of every Contact URI in the received buffer."""
    from sipcore.msg import HdrType, parse_contacts

    out = []
    buf = ctx.msg.buf
    for h in ctx.msg.header_all(HdrType.CONTACT):
        value = buf[h.value_start:h.value_end].decode("latin-1")
        try:
            cl = parse_contacts(value)
        except ParseError:
            continue
        pos = 0
        for c in cl.contacts:
            i = value.find(c.uri, pos)
            if i < 0:
                continue
            out.append((h.value_start + i, h.value_start + i + len(c.uri), c.uri))
            pos = i + len(c.uri)
    return out


def _rewrite_contacts(ctx: RouteCtx, fn: Any) -> int:
    spans = _contact_uri_spans(ctx)
    n = 0
    for start, end, uri in spans:
        try:
            new = fn(uri)
        except (ParseError, ValueError) as exc:
            log.error("siputils: cannot rewrite Contact URI %s: %s", uri, exc)
            return -1
        if new is not None and new != uri:
            ctx.msg.replace_range(start, end, new.encode("utf-8"))
            n += 1
    return 1 if n else -1


@mod.function("encode_contact", args=(Fx.SPVE, Fx.SPVE), routes=RO)
def ki_encode_contact(ctx: RouteCtx, prefix: str, hostpart: str) -> int:
    """Rewrite each Contact URI to sip:PREFIX*user*host*port*transport@HOSTPART. 1 / -1."""
    sep = mod.p.contact_flds_separator
    return _rewrite_contacts(
        ctx, lambda u: contact_enc.encode_uri(u, prefix, hostpart, sep))


@mod.function("decode_contact", args=(), routes=REQUEST_ROUTE)
def ki_decode_contact(ctx: RouteCtx) -> int:
    """Decode an encode_contact() R-URI back to the original contact. 1 / -1."""
    msg = ctx.msg
    if not msg.is_request:
        return -1
    try:
        new = contact_enc.decode_uri(msg.ruri, mod.p.contact_flds_separator)
    except ParseError:
        return -1
    if new is None:
        return -1
    return _set_ruri(ctx, new)


@mod.function("decode_contact_header", args=(), routes=RO)
def ki_decode_contact_header(ctx: RouteCtx) -> int:
    """Decode encode_contact() URIs in the Contact headers. 1 / -1 when none decoded."""
    sep = mod.p.contact_flds_separator
    return _rewrite_contacts(ctx, lambda u: contact_enc.decode_uri(u, sep))


@mod.function("contact_param_encode", args=(Fx.SPVE, Fx.SPVE), routes=RO)
def ki_contact_param_encode(ctx: RouteCtx, pname: str, saddr: str) -> int:
    """Replace each Contact URI with SADDR;PNAME=<Base64URL(URI)>. 1 / -1."""
    if not pname or not saddr:
        return -1
    return _rewrite_contacts(ctx, lambda u: contact_enc.param_encode(u, pname, saddr))


@mod.function("contact_param_decode", args=(Fx.SPVE,), routes=RO)
def ki_contact_param_decode(ctx: RouteCtx, pname: str) -> int:
    """Replace each Contact URI carrying PNAME with the URI decoded from it. 1 / -1."""
    return _rewrite_contacts(ctx, lambda u: contact_enc.param_decode(u, pname))


def _decode_ruri(ctx: RouteCtx, pname: str) -> int:
    msg = ctx.msg
    if not msg.is_request:
        return -1
    try:
        new = contact_enc.param_decode(msg.ruri, pname)
    except (ParseError, ValueError) as exc:
        log.error("contact_param_decode_uri: %s", exc)
        return -1
    if not new:
        return -1
    return _set_ruri(ctx, new)


@mod.function("contact_param_decode_uri", args=(Fx.SPVE,), routes=REQUEST_ROUTE)
def ki_contact_param_decode_uri(ctx: RouteCtx, pname: str) -> int:
    """Set the R-URI to the URI encoded in its PNAME parameter. 1 / -1."""
    return _decode_ruri(ctx, pname)


@mod.function("contact_param_decode_ruri", args=(Fx.SPVE,), routes=REQUEST_ROUTE)
def ki_contact_param_decode_ruri(ctx: RouteCtx, pname: str) -> int:
    """Kamailio's name of contact_param_decode_uri()."""
    return _decode_ruri(ctx, pname)


@mod.function("contact_param_rm", args=(Fx.SPVE,), routes=RO)
def ki_contact_param_rm(ctx: RouteCtx, pname: str) -> int:
    """Remove parameter PNAME from the Contact URIs. 1 / -1 when none had it."""
    return _rewrite_contacts(ctx, lambda u: contact_enc.param_remove(u, pname))


# ---- P-Charging-Vector (RFC 7315) ------------------------------------------------------------

PCV_HDR = "P-Charging-Vector"


def parse_pcv_flags(text: str) -> str:
    t = text.strip()
    if not t or any(c not in "rgf" for c in t):
        raise ValueError(f"invalid P-Charging-Vector flags \"{text}\" (r, g, f)")
    return t


def _local_ip(ctx: RouteCtx) -> str:
    s = ctx.core.sockets[0] if ctx.core.sockets else None
    return ctx.rcv.dst_ip if s is None else (s.advertise_host or s.ip)


@mod.function("sip_p_charging_vector", args=(Custom(parse_pcv_flags, dynamic=True,
                                                    name="pcv-flags"),), routes=ANY_ROUTE)
def ki_sip_p_charging_vector(ctx: RouteCtx, flags: str) -> int:
    """r: remove P-Charging-Vector; g: add one (icid-value, icid-generated-at) when absent;
    f: replace any existing one with a generated one. 1 / -1."""
    msg = ctx.msg
    existing = msg.header_all(PCV_HDR)
    if "r" in flags or "f" in flags:
        for h in existing:
            msg.remove_header(h)
        PCV.of(ctx).value = None
        PCV.of(ctx).changed = True
    if "f" in flags or ("g" in flags and not existing):
        icid = os.urandom(16).hex().upper()
        value = f"icid-value={icid};icid-generated-at={_local_ip(ctx)}"
        msg.add_header(f"{PCV_HDR}: {value}")
        st = PCV.of(ctx)
        st.value, st.changed = value, True
    return 1


@dataclass(slots=True)
class PcvMsg:
    """siputils' part of one message: the P-Charging-Vector as sip_handle_pcv() left it
    (changed: removed or generated, not yet in the buffer)."""

    value: Optional[str] = None
    changed: bool = False

    def copy(self) -> "PcvMsg":
        return PcvMsg(self.value, self.changed)


PCV: MsgSlot[PcvMsg] = MsgSlot("siputils", PcvMsg)


def _pcv_value(ctx: RouteCtx) -> Optional[str]:
    st = PCV.peek(ctx)
    if st is not None and st.changed:
        return st.value
    h = ctx.msg.header(PCV_HDR)
    return None if h is None else h.value


def _pcv_field(ctx: RouteCtx, key: str) -> Optional[str]:
    v = _pcv_value(ctx)
    if v is None:
        return None
    if key == "all":
        return v
    names = {"value": "icid-value", "genaddr": "icid-generated-at", "orig": "orig-ioi",
             "term": "term-ioi"}
    for item in v.split(";"):
        n, _, val = item.strip().partition("=")
        if n.strip().lower() == names[key]:
            return val.strip().strip('"')
    return None


def _pcv_factory(inner: Optional[str]) -> Any:
    from sipcore.pv.spec import FuncPv

    key = (inner or "").strip().lower()
    if key not in ("all", "value", "genaddr", "orig", "term"):
        raise ValueError(f"$pcv({inner}): use all, value, genaddr, orig or term")
    return FuncPv(lambda ctx: _pcv_field(ctx, key), text=f"$pcv({key})")


mod.pv("pcv", _pcv_factory, doc="$pcv(all|value|genaddr|orig|term): P-Charging-Vector "
       "header or one of its fields (the generated one after sip_p_charging_vector()).")
