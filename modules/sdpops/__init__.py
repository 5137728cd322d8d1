"""sdpops: check and edit the SDP of a message (codecs, media streams, transports, lines) and
the $sdp() variables.

Runs in: SIP workers (functions, $sdp) and the master (the declarations). Shared state: none;
edits go to the message's edit list through sipcore.msg.sdp.SdpEditor, so they combine with
the other edits of the message (textops, nathelper...).

Kamailio equivalent: modules/sdpops (sdpops_mod.c, sdpops_data.c) of 5.6, with its cfg
functions' arguments and return codes. As there, every function reads the SDP of the received
body (sipcore.msg.sdp.msg_sdp: parsed once per message, Kamailio's parse_sdp() rules) and edits
it by byte span: a function does not see what an earlier one removed. A body that set_body()
replaced is read and edited instead. Differences: docs/modules/sdpops.md.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

from sipcore import log as klog
from sipcore.errors import ParseError
from sipcore.mod import ANY_ROUTE, Fx, Module
from sipcore.msg.headers import parse_content_type
from sipcore.msg.sdp import (
    AF_INET,
    AF_INET6,
    NotSdpError,
    SdpEditor,
    SdpError,
    SdpInfo,
    SdpStream,
    body_and_type,
    msg_sdp,
    port_number,
    split_lines,
)
from sipcore.pv import PvSpec
from sipcore.pv.vars import AvpPv, avps
from sipcore.route.ctx import MsgSlot, RouteCtx

from .sdpops_data import codec_in_list, codec_position, find_tokens, ids_of_names

log = logging.getLogger(__name__)

mod = Module("sdpops", summary="Check and edit SDP bodies: codecs, media streams, transports, "
             "lines; $sdp().")

_ENC = ("utf-8", "surrogateescape")
# attribute lines removed with a payload type (Kamailio sdp_remove_str_codec_id_attrs)
_CODEC_ATTRS = ("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")
_LONG_MAX = 2**63 - 1


def _parse(ctx: RouteCtx, level: int = klog.L_ERR,
           not_sdp_level: int = klog.L_ERR) -> tuple[int, Optional[SdpInfo]]:
    """Kamailio parse_sdp(): (0, sdp) parsed; (1, None) no body; (-1, None) malformed SDP
    (logged at LEVEL) or a body that is not SDP (logged at NOT_SDP_LEVEL)."""
    try:
        info = msg_sdp(ctx.msg)
    except SdpError as e:
        log.log(klog.py_level(not_sdp_level if isinstance(e, NotSdpError) else level),
                "sdpops: unable to parse sdp: %s", e.reason)
        return -1, None
    return (1, None) if info is None else (0, info)


def _media_match(st: SdpStream, media: str) -> bool:
    return not media or st.media.lower() == media.lower()


def _blen(text: str) -> int:
    return len(text.encode(*_ENC))


def _remove_codec(ed: SdpEditor, st: SdpStream, codec: str) -> None:
    """Cut CODEC (and the space before it) out of the stream's m= line, and delete its
    a=rtpmap, a=fmtp and a=rtcp-fb lines (Kamailio sdp_remove_str_codec_id + _attrs)."""
    i = codec_position(st.payloads, codec)
    if i >= 0:
        start = st.payloads_start + _blen(st.payloads[:i])
        ed.delete(start - 1, start + _blen(codec))
    for ln in st.lines:
        t = ln.text
        for prefix in _CODEC_ATTRS:
            n = len(prefix)
            if t[:n].lower() == prefix and t.startswith(codec, n) and t[n + len(codec):][:1] == " ":
                ed.delete(ln.start, ln.end)


def _avp(ctx: RouteCtx, spec: Any, fname: str) -> bool:
    """SPEC is an AVP (the functions that store a value take only those, as Kamailio)."""
    if isinstance(spec, AvpPv):
        return True
    log.error("sdpops: %s: malformed or non AVP %s", fname, getattr(spec, 'text', spec))
    return False


def _add_avp(ctx: RouteCtx, spec: AvpPv, value: str) -> None:
    avps(ctx).add(spec.name, value)         # Kamailio add_avp(): a new value on top


# ---- codecs ----------------------------------------------------------------------------------

def remove_codecs_by_id(ctx: RouteCtx, codecs: str, media: str) -> int:
    """Kamailio sdp_remove_codecs_by_id(): 0 done, -1 no or bad SDP."""
    rc, info = _parse(ctx)
    if info is None:
        if rc > 0:
            log.debug("sdpops: no sdp body")
        return -1
    ed = SdpEditor(ctx.msg)
    tokens = find_tokens(codecs, ",")
    for st in info.streams:
        if _media_match(st, media):
            for codec in tokens:
                _remove_codec(ed, st, codec)
    ed.commit()
    return 0


def keep_codecs_by_id(ctx: RouteCtx, codecs: str, media: str) -> int:
    """Kamailio sdp_keep_codecs_by_id(): 0 done, -1 no or bad SDP."""
    rc, info = _parse(ctx)
    if info is None:
        return -1
    ed = SdpEditor(ctx.msg)
    for st in info.streams:
        if _media_match(st, media):
            for codec in find_tokens(st.payloads, " "):
                if not codec_in_list(codecs, codec, ","):
                    _remove_codec(ed, st, codec)
    ed.commit()
    return 0


def _ids(ctx: RouteCtx, names: str) -> Optional[str]:
    """The payload type ids of the codec NAMES (None: no or bad SDP, or no id for them)."""
    rc, info = _parse(ctx)
    if info is None:
        return None
    ids = ids_of_names(info, names)
    if not ids:
        log.debug("sdpops: no payload type for codecs [%s]", names)
        return None
    return ids


@mod.function("sdp_remove_codecs_by_id", args=(Fx.SPVE,), routes=ANY_ROUTE, kemi=False)
def ki_sdp_remove_codecs_by_id(ctx: RouteCtx, codecs: str) -> int:
    """Remove the payload types of the list CODECS ("0,8") from every m= line.
    Their a=rtpmap, a=fmtp and a=rtcp-fb lines go too. 1; -1 without SDP or when it does not
    parse."""
    return 1 if remove_codecs_by_id(ctx, codecs, "") >= 0 else -1


@mod.function("sdp_remove_codecs_by_id", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE,
              kemi_name="remove_codecs_by_id")
def ki_sdp_remove_codecs_by_id_media(ctx: RouteCtx, codecs: str, media: str) -> int:
    """sdp_remove_codecs_by_id() in the streams of type MEDIA ("": all)."""
    return 1 if remove_codecs_by_id(ctx, codecs, media) >= 0 else -1


@mod.function("sdp_remove_codecs_by_name", args=(Fx.SPVE,), routes=ANY_ROUTE, kemi=False)
def ki_sdp_remove_codecs_by_name(ctx: RouteCtx, codecs: str) -> int:
    """Remove the codecs named in CODECS ("PCMU,opus") from every m= line.
    A static payload type (RFC 3551 table) or the a=rtpmap ids of that name. 1; -1 without SDP
    or when no id matches."""
    return ki_sdp_remove_codecs_by_name_media(ctx, codecs, "")


@mod.function("sdp_remove_codecs_by_name", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE,
              kemi_name="remove_codecs_by_name")
def ki_sdp_remove_codecs_by_name_media(ctx: RouteCtx, codecs: str, media: str) -> int:
    """sdp_remove_codecs_by_name() in the streams of type MEDIA ("": all)."""
    ids = _ids(ctx, codecs)
    if ids is None:
        return -1
    return 1 if remove_codecs_by_id(ctx, ids, media) >= 0 else -1


@mod.function("sdp_keep_codecs_by_id", args=(Fx.SPVE,), routes=ANY_ROUTE, kemi=False)
def ki_sdp_keep_codecs_by_id(ctx: RouteCtx, codecs: str) -> int:
    """Remove every payload type not in the list CODECS ("0,8", no spaces).
    1; -1 without SDP or when it does not parse."""
    return 1 if keep_codecs_by_id(ctx, codecs, "") >= 0 else -1


@mod.function("sdp_keep_codecs_by_id", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE,
              kemi_name="keep_codecs_by_id")
def ki_sdp_keep_codecs_by_id_media(ctx: RouteCtx, codecs: str, media: str) -> int:
    """sdp_keep_codecs_by_id() in the streams of type MEDIA ("": every stream)."""
    return 1 if keep_codecs_by_id(ctx, codecs, media) >= 0 else -1


@mod.function("sdp_keep_codecs_by_name", args=(Fx.SPVE,), routes=ANY_ROUTE, kemi=False)
def ki_sdp_keep_codecs_by_name(ctx: RouteCtx, codecs: str) -> int:
    """Keep only the codecs named in CODECS ("PCMU,telephone-event").
    1; -1 without SDP or when no id matches the names."""
    return ki_sdp_keep_codecs_by_name_media(ctx, codecs, "")


@mod.function("sdp_keep_codecs_by_name", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE,
              kemi_name="keep_codecs_by_name")
def ki_sdp_keep_codecs_by_name_media(ctx: RouteCtx, codecs: str, media: str) -> int:
    """sdp_keep_codecs_by_name() in the streams of type MEDIA ("": all)."""
    ids = _ids(ctx, codecs)
    if ids is None:
        return -1
    return 1 if keep_codecs_by_id(ctx, ids, media) >= 0 else -1


def with_codecs_by_id(ctx: RouteCtx, codecs: str) -> int:
    """Kamailio sdp_with_codecs_by_id(): 1 every listed codec is in every stream, 2 one is in
    some stream but not in all (or another is missing), 0 none is, -1 no or bad SDP."""
    rc, info = _parse(ctx)
    if info is None:
        return -1
    found = missing = 0
    tokens = find_tokens(codecs, ",")
    for st in info.streams:
        for codec in tokens:
            if codec_in_list(st.payloads, codec, " "):
                found = 1
            else:
                missing = 1
    return found + (missing if found else 0)


@mod.function("sdp_with_codecs_by_id", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_sdp_with_codecs_by_id(ctx: RouteCtx, codecs: str) -> int:
    """Are payload types of the list CODECS in the m= lines?
    1 each is in every stream; 2 one is found but another is missing in some stream; -1 none is
    found; -2 no or bad SDP."""
    rc = with_codecs_by_id(ctx, codecs)
    return rc - 1 if rc <= 0 else rc


@mod.function("sdp_with_codecs_by_name", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_sdp_with_codecs_by_name(ctx: RouteCtx, codecs: str) -> int:
    """sdp_with_codecs_by_id() for codec names ("PCMU,opus").
    1 / 2 found; -1 not found, no SDP or no id for the names."""
    ids = _ids(ctx, codecs)
    if ids is None:
        return -1
    rc = with_codecs_by_id(ctx, ids)
    return rc - 1 if rc <= 0 else rc


# ---- media streams and transports --------------------------------------------------------------

@mod.function("sdp_with_media", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_sdp_with_media(ctx: RouteCtx, media: str) -> int:
    """An m= line of type MEDIA ("audio", "video", any case)? 1 / -1."""
    _rc, info = _parse(ctx)
    if info is None:
        return -1
    return 1 if any(st.media.lower() == media.lower() for st in info.streams) else -1


@mod.function("sdp_with_active_media", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_sdp_with_active_media(ctx: RouteCtx, media: str) -> int:
    """An active m= line of type MEDIA (port not 0, no a=inactive)? 1 / -1."""
    _rc, info = _parse(ctx)
    if info is None:
        return -1
    for st in info.streams:
        if (st.media.lower() == media.lower() and port_number(st.port) != 0
                and st.sendrecv_mode != "inactive"):
            return 1
    return -1


def _remove_streams(ctx: RouteCtx, match: Any) -> int:
    """Delete every stream MATCH accepts, from its m= line to the next m= line or the end of
    the SDP: the number deleted, -1 no or bad SDP."""
    _rc, info = _parse(ctx)
    if info is None:
        return -1
    ed = SdpEditor(ctx.msg)
    n = 0
    for st in info.streams:
        if match(st):
            ed.delete(st.start, st.end)
            n += 1
    ed.commit()
    return n


@mod.function("sdp_remove_media", args=(Fx.SPVE,), routes=ANY_ROUTE, kemi_name="remove_media")
def ki_sdp_remove_media(ctx: RouteCtx, media: str) -> int:
    """Remove the streams of type MEDIA (m= line and the lines under it).
    1 if one was removed, else -1."""
    low = media.lower()
    return 1 if _remove_streams(ctx, lambda st: st.media.lower() == low) > 0 else -1


@mod.function("sdp_remove_transport", args=(Fx.SPVE,), routes=ANY_ROUTE, kemi=False)
def ki_sdp_remove_transport(ctx: RouteCtx, transport: str) -> int:
    """Remove the streams whose transport is TRANSPORT ("RTP/AVP", any case).
    1 if one was removed, else -1."""
    low = transport.lower()
    return 1 if _remove_streams(ctx, lambda st: st.transport.lower() == low) > 0 else -1


@mod.function("sdp_with_transport", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_sdp_with_transport(ctx: RouteCtx, transport: str) -> int:
    """An m= line with transport TRANSPORT (exact, any case: "UDP/TLS/RTP/SAVPF")? 1 / -1."""
    _rc, info = _parse(ctx)
    if info is None:
        return -1
    low = transport.lower()
    return 1 if any(st.transport.lower() == low for st in info.streams) else -1


@mod.function("sdp_with_transport_like", args=(Fx.SPVE,), routes=ANY_ROUTE)
def ki_sdp_with_transport_like(ctx: RouteCtx, transport: str) -> int:
    """An m= line whose transport contains TRANSPORT ("SAVPF", case-sensitive)? 1 / -1."""
    _rc, info = _parse(ctx)
    if info is None:
        return -1
    return 1 if any(transport in st.transport for st in info.streams) else -1


@mod.function("sdp_transport", args=(Fx.PVAR,), routes=ANY_ROUTE)
def ki_sdp_transport(ctx: RouteCtx, dst: Any) -> int:
    """Store the transport all m= lines share in the AVP DST.
    1 (also with no stream at all: nothing stored); -2 the streams differ; -1 DST is not an
    AVP or the SDP does not parse."""
    if not _avp(ctx, dst, "sdp_transport"):
        return -1
    rc, info = _parse(ctx)
    if rc < 0:
        return -1
    transport: Optional[str] = None
    for st in info.streams if info is not None else ():
        if transport is None:
            transport = st.transport
        elif st.transport.lower() != transport.lower():
            log.debug("sdpops: no common transport")
            return -2
    if transport is not None:
        _add_avp(ctx, dst, transport)
    return 1


# ---- lines and the whole SDP -----------------------------------------------------------------

def remove_line_by_prefix(ctx: RouteCtx, prefix: str, media: str) -> int:
    """Kamailio sdp_remove_line_by_prefix(): the number of lines deleted, -1 no or bad SDP."""
    rc, info = _parse(ctx)
    if info is None:
        if rc > 0:
            log.error("sdpops: unable to parse sdp: no body")
        return -1
    if info.raw_end == info.raw_start:
        log.debug("sdpops: message body has zero length")
        return -1
    if media:
        groups = [st.lines for st in info.streams if _media_match(st, media)]
    else:   # Kamailio's raw_sdp: the whole body, or the last SDP part
        groups = [split_lines(info.body, info.raw_start, info.raw_end)]
    ed = SdpEditor(ctx.msg)
    n = 0
    for lines in groups:
        for ln in lines:
            if prefix and ln.type == prefix[0] and ln.text.startswith(prefix):
                ed.delete(ln.start, ln.end)
                n += 1
    ed.commit()
    return n


@mod.function("sdp_remove_line_by_prefix", args=(Fx.SPVE,), routes=ANY_ROUTE, kemi=False)
def ki_sdp_remove_line_by_prefix(ctx: RouteCtx, prefix: str) -> int:
    """Remove every SDP line starting with PREFIX ("a=X-").
    1 (also when none matched); -1 without SDP or when it does not parse."""
    return 1 if remove_line_by_prefix(ctx, prefix, "") >= 0 else -1


@mod.function("sdp_remove_line_by_prefix", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE,
              kemi_name="remove_line_by_prefix")
def ki_sdp_remove_line_by_prefix_media(ctx: RouteCtx, prefix: str, media: str) -> int:
    """sdp_remove_line_by_prefix() in the streams of type MEDIA ("": all).
    Their m= lines included."""
    return 1 if remove_line_by_prefix(ctx, prefix, media) >= 0 else -1


@mod.function("sdp_get", args=(Fx.PVAR,), routes=ANY_ROUTE)
def ki_sdp_get(ctx: RouteCtx, dst: Any) -> int:
    """Store the SDP in the AVP DST (a multipart body: its last SDP part).
    1; -2 no body; -1 DST is not an AVP or the body is not SDP."""
    if not _avp(ctx, dst, "sdp_get"):
        return -1
    rc, info = _parse(ctx)
    if rc < 0:
        return -1
    if info is None:
        log.debug("sdpops: no SDP")
        return -2
    _add_avp(ctx, dst, info.text(info.raw_start, info.raw_end))
    return 1


@mod.function("sdp_get_line_startswith", args=(Fx.PVAR, Fx.SPVE), routes=ANY_ROUTE)
def ki_sdp_get_line_startswith(ctx: RouteCtx, dst: Any, sline: str) -> int:
    """Store the first SDP line starting with SLINE ("m=") in the AVP DST.
    Without a CRLF ending (an LF ending stays, as in Kamailio). 1; -1 not found, empty SLINE,
    DST not an AVP or bad SDP; -2 no SDP."""
    if not sline:
        log.error("sdpops: sdp_get_line_startswith: search string is empty")
        return -1
    rc, info = _parse(ctx)
    if rc < 0:
        return -1
    if info is None:
        log.debug("sdpops: no SDP")
        return -2
    if not info.sessions or info.raw_start >= len(info.body):
        log.error("sdpops: failed to get the message body")
        return -1
    if not _avp(ctx, dst, "sdp_get_line_startswith"):
        return -1
    # from the SDP to the end of the body, as Kamailio searches
    for ln in split_lines(info.body, info.raw_start):
        if ln.type == sline[0] and ln.text.startswith(sline):
            value = ln.text if ln.eol == "\r\n" else ln.text + ln.eol
            _add_avp(ctx, dst, value)
            return 1
    return -1


@mod.function("sdp_content", args=(), routes=ANY_ROUTE)
def ki_sdp_content(ctx: RouteCtx) -> int:
    """Is the body SDP that parses (application/sdp, or a multipart/mixed SDP part)?
    1 / -1."""
    rc, info = _parse(ctx, not_sdp_level=klog.L_DBG)
    return 1 if rc == 0 and info is not None else -1


@mod.function("sdp_content", args=(Fx.ANY,), routes=ANY_ROUTE, kemi_name="sdp_content_flags")
def ki_sdp_content_flags(ctx: RouteCtx, flags: Any) -> int:
    """sdp_content() without parsing: is the body's Content-Type SDP? 1 / -1.
    1 when there is a body and its Content-Type is application/sdp (or absent), or
    multipart/mixed with "application/sdp" in the body. The number 0 (KEMI
    sdp_content_flags(0)) is sdp_content()."""
    if flags == 0 and not isinstance(flags, str):
        return ki_sdp_content(ctx)
    body, ctype = body_and_type(ctx.msg)
    if not body:
        return -1
    if ctype is None:
        return 1                            # no Content-Type: application/sdp by default
    try:
        mime = parse_content_type(ctype).mime
    except ParseError:
        return -1
    if mime == "application/sdp":
        return 1
    if mime == "multipart/mixed":
        return 1 if b"application/sdp" in body.lower() else -1
    return -1


@mod.function("sdp_with_ice", args=(), routes=ANY_ROUTE)
def ki_sdp_with_ice(ctx: RouteCtx) -> int:
    """The body contains an ICE candidate ("a=candidate")? 1 / -1 (the body is not parsed)."""
    body = ctx.msg.body
    if not body:
        log.debug("sdpops: message body has length zero")
        return -1
    return 1 if b"a=candidate" in body else -1


@mod.function("sdp_get_address_family", args=(), routes=ANY_ROUTE, kemi=False)
def ki_sdp_get_address_family(ctx: RouteCtx) -> int:
    """The SDP's address family: 4 (IP4), 6 (IP6) or -1.
    The session c=, else the first stream c=; -1 without one or without SDP."""
    _rc, info = _parse(ctx)
    if info is None:
        return -1
    result = -1
    for s in info.sessions:
        if s.ip_addr:
            pf = s.pf
        else:
            pf = next((st.pf for st in s.streams if st.ip_addr), 0)
        result = 4 if pf == AF_INET else 6 if pf == AF_INET6 else -1
        if result > 0:
            break
    return result


@mod.function("sdp_print", args=(Fx.IGP,), routes=ANY_ROUTE)
def ki_sdp_print(ctx: RouteCtx, level: int) -> int:
    """Log the parsed SDP (sessions, streams, payload types) at log LEVEL.
    Kamailio levels (-1 error ... 3 debug). 1; -1 when the body is not SDP."""
    rc, info = _parse(ctx)
    if rc < 0:
        return -1
    if not klog.enabled(level):
        return 1
    for line in describe(info):
        log.log(klog.py_level(level), "%s", line)
    return 1


def describe(info: Optional[SdpInfo]) -> list[str]:
    """sdp_print()'s lines: the SDP, its sessions, their streams and payload types."""
    if info is None:
        return ["sdp: no sdp body"]
    out = [f"sdp: {len(info.sessions)} session(s), {len(info.streams)} stream(s)"]
    for s in info.sessions:
        out.append(f"..session[{s.session_num}]: disposition '{s.cnt_disp}' c '{s.ip_addr}' "
                   f"o '{s.o_ip_addr}' sess-version '{s.o_sess_version}' bandwidth "
                   f"'{s.bw_type}:{s.bw_width}' mode '{s.sendrecv_mode}' {len(s.streams)} "
                   "stream(s)")
        for st in s.streams:
            out.append(f"....stream[{st.stream_num}]: '{st.media}' '{st.ip_addr}:{st.port}' "
                       f"rtcp '{st.rtcp_port}' '{st.transport}' rtp {int(st.is_rtp)} payloads "
                       f"'{st.payloads}' bandwidth '{st.bw_type}:{st.bw_width}' mode "
                       f"'{st.sendrecv_mode}' ptime '{st.ptime}' hold {st.is_on_hold} "
                       f"{len(st.ice_candidates)} ice candidate(s)")
            for i, p in enumerate(st.payload_attrs):
                out.append(f"......payload[{i}]: '{p.rtp_payload}' '{p.rtp_enc}' "
                           f"'{p.rtp_clock}' '{p.rtp_params}' '{p.fmtp_string}'")
            for c in st.ice_candidates:
                out.append(f"......ice candidate foundation '{c.foundation}' component id "
                           f"'{c.component_id}'")
    return out


# ---- $sdp(name) ------------------------------------------------------------------------------

def _stream0(info: SdpInfo) -> Optional[SdpStream]:
    return info.sessions[0].streams[0] if info.sessions and info.sessions[0].streams else None


def _str2slong(text: str) -> Optional[int]:
    """Kamailio str2slong(): an optional sign and digits only, within a C long."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits.isdigit() or not digits.isascii():
        return None
    value = -int(digits) if text[:1] == "-" else int(digits)
    return value if -_LONG_MAX - 1 <= value <= _LONG_MAX else None


def _sess_version(info: SdpInfo) -> tuple[Optional[int], int, int, str]:
    """sess-version of the last session (as Kamailio's loop leaves it): (value, start, end,
    text); value None when there is no session or it is not a number."""
    if not info.sessions:
        return None, -1, -1, ""
    s = info.sessions[-1]
    if not s.o_sess_version:
        return None, -1, -1, ""
    return (_str2slong(s.o_sess_version), s.o_sess_version_start, s.o_sess_version_end,
            s.o_sess_version)


def _attr_value(st: SdpStream, prefix: str) -> Optional[str]:
    """The value after PREFIX ("b=AS:") of the stream's first line starting with it and
    longer than it (Kamailio sdpops_attr_val)."""
    for ln in st.lines:
        if ln.type == prefix[0] and len(ln.text) > len(prefix) and ln.text.startswith(prefix):
            return ln.text[len(prefix):]
    return None


def _get_body(info: SdpInfo) -> Any:
    return info.text(info.raw_start, info.raw_end)


def _get_sess_version(info: SdpInfo) -> Any:
    return _sess_version(info)[0]


def _get_c_ip(info: SdpInfo) -> Any:
    if not info.sessions:
        return None
    st = _stream0(info)
    if st is not None and st.ip_addr:
        return st.ip_addr
    return info.sessions[0].ip_addr or None


def _get_c_af(info: SdpInfo) -> Any:
    if not info.sessions:
        return None
    st = _stream0(info)
    if st is not None and st.ip_addr:
        return st.pf
    s = info.sessions[0]
    return s.pf if s.ip_addr else None


def _get_o_ip(info: SdpInfo) -> Any:
    if not info.sessions:
        return None
    return info.sessions[0].o_ip_addr or None


def _get_rtp_port(info: SdpInfo) -> Any:
    st = _stream0(info)
    if st is None:
        return None
    return st.port or None


def _get_rtcp_port(info: SdpInfo) -> Any:
    st = _stream0(info)
    if st is None:
        return None
    if st.rtcp_port:
        return st.rtcp_port
    if not st.port.isdigit() or int(st.port) >= 65535:
        return None
    return str(int(st.port) + 1)


def _get_m0_raw(info: SdpInfo) -> Any:
    st = _stream0(info)
    return info.text(st.start, st.end) if st is not None else None


def _get_bw(bwtype: str) -> Any:
    def get(info: SdpInfo) -> Any:
        st = _stream0(info)
        return _attr_value(st, f"b={bwtype}:") if st is not None else None
    return get


_SDP_NAMES = {
    "body": _get_body, "raw": _get_body, "sess_version": _get_sess_version,
    "c:ip": _get_c_ip, "c:af": _get_c_af, "o:ip": _get_o_ip,
    "m0:rtp:port": _get_rtp_port, "m0:rtcp:port": _get_rtcp_port, "m0:raw": _get_m0_raw,
    "m0:b:AS": _get_bw("AS"), "m0:b:RR": _get_bw("RR"), "m0:b:RS": _get_bw("RS"),
}


class SdpPv(PvSpec):
    """$sdp(name): a field of the message's SDP ($null without SDP); $sdp(sess_version) is
    writable."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.text = f"$sdp({name})"
        self._get = _SDP_NAMES[name]
        self.writable = name == "sess_version"

    def get(self, ctx: RouteCtx) -> Any:
        _rc, info = _parse(ctx, klog.L_INFO, klog.L_INFO)
        return None if info is None else self._get(info)

    def set(self, ctx: RouteCtx, value: Any) -> None:
        """$sdp(sess_version) = N writes N into the o= line; -1 increments the current value.
        Errors are logged and leave the SDP as it is."""
        if not isinstance(value, int) or isinstance(value, bool):
            log.error("sdpops: %s: expected integer, got %r", self.text, value)
            return
        _rc, info = _parse(ctx)
        old, start, end, old_text = (None, -1, -1, "") if info is None else _sess_version(info)
        if old is None:
            log.error("sdpops: %s: no sess-version to set", self.text)
            return
        new = value
        if value == -1:
            if old == _LONG_MAX:
                log.error("sdpops: %s: autoincrement overflows %s", self.text, old)
                return
            new = old + 1
            if len(str(new)) < len(old_text):
                log.error("sdpops: %s: autoincrement new(%s) < old(%s)", self.text, new, old_text)
                return
        data = str(new).encode()
        ed = SdpEditor(ctx.msg)
        st = SDPOPS.of(ctx)
        prev = st.sess_version_edits.get(id(ctx.msg))
        if prev is not None and prev[:2] == (start, end):
            ed.retract(start, end, prev[2])
        ed.replace(start, end, data)
        ed.commit()
        st.sess_version_edits[id(ctx.msg)] = (start, end, data)


@dataclass(slots=True)
class SdpopsMsg:
    """sdpops' part of one message: the last $sdp(sess_version) write per message object
    (a second write replaces the first instead of adding to it)."""

    sess_version_edits: dict[int, tuple[int, int, bytes]] = field(default_factory=dict)

    def copy(self) -> "SdpopsMsg":
        return SdpopsMsg(dict(self.sess_version_edits))


SDPOPS: MsgSlot[SdpopsMsg] = MsgSlot("sdpops", SdpopsMsg)


def _sdp_pv(inner: Optional[str]) -> PvSpec:
    name = (inner or "").strip()
    if name not in _SDP_NAMES:
        raise ValueError(f"unknown $sdp() name \"{name}\" (one of {', '.join(_SDP_NAMES)})")
    return SdpPv(name)


mod.pv("sdp", _sdp_pv, doc="$sdp(name): body (raw), sess_version (writable; -1 increments), "
       "c:ip, c:af, o:ip, m0:rtp:port, m0:rtcp:port, m0:raw, m0:b:AS, m0:b:RR, m0:b:RS of the "
       "message's SDP; $null without SDP.")
