"""JSON-RPC 2.0 codec (sipcore.rpc.jsonrpc): decoding never raises, errors have the right
codes and ids, stream framing handles splits, garbage, pretty-printed and back-to-back
documents."""
from __future__ import annotations

import json
import random

import pytest

from sipcore.rpc import jsonrpc
from sipcore.rpc.jsonrpc import Call, Pairs, Response, StreamDecoder, decode, encode


def _one(doc):
    d = decode(doc)
    assert not d.batch and len(d.items) == 1
    return d.items[0]


def test_decode_request_with_params_and_id():
    c = _one(b'{"jsonrpc":"2.0","method":"core.echo","params":[1,"a"],"id":7}')
    assert c == Call("core.echo", [1, "a"], 7, notify=False)


def test_params_object_keeps_value_order_and_missing_params_is_empty():
    c = _one('{"jsonrpc":"2.0","method":"m","params":{"b":2,"a":1},"id":"x"}')
    assert c.params == [2, 1] and c.id == "x"
    assert _one('{"jsonrpc":"2.0","method":"m","id":1}').params == []


def test_notification_has_no_id():
    c = _one('{"jsonrpc":"2.0","method":"m"}')
    assert isinstance(c, Call) and c.notify and c.id is None
    c2 = _one('{"jsonrpc":"2.0","method":"m","id":null}')
    assert isinstance(c2, Call) and not c2.notify


@pytest.mark.parametrize("doc,code", [
    (b"not json", jsonrpc.PARSE_ERROR),
    (b'{"jsonrpc":"2.0","method":"m",', jsonrpc.PARSE_ERROR),
    (b"\xff\xfe\x00garbage", jsonrpc.PARSE_ERROR),
    (b"[" * 100000, jsonrpc.PARSE_ERROR),
    (b"[]", jsonrpc.INVALID_REQUEST),
    (b"42", jsonrpc.INVALID_REQUEST),
    (b'"core.version"', jsonrpc.INVALID_REQUEST),
    (b'{"method":"m","id":1}', jsonrpc.INVALID_REQUEST),
    (b'{"jsonrpc":"1.0","method":"m","id":1}', jsonrpc.INVALID_REQUEST),
    (b'{"jsonrpc":"2.0","method":5,"id":1}', jsonrpc.INVALID_REQUEST),
    (b'{"jsonrpc":"2.0","method":"","id":1}', jsonrpc.INVALID_REQUEST),
    (b'{"jsonrpc":"2.0","method":"m","params":"x","id":1}', jsonrpc.INVALID_REQUEST),
    (b'{"jsonrpc":"2.0","method":"m","id":[1]}', jsonrpc.INVALID_REQUEST),
    (b'{"jsonrpc":"2.0","method":"m","id":true}', jsonrpc.INVALID_REQUEST),
])
def test_bad_documents_become_error_responses(doc, code):
    r = _one(doc)
    assert isinstance(r, Response) and r.error is not None and r.error[0] == code


def test_invalid_request_keeps_a_readable_id():
    r = _one('{"jsonrpc":"1.0","method":"m","id":9}')
    assert r.id == 9
    assert _one("[1").id is None


def test_batch_mixes_calls_and_errors_in_order():
    d = decode('[{"jsonrpc":"2.0","method":"a","id":1}, 5, {"jsonrpc":"2.0","method":"b"}]')
    assert d.batch
    assert isinstance(d.items[0], Call) and d.items[0].method == "a"
    assert isinstance(d.items[1], Response) and d.items[1].error[0] == jsonrpc.INVALID_REQUEST
    assert isinstance(d.items[2], Call) and d.items[2].notify


def test_encode_result_error_and_batch():
    ok = Response(id=1, result={"a": 1})
    none = Response(id=2, result=None)
    err = jsonrpc.error(500, "boom", 3)
    assert json.loads(encode([ok], False)) == {"jsonrpc": "2.0", "result": {"a": 1}, "id": 1}
    assert json.loads(encode([none], False))["result"] == {}          # Kamailio: "result":{}
    assert json.loads(encode([err], False)) == {"jsonrpc": "2.0",
                                               "error": {"code": 500, "message": "boom"},
                                               "id": 3}
    assert [o["id"] for o in json.loads(encode([ok, err], True))] == [1, 3]
    assert encode([], True) is None
    assert encode([ok], False).endswith(b"\n")


def test_pairs_encode_repeated_keys_and_loads_keeps_them():
    value = {"x": Pairs([("socket", {"port": "5060"}), ("socket", {"port": "5061"})])}
    text = jsonrpc.dumps(value)
    assert text.count('"socket"') == 2
    back = jsonrpc.loads(text)
    assert isinstance(back["x"], Pairs)
    assert [v["port"] for _, v in back["x"]] == ["5060", "5061"]
    assert jsonrpc.loads('{"a":1}') == {"a": 1}


def test_dumps_stringifies_unknown_objects():
    assert json.loads(jsonrpc.dumps({"t": object()}))["t"].startswith("<object")


def test_request_builder_escapes():
    req = json.loads(jsonrpc.request("m", ['a"b\n'], 5))
    assert req == {"jsonrpc": "2.0", "method": "m", "params": ['a"b\n'], "id": 5}


# ---- stream framing ---------------------------------------------------------------------------

DOCS = [b'{"jsonrpc":"2.0","method":"a","id":1}',
        b'{"jsonrpc":"2.0","method":"b","params":["\xc3\xa9t\xc3\xa9"],"id":2}',
        b'[{"jsonrpc":"2.0","method":"c","id":3}]']


def _feed_all(dec, chunks):
    out = []
    for ch in chunks:
        out.extend(dec.feed(ch))
    return out


def test_stream_newline_separated_byte_by_byte():
    raw = b"\n".join(DOCS) + b"\n"
    out = _feed_all(StreamDecoder(), [bytes([b]) for b in raw])
    assert [o.encode() for o in out] == DOCS


def test_stream_random_splits_and_back_to_back_documents():
    raw = b"".join(DOCS)                       # no separators at all
    rnd = random.Random(7)
    for _ in range(50):
        cuts = sorted(rnd.sample(range(1, len(raw)), 5))
        chunks = [raw[i:j] for i, j in zip([0] + cuts, cuts + [len(raw)])]
        out = _feed_all(StreamDecoder(), chunks)
        assert [o.encode() for o in out] == DOCS


def test_stream_pretty_printed_multiline_document():
    doc = json.dumps({"jsonrpc": "2.0", "method": "a", "id": 1}, indent=4).encode()
    dec = StreamDecoder()
    assert dec.feed(doc[:10]) == []
    out = dec.feed(doc[10:])
    assert len(out) == 1 and json.loads(out[0])["method"] == "a"


def test_stream_garbage_line_is_an_error_and_the_next_request_still_parses():
    dec = StreamDecoder()
    out = dec.feed(b"hello there\n" + DOCS[0] + b"\n")
    assert isinstance(out[0], Response) and out[0].error[0] == jsonrpc.PARSE_ERROR
    assert out[1].encode() == DOCS[0]
    out = dec.feed(b"\x00\xff\xfe\n" + DOCS[1] + b"\n")
    assert isinstance(out[0], Response) and out[1].encode() == DOCS[1]


def test_stream_incomplete_then_eof_is_a_parse_error():
    dec = StreamDecoder()
    assert dec.feed(b'{"jsonrpc":"2.0","method":"unterminated') == []
    out = dec.eof()
    assert len(out) == 1 and out[0].error[0] == jsonrpc.PARSE_ERROR
    assert dec.pending == 0


def test_stream_overflow_flag():
    dec = StreamDecoder(max_size=100)
    dec.feed(b'{"jsonrpc":"2.0","params":["' + b"x" * 200)
    assert dec.overflow and dec.pending == 0


def test_stream_invalid_byte_after_a_good_document_keeps_the_document():
    out = StreamDecoder().feed(DOCS[0] + b"\n\xff\xfe\n" + DOCS[2] + b"\n")
    assert out[0].encode() == DOCS[0]
    assert isinstance(out[1], Response) and out[1].error[0] == jsonrpc.PARSE_ERROR
    assert out[2].encode() == DOCS[2]
