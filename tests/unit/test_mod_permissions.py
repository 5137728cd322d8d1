"""permissions through the Harness: address table from the DB and from a file, trusted table
(cached and per-query), allow/deny files, RPC reloads seen by other processes."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

import modules.permissions as perm
from sipcore.errors import RpcFault
from sipcore.testing import Harness

CFG = """
loadmodule "sl"
loadmodule "permissions"
modparam("permissions", "db_url", "{url}")
modparam("permissions", "db_mode", {db_mode})
modparam("permissions", "peer_tag_avp", "$avp(s:tag)")
modparam("permissions", "reload_delta", 0)
request_route {
    $var(g) = 0;
    allow_source_address_group(); $var(g) = $rc;
    if (allow_source_address()) { sl_send_reply("200", "src g=$var(g) tag=$avp(s:tag)"); exit; }
    if (allow_address("2", "$si", "$sp")) { sl_send_reply("201", "grp2 g=$var(g)"); exit; }
    if (allow_trusted()) { sl_send_reply("202", "trusted tag=$avp(s:tag)"); exit; }
    sl_send_reply("403", "g=$var(g)");
}
"""


def req(frm: str = "sip:alice@a.example", ruri: str = "sip:bob@b.example") -> str:
    return (f"INVITE {ruri} SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKp\n"
            f"From: <{frm}>;tag=1\nTo: <sip:bob@b.example>\nCall-ID: p1\nCSeq: 1 INVITE\n"
            "Contact: <sip:alice@10.0.0.1>\nContent-Length: 0\n\n")


def make_db(path) -> str:
    url = f"sqlite:///{path}"
    eng = sa.create_engine(url)
    md = sa.MetaData()
    addr = sa.Table("address", md, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("grp", sa.Integer), sa.Column("ip_addr", sa.String(50)),
                    sa.Column("mask", sa.Integer), sa.Column("port", sa.Integer),
                    sa.Column("tag", sa.String(64)))
    tr = sa.Table("trusted", md, sa.Column("id", sa.Integer, primary_key=True),
                  sa.Column("src_ip", sa.String(50)), sa.Column("proto", sa.String(4)),
                  sa.Column("from_pattern", sa.String(64)),
                  sa.Column("ruri_pattern", sa.String(64)), sa.Column("tag", sa.String(64)),
                  sa.Column("priority", sa.Integer))
    md.create_all(eng)
    with eng.begin() as conn:
        conn.execute(sa.insert(addr), [
            {"grp": 1, "ip_addr": "10.1.1.1", "mask": 32, "port": 0, "tag": "gw1"},
            {"grp": 1, "ip_addr": "10.2.0.0", "mask": 16, "port": 5060, "tag": "net2"},
            {"grp": 2, "ip_addr": "10.3.3.3", "mask": 32, "port": 0, "tag": None},
            {"grp": 3, "ip_addr": "gw.example", "mask": 32, "port": 0, "tag": None}])
        conn.execute(sa.insert(tr), [
            {"src_ip": "10.9.9.9", "proto": "any", "from_pattern": "^sip:.*@a\\.example$",
             "ruri_pattern": None, "tag": "peer9", "priority": 0}])
    eng.dispose()
    return url


def status(h: Harness, src: tuple[str, int], **kw) -> tuple[int, str]:
    r = h.request(req(**kw), src=src).replies[0]
    return r.status, r.reason


@pytest.fixture(params=[1, 0], ids=["cached", "query"])
def h(tmp_path, request) -> Harness:
    url = make_db(tmp_path / "perm.db")
    return Harness.from_text(CFG.replace("{url}", url).replace("{db_mode}", str(request.param)))


def test_address_and_trusted(h):
    assert status(h, ("10.1.1.1", 7000)) == (200, "src g=1 tag=gw1")
    assert status(h, ("10.2.5.5", 5060)) == (200, "src g=1 tag=net2")
    assert status(h, ("10.2.5.5", 5070))[0] == 403          # port must match
    assert status(h, ("10.3.3.3", 5060)) == (201, "grp2 g=2")
    assert status(h, ("10.9.9.9", 5060)) == (202, "trusted tag=peer9")
    assert status(h, ("10.9.9.9", 5060), frm="sip:eve@evil.example")[0] == 403
    assert status(h, ("10.4.4.4", 5060)) == (403, "g=-1")
    ctx = h.request(req(), src=("10.4.4.4", 5060)).ctx
    assert perm.mod.lookup("allow_address_group", 2).impl(ctx, "gw.example", 5060) == 3


def test_dumps_and_reload_reach_other_processes(h, tmp_path):
    assert [r["ip"] for r in perm.rpc_address_dump()] == ["10.1.1.1", "10.3.3.3"]
    assert perm.rpc_subnet_dump()[0]["mask"] == 16
    assert perm.rpc_domain_dump()[0]["domain"] == "gw.example"
    eng = sa.create_engine(perm.mod.p.db_url)
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO address (grp, ip_addr, mask, port, tag) "
                             "VALUES (1, '10.5.5.5', 32, 0, 'new')"))
    eng.dispose()
    assert status(h, ("10.5.5.5", 5060))[0] == 403
    pid = os.fork()
    if pid == 0:                           # the ctl process reloads
        perm.rpc_address_reload()
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0
    assert status(h, ("10.5.5.5", 5060)) == (200, "src g=1 tag=new")
    if int(perm.mod.p.db_mode) == 1:
        assert perm.rpc_trusted_dump()[0]["tag"] == "peer9"
        perm.rpc_trusted_reload()


def test_address_file(tmp_path):
    f = tmp_path / "addr.list"
    f.write_text("# grp ip mask port tag\n1 127.0.0.1\n1 192.168.0.0 24 0 lan\n")
    h = Harness.from_text(CFG.replace('modparam("permissions", "db_url", "{url}")',
                                      f'modparam("permissions", "address_file", "{f}")')
                          .replace("{db_mode}", "1"))
    assert status(h, ("127.0.0.1", 5060))[0] == 200
    assert status(h, ("192.168.0.77", 5060)) == (200, "src g=1 tag=lan")


def test_allow_routing_register_and_uri(tmp_path):
    (tmp_path / "rt.allow").write_text(
        '# allowed\nALL : "^sip:361[0-9]*@abc\\.com$" EXCEPT "^sip:3613@abc\\.com$"\n'
        '"^sip:boss@" : ALL\n')
    (tmp_path / "rt.deny").write_text('ALL : "^sip:36"\nALL : "^sip:bob@"\n')
    base = str(tmp_path / "rt")
    h = Harness.from_text(f"""
loadmodule "sl"
loadmodule "permissions"
request_route {{
    if (is_method("REGISTER")) {{
        if (allow_register("{base}")) {{ sl_send_reply("200", "reg ok"); exit; }}
        sl_send_reply("403", "reg denied"); exit;
    }}
    $var(u) = "sip:3611@abc.com";
    if (!allow_uri("{base}", "$var(u)")) {{ sl_send_reply("500", "uri"); exit; }}
    if (allow_routing("{base}")) {{ sl_send_reply("200", "ok"); exit; }}
    sl_send_reply("403", "denied");
}}
""".replace('loadmodule "permissions"', 'loadmodule "permissions"\nloadmodule "textops"'))
    assert status(h, ("10.0.0.1", 5060), ruri="sip:3611@abc.com") == (200, "ok")
    assert status(h, ("10.0.0.1", 5060), ruri="sip:3613@abc.com") == (403, "denied")
    assert status(h, ("10.0.0.1", 5060), ruri="sip:bob@b.example") == (403, "denied")
    assert status(h, ("10.0.0.1", 5060), ruri="sip:carol@b.example") == (200, "ok")
    assert status(h, ("10.0.0.1", 5060), frm="sip:boss@x", ruri="sip:3613@abc.com") == \
        (200, "ok")
    reg = ("REGISTER sip:abc.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKr\n"
           "From: <sip:{u}@abc.com>;tag=1\nTo: <sip:{u}@abc.com>\nCall-ID: r1\n"
           "CSeq: 1 REGISTER\nContact: <{c}>\nContent-Length: 0\n\n")
    ok = h.request(reg.format(u="3611", c="sip:3611@abc.com"), src=("10.0.0.1", 5060))
    assert ok.replies[0].status == 200
    bad = h.request(reg.format(u="3611", c="sip:bob@10.0.0.9"), src=("10.0.0.1", 5060))
    assert bad.replies[0].status == 403
    assert perm.rpc_test_uri(base, "sip:x@y", "sip:3613@abc.com") == "Denied"
    assert perm.rpc_allow_uri(base, "sip:x@y", "sip:3612@abc.com") == "Allowed"
    with pytest.raises(RpcFault):
        perm.rpc_address_reload()                      # no source configured
