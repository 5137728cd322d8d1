"""auth_db through the harness with a real subscriber table on SQLite and, when their servers
answer on 127.0.0.1, PostgreSQL (own schema per test) and MariaDB (own database per test),
dropped afterwards: the stock config's auth_check/auth_challenge flow, calculate_ha1 with
plaintext passwords and with ha1/ha1b columns, unknown users, stale nonces, SHA-256, identity
checks, load_credentials into AVPs, is_subscriber, the version check, KEMI (Lua), and a
database that is gone."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import insert

from modules.auth import api as auth_api
from sipcore import db
from sipcore.db import schema
from sipcore.errors import ModuleError
from sipcore.msg.digest import parse_digest
from sipcore.testing import Harness
from tests.services import import_or_skip

from .test_db_engine import temp_db
from .test_mod_auth import only_reply, rc_of, request, ua_credentials

CFG = """
loadmodule "sl"
loadmodule "pv"
loadmodule "xlog"
loadmodule "textops"
loadmodule "auth"
loadmodule "auth_db"
modparam("auth_db", "db_url", "{url}")
{params}
request_route {{
    if (!auth_check("$fd", "subscriber", "{flags}")) {{
        append_to_reply("X-Rc: $rc\\r\\n");
        auth_challenge("$fd", "{chflags}");
        exit;
    }}
    {on_ok}
    append_to_reply("X-Rc: 1\\r\\n");
    sl_send_reply("200", "OK");
}}
"""

PLAIN = 'modparam("auth_db", "calculate_ha1", 1)\nmodparam("auth_db", "password_column", "password")'


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def url(request, tmp_path):
    with temp_db(request.param, tmp_path) as u:
        db.create_all(u, ["subscriber"])
        rows = [("alice", "127.0.0.1", "secret"), ("bob", "127.0.0.1", "bobpw"),
                ("carol", "example.org", "carolpw")]
        with db.get_engine(u).begin() as conn:
            for user, dom, pw in rows:
                conn.execute(insert(schema.subscriber).values(
                    username=user, domain=dom, password=pw,
                    ha1=md5(f"{user}:{dom}:{pw}"), ha1b=md5(f"{user}@{dom}:{dom}:{pw}")))
        db.dispose_engine()
        yield u


def harness(url: str, params: str = PLAIN, flags: int = 1, chflags: int = 0,
            on_ok: str = "") -> Harness:
    return Harness.from_text(CFG.format(url=url, params=params, flags=flags, chflags=chflags,
                                        on_ok=on_ok))


def challenge(h: Harness, method: str = "REGISTER", **kw) -> str:
    rep = only_reply(h.request(request(method, **kw)))
    assert rep.status == (401 if method == "REGISTER" else 407)
    assert rc_of(rep) == -5
    return rep.header("WWW-Authenticate" if method == "REGISTER" else "Proxy-Authenticate").value


def attempt(h: Harness, user: str, password: str, method: str = "REGISTER", **kw) -> int:
    ch = challenge(h, method, user=user)
    uri = "sip:127.0.0.1" if method == "REGISTER" else "sip:bob@127.0.0.1"
    hdr = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
    cred = ua_credentials(ch, kw.pop("auth_user", user), password, method, uri, header=hdr,
                          **kw)
    return rc_of(only_reply(h.request(request(method, user=user, auth=cred))))


def test_register_challenge_then_authorized(url):
    h = harness(url)
    ch = parse_digest(challenge(h))
    assert ch.realm == "127.0.0.1" and ch.nonce
    assert attempt(h, "alice", "secret") == 1


def test_wrong_password_unknown_user_and_invite(url):
    h = harness(url)
    assert attempt(h, "alice", "wrong") == -2
    assert attempt(h, "mallory", "secret") == -3
    assert attempt(h, "alice", "secret", "INVITE") == 1        # Proxy-Authorization


@pytest.mark.parametrize("params", [PLAIN, ""], ids=["calculate_ha1", "ha1_column"])
def test_calculate_ha1_yes_and_no(url, params):
    h = harness(url, params)
    assert attempt(h, "alice", "secret") == 1
    assert attempt(h, "alice", "Secret") == -2


def test_ha1b_for_usernames_with_domain(url):
    h = harness(url, "", flags=0)
    assert attempt(h, "alice", "secret", auth_user="alice@127.0.0.1") == 1
    assert attempt(h, "alice", "nope", auth_user="alice@127.0.0.1") == -2


def test_use_domain_matches_the_domain_column(url):
    h = harness(url, PLAIN + '\nmodparam("auth_db", "use_domain", 1)', flags=0)
    assert attempt(h, "alice", "secret") == 1
    assert attempt(h, "carol", "carolpw") == -3              # carol is in example.org only


def test_qop_and_sha256(url):
    h = harness(url, PLAIN + '\nmodparam("auth", "algorithm", "SHA-256")', chflags=1)
    ch = parse_digest(challenge(h))
    assert ch.algorithm == "SHA-256" and ch.qop == "auth"
    assert attempt(h, "alice", "secret", qop="auth") == 1
    assert attempt(h, "alice", "secret", qop="auth", algorithm="MD5") == 1
    assert attempt(h, "alice", "nope", qop="auth") == -2


def test_expired_nonce_is_stale(url, monkeypatch):
    h = harness(url)
    ch = challenge(h)
    cred = ua_credentials(ch, "alice", "secret", "REGISTER", "sip:127.0.0.1")
    t0 = auth_api.now()
    monkeypatch.setattr(auth_api, "now", lambda: t0 + 301)
    rep = only_reply(h.request(request(auth=cred)))
    assert rc_of(rep) == -4
    assert parse_digest(rep.header("WWW-Authenticate").value).params["stale"] == "true"


def test_identity_check(url):
    h = harness(url, flags=1)
    ch = challenge(h, user="alice")
    cred = ua_credentials(ch, "bob", "bobpw", "REGISTER", "sip:127.0.0.1")
    rep = only_reply(h.request(request(user="alice", auth=cred)))   # bob registers alice
    assert rc_of(rep) == -8


def test_identity_from_must_equal_to_for_register(url):
    h = harness(url, flags=1)
    ch = challenge(h, user="alice")
    cred = ua_credentials(ch, "alice", "secret", "REGISTER", "sip:127.0.0.1")
    raw = request(user="alice", auth=cred).replace("From: <sip:alice@", "From: <sip:eve@")
    assert rc_of(only_reply(h.request(raw))) == -8
    h = harness(url, flags=0)
    ch = challenge(h, user="alice")
    cred = ua_credentials(ch, "alice", "secret", "REGISTER", "sip:127.0.0.1")
    raw = request(user="alice", auth=cred).replace("From: <sip:alice@", "From: <sip:eve@")
    assert rc_of(only_reply(h.request(raw))) == 1


def test_ack_and_cancel_pass_auth_check(url):
    h = harness(url)
    for method in ("ACK", "CANCEL"):
        res = h.request(request(method))
        assert not [r for r in res.replies if r.status in (401, 407)]


def test_load_credentials_into_avps(url):
    h = harness(url, PLAIN + '\nmodparam("auth_db", "load_credentials", '
                             '"$avp(pw)=password;ha1")',
                on_ok='append_to_reply("X-Pw: $avp(pw)\\r\\nX-Ha1: $avp(ha1)\\r\\n");')
    ch = challenge(h)
    cred = ua_credentials(ch, "alice", "secret", "REGISTER", "sip:127.0.0.1")
    rep = only_reply(h.request(request(auth=cred)))
    assert rc_of(rep) == 1
    assert rep.header("X-Pw").value == "secret"
    assert rep.header("X-Ha1").value == md5("alice:127.0.0.1:secret")


def test_is_subscriber(url):
    h = Harness.from_text(f"""
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "auth"
loadmodule "auth_db"
modparam("auth_db", "db_url", "{url}")
modparam("auth_db", "load_credentials", "$avp(h)=ha1")
request_route {{
    is_subscriber("$fu", "subscriber", "$hdr(X-Flags)");
    append_to_reply("X-Rc: $rc\\r\\nX-H: $avp(h)\\r\\n");
    sl_send_reply("200", "OK");
}}
""")

    def ask(user: str, dom: str, flags: int):
        raw = request("OPTIONS", user=user).replace(f"sip:{user}@127.0.0.1>;tag",
                                                    f"sip:{user}@{dom}>;tag")
        raw = raw.replace("Content-Length", f"X-Flags: {flags}\r\nContent-Length")
        rep = only_reply(h.request(raw))
        return rc_of(rep), rep.header("X-H").value

    assert ask("alice", "127.0.0.1", 1) == (1, md5("alice:127.0.0.1:secret"))
    assert ask("alice", "127.0.0.1", 3)[0] == 1
    assert ask("alice", "127.0.0.1", 3)[1] in ("", "<null>")
    assert ask("carol", "127.0.0.1", 1)[0] == -1
    assert ask("carol", "127.0.0.1", 0)[0] == 1
    assert ask("nobody", "127.0.0.1", 0)[0] == -1


def test_version_check_refuses_a_wrong_table(url):
    from sqlalchemy import update

    with db.get_engine(url).begin() as conn:
        conn.execute(update(schema.TABLES["version"]).where(
            schema.TABLES["version"].c.table_name == "subscriber").values(table_version=6))
    db.dispose_engine()
    with pytest.raises(ModuleError, match="subscriber"):
        harness(url)
    harness(url, PLAIN + '\nmodparam("auth_db", "version_table", 0)')


def test_database_gone_is_minus_1_not_a_crash(tmp_path):
    url = f"sqlite:///{tmp_path / 'subs.sqlite'}"
    db.create_all(url, ["subscriber"])
    h = harness(url)
    db.drop_all(url, ["subscriber"])
    db.dispose_engine()
    assert attempt(h, "alice", "secret") == -1


LUA = r'''
function ksr_request_route()
  local rc = KSR.auth_db.auth_check(KSR.pv.get("$fd"), "subscriber", 1)
  if rc < 0 then
    KSR.hdr.append_to_reply("X-Rc: " .. rc .. "\r\n")
    KSR.auth.auth_challenge(KSR.pv.get("$fd"), 1)
    KSR.x.exit()
  end
  KSR.hdr.append_to_reply("X-Rc: " .. rc .. "\r\n")
  KSR.sl.sl_send_reply(200, "OK")
end
'''


def test_kemi_lua_auth_check_and_challenge(url, tmp_path):
    import_or_skip("lupa")
    script = tmp_path / "auth.lua"
    script.write_text(LUA)
    h = Harness.from_text(f"""
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "auth"
loadmodule "auth_db"
loadmodule "app_lua"
modparam("auth_db", "db_url", "{url}")
{PLAIN}
modparam("app_lua", "load", "{script}")
cfgengine "lua"
""")
    ch = challenge(h)
    assert parse_digest(ch).qop == "auth"
    good = ua_credentials(ch, "alice", "secret", "REGISTER", "sip:127.0.0.1", qop="auth")
    assert rc_of(only_reply(h.request(request(auth=good)))) == 1
    bad = ua_credentials(ch, "alice", "nope", "REGISTER", "sip:127.0.0.1", qop="auth")
    assert rc_of(only_reply(h.request(request(auth=bad)))) == -2
