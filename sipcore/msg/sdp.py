"""SDP (RFC 4566) bodies: sessions, media streams, payload types and the lines they come from.

Runs in: SIP workers (nathelper, rtpproxy and sdpops read and rewrite SDP), tests. Touches no
shared state; imports only the stdlib and the message layer.

Shape (after Kamailio src/core/parser/sdp/: sdp_info -> sessions -> streams -> payload attrs):

    info = parse_sdp(body, "application/sdp")           # or a multipart/mixed Content-Type
    for session in info.sessions:                         # one per SDP (multipart: per part)
        session.origin, session.connection, session.lines # o=, c=, the session-level lines
        for st in session.streams:                        # one per m= line
            st.media, st.port, st.transport, st.payloads  # "audio", "49170", "RTP/AVP", "0 8 97"
            st.connection or session.connection           # c= of the stream, else the session's
            st.payload_attrs                              # rtpmap/fmtp per payload type
            st.lines                                      # the m= line and the lines under it

Every line is an SdpLine with its byte offsets in the parsed body (`start`, `end` including its
line ending, `offset(i)` for a character of its text), so callers edit by span: replace a c=
line, delete a stream, cut one payload type out of an m= line. Line endings are kept as they
are (CRLF or LF; the last line may have none). Line text is the UTF-8 decoding of the bytes with
undecodable bytes kept as surrogates, so text -> bytes round-trips exactly.

`strict=True` applies the checks of Kamailio's parse_sdp(): a session needs v=, o= (with
sess-version and an IP4/IP6 address) and an m= line, every stream needs an m= line with port
and transport, and a c= address of its own or of the session; a malformed line or a missing one
raises SdpError. `strict=False` never raises: what is missing or malformed is left empty (None,
"" or []), which is what nathelper and rtpproxy work with.

`msg_sdp(msg)` is the SDP of a message's body as Kamailio's sdpops sees it (cached per
message); `SdpEditor(msg)` records edits by span, into the message's edit list (so they combine
with the other edits of the message) or, when set_body() replaced the body, into a new body.
`SipMsg.current_body()` is the body with the byte edits recorded so far applied.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sipcore.errors import ParseError
from sipcore.msg.headers import HdrType, parse_content_type
from sipcore.msg.lumps import LumpList, apply_ops
from sipcore.msg.msg import SipMsg

# Kamailio's connection address families (Linux AF_INET / AF_INET6): sdp_session_cell.pf,
# $sdp(c:af)
AF_INET = 2
AF_INET6 = 10

# is_on_hold (Kamailio sdp.h)
NO_HOLD = 0
RFC2543_HOLD = 1        # c= 0.0.0.0
RFC3264_HOLD = 2        # a=inactive / a=sendonly

# transports Kamailio knows (extract_media_attr sup_ptypes), lower case -> is RTP
_TRANSPORTS = {"rtp/avp": True, "udptl": False, "rtp/avpf": True, "rtp/savp": True,
               "rtp/savpf": True, "udp": False, "udp/bfcp": False}
_SENDRECV = ("sendrecv", "recvonly", "inactive", "sendonly")
_ENC = "utf-8"
_ERRORS = "surrogateescape"


class SdpError(ParseError):
    """A body that is not SDP, or SDP that Kamailio's parser would refuse (strict mode)."""


class NotSdpError(SdpError):
    """The body is not SDP at all: no Content-Type, or another type than application/sdp or
    multipart/mixed (callers checking for SDP need not log it as an error)."""


# ---- lines -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SdpLine:
    """One line of the body: `<type>=<value>` followed by its line ending."""

    type: str       # "v", "o", "c", "m", "a", ...; "" when the line is not "x=..."
    text: str       # the line without its line ending
    eol: str        # "\r\n", "\n", or "" (a last line without one)
    start: int      # byte offset of the line in the parsed body
    end: int        # byte offset after its line ending
    media: int      # -1 in the session part, else the index of its m= section in the session

    @property
    def value(self) -> str:
        """The text after "x=" (the whole text for a line that is not "x=...")."""
        return self.text[2:] if self.type else self.text

    @property
    def text_end(self) -> int:
        """Byte offset of the end of the text (where the line ending starts)."""
        return self.end - len(self.eol)

    def offset(self, i: int) -> int:
        """Byte offset in the body of character I of the text."""
        if self.text_end - self.start == len(self.text):          # ASCII: one byte per char
            return self.start + i
        return self.start + len(self.text[:i].encode(_ENC, _ERRORS))


def split_lines(body: bytes, start: int = 0, end: Optional[int] = None) -> list[SdpLine]:
    """The lines of body[start:end] (LF or CRLF endings), with their media section index."""
    if end is None:
        end = len(body)
    out: list[SdpLine] = []
    media = -1
    pos = start
    while pos < end:
        nl = body.find(b"\n", pos, end)
        if nl < 0:
            raw, eol, nxt = body[pos:end], "", end
        else:
            raw, eol, nxt = body[pos:nl], "\n", nl + 1
            if raw.endswith(b"\r"):
                raw, eol = raw[:-1], "\r\n"
        text = raw.decode(_ENC, _ERRORS)
        kind = text[0] if len(text) >= 2 and text[1] == "=" else ""
        if kind == "m":
            media += 1
        out.append(SdpLine(kind, text, eol, pos, nxt, media))
        pos = nxt
    return out


# ---- field parsers (one line's value each) ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class Connection:
    """c=<nettype> <addrtype> <connection-address>."""

    nettype: str    # "IN"
    addrtype: str   # "IP4" / "IP6"
    address: str    # as written, multicast "/ttl[/count]" included

    @property
    def host(self) -> str:
        """The address without a multicast "/ttl" or "/count" suffix."""
        return self.address.split("/", 1)[0]

    @property
    def pf(self) -> int:
        return _pf(self.addrtype)


def parse_connection(value: str) -> Optional[Connection]:
    """The value of a c= line; None when it has fewer than three fields."""
    parts = value.split()
    if len(parts) < 3:
        return None
    return Connection(parts[0], parts[1], parts[2])


@dataclass(frozen=True, slots=True)
class Origin:
    """o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>."""

    username: str
    sess_id: str
    sess_version: str
    nettype: str
    addrtype: str
    address: str

    @property
    def pf(self) -> int:
        return _pf(self.addrtype)


def parse_origin(value: str) -> Optional[Origin]:
    """The value of an o= line; None when it has fewer than six fields."""
    parts = value.split()
    if len(parts) < 6:
        return None
    return Origin(*parts[:6])


@dataclass(frozen=True, slots=True)
class MediaDesc:
    """m=<media> <port>[/<number of ports>] <proto> <fmt> ..."""

    media: str      # "audio"
    port: str       # as written ("49170", "49170/2")
    transport: str  # "RTP/AVP"
    payloads: str   # the fmt list as written ("0 8 97"), "" when there is none
    payloads_at: int    # index of the fmt list in the value (its end when there is none)
    # fields the line does not have are "" (strict parsing refuses such a line)


def parse_media(value: str) -> MediaDesc:
    """The value of an m= line (Kamailio extract_media_attr): fields separated by spaces or
    tabs; the ones the line does not have are empty (strict parsing refuses those lines)."""
    v = value.rstrip(" \t")
    i = 0
    fields: list[str] = []
    while len(fields) < 3:
        while i < len(v) and v[i] in " \t":
            i += 1
        j = i
        while j < len(v) and v[j] not in " \t":
            j += 1
        fields.append(v[i:j])
        i = j
    while i < len(v) and v[i] in " \t":
        i += 1
    return MediaDesc(fields[0], fields[1], fields[2], v[i:], i)


def port_number(port: str) -> int:
    """The leading digits of an m= port ("49170/2" -> 49170) as C atoi() reads them; 0 when
    there are none."""
    n = 0
    for c in port:
        if not "0" <= c <= "9":
            break
        n = n * 10 + ord(c) - 48
    return n


@dataclass(slots=True)
class PayloadAttr:
    """One payload type of an m= line and its a=rtpmap / a=fmtp (Kamailio sdp_payload_attr)."""

    rtp_payload: str            # "0", "96"
    rtp_enc: str = ""           # a=rtpmap encoding name ("PCMU", "opus")
    rtp_clock: str = ""         # clock rate
    rtp_params: str = ""        # encoding parameters (channels)
    fmtp_string: str = ""       # a=fmtp value after the payload type
    rtpmap_line: Optional[SdpLine] = None
    fmtp_line: Optional[SdpLine] = None


def parse_rtpmap(value: str) -> Optional[tuple[str, str, str, str]]:
    """The value of a=rtpmap ("96 opus/48000/2") -> (payload, encoding, clock, params);
    None when the encoding or its "/" is missing (Kamailio extract_rtpmap)."""
    v = value.strip(" \t")
    pt, _, rest = _token(v)
    rest = rest.lstrip(" \t")
    if not pt or not rest or "/" not in rest:
        return None
    enc, _, clock = rest.partition("/")
    clock, _, params = clock.partition("/")
    return pt, enc, clock, params


def parse_fmtp(value: str) -> Optional[tuple[str, str]]:
    """The value of a=fmtp ("101 0-15") -> (payload, parameters); None without parameters."""
    v = value.strip(" \t")
    pt, _, rest = _token(v)
    rest = rest.strip(" \t")
    if not pt or not rest:
        return None
    return pt, rest


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """a=candidate:<foundation> <component-id> <transport> <priority> <address> <port> typ
    <type> ... (RFC 8839 5.1); fields the line does not have are empty."""

    foundation: str
    component_id: int
    transport: str
    priority: str
    address: str
    port: str
    cand_type: str
    line: SdpLine


def parse_candidate(value: str, line: SdpLine) -> Optional[IceCandidate]:
    """The value after "candidate:"; None without a foundation and a numeric component id
    (Kamailio extract_candidate)."""
    parts = value.split(" ")
    if len(parts) < 3 or not parts[0] or not parts[1][:1].isdigit():
        return None
    digits = ""
    for c in parts[1]:
        if not c.isdigit():
            break
        digits += c
    rest = parts[2:] + [""] * 5
    ctype = ""
    if "typ" in parts[6:]:
        k = parts.index("typ", 6)
        ctype = parts[k + 1] if k + 1 < len(parts) else ""
    return IceCandidate(parts[0], int(digits), rest[0], rest[1], rest[2], rest[3], ctype, line)


# ---- the parsed structure ------------------------------------------------------------------

@dataclass(slots=True)
class SdpStream:
    """One m= line and the lines under it (Kamailio sdp_stream_cell)."""

    stream_num: int                 # index in the session
    m_line: SdpLine
    media: str                      # "audio", "video", "application"...
    port: str                       # as written ("49170", "49170/2")
    transport: str                  # "RTP/AVP", "UDP/TLS/RTP/SAVPF"...
    payloads: str                   # the fmt list ("0 8 97"), "" when there is none
    payloads_start: int             # byte offset of the fmt list in the body
    start: int                      # the stream's bytes: its m= line ...
    end: int                        # ... to the next m= line or the end of the SDP
    lines: list[SdpLine]            # the m= line first
    is_rtp: bool = False            # a transport Kamailio knows as RTP
    c_line: Optional[SdpLine] = None        # the first c= of the stream
    connection: Optional[Connection] = None
    pf: int = 0                     # AF_INET / AF_INET6 of the stream's own c=, else 0
    ip_addr: str = ""               # the stream's own c= address ("" -> the session's)
    bw_type: str = ""               # first b=<type>:<width> of the stream
    bw_width: str = ""
    sendrecv_mode: str = ""         # "sendrecv", "recvonly", "sendonly", "inactive" or ""
    is_on_hold: int = NO_HOLD
    ptime: str = ""
    rtcp_port: str = ""             # value of a=rtcp: ("53020", "53020 IN IP4 1.2.3.4")
    rtcp_line: Optional[SdpLine] = None     # the last a=rtcp: line
    payload_attrs: list[PayloadAttr] = field(default_factory=list)   # in m= order
    ice_candidates: list[IceCandidate] = field(default_factory=list)
    ice_options: list[str] = field(default_factory=list)
    accept_types: str = ""
    accept_wrapped_types: str = ""
    max_size: str = ""
    path: str = ""

    @property
    def port_num(self) -> int:
        return port_number(self.port)

    def payload(self, pt: str) -> Optional[PayloadAttr]:
        """The payload type PT of this stream (first of that number)."""
        for p in self.payload_attrs:
            if p.rtp_payload == pt:
                return p
        return None


@dataclass(slots=True)
class SdpSession:
    """One SDP: its session-level part and its streams (Kamailio sdp_session_cell). A
    multipart body has one per application/sdp part."""

    session_num: int
    start: int                      # the SDP's bytes in the body
    end: int
    lines: list[SdpLine]            # session-level lines (before the first m=)
    cnt_disp: str = ""              # Content-Disposition of the multipart part
    o_line: Optional[SdpLine] = None
    origin: Optional[Origin] = None
    o_sess_version: str = ""
    o_sess_version_start: int = -1  # byte span of sess-version in the body ($sdp(sess_version) =)
    o_sess_version_end: int = -1
    o_pf: int = 0
    o_ip_addr: str = ""
    c_line: Optional[SdpLine] = None    # the first session-level c=
    connection: Optional[Connection] = None
    pf: int = 0
    ip_addr: str = ""
    bw_type: str = ""
    bw_width: str = ""
    sendrecv_mode: str = ""
    is_on_hold: int = NO_HOLD
    streams: list[SdpStream] = field(default_factory=list)

    @property
    def all_lines(self) -> list[SdpLine]:
        return self.lines + [ln for st in self.streams for ln in st.lines]


@dataclass(slots=True)
class SdpInfo:
    """A parsed body (Kamailio sdp_info): its SDP sessions and where the SDP text is."""

    body: bytes
    sessions: list[SdpSession]
    raw_start: int                  # Kamailio raw_sdp: the whole body, or the last
    raw_end: int                    # application/sdp part (empty: a multipart without one)

    @property
    def raw(self) -> bytes:
        return self.body[self.raw_start:self.raw_end]

    @property
    def streams(self) -> list[SdpStream]:
        """Every stream of every session, in order."""
        return [st for s in self.sessions for st in s.streams]

    @property
    def lines(self) -> list[SdpLine]:
        """Every SDP line, in order (the lines of multipart headers and delimiters excluded)."""
        return [ln for s in self.sessions for ln in s.all_lines]

    def eol(self) -> str:
        """The line ending the SDP uses (its first), CRLF when no line has one."""
        return next((ln.eol for ln in self.lines if ln.eol), "\r\n")

    def text(self, start: int, end: int) -> str:
        """body[start:end] as text (UTF-8, undecodable bytes kept as surrogates)."""
        return self.body[start:end].decode(_ENC, _ERRORS)


# ---- parsing ---------------------------------------------------------------------------------

def parse_sdp(body: bytes, content_type: Optional[str] = None, *,
              strict: bool = True) -> SdpInfo:
    """BODY with the Content-Type value CONTENT_TYPE: application/sdp (or None: the body is
    taken as SDP) gives one session; multipart/mixed gives one per application/sdp part (none:
    no sessions, as Kamailio). Any other type raises SdpError, as do (strict) the defects
    Kamailio's parse_sdp() refuses."""
    mime = ""
    boundary: Optional[str] = None
    if content_type is not None:
        try:
            ct = parse_content_type(content_type)
        except ParseError as e:
            raise SdpError(f"bad Content-Type: {e.reason}") from None
        mime = ct.mime
        for k, v in ct.params:
            if k.lower() == "boundary" and v:
                boundary = v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v
    if content_type is None or mime == "application/sdp":
        session = _parse_session(body, 0, len(body), 0, "", strict)
        return SdpInfo(body, [session], 0, len(body))
    if mime != "multipart/mixed":
        raise NotSdpError(f"not an SDP body (Content-Type {mime})")
    if not boundary:
        raise SdpError("multipart/mixed Content-Type without boundary")
    sessions: list[SdpSession] = []
    raw = (0, 0)
    for start, end, disp in _sdp_parts(body, boundary.encode(_ENC, _ERRORS)):
        sessions.append(_parse_session(body, start, end, len(sessions), disp, strict))
        raw = (start, end)
    return SdpInfo(body, sessions, raw[0], raw[1])


def _sdp_parts(body: bytes, boundary: bytes) -> list[tuple[int, int, str]]:
    """(start, end, Content-Disposition) of every application/sdp part (Kamailio
    parse_mixed_content): the part's content from its first non-blank byte to the next
    delimiter line (the CRLF before the delimiter stays with the SDP, as in Kamailio)."""
    delim = b"--" + boundary
    marks: list[int] = []
    i = body.find(delim)
    while i >= 0:
        if i == 0 or body[i - 1] in b"\r\n":
            marks.append(i)
        i = body.find(delim, i + len(delim))
    if not marks:
        raise SdpError("multipart body without its boundary", 0)
    out: list[tuple[int, int, str]] = []
    for k, d1 in enumerate(marks):
        if body.startswith(b"--", d1 + len(delim)):
            break                                   # close delimiter: the rest is epilogue
        d2 = marks[k + 1] if k + 1 < len(marks) else len(body)
        nl = body.find(b"\n", d1, d2)
        if nl < 0:
            raise SdpError("multipart delimiter line without end", d1)
        pos = nl + 1
        is_sdp = False
        disp = ""
        hdrs: list[tuple[str, str]] = []
        while pos < d2 and body[pos] not in b"\r\n":     # part headers up to the empty line
            nl = body.find(b"\n", pos, d2)
            line_end = d2 if nl < 0 else nl + 1
            line = body[pos:line_end].decode(_ENC, _ERRORS).rstrip("\r\n")
            if line[:1] in (" ", "\t") and hdrs:
                hdrs[-1] = (hdrs[-1][0], hdrs[-1][1] + " " + line.strip())
            else:
                name, colon, value = line.partition(":")
                if not colon:
                    raise SdpError(f"bad multipart part header {line!r}", pos)
                hdrs.append((name.strip().lower(), value.strip()))
            pos = line_end
        for name, value in hdrs:
            if name in ("content-type", "c"):
                try:
                    pct = parse_content_type(value)
                except ParseError as e:
                    raise SdpError(f"bad part Content-Type: {e.reason}", pos) from None
                if "*" in (pct.type, pct.subtype):
                    raise SdpError("part Content-Type with a wildcard", pos)
                is_sdp = pct.mime == "application/sdp"
            elif name == "content-disposition":
                disp = value
        if is_sdp:
            while pos < d2 and body[pos] in b"\r\n\t ":
                pos += 1
            out.append((pos, d2, disp))
    return out


def _pf(addrtype: str) -> int:
    return AF_INET if addrtype == "IP4" else AF_INET6 if addrtype == "IP6" else 0


def _token(s: str) -> tuple[str, str, str]:
    """s split at its first space or tab: (token, separator, rest)."""
    for i, c in enumerate(s):
        if c in " \t":
            return s[:i], c, s[i + 1:]
    return s, "", ""


class _Parse:
    """One session being parsed: strict mode raises on the first defect, lenient skips it."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict

    def bad(self, reason: str, offset: int = -1) -> None:
        if self.strict:
            raise SdpError(reason, offset)


def _parse_session(body: bytes, start: int, end: int, num: int, disp: str,
                   strict: bool) -> SdpSession:
    p = _Parse(strict)
    lines = split_lines(body, start, end)
    m_idx = [i for i, ln in enumerate(lines) if ln.type == "m"]
    first_m = m_idx[0] if m_idx else len(lines)
    s = SdpSession(num, start, end, lines[:first_m], cnt_disp=disp)
    if not any(ln.type == "v" for ln in lines):
        p.bad("no v= line in SDP", start)
    s.o_line = next((ln for ln in s.lines if ln.type == "o"), None)
    if s.o_line is None:
        p.bad("no o= line in SDP", start)
    if not m_idx:
        p.bad("no m= line in SDP", start)
    if s.o_line is not None:
        _session_origin(p, s, s.o_line)
    s.c_line = next((ln for ln in s.lines if ln.type == "c"), None)
    if s.c_line is not None:
        s.connection = _connection(p, s.c_line)
        if s.connection is not None:
            s.pf, s.ip_addr = s.connection.pf, s.connection.address
    b_line = next((ln for ln in s.lines if ln.type == "b"), None)
    if b_line is not None:
        s.bw_type, s.bw_width = _bandwidth(b_line.value)
    for ln in s.lines:
        if ln.type == "a":
            mode = _sendrecv(ln.value)
            if mode:
                s.sendrecv_mode = mode
                if mode in ("inactive", "sendonly"):
                    s.is_on_hold = RFC3264_HOLD
                break
    for k, mi in enumerate(m_idx):
        nxt = m_idx[k + 1] if k + 1 < len(m_idx) else len(lines)
        s.streams.append(_parse_stream(p, s, k, lines[mi:nxt],
                                       lines[nxt].start if nxt < len(lines) else end))
    return s


def _session_origin(p: _Parse, s: SdpSession, o_line: SdpLine) -> None:
    origin = parse_origin(o_line.value)
    if origin is None or origin.pf == 0:
        p.bad(f"bad o= line {o_line.text!r}", o_line.start)
        if origin is None:
            return
    s.origin = origin
    s.o_sess_version = origin.sess_version
    i = _field_index(o_line.text, 2, 2)
    s.o_sess_version_start = o_line.offset(i)
    s.o_sess_version_end = o_line.offset(i + len(origin.sess_version))
    s.o_pf, s.o_ip_addr = origin.pf, origin.address


def _field_index(text: str, skip: int, n: int) -> int:
    """Index in TEXT of whitespace-separated field N (0-based) of text[skip:]."""
    i = skip
    for k in range(n + 1):
        while i < len(text) and text[i] in " \t":
            i += 1
        if k == n:
            return i
        while i < len(text) and text[i] not in " \t":
            i += 1
    return i


def _connection(p: _Parse, line: SdpLine) -> Optional[Connection]:
    conn = parse_connection(line.value)
    if conn is None or conn.pf == 0:
        p.bad(f"bad c= line {line.text!r}", line.start)
        return None
    return conn


def _bandwidth(value: str) -> tuple[str, str]:
    bwtype, colon, width = value.strip(" \t").partition(":")
    return (bwtype, width) if colon else ("", "")


def _sendrecv(value: str) -> str:
    """The direction attribute a line's value starts with (Kamailio extract_sendrecv_mode
    compares the first 8 characters, in any case)."""
    head = value[:8].lower()
    return head if head in _SENDRECV else ""


def _parse_stream(p: _Parse, s: SdpSession, num: int, lines: list[SdpLine],
                  end: int) -> SdpStream:
    m_line = lines[0]
    md = parse_media(m_line.value)
    if not (md.media and md.port and md.transport):
        p.bad(f"bad m= line {m_line.text!r}", m_line.start)
    st = SdpStream(num, m_line, md.media, md.port, md.transport, md.payloads,
                   m_line.offset(2 + md.payloads_at), m_line.start, end, lines,
                   is_rtp=_TRANSPORTS.get(md.transport.lower(), False))
    st.c_line = next((ln for ln in lines if ln.type == "c"), None)
    if st.c_line is not None:
        st.connection = _connection(p, st.c_line)
        if st.connection is not None:
            st.pf, st.ip_addr = st.connection.pf, st.connection.address
    elif s.c_line is None:
        p.bad("no c= line for a media stream", m_line.start)
    b_line = next((ln for ln in lines if ln.type == "b"), None)
    if b_line is not None:
        st.bw_type, st.bw_width = _bandwidth(b_line.value)
    st.payload_attrs = [PayloadAttr(pt) for pt in md.payloads.split()]
    _stream_attributes(st, bool(st.payload_attrs))
    if not st.is_on_hold:
        trickle = "trickle" in st.ice_options
        hold_ip = (st.pf, st.ip_addr) if st.ip_addr else (s.pf, s.ip_addr)
        if hold_ip == (AF_INET, "0.0.0.0") and not (trickle and st.port == "9"):
            st.is_on_hold = RFC2543_HOLD          # RFC 8840 trickle ICE offers use 0.0.0.0:9
    return st


def _stream_attributes(st: SdpStream, with_payloads: bool) -> None:
    """The a= lines of a stream, in Kamailio's order of tests (parse_sdp_session): payload
    related attributes only when the m= line lists payload types."""
    for ln in st.lines[1:]:
        if ln.type != "a":
            continue
        v = ln.value
        low = v.lower()
        if with_payloads and v.startswith("ptime:"):
            st.ptime = v[6:].strip(" \t")
        elif with_payloads and _sendrecv(v):
            st.sendrecv_mode = _sendrecv(v)
            if st.sendrecv_mode in ("inactive", "sendonly"):
                st.is_on_hold = RFC3264_HOLD
        elif with_payloads and low.startswith("rtpmap:") and (rm := parse_rtpmap(v[7:])):
            pa = st.payload(rm[0])
            if pa is not None:
                pa.rtp_enc, pa.rtp_clock, pa.rtp_params = rm[1:]
                pa.rtpmap_line = ln
        elif v.startswith("rtcp:"):
            st.rtcp_port = v[5:].strip(" \t")
            st.rtcp_line = ln
        elif with_payloads and low.startswith("fmtp:") and (fm := parse_fmtp(v[5:])):
            pa = st.payload(fm[0])
            if pa is not None:
                pa.fmtp_string, pa.fmtp_line = fm[1], ln
        elif with_payloads and low.startswith("candidate:"):
            cand = parse_candidate(v[10:], ln)
            if cand is not None:
                st.ice_candidates.append(cand)
        elif with_payloads and low.startswith("ice-options:"):
            st.ice_options += v[12:].split()
        elif v.startswith("accept-types:"):
            st.accept_types = v[13:].strip(" \t")
        elif v.startswith("accept-wrapped-types:"):
            st.accept_wrapped_types = v[21:].strip(" \t")
        elif v.startswith("max-size:"):
            st.max_size = v[9:].strip(" \t")
        elif v.startswith("path:"):
            st.path = v[5:].strip(" \t")


# ---- the SDP of a message ------------------------------------------------------------------

def body_and_type(msg: SipMsg) -> tuple[bytes, Optional[str]]:
    """The body sdpops reads (the received one, or set_body()'s) and its Content-Type value
    (set_body()'s type if it gave one, else the header's; None when there is none)."""
    ctype = msg._new_ctype if msg._new_body is not None else None  # noqa: SLF001
    if ctype is None:
        h = msg.header(HdrType.CONTENTTYPE)
        ctype = h.value if h is not None else None
    return msg.body, ctype


def msg_sdp(msg: SipMsg) -> Optional[SdpInfo]:
    """The SDP of MSG's body (the received one, or set_body()'s) as Kamailio's parse_sdp()
    reads it: None when the body is empty; SdpError when there is no Content-Type, it is not
    application/sdp or multipart/mixed, or the SDP is malformed (strict). Byte edits recorded
    on the received body are not seen (as in Kamailio, which parses the received message).
    Parsed once per body and Content-Type (cached on the message)."""
    body, ctype = body_and_type(msg)
    if not body:
        return None
    cache = msg._cache()  # noqa: SLF001
    hit = cache.get("sdp")
    if hit is not None and hit[0] == ctype and hit[1] == body:
        if isinstance(hit[2], SdpError):
            raise hit[2]
        return hit[2]  # type: ignore[no-any-return]
    result: SdpInfo | SdpError
    if ctype is None:
        result = NotSdpError("no Content-Type for the body")
    else:
        try:
            result = parse_sdp(body, ctype)
        except SdpError as e:
            result = e
    cache["sdp"] = (ctype, body, result)
    if isinstance(result, SdpError):
        raise result
    return result


class SdpEditor:
    """Edits of the SDP msg_sdp(msg) returned, by byte span of that SdpInfo's body.

    The received body: each edit goes straight into the message's edit list, on the
    message's offsets, so it combines with every other edit (and overlapping deletions merge).
    A body set_body() replaced: the edits are collected and commit() sets the edited body
    (with the same Content-Type). Call commit() in both cases."""

    def __init__(self, msg: SipMsg) -> None:
        self.msg = msg
        replaced = msg._new_body is not None  # noqa: SLF001 - part of the message layer
        self._pending: Optional[LumpList] = LumpList() if replaced else None
        self._body = msg.body
        self._base = msg.body_offset

    def delete(self, start: int, end: int) -> None:
        self.replace(start, end, b"")

    def replace(self, start: int, end: int, data: bytes) -> None:
        if self._pending is not None:
            self._pending.replace(start, end, data)
        else:
            self.msg.replace_range(self._base + start, self._base + end, data)

    def insert(self, pos: int, data: bytes) -> None:
        if self._pending is not None:
            self._pending.insert_before(pos, data)
        else:
            self.msg.insert_before(self._base + pos, data)

    def retract(self, start: int, end: int, data: bytes) -> None:
        """Forget a replacement of [start, end) by DATA recorded on the received body earlier
        (a value written twice is written once). A replaced body already holds it: nothing to
        forget, its next parse sees the new text."""
        if self._pending is None:
            pos, end = self._base + start, self._base + end
            lumps = self.msg.lumps
            lumps.discard([e for e in lumps.ops
                           if e.pos == pos and e.end == end and e.data == data])

    def commit(self) -> None:
        pending = self._pending
        if pending:
            self.msg.set_body(apply_ops(self._body, pending.ops, 0, len(self._body)),
                              self.msg._new_ctype)  # noqa: SLF001
            pending.ops.clear()
