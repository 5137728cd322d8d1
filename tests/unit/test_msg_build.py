"""Edit list (lumps) and builder tests: edits applied once, untouched bytes copied,
Content-Length fixed; build_reply per RFC 3261 8.2.6 / 12.1.1; build_request; stateless
branch and to-tag. Runs in: pytest only; both scanners."""
from __future__ import annotations

import pytest

from sipcore.msg import (
    HdrType, build_reply, build_request, gen_to_tag, make_branch, parse_msg,
)
from sipcore.msg.parser import c_scan

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK2\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK1;received=192.0.2.1\r\n"
    b"Max-Forwards: 69\r\n"
    b"Record-Route: <sip:proxy.example.com;lr>\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


@pytest.fixture(params=["py"] + (["c"] if c_scan is not None else []))
def sip_parser(request: pytest.FixtureRequest) -> str:
    return request.param


def test_no_edits_returns_same_buffer(sip_parser: str) -> None:
    msg = parse_msg(INVITE, scanner=sip_parser)
    assert not msg.lumps_pending
    assert msg.build() is msg.buf


def test_add_remove_replace(sip_parser: str) -> None:
    msg = parse_msg(INVITE, scanner=sip_parser)
    ua = "X-First: 1"
    msg.add_header("X-Last: 2")
    msg.add_header(ua, first=True)
    msg.add_header("X-Before-To: 3\r\n", before=msg.header(HdrType.TO))
    msg.add_header("X-After-To: 4", after=msg.header("t"))
    msg.remove_header(msg.header("Record-Route"))
    msg.replace_header(msg.header(HdrType.MAXFORWARDS), "Max-Forwards: 10")
    out = parse_msg(msg.build(), scanner=sip_parser)
    names = [h.name for h in out.headers]
    assert names[0] == "X-First"
    assert names[-1] == "X-Last" or names[-2:] == ["Content-Length", "X-Last"]
    assert names.index("X-Before-To") + 1 == names.index("To")
    assert names.index("X-After-To") == names.index("To") + 1
    assert "Record-Route" not in names
    assert out.max_forwards == 10
    assert out.body == b"v=0\n"
    # the received message is unchanged, edits are visible in current_headers
    assert msg.header("X-Last") is None
    assert ("X-Last", "2") in msg.current_headers()
    # untouched bytes are copied: the From line is byte-identical
    frm = msg.header("From")
    assert msg.buf[frm.start : frm.end] in msg.build()


def test_removing_twice_is_harmless(sip_parser: str) -> None:
    msg = parse_msg(INVITE, scanner=sip_parser)
    h = msg.header("Contact")
    msg.remove_header(h)
    msg.remove_header(h)
    assert msg.build() == INVITE.replace(b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n", b"")


def test_generic_byte_lumps_order(sip_parser: str) -> None:
    msg = parse_msg(INVITE, scanner=sip_parser)
    h = msg.header("Call-ID")
    msg.insert_after(h.value_start, b"A")
    msg.insert_before(h.value_start, b"B")
    msg.delete_range(h.value_start, h.value_start + 3)
    msg.insert_before(h.value_start, b"C")
    out = parse_msg(msg.build(), scanner=sip_parser)
    assert out.callid == "BCA" + "b4c76e66710"


def test_overlapping_deletes(sip_parser: str) -> None:
    msg = parse_msg(INVITE, scanner=sip_parser)
    h = msg.header("Call-ID")
    msg.delete_range(h.value_start, h.value_start + 5)
    msg.delete_range(h.value_start + 2, h.value_start + 8)
    assert parse_msg(msg.build(), scanner=sip_parser).callid == "e66710"


def test_set_ruri(sip_parser: str) -> None:
    msg = parse_msg(INVITE, scanner=sip_parser)
    msg.set_ruri("sip:bob@192.0.2.9:5080;transport=tcp")
    assert msg.orig_ruri == "sip:bob@biloxi.example.com"
    assert msg.ruri == "sip:bob@192.0.2.9:5080;transport=tcp"
    assert msg.parsed_ruri.port == 5080
    assert msg.parsed_orig_ruri.port is None
    out = parse_msg(msg.build(), scanner=sip_parser)
    assert out.ruri == "sip:bob@192.0.2.9:5080;transport=tcp"
    with pytest.raises(ValueError):
        msg.set_ruri("sip:a b")


def test_set_body_fixes_content_length(sip_parser: str) -> None:
    msg = parse_msg(INVITE, scanner=sip_parser)
    msg.set_body(b"hello world", "text/plain")
    assert msg.body == b"hello world"
    assert msg.orig_body == b"v=0\n"
    out = parse_msg(msg.build(), scanner=sip_parser)
    assert out.content_length == 11 and out.body == b"hello world"
    assert out.content_type is not None and out.content_type.mime == "text/plain"
    assert len(out.header_all(HdrType.CONTENTTYPE)) == 1


def test_set_body_adds_content_length_when_missing(sip_parser: str) -> None:
    raw = b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n"
    msg = parse_msg(raw, scanner=sip_parser)
    msg.set_body(b"hi", "text/plain")
    out = parse_msg(msg.build(), scanner=sip_parser)
    assert out.content_length == 2 and out.body == b"hi"
    assert out.content_type.mime == "text/plain"  # type: ignore[union-attr]


def test_body_byte_lump_fixes_content_length(sip_parser: str) -> None:
    msg = parse_msg(INVITE, scanner=sip_parser)
    msg.insert_after(msg.body_offset + 3, b"\no=extra")
    out = parse_msg(msg.build(), scanner=sip_parser)
    assert out.body == b"v=0\no=extra\n"
    assert out.content_length == len(out.body)


def test_add_header_rejects_garbage(sip_parser: str) -> None:
    msg = parse_msg(INVITE, scanner=sip_parser)
    with pytest.raises(ValueError):
        msg.add_header("no colon here")


# ------------------------------------------------------------------ build_reply


def test_reply_copies_vias_and_adds_to_tag(sip_parser: str) -> None:
    req = parse_msg(INVITE, scanner=sip_parser)
    rpl = parse_msg(build_reply(req, 404, "Not Found"), scanner=sip_parser)
    assert rpl.status == 404 and rpl.reason == "Not Found"
    assert [v.branch for v in rpl.vias] == ["z9hG4bK2", "z9hG4bK1"]
    assert rpl.vias[1].received == "192.0.2.1"
    assert rpl.to_tag == gen_to_tag(req)
    assert rpl.from_tag == "1928301774"
    assert rpl.callid == req.callid
    assert (rpl.cseq.num, rpl.cseq.method) == (314159, "INVITE")
    assert rpl.header(HdrType.RECORDROUTE) is None  # not copied on 4xx
    assert rpl.content_length == 0
    assert rpl.header("Server") is not None
    rpl.parse_all()


def test_reply_100_has_no_to_tag(sip_parser: str) -> None:
    req = parse_msg(INVITE, scanner=sip_parser)
    rpl = parse_msg(build_reply(req, 100, "Trying"), scanner=sip_parser)
    assert rpl.to_tag is None
    assert rpl.header(HdrType.RECORDROUTE) is None


@pytest.mark.parametrize("code,copied", [(100, False), (180, True), (183, True), (200, True),
                                         (302, False), (486, False)])
def test_record_route_copied_for_1xx_2xx(code: int, copied: bool, sip_parser: str) -> None:
    req = parse_msg(INVITE, scanner=sip_parser)
    rpl = parse_msg(build_reply(req, code, "X", to_tag="abc"), scanner=sip_parser)
    assert (rpl.header(HdrType.RECORDROUTE) is not None) == copied
    if code > 100:
        assert rpl.to_tag == "abc"


def test_record_route_not_copied_for_non_dialog_requests(sip_parser: str) -> None:
    req = parse_msg(INVITE.replace(b"INVITE", b"OPTIONS"), scanner=sip_parser)
    rpl = parse_msg(build_reply(req, 200, "OK"), scanner=sip_parser)
    assert rpl.header(HdrType.RECORDROUTE) is None


def test_reply_keeps_existing_to_tag(sip_parser: str) -> None:
    req = parse_msg(INVITE.replace(b"To: Bob <sip:bob@biloxi.example.com>",
                                   b"To: Bob <sip:bob@biloxi.example.com>;tag=have"),
                    scanner=sip_parser)
    rpl = parse_msg(build_reply(req, 200, "OK", to_tag="new"), scanner=sip_parser)
    assert rpl.to_tag == "have"
    assert len(rpl.to.params) == 1


def test_reply_with_body_and_extra_headers(sip_parser: str) -> None:
    req = parse_msg(INVITE, scanner=sip_parser)
    raw = build_reply(req, 200, "OK", extra_headers=["Contact: <sip:bob@192.0.2.4>"],
                      body=b"v=0\r\n", content_type="application/sdp", server_header=None)
    rpl = parse_msg(raw, scanner=sip_parser)
    assert rpl.body == b"v=0\r\n" and rpl.content_length == 5
    assert rpl.content_type.mime == "application/sdp"  # type: ignore[union-attr]
    assert rpl.contact_uri == "sip:bob@192.0.2.4"
    assert rpl.header("Server") is None
    with pytest.raises(ValueError):
        build_reply(req, 200, "OK", extra_headers=["X: 1\r\nY: 2"])


def test_gen_to_tag_stable_for_retransmissions(sip_parser: str) -> None:
    a = parse_msg(INVITE, scanner=sip_parser)
    b = parse_msg(bytes(INVITE), scanner=sip_parser)
    other = parse_msg(INVITE.replace(b"CSeq: 314159", b"CSeq: 314160"), scanner=sip_parser)
    assert gen_to_tag(a) == gen_to_tag(b) != gen_to_tag(other)


# ------------------------------------------------------------------ build_request


def test_build_request_prepends_via_and_applies_lumps(sip_parser: str) -> None:
    msg = parse_msg(INVITE, scanner=sip_parser)
    msg.set_ruri("sip:bob@192.0.2.4")
    msg.add_header("X-Routed: yes")
    branch = make_branch(msg)
    out = parse_msg(build_request(msg, via=f"SIP/2.0/UDP 192.0.2.1:5060;branch={branch}",
                                  decrement_max_forwards=True), scanner=sip_parser)
    assert out.ruri == "sip:bob@192.0.2.4"
    assert out.via1.branch == branch and branch.startswith("z9hG4bK")  # type: ignore[union-attr]
    assert [v.branch for v in out.vias][1:] == ["z9hG4bK2", "z9hG4bK1"]
    assert out.max_forwards == 68
    assert out.header("X-Routed") is not None
    assert out.body == b"v=0\n"
    # building does not consume the edits: the same output again
    assert build_request(msg, via=f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}",
                         decrement_max_forwards=True) == out.buf


def test_make_branch_matches_cancel_and_retransmission(sip_parser: str) -> None:
    inv = parse_msg(INVITE, scanner=sip_parser)
    again = parse_msg(bytes(INVITE), scanner=sip_parser)
    cancel = parse_msg(INVITE.replace(b"INVITE sip", b"CANCEL sip")
                       .replace(b"314159 INVITE", b"314159 CANCEL"), scanner=sip_parser)
    other = parse_msg(INVITE.replace(b"z9hG4bK2", b"z9hG4bK3"), scanner=sip_parser)
    assert make_branch(inv) == make_branch(again) == make_branch(cancel)
    assert make_branch(inv) != make_branch(other)


def test_build_request_adds_max_forwards(sip_parser: str) -> None:
    raw = INVITE.replace(b"Max-Forwards: 69\r\n", b"")
    msg = parse_msg(raw, scanner=sip_parser)
    out = parse_msg(build_request(msg, via=None, decrement_max_forwards=True), scanner=sip_parser)
    assert out.max_forwards == 70


@pytest.mark.parametrize("via,received,rport,expect", [
    ("SIP/2.0/UDP h;branch=z9hG4bK1;rport", "192.0.2.9", 5070,
     "SIP/2.0/UDP h;branch=z9hG4bK1;rport=5070;received=192.0.2.9"),
    ("SIP/2.0/UDP h;rport;branch=z9hG4bK1, SIP/2.0/UDP g;rport", None, 5070,
     "SIP/2.0/UDP h;rport=5070;branch=z9hG4bK1, SIP/2.0/UDP g;rport"),
    ("SIP/2.0/UDP h;branch=z9hG4bK1", "192.0.2.9", None,
     "SIP/2.0/UDP h;branch=z9hG4bK1;received=192.0.2.9"),
    ("SIP/2.0/UDP h;branch=z9hG4bK1;x=\"a,b\"", None, 1,
     "SIP/2.0/UDP h;branch=z9hG4bK1;x=\"a,b\";rport=1"),
])
def test_reply_via_received_rport(via: str, received, rport, expect: str,  # type: ignore[no-untyped-def]
                                  sip_parser: str) -> None:
    req = parse_msg(INVITE.replace(b"SIP/2.0/UDP proxy.example.com;branch=z9hG4bK2",
                                   via.encode()), scanner=sip_parser)
    rpl = parse_msg(build_reply(req, 200, "OK", via_received=received, via_rport=rport),
                    scanner=sip_parser)
    assert rpl.headers[0].value == expect
    assert rpl.headers[1].value == req.headers[1].value  # the second Via line is untouched
    if rport is not None:
        assert rpl.via1.rport == str(rport)  # type: ignore[union-attr]
