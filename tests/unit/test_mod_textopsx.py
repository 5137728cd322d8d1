"""textopsx on real SIP messages: msg_apply_changes, reply status, header values, iterators."""
from __future__ import annotations

import re

import pytest

import modules.textops as textops
import modules.textopsx as x
from sipcore.mod import RouteType
from sipcore.msg import parse_msg
from sipcore.testing import make_ctx


def sip(head: str, body: str = "") -> str:
    b = body.replace("\r\n", "\n").replace("\n", "\r\n")
    return head.replace("\n", "\r\n") + f"\r\nContent-Length: {len(b.encode())}\r\n\r\n" + b


HEAD = """INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: <sip:bob@example.com>
From: <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@10.0.0.1>
Supported: timer, 100rel
Foo: a;x=1, b
Foo: c
User-Agent: softphone
Content-Type: text/plain"""

INVITE = sip(HEAD, "line one\nline two\n")

REPLY = sip("""SIP/2.0 486 Busy Here
Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds
To: <sip:bob@example.com>;tag=2
From: <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE""")


@pytest.fixture
def ctx():
    return make_ctx(INVITE)


def reparsed(ctx):
    return parse_msg(ctx.msg.build())


def foo_values(ctx) -> list[str]:
    return [h.value for h in reparsed(ctx).header_all("Foo")]


def spec(s: str):
    return x.parse_hf_spec(s)


def test_msg_apply_changes_makes_edits_visible(ctx):
    textops.ki_append_hf(ctx, "X-New: 1")
    assert textops.ki_is_present_hf(ctx, "X-New") == -1        # textops sees the received msg
    assert x.ki_msg_apply_changes(ctx) == 1
    assert textops.ki_is_present_hf(ctx, "X-New") == 1
    assert not ctx.msg.lumps_pending
    assert x.ki_msg_apply_changes(ctx) == 1                       # nothing pending: still 1


def test_msg_set_buffer(ctx):
    assert x.ki_msg_set_buffer(ctx, REPLY) == 1
    assert ctx.msg.is_reply and ctx.msg.status == 486
    assert x.ki_msg_set_buffer(ctx, "garbage") == -1


def test_change_reply_status():
    c = make_ctx(REPLY, route_type=RouteType.ONREPLY)
    assert x.ki_change_reply_status(c, 404, "Not Found") == 1
    m = reparsed(c)
    assert (m.status, m.reason) == (404, "Not Found")
    assert x.ki_change_reply_status(make_ctx(REPLY), 200, "OK") == -1     # 4xx -> 2xx refused
    assert x.ki_change_reply_status(make_ctx(INVITE), 404, "x") == -1     # not a reply


def test_change_reply_status_code():
    c = make_ctx(REPLY, route_type=RouteType.ONREPLY)
    assert x.ki_change_reply_status_code(c, 600) == 1
    m = reparsed(c)
    assert (m.status, m.reason) == (600, "Busy Here")


def test_remove_body(ctx):
    assert x.ki_remove_body(ctx) == 1
    m = reparsed(ctx)
    assert m.body == b"" and m.content_length == 0
    assert x.ki_remove_body(make_ctx(REPLY)) == -1


def test_keep_hf(ctx):
    assert x.ki_keep_hf(ctx) == 1
    names = [h.name for h in reparsed(ctx).headers]
    assert names == ["Via", "Max-Forwards", "To", "From", "Call-ID", "CSeq", "Contact",
                     "Content-Type", "Content-Length"]
    c2 = make_ctx(INVITE)
    assert x.ki_keep_hf_re(c2, re.compile("^user-", re.I)) == 1
    assert reparsed(c2).header("User-Agent") is not None
    assert reparsed(c2).header("Foo") is None


def test_fnmatch(ctx):
    assert x.ki_fnmatch(ctx, "alice@atlanta.com", "*@atlanta.*") == 1
    assert x.ki_fnmatch(ctx, "alice@atlanta.com", "bob*") == -1
    assert x.ki_fnmatch_flags(ctx, "ALICE", "al?ce", "i") == 1
    assert x.ki_fnmatch(ctx, "ALICE", "al?ce") == -1
    with pytest.raises(ValueError):
        x.parse_fn_flags("z")


def test_parse_hf_spec():
    s = spec("Foo[-1].x")
    assert (s.name, s.idx, s.param) == ("Foo", -1, "x")
    assert spec("Foo[*]").has_idx and spec("Foo[*]").idx is None
    for bad in ("Foo[0]", "Foo[", "[1]"):
        with pytest.raises(ValueError):
            spec(bad)


def test_append_hf_value(ctx):
    assert x.ki_append_hf_value(ctx, spec("Foo[1]"), "n") == 1
    assert foo_values(ctx) == ["a;x=1, n, b", "c"]
    c2 = make_ctx(INVITE)
    assert x.ki_append_hf_value(c2, spec("Foo[-1]"), "z") == 1
    assert foo_values(c2) == ["a;x=1, b", "c, z"]
    c3 = make_ctx(INVITE)
    assert x.ki_append_hf_value(c3, spec("Foo"), "new") == 1            # a new header
    assert foo_values(c3) == ["a;x=1, b", "c", "new"]
    assert x.ki_append_hf_value(c3, spec("Foo[9]"), "n") == -1


def test_insert_hf_value(ctx):
    assert x.ki_insert_hf_value(ctx, spec("Foo[2]"), "n") == 1
    assert foo_values(ctx) == ["a;x=1, n, b", "c"]
    c2 = make_ctx(INVITE)
    assert x.ki_insert_hf_value(c2, spec("Bar"), "v") == 1
    assert reparsed(c2).header("Bar").value == "v"


def test_remove_hf_value(ctx):
    assert x.ki_remove_hf_value(ctx, spec("Foo[2]")) == 1
    assert foo_values(ctx) == ["a;x=1", "c"]
    c2 = make_ctx(INVITE)
    assert x.ki_remove_hf_value(c2, spec("Foo[-1]")) == 1                # only value: header
    assert foo_values(c2) == ["a;x=1, b"]
    c3 = make_ctx(INVITE)
    assert x.ki_remove_hf_value(c3, spec("Foo[1].x")) == 1
    assert foo_values(c3) == ["a, b", "c"]
    c4 = make_ctx(INVITE)
    assert x.ki_remove_hf_value(c4, spec("Foo")) == 1
    assert foo_values(c4) == []
    assert x.ki_remove_hf_value(make_ctx(INVITE), spec("Nope")) == -1


def test_remove_hf_value2(ctx):
    assert x.ki_remove_hf_value2(ctx, spec("Foo[1]")) == 1
    assert foo_values(ctx) == ["c"]


def test_assign_hf_value(ctx):
    assert x.ki_assign_hf_value(ctx, spec("Foo[2]"), "B") == 1
    assert foo_values(ctx) == ["a;x=1, B", "c"]
    c2 = make_ctx(INVITE)
    assert x.ki_assign_hf_value(c2, spec("Foo[1].x"), "9") == 1
    assert x.ki_assign_hf_value(c2, spec("Foo[-1].y"), "2") == 1
    assert foo_values(c2) == ["a;x=9, b", "c;y=2"]
    c3 = make_ctx(INVITE)
    assert x.ki_assign_hf_value(c3, spec("Foo"), "only") == 1
    assert foo_values(c3) == ["only"]


def test_assign_hf_value2(ctx):
    assert x.ki_assign_hf_value2(ctx, spec("Foo[1]"), "whole") == 1
    assert foo_values(ctx) == ["whole", "c"]


def test_include_exclude_exists(ctx):
    assert x.ki_hf_value_exists(ctx, spec("Supported"), "100rel") == 1
    assert x.ki_hf_value_exists(ctx, spec("Supported"), "path") == -1
    assert x.ki_include_hf_value(ctx, spec("Supported"), "path") == 1
    assert x.ki_include_hf_value(ctx, spec("Supported"), "timer") == 1       # already there
    assert reparsed(ctx).header("Supported").value == "timer, 100rel, path"
    c2 = make_ctx(INVITE)
    assert x.ki_exclude_hf_value(c2, spec("Supported"), "timer") == 1
    assert reparsed(c2).header("Supported").value == "100rel"
    assert x.ki_exclude_hf_value(c2, spec("Supported"), "gruu") == -1
    c3 = make_ctx(INVITE)
    assert x.ki_exclude_hf_value(c3, spec("Foo"), "c") == 1
    assert foo_values(c3) == ["a;x=1, b"]


def test_hf_iterator(ctx):
    names = []
    assert x.ki_hf_iterator_start(ctx, "i1") == 1
    while True:
        names.append(x._get_hfitname(ctx, "i1"))
        if x.ki_hf_iterator_next(ctx, "i1") < 0:
            break
    assert names == [h.name for h in ctx.msg.headers]
    assert x._get_hfitname(ctx, "i1") is None                   # past the end
    assert x.ki_hf_iterator_prev(ctx, "i1") == 1
    assert x._get_hfitbody(ctx, "i1") == str(len("line one\r\nline two\r\n"))
    x.ki_hf_iterator_start(ctx, "i1")
    x.ki_hf_iterator_next(ctx, "i1")                            # Max-Forwards
    assert x.ki_hf_iterator_insert(ctx, "i1", "X-Before: 1") == 1
    assert x.ki_hf_iterator_append(ctx, "i1", "X-After: 1") == 1
    assert x.ki_hf_iterator_rm(ctx, "i1") == 1
    assert x.ki_hf_iterator_end(ctx, "i1") == 1
    assert [h.name for h in reparsed(ctx).headers][:4] == ["Via", "X-Before", "X-After", "To"]


def test_hf_iterator_limit(ctx):
    for i in range(4):
        assert x.ki_hf_iterator_start(ctx, f"it{i}") == 1
    assert x.ki_hf_iterator_start(ctx, "it4") == -1


def test_bl_iterator(ctx):
    lines = []
    assert x.ki_bl_iterator_start(ctx, "b") == 1
    while True:
        lines.append(x._get_blitval(ctx, "b"))
        if x.ki_bl_iterator_next(ctx, "b") < 0:
            break
    assert lines == ["line one\r\n", "line two\r\n"]
    x.ki_bl_iterator_start(ctx, "b")
    assert x.ki_bl_iterator_insert(ctx, "b", "zero\r\n") == 1
    assert x.ki_bl_iterator_rm(ctx, "b") == 1
    assert x.ki_bl_iterator_append(ctx, "b", "one and a half\r\n") == 1
    assert x.ki_bl_iterator_end(ctx, "b") == 1
    m = reparsed(ctx)
    assert m.body == b"zero\r\none and a half\r\nline two\r\n"
    assert m.content_length == len(m.body)


def test_pvs():
    c = make_ctx(INVITE)
    x.ki_hf_iterator_start(c, "h")
    pv = x.mod.pvs["hfitname"].factory("h")
    assert pv.get(c) == "Via"
    assert x.mod.pvs["hfitbody"].factory("h").get(c).startswith("SIP/2.0/UDP")
    x.ki_bl_iterator_start(c, "b")
    assert x.mod.pvs["blitval"].factory("b").get(c) == "line one\r\n"
    with pytest.raises(ValueError):
        x.mod.pvs["hfitname"].factory(None)


def test_hf_value_params_outside_the_uri():
    c = make_ctx(sip(HEAD + "\nRecord-Route: <sip:p1;lr>;lr=x, <sip:p2;lr>", "x"))
    assert x.ki_remove_hf_value(c, spec("Record-Route[1].lr")) == 1
    assert reparsed(c).header("Record-Route").value == "<sip:p1;lr>, <sip:p2;lr>"
    assert x.ki_remove_hf_value(c, spec("Record-Route[2].lr")) == -1
