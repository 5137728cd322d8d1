"""RFC 4475 / RFC 5118 torture messages (tests/data/torture): every `valid` message parses
(parse_msg + parse_all), every `invalid-must-reject` raises ParseError from parse_msg or
parse_all, every `valid-but-unusual` never raises anything but ParseError - with both scanners.
Runs in: pytest only.

Rejections that need more than single-header syntax, done by parse_all's message-level rules:
  mismatch01/mismatch02: CSeq method != request method (RFC 3261 8.1.1.5, RFC 4475 3.1.2.17/18)
  insuf: mandatory To/From/Call-ID missing (RFC 3261 8.1.1)
  multi01: several From/To/Call-ID/CSeq/Max-Forwards (RFC 3261 7.3.1, single-value headers)
  escruri: headers in the Request-URI (RFC 3261 19.1.1 table)
  baddate: Date not in RFC 1123 GMT form (RFC 3261 20.17)
  scalar02/scalarlg: CSeq number >= 2**31 (RFC 3261 8.1.1.5)
"""
from __future__ import annotations

import hashlib
import json

import pytest

from sipcore.errors import ParseError
from sipcore.msg import build_reply, parse_msg
from sipcore.msg.parser import c_scan
from tests.paths import DATA, TORTURE, TORTURE_MANIFEST

MANIFEST = json.loads(TORTURE_MANIFEST.read_text())["messages"]
SCANNERS = ["py"] + (["c"] if c_scan is not None else [])


def _load(entry: dict) -> bytes:
    raw = (TORTURE / entry["file"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"], "corpus file changed"
    return raw


def test_corpus_is_complete() -> None:
    """The manifest lists every message file once: RFC 4475's 49 and RFC 5118's 12."""
    files = sorted(p.relative_to(TORTURE).as_posix() for p in (TORTURE / "msgs").glob("*.dat"))
    assert sorted(m["file"] for m in MANIFEST) == files
    sources = [m["source"].split()[0] for m in MANIFEST]
    assert (sources.count("RFC4475"), sources.count("RFC5118"), len(sources)) == (49, 12, 61)


def _cases(cls: str) -> list[dict]:
    return [m for m in MANIFEST if m["class"] == cls]


@pytest.fixture(params=SCANNERS)
def sip_parser(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("entry", _cases("valid"), ids=lambda m: m["name"])
def test_valid_messages_parse(entry: dict, sip_parser: str) -> None:
    msg = parse_msg(_load(entry), scanner=sip_parser)
    msg.parse_all()
    assert msg.is_request == (entry["kind"] == "request")
    assert msg.callid
    assert msg.vias
    if msg.is_request:
        reply = parse_msg(build_reply(msg, 200, "OK"), scanner=sip_parser)
        reply.parse_all()
        assert reply.to_tag
        assert reply.callid == msg.callid


@pytest.mark.parametrize("entry", _cases("invalid-must-reject"), ids=lambda m: m["name"])
def test_invalid_messages_rejected(entry: dict, sip_parser: str) -> None:
    with pytest.raises(ParseError) as ei:
        parse_msg(_load(entry), scanner=sip_parser).parse_all()
    assert ei.value.status_hint in (400, 505, 513)


@pytest.mark.parametrize("entry", _cases("valid-but-unusual"), ids=lambda m: m["name"])
def test_unusual_messages_never_crash(entry: dict, sip_parser: str) -> None:
    try:
        msg = parse_msg(_load(entry), scanner=sip_parser)
        msg.parse_all()
    except ParseError:
        return


def test_specific_outcomes() -> None:
    by_name = {m["name"]: m for m in MANIFEST}
    # RFC 4475 3.1.1.8: only the first request of the datagram is processed
    dbl = parse_msg(_load(by_name["dblreq"]))
    assert dbl.body == dbl.orig_body and len(dbl.body) == dbl.content_length
    assert b"INVITE" not in dbl.body
    # 3.1.2.16: unknown version -> 505
    with pytest.raises(ParseError) as ei:
        parse_msg(_load(by_name["badvers"]))
    assert ei.value.status_hint == 505
    # 3.1.1.1: folded, mixed-case, compact headers
    ws = parse_msg(_load(by_name["wsinv"]))
    assert ws.to_tag == "1918181833n" and ws.from_tag == "98asjd8"
    assert [v.branch for v in ws.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert ws.cseq.num == 9 and ws.max_forwards == 68
    # RFC 5118 4.5: received with and without []
    rcv = parse_msg(_load(by_name["via-received-param-no-delim"])).via1
    assert rcv is not None and rcv.received is not None and ":" in rcv.received
    # RFC 5118 4.4: [IPv6]:port in the R-URI
    u = parse_msg(_load(by_name["port-unambiguous"])).parsed_ruri
    assert u.host.startswith("[") and u.port == 5070


# Known answers for every message that is not invalid (tests/data/msg/torture_expect.json,
# reviewed against the RFC 4475/5118 texts): what a proxy reads from each of them.
EXPECT = json.loads((DATA / "msg" / "torture_expect.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_known_answers(name: str, sip_parser: str) -> None:
    entry = next(m for m in MANIFEST if m["name"] == name)
    exp = EXPECT[name]
    msg = parse_msg(_load(entry), scanner=sip_parser)
    if "parse_all_error" in exp:
        with pytest.raises(ParseError, match=exp["parse_all_error"]):
            msg.parse_all()
        return
    msg.parse_all()
    got = {
        "method": msg.method, "ruri": msg.ruri if msg.is_request else None, "status": msg.status,
        "callid": msg.callid, "from_tag": msg.from_tag, "to_tag": msg.to_tag,
        "cseq": [msg.cseq.num, msg.cseq.method],
        "vias": [[v.proto, v.host, v.port, v.branch] for v in msg.vias],
        "contacts": "*" if msg.contacts.star else [c.uri for c in msg.contacts.contacts],
        "content_length": msg.content_length, "body_len": len(msg.body),
        "nheaders": len(msg.headers),
    }
    assert got == exp
