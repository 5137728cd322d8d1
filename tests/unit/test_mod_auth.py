"""auth through the harness: challenges (401/407, qop, algorithm, stale), digest responses
computed here as a UA computes them (RFC 2617 / RFC 7616 / RFC 8760), pv_* checks with
Kamailio's return codes, nonce expiry, auth_checks_*, one_time_nonce and nonce_count (shm),
consume_credentials, has_credentials, auth_get_www_authenticate."""
from __future__ import annotations

import hashlib
import uuid

import pytest

from modules.auth import api as auth_api
from modules.auth import nonce as nc
from sipcore.msg.digest import parse_digest
from sipcore.testing import Harness

BASE = """
loadmodule "sl"
loadmodule "pv"
loadmodule "xlog"
loadmodule "textops"
loadmodule "auth"
{params}
request_route {{
{body}
}}
"""

PASSWORD = "secret"

# pv_auth_check with a password from the script; reply the return code as a status
CHECK = """
    $var(rc) = 0;
    pv_auth_check("127.0.0.1", "{passwd}", "{flags}", "{checks}");
    $var(rc) = $rc;
    if ($var(rc) == 1) {{
        {on_ok}
        append_to_reply("X-Rc: 1\\r\\n");
        sl_send_reply("200", "OK");
        exit;
    }}
    append_to_reply("X-Rc: $var(rc)\\r\\n");
    auth_challenge("127.0.0.1", "{chflags}");
    exit;
"""


def harness(params: str = "", passwd: str = PASSWORD, flags: int = 0, checks: int = 1,
            chflags: int = 0, on_ok: str = "") -> Harness:
    body = CHECK.format(passwd=passwd, flags=flags, checks=checks, chflags=chflags,
                        on_ok=on_ok)
    return Harness.from_text(BASE.format(params=params, body=body))


def request(method: str = "REGISTER", user: str = "alice", auth: str = "",
            body: str = "", callid: str | None = None, ruri: str | None = None,
            to_user: str | None = None) -> str:
    ruri = ruri or ("sip:127.0.0.1" if method == "REGISTER" else "sip:bob@127.0.0.1")
    to = f"<sip:{to_user or user}@127.0.0.1>" if method == "REGISTER" else "<sip:bob@127.0.0.1>"
    lines = [f"{method} {ruri} SIP/2.0",
             f"Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK{uuid.uuid4().hex[:12]}",
             "Max-Forwards: 70",
             f"From: <sip:{user}@127.0.0.1>;tag=f1",
             f"To: {to}",
             f"Call-ID: {callid or uuid.uuid4().hex}",
             f"CSeq: 1 {method}",
             "Contact: <sip:alice@192.0.2.10:5070>"]
    if auth:
        lines.append(auth)
    if body:
        lines.append("Content-Type: text/plain")
    return "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n" + body


def H(alg: str, s: str | bytes) -> str:
    data = s.encode() if isinstance(s, str) else s
    return (hashlib.sha256 if alg.upper().startswith("SHA-256") else hashlib.md5)(data).hexdigest()


def ua_credentials(challenge: str, user: str, password: str, method: str, uri: str, *,
                   qop: str | None = None, nc_value: int = 1, cnonce: str = "0a4f113b",
                   body: bytes = b"", header: str = "Authorization",
                   algorithm: str | None = None, realm: str | None = None) -> str:
    """What a UA sends back, computed independently of the module (RFC 2617 3.2.2)."""
    ch = parse_digest(challenge)
    alg = algorithm or ch.algorithm or "MD5"
    realm = realm if realm is not None else ch.realm
    ha1 = H(alg, f"{user}:{realm}:{password}")
    if alg.upper().endswith("-SESS"):
        ha1 = H(alg, f"{ha1}:{ch.nonce}:{cnonce}")
    ha2 = H(alg, f"{method}:{uri}:{H(alg, body)}") if qop == "auth-int" \
        else H(alg, f"{method}:{uri}")
    nc_text = f"{nc_value:08x}"
    if qop:
        resp = H(alg, f"{ha1}:{ch.nonce}:{nc_text}:{cnonce}:{qop}:{ha2}")
    else:
        resp = H(alg, f"{ha1}:{ch.nonce}:{ha2}")
    parts = [f'Digest username="{user}"', f'realm="{realm}"', f'nonce="{ch.nonce}"',
             f'uri="{uri}"', f'response="{resp}"', f"algorithm={alg}"]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    return f"{header}: " + ", ".join(parts)


def only_reply(res):
    (rep,) = res.replies
    return rep


def rc_of(rep) -> int:
    return int(rep.header("X-Rc").value)


def challenge_of(h: Harness, method: str = "REGISTER", **kw) -> str:
    rep = only_reply(h.request(request(method, **kw)))
    assert rep.status == (401 if method == "REGISTER" else 407)
    name = "WWW-Authenticate" if method == "REGISTER" else "Proxy-Authenticate"
    return rep.header(name).value


# ---- challenges -------------------------------------------------------------------------------

def test_register_without_credentials_is_challenged_with_a_nonce():
    h = harness()
    rep = only_reply(h.request(request()))
    assert rep.status == 401 and rep.reason == "Unauthorized"
    assert rc_of(rep) == -5                                   # no credentials
    ch = parse_digest(rep.header("WWW-Authenticate").value)
    assert ch.scheme == "Digest" and ch.realm == "127.0.0.1"
    assert ch.nonce and ch.algorithm == "MD5"
    assert ch.qop is None and "stale" not in ch.params


def test_invite_gets_407_proxy_authenticate_with_qop_and_sha256():
    h = harness('modparam("auth", "algorithm", "SHA-256")', chflags=1)
    rep = only_reply(h.request(request("INVITE")))
    assert rep.status == 407 and rep.reason == "Proxy Authentication Required"
    ch = parse_digest(rep.header("Proxy-Authenticate").value)
    assert ch.qop == "auth" and ch.algorithm == "SHA-256"


def test_qop_param_and_flags():
    h = harness('modparam("auth", "qop", "auth-int")')
    assert parse_digest(challenge_of(h)).qop == "auth-int"
    h = harness(chflags=2)
    assert parse_digest(challenge_of(h)).qop == "auth-int"


def test_nonces_differ_and_carry_integrity():
    h = harness()
    a, b = parse_digest(challenge_of(h)).nonce, parse_digest(challenge_of(h)).nonce
    assert a != b                                          # a random nid in each
    tampered = a[:-2] + ("AA" if a[-2:] != "AA" else "BB")
    ok, _ = nc.check_nonce(auth_api.S.secret, a, auth_api.now())
    bad, _ = nc.check_nonce(auth_api.S.secret, tampered, auth_api.now())
    assert ok is nc.NonceStatus.OK and bad is nc.NonceStatus.BAD


# ---- responses ---------------------------------------------------------------------------------

def test_correct_digest_is_authorized():
    h = harness()
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1")
    rep = only_reply(h.request(request(auth=cred)))
    assert rep.status == 200 and rc_of(rep) == 1


def test_wrong_password_is_minus_2():
    h = harness()
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", "wrong", "REGISTER", "sip:127.0.0.1")
    rep = only_reply(h.request(request(auth=cred)))
    assert rep.status == 401 and rc_of(rep) == -2


def test_ha1_as_password_flag_1():
    ha1 = H("MD5", f"alice:127.0.0.1:{PASSWORD}")
    h = harness(passwd=ha1, flags=1)
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1")
    assert rc_of(only_reply(h.request(request(auth=cred)))) == 1


@pytest.mark.parametrize("qop", ["auth", "auth-int"])
def test_qop_with_nc_and_cnonce(qop):
    h = harness(chflags=1 if qop == "auth" else 2)
    ch = challenge_of(h)
    body = "hello body"
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1", qop=qop,
                          body=body.encode())
    assert rc_of(only_reply(h.request(request(auth=cred, body=body)))) == 1
    if qop == "auth-int":                       # the body is covered: another body fails
        rep = only_reply(h.request(request(auth=cred, body="other body")))
        assert rc_of(rep) == -2


@pytest.mark.parametrize("alg", ["SHA-256", "MD5-sess", "SHA-256-sess"])
def test_sha256_and_sess_algorithms(alg):
    h = harness('modparam("auth", "algorithm", "SHA-256")', chflags=1)
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1", qop="auth",
                          algorithm=alg)
    assert rc_of(only_reply(h.request(request(auth=cred)))) == 1
    bad = ua_credentials(ch, "alice", "nope", "REGISTER", "sip:127.0.0.1", qop="auth",
                         algorithm=alg)
    assert rc_of(only_reply(h.request(request(auth=bad)))) == -2


def test_unknown_algorithm_and_malformed_credentials_are_errors():
    h = harness()
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1")
    odd = cred.replace("algorithm=MD5", "algorithm=SHA-512-256")
    assert rc_of(only_reply(h.request(request(auth=odd)))) == -1
    broken = 'Authorization: Digest username="alice", realm="127.0.0.1", nonce="x"'
    assert rc_of(only_reply(h.request(request(auth=broken)))) == -1
    garbage = "Authorization: Digest ,,,"
    assert rc_of(only_reply(h.request(request(auth=garbage)))) == -1


def test_credentials_for_another_realm_are_no_credentials():
    h = harness()
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1",
                          realm="example.org")
    assert rc_of(only_reply(h.request(request(auth=cred)))) == -5


def test_foreign_nonce_is_an_error():
    h = harness()
    foreign = nc.make_nonce(b"another secret", auth_api.now(), 300)
    ch = f'Digest realm="127.0.0.1", nonce="{foreign}"'
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1")
    assert rc_of(only_reply(h.request(request(auth=cred)))) == -1


def test_expired_nonce_is_stale_and_rechallenged_with_stale_true(monkeypatch):
    h = harness('modparam("auth", "nonce_expire", 30)')
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1")
    real_now = auth_api.now()
    monkeypatch.setattr(auth_api, "now", lambda: real_now + 31)
    rep = only_reply(h.request(request(auth=cred)))
    assert rep.status == 401 and rc_of(rep) == -4
    again = parse_digest(rep.header("WWW-Authenticate").value)
    assert again.params.get("stale") == "true" and again.nonce != parse_digest(ch).nonce
    # the fresh nonce works at the same (later) time
    cred2 = ua_credentials(rep.header("WWW-Authenticate").value, "alice", PASSWORD,
                           "REGISTER", "sip:127.0.0.1")
    assert rc_of(only_reply(h.request(request(auth=cred2)))) == 1


def test_nonce_from_the_future_beyond_drift_is_rejected(monkeypatch):
    h = harness()
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1")
    real_now = auth_api.now()
    monkeypatch.setattr(auth_api, "now", lambda: real_now - 10)
    assert rc_of(only_reply(h.request(request(auth=cred)))) == -1


def test_stale_flag_16_in_challenge():
    h = harness(chflags=16)
    assert parse_digest(challenge_of(h)).params.get("stale") == "true"


def test_auth_checks_register_binds_callid():
    h = harness('modparam("auth", "auth_checks_register", 2)')
    ch = challenge_of(h, callid="call-1")
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1")
    assert rc_of(only_reply(h.request(request(auth=cred, callid="call-1")))) == 1
    assert rc_of(only_reply(h.request(request(auth=cred, callid="call-2")))) == -4


def test_identity_check_user_mismatch_is_minus_8():
    h = harness(checks=1)
    ch = challenge_of(h, user="mallory", to_user="alice")
    cred = ua_credentials(ch, "mallory", PASSWORD, "REGISTER", "sip:127.0.0.1")
    rep = only_reply(h.request(request(user="mallory", to_user="alice", auth=cred)))
    assert rc_of(rep) == -8
    h = harness(checks=0)                      # a new start: a new secret, a new nonce
    ch = challenge_of(h, user="mallory", to_user="alice")
    cred = ua_credentials(ch, "mallory", PASSWORD, "REGISTER", "sip:127.0.0.1")
    rep = only_reply(h.request(request(user="mallory", to_user="alice", auth=cred)))
    assert rc_of(rep) == 1


def test_one_time_nonce_replay_is_minus_6():
    h = harness('modparam("auth", "one_time_nonce", 1)')
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1")
    assert rc_of(only_reply(h.request(request(auth=cred)))) == 1
    rep = only_reply(h.request(request(auth=cred)))
    assert rc_of(rep) == -6
    assert parse_digest(rep.header("WWW-Authenticate").value).params.get("stale") == "true"


def test_nonce_count_must_increase():
    h = harness('modparam("auth", "nonce_count", 1)', chflags=1)
    ch = challenge_of(h)
    one = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1", qop="auth",
                         nc_value=1)
    two = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1", qop="auth",
                         nc_value=2)
    assert rc_of(only_reply(h.request(request(auth=one)))) == 1
    assert rc_of(only_reply(h.request(request(auth=two)))) == 1
    assert rc_of(only_reply(h.request(request(auth=one)))) == -6
    assert rc_of(only_reply(h.request(request(auth=two)))) == -6


def test_realm_prefix_is_stripped():
    h = Harness.from_text(BASE.format(
        params='modparam("auth", "realm_prefix", "sip.")',
        body='www_challenge("sip.example.com", "0"); exit;'))
    ch = parse_digest(challenge_of(h))
    assert ch.realm == "example.com"


# ---- other functions ------------------------------------------------------------------------

def test_consume_and_has_credentials():
    body = """
    if (!has_credentials("127.0.0.1")) { proxy_challenge("127.0.0.1", "0"); exit; }
    if (pv_proxy_authenticate("127.0.0.1", "secret", "0") != 1) { sl_send_reply("403", "No"); exit; }
    consume_credentials();
    forward("127.0.0.1", 5099);
"""
    h = Harness.from_text(BASE.format(params="", body=body))
    ch = challenge_of(h, "INVITE")
    cred = ua_credentials(ch, "alice", PASSWORD, "INVITE", "sip:bob@127.0.0.1",
                          header="Proxy-Authorization")
    res = h.request(request("INVITE", auth=cred))
    (fwd,) = res.requests
    assert fwd.header("Proxy-Authorization") is None


def test_consume_without_authentication_is_minus_1():
    h = Harness.from_text(BASE.format(params="", body="""
    consume_credentials();
    append_to_reply("X-Rc: $rc\\r\\n"); sl_send_reply("200", "OK");"""))
    assert rc_of(only_reply(h.request(request()))) == -1


def test_auth_get_www_authenticate_into_a_var():
    h = Harness.from_text(BASE.format(params='modparam("auth", "qop", "auth")', body="""
    auth_get_www_authenticate("127.0.0.1", "0", "$var(wa)");
    append_to_reply("$var(wa)\\r\\n");
    sl_send_reply("401", "Unauthorized");"""))
    rep = only_reply(h.request(request()))
    ch = parse_digest(rep.header("WWW-Authenticate").value)
    assert ch.realm == "127.0.0.1" and ch.qop == "auth"


def test_pv_www_authenticate_puts_challenge_in_avp():
    h = Harness.from_text(BASE.format(params="", body="""
    if (pv_www_authenticate("127.0.0.1", "secret", "4") != 1) {
        append_to_reply("$avp(digest_challenge)\\r\\n");
        sl_send_reply("401", "Unauthorized");
        exit;
    }
    sl_send_reply("200", "OK");"""))
    rep = only_reply(h.request(request()))
    assert rep.status == 401
    assert parse_digest(rep.header("WWW-Authenticate").value).qop == "auth"


def test_challenge_of_a_transaction_goes_through_tm():
    h = Harness.from_text("""
loadmodule "sl"
loadmodule "tm"
loadmodule "auth"
request_route {
    t_newtran();
    auth_challenge("127.0.0.1", "1");
    exit;
}
""")
    reps = h.request(request("INVITE")).replies
    assert [r.status for r in reps] == [100, 407]          # tm's 100 Trying, then t_reply
    assert reps[1].header("Proxy-Authenticate") is not None


def test_add_authinfo_hdr_gives_rspauth():
    h = harness('modparam("auth", "add_authinfo_hdr", 1)', chflags=1)
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1", qop="auth",
                          cnonce="c0ffee")
    rep = only_reply(h.request(request(auth=cred)))
    assert rep.status == 200
    info = parse_digest("Digest " + rep.header("Authentication-Info").value)
    nonce = parse_digest(ch).nonce
    ha1 = H("MD5", f"alice:127.0.0.1:{PASSWORD}")
    want = H("MD5", f"{ha1}:{nonce}:00000001:c0ffee:auth:{H('MD5', ':sip:127.0.0.1')}")
    assert info.params["rspauth"] == want and info.cnonce == "c0ffee" and info.nc == "00000001"
    assert info.params["nextnonce"] == nonce


def test_response_of_the_wrong_length_is_an_error_and_empty_realm_too():
    h = harness()
    ch = challenge_of(h)
    cred = ua_credentials(ch, "alice", PASSWORD, "REGISTER", "sip:127.0.0.1")
    short = cred.replace('response="', 'response="ab', 1)
    assert rc_of(only_reply(h.request(request(auth=short)))) == -1
    h = Harness.from_text(BASE.format(params="", body="""
    pv_www_authenticate("", "secret", "0");
    append_to_reply("X-Rc: $rc\\r\\n"); sl_send_reply("200", "OK");"""))
    assert rc_of(only_reply(h.request(request(auth=cred)))) == -1


@pytest.mark.parametrize("method", ["ACK", "CANCEL", "PRACK"])
def test_ack_cancel_prack_are_never_challenged(method):
    h = harness(checks=0)
    rep = h.request(request(method))
    assert rep.ctx.modstate is None or "auth" not in rep.ctx.modstate     # nothing checked
    assert not [r for r in rep.replies if r.status in (401, 407)]
