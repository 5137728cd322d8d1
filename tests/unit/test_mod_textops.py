"""textops: every function on real SIP messages, through the ki_ implementations with the
arguments fixed up as the cfg compiler would (regexes compiled, subst expressions parsed)."""
from __future__ import annotations

import re

import pytest

import modules.textops as t
from sipcore.msg import parse_msg
from sipcore.pv import parse_format
from sipcore.testing import make_ctx

HEAD = """INVITE sip:bob@example.com;transport=udp SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: Bob <sip:bob@example.com>
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.com
CSeq: 314159 INVITE
Contact: <sip:alice@10.0.0.1:5060>
P-Asserted-Identity: <sip:alice@atlanta.com>
X-Foo: one
X-Foo: two
Privacy: id;header
Supported: timer, 100rel
Content-Type: application/sdp"""

SDP = """v=0
o=alice 2890844526 2890844526 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=audio 49170 RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""


def sip(head: str, body: str = "") -> str:
    """A wire message: CRLF line ends and the right Content-Length."""
    b = body.replace("\r\n", "\n").replace("\n", "\r\n")
    return (head.replace("\n", "\r\n") + f"\r\nContent-Length: {len(b.encode())}\r\n\r\n"
            + b)


INVITE = sip(HEAD, SDP)


def rx(p: str) -> "re.Pattern[str]":
    """What Fx.REGEX gives a function (REG_EXTENDED|REG_ICASE|REG_NEWLINE)."""
    return re.compile(p, re.I | re.M)


class Pv:
    """A writable PV stand-in ($var(x))."""

    def __init__(self) -> None:
        self.value = None

    def get(self, ctx):
        return self.value

    def set(self, ctx, v):
        self.value = v


@pytest.fixture
def ctx():
    return make_ctx(INVITE)


def built(ctx) -> str:
    return ctx.msg.build().decode()


def reparsed(ctx):
    return parse_msg(ctx.msg.build())


# ---- search ----------------------------------------------------------------------------------

def test_search(ctx):
    assert t.ki_search(ctx, rx("^CSeq: [0-9]+ INVITE")) == 1
    assert t.ki_search(ctx, rx("^INVITE sip:bob")) == 1        # first line included
    assert t.ki_search(ctx, rx("X-Bar")) == -1


def test_search_body(ctx):
    assert t.ki_search_body(ctx, rx("^m=audio 49170")) == 1
    assert t.ki_search_body(ctx, rx("Call-ID")) == -1
    no_body = make_ctx(sip(HEAD))
    assert t.ki_search_body(no_body, rx(".")) == -1


def test_search_str(ctx):
    assert t.ki_search_str(ctx, "abc123", "[0-9]+$") == 1
    assert t.ki_search_str(ctx, "abc", "^[0-9]") == -1
    assert t.ki_search_str(ctx, "abc", "([") == -1            # bad regex at run time


def test_search_hf(ctx):
    assert t.ki_search_hf(ctx, "X-Foo", rx("^two$"), "a") == 1
    assert t.ki_search_hf(ctx, "X-Foo", rx("^two$"), "f") == -1
    assert t.ki_search_hf(ctx, "X-Foo", rx("^two$"), "l") == 1
    assert t.ki_search_hf(ctx, "X-None", rx("."), "a") == -1


def test_search_append(ctx):
    assert t.ki_search_append(ctx, rx("tag=1928301774"), ";x=1") == 1
    assert reparsed(ctx).header("From").value.endswith("tag=1928301774;x=1")
    assert t.ki_search_append(ctx, rx("nothere"), "x") == -1


def test_search_append_body(ctx):
    assert t.ki_search_append_body(ctx, rx("^s=-"), "\r\ni=info") == 1
    m = reparsed(ctx)
    assert b"s=-\r\ni=info\r\n" in m.body
    assert m.content_length == len(m.body)


# ---- replace ---------------------------------------------------------------------------------

def test_replace_first_match_only(ctx):
    assert t.ki_replace(ctx, rx("X-Foo: [a-z]+"), "X-Foo: new") == 1
    m = reparsed(ctx)
    assert [h.value for h in m.header_all("X-Foo")] == ["new", "two"]
    assert m.ruri == "sip:bob@example.com;transport=udp"    # first line untouched


def test_replace_all(ctx):
    assert t.ki_replace_all(ctx, rx("10\\.0\\.0\\.1"), "192.0.2.9") == 1
    out = built(ctx)
    assert "10.0.0.1" not in out.split("\r\n", 1)[1]
    assert "c=IN IP4 192.0.2.9" in out
    assert t.ki_replace_all(ctx, rx("zzz"), "y") == -1


def test_replace_body(ctx):
    assert t.ki_replace_body(ctx, rx("PCMU"), "PCMA") == 1
    m = reparsed(ctx)
    assert b"a=rtpmap:0 PCMA/8000" in m.body
    assert t.ki_replace_body(ctx, rx("Call-ID"), "x") == -1


def test_replace_hdrs_leaves_body(ctx):
    assert t.ki_replace_hdrs(ctx, rx("10\\.0\\.0\\.1"), "h.example") == 1
    m = reparsed(ctx)
    assert m.via1.host == "h.example"
    assert b"IN IP4 10.0.0.1" in m.body


def test_replace_body_all_and_atonce(ctx):
    assert t.ki_replace_body_all(ctx, rx("^(c|o)=.*$"), "x=removed") == 1
    m = reparsed(ctx)
    assert m.body.count(b"x=removed") == 2
    c2 = make_ctx(INVITE)
    # at once: '.' crosses lines, '^' only at the start of the body
    assert t.ki_replace_body_atonce(c2, t.parse_regex_nl("^v=0.*s=-"), "v=0") == 1
    assert reparsed(c2).body.startswith(b"v=0\r\nc=IN")


def test_replace_str_modes(ctx):
    assert t.ki_replace_str(ctx, "X-Foo", "X-Bar", "f") == 1
    assert [h.name for h in reparsed(ctx).headers if h.name.startswith("X-")] == \
        ["X-Bar", "X-Foo"]
    c2 = make_ctx(INVITE)
    assert t.ki_replace_str(c2, "X-Foo", "X-Bar", "a") == 1
    assert len(reparsed(c2).header_all("X-Bar")) == 2
    assert t.ki_replace_str(c2, "nothere", "y", "a") == -1
    assert t.ki_replace_str(c2, "X", "y", "q") == -1


def test_replace_body_str_and_hdrs_str(ctx):
    assert t.ki_replace_body_str(ctx, "49170", "5000", "a") == 1
    assert t.ki_replace_hdrs_str(ctx, "pc33.atlanta.com", "host", "f") == 1
    m = reparsed(ctx)
    assert b"m=audio 5000 " in m.body
    assert m.callid == "a84b4c76e66710@host"


# ---- subst -----------------------------------------------------------------------------------

def test_parse_subst_errors():
    for bad in ("/abc/", "/a(/b/", "/a/b/z", "ab"):
        with pytest.raises(ValueError):
            t.parse_subst(bad)
    with pytest.raises(ValueError):
        t.parse_subst(r"/a/\2/")          # group that does not exist


def test_subst_backrefs_and_pv(ctx):
    se = t.parse_subst(r"/^To: (.*)<sip:([a-z]+)@/To: \1<sip:\2-$ci@/")
    assert t.ki_subst(ctx, se) == 1
    assert reparsed(ctx).to.uri == "sip:bob-a84b4c76e66710@pc33.atlanta.com@example.com"


def test_subst_global_and_icase(ctx):
    assert t.ki_subst(ctx, t.parse_subst("/x-foo: (one|two)/X-Foo: n/gi")) == 1
    assert [h.value for h in reparsed(ctx).header_all("X-Foo")] == ["n", "n"]
    c2 = make_ctx(INVITE)
    assert t.ki_subst(c2, t.parse_subst("/x-foo: (one|two)/X-Foo: n/")) == -1  # case-sensitive


def test_subst_does_not_touch_first_line(ctx):
    assert t.ki_subst(ctx, t.parse_subst("/INVITE/FOO/g")) == 1
    m = reparsed(ctx)
    assert m.method == "INVITE" and m.cseq.method == "FOO"


def test_subst_uri(ctx):
    assert t.ki_subst_uri(ctx, t.parse_subst("/^sip:([a-z]+)@example.com(.*)$/sip:\\1@ex.net/")) \
        == 1
    assert ctx.msg.ruri == "sip:bob@ex.net"
    assert built(ctx).startswith("INVITE sip:bob@ex.net SIP/2.0\r\n")
    assert t.ki_subst_uri(ctx, t.parse_subst("/nomatch/x/")) == -1


def test_subst_user(ctx):
    assert t.ki_subst_user(ctx, t.parse_subst("/^bob$/+49123/")) == 1
    assert ctx.msg.ruri == "sip:+49123@example.com;transport=udp"
    assert t.ki_subst_user(ctx, t.parse_subst("/^alice$/x/")) == -1


def test_subst_body(ctx):
    assert t.ki_subst_body(ctx, t.parse_subst("/^a=rtpmap:[0-9]+ [A-Z]+.8000/a=sendonly/")) == 1
    m = reparsed(ctx)
    assert m.body.endswith(b"a=sendonly\r\n") and m.content_length == len(m.body)


def test_subst_hf(ctx):
    assert t.ki_subst_hf(ctx, "X-Foo", t.parse_subst("/^(.*)$/<\\1>/"), "l") == 1
    assert [h.value for h in reparsed(ctx).header_all("X-Foo")] == ["one", "<two>"]
    assert t.ki_subst_hf(ctx, "X-None", t.parse_subst("/a/b/"), "a") == -1


# ---- bodies ----------------------------------------------------------------------------------

def test_set_body(ctx):
    assert t.ki_set_body(ctx, "hello", "text/plain") == 1
    m = reparsed(ctx)
    assert m.body == b"hello" and m.content_length == 5
    assert m.header("Content-Type").value == "text/plain"
    assert t.ki_set_body(ctx, "", "text/plain") == -1


def test_set_reply_body(ctx):
    assert t.ki_set_reply_body(ctx, "oops", "text/plain") == 1
    assert ctx.reply_body == (b"oops", "text/plain")
    assert t.ki_set_reply_body(ctx, "x", "") == -1


MULTI = HEAD.replace("Content-Type: application/sdp",
                     'Content-Type: multipart/mixed;boundary="b1"')


def multipart_ctx():
    body = ("--b1\r\nContent-Type: text/plain\r\n\r\nhi there\r\n"
            "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n"
            "o=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
            "m=audio 1 RTP/AVP 0\r\n\r\n--b1--\r\n")
    return make_ctx(sip(MULTI, body))


def test_filter_body():
    c = multipart_ctx()
    assert t.ki_filter_body(c, "application/sdp") == 1
    m = reparsed(c)
    assert m.body.startswith(b"v=0\r\n")
    assert m.header("Content-Type").value == "application/sdp"
    assert t.ki_filter_body(multipart_ctx(), "image/png") == -1
    assert t.ki_filter_body(make_ctx(INVITE), "application/sdp") == -1   # not multipart


def test_has_body(ctx):
    assert t.ki_has_body(ctx) == 1
    assert t.ki_has_body_type(ctx, "application/sdp") == 1
    assert t.ki_has_body_type(ctx, "text/plain") == -1
    assert t.ki_has_body_type(multipart_ctx(), "text/plain") == 1
    empty = make_ctx("OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:a@b>"
                     ";tag=1\nTo: <sip:x>\nCall-ID: 1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n")
    assert t.ki_has_body(empty) == -1


def test_is_audio_on_hold(ctx):
    assert t.ki_is_audio_on_hold(ctx) == -1
    assert t.ki_is_audio_on_hold(multipart_ctx()) == 1
    c = make_ctx(sip(HEAD, SDP.replace("a=rtpmap:0 PCMU/8000", "a=sendonly")))
    assert t.ki_is_audio_on_hold(c) == 2
    # session-level direction holds every stream; a video stream on hold is not audio
    c = make_ctx(sip(HEAD, SDP.replace("t=0 0", "t=0 0\na=inactive")))
    assert t.ki_is_audio_on_hold(c) == 2
    c = make_ctx(sip(HEAD, SDP.replace("m=audio", "m=video").replace(
        "a=rtpmap:0 PCMU/8000", "a=sendonly")))
    assert t.ki_is_audio_on_hold(c) == -1
    # an SDP Kamailio's parser refuses (no o= line) is not on hold
    assert t.ki_is_audio_on_hold(make_ctx(sip(HEAD, SDP.replace(
        "o=alice 2890844526 2890844526 IN IP4 10.0.0.1\n", "").replace(
        "a=rtpmap:0 PCMU/8000", "a=sendonly")))) == -1


def test_multipart_build_get_remove(ctx):
    assert t.ki_append_body_part(ctx, "hello", "text/plain") == 1
    m = reparsed(ctx)
    assert m.header("Content-Type").value.startswith("multipart/mixed;boundary=")
    v = Pv()
    assert t.ki_get_body_part(ctx, "text/plain", v) == 1 and v.value == "hello"
    assert t.ki_get_body_part(ctx, "application/sdp", v) == 1 and v.value.startswith("v=0")
    assert t.ki_get_body_part_raw(ctx, "text/plain", v) == 1
    assert v.value == "Content-Type: text/plain\r\n\r\nhello"
    assert t.ki_remove_body_part(ctx, "text/plain") == 1
    assert t.ki_get_body_part(ctx, "text/plain", v) == -1
    assert t.ki_remove_body_part(ctx, "text/plain") == -1


def test_set_body_multipart_variants():
    c = make_ctx(INVITE)
    assert t.ki_set_body_multipart_full(c, "txt", "text/plain", "bnd") == 1
    m = reparsed(c)
    assert m.header("Content-Type").value == 'multipart/mixed;boundary="bnd"'
    assert m.body.startswith(b"--bnd\r\nContent-Type: application/sdp\r\n\r\nv=0")
    assert m.body.endswith(b"--bnd\r\nContent-Type: text/plain\r\n\r\ntxt\r\n--bnd--\r\n")
    c2 = make_ctx(INVITE)
    assert t.ki_set_body_multipart(c2) == 1
    assert b"--unique-boundary-1\r\n" in reparsed(c2).body
    c3 = make_ctx(INVITE)
    assert t.ki_set_body_multipart_boundary(c3, "zz") == 1
    assert t.ki_set_body_multipart_txt(c3, "a", "text/plain") == 1
    assert reparsed(c3).body.count(b"--zz\r\n") == 2


def test_append_body_part_hex_and_disposition(ctx):
    assert t.ki_append_body_part_hex_disp(ctx, "68 69", "text/plain", "render") == 1
    assert b"Content-Disposition: render\r\n\r\nhi\r\n" in reparsed(ctx).body
    assert t.ki_append_body_part_hex(ctx, "zz", "text/plain") == -1
    assert t.ki_append_body_part_disp(ctx, "x", "text/x", "session") == 1


# ---- headers ---------------------------------------------------------------------------------

def test_append_to_reply(ctx):
    assert t.ki_append_to_reply(ctx, "X-A: 1\r\nX-B: 2\r\n") == 1
    assert ctx.reply_lumps == ["X-A: 1", "X-B: 2"]
    assert t.ki_append_to_reply(ctx, "\r\n") == -1


def test_append_hf(ctx):
    assert t.ki_append_hf(ctx, "X-Last: 1\r\n") == 1
    names = [h.name for h in reparsed(ctx).headers]
    assert names[-1] == "X-Last"


def test_append_hf_after(ctx):
    assert t.ki_append_hf_after(ctx, "X-After: 1", "X-Foo") == 1
    names = [h.name for h in reparsed(ctx).headers]
    assert names[names.index("X-After") - 1] == "X-Foo"
    assert names.index("X-After") == max(i for i, n in enumerate(names) if n == "X-Foo") + 1
    assert t.ki_append_hf_after(ctx, "X-After: 1", "X-None") == -1


def test_insert_hf(ctx):
    assert t.ki_insert_hf(ctx, "X-First: 1") == 1
    assert reparsed(ctx).headers[0].name == "X-First"
    assert t.ki_insert_hf_before(ctx, "X-Before: 1", "Call-ID") == 1
    names = [h.name for h in reparsed(ctx).headers]
    assert names[names.index("Call-ID") - 1] == "X-Before"
    assert t.ki_insert_hf_before(ctx, "X: 1", "X-None") == -1


def test_append_urihf(ctx):
    assert t.ki_append_urihf(ctx, "X-Orig: <", ">") == 1
    assert reparsed(ctx).header("X-Orig").value == "<sip:bob@example.com;transport=udp>"


def test_is_present_hf(ctx):
    assert t.ki_is_present_hf(ctx, "call-id") == 1
    assert t.ki_is_present_hf(ctx, "i") == 1                  # compact form of Call-ID
    assert t.ki_is_present_hf(ctx, "X-None") == -1
    assert t.ki_is_present_hf_pv(ctx, "X-Foo") == 1
    assert t.ki_is_present_hf_re(ctx, rx("^p-asserted")) == 1
    assert t.ki_is_present_hf_re(ctx, rx("^x-bar$")) == -1
    assert t.ki_is_present_hf_re_pv(ctx, "^X-F") == 1


def test_append_time(ctx):
    assert t.ki_append_time(ctx) == 1
    assert re.match(r"^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$", ctx.reply_lumps[0])
    assert t.ki_append_time_to_request(ctx) == 1
    assert reparsed(ctx).header("Date").value.endswith("GMT")


def test_is_method(ctx):
    assert t.ki_is_method(ctx, t.parse_method_list("INVITE")) == 1
    assert t.ki_is_method(ctx, t.parse_method_list("BYE|invite")) == 1
    assert t.ki_is_method(ctx, t.parse_method_list("BYE|CANCEL")) == -1
    reply = make_ctx("SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\n"
                     "To: <sip:c@d>;tag=2\nCall-ID: x\nCSeq: 2 BYE\nContent-Length: 0\n\n")
    assert t.ki_is_method(reply, t.parse_method_list("BYE")) == 1
    with pytest.raises(ValueError):
        t.parse_method_list("INVITE||BYE")


def test_remove_hf(ctx):
    assert t.ki_remove_hf(ctx, "X-Foo") == 2
    assert reparsed(ctx).header("X-Foo") is None
    assert t.ki_remove_hf(make_ctx(INVITE), "X-None") == -1
    assert t.ki_remove_hf_pv(make_ctx(INVITE), "P-Asserted-Identity") == 1


def test_remove_hf_re_and_exp(ctx):
    assert t.ki_remove_hf_re(ctx, rx("^(x|p)-")) == 3
    assert [h.name for h in reparsed(ctx).headers if h.name[:2] in ("X-", "P-")] == []
    c2 = make_ctx(INVITE)
    assert t.ki_remove_hf_exp(c2, rx("^(x|p)-"), rx("^p-")) == 2
    assert reparsed(c2).header("P-Asserted-Identity") is not None
    c3 = make_ctx(INVITE)
    assert t.ki_remove_hf_re_pv(c3, "^privacy$") == 1
    assert t.ki_remove_hf_exp_pv(c3, "^X-", "none") == 2


def test_remove_hf_idx(ctx):
    assert t.ki_remove_hf_idx(ctx, "X-Foo", -1) == 1
    assert [h.value for h in reparsed(ctx).header_all("X-Foo")] == ["one"]
    assert t.ki_remove_hf_idx(ctx, "X-Foo", 5) == -1


def test_remove_hf_match(ctx):
    assert t.ki_remove_hf_match(ctx, "X-Foo", "eq", "two") == 1
    assert [h.value for h in reparsed(ctx).header_all("X-Foo")] == ["one"]
    c2 = make_ctx(INVITE)
    assert t.ki_remove_hf_match(c2, "X-Foo", "ne", "two") == 1
    assert t.ki_remove_hf_match(c2, "X-Foo", "in", "zzz") == -1
    assert t.ki_remove_hf_match(make_ctx(INVITE), "X-Foo", "re", "^t") == 1
    with pytest.raises(ValueError):
        t.parse_match_op("like")


def test_is_privacy(ctx):
    assert t.ki_is_privacy(ctx, "id") == 1
    assert t.ki_is_privacy(ctx, t.parse_privacy("Header")) == 1
    assert t.ki_is_privacy(ctx, "user") == -1
    with pytest.raises(ValueError):
        t.parse_privacy("bogus")


# ---- string tests ----------------------------------------------------------------------------

def test_in_list(ctx):
    assert t.ki_in_list(ctx, "b", "a, b ,c", ",") == 1
    assert t.ki_in_list(ctx, "d", "a,b,c", ",") == -1
    assert t.ki_in_list_prefix(ctx, "+4912345", "+43;+49", ";") == 1
    assert t.ki_in_list_prefix(ctx, "+3312345", "+43;+49", ";") == -1
    with pytest.raises(ValueError):
        t.parse_sep(",;")


def test_string_compares(ctx):
    assert t.ki_cmp_str(ctx, "abc", "abc") == 1
    assert t.ki_cmp_str(ctx, "abc", "ABC") == -1
    assert t.ki_cmp_istr(ctx, "abc", "ABC") == 1
    assert t.ki_starts_with(ctx, "sip:alice", "sip:") == 1
    assert t.ki_starts_with(ctx, "tel:1", "sip:") == -1
    assert t.ki_ends_with(ctx, "alice@example.com", ".com") == 1
    assert t.ki_ends_with(ctx, "alice@example.com", ".net") == -1
    assert t.ki_str_find(ctx, "abcabc", "ca") == 3
    assert t.ki_str_find(ctx, "abc", "x") == -1
    assert t.ki_str_ifind(ctx, "ABC", "b") == 2


def test_regex_substring(ctx):
    v = Pv()
    assert t.ki_regex_substring(ctx, "sip:alice@atlanta.com", "sip:([a-z]+)@(.*)", 2, 1, v) == 1
    assert v.value == "atlanta.com"
    assert t.ki_regex_substring(ctx, "tel:1", "sip:(.*)", 1, 1, v) == -1
    assert t.ki_regex_substring(ctx, "sip:a@b", "sip:(.*)", 3, 1, v) == -1


def test_pv_format_in_subst_replacement(ctx):
    # as with POSIX REG_NEWLINE, '$' matches before LF only, so a CRLF line needs '\r'
    se = t.parse_subst("/^X-Foo: one\r$/X-Foo: $fU\\r/")
    assert any(isinstance(p, type(se.pieces[0])) for p in se.pieces)
    assert t.ki_subst(ctx, se) == 1
    assert reparsed(ctx).header("X-Foo").value == parse_format("$fU").eval(ctx)


def test_export_table_shape():
    f = t.mod.functions
    assert {len(o.args) for o in f["append_hf"]} == {1, 2}
    assert {len(o.args) for o in f["has_body"]} == {0, 1}
    assert {len(o.args) for o in f["set_body_multipart"]} == {0, 1, 2, 3}
    for name in ("search", "search_body", "search_append", "replace", "replace_all",
                 "replace_body", "replace_body_all", "replace_body_atonce", "subst", "subst_uri",
                 "subst_user", "subst_body", "subst_hf", "insert_hf", "append_urihf",
                 "is_present_hf", "is_present_hf_re", "append_to_reply", "append_time",
                 "remove_hf", "remove_hf_re", "remove_hf_exp", "remove_hf_idx",
                 "remove_hf_match", "is_method", "set_body", "set_reply_body", "filter_body",
                 "starts_with", "cmp_str", "cmp_istr", "is_privacy", "in_list",
                 "in_list_prefix", "is_audio_on_hold", "regex_substring", "get_body_part",
                 "get_body_part_raw", "remove_body_part", "append_body_part",
                 "append_body_part_hex", "str_find", "str_ifind", "ends_with", "search_hf",
                 "search_str", "replace_str", "replace_body_str", "replace_hdrs_str",
                 "replace_hdrs", "append_time_to_request", "is_present_hf_pv",
                 "remove_hf_pv", "remove_hf_re_pv", "remove_hf_exp_pv", "is_present_hf_re_pv",
                 "search_append_body"):
        assert name in f, name


# ---- through the cfg compiler ---------------------------------------------------------------

CFG = r"""
loadmodule "textops"
loadmodule "textopsx"
request_route {
    if (!is_method("INVITE|BYE")) { exit; }
    if (search("^X-Foo: (one|two)")) { append_hf("X-Seen: yes\r\n"); }
    subst('/^X-Foo: one/X-Foo: $rU/');
    remove_hf("P-Asserted-Identity");
    msg_apply_changes();
    if (is_present_hf("X-Seen") && has_body("application/sdp")) {
        replace_body_all("PCMU", "PCMA");
        append_to_reply("X-Why: test\r\n");
    }
    exit;
}
"""


def test_textops_from_cfg():
    from sipcore.testing import Harness

    h = Harness.from_text(CFG)
    r = h.request(INVITE)
    m = parse_msg(r.ctx.msg.build())
    assert m.header("X-Seen").value == "yes"
    assert [x.value for x in m.header_all("X-Foo")] == ["bob", "two"]
    assert m.header("P-Asserted-Identity") is None
    assert b"a=rtpmap:0 PCMA/8000" in m.body
    assert r.ctx.reply_lumps == ["X-Why: test"]


def test_cfg_errors_are_located():
    from sipcore.errors import ConfigErrors
    from sipcore.testing import Harness

    for bad, msg in (('is_method("INVITE||BYE");', "invalid method list"),
                     ("subst('/a(/b/');", "bad regex"),
                     ('is_privacy("nobody");', "bad privacy type"),
                     ('in_list("a", "a,b", ",;");', "separator")):
        with pytest.raises(ConfigErrors) as ei:
            Harness.from_text('loadmodule "textops"\nrequest_route {\n' + bad + '\n}\n')
        assert "<test>:3:" in str(ei.value) and msg in str(ei.value)


def test_bad_script_text_is_refused_not_raised(ctx):
    assert t.ki_append_hf(ctx, "no colon here") == -1
    assert t.ki_insert_hf(ctx, "still none") == -1
    assert t.ki_subst_uri(ctx, t.parse_subst("/bob/b o b/")) == -1    # would break the line
    assert ctx.msg.ruri == "sip:bob@example.com;transport=udp"
