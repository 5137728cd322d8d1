"""Scanner tests: the C scanner (sipcore._csipparse via _cparse) and the pure-Python twin
(pyparser) give identical scan lists and identical errors over the scanner cases, the torture
corpus and generated messages; the C hot-field cache never disagrees with the Python parsers.
Runs in: pytest only. The C half is skipped when the extension is not built.
"""
from __future__ import annotations

import json

import pytest

from sipcore.errors import ParseError
from sipcore.msg import parse_msg, scandefs as sd
from sipcore.msg.hdrdefs import name_map
from sipcore.msg.parser import c_scan, py_scan
from sipcore.msg.pyparser import ScanError
from tests.paths import ROOT, TORTURE, TORTURE_MANIFEST
from tests.services import C_SCANNER_MISSING

DATA = json.loads((ROOT / "tests" / "data" / "msg" / "scanner.json").read_text())
SCANNERS = ["py"] + (["c"] if c_scan is not None else [])
needs_c = pytest.mark.skipif(c_scan is None, reason=C_SCANNER_MISSING)


def _raw(text: str) -> bytes:
    return text.encode("utf-8")


def corpus() -> list[tuple[str, bytes]]:
    out = [(c["name"], _raw(c["raw"])) for c in DATA["valid"] + DATA["invalid"]]
    man = json.loads(TORTURE_MANIFEST.read_text())
    out += [(m["name"], (TORTURE / m["file"]).read_bytes()) for m in man["messages"]]
    return out


CORPUS = corpus()


@pytest.fixture(params=SCANNERS)
def sip_parser(request: pytest.FixtureRequest) -> str:
    return request.param


def run_scan(fn, buf: bytes):  # type: ignore[no-untyped-def]
    try:
        return list(fn(buf))
    except ScanError as e:
        return ("error", e.code, e.offset)


def strip_hot(res):  # type: ignore[no-untyped-def]
    if isinstance(res, list):
        return res[: sd.HOT_FIRST] + res[sd.FIXED :]
    return res


@pytest.mark.parametrize("case", DATA["valid"], ids=lambda c: c["name"])
def test_valid_cases(case: dict, sip_parser: str) -> None:
    msg = parse_msg(_raw(case["raw"]), scanner=sip_parser)
    if "method" in case:
        assert msg.method == case["method"]
    if "ruri" in case:
        assert msg.ruri == case["ruri"]
    if "headers" in case:
        assert [[h.name, int(h.type), h.value] for h in msg.headers] == case["headers"]
    if "body" in case:
        assert msg.body == case["body"].encode()
    if "clen" in case:
        assert msg.content_length == case["clen"]
    if "status" in case:
        assert msg.status == case["status"]
        assert msg.reason == case["reason"]
    if "len" in case:
        assert msg.len == case["len"]


@pytest.mark.parametrize("case", DATA["invalid"], ids=lambda c: c["name"])
def test_invalid_cases(case: dict, sip_parser: str) -> None:
    with pytest.raises(ParseError) as ei:
        parse_msg(_raw(case["raw"]), scanner=sip_parser)
    assert ei.value.reason == case["error"]
    assert ei.value.status_hint == case.get("status_hint", 400)
    assert ei.value.offset >= 0


def test_msg_buf_is_exactly_the_message() -> None:
    raw = b"\r\nMESSAGE sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhiJUNK"
    msg = parse_msg(raw)
    assert msg.buf == b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhi"
    assert msg.header("l").start == len(b"MESSAGE sip:a@b SIP/2.0\r\n")


def test_header_offsets() -> None:
    raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia :  SIP/2.0/UDP h  \r\n\r\n"
    h = parse_msg(raw).headers[0]
    assert raw[h.start : h.end] == b"Via :  SIP/2.0/UDP h  \r\n"
    assert raw[h.value_start : h.value_end] == b"SIP/2.0/UDP h"
    assert h.name == "Via" and h.canonical_name == "Via"


def test_too_many_headers(sip_parser: str) -> None:
    from sipcore.msg.limits import MAX_HEADERS

    ok = b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: 1\r\n" * MAX_HEADERS + b"\r\n"
    assert len(parse_msg(ok, scanner=sip_parser).headers) == MAX_HEADERS
    with pytest.raises(ParseError, match="too many headers"):
        parse_msg(ok.replace(b"\r\n\r\n", b"\r\nX: 1\r\n\r\n"), scanner=sip_parser)


def test_too_big(sip_parser: str) -> None:
    from sipcore.msg.limits import MAX_MSG_SIZE

    raw = b"MESSAGE sip:a@b SIP/2.0\r\n\r\n" + b"x" * MAX_MSG_SIZE
    with pytest.raises(ParseError) as ei:
        parse_msg(raw, scanner=sip_parser)
    assert ei.value.status_hint == 513


@needs_c
@pytest.mark.parametrize("name,raw", CORPUS, ids=[n for n, _ in CORPUS])
def test_c_and_python_scanners_agree(name: str, raw: bytes) -> None:
    assert strip_hot(run_scan(c_scan, raw)) == strip_hot(run_scan(py_scan, raw))


def hot_view(msg):  # type: ignore[no-untyped-def]
    """The hot-path accessors, each as value or the ParseError reason."""
    out = []
    for attr in ("from_tag", "to_tag", "via1_branch", "contact_uri", "callid"):
        try:
            out.append(getattr(msg, attr))
        except ParseError as e:
            out.append(("error", e.reason))
    try:
        c = msg.cseq
        out.append((c.num, c.method))
    except ParseError as e:
        out.append(("error", e.reason))
    return out


@needs_c
@pytest.mark.parametrize("name,raw", CORPUS, ids=[n for n, _ in CORPUS])
def test_hot_fields_match_python_parsers(name: str, raw: bytes) -> None:
    try:
        cmsg = parse_msg(raw, scanner="c")
    except ParseError:
        return
    pmsg = parse_msg(raw, scanner="py")
    assert hot_view(cmsg) == hot_view(pmsg)
    assert cmsg.summary() == pmsg.summary()


@needs_c
def test_c_header_lookup_matches_table() -> None:
    from sipcore.msg import _cparse

    for name, tid in name_map().items():
        assert _cparse.hdr_type(name.encode()) == tid
        assert _cparse.hdr_type(name.upper().encode()) == tid
    assert _cparse.hdr_type(b"X-Foo") == 0
    assert _cparse.hdr_type(b"") == 0
    assert _cparse.hdr_type(b"a" * 500) == 0


@needs_c
def test_hot_fields_are_used_for_common_messages() -> None:
    raw = (b"INVITE sip:bob@b.example.com SIP/2.0\r\n"
           b"Via: SIP/2.0/UDP a.example.com:5060;branch=z9hG4bK77;rport\r\n"
           b'From: "Al \\"x\\"" <sip:al@a.example.com>;tag=19\r\n'
           b"To: Bob <sip:bob@b.example.com>\r\nCall-ID: c1\r\nCSeq: 3 INVITE\r\n"
           b"Contact: <sip:al@192.0.2.1:5060;transport=udp>\r\nContent-Length: 0\r\n\r\n")
    sc = list(c_scan(raw))
    hot = sc[sd.HOT_FIRST : sd.S_CONTACT_E + 1]
    assert -1 not in hot
    msg = parse_msg(raw, scanner="c")
    assert hot_view(msg) == ["19", None, "z9hG4bK77", "sip:al@192.0.2.1:5060;transport=udp",
                             "c1", (3, "INVITE")]


def test_no_headers(sip_parser: str) -> None:
    msg = parse_msg(b"SIP/2.0 100 Trying\r\n\r\n", scanner=sip_parser)
    assert msg.headers == [] and msg.header("Via") is None and msg.header_all("v") == []
    assert msg.callid == "" and msg.via1 is None and msg.vias == []
    with pytest.raises(ParseError, match="missing From"):
        msg.from_tag  # noqa: B018
    with pytest.raises(ParseError):
        msg.parse_all()


@needs_c
def test_stale_build_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A C build whose constants differ from limits/scandefs/hdrdefs must not be used."""
    from sipcore.msg import _cparse, limits

    _cparse._check_build()
    monkeypatch.setattr(limits, "MAX_HEADERS", limits.MAX_HEADERS + 1)
    with pytest.raises(ImportError, match="stale"):
        _cparse._check_build()
