"""Per-header body parser tests (Via, name-addr, Contact, digest, CSeq, params, Content-Type,
Expires, Max-Forwards, Date, Warning, comma splitting), data-driven from
tests/data/msg/headers.json. Runs in: pytest only."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipcore.msg import (
    COMPACT_FORMS, HdrType, ParseError, hdr_type_of, parse_contacts, parse_content_type,
    parse_cseq, parse_date, parse_digest, parse_expires, parse_max_forwards, parse_nameaddr,
    parse_nameaddr_list, parse_params, parse_via,
)
from sipcore.msg.headers import parse_retry_after, parse_warning
from sipcore.msg.params import split_commas

DATA = json.loads((Path(__file__).parents[1] / "data" / "msg" / "headers.json").read_text())


@pytest.mark.parametrize("case", DATA["via_valid"], ids=lambda c: c["in"][:40])
def test_via_valid(case: dict) -> None:
    vias = parse_via(case["in"])
    assert len(vias) == len(case["vias"])
    for via, exp in zip(vias, case["vias"]):
        for k, v in exp.items():
            assert getattr(via, k) == v, k
        # str(via) is canonical and parses back to the same values
        again = parse_via(str(via))[0]
        assert (again.proto, again.host, again.port, again.params) == \
            (via.proto, via.host, via.port, via.params)


@pytest.mark.parametrize("text", DATA["via_invalid"])
def test_via_invalid(text: str) -> None:
    with pytest.raises(ParseError):
        parse_via(text)


def test_via_param_accessor() -> None:
    via = parse_via("SIP/2.0/UDP h;Branch=z9hG4bK1;x-custom=5")[0]
    assert via.branch == "z9hG4bK1"
    assert via.param("X-CUSTOM") == "5"
    assert str(via) == "SIP/2.0/UDP h;Branch=z9hG4bK1;x-custom=5"


@pytest.mark.parametrize("case", DATA["nameaddr_valid"], ids=lambda c: c["in"][:40])
def test_nameaddr_valid(case: dict) -> None:
    na = parse_nameaddr(case["in"])
    for k in ("display", "uri", "tag"):
        if k in case:
            assert getattr(na, k) == case[k], k
    again = parse_nameaddr(str(na))
    assert (again.display, again.uri, again.params) == (na.display, na.uri, na.params)


@pytest.mark.parametrize("text", DATA["nameaddr_invalid"])
def test_nameaddr_invalid(text: str) -> None:
    with pytest.raises(ParseError):
        parse_nameaddr(text)


def test_nameaddr_list_and_contacts() -> None:
    lst = parse_nameaddr_list('<sip:p1.example.com;lr>, "A, B" <sip:p2.example.com;lr>,sip:p3')
    assert [n.uri for n in lst] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3"]
    assert lst[1].display == "A, B"
    cl = parse_contacts('"Joe" <sip:joe@example.org>;expires=3600;q=0.7, <sip:j2@h>')
    assert not cl.star
    assert [(c.uri, c.expires, c.q) for c in cl.contacts] == [
        ("sip:joe@example.org", "3600", "0.7"), ("sip:j2@h", None, None)]
    star = parse_contacts(" * ")
    assert star.star and star.contacts == []
    with pytest.raises(ParseError):
        parse_contacts('"Joe" <sip:joe@example.org>;;;;')
    with pytest.raises(ParseError):
        parse_contacts("<sip:a@b>,")


def test_parsed_uri_of_nameaddr() -> None:
    na = parse_nameaddr("<sip:alice@[2001:db8::1]:5070;transport=tcp>")
    assert na.parsed_uri.host == "[2001:db8::1]"
    assert na.parsed_uri.port == 5070


@pytest.mark.parametrize("case", DATA["digest_valid"], ids=lambda c: c["in"][:30])
def test_digest_valid(case: dict) -> None:
    cred = parse_digest(case["in"])
    for k, v in case.items():
        if k != "in":
            assert getattr(cred, k) == v, k


@pytest.mark.parametrize("text", DATA["digest_invalid"])
def test_digest_invalid(text: str) -> None:
    with pytest.raises(ParseError):
        parse_digest(text)


@pytest.mark.parametrize("text,num,method", [
    ("1 INVITE", 1, "INVITE"), ("0009 INVITE", 9, "INVITE"), ("  4711   REGISTER ", 4711, "REGISTER"),
    ("2147483647 ACK", 2**31 - 1, "ACK"), ("1 !interesting-Method0123456789_*+`.%indeed'~", 1,
                                           "!interesting-Method0123456789_*+`.%indeed'~"),
])
def test_cseq_valid(text: str, num: int, method: str) -> None:
    c = parse_cseq(text)
    assert (c.num, c.method) == (num, method)


@pytest.mark.parametrize("text", ["", "INVITE", "1", "x INVITE", "1INVITE", "2147483648 INVITE",
                                  "36893488147419103232 REGISTER", "1 INVITE extra", "-1 INVITE"])
def test_cseq_invalid(text: str) -> None:
    with pytest.raises(ParseError):
        parse_cseq(text)


def test_params() -> None:
    assert parse_params(";a=1;b; c = \"x;y\" ;d=[::1]") == [
        ("a", "1"), ("b", None), ("c", '"x;y"'), ("d", "[::1]")]
    assert parse_params("lr") == [("lr", None)]
    assert parse_params("") == []
    for bad in (";;a", ";a=", ";=1", ";a b", ";a=\"open"):
        with pytest.raises(ParseError):
            parse_params(bad)


def test_content_type() -> None:
    ct = parse_content_type("multipart/mixed;boundary=7a9cbec02ceef655")
    assert (ct.type, ct.subtype, ct.mime) == ("multipart", "mixed", "multipart/mixed")
    assert ct.params == [("boundary", "7a9cbec02ceef655")]
    assert parse_content_type("Application/SDP").mime == "application/sdp"
    for bad in ("", "application", "application/", "/sdp", "application/sdp junk"):
        with pytest.raises(ParseError):
            parse_content_type(bad)


def test_numbers() -> None:
    assert parse_expires("3600") == 3600
    assert parse_expires(" 0 ") == 0
    assert parse_max_forwards("0068") == 68
    assert parse_retry_after("18000;duration=3600") == 18000
    for fn, bad in ((parse_expires, "10000000000000000000000"), (parse_expires, "-1"),
                    (parse_expires, ""), (parse_max_forwards, "300"), (parse_max_forwards, "x"),
                    (parse_retry_after, "949302838503028349304023988")):
        with pytest.raises(ParseError):
            fn(bad)


def test_date_and_warning() -> None:
    assert parse_date("Sat, 13 Nov 2010 23:29:00 GMT")
    with pytest.raises(ParseError):
        parse_date("Fri, 01 Jan 2010 16:00:00 EST")
    assert parse_warning('307 isi.edu "Session parameter \'foo\' not understood"')
    with pytest.raises(ParseError):
        parse_warning('1812 overture "In Progress"')


def test_split_commas() -> None:
    assert split_commas('a, "b,c" , <sip:x,y>;p=1,,d') == ['a', '"b,c"', "<sip:x,y>;p=1", "d"]
    assert split_commas("  ") == []


def test_hdr_types_and_compact_forms() -> None:
    assert hdr_type_of("v") == HdrType.VIA
    assert hdr_type_of("CALL-id") == HdrType.CALLID
    assert hdr_type_of("X-Unknown") == HdrType.OTHER
    assert {k: v.name for k, v in COMPACT_FORMS.items()}.items() >= {
        "v": "VIA", "f": "FROM", "t": "TO", "i": "CALLID", "m": "CONTACT", "l": "CONTENTLENGTH",
        "c": "CONTENTTYPE", "k": "SUPPORTED", "s": "SUBJECT", "e": "CONTENTENCODING",
        "o": "EVENT", "r": "REFERTO", "u": "ALLOWEVENTS", "x": "SESSIONEXPIRES", "y": "IDENTITY",
        "b": "REFERREDBY"}.items()
    # the contract's names all exist
    for name in ("OTHER", "VIA", "PROXYAUTH", "RPID", "SIPIFMATCH", "REQUESTDISPOSITION",
                 "WARNING", "PAI", "PPI", "MINSE"):
        assert hasattr(HdrType, name)
