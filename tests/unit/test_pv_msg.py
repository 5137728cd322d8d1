"""Message, network, flag and misc PVs read from real parsed SIP messages, and their writes."""
from __future__ import annotations

import os
import time

import pytest

from sipcore.net.addr import SocketInfo
from sipcore.pv import PvError, parse_format, parse_pv
from sipcore.route.ctx import Branch
from sipcore.testing import RecordingCore, make_ctx

INVITE = """\
INVITE sip:alice@example.com:5070;transport=tcp SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK776asdhds;rport, SIP/2.0/TCP 10.0.0.2;branch=z9hG4bKxx
v: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKyy;received=192.0.2.7
Max-Forwards: 70
To: "Alice A" <sip:alice@example.com>
From: Bob <sip:bob@biloxi.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.com
CSeq: 314159 INVITE
Contact: <sip:bob@10.0.0.1>;expires=60, <sip:bob@10.0.0.9>;expires=30
Expires: 120
User-Agent: TestUA/1.0
P-Asserted-Identity: "Bob B" <sip:+15551234@biloxi.com>
P-Preferred-Identity: "Bobby" <sip:bobby@pref.example>
Remote-Party-ID: <sip:rpid@example.org>;party=calling
Diversion: <sip:div@example.net>;reason=user-busy;privacy=off;counter=2
Refer-To: <sip:carol@example.com>
X-Custom: one
X-Custom: two
Content-Type: application/sdp
Content-Length: 10

v=0
o=x
"""

REPLY = """\
SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds
To: <sip:alice@example.com>;tag=a6c85cf
From: <sip:bob@biloxi.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.com
CSeq: 314159 INVITE
Content-Length: 0

"""

REGISTER = """\
REGISTER sips:registrar.biloxi.com SIP/2.0
Via: SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bKnashds7
To: <sip:bob@biloxi.com>
From: <sip:bob@biloxi.com>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:bob@192.0.2.4>
Authorization: Digest username="bob@biloxi.com", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sips:registrar.biloxi.com", response="245f23415f11432b3434341c022", algorithm=MD5, cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001
Content-Length: 0

"""

CORE_SOCKS = [SocketInfo("udp", "127.0.0.1", 5060, name="lo"),
              SocketInfo("tcp", "192.0.2.1", 5060, advertise_host="pub.example.com",
                         advertise_port=5080, name="pub")]


def ctx_of(raw: str = INVITE, **kw):  # type: ignore[no-untyped-def]
    return make_ctx(raw, core=RecordingCore(sockets=list(CORE_SOCKS)), **kw)


def get(text: str, ctx):  # type: ignore[no-untyped-def]
    return parse_pv(text).get(ctx)


INVITE_CASES = [
    ("$ru", "sip:alice@example.com:5070;transport=tcp"),
    ("$ruri", "sip:alice@example.com:5070;transport=tcp"),
    ("$rU", "alice"), ("$ruri.user", "alice"),
    ("$rd", "example.com"), ("$ruri.domain", "example.com"),
    ("$rp", 5070), ("$rP", "tcp"), ("$rz", "sip"), ("$rUl", 5),
    ("$ou", "sip:alice@example.com:5070;transport=tcp"), ("$oU", "alice"),
    ("$ouri", "sip:alice@example.com:5070;transport=tcp"), ("$duri", None),
    ("$od", "example.com"), ("$op", 5070), ("$oP", "tcp"), ("$oUl", 5),
    ("$du", None), ("$dd", None), ("$dp", None), ("$dP", None),
    ("$nh(u)", "sip:alice@example.com:5070;transport=tcp"), ("$nh(U)", "alice"),
    ("$nh(d)", "example.com"), ("$nh(p)", 5070), ("$nh(P)", "tcp"), ("$nh(i)", 2),
    ("$br", None), ("$bR", None), ("$ds", "<sip:alice@example.com:5070;transport=tcp>"),
    ("$fu", "sip:bob@biloxi.com"), ("$from", "sip:bob@biloxi.com"), ("$fU", "bob"),
    ("$fd", "biloxi.com"), ("$fn", "Bob"), ("$ft", "1928301774"), ("$fUl", 3),
    ("$tu", "sip:alice@example.com"), ("$tU", "alice"), ("$td", "example.com"),
    ("$to", "sip:alice@example.com"), ("$to.user", "alice"), ("$to.domain", "example.com"),
    ("$from.domain", "biloxi.com"),
    ("$tn", "\"Alice A\""), ("$tt", None), ("$tUl", 5),
    ("$ci", "a84b4c76e66710@pc33.atlanta.com"), ("$cs", 314159), ("$csb", "314159 INVITE"),
    ("$rm", "INVITE"), ("$rmid", 1),
    ("$ct", "<sip:bob@10.0.0.1>;expires=60, <sip:bob@10.0.0.9>;expires=30"),
    ("$cT", "application/sdp"), ("$cl", 10), ("$ua", "TestUA/1.0"),
    ("$ai", "sip:+15551234@biloxi.com"), ("$pu", "sip:bobby@pref.example"), ("$pU", "bobby"),
    ("$pd", "pref.example"), ("$pn", "\"Bobby\""), ("$re", "sip:rpid@example.org"),
    ("$di", "sip:div@example.net"), ("$dir", "user-busy"), ("$dip", "off"), ("$dic", "2"),
    ("$rt", "sip:carol@example.com"),
    ("$expires(min)", 30), ("$expires(max)", 60),
    ("$hdr(X-Custom)", "one"), ("$(hdr(X-Custom)[1])", "two"), ("$(hdr(x-custom)[-1])", "two"),
    ("$(hdr(X-Custom)[2])", None), ("$(hdr(X-Custom)[*])", "one,two"),
    ("$hdr(f)", "Bob <sip:bob@biloxi.com>;tag=1928301774"), ("$hdr(X-Missing)", None),
    ("$hdrc(Via)", 2), ("$hdrc(X-Custom)", 2), ("$hdrc(X-Missing)", 0),
    ("$(hdr(Via)[1])", "SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKyy;received=192.0.2.7"),
    ("$hfl(Via)", "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK776asdhds;rport"),
    ("$(hfl(Via)[1])", "SIP/2.0/TCP 10.0.0.2;branch=z9hG4bKxx"), ("$hflc(Via)", 3),
    ("$hflc(Contact)", 2), ("$(hfl(Contact)[1])", "<sip:bob@10.0.0.9>;expires=30"),
    ("$hflc(X-Custom)", 2), ("$(hfl(Via)[*])", "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK776asdhds;rport, "
     "SIP/2.0/TCP 10.0.0.2;branch=z9hG4bKxx,SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKyy;received=192.0.2.7"),
    ("$via0(host)", "10.0.0.1"), ("$via0(port)", 5062), ("$via0(proto)", "UDP"),
    ("$via0(protoid)", 1), ("$via0(branch)", "z9hG4bK776asdhds"), ("$via0(rport)", ""),
    ("$via0(received)", None), ("$via1(host)", "10.0.0.2"), ("$via1(proto)", "TCP"),
    ("$via1(port)", 5060), ("$viaZ(received)", "192.0.2.7"),
    ("$rb", "v=0\r\no=x\r\n"), ("$bs", 10), ("$mt", 1), ("$mts", "rq"),
    ("$rv", "SIP/2.0"), ("$rs", None), ("$rr", None),
    ("$msg(fline)", "INVITE sip:alice@example.com:5070;transport=tcp SIP/2.0"),
    ("$msg(body)", "v=0\r\no=x\r\n"), ("$msg(body_len)", 10), ("$msg(hdrc)", 19),
    ("$au", None), ("$hu", None),
]


@pytest.mark.parametrize("pv,expected", INVITE_CASES, ids=[c[0] for c in INVITE_CASES])
def test_invite_pvs(pv: str, expected: object) -> None:
    ctx = ctx_of()
    assert get(pv, ctx) == expected


REPLY_CASES = [
    ("$rs", 180), ("$rr", "Ringing"), ("$rm", "INVITE"), ("$mt", 2), ("$mts", "rp"),
    ("$ru", None), ("$rU", None), ("$rd", None), ("$rp", None), ("$tt", "a6c85cf"),
    ("$ft", "1928301774"), ("$cs", 314159), ("$cl", 0), ("$rb", None), ("$bs", 0),
    ("$ct", None), ("$ua", None), ("$rv", "SIP/2.0"),
]


@pytest.mark.parametrize("pv,expected", REPLY_CASES, ids=[c[0] for c in REPLY_CASES])
def test_reply_pvs(pv: str, expected: object) -> None:
    assert get(pv, ctx_of(REPLY)) == expected


REGISTER_CASES = [
    ("$au", "bob"), ("$aU", "bob@biloxi.com"), ("$ad", "biloxi.com"), ("$ar", "biloxi.com"),
    ("$adu", "sips:registrar.biloxi.com"), ("$aa", "MD5"),
    ("$adn", "dcd98b7102dd2f0e8b11d0f600bfb0c093"), ("$adc", "0a4f113b"),
    ("$adr", "245f23415f11432b3434341c022"), ("$ado", "5ccc069c403ebaf9f0171e9517f40e41"),
    ("$rz", "sips"), ("$rp", 5061), ("$rU", None), ("$rUl", 0), ("$rP", "UDP"),
    ("$expires(min)", None),
]


@pytest.mark.parametrize("pv,expected", REGISTER_CASES, ids=[c[0] for c in REGISTER_CASES])
def test_register_pvs(pv: str, expected: object) -> None:
    assert get(pv, ctx_of(REGISTER)) == expected


def test_rmid_matches_msg_constants() -> None:
    from sipcore.msg import METHOD_INVITE, METHOD_REGISTER

    assert get("$rmid", ctx_of()) == METHOD_INVITE
    assert get("$rmid", ctx_of(REGISTER)) == METHOD_REGISTER


def test_whole_buffer_pvs() -> None:
    ctx = ctx_of()
    mb = get("$mb", ctx)
    assert isinstance(mb, str) and mb.startswith("INVITE sip:alice@") and mb.endswith("o=x\r\n")
    assert get("$ml", ctx) == len(ctx.msg.buf) == get("$msg(len)", ctx)
    assert get("$msg(buf)", ctx) == mb
    assert get("$mbu", ctx) == mb
    hdrs = get("$msg(hdrs)", ctx)
    assert hdrs.startswith("Via: ") and hdrs.endswith("\r\n\r\n")
    assert get("$msg(hdrs_len)", ctx) == len(hdrs)
    assert get("$msg(fpart)", ctx) == mb[: mb.index("\r\n\r\n") + 4]
    assert get("$msg(lpart)", ctx) == mb[mb.index("\n") + 1:]


# ---- network ------------------------------------------------------------------------------

NET_CASES = [
    ("$si", "198.51.100.7"), ("$src_ip", "198.51.100.7"), ("$siz", "198.51.100.7"),
    ("$sp", 5099), ("$su", "sip:198.51.100.7:5099;transport=tcp"),
    ("$sut", "sip:198.51.100.7:5099;transport=tcp"), ("$sas", "tcp:198.51.100.7:5099"),
    ("$Ri", "192.0.2.1"), ("$Rp", 5060), ("$Ru", "sip:192.0.2.1:5060;transport=tcp"),
    ("$Rut", "sip:192.0.2.1:5060;transport=tcp"), ("$Rn", "pub"),
    ("$Ras", "tcp:192.0.2.1:5060"), ("$RAi", "pub.example.com"), ("$RAp", 5080),
    ("$RAu", "sip:pub.example.com:5080;transport=tcp"),
    ("$RAut", "sip:pub.example.com:5080;transport=tcp"), ("$pr", "tcp"), ("$proto", "tcp"),
    ("$prid", 2), ("$af", 2), ("$af(id)", 2), ("$af(name)", "IPv4"), ("$conid", None),
    ("$K(UDP)", 1), ("$K(WSS)", 6), ("$K(IPv6)", 10), ("$fs", None), ("$fsn", None),
    ("$fsp", None),
]


@pytest.mark.parametrize("pv,expected", NET_CASES, ids=[c[0] for c in NET_CASES])
def test_network_pvs(pv: str, expected: object) -> None:
    ctx = ctx_of(src=("198.51.100.7", 5099), proto="tcp", dst=("192.0.2.1", 5060))
    assert get(pv, ctx) == expected


def test_network_udp_and_ipv6() -> None:
    ctx = ctx_of(src=("2001:db8::1", 5060))
    assert get("$si", ctx) == "2001:db8::1"
    assert get("$siz", ctx) == "[2001:db8::1]"
    assert get("$su", ctx) == "sip:[2001:db8::1]:5060"
    assert get("$sut", ctx) == "sip:[2001:db8::1]:5060;transport=udp"
    assert get("$af(name)", ctx) == "IPv6"
    assert get("$Rn", ctx) == "lo"
    assert get("$RAi", ctx) == "127.0.0.1"
    ctx.rcv.proto, ctx.rcv.conn_id = "tls", 17
    assert get("$conid", ctx) == 17


def test_force_socket() -> None:
    ctx = ctx_of()
    fs = parse_pv("$fs")
    assert fs.writable
    fs.set(ctx, "tcp:192.0.2.1:5060")
    assert ctx.force_socket is CORE_SOCKS[1]
    assert get("$fs", ctx) == "tcp:192.0.2.1:5060"
    assert get("$fsn", ctx) == "pub"
    assert get("$fsp", ctx) == 5060
    parse_pv("$fsn").set(ctx, "lo")
    assert ctx.force_socket is CORE_SOCKS[0]
    with pytest.raises(PvError):
        fs.set(ctx, "udp:10.9.9.9:5060")
    fs.set(ctx, None)
    assert ctx.force_socket is None and get("$fs", ctx) is None


# ---- flags and return code ----------------------------------------------------------------------

@pytest.mark.parametrize("dec,hexpv,attr", [("$mf", "$mF", "flags"), ("$bf", "$bF", "bflags"),
                                            ("$sf", "$sF", "sflags")])
def test_flags(dec: str, hexpv: str, attr: str) -> None:
    ctx = ctx_of()
    assert get(dec, ctx) == 0
    parse_pv(dec).set(ctx, 5)
    assert getattr(ctx, attr) == 5
    assert get(hexpv, ctx) == "00000005"
    parse_pv(dec).set(ctx, 255)
    assert get(hexpv, ctx) == "000000ff"
    parse_pv(hexpv).set(ctx, "0x1F")
    assert get(dec, ctx) == 31
    parse_pv(dec).set(ctx, "12")
    assert get(dec, ctx) == 12
    parse_pv(dec).set(ctx, None)
    assert get(dec, ctx) == 0
    with pytest.raises(PvError):
        parse_pv(dec).set(ctx, "x1")


def test_return_code() -> None:
    ctx = ctx_of()
    ctx.rc = -2
    for pv in ("$rc", "$retcode", "$?"):
        assert get(pv, ctx) == -2
        assert not parse_pv(pv).writable


# ---- writes: R-URI and destination -------------------------------------------------------------

def test_set_ruri_parts() -> None:
    ctx = ctx_of()
    parse_pv("$rU").set(ctx, "carol")
    assert ctx.msg.ruri == "sip:carol@example.com:5070;transport=tcp"
    parse_pv("$rd").set(ctx, "10.1.1.1")
    assert ctx.msg.ruri == "sip:carol@10.1.1.1:5070;transport=tcp"
    parse_pv("$rp").set(ctx, 5080)
    assert get("$rp", ctx) == 5080
    parse_pv("$rp").set(ctx, None)
    assert ctx.msg.ruri == "sip:carol@10.1.1.1;transport=tcp"
    assert get("$rp", ctx) == 5060
    parse_pv("$rU").set(ctx, None)
    assert ctx.msg.ruri == "sip:10.1.1.1;transport=tcp"
    assert get("$rU", ctx) is None
    parse_pv("$ru").set(ctx, "sip:dave@example.org")
    assert get("$ru", ctx) == "sip:dave@example.org"
    assert get("$ou", ctx) == "sip:alice@example.com:5070;transport=tcp"
    assert b"INVITE sip:dave@example.org SIP/2.0\r\n" in ctx.msg.build()


def test_set_ruri_errors() -> None:
    ctx = ctx_of()
    with pytest.raises(PvError):
        parse_pv("$ru").set(ctx, None)
    with pytest.raises(PvError):
        parse_pv("$ru").set(ctx, "not a uri")
    with pytest.raises(PvError):
        parse_pv("$rd").set(ctx, "")
    with pytest.raises(PvError):
        parse_pv("$rp").set(ctx, "70000")
    with pytest.raises(PvError):
        parse_pv("$ru").set(ctx_of(REPLY), "sip:a@b")


def test_set_du() -> None:
    ctx = ctx_of()
    du = parse_pv("$du")
    du.set(ctx, "sip:proxy.example.net:5072;transport=tls")
    assert ctx.dst_uri == "sip:proxy.example.net:5072;transport=tls"
    assert get("$dd", ctx) == "proxy.example.net"
    assert get("$dp", ctx) == 5072
    assert get("$dP", ctx) == "tls"
    assert get("$nh(d)", ctx) == "proxy.example.net"
    assert get("$nh(u)", ctx) == "sip:proxy.example.net:5072;transport=tls"
    assert get("$nh(i)", ctx) == 3
    du.set(ctx, None)
    assert ctx.dst_uri is None and get("$du", ctx) is None
    du.set(ctx, "sip:x.example")
    du.set(ctx, "")
    assert ctx.dst_uri is None


def test_branches() -> None:
    ctx = ctx_of()
    parse_pv("$br").set(ctx, "sip:b1@example.com")
    assert [b.uri for b in ctx.branches] == ["sip:b1@example.com"]
    ctx.branches.append(Branch(uri="sip:b2@example.com", q=500, dst_uri="sip:gw:5060"))
    assert get("$br", ctx) == "sip:b1@example.com"
    assert get("$bR", ctx) == "sip:b1@example.com, sip:b2@example.com"
    assert get("$ds", ctx) == ("<sip:alice@example.com:5070;transport=tcp>, "
                               "<sip:b1@example.com>, <sip:b2@example.com>;q=0.5")
    parse_pv("$br").set(ctx, "sip:b0@example.com")
    assert ctx.branches[0].uri == "sip:b0@example.com"
    assert get("$branch(count)", ctx) == 2
    assert get("$branch(uri)", ctx) == "sip:b0@example.com"
    assert get("$(branch(uri)[1])", ctx) == "sip:b2@example.com"
    assert get("$(branch(dst_uri)[1])", ctx) == "sip:gw:5060"
    assert get("$(branch(q)[-1])", ctx) == 500
    assert get("$(branch(uri)[5])", ctx) is None
    parse_pv("$(branch(q)[0])").set(ctx, "0.25")
    assert ctx.branches[0].q == 250
    parse_pv("$(branch(path)[1])").set(ctx, "<sip:p1>")
    assert ctx.branches[1].path == "<sip:p1>"
    parse_pv("$(branch(flags)[1])").set(ctx, 3)
    assert get("$(branch(flags)[1])", ctx) == 3
    with pytest.raises(PvError):
        parse_pv("$branch(count)").set(ctx, 1)
    with pytest.raises(PvError):
        parse_pv("$branch(nope)")


def test_sbranch() -> None:
    from sipcore.pv import miscpv

    miscpv.sbranch_reset()
    ctx = ctx_of()
    assert get("$sbranch(uri)", ctx) is None
    parse_pv("$sbranch(uri)").set(ctx, "sip:static@example.com")
    parse_pv("$sbranch(dst_uri)").set(ctx, "sip:gw.example.com")
    assert get("$sbranch(uri)", ctx) == "sip:static@example.com"
    assert miscpv.sbranch().dst_uri == "sip:gw.example.com"
    miscpv.sbranch_reset()


# ---- writes: From / To (message edits) ---------------------------------------------------------

def _hdr_after(ctx, name: str) -> str:  # type: ignore[no-untyped-def]
    for n, v in ctx.msg.current_headers():
        if n.lower() == name.lower():
            return v
    raise AssertionError(name)


def test_set_from_parts() -> None:
    ctx = ctx_of()
    parse_pv("$fU").set(ctx, "robert")
    assert _hdr_after(ctx, "From") == "\"Bob\" <sip:robert@biloxi.com>;tag=1928301774"
    # the parsed message is unchanged until rebuilt (Kamailio lump semantics)
    assert get("$fU", ctx) == "bob"
    ctx = ctx_of()
    parse_pv("$fd").set(ctx, "b.example")
    assert _hdr_after(ctx, "From") == "\"Bob\" <sip:bob@b.example>;tag=1928301774"
    ctx = ctx_of()
    parse_pv("$fu").set(ctx, "sip:x@y.example")
    assert _hdr_after(ctx, "From") == "\"Bob\" <sip:x@y.example>;tag=1928301774"
    ctx = ctx_of()
    parse_pv("$fn").set(ctx, "Robert \"Bob\" R")
    assert _hdr_after(ctx, "From") == ("\"Robert \\\"Bob\\\" R\" <sip:bob@biloxi.com>"
                                       ";tag=1928301774")
    ctx = ctx_of()
    parse_pv("$fn").set(ctx, None)
    assert _hdr_after(ctx, "From") == "<sip:bob@biloxi.com>;tag=1928301774"


def test_set_to_parts() -> None:
    ctx = ctx_of()
    parse_pv("$tU").set(ctx, "alicia")
    assert _hdr_after(ctx, "To") == "\"Alice A\" <sip:alicia@example.com>"
    ctx = ctx_of()
    parse_pv("$td").set(ctx, "example.net")
    assert _hdr_after(ctx, "To") == "\"Alice A\" <sip:alice@example.net>"
    ctx = ctx_of()
    parse_pv("$tu").set(ctx, "sip:z@z.example")
    assert _hdr_after(ctx, "To") == "\"Alice A\" <sip:z@z.example>"
    ctx = ctx_of()
    parse_pv("$tn").set(ctx, "Al")
    assert _hdr_after(ctx, "To") == "\"Al\" <sip:alice@example.com>"
    with pytest.raises(PvError):
        parse_pv("$tu").set(ctx, "bad uri")


def test_several_writes_to_one_header_combine() -> None:
    ctx = ctx_of()
    parse_pv("$fU").set(ctx, "anonymous")
    parse_pv("$fd").set(ctx, "anonymous.invalid")
    parse_pv("$fn").set(ctx, "Anonymous")
    parse_pv("$tU").set(ctx, "x")
    parse_pv("$tU").set(ctx, "alice2")
    hdrs = ctx.msg.current_headers()
    assert [v for n, v in hdrs if n == "From"] == [
        "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1928301774"]
    assert [v for n, v in hdrs if n == "To"] == ["\"Alice A\" <sip:alice2@example.com>"]
    ctx.msg.clear_lumps()                          # edits dropped: the next write starts over
    parse_pv("$fd").set(ctx, "d.example")
    assert [v for n, v in ctx.msg.current_headers() if n == "From"] == [
        "\"Bob\" <sip:bob@d.example>;tag=1928301774"]


def test_set_reply_status() -> None:
    ctx = ctx_of(REPLY)
    parse_pv("$rs").set(ctx, 500)
    parse_pv("$rr").set(ctx, "Oops")
    parse_pv("$rs").set(ctx, 183)
    parse_pv("$rr").set(ctx, "Session Progress")
    assert ctx.msg.build().startswith(b"SIP/2.0 183 Session Progress\r\n")
    with pytest.raises(PvError):
        parse_pv("$rs").set(ctx, 99)
    with pytest.raises(PvError):
        parse_pv("$rs").set(ctx_of(), 200)


@pytest.mark.parametrize("pv", ["$ci", "$cs", "$rm", "$si", "$sp", "$Ri", "$pr", "$ua", "$hdr(X)",
                                "$ft", "$tt", "$rz", "$rP", "$ct", "$rb", "$mb", "$Ts", "$null"])
def test_read_only(pv: str) -> None:
    spec = parse_pv(pv)
    assert not spec.writable
    with pytest.raises(PvError, match="read only"):
        spec.set(ctx_of(), "x")


# ---- time, system, misc ------------------------------------------------------------------------

def test_time_pvs() -> None:
    ctx = ctx_of()
    before = int(time.time())
    ts = get("$Ts", ctx)
    assert before <= ts <= int(time.time())
    assert get("$Ts", ctx) == ts                   # cached for the message
    assert abs(get("$TS", ctx) - ts) <= 1
    assert get("$TV(s)", ctx) == ts
    assert 0 <= get("$TV(u)", ctx) < 1_000_000
    assert abs(get("$TV(sn)", ctx) - ts) <= 1
    sn = get("$TV(Sn)", ctx)
    assert "." in sn and len(sn.split(".")[1]) == 6
    assert get("$Tf", ctx) == time.ctime(ts)
    assert len(get("$TF", ctx)) == len(time.ctime())
    lt = time.localtime(ts)
    assert get("$time(year)", ctx) == lt.tm_year
    assert get("$time(mon)", ctx) == lt.tm_mon
    assert get("$time(mday)", ctx) == lt.tm_mday
    assert get("$time(hour)", ctx) == lt.tm_hour
    assert get("$time(yday)", ctx) == lt.tm_yday
    assert 1 <= get("$time(wday)", ctx) <= 7
    assert get("$utime(year)", ctx) == time.gmtime(ts).tm_year
    assert get("$timef(%Y)", ctx) == time.strftime("%Y")
    assert get("$utimef(%Y-%m-%d)", ctx) == time.strftime("%Y-%m-%d", time.gmtime())
    assert get("$Tb", ctx) <= ts


def test_time_wday_sunday_is_one() -> None:
    from sipcore.pv import miscpv

    ctx = ctx_of()
    sunday = 1_700_352_000                        # 2023-11-19, a Sunday (UTC)
    from sipcore.pv.msgstate import PV

    PV.of(ctx).tv = (sunday, 0)
    assert get("$utime(wday)", ctx) == 1
    assert miscpv.msg_time(ctx) == (sunday, 0)


def test_env_def_cfg(monkeypatch: pytest.MonkeyPatch) -> None:
    from sipcore.pv import miscpv

    monkeypatch.setenv("PYKAM_TEST_ENV", "42abc")
    ctx = ctx_of()
    assert get("$env(PYKAM_TEST_ENV)", ctx) == "42abc"
    assert get("$envn(PYKAM_TEST_ENV)", ctx) == 42
    assert get("$env(PYKAM_SURELY_UNSET)", ctx) is None
    defines = {"WITH_NAT": "", "PORT": "5080", "DOMAIN": '"example.com"'}
    miscpv.set_defines_provider(defines.get)
    try:
        assert get("$def(DOMAIN)", ctx) == "example.com"
        assert get("$defn(PORT)", ctx) == 5080
        assert get("$def(NOPE)", ctx) is None
    finally:
        miscpv.set_defines_provider(None)
    ctx.cfg_line, ctx.route_name = 42, "RELAY"
    ctx.core.globals["cfg_file"] = "/etc/pykam.cfg"
    assert get("$cfg(line)", ctx) == 42
    assert get("$cfg(route)", ctx) == "RELAY"
    assert get("$cfg(file)", ctx) == "/etc/pykam.cfg"
    assert get("$pp", ctx) == os.getpid()
    assert get("$sid", ctx) == 0
    ctx.core.globals["server_id"] = 7
    assert get("$sid", ctx) == 7


def test_misc_pvs() -> None:
    ctx = ctx_of()
    assert get("$null", ctx) is None
    assert get("$true", ctx) == 1
    mi = get("$mi", ctx)
    assert isinstance(mi, int) and get("$mi", ctx) == mi
    assert get("$mi", ctx_of()) != mi
    assert get("$sel(via[1].host)", ctx) is None
    assert get("$_s($rU@$rd:$rp)", ctx) == "alice@example.com:5070"
    assert get("$_s(x$du)", ctx) == "x<null>"
    assert get("$version(num)", ctx) == get("$ksr(ver)", ctx)
    assert isinstance(get("$ksr(verval)", ctx), int)
    ctx.ruid, ctx.location_ua = "uloc-1", "Phone/2"
    assert get("$ruid", ctx) == "uloc-1"
    assert get("$location_ua", ctx) == "Phone/2"


def test_msgbuf() -> None:
    ctx = ctx_of()
    assert get("$msgbuf(0)", ctx) == "I"
    assert get("$msgbuf(99999)", ctx) is None
    parse_pv("$msgbuf(0)").set(ctx, "X")
    parse_pv("$msgbuf(0)").set(ctx, "Y")
    assert ctx.msg.build().startswith(b"YNVITE ")
    with pytest.raises(PvError):
        parse_pv("$msgbuf(1)").set(ctx, "ab")
    with pytest.raises(PvError):
        parse_pv("$msgbuf(x)")


def test_err_info() -> None:
    from sipcore.pv.miscpv import ErrInfo

    ctx = ctx_of()
    assert get("$err.class", ctx) == 0 and get("$err.info", ctx) is None
    ctx.err_info = ErrInfo(eclass=1, level=2, info="bad header", rcode=400,
                                    rreason="Bad Request")
    assert [get(f"$err.{a}", ctx) for a in ("class", "level", "info", "rcode", "rreason")] == \
        [1, 2, "bad header", 400, "Bad Request"]
    assert parse_format("$err.rcode $err.rreason").eval(ctx) == "400 Bad Request"


def test_format_eval() -> None:
    import hashlib

    ctx = ctx_of()
    f = parse_format("sip:$rU@$rd;ci=$(ci{s.md5}{s.substr,0,6}) du=$du")
    ci6 = hashlib.md5(b"a84b4c76e66710@pc33.atlanta.com").hexdigest()[:6]
    assert f.eval(ctx) == f"sip:alice@example.com;ci={ci6} du=<null>"
    assert not f.is_static
    single = parse_format("$cs")
    assert single.value(ctx) == 314159 and single.eval(ctx) == "314159"
