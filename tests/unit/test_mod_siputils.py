"""siputils on real SIP messages."""
from __future__ import annotations

import base64
from email.utils import formatdate

import pytest

import modules.siputils as su
from sipcore.msg import parse_msg
from sipcore.net.addr import SocketInfo
from sipcore.testing import RecordingCore, make_ctx


def sip(head: str, body: str = "") -> str:
    b = body.replace("\r\n", "\n").replace("\n", "\r\n")
    return head.replace("\n", "\r\n") + f"\r\nContent-Length: {len(b.encode())}\r\n\r\n" + b


def request(method: str = "INVITE", ruri: str = "sip:bob@example.com;transport=udp;lr",
            extra: str = "", to_tag: str = "") -> str:
    return sip(f"""{method} {ruri} SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: <sip:bob@example.com>{to_tag}
From: <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 1 {method}
Contact: <sip:alice@10.0.0.1:5070;transport=tcp>, <sip:alice@10.0.0.2>{extra}""")


class Pv:
    def __init__(self, value=None) -> None:
        self.value = value

    def get(self, ctx):
        return self.value

    def set(self, ctx, v):
        self.value = v


@pytest.fixture(autouse=True)
def _params():
    su.mod.reset_params()
    yield
    su.mod.reset_params()


def reparsed(ctx):
    return parse_msg(ctx.msg.build())


# ---- OPTIONS ---------------------------------------------------------------------------------

def test_options_reply_sends_200_with_capabilities():
    su.mod.set_param("options_support", "path, gruu")
    ctx = make_ctx(request("OPTIONS", "sip:example.com"))
    assert su.ki_options_reply(ctx) == 1
    (dest, data), = ctx.core.sent
    rpl = parse_msg(data)
    assert (rpl.status, rpl.reason) == (200, "OK")
    assert rpl.header("Allow").value == su.ALLOW_LIST
    assert rpl.header("Accept").value == "*/*"
    assert rpl.header("Accept-Language").value == "en"
    assert rpl.header("Supported").value == "path, gruu"
    assert (dest.ip, dest.port) == ("127.0.0.1", 5080)


def test_options_reply_not_applicable():
    assert su.ki_options_reply(make_ctx(request("INVITE", "sip:example.com"))) == -1
    assert su.ki_options_reply(make_ctx(request("OPTIONS", "sip:bob@example.com"))) == -1


# ---- identity, dialog, R-URI params -----------------------------------------------------------

def test_is_user():
    auth = ('\nAuthorization: Digest username="alice", realm="atlanta.com", nonce="n", '
            'uri="sip:bob@example.com", response="0123456789abcdef0123456789abcdef"')
    ctx = make_ctx(request(extra=auth))
    assert su.ki_is_user(ctx, "alice") == 1
    assert su.ki_is_user(ctx, "bob") == -1
    assert su.ki_is_user(make_ctx(request()), "alice") == -1


def test_has_totag():
    assert su.ki_has_totag(make_ctx(request())) == -1
    assert su.ki_has_totag(make_ctx(request(to_tag=";tag=abc"))) == 1


def test_uri_param_family():
    ctx = make_ctx(request())
    assert su.ki_uri_param(ctx, "lr") == 1
    assert su.ki_uri_param(ctx, "transport") == -1           # has a value
    assert su.ki_uri_param_value(ctx, "transport", "udp") == 1
    assert su.ki_uri_param_value(ctx, "transport", "tcp") == -1
    assert su.ki_uri_param_any(ctx, "transport") == 1
    assert su.ki_uri_param_any(ctx, "maddr") == -1
    v = Pv()
    assert su.ki_get_uri_param(ctx, "transport", v) == 1 and v.value == "udp"
    assert su.ki_get_uri_param(ctx, "maddr", v) == -1


def test_add_uri_param_and_rm():
    ctx = make_ctx(request())
    assert su.ki_add_uri_param(ctx, "nat=yes") == 1
    assert ctx.msg.ruri == "sip:bob@example.com;transport=udp;lr;nat=yes"
    assert su.ki_uri_param_rm(ctx, "transport") == 1
    assert su.ki_uri_param_rm(ctx, "transport") == -1
    assert reparsed(ctx).ruri == "sip:bob@example.com;lr;nat=yes"


# ---- numbers and URIs ------------------------------------------------------------------------

def test_tel2sip():
    ctx = make_ctx(request())
    v = Pv()
    assert su.ki_tel2sip(ctx, "tel:+1-201-555-0123;Phone-Context=x.com", "example.com", v) == 1
    assert v.value == "sip:+12015550123;phone-context=x.com@example.com;user=phone"
    assert su.ki_tel2sip(ctx, "sip:bob@example.com", "example.com", v) == 2
    assert su.ki_tel2sip(ctx, "tel:+1", "", v) == -1


def test_is_e164_and_uri_user():
    ctx = make_ctx(request())
    assert su.ki_is_e164(ctx, "+4912345678") == 1
    assert su.ki_is_e164(ctx, "4912345678") == -1
    assert su.ki_is_e164(ctx, "+1") == -1
    assert su.ki_is_e164(ctx, "+1234567890123456") == -1
    assert su.ki_is_uri_user_e164(ctx, "sip:+4912345@example.com") == 1
    assert su.ki_is_uri_user_e164(ctx, "sip:alice@example.com") == -1
    assert su.ki_is_uri_user_e164(ctx, "nonsense") == -2
    assert su.ki_is_uri(ctx, "sip:alice@example.com") == 1
    assert su.ki_is_uri(ctx, "alice") == -1


def test_character_classes():
    ctx = make_ctx(request())
    assert su.ki_is_tel_number(ctx, "+123") == 1
    assert su.ki_is_tel_number(ctx, "12a") == -1
    assert su.ki_is_numeric(ctx, "0042") == 1
    assert su.ki_is_numeric(ctx, "+42") == -1
    assert su.ki_is_numeric(ctx, "") == -2
    assert su.ki_is_alphanum(ctx, "abc123") == 1
    assert su.ki_is_alphanum(ctx, "abc-123") == -1
    assert su.ki_is_alphanumex(ctx, "abc-123_x", "-_") == 1
    assert su.ki_is_alphanumex(ctx, "abc.1", "-_") == -1


def test_comparisons():
    ctx = make_ctx(request())
    assert su.ki_cmp_uri(ctx, "sip:alice@EXAMPLE.com;transport=udp",
                         "sip:alice@example.com;transport=UDP") == 1
    assert su.ki_cmp_uri(ctx, "sip:alice@example.com", "sip:ALICE@example.com") == -1
    assert su.ki_cmp_uri(ctx, "sip:a@b", "garbage") == -2
    assert su.ki_cmp_aor(ctx, "sip:alice@Example.com:5060;x=1", "sip:alice@example.com") == 1
    assert su.ki_cmp_aor(ctx, "sip:alice@example.com:5070", "sip:alice@example.com") == -1
    assert su.ki_cmp_hdr_name(ctx, "Call-ID", "i") == 1
    assert su.ki_cmp_hdr_name(ctx, "X-A", "x-a") == 1
    assert su.ki_cmp_hdr_name(ctx, "From", "To") == -1


# ---- RPID, URI PVs ---------------------------------------------------------------------------

def test_append_rpid_hf_from_avp():
    ctx = make_ctx(request())
    su.mod.set_param("rpid_avp", "$var(rpid)")
    from sipcore.pv import parse_pv

    parse_pv("$var(rpid)").set(ctx, "<sip:+4930123@example.com>")
    assert su.ki_append_rpid_hf(ctx) == 1
    assert reparsed(ctx).header("Remote-Party-ID").value == \
        "<sip:+4930123@example.com>;party=calling;id-type=subscriber;screen=yes"
    assert su.ki_is_rpid_user_e164(ctx) == 1
    c2 = make_ctx(request())
    parse_pv("$var(rpid)").set(c2, "<sip:x@y>")
    assert su.ki_append_rpid_hf_ps(c2, "\"X\" ", ";party=called") == 1
    assert reparsed(c2).header("Remote-Party-ID").value == '"X" <sip:x@y>;party=called'
    assert su.ki_is_rpid_user_e164(c2) == -1


def test_set_uri_user_and_host():
    ctx = make_ctx(request())
    v = Pv("sip:alice@atlanta.com:5060;transport=tcp")
    assert su.ki_set_uri_user(ctx, v, "bob") == 1
    assert v.value == "sip:bob@atlanta.com:5060;transport=tcp"
    assert su.ki_set_uri_host(ctx, v, "biloxi.com") == 1
    assert v.value == "sip:bob@biloxi.com:5060;transport=tcp"
    assert su.ki_set_uri_user(ctx, Pv("not a uri"), "x") == -1


# ---- message kind, GRUU, Supported, first hop, Date ------------------------------------------

def test_is_request_reply():
    ctx = make_ctx(request())
    assert su.ki_is_request(ctx) == 1 and su.ki_is_reply(ctx) == -1
    rpl = make_ctx(sip("SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nVia: SIP/2.0/UDP "
                       "u;branch=z9hG4bK2\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2\n"
                       "Call-ID: x\nCSeq: 1 INVITE"))
    assert su.ki_is_reply(rpl) == 1 and su.ki_is_request(rpl) == -1
    assert su.ki_is_first_hop(rpl) == 1


def test_is_gruu():
    assert su.ki_is_gruu(make_ctx(request(ruri="sip:a@example.com;gr=urn:uuid:1"))) == 1
    assert su.ki_is_gruu(make_ctx(request(ruri="sip:a@example.com;gr"))) == 2
    assert su.ki_is_gruu(make_ctx(request())) == -1
    assert su.ki_is_gruu_uri(make_ctx(request()), "sip:tmp@example.com;gr") == 2


def test_is_supported():
    ctx = make_ctx(request(extra="\nSupported: 100rel, Timer"))
    assert su.ki_is_supported(ctx, su.parse_option("timer")) == 1
    assert su.ki_is_supported(ctx, "path") == -1
    with pytest.raises(ValueError):
        su.parse_option("bogus")


def test_is_first_hop():
    assert su.ki_is_first_hop(make_ctx(request())) == 1
    two = request().replace("Max-Forwards", "Via: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK2\n"
                            "Max-Forwards")
    assert su.ki_is_first_hop(make_ctx(two)) == -1
    assert su.ki_is_first_hop_mode(make_ctx(request()), 1) == 1
    rr = make_ctx(request(extra="\nRecord-Route: <sip:10.1.1.1;lr>"))
    assert su.ki_is_first_hop_mode(rr, 1) == -1


def test_hdr_date_check():
    now = formatdate(usegmt=True)
    assert su.ki_hdr_date_check(make_ctx(request(extra=f"\nDate: {now}")), 60) == 1
    old = "Date: Sat, 13 Nov 2010 23:29:00 GMT"
    assert su.ki_hdr_date_check(make_ctx(request(extra="\n" + old)), 60) == -3
    assert su.ki_hdr_date_check(make_ctx(request(extra="\nDate: yesterday")), 60) == -2
    assert su.ki_hdr_date_check(make_ctx(request()), 60) == -1


# ---- contact encodings -----------------------------------------------------------------------

def test_encode_decode_contact():
    ctx = make_ctx(request())
    assert su.ki_encode_contact(ctx, "enc", "192.0.2.1") == 1
    m = reparsed(ctx)
    uris = [c.uri for c in m.contacts.contacts]
    assert uris == ["sip:enc*alice*10.0.0.1*5070*tcp@192.0.2.1",
                    "sip:enc*alice*10.0.0.2**@192.0.2.1"]
    # an in-dialog request to the encoded contact comes back: decode the R-URI
    back = make_ctx(request("BYE", uris[0], to_tag=";tag=x"))
    assert su.ki_decode_contact(back) == 1
    assert back.msg.ruri == "sip:alice@10.0.0.1:5070;transport=tcp"
    assert su.ki_decode_contact(make_ctx(request())) == -1
    # and the Contact header of a message that carries encoded contacts
    enc = make_ctx(m.build())
    assert su.ki_decode_contact_header(enc) == 1
    assert [c.uri for c in reparsed(enc).contacts.contacts] == \
        ["sip:alice@10.0.0.1:5070;transport=tcp", "sip:alice@10.0.0.2"]


def test_contact_param_encode_decode_rm():
    ctx = make_ctx(request())
    assert su.ki_contact_param_encode(ctx, "ctv", "sip:192.0.2.1:5060") == 1
    m = reparsed(ctx)
    first = m.contacts.contacts[0].uri
    enc = base64.urlsafe_b64encode(b"sip:alice@10.0.0.1:5070;transport=tcp").decode().rstrip("=")
    assert first == f"sip:192.0.2.1:5060;ctv={enc}"
    c2 = make_ctx(m.build())
    assert su.ki_contact_param_decode(c2, "ctv") == 1
    assert reparsed(c2).contacts.contacts[0].uri == "sip:alice@10.0.0.1:5070;transport=tcp"
    back = make_ctx(request("BYE", first, to_tag=";tag=x"))
    assert su.ki_contact_param_decode_uri(back, "ctv") == 1
    assert back.msg.ruri == "sip:alice@10.0.0.1:5070;transport=tcp"
    back2 = make_ctx(request("BYE", first, to_tag=";tag=x"))
    assert su.ki_contact_param_decode_ruri(back2, "ctv") == 1
    c3 = make_ctx(m.build())
    assert su.ki_contact_param_rm(c3, "ctv") == 1
    assert reparsed(c3).contacts.contacts[0].uri == "sip:192.0.2.1:5060"
    assert su.ki_contact_param_rm(make_ctx(request()), "ctv") == -1


# ---- P-Charging-Vector -----------------------------------------------------------------------

def test_p_charging_vector_generate_remove():
    core = RecordingCore(sockets=[SocketInfo("udp", "192.0.2.5", 5060)])
    ctx = make_ctx(request(), core=core)
    assert su.ki_sip_p_charging_vector(ctx, "g") == 1
    v = reparsed(ctx).header("P-Charging-Vector").value
    assert v.startswith("icid-value=") and v.endswith(";icid-generated-at=192.0.2.5")
    pcv = su.mod.pvs["pcv"].factory
    assert pcv("all").get(ctx) == v
    assert pcv("genaddr").get(ctx) == "192.0.2.5"
    assert len(pcv("value").get(ctx)) == 32
    existing = make_ctx(request(extra="\nP-Charging-Vector: icid-value=AB;orig-ioi=home1.net"))
    assert su.ki_sip_p_charging_vector(existing, "g") == 1           # keeps the existing one
    assert reparsed(existing).header("P-Charging-Vector").value == \
        "icid-value=AB;orig-ioi=home1.net"
    assert pcv("orig").get(existing) == "home1.net"
    assert su.ki_sip_p_charging_vector(existing, "r") == 1
    assert reparsed(existing).header("P-Charging-Vector") is None
    forced = make_ctx(request(extra="\nP-Charging-Vector: icid-value=AB"))
    assert su.ki_sip_p_charging_vector(forced, "f") == 1
    assert reparsed(forced).header("P-Charging-Vector").value != "icid-value=AB"
    with pytest.raises(ValueError):
        su.parse_pcv_flags("x")
    with pytest.raises(ValueError):
        pcv("bogus")


def test_exports():
    f = su.mod.functions
    assert sorted(len(o.args) for o in f["uri_param"]) == [1, 2]
    assert sorted(len(o.args) for o in f["append_rpid_hf"]) == [0, 2]
    assert sorted(len(o.args) for o in f["is_gruu"]) == [0, 1]
    assert sorted(len(o.args) for o in f["is_first_hop"]) == [0, 1]
    p = su.mod.params
    assert p["options_accept"].default == "*/*" and p["options_accept_language"].default == "en"
    assert p["contact_flds_separator"].default == "*"
    assert p["rpid_avp"].default == "$avp(s:rpid)"


CFG = """
loadmodule "sl"
loadmodule "textops"
loadmodule "siputils"
modparam("siputils", "options_accept_language", "de")
request_route {
    if (is_method("OPTIONS") && $rU == $null) { options_reply(); exit; }
    if (tel2sip("tel:+49-30-1234", "$fd", "$var(u)") == 1 && is_uri_user_e164("$var(u)")) {
        $ru = $var(u);
    }
    if (has_totag()) { exit; }
    add_uri_param("nat=yes");
}
"""


def test_siputils_from_cfg():
    from sipcore.testing import Harness

    h = Harness.from_text(CFG)
    r = h.request(request("OPTIONS", "sip:example.com"))
    (rpl,) = r.replies
    assert rpl.status == 200 and rpl.header("Accept-Language").value == "de"
    r = h.request(request())
    assert r.ctx.msg.ruri == "sip:+49301234@atlanta.com;user=phone;nat=yes"


def test_options_reply_through_sl_after_mod_init():
    from sipcore import stats
    from sipcore.testing import Harness

    h = Harness.from_text(CFG)
    for m in h.cfg.modules:
        for hook in m.init_hooks:
            hook(m.context)
    try:
        before = stats.get("sl:200_replies")
        r = h.request(request("OPTIONS", "sip:example.com"))
        assert [m.status for m in r.replies] == [200]
        assert stats.get("sl:200_replies") == before + 1
    finally:
        su._sl = None
