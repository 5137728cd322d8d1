"""URI parser tests (RFC 3261 19.1 examples, RFC 5118 IPv6, RFC 4475 oddities), data-driven
from tests/data/msg/uris.json. Runs in: pytest only."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipcore.msg import ParseError, SipURI, parse_uri, uri_equal

DATA = json.loads((Path(__file__).parents[1] / "data" / "msg" / "uris.json").read_text())


@pytest.mark.parametrize("case", DATA["valid"], ids=lambda c: c["in"][:40])
def test_valid_uri(case: dict) -> None:
    u = parse_uri(case["in"])
    assert isinstance(u, SipURI)
    for field in ("scheme", "user", "password", "host", "port", "transport", "user_param",
                  "host_port"):
        if field in case:
            assert getattr(u, field) == case[field], field
    if "params" in case:
        assert u.params == [tuple(p) for p in case["params"]]
    if "headers" in case:
        assert u.headers == [tuple(h) for h in case["headers"]]
    # the canonical text parses back to an equal URI
    assert parse_uri(str(u)) == u


@pytest.mark.parametrize("text", DATA["invalid"])
def test_invalid_uri(text: str) -> None:
    with pytest.raises(ParseError):
        parse_uri(text)


@pytest.mark.parametrize("a,b", DATA["equal"])
def test_uri_equal(a: str, b: str) -> None:
    assert uri_equal(parse_uri(a), parse_uri(b))
    assert uri_equal(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize("a,b", DATA["not_equal"])
def test_uri_not_equal(a: str, b: str) -> None:
    assert not uri_equal(parse_uri(a), parse_uri(b))


def test_param_lookup_is_case_insensitive() -> None:
    u = parse_uri("sip:a@b;LR;Transport=TLS")
    assert u.param("lr") == ""
    assert u.param("transport") == "TLS"
    assert u.transport == "tls"
    assert u.param("maddr") is None


def test_str_canonical() -> None:
    u = parse_uri("sip:alice:pw@[2001:db8::1]:5061;transport=tls?subject=x")
    assert str(u) == "sip:alice:pw@[2001:db8::1]:5061;transport=tls?subject=x"
    assert str(parse_uri("tel:+1-201-555-0123;phone-context=example.com")) == \
        "tel:+1-201-555-0123;phone-context=example.com"


def test_parse_error_carries_offset_and_status() -> None:
    with pytest.raises(ParseError) as ei:
        parse_uri("sip:alice@atlanta.com:99999")
    assert ei.value.offset > 0
    assert ei.value.status_hint == 400
