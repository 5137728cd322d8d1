"""The edit list's named type and ordering bands: what comes out first when several edits sit
at one offset (core lines versus script edits), byte for byte; SipMsg.current_body().
Runs in: pytest only."""
from __future__ import annotations

import pytest

from sipcore.msg import HdrType, build_request, parse_msg
from sipcore.msg import lumps as L
from sipcore.msg.lumps import Edit, LumpList, apply_ops, make_edit

REQ = (
    b"INVITE sip:bob@b.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:a@a.example>;tag=1\r\n"
    b"To: <sip:bob@b.example>\r\n"
    b"Call-ID: c1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)
HEADERS = REQ[REQ.index(b"\r\n") + 2:REQ.index(b"\r\n\r\n") + 2]
VIA = "SIP/2.0/UDP proxy.example;branch=z9hG4bKp"


def test_bands_are_ordered_as_documented() -> None:
    order = [L.BAND_SEND_LINES, L.BAND_OUR_VIA, L.BAND_BEFORE, L.BAND_MAXFWD_ADDED,
             L.BAND_EXTRA_HEADERS, L.BAND_CONTENT_TYPE, L.BAND_CONTENT_LENGTH,
             L.BAND_REPLACE_FIRST, L.BAND_REPLACE, L.BAND_REPLACE_LAST, L.BAND_AFTER]
    assert order == sorted(order) and len(set(order)) == len(order)


def test_lumplist_records_named_edits() -> None:
    lumps = LumpList()
    lumps.insert_before(5, b"a")
    lumps.replace(5, 9, b"b")
    lumps.delete(1, 2)
    lumps.insert_after(5, b"c")
    assert lumps.ops == [Edit(5, L.BAND_BEFORE, 1, 5, b"a"), Edit(5, L.BAND_REPLACE, 2, 9, b"b"),
                         Edit(1, L.BAND_REPLACE, 3, 2, b""), Edit(5, L.BAND_AFTER, 4, 5, b"c")]
    e = lumps.ops[1]
    assert (e.pos, e.band, e.seq, e.end, e.data) == (5, L.BAND_REPLACE, 2, 9, b"b")
    assert type(make_edit(1, 2, 3, 4, b"x")) is Edit
    assert lumps.touches(8, 20) and not lumps.touches(9, 20)
    with pytest.raises(ValueError):
        lumps.replace(4, 3, b"")
    with pytest.raises(ValueError):
        lumps.delete(4, 3)
    lumps.discard([lumps.ops[1]])
    assert [e.data for e in lumps.ops] == [b"a", b"", b"c"]


def test_apply_ops_at_one_offset() -> None:
    # before (older first), then the replacement starting there, then after
    lumps = LumpList()
    lumps.insert_after(3, b"<A1>")
    lumps.insert_before(3, b"<B1>")
    lumps.replace(3, 6, b"<R>")
    lumps.insert_before(3, b"<B2>")
    lumps.insert_after(3, b"<A2>")
    assert apply_ops(b"0123456789", lumps.ops, 0, 10) == b"012<B1><B2><R><A1><A2>6789"
    # overlapping deletions merge; an insertion inside a deleted range comes out where the
    # deletion happened
    lumps = LumpList()
    lumps.delete(2, 6)
    lumps.delete(4, 8)
    lumps.insert_before(5, b"<I>")
    assert apply_ops(b"0123456789", lumps.ops, 0, 10) == b"01<I>89"


def test_core_bands_at_the_first_header() -> None:
    """Send-time lines (Record-Route), then our Via, then what the script inserted first."""
    msg = parse_msg(REQ)
    msg.add_header("X-Script: 1", first=True)           # insert_hf()
    first = msg.headers[0].start
    out = msg.build([
        make_edit(first, L.BAND_OUR_VIA, 0, first, b"Via: " + VIA.encode() + b"\r\n"),
        make_edit(first, L.BAND_SEND_LINES, 1, first, b"Record-Route: <sip:p2;lr>\r\n"),
        make_edit(first, L.BAND_SEND_LINES, 0, first, b"Record-Route: <sip:p1;lr>\r\n"),
    ])
    assert out == (b"INVITE sip:bob@b.example SIP/2.0\r\n"
                   b"Record-Route: <sip:p1;lr>\r\n"
                   b"Record-Route: <sip:p2;lr>\r\n"
                   b"Via: " + VIA.encode() + b"\r\n"
                   b"X-Script: 1\r\n" + HEADERS + b"\r\nv=0\n")
    # build_request: our Via above the script's first header as well
    assert build_request(msg, via=VIA) == (
        b"INVITE sip:bob@b.example SIP/2.0\r\nVia: " + VIA.encode() + b"\r\nX-Script: 1\r\n"
        + HEADERS + b"\r\nv=0\n")


def test_core_bands_at_the_end_of_the_headers() -> None:
    """Appended by the script, then an added Max-Forwards, then extra headers in their order,
    then the Content-Type and Content-Length lines build() adds."""
    raw = REQ.replace(b"Max-Forwards: 70\r\n", b"").replace(b"Content-Length: 4\r\n", b"")
    msg = parse_msg(raw)
    msg.add_header("X-Appended: 1")
    msg.set_body(b"hello", "text/plain")
    out = build_request(msg, via=None, extra_headers=["X-Extra: 1", "X-Extra: 2"],
                        decrement_max_forwards=True)
    assert out.endswith(b"CSeq: 1 INVITE\r\nX-Appended: 1\r\nMax-Forwards: 70\r\n"
                        b"X-Extra: 1\r\nX-Extra: 2\r\nContent-Type: text/plain\r\n"
                        b"Content-Length: 5\r\n\r\nhello")


def test_core_replacements_around_script_replacements() -> None:
    """At one offset the new R-URI and the decremented Max-Forwards come out ahead of a script
    replacement there, and the Content-Type line set_body() writes comes out after it."""
    raw = REQ.replace(b"Content-Length: 4\r\n",
                      b"Content-Type: text/plain\r\nContent-Length: 4\r\n")
    msg = parse_msg(raw)
    ruri = raw.index(b"sip:bob")
    msg.set_ruri("sip:carol@c.example")
    msg.replace_range(ruri, ruri + 3, b"XXX")
    mf = msg.header(HdrType.MAXFORWARDS)
    msg.replace_range(mf.value_start, mf.value_start, b"<script>")
    msg.replace_header(msg.header(HdrType.CONTENTTYPE), "Content-Type: a/b")
    msg.set_body(b"hello", "c/d")
    out = build_request(msg, via=None, decrement_max_forwards=True)
    # (overlapping replacements both emit their text: each after the one before it)
    assert out.startswith(b"INVITE sip:carol@c.exampleXXX SIP/2.0\r\n")
    assert b"Max-Forwards: 69<script>\r\n" in out
    assert out.endswith(b"Content-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 5\r\n"
                        b"\r\nhello")


def test_an_edit_across_the_body_boundary_is_cut_there() -> None:
    msg = parse_msg(REQ)
    cseq = msg.header(HdrType.CSEQ)
    msg.delete_range(cseq.start, msg.body_offset + 2)    # CSeq..body "v="
    assert msg.current_body() == b"0\n"
    assert msg.build().endswith(b"Call-ID: c1\r\n0\n")


def test_current_body() -> None:
    msg = parse_msg(REQ)
    assert msg.current_body() == b"v=0\n"
    msg.add_header("X-A: 1")                             # header edits do not matter
    assert msg.current_body() == b"v=0\n"
    msg.replace_range(msg.body_offset + 2, msg.body_offset + 3, b"1")
    msg.insert_before(msg.body_offset + 4, b"s=-\n")
    assert msg.current_body() == b"v=1\ns=-\n"
    out = msg.build()
    assert b"Content-Length: 8\r\n" in out and out.endswith(b"X-A: 1\r\n\r\nv=1\ns=-\n")
    msg.set_body(b"v=0\n")                               # set_body wins over byte edits
    assert msg.current_body() == b"v=0\n"
    assert msg.build().endswith(b"\r\n\r\nv=0\n")
