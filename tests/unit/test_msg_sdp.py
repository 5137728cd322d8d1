"""sipcore.msg.sdp: the SDP parser (sessions, streams, payload types, line spans), strict and
lenient, plain and multipart bodies, and the message binding (msg_sdp, SdpEditor).
Data-driven: each case is a body, its Content-Type and the summary the parse must give.
Runs in: pytest only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pytest

from sipcore.msg import parse_msg
from sipcore.msg.sdp import (
    AF_INET, AF_INET6, NO_HOLD, RFC2543_HOLD, RFC3264_HOLD, NotSdpError, SdpEditor, SdpError,
    SdpInfo, body_and_type, msg_sdp, parse_candidate, parse_connection, parse_media,
    parse_origin, parse_sdp, port_number, split_lines,
)


def summary(info: SdpInfo) -> list[dict[str, Any]]:
    """Plain values of every session and stream, with the bytes of their spans."""
    out = []
    for s in info.sessions:
        out.append({
            "span": info.body[s.start:s.end],
            "o": (s.o_sess_version, s.o_pf, s.o_ip_addr,
                  info.body[s.o_sess_version_start:s.o_sess_version_end]),
            "c": (s.pf, s.ip_addr),
            "bw": (s.bw_type, s.bw_width),
            "mode": (s.sendrecv_mode, s.is_on_hold),
            "disp": s.cnt_disp,
            "streams": [{
                "m": (st.media, st.port, st.transport, st.payloads, st.is_rtp),
                "payloads_at": info.body[st.payloads_start:st.m_line.text_end],
                "c": (st.pf, st.ip_addr),
                "bw": (st.bw_type, st.bw_width),
                "mode": (st.sendrecv_mode, st.is_on_hold),
                "ptime": st.ptime,
                "rtcp": st.rtcp_port,
                "pt": [(p.rtp_payload, p.rtp_enc, p.rtp_clock, p.rtp_params, p.fmtp_string)
                       for p in st.payload_attrs],
                "ice": [(c.foundation, c.component_id, c.transport, c.address, c.port,
                         c.cand_type) for c in st.ice_candidates],
                "ice_options": st.ice_options,
                "span": info.body[st.start:st.end],
            } for st in s.streams],
        })
    return out


@dataclass
class Case:
    name: str
    body: bytes
    ctype: Optional[str]
    expected: list[dict[str, Any]]
    raw: Optional[bytes] = None          # Kamailio's raw_sdp (default: the whole body)


AUDIO = (b"v=0\r\n"
         b"o=alice 2890844526 2890844527 IN IP4 198.51.100.1\r\n"
         b"s=-\r\n"
         b"c=IN IP4 198.51.100.1\r\n"
         b"b=AS:64\r\n"
         b"t=0 0\r\n"
         b"m=audio 49170 RTP/AVP 0 8 101\r\n"
         b"a=rtpmap:0 PCMU/8000\r\n"
         b"a=rtpmap:101 telephone-event/8000\r\n"
         b"a=fmtp:101 0-15\r\n"
         b"a=ptime:20\r\n"
         b"a=sendrecv\r\n")
AUDIO_STREAM = {
    "m": ("audio", "49170", "RTP/AVP", "0 8 101", True), "payloads_at": b"0 8 101",
    "c": (0, ""), "bw": ("", ""), "mode": ("sendrecv", NO_HOLD), "ptime": "20", "rtcp": "",
    "pt": [("0", "PCMU", "8000", "", ""), ("8", "", "", "", ""),
           ("101", "telephone-event", "8000", "", "0-15")],
    "ice": [], "ice_options": [], "span": AUDIO[AUDIO.index(b"m=audio"):],
}


def _session(body: bytes, **over: Any) -> dict[str, Any]:
    d = {"span": body, "o": ("2890844527", AF_INET, "198.51.100.1", b"2890844527"),
         "c": (AF_INET, "198.51.100.1"), "bw": ("AS", "64"), "mode": ("", NO_HOLD),
         "disp": "", "streams": [AUDIO_STREAM]}
    d.update(over)
    return d


LF = AUDIO.replace(b"\r\n", b"\n")
NO_EOL = AUDIO[:-2]
MULTI = (b"v=0\r\n"
         b"o=- 1 2 IN IP6 2001:db8::1\r\n"
         b"s=-\r\n"
         b"c=IN IP6 2001:db8::1\r\n"
         b"t=0 0\r\n"
         b"m=audio 5000 RTP/SAVP 96\r\n"
         b"a=rtpmap:96 opus/48000/2\r\n"
         b"a=rtcp:5001 IN IP6 2001:db8::1\r\n"
         b"a=inactive\r\n"
         b"m=video 6000/2 RTP/AVPF 97 98\r\n"
         b"c=IN IP4 0.0.0.0\r\n"
         b"b=TIAS:128000\r\n"
         b"a=rtpmap:97 H264/90000\r\n"
         b"a=fmtp:97 profile-level-id=42e01f\r\n"
         b"m=application 0 UDP/BFCP *\r\n"
         b"m=image 7000 udptl t38\r\n")
ICE = (b"v=0\r\n"
       b"o=- 1 1 IN IP4 203.0.113.5\r\n"
       b"s=-\r\n"
       b"t=0 0\r\n"
       b"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
       b"c=IN IP4 0.0.0.0\r\n"
       b"a=ice-options:trickle\r\n"
       b"a=candidate:1 1 UDP 2130706431 203.0.113.5 40000 typ host\r\n"
       b"a=candidate:2 2 udp 1694498815 192.0.2.9 40001 typ srflx raddr 10.0.0.1 rport 9\r\n"
       b"a=rtpmap:111 opus/48000/2\r\n"
       b"m=audio 50000 RTP/AVP 0\r\n"
       b"c=IN IP4 0.0.0.0\r\n")
PART_SDP = LF
MIXED = (b"--b1\r\n"
         b"Content-Type: text/plain\r\n"
         b"\r\n"
         b"hello\r\n"
         b"--b1\r\n"
         b"Content-Type: application/sdp\r\n"
         b"Content-Disposition: session; handling=required\r\n"
         b"\r\n" + PART_SDP +
         b"\r\n--b1--\r\n")
SDP_AT = MIXED.index(b"v=0")
SDP_END = MIXED.index(b"--b1--")


CASES = [
    Case("crlf", AUDIO, "application/sdp", [_session(AUDIO)]),
    Case("no_content_type_is_sdp", AUDIO, None, [_session(AUDIO)]),
    Case("lf_only", LF, "Application/SDP", [_session(LF, streams=[
        dict(AUDIO_STREAM, span=LF[LF.index(b"m=audio"):])])]),
    Case("last_line_without_eol", NO_EOL, "application/sdp", [_session(NO_EOL, streams=[
        dict(AUDIO_STREAM, span=NO_EOL[NO_EOL.index(b"m=audio"):])])]),
    Case("ipv6_and_several_m_lines", MULTI, "application/sdp", [{
        "span": MULTI, "o": ("2", AF_INET6, "2001:db8::1", b"2"),
        "c": (AF_INET6, "2001:db8::1"), "bw": ("", ""), "mode": ("", NO_HOLD), "disp": "",
        "streams": [
            {"m": ("audio", "5000", "RTP/SAVP", "96", True), "payloads_at": b"96",
             "c": (0, ""), "bw": ("", ""), "mode": ("inactive", RFC3264_HOLD), "ptime": "",
             "rtcp": "5001 IN IP6 2001:db8::1", "pt": [("96", "opus", "48000", "2", "")],
             "ice": [], "ice_options": [],
             "span": MULTI[MULTI.index(b"m=audio"):MULTI.index(b"m=video")]},
            {"m": ("video", "6000/2", "RTP/AVPF", "97 98", True), "payloads_at": b"97 98",
             "c": (AF_INET, "0.0.0.0"), "bw": ("TIAS", "128000"), "mode": ("", RFC2543_HOLD),
             "ptime": "", "rtcp": "",
             "pt": [("97", "H264", "90000", "", "profile-level-id=42e01f"),
                    ("98", "", "", "", "")],
             "ice": [], "ice_options": [],
             "span": MULTI[MULTI.index(b"m=video"):MULTI.index(b"m=application")]},
            {"m": ("application", "0", "UDP/BFCP", "*", False), "payloads_at": b"*",
             "c": (0, ""), "bw": ("", ""), "mode": ("", NO_HOLD), "ptime": "", "rtcp": "",
             "pt": [("*", "", "", "", "")], "ice": [], "ice_options": [],
             "span": b"m=application 0 UDP/BFCP *\r\n"},
            {"m": ("image", "7000", "udptl", "t38", False), "payloads_at": b"t38",
             "c": (0, ""), "bw": ("", ""), "mode": ("", NO_HOLD), "ptime": "", "rtcp": "",
             "pt": [("t38", "", "", "", "")], "ice": [], "ice_options": [],
             "span": b"m=image 7000 udptl t38\r\n"},
        ]}]),
    Case("ice_candidates_and_trickle_hold_exception", ICE, "application/sdp", [{
        "span": ICE, "o": ("1", AF_INET, "203.0.113.5", b"1"), "c": (0, ""), "bw": ("", ""),
        "mode": ("", NO_HOLD), "disp": "",
        "streams": [
            {"m": ("audio", "9", "UDP/TLS/RTP/SAVPF", "111", False), "payloads_at": b"111",
             "c": (AF_INET, "0.0.0.0"), "bw": ("", ""), "mode": ("", NO_HOLD), "ptime": "",
             "rtcp": "", "pt": [("111", "opus", "48000", "2", "")],
             "ice": [("1", 1, "UDP", "203.0.113.5", "40000", "host"),
                     ("2", 2, "udp", "192.0.2.9", "40001", "srflx")],
             "ice_options": ["trickle"],
             "span": ICE[ICE.index(b"m=audio 9"):ICE.index(b"m=audio 50000")]},
            {"m": ("audio", "50000", "RTP/AVP", "0", True), "payloads_at": b"0",
             "c": (AF_INET, "0.0.0.0"), "bw": ("", ""), "mode": ("", RFC2543_HOLD),
             "ptime": "", "rtcp": "", "pt": [("0", "", "", "", "")], "ice": [],
             "ice_options": [], "span": b"m=audio 50000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n"},
        ]}]),
    Case("multipart_mixed", MIXED, 'multipart/mixed;boundary="b1"', [_session(
        MIXED[SDP_AT:SDP_END], disp="session; handling=required",
        streams=[dict(AUDIO_STREAM, span=MIXED[MIXED.index(b"m=audio"):SDP_END])])],
        raw=PART_SDP + b"\r\n"),
    Case("multipart_without_sdp_part", MIXED.replace(b"application/sdp", b"text/x-sdp"),
         "multipart/mixed; boundary=b1", [], raw=b""),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_parse(case: Case) -> None:
    info = parse_sdp(case.body, case.ctype)
    assert summary(info) == case.expected
    assert info.raw == (case.body if case.raw is None else case.raw)
    assert parse_sdp(case.body, case.ctype, strict=False).sessions == info.sessions


def test_two_sdp_parts_are_two_sessions() -> None:
    body = (b"--x\r\nContent-Type: application/sdp\r\n\r\n" + AUDIO
            + b"--x\r\nc: application/sdp\r\n\r\n" + LF + b"--x--\r\n")
    info = parse_sdp(body, "multipart/mixed;boundary=x")
    assert [s.session_num for s in info.sessions] == [0, 1]
    assert [info.body[s.start:s.end] for s in info.sessions] == [AUDIO, LF]
    assert info.raw == LF                        # Kamailio's raw_sdp: the last SDP part
    assert len(info.streams) == 2 and info.eol() == "\r\n"


def test_lines_keep_their_endings_and_offsets() -> None:
    body = b"v=0\r\no=- 1 2 IN IP4 1.2.3.4\ns=\xc3\xa9t\xc3\xa9 \xff\r\nm=audio 1 RTP/AVP 0"
    lines = split_lines(body)
    assert [(ln.type, ln.text, ln.eol, ln.media) for ln in lines] == [
        ("v", "v=0", "\r\n", -1), ("o", "o=- 1 2 IN IP4 1.2.3.4", "\n", -1),
        ("s", "s=été \udcff", "\r\n", -1), ("m", "m=audio 1 RTP/AVP 0", "", 0)]
    s = lines[2]
    assert body[s.start:s.end] == b"s=\xc3\xa9t\xc3\xa9 \xff\r\n"
    assert body[s.offset(4):s.text_end] == "é \udcff".encode("utf-8", "surrogateescape")
    assert "".join(ln.text + ln.eol for ln in lines).encode("utf-8", "surrogateescape") == body
    assert [ln.type for ln in split_lines(b"x\nab\n=c\n\n")] == ["", "", "", ""]


def test_field_parsers() -> None:
    c = parse_connection("IN IP4 224.2.1.1/127/3")
    assert c is not None and (c.host, c.address, c.pf) == ("224.2.1.1", "224.2.1.1/127/3", AF_INET)
    assert parse_connection("IN IP4") is None
    o = parse_origin("jdoe 2890844526 2890842807 IN IP6 ::1")
    assert o is not None and (o.sess_version, o.address, o.pf) == ("2890842807", "::1", AF_INET6)
    assert parse_origin("jdoe 1 2 IN IP4") is None
    m = parse_media("audio\t49170/2  RTP/AVP  0 8 ")
    assert (m.media, m.port, m.transport, m.payloads) == ("audio", "49170/2", "RTP/AVP", "0 8")
    assert parse_media("audio 49170").transport == ""
    assert [port_number(p) for p in ("49170/2", "x", "", "9")] == [49170, 0, 0, 9]
    lines = split_lines(b"a=candidate:x 1\r\n")
    assert parse_candidate("x 1", lines[0]) is None
    assert parse_candidate("x y z", lines[0]) is None


BAD = [
    ("no_v", AUDIO.replace(b"v=0\r\n", b""), "application/sdp", "no v= line"),
    ("no_o", AUDIO.replace(AUDIO.split(b"\r\n")[1] + b"\r\n", b""), "application/sdp",
     "no o= line"),
    ("no_m", AUDIO[:AUDIO.index(b"m=")], "application/sdp", "no m= line"),
    ("short_o", AUDIO.replace(b"IN IP4 198.51.100.1\r\ns", b"IN\r\ns"), "application/sdp",
     "bad o= line"),
    ("o_not_ip", AUDIO.replace(b"IN IP4 198.51.100.1\r\ns", b"IN X25 1\r\ns"),
     "application/sdp", "bad o= line"),
    ("bad_c", AUDIO.replace(b"c=IN IP4 198.51.100.1", b"c=IN IP4"), "application/sdp",
     "bad c= line"),
    ("no_c_anywhere", AUDIO.replace(b"c=IN IP4 198.51.100.1\r\n", b""), "application/sdp",
     "no c= line for a media stream"),
    ("m_without_transport", AUDIO.replace(b"m=audio 49170 RTP/AVP 0 8 101", b"m=audio 49170"),
     "application/sdp", "bad m= line"),
    ("not_sdp", AUDIO, "text/plain", "not an SDP body"),
    ("bad_content_type", AUDIO, "/", "bad Content-Type"),
    ("multipart_no_boundary", MIXED, "multipart/mixed", "without boundary"),
    ("multipart_boundary_missing", MIXED, "multipart/mixed; boundary=zz", "without its boundary"),
    ("multipart_bad_part_header", MIXED.replace(b"Content-Disposition:", b"Content-Disposition"),
     "multipart/mixed; boundary=b1", "bad multipart part header"),
]


@pytest.mark.parametrize("name,body,ctype,reason", BAD, ids=[b[0] for b in BAD])
def test_strict_refuses_what_kamailio_refuses(name: str, body: bytes, ctype: str,
                                             reason: str) -> None:
    with pytest.raises(SdpError) as ei:
        parse_sdp(body, ctype)
    assert reason in ei.value.reason
    if ctype == "application/sdp":
        lenient = parse_sdp(body, ctype, strict=False)   # lenient: whatever is there
        assert len(lenient.sessions) == 1


def test_lenient_leaves_malformed_fields_empty() -> None:
    body = b"c=IN\r\nm=audio\r\nm=video 5 RTP/AVP 31\r\n"
    s = parse_sdp(body, strict=False).sessions[0]
    assert s.origin is None and s.connection is None and s.c_line is not None
    assert [(st.media, st.port, st.transport) for st in s.streams] == [
        ("audio", "", ""), ("video", "5", "RTP/AVP")]


REQ = (b"INVITE sip:b@example.com SIP/2.0\r\n"
       b"Via: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n"
       b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c\r\n"
       b"CSeq: 1 INVITE\r\n")


def message(body: bytes, ctype: Optional[str] = "application/sdp") -> bytes:
    ct = b"Content-Type: " + ctype.encode() + b"\r\n" if ctype else b""
    return REQ + ct + b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_msg_sdp_reads_the_body_as_kamailio_does() -> None:
    msg = parse_msg(message(AUDIO))
    info = msg_sdp(msg)
    assert info is not None and info.streams[0].port == "49170"
    assert msg_sdp(msg) is info                                  # cached per body
    assert msg_sdp(parse_msg(message(b""))) is None               # no body
    with pytest.raises(NotSdpError, match="no Content-Type"):
        msg_sdp(parse_msg(message(AUDIO, None)))
    with pytest.raises(NotSdpError, match="not an SDP body"):
        msg_sdp(parse_msg(message(AUDIO, "text/plain")))
    with pytest.raises(SdpError) as ei:                          # malformed: not NotSdpError
        msg_sdp(parse_msg(message(NO_EOL.replace(b"v=0", b"v=x").replace(b"o=", b"x="))))
    assert not isinstance(ei.value, NotSdpError)
    with pytest.raises(SdpError):                                 # the error is cached too
        msg_sdp(parse_msg(message(AUDIO, "text/plain")))
    assert body_and_type(msg) == (AUDIO, "application/sdp")
    msg.set_body(MULTI)                                          # set_body(): that body
    assert [st.media for st in msg_sdp(msg).streams] == ["audio", "video", "application",
                                                         "image"]
    assert body_and_type(msg) == (MULTI, "application/sdp")
    msg.set_body(b"hello", "text/plain")                         # ... and its type
    assert body_and_type(msg) == (b"hello", "text/plain")
    with pytest.raises(SdpError, match="not an SDP body"):
        msg_sdp(msg)


def test_editor_on_the_received_body_records_message_edits() -> None:
    msg = parse_msg(message(AUDIO))
    info = msg_sdp(msg)
    st = info.streams[0]
    msg.add_header("X-Other: edit")                              # other edits combine
    ed = SdpEditor(msg)
    ed.delete(st.payloads_start - 1, st.payloads_start + 1)      # " 0 8 101" -> " 8 101"
    ed.replace(info.sessions[0].o_sess_version_start, info.sessions[0].o_sess_version_end, b"7")
    ed.insert(st.end, b"m=video 0 RTP/AVP 31\r\n")
    ed.commit()
    out = msg.build()
    body = out[out.index(b"\r\n\r\n") + 4:]
    assert body == (AUDIO.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 8 101")
                    .replace(b"2890844527", b"7") + b"m=video 0 RTP/AVP 31\r\n")
    assert b"X-Other: edit\r\n" in out and b"Content-Length: %d\r\n" % len(body) in out
    assert msg_sdp(msg) is info                  # reads stay on the received body (Kamailio)
    s = info.sessions[0]                         # a value written again replaces the first
    ed.retract(s.o_sess_version_start, s.o_sess_version_end, b"7")
    ed.replace(s.o_sess_version_start, s.o_sess_version_end, b"8")
    assert msg.build().count(b"o=alice 2890844526 8 IN") == 1


def test_editor_on_a_replaced_body_sets_the_edited_body() -> None:
    msg = parse_msg(message(b"x", "text/plain"))
    msg.set_body(LF, "application/sdp")
    info = msg_sdp(msg)
    ed = SdpEditor(msg)
    ln = info.streams[0].lines[-1]                               # a=sendrecv
    ed.delete(ln.start, ln.end)
    ed.commit()
    assert msg.body == LF.replace(b"a=sendrecv\n", b"")
    assert msg.build().count(b"Content-Type: application/sdp\r\n") == 1
