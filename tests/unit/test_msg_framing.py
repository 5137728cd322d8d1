"""Stream framing tests: byte-by-byte and random splits give the same messages, keep-alive
pings/pongs, Content-Length mandatory, size limits. Runs in: pytest only."""
from __future__ import annotations

import random

import pytest

from sipcore.errors import ParseError
from sipcore.msg import parse_msg
from sipcore.msg.framing import KEEPALIVE_PING, ReceiveBuffer

M1 = (b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n")
M2 = (b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK2\r\n"
      b"Content-Length: 5\r\n\r\nhello")
STREAM = b"\r\n\r\n" + M1 + b"\r\n" + M2 + M1


def events_of(chunks: list[bytes]) -> list[object]:
    rb = ReceiveBuffer()
    out: list[object] = []
    for c in chunks:
        rb.feed(c)
        out += list(rb.events())
    assert len(rb) == 0
    return out


EXPECTED = [KEEPALIVE_PING, M1, M2, M1]


def test_whole_stream() -> None:
    assert events_of([STREAM]) == EXPECTED


def test_byte_by_byte() -> None:
    assert events_of([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_random_splits() -> None:
    rng = random.Random(5626)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 12)))
        chunks = [STREAM[a:b] for a, b in zip([0] + cuts, cuts + [len(STREAM)])]
        assert events_of(chunks) == EXPECTED


def test_messages_parse() -> None:
    rb = ReceiveBuffer()
    rb.feed(STREAM)
    assert [parse_msg(m).body for m in rb.messages()] == [b"", b"hello", b""]


def test_content_length_required() -> None:
    rb = ReceiveBuffer()
    rb.feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n")
    with pytest.raises(ParseError, match="Content-Length required"):
        list(rb.events())


def test_size_limits() -> None:
    rb = ReceiveBuffer(max_size=100)
    rb.feed(b"MESSAGE sip:a@b SIP/2.0\r\nl: 1000\r\n\r\n")
    with pytest.raises(ParseError) as ei:
        list(rb.events())
    assert ei.value.status_hint == 513
    rb = ReceiveBuffer(max_size=100)
    rb.feed(b"MESSAGE sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 30)
    with pytest.raises(ParseError):
        list(rb.events())
