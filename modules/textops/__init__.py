"""textops: text operations on the SIP message (search, replace, subst, headers, body).

Runs in: SIP workers (functions) and the master (fixups at config compile time).
Shared state: none. Kamailio equivalent: modules/textops.

Edits never rewrite `msg.buf`: they are recorded in the message's edit list (delete_range /
insert_before / add_header / remove_header / set_body) and applied once when the message is
built. As in Kamailio, the regex functions look at the *received* buffer, so they do not see
earlier edits (use textopsx msg_apply_changes() for that). Regex arguments are compiled at
config load (POSIX extended + REG_ICASE + REG_NEWLINE, approximated by Python re).
"""
from __future__ import annotations

import binascii
import logging
import re
import time
from email.utils import formatdate
from typing import Any, Optional

from sipcore.cfg.regex import compile_posix
from sipcore.errors import ParseError
from sipcore.mod import (
    ANY_ROUTE,
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    Custom,
    Fx,
    Module,
)
from sipcore.msg.sdp import SdpError, msg_sdp
from sipcore.route.ctx import RouteCtx

from . import multipart
from .msgtext import encode, finditer_nonempty, first_line_end, replace_span, search, subject
from .subst import SubstExpr, parse_subst

log = logging.getLogger(__name__)

mod = Module("textops", summary="Search, replace and substitute text; add, remove and test "
             "headers; set and filter bodies.")

RFB = REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE
RFBO = RFB | ONREPLY_ROUTE

# ---- compile-time fixups ---------------------------------------------------------------------

_TOKEN = re.compile(r"^[A-Za-z0-9!%*_+`'~.\-]+$")


def parse_hname(text: str) -> str:
    """A header name (long or compact form), checked once; a trailing ':' is tolerated."""
    name = text.strip()
    if name.endswith(":"):
        name = name[:-1].rstrip()
    if not _TOKEN.match(name):
        raise ValueError(f"invalid header name \"{text}\"")
    return name


def parse_method_list(text: str) -> frozenset[str]:
    """"INVITE|BYE|..." -> the set of upper-case method names."""
    names = [m.strip() for m in text.split("|")]
    if not names or any(not n or not _TOKEN.match(n) for n in names):
        raise ValueError(f"invalid method list \"{text}\"")
    return frozenset(n.upper() for n in names)


PRIVACY_TYPES = ("header", "session", "user", "none", "id", "history", "critical")


def parse_privacy(text: str) -> str:
    t = text.strip().lower()
    if t not in PRIVACY_TYPES:
        raise ValueError(f"bad privacy type \"{text}\" (one of {', '.join(PRIVACY_TYPES)})")
    return t


def parse_hf_flags(text: str) -> str:
    """search_hf/subst_hf flags: 'a' all (default), 'f' first, 'l' last."""
    t = text.strip() or "a"
    if t not in ("a", "f", "l"):
        raise ValueError(f"invalid flags \"{text}\" (a, f or l)")
    return t


def parse_sep(text: str) -> str:
    if len(text) != 1:
        raise ValueError(f"separator must be one character, got \"{text}\"")
    return text


def parse_regex_nl(text: str) -> "re.Pattern[str]":
    """Regex without REG_NEWLINE ('.' matches newlines, ^/$ at the ends), case-insensitive."""
    try:
        return compile_posix(text, re.I | re.S)
    except re.error as exc:
        raise ValueError(f"bad regular expression \"{text}\": {exc}") from None


def parse_match_op(text: str) -> str:
    t = text.strip().lower()
    if t not in ("eq", "ne", "in", "re"):
        raise ValueError(f"invalid operator \"{text}\" (eq, ne, in or re)")
    return t


def parse_mime(text: str) -> str:
    t = text.strip().lower()
    if "/" not in t:
        raise ValueError(f"invalid content type \"{text}\" (type/subtype expected)")
    return t


HNAME = Custom(parse_hname, dynamic=True, name="header-name")
METHODS = Custom(parse_method_list, dynamic=True, name="methods")
PRIVACY = Custom(parse_privacy, dynamic=True, name="privacy-type")
HF_FLAGS = Custom(parse_hf_flags, name="hf-flags")
SEP = Custom(parse_sep, name="separator")
SUBST = Custom(parse_subst, name="subst-expression")
REGEX_NL = Custom(parse_regex_nl, name="regex")
MATCH_OP = Custom(parse_match_op, name="match-op")
MIME = Custom(parse_mime, dynamic=True, name="mime-type")

_rx_cache: dict[str, "re.Pattern[str]"] = {}


def dyn_regex(text: str) -> Optional["re.Pattern[str]"]:
    """A regex given at run time (the *_pv variants): compiled once per distinct text."""
    rx = _rx_cache.get(text)
    if rx is None:
        try:
            rx = compile_posix(text, re.I | re.M)
        except re.error as exc:
            log.error('textops: bad regular expression "%s": %s', text, exc)
            return None
        if len(_rx_cache) > 256:
            _rx_cache.clear()
        _rx_cache[text] = rx
    return rx


# ---- search ----------------------------------------------------------------------------------

def _body_span(msg: Any) -> tuple[int, int]:
    start = msg.body_offset
    return start, start + len(msg.orig_body)


@mod.function("search", args=(Fx.REGEX,), routes=ANY_ROUTE)
def ki_search(ctx: RouteCtx, rx: Any) -> int:
    """RX found anywhere in the received message: 1, else -1."""
    return 1 if search(rx, ctx.msg.buf) else -1


@mod.function("search_body", args=(Fx.REGEX,), routes=ANY_ROUTE)
def ki_search_body(ctx: RouteCtx, rx: Any) -> int:
    """RX found in the received body: 1; no body or no match: -1."""
    body = ctx.msg.orig_body
    if not body:
        return -1
    return 1 if search(rx, body) else -1


@mod.function("search_str", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_search_str(ctx: RouteCtx, text: str, regex: str) -> int:
    """REGEX found in TEXT: 1, else -1."""
    rx = dyn_regex(regex)
    if rx is None:
        return -1
    return 1 if rx.search(text) else -1


def _select(hs: list[Any], flags: str) -> list[Any]:
    if not hs:
        return []
    if flags == "f":
        return hs[:1]
    if flags == "l":
        return hs[-1:]
    return hs


@mod.function("search_hf", args=(HNAME, Fx.REGEX, HF_FLAGS), routes=ANY_ROUTE)
def ki_search_hf(ctx: RouteCtx, hname: str, rx: Any, flags: str) -> int:
    """RX found in the value of header HNAME (a: any, f: first, l: last occurrence)."""
    for h in _select(ctx.msg.header_all(hname), flags):
        if search(rx, ctx.msg.buf[h.value_start:h.value_end]):
            return 1
    return -1


def _append_after_match(ctx: RouteCtx, rx: Any, txt: str, start: int, end: int) -> int:
    m = search(rx, ctx.msg.buf[start:end])
    if m is None:
        return -1
    ctx.msg.insert_before(start + m.end(), encode(txt))
    return 1


@mod.function("search_append", args=(Fx.REGEX, Fx.SPVE), routes=ANY_ROUTE)
def ki_search_append(ctx: RouteCtx, rx: Any, txt: str) -> int:
    """Insert TXT after the first match of RX (headers and body). 1 / -1."""
    buf = ctx.msg.buf
    return _append_after_match(ctx, rx, txt, first_line_end(buf), len(buf))


@mod.function("search_append_body", args=(Fx.REGEX, Fx.SPVE), routes=ANY_ROUTE)
def ki_search_append_body(ctx: RouteCtx, rx: Any, txt: str) -> int:
    """Insert TXT after the first match of RX in the body. 1 / -1."""
    s, e = _body_span(ctx.msg)
    if s == e:
        return -1
    return _append_after_match(ctx, rx, txt, s, e)


# ---- replace ---------------------------------------------------------------------------------

def _replace_first(ctx: RouteCtx, rx: Any, txt: str, start: int, end: int) -> int:
    m = search(rx, ctx.msg.buf[start:end])
    if m is None:
        return -1
    replace_span(ctx.msg, start + m.start(), start + m.end(), encode(txt))
    return 1


def _replace_all(ctx: RouteCtx, rx: Any, txt: str, start: int, end: int) -> int:
    new = encode(txt)
    n = 0
    for m in finditer_nonempty(rx, ctx.msg.buf[start:end]):
        replace_span(ctx.msg, start + m.start(), start + m.end(), new)
        n += 1
    return 1 if n else -1


@mod.function("replace", args=(Fx.REGEX, Fx.SPVE), routes=ANY_ROUTE)
def ki_replace(ctx: RouteCtx, rx: Any, txt: str) -> int:
    """Replace the first match of RX (after the first line) with TXT. 1 / -1."""
    buf = ctx.msg.buf
    return _replace_first(ctx, rx, txt, first_line_end(buf), len(buf))


@mod.function("replace_body", args=(Fx.REGEX, Fx.SPVE), routes=ANY_ROUTE)
def ki_replace_body(ctx: RouteCtx, rx: Any, txt: str) -> int:
    """Replace the first match of RX in the body with TXT. 1 / -1."""
    s, e = _body_span(ctx.msg)
    return -1 if s == e else _replace_first(ctx, rx, txt, s, e)


@mod.function("replace_hdrs", args=(Fx.REGEX, Fx.SPVE), routes=ANY_ROUTE)
def ki_replace_hdrs(ctx: RouteCtx, rx: Any, txt: str) -> int:
    """Replace the first match of RX in the header block with TXT. 1 / -1."""
    buf = ctx.msg.buf
    return _replace_first(ctx, rx, txt, first_line_end(buf), ctx.msg.body_offset)


@mod.function("replace_all", args=(Fx.REGEX, Fx.SPVE), routes=ANY_ROUTE)
def ki_replace_all(ctx: RouteCtx, rx: Any, txt: str) -> int:
    """Replace every match of RX (headers and body) with TXT. 1 if any, else -1."""
    buf = ctx.msg.buf
    return _replace_all(ctx, rx, txt, first_line_end(buf), len(buf))


@mod.function("replace_body_all", args=(Fx.REGEX, Fx.SPVE), routes=ANY_ROUTE)
def ki_replace_body_all(ctx: RouteCtx, rx: Any, txt: str) -> int:
    """Replace every match of RX in the body, line by line (^/$ match at line ends)."""
    s, e = _body_span(ctx.msg)
    return -1 if s == e else _replace_all(ctx, rx, txt, s, e)


@mod.function("replace_body_atonce", args=(REGEX_NL, Fx.SPVE), routes=ANY_ROUTE)
def ki_replace_body_atonce(ctx: RouteCtx, rx: Any, txt: str) -> int:
    """Replace every match of RX in the body taken as one string ('.' matches newlines)."""
    s, e = _body_span(ctx.msg)
    return -1 if s == e else _replace_all(ctx, rx, txt, s, e)


def _replace_str(ctx: RouteCtx, match: str, repl: str, mode: str, start: int, end: int) -> int:
    mode = (mode or "f").strip().lower()
    if mode not in ("f", "a") or not match:
        log.error('textops: invalid replace_str arguments (mode "%s")', mode)
        return -1
    needle, new = encode(match), encode(repl)
    buf = ctx.msg.buf
    pos, n = start, 0
    while True:
        i = buf.find(needle, pos, end)
        if i < 0:
            break
        replace_span(ctx.msg, i, i + len(needle), new)
        n += 1
        pos = i + len(needle)
        if mode == "f":
            break
    return 1 if n else -1


@mod.function("replace_str", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_replace_str(ctx: RouteCtx, match: str, repl: str, mode: str) -> int:
    """Replace plain string MATCH with REPL after the first line; mode f: first, a: all."""
    buf = ctx.msg.buf
    return _replace_str(ctx, match, repl, mode, first_line_end(buf), len(buf))


@mod.function("replace_body_str", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_replace_body_str(ctx: RouteCtx, match: str, repl: str, mode: str) -> int:
    """replace_str() limited to the body."""
    s, e = _body_span(ctx.msg)
    return -1 if s == e else _replace_str(ctx, match, repl, mode, s, e)


@mod.function("replace_hdrs_str", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_replace_hdrs_str(ctx: RouteCtx, match: str, repl: str, mode: str) -> int:
    """replace_str() limited to the headers."""
    buf = ctx.msg.buf
    return _replace_str(ctx, match, repl, mode, first_line_end(buf), ctx.msg.body_offset)


# ---- subst -----------------------------------------------------------------------------------

def subst_span(ctx: RouteCtx, se: SubstExpr, start: int, end: int) -> int:
    """Apply SE to buf[start:end] as edits. 1 when something was replaced, else -1."""
    text = ctx.msg.buf[start:end].decode("latin-1")
    ms = se.matches(text)
    for m in ms:
        replace_span(ctx.msg, start + m.start(), start + m.end(), se.replacement(m, ctx))
    return 1 if ms else -1


@mod.function("subst", args=(SUBST,), routes=ANY_ROUTE)
def ki_subst(ctx: RouteCtx, se: SubstExpr) -> int:
    """sed-like '/re/repl/flags' on headers and body (not the first line). 1 / -1."""
    buf = ctx.msg.buf
    return subst_span(ctx, se, first_line_end(buf), len(buf))


@mod.function("subst_uri", args=(SUBST,), routes=RFBO)
def ki_subst_uri(ctx: RouteCtx, se: SubstExpr) -> int:
    """Substitution on the (current) R-URI; the result becomes the new R-URI. 1 / -1."""
    msg = ctx.msg
    if not msg.is_request:
        return -1
    new = se.apply_str(msg.ruri, ctx)
    if new is None:
        return -1
    return set_ruri(ctx, new)


@mod.function("subst_user", args=(SUBST,), routes=RFBO)
def ki_subst_user(ctx: RouteCtx, se: SubstExpr) -> int:
    """Substitution on the R-URI user part (empty string when the URI has none). 1 / -1."""
    from sipcore.route.ruri import UriParts

    msg = ctx.msg
    if not msg.is_request:
        return -1
    try:
        parts = UriParts.from_uri(msg.parsed_ruri)
    except ParseError as exc:
        log.error("subst_user: bad R-URI: %s", exc)
        return -1
    new = se.apply_str(parts.user, ctx)
    if new is None:
        return -1
    parts.user = new
    return set_ruri(ctx, parts.text())


@mod.function("subst_body", args=(SUBST,), routes=ANY_ROUTE)
def ki_subst_body(ctx: RouteCtx, se: SubstExpr) -> int:
    """Substitution on the body. 1 / -1 (also -1 without a body)."""
    s, e = _body_span(ctx.msg)
    return -1 if s == e else subst_span(ctx, se, s, e)


@mod.function("subst_hf", args=(HNAME, SUBST, HF_FLAGS), routes=ANY_ROUTE)
def ki_subst_hf(ctx: RouteCtx, hname: str, se: SubstExpr, flags: str) -> int:
    """Substitution on the value of header HNAME (a: all, f: first, l: last). 1 / -1."""
    rc = -1
    for h in _select(ctx.msg.header_all(hname), flags):
        if subst_span(ctx, se, h.value_start, h.value_end) > 0:
            rc = 1
    return rc


# ---- bodies ----------------------------------------------------------------------------------

def current_ctype(ctx: RouteCtx) -> Optional[str]:
    """Content-Type of the current body (set_body() remembers the new one)."""
    from sipcore.msg import HdrType

    if ctx.body_ctype is not None:
        return ctx.body_ctype
    h = ctx.msg.header(HdrType.CONTENTTYPE)
    return h.value if h is not None else None


def set_body_ctype(ctx: RouteCtx, body: bytes, ctype: Optional[str]) -> None:
    ctx.msg.set_body(body, ctype)
    if ctype is not None:
        ctx.body_ctype = ctype


@mod.function("set_body", args=(Fx.SPVE, Fx.SPVE), routes=RFBO)
def ki_set_body(ctx: RouteCtx, txt: str, ctype: str) -> int:
    """Replace the body with TXT and the Content-Type with CTYPE (if not empty). 1 / -1."""
    if not txt:
        log.error("set_body: empty body")
        return -1
    set_body_ctype(ctx, encode(txt), ctype or None)
    return 1


@mod.function("set_reply_body", args=(Fx.SPVE, Fx.SPVE), routes=RFB)
def ki_set_reply_body(ctx: RouteCtx, txt: str, ctype: str) -> int:
    """Body (and Content-Type) for the next local reply sent by sl/tm. 1 / -1."""
    if not txt or not ctype:
        log.error("set_reply_body: body and content type must not be empty")
        return -1
    ctx.reply_body = (encode(txt), ctype)
    return 1


@mod.function("filter_body", args=(Fx.STR,), routes=ANY_ROUTE)
def ki_filter_body(ctx: RouteCtx, ctype: str) -> int:
    """Keep only the first part of a multipart body whose type is CTYPE. 1 / -1."""
    want = ctype.strip().lower()
    bnd = multipart.boundary_of(current_ctype(ctx))
    if bnd is None:
        log.debug("filter_body: body is not multipart")
        return -1
    for part in multipart.split(ctx.msg.body, bnd):
        if part.mime() == want:
            set_body_ctype(ctx, part.content, part.content_type)
            return 1
    return -1


@mod.function("has_body", args=(), routes=ANY_ROUTE)
def ki_has_body(ctx: RouteCtx) -> int:
    """The message has a non-empty body: 1, else -1."""
    return 1 if ctx.msg.body else -1


@mod.function("has_body", args=(MIME,), routes=ANY_ROUTE)
def ki_has_body_type(ctx: RouteCtx, mime: str) -> int:
    """Non-empty body whose Content-Type is MIME ('type/subtype'); a multipart body also
    matches when one of its parts has that type."""
    if not ctx.msg.body:
        return -1
    ct = (current_ctype(ctx) or "application/sdp").split(";", 1)[0].strip().lower()
    if ct == mime:
        return 1
    bnd = multipart.boundary_of(current_ctype(ctx))
    if ct.startswith("multipart/") and bnd:
        if any(p.mime() == mime for p in multipart.split(ctx.msg.body, bnd)):
            return 1
    return -1


@mod.function("is_audio_on_hold", args=(), routes=ANY_ROUTE)
def ki_is_audio_on_hold(ctx: RouteCtx) -> int:
    """The first audio stream on hold, as Kamailio reads it (textops.c): its own hold, else its
    session's: 1 RFC 2543 (c= 0.0.0.0), 2 RFC 3264 (sendonly/inactive); -1 none, or no SDP."""
    try:
        info = msg_sdp(ctx.msg)
    except SdpError:
        return -1
    if info is None:
        return -1
    for session in info.sessions:
        for st in session.streams:
            if st.media == "audio" and (st.is_on_hold or session.is_on_hold):
                return st.is_on_hold or session.is_on_hold
    return -1


# multipart -------------------------------------------------------------------------------------

def _parts_and_boundary(ctx: RouteCtx) -> tuple[list[bytes], str]:
    """Raw parts of the current body (a non-multipart body becomes one part) + boundary."""
    ct = current_ctype(ctx)
    bnd = multipart.boundary_of(ct) if ct and ct.lower().startswith("multipart/") else None
    body = ctx.msg.body
    if bnd is not None:
        return [p.raw for p in multipart.split(body, bnd)], bnd
    parts = [multipart.make_part(body, ct or "text/plain")] if body else []
    return parts, multipart.DEFAULT_BOUNDARY


def _set_multipart(ctx: RouteCtx, parts: list[bytes], boundary: str) -> None:
    set_body_ctype(ctx, multipart.join(parts, boundary),
                   f"multipart/mixed;boundary=\"{boundary}\"")


def _set_body_multipart(ctx: RouteCtx, txt: Optional[str], ctype: Optional[str],
                        boundary: Optional[str]) -> int:
    parts, old = _parts_and_boundary(ctx)
    bnd = boundary or old
    if txt:
        parts.append(multipart.make_part(encode(txt), ctype or "text/plain"))
    _set_multipart(ctx, parts, bnd)
    return 1


@mod.function("set_body_multipart", args=(), routes=RFB)
def ki_set_body_multipart(ctx: RouteCtx) -> int:
    """Turn the body into multipart/mixed (the current body becomes the first part)."""
    return _set_body_multipart(ctx, None, None, None)


@mod.function("set_body_multipart", args=(Fx.SPVE,), routes=RFB)
def ki_set_body_multipart_boundary(ctx: RouteCtx, boundary: str) -> int:
    """set_body_multipart() with BOUNDARY."""
    return _set_body_multipart(ctx, None, None, boundary or None)


@mod.function("set_body_multipart", args=(Fx.SPVE, Fx.SPVE), routes=RFB)
def ki_set_body_multipart_txt(ctx: RouteCtx, txt: str, ctype: str) -> int:
    """set_body_multipart() adding the part TXT of type CTYPE."""
    return _set_body_multipart(ctx, txt, ctype, None)


@mod.function("set_body_multipart", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE), routes=RFB)
def ki_set_body_multipart_full(ctx: RouteCtx, txt: str, ctype: str, boundary: str) -> int:
    """set_body_multipart() adding the part TXT of type CTYPE, with BOUNDARY."""
    return _set_body_multipart(ctx, txt, ctype, boundary or None)


def _append_part(ctx: RouteCtx, content: bytes, ctype: str, disp: str) -> int:
    if not ctype:
        log.error("append_body_part: empty content type")
        return -1
    parts, bnd = _parts_and_boundary(ctx)
    parts.append(multipart.make_part(content, ctype, disp))
    _set_multipart(ctx, parts, bnd)
    return 1


@mod.function("append_body_part", args=(Fx.SPVE, Fx.SPVE), routes=RFB)
def ki_append_body_part(ctx: RouteCtx, txt: str, ctype: str) -> int:
    """Append a part TXT of type CTYPE (the body becomes multipart if needed)."""
    return _append_part(ctx, encode(txt), ctype, "")


@mod.function("append_body_part", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE), routes=RFB)
def ki_append_body_part_disp(ctx: RouteCtx, txt: str, ctype: str, disp: str) -> int:
    """append_body_part() with a Content-Disposition."""
    return _append_part(ctx, encode(txt), ctype, disp)


def _unhex(ctx: RouteCtx, hextxt: str) -> Optional[bytes]:
    try:
        return binascii.unhexlify("".join(hextxt.split()))
    except (binascii.Error, ValueError):
        log.error("append_body_part_hex: invalid hex content")
        return None


@mod.function("append_body_part_hex", args=(Fx.SPVE, Fx.SPVE), routes=RFB)
def ki_append_body_part_hex(ctx: RouteCtx, hextxt: str, ctype: str) -> int:
    """append_body_part() with the content given in hex."""
    data = _unhex(ctx, hextxt)
    return -1 if data is None else _append_part(ctx, data, ctype, "")


@mod.function("append_body_part_hex", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE), routes=RFB)
def ki_append_body_part_hex_disp(ctx: RouteCtx, hextxt: str, ctype: str, disp: str) -> int:
    """append_body_part_hex() with a Content-Disposition."""
    data = _unhex(ctx, hextxt)
    return -1 if data is None else _append_part(ctx, data, ctype, disp)


def _find_part(ctx: RouteCtx, ctype: str) -> Optional[multipart.Part]:
    want = ctype.strip().lower()
    bnd = multipart.boundary_of(current_ctype(ctx))
    if bnd is None:
        return None
    for p in multipart.split(ctx.msg.body, bnd):
        if p.mime() == want:
            return p
    return None


@mod.function("get_body_part", args=(Fx.SPVE, Fx.PVAR), routes=RFBO)
def ki_get_body_part(ctx: RouteCtx, ctype: str, dst: Any) -> int:
    """Store the content of the first part of type CTYPE in DST. 1 / -1."""
    p = _find_part(ctx, ctype)
    if p is None:
        return -1
    dst.set(ctx, p.content.decode("utf-8", "replace"))
    return 1


@mod.function("get_body_part_raw", args=(Fx.SPVE, Fx.PVAR), routes=RFBO)
def ki_get_body_part_raw(ctx: RouteCtx, ctype: str, dst: Any) -> int:
    """Store the first part of type CTYPE, with its part headers, in DST. 1 / -1."""
    p = _find_part(ctx, ctype)
    if p is None:
        return -1
    dst.set(ctx, p.raw.decode("utf-8", "replace"))
    return 1


@mod.function("remove_body_part", args=(Fx.SPVE,), routes=RFB)
def ki_remove_body_part(ctx: RouteCtx, ctype: str) -> int:
    """Remove every part of type CTYPE from a multipart body. 1 if any removed, else -1."""
    want = ctype.strip().lower()
    bnd = multipart.boundary_of(current_ctype(ctx))
    if bnd is None:
        return -1
    parts = multipart.split(ctx.msg.body, bnd)
    keep = [p.raw for p in parts if p.mime() != want]
    if len(keep) == len(parts):
        return -1
    _set_multipart(ctx, keep, bnd)
    return 1


# ---- headers ---------------------------------------------------------------------------------

def add_hf(ctx: RouteCtx, text: str, **where: Any) -> int:
    """msg.add_header() for script-supplied text: 1, or -1 (logged) when it is no header."""
    try:
        ctx.msg.add_header(text, **where)
    except ValueError as exc:
        log.error("textops: cannot add header %r: %s", text, exc)
        return -1
    return 1


def set_ruri(ctx: RouteCtx, uri: str) -> int:
    try:
        ctx.msg.set_ruri(uri)
    except ValueError as exc:
        log.error("textops: cannot set the R-URI to %r: %s", uri, exc)
        return -1
    return 1


@mod.function("append_to_reply", args=(Fx.SPVE,), routes=RFB)
def ki_append_to_reply(ctx: RouteCtx, txt: str) -> int:
    """Queue header line(s) TXT for the next local reply (sl/tm). 1 / -1."""
    lines = [ln for ln in re.split(r"\r?\n", txt) if ln.strip()]
    if not lines:
        log.error("append_to_reply: empty text")
        return -1
    ctx.reply_lumps.extend(lines)
    return 1


@mod.function("append_hf", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_append_hf(ctx: RouteCtx, txt: str) -> int:
    """Append header TXT after the last header. 1 / -1."""
    if not txt.strip():
        return -1
    return add_hf(ctx, txt)


@mod.function("append_hf", args=(Fx.SPVE, HNAME), routes=ANY_ROUTE)
def ki_append_hf_after(ctx: RouteCtx, txt: str, hname: str) -> int:
    """Append header TXT after the last HNAME header; -1 when there is none."""
    hs = ctx.msg.header_all(hname)
    if not hs or not txt.strip():
        return -1
    return add_hf(ctx, txt, after=hs[-1])


@mod.function("insert_hf", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_insert_hf(ctx: RouteCtx, txt: str) -> int:
    """Insert header TXT before the first header. 1 / -1."""
    if not txt.strip():
        return -1
    return add_hf(ctx, txt, first=True)


@mod.function("insert_hf", args=(Fx.SPVE, HNAME), routes=ANY_ROUTE)
def ki_insert_hf_before(ctx: RouteCtx, txt: str, hname: str) -> int:
    """Insert header TXT before the first HNAME header; -1 when there is none."""
    h = ctx.msg.header(hname)
    if h is None or not txt.strip():
        return -1
    return add_hf(ctx, txt, before=h)


@mod.function("append_urihf", args=(Fx.STR, Fx.STR), routes=RFB)
def ki_append_urihf(ctx: RouteCtx, prefix: str, suffix: str) -> int:
    """Append the header PREFIX + original R-URI + SUFFIX (include ':' and CRLF). 1 / -1."""
    if not ctx.msg.is_request:
        return -1
    return add_hf(ctx, prefix + ctx.msg.orig_ruri + suffix)


@mod.function("is_present_hf", args=(HNAME,), routes=ANY_ROUTE)
def ki_is_present_hf(ctx: RouteCtx, hname: str) -> int:
    """A header named HNAME (long or compact form) exists: 1, else -1."""
    return 1 if ctx.msg.header(hname) is not None else -1


@mod.function("is_present_hf_pv", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_is_present_hf_pv(ctx: RouteCtx, hname: str) -> int:
    """is_present_hf() with the name from a PV."""
    return 1 if hname and ctx.msg.header(hname.strip()) is not None else -1


def _names_matching(ctx: RouteCtx, rx: Any) -> list[Any]:
    return [h for h in ctx.msg.headers if rx.search(subject(rx, h.name.encode("latin-1")))]


@mod.function("is_present_hf_re", args=(Fx.REGEX,), routes=ANY_ROUTE)
def ki_is_present_hf_re(ctx: RouteCtx, rx: Any) -> int:
    """A header whose name matches RX exists: 1, else -1."""
    return 1 if _names_matching(ctx, rx) else -1


@mod.function("is_present_hf_re_pv", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_is_present_hf_re_pv(ctx: RouteCtx, regex: str) -> int:
    """is_present_hf_re() with the regex from a PV."""
    rx = dyn_regex(regex)
    return -1 if rx is None else ki_is_present_hf_re(ctx, rx)


def append_time_text() -> str:
    return "Date: " + formatdate(time.time(), usegmt=True)


@mod.function("append_time", args=(), routes=RFB)
def ki_append_time(ctx: RouteCtx) -> int:
    """Add a Date header (GMT, RFC 1123) to the next local reply. 1."""
    ctx.reply_lumps.append(append_time_text())
    return 1


@mod.function("append_time_to_request", args=(), routes=ANY_ROUTE)
def ki_append_time_to_request(ctx: RouteCtx) -> int:
    """Add a Date header (GMT) to the request. 1 / -1 for replies."""
    if not ctx.msg.is_request:
        return -1
    ctx.msg.add_header(append_time_text())
    return 1


@mod.function("is_method", args=(METHODS,), routes=ANY_ROUTE)
def ki_is_method(ctx: RouteCtx, methods: frozenset[str]) -> int:
    """Request method (CSeq method for replies) is one of 'A|B|C': 1, else -1."""
    try:
        m = ctx.msg.method
    except ParseError as exc:       # a reply without a parseable CSeq
        log.debug("is_method: no method: %s", exc)
        return -1
    return 1 if m.upper() in methods else -1


def _remove(ctx: RouteCtx, hs: list[Any]) -> int:
    for h in hs:
        ctx.msg.remove_header(h)
    return len(hs) if hs else -1


@mod.function("remove_hf", args=(HNAME,), routes=ANY_ROUTE)
def ki_remove_hf(ctx: RouteCtx, hname: str) -> int:
    """Remove every HNAME header; the number removed, or -1 when none."""
    return _remove(ctx, ctx.msg.header_all(hname))


@mod.function("remove_hf_pv", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_remove_hf_pv(ctx: RouteCtx, hname: str) -> int:
    """remove_hf() with the name from a PV."""
    return _remove(ctx, ctx.msg.header_all(hname.strip())) if hname.strip() else -1


@mod.function("remove_hf_re", args=(Fx.REGEX,), routes=ANY_ROUTE)
def ki_remove_hf_re(ctx: RouteCtx, rx: Any) -> int:
    """Remove every header whose name matches RX; number removed or -1."""
    return _remove(ctx, _names_matching(ctx, rx))


@mod.function("remove_hf_re_pv", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_remove_hf_re_pv(ctx: RouteCtx, regex: str) -> int:
    """remove_hf_re() with the regex from a PV."""
    rx = dyn_regex(regex)
    return -1 if rx is None else ki_remove_hf_re(ctx, rx)


def _remove_exp(ctx: RouteCtx, match: Any, skip: Any) -> int:
    hs = [h for h in _names_matching(ctx, match)
          if not skip.search(subject(skip, h.name.encode("latin-1")))]
    return _remove(ctx, hs)


@mod.function("remove_hf_exp", args=(Fx.REGEX, Fx.REGEX), routes=ANY_ROUTE)
def ki_remove_hf_exp(ctx: RouteCtx, match: Any, skip: Any) -> int:
    """Remove headers whose name matches MATCH but not SKIP; number removed or -1."""
    return _remove_exp(ctx, match, skip)


@mod.function("remove_hf_exp_pv", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_remove_hf_exp_pv(ctx: RouteCtx, match: str, skip: str) -> int:
    """remove_hf_exp() with both regexes from PVs."""
    m, s = dyn_regex(match), dyn_regex(skip)
    return -1 if m is None or s is None else _remove_exp(ctx, m, s)


@mod.function("remove_hf_idx", args=(HNAME, Fx.IGP), routes=ANY_ROUTE)
def ki_remove_hf_idx(ctx: RouteCtx, hname: str, idx: int) -> int:
    """Remove occurrence IDX (0-based; negative counts from the end) of HNAME. 1 / -1."""
    hs = ctx.msg.header_all(hname)
    try:
        h = hs[idx]
    except IndexError:
        return -1
    ctx.msg.remove_header(h)
    return 1


@mod.function("remove_hf_match", args=(HNAME, MATCH_OP, Fx.SPVE), routes=ANY_ROUTE)
def ki_remove_hf_match(ctx: RouteCtx, hname: str, op: str, expr: str) -> int:
    """Remove HNAME headers whose value is (eq) / is not (ne) EXPR, contains it (in) or
    matches it as a regex (re). Number removed or -1."""
    if op == "re":
        rx = dyn_regex(expr)
        if rx is None:
            return -1
        test = lambda v: rx.search(v) is not None  # noqa: E731
    elif op == "eq":
        test = lambda v: v == expr  # noqa: E731
    elif op == "ne":
        test = lambda v: v != expr  # noqa: E731
    else:
        test = lambda v: expr in v  # noqa: E731
    return _remove(ctx, [h for h in ctx.msg.header_all(hname) if test(h.value)])


@mod.function("is_privacy", args=(PRIVACY,), routes=ANY_ROUTE)
def ki_is_privacy(ctx: RouteCtx, ptype: str) -> int:
    """The Privacy header lists PTYPE (header, session, user, none, id, history, critical)."""
    from sipcore.msg import HdrType

    for h in ctx.msg.header_all(HdrType.PRIVACY):
        for v in re.split(r"[;,]", h.value):
            if v.strip().lower() == ptype:
                return 1
    return -1


# ---- string tests ----------------------------------------------------------------------------

def _items(lst: str, sep: str) -> list[str]:
    return [x.strip() for x in lst.split(sep)]


@mod.function("in_list", args=(Fx.SPVE, Fx.SPVE, SEP), routes=ANY_ROUTE)
def ki_in_list(ctx: RouteCtx, subject_: str, lst: str, sep: str) -> int:
    """SUBJECT equals one item of LST (items separated by SEP, blanks trimmed). 1 / -1."""
    return 1 if subject_ in _items(lst, sep) else -1


@mod.function("in_list_prefix", args=(Fx.SPVE, Fx.SPVE, SEP), routes=ANY_ROUTE)
def ki_in_list_prefix(ctx: RouteCtx, subject_: str, lst: str, sep: str) -> int:
    """An item of LST is a prefix of SUBJECT. 1 / -1."""
    return 1 if any(i and subject_.startswith(i) for i in _items(lst, sep)) else -1


@mod.function("cmp_str", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_cmp_str(ctx: RouteCtx, s1: str, s2: str) -> int:
    """S1 == S2 (case-sensitive): 1, else -1."""
    return 1 if s1 == s2 else -1


@mod.function("cmp_istr", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_cmp_istr(ctx: RouteCtx, s1: str, s2: str) -> int:
    """S1 == S2 ignoring case: 1, else -1."""
    return 1 if s1.lower() == s2.lower() else -1


@mod.function("starts_with", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_starts_with(ctx: RouteCtx, s1: str, s2: str) -> int:
    """S1 starts with S2: 1, else -1."""
    return 1 if s1.startswith(s2) else -1


@mod.function("ends_with", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_ends_with(ctx: RouteCtx, s1: str, s2: str) -> int:
    """S1 ends with S2: 1, else -1."""
    return 1 if s1.endswith(s2) else -1


@mod.function("str_find", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_str_find(ctx: RouteCtx, s1: str, s2: str) -> int:
    """S2 occurs in S1: its position + 1 (so always true), else -1."""
    i = s1.find(s2)
    return i + 1 if i >= 0 else -1


@mod.function("str_ifind", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_str_ifind(ctx: RouteCtx, s1: str, s2: str) -> int:
    """str_find() ignoring case."""
    i = s1.lower().find(s2.lower())
    return i + 1 if i >= 0 else -1


@mod.function("regex_substring", args=(Fx.SPVE, Fx.SPVE, Fx.IGP, Fx.IGP, Fx.PVAR),
              routes=ANY_ROUTE)
def ki_regex_substring(ctx: RouteCtx, itext: str, regex: str, mindex: int, mcount: int,
                       dst: Any) -> int:
    """Match REGEX on ITEXT (at most MCOUNT matches, 0 = 1) and store group MINDEX of the
    first match in DST. 1 / -1 (no match or no such group)."""
    rx = dyn_regex(regex)
    if rx is None or mindex < 0:
        return -1
    m = rx.search(itext)
    if m is None or mindex > rx.groups or m.group(mindex) is None:
        return -1
    dst.set(ctx, m.group(mindex))
    return 1
