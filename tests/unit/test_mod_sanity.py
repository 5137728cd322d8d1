"""sanity_check() on good and broken requests: replies sent, return codes, autodrop, noreply."""
from __future__ import annotations

import pytest

import modules.sanity as sn
from sipcore.msg import parse_msg
from sipcore.testing import make_ctx


def sip(head: str, body: str = "", cl: int | None = None) -> str:
    b = body.replace("\r\n", "\n").replace("\n", "\r\n")
    n = len(b.encode()) if cl is None else cl
    return head.replace("\n", "\r\n") + f"\r\nContent-Length: {n}\r\n\r\n" + b


GOOD = """INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: <sip:bob@example.com>
From: <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@10.0.0.1>"""


@pytest.fixture(autouse=True)
def _params():
    sn.mod.reset_params()
    yield
    sn.mod.reset_params()


def replies(ctx) -> list[tuple[int, str]]:
    out = []
    for _dest, data in ctx.core.sent:
        m = parse_msg(data)
        out.append((m.status, m.reason))
    return out


def check(head: str, *args: int, body: str = ""):
    ctx = make_ctx(sip(head, body))
    if len(args) == 0:
        rc = sn.ki_sanity_check(ctx)
    elif len(args) == 1:
        rc = sn.ki_sanity_check_msg(ctx, args[0])
    else:
        rc = sn.ki_sanity_check_msg_uri(ctx, args[0], args[1])
    return rc, ctx


def test_good_request_passes_all_checks():
    rc, ctx = check(GOOD, sn.MAX_CHECKS - 1, 15)
    assert rc == 1 and ctx.core.sent == []


def test_defaults():
    assert sn.mod.params["default_checks"].default == 3047 == sn.DEFAULT_CHECKS
    assert sn.mod.params["uri_checks"].default == 7
    assert sn.mod.params["autodrop"].default == 1
    assert sn.mod.params["noreply"].default == 0


class _Line:
    """The parser already refuses other SIP versions; the check is tested on its own."""

    version = "SIP/3.0"


def test_ruri_version_505():
    with pytest.raises(sn._Failed) as ei:
        sn.check_ruri_sip_version(_Line())
    assert (ei.value.code, ei.value.reason) == (505, "Version Not Supported (R-URI)")
    assert check(GOOD, sn.RURI_SIP_VERSION)[0] == 1


def test_ruri_scheme_416():
    rc, ctx = check(GOOD.replace("sip:bob@example.com SIP", "http://example.com SIP"),
                    sn.RURI_SCHEME)
    assert rc == 0
    assert replies(ctx) == [(416, "Unsupported URI Scheme in Request URI")]


def test_missing_required_header_fails_without_reply():
    rc, ctx = check(GOOD.replace("Call-ID: a84b4c76e66710\n", ""), sn.REQUIRED_HEADERS)
    assert rc == 0 and ctx.core.sent == []


def test_duplicate_from_400():
    rc, ctx = check(GOOD + "\nFrom: <sip:eve@evil.com>;tag=2", sn.REQUIRED_HEADERS)
    assert rc == 0 and replies(ctx) == [(400, "Duplicate From Header")]


def test_cseq_method_400():
    rc, ctx = check(GOOD.replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE"), sn.CSEQ_METHOD)
    assert rc == 0
    assert replies(ctx) == [(400, "CSeq method does not match request method")]


def test_cseq_value_400():
    rc, ctx = check(GOOD.replace("CSeq: 314159 INVITE", "CSeq: 4294967296 INVITE"),
                    sn.CSEQ_VALUE)
    assert rc == 0
    # the 400 is sent when a reply can be built for such a request
    assert replies(ctx) in ([], [(400, "CSeq number is illegal")])
    assert sn.valid_uint("4294967295") and not sn.valid_uint("4294967296")
    assert not sn.valid_uint("12a") and not sn.valid_uint("")


def test_expires_400():
    rc, ctx = check(GOOD + "\nExpires: soon", sn.EXPIRES_VALUE)
    assert rc == 0 and replies(ctx) == [(400, "Expires value is illegal")]
    rc, _ = check(GOOD + "\nExpires: 3600", sn.EXPIRES_VALUE)
    assert rc == 1


def test_content_length_matches():
    rc, _ = check(GOOD, sn.CL, body="hello")
    assert rc == 1


def test_proxy_require_420_with_unsupported():
    rc, ctx = check(GOOD + "\nProxy-Require: foo, bar", sn.PROXY_REQUIRE)
    assert rc == 0
    (dest, data), = ctx.core.sent
    rpl = parse_msg(data)
    assert (rpl.status, rpl.reason) == (420, "Bad Extension")
    assert rpl.header("Unsupported").value == "foo"
    sn.mod.set_param("proxy_require", "foo, bar")
    rc, ctx = check(GOOD + "\nProxy-Require: foo, bar", sn.PROXY_REQUIRE)
    assert rc == 1 and ctx.core.sent == []


def test_parse_uris():
    rc, ctx = check(GOOD.replace("From: <sip:alice@atlanta.com>", "From: <sip:@>"),
                    sn.PARSE_URIS, sn.URI_FROM)
    assert rc == 0 and replies(ctx)[0][0] == 400
    rc, ctx = check(GOOD.replace("Contact: <sip:alice@10.0.0.1>", "Contact: <sip:a@[::1>"),
                    sn.PARSE_URIS, sn.URI_CONTACT)
    assert rc == 0 and replies(ctx)[0][0] == 400
    rc, _ = check(GOOD, sn.PARSE_URIS, 15)
    assert rc == 1


AUTH = ('\nAuthorization: Digest username="alice", realm="atlanta.com", nonce="abc", '
        'uri="sip:bob@example.com", response="0123456789abcdef0123456789abcdef"')


def test_digest_checks():
    assert check(GOOD + AUTH, sn.CHECK_DIGEST)[0] == 1
    rc, ctx = check(GOOD + AUTH.replace('nonce="abc", ', ""), sn.CHECK_DIGEST)
    assert rc == 0 and ctx.core.sent == []                # malformed credentials: no reply
    basic = GOOD + "\nAuthorization: Basic YWxpY2U6c2VjcmV0"
    assert check(basic, sn.CHECK_DIGEST)[0] == 0          # non-digest: digest check fails
    assert check(basic, sn.CHECK_AUTHORIZATION)[0] == 1   # ... authorization check passes


def test_duplicate_tags():
    rc, ctx = check(GOOD.replace(";tag=1928301774", ";tag=1;tag=2"), sn.CHECK_DUPTAGS)
    assert rc == 0 and ctx.core.sent == []
    assert check(GOOD, sn.CHECK_DUPTAGS)[0] == 1


def test_first_via():
    assert check(GOOD, sn.VIA1_HEADER)[0] == 1


def test_autodrop_off_returns_minus_one():
    sn.mod.set_param("autodrop", 0)
    rc, ctx = check(GOOD.replace("CSeq: 314159 INVITE", "CSeq: 1 BYE"))
    assert rc == -1 and replies(ctx) == [(400, "CSeq method does not match request method")]


def test_noreply_and_sanity_reply():
    sn.mod.set_param("noreply", 1)
    rc, ctx = check(GOOD + "\nExpires: x")
    assert rc == 0 and ctx.core.sent == []
    assert sn.ki_sanity_reply(ctx) == 1
    assert replies(ctx) == [(400, "Expires value is illegal")]


def test_sanity_reply_without_pending_sends_500():
    sn.mod.set_param("noreply", 1)
    ctx = make_ctx(sip(GOOD))
    assert sn.ki_sanity_reply(ctx) == 1
    assert replies(ctx) == [(500, "Server Sanity Failure")]


def test_no_reply_to_ack():
    rc, ctx = check(GOOD.replace("INVITE", "ACK").replace("CSeq: 314159 ACK",
                                                         "CSeq: 314159 INVITE"), sn.CSEQ_METHOD)
    assert rc == 0 and ctx.core.sent == []


def test_invalid_check_masks():
    ctx = make_ctx(sip(GOOD))
    assert sn.ki_sanity_check_msg(ctx, 0) == -1
    assert sn.ki_sanity_check_msg(ctx, sn.MAX_CHECKS) == -1
    assert sn.ki_sanity_check_msg_uri(ctx, 1, 16) == -1
    with pytest.raises(ValueError):
        sn.mod.set_param("default_checks", 40000)


def test_api():
    ctx = make_ctx(sip(GOOD))
    assert sn.mod.api.check_defaults(ctx) == 1
    assert sn.mod.api.check(make_ctx(sip(GOOD + "\nExpires: x")), sn.EXPIRES_VALUE, 1) == 0


def test_exports():
    assert sorted(len(f.args) for f in sn.mod.functions["sanity_check"]) == [0, 1, 2]
    assert [len(f.args) for f in sn.mod.functions["sanity_reply"]] == [0]


CFG = """
loadmodule "sl"
loadmodule "sanity"
modparam("sanity", "autodrop", %d)
request_route {
    if (!sanity_check("2047", "7")) {
        sl_send_reply("599", "sanity failed");
        exit;
    }
    sl_send_reply("200", "fine");
}
"""


def test_sanity_from_cfg_autodrop_stops_script():
    from sipcore.testing import Harness

    h = Harness.from_text(CFG % 1)
    r = h.request(sip(GOOD + "\nProxy-Require: foo"))
    assert [(m.status, m.reason) for m in r.replies] == [(420, "Bad Extension")]
    r = h.request(sip(GOOD))
    assert [m.status for m in r.replies] == [200]


def test_sanity_from_cfg_without_autodrop():
    from sipcore.testing import Harness

    h = Harness.from_text(CFG % 0)
    r = h.request(sip(GOOD + "\nProxy-Require: foo"))
    assert [m.status for m in r.replies] == [420, 599]


def test_replies_go_through_sl_after_mod_init():
    from modules.sl import sl_stats
    from sipcore import stats
    from sipcore.testing import Harness

    h = Harness.from_text(CFG % 1)
    for m in h.cfg.modules:
        for hook in m.init_hooks:
            hook(m.context)
    try:
        before = stats.get("sl:4xx_replies")
        r = h.request(sip(GOOD + "\nProxy-Require: foo"))
        rpl, = r.replies
        assert (rpl.status, rpl.header("Unsupported").value) == (420, "foo")
        assert stats.get("sl:4xx_replies") == before + 1           # counted by sl
        assert sl_stats.bucket(420) == "4xx_replies"
    finally:
        sn._sl = None


def test_sanity_needs_sl():
    from sipcore.errors import ConfigErrors
    from sipcore.testing import Harness

    with pytest.raises(ConfigErrors) as ei:
        Harness.from_text('loadmodule "sanity"\nrequest_route {\n sanity_check();\n}\n')
    assert "sl" in str(ei.value)
