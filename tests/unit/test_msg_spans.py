"""sipcore.msg.spans: quote- and <>-aware value/param offsets and the top-Via edits, as the
forwarded bytes show them."""
from __future__ import annotations

from sipcore.msg import parse_msg
from sipcore.msg.spans import (
    find_unquoted,
    first_value_span,
    param_spans,
    remove_via1,
    set_via1_received_rport,
    value_spans,
)


def texts(buf: bytes, spans: list[tuple[int, int]]) -> list[bytes]:
    return [buf[s:e] for s, e in spans]


def test_value_spans_respects_quotes_and_trims():
    buf = b'X: "a,b" <sip:x>, c ;p="1,2" ,, d\r\n'
    assert texts(buf, value_spans(buf, 3, len(buf))) == \
        [b'"a,b" <sip:x>', b'c ;p="1,2"', b'd']


def test_value_spans_escaped_quote_inside_quoted_string():
    buf = b'"say \\"hi, there\\"" <sip:a>, <sip:b>'
    assert texts(buf, value_spans(buf, 0, len(buf))) == \
        [b'"say \\"hi, there\\"" <sip:a>', b'<sip:b>']


def test_angle_keeps_commas_and_semicolons_of_a_uri():
    buf = b'<sip:a,b@x;lr>;q=0.5, <sip:c@y>'
    assert texts(buf, value_spans(buf, 0, len(buf))) == [b'<sip:a', b'b@x;lr>;q=0.5',
                                                         b'<sip:c@y>']
    assert texts(buf, value_spans(buf, 0, len(buf), angle=True)) == \
        [b'<sip:a,b@x;lr>;q=0.5', b'<sip:c@y>']
    s, e = first_value_span(buf, 0, len(buf), angle=True)
    assert buf[s:e] == b'<sip:a,b@x;lr>;q=0.5'
    names = [n for n, _, _ in param_spans(buf, s, e, angle=True)]
    assert names == ["q"]
    assert [n for n, _, _ in param_spans(buf, s, e)] == ["lr>", "q"]


def test_param_spans_quoted_semicolon():
    buf = b'SIP/2.0/UDP h;branch=z9;x="a;b";Rport'
    got = [(n, buf[s:e]) for n, s, e in param_spans(buf, 0, len(buf))]
    assert got == [("branch", b";branch=z9"), ("x", b';x="a;b"'), ("rport", b";Rport")]


def test_find_unquoted():
    buf = b'"<not>" <sip:a>'
    assert find_unquoted(buf, 0, len(buf), b"<") == 8
    assert find_unquoted(b'"a<b"', 0, 5, b"<") == -1


REQ = (b"INVITE sip:b@example.com SIP/2.0\r\n"
       b"Via: SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1;received=1.1.1.1, "
       b"SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK2\r\n"
       b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
       b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")


def test_set_via1_received_rport_on_the_wire():
    msg = parse_msg(REQ)
    assert set_via1_received_rport(msg, "192.0.2.7", 5099)
    out = msg.build()
    assert (b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=192.0.2.7;rport=5099, "
            b"SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK2\r\n") in out


def test_remove_via1_keeps_the_second_value():
    msg = parse_msg(REQ)
    assert remove_via1(msg)
    out = msg.build()
    assert b"Via: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK2\r\n" in out
    assert b"10.0.0.1" not in out
