"""secfilter through the Harness: DB lists, every check, RPCs changing lists for all processes."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

import modules.secfilter as sf
from sipcore.errors import RpcFault
from sipcore.testing import Harness

CFG = """
loadmodule "sl"
loadmodule "secfilter"
modparam("secfilter", "db_url", "{url}")
modparam("secfilter", "dst_exact_match", 0)
request_route {
    if (!secf_check_sqli_all()) { exit; }
    secf_check_ip();   $var(ip) = $rc;
    secf_check_ua();   $var(ua) = $rc;
    secf_check_from_hdr(); $var(fr) = $rc;
    secf_check_to_hdr(); $var(to) = $rc;
    secf_check_contact_hdr(); $var(ct) = $rc;
    secf_check_dst("$rU"); $var(dst) = $rc;
    secf_check_country("$hdr(X-CC)"); $var(cc) = $rc;
    sl_send_reply("200", "ip=$var(ip) ua=$var(ua) fr=$var(fr) to=$var(to) ct=$var(ct) dst=$var(dst) cc=$var(cc)");
}
"""

ROWS = [(0, 0, "friendly-scanner"), (1, 0, "GoodPhone"), (0, 3, "10.6."), (1, 3, "10.6.6.6"),
        (0, 2, "evil.example"), (1, 2, "good.example"), (0, 4, "mallory"), (1, 4, "alice"),
        (2, 0, "0900"), (0, 1, "XX"), (1, 1, "ES")]


def req(ua: str = "Phone", frm: str = '"Bob" <sip:bob@a.example>', ruri_user: str = "123",
        contact: str = "<sip:bob@10.0.0.1>", extra: str = "") -> str:
    return (f"INVITE sip:{ruri_user}@b.example SIP/2.0\n"
            "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKsf\n"
            f"From: {frm};tag=1\nTo: <sip:carol@b.example>\nCall-ID: sf1\nCSeq: 1 INVITE\n"
            f"User-Agent: {ua}\nContact: {contact}\n{extra}Content-Length: 0\n\n")


@pytest.fixture
def h(tmp_path) -> Harness:
    url = f"sqlite:///{tmp_path / 'sf.db'}"
    eng = sa.create_engine(url)
    md = sa.MetaData()
    t = sa.Table("secfilter", md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("action", sa.Integer), sa.Column("type", sa.Integer),
                 sa.Column("data", sa.String(64)))
    md.create_all(eng)
    with eng.begin() as conn:
        conn.execute(sa.insert(t), [{"action": a, "type": ty, "data": d} for a, ty, d in ROWS])
    eng.dispose()
    return Harness.from_text(CFG.replace("{url}", url))


def result(h: Harness, raw: str, src: str = "10.0.0.1") -> dict[str, int] | None:
    res = h.request(raw, src=(src, 5060))
    if not res.replies:
        return None
    return {k: int(v) for k, v in (p.split("=") for p in res.replies[0].reason.split())}


def test_nothing_listed(h):
    assert result(h, req()) == {"ip": 1, "ua": 1, "fr": 1, "to": 1, "ct": 1, "dst": 1,
                                "cc": 1}


def test_lists(h):
    r = result(h, req(ua="friendly-scanner 0.1", ruri_user="09001234",
                      frm="<sip:mallory@a.example>", extra="X-CC: xx\n"), src="10.6.1.1")
    assert (r["ip"], r["ua"], r["fr"], r["dst"], r["cc"]) == (-2, -2, -2, -2, -2)
    r = result(h, req(ua="goodphone", frm="<sip:alice@evil.example>",
                      contact="<sip:x@good.example>", extra="X-CC: ES\n"), src="10.6.6.6")
    assert (r["ip"], r["ua"], r["fr"], r["ct"], r["cc"]) == (2, 2, 2, 3, 2)
    r = result(h, req(frm="<sip:bob@evil.example>", contact="<sip:mallory@x.example>"))
    assert (r["fr"], r["ct"]) == (-3, -2)
    r = result(h, req(frm='"friendly-scanner" <sip:bob@a.example>'))
    assert r["fr"] == -4


def test_sqli(h):
    assert result(h, req(ua="x' OR 1=1 --")) is None          # dropped
    fe = sf.mod.lookup("secf_check_sqli_hdr", 1)
    assert fe.impl(None, "abc%27") == -1 and fe.impl(None, "abc") == 1
    assert sf.rpc_stats()["sqli"] == 2


def test_rpcs_and_sharing(h):
    assert sf.rpc_print("ip") == {"ip": {"blacklisted": ["10.6."], "whitelisted": ["10.6.6.6"]}}
    pid = os.fork()
    if pid == 0:                      # e.g. the ctl process adds an entry
        sf.rpc_add_bl("ua", "sipvicious")
        sf.rpc_add_dst("0800")
        sf.rpc_add_wl("user", "bob")
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0
    r = result(h, req(ua="SIPVicious 1", ruri_user="0800"))
    assert (r["ua"], r["dst"], r["fr"]) == (-2, -2, 2)
    assert sf.rpc_stats()["blacklisted_ua"] == 1
    sf.rpc_stats_reset()
    assert sf.rpc_stats() == {}
    with pytest.raises(RpcFault):
        sf.rpc_add_bl("shoe", "x")
    sf.rpc_reload()                   # back to the DB content
    assert "sipvicious" not in sf.rpc_print("ua")["ua"]["blacklisted"]
    assert set(sf.rpc_print()) == {"ua", "country", "domain", "ip", "user", "dst"}
