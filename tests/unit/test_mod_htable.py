"""htable through the Harness with real SIP messages, plus fork tests for shm sharing."""
from __future__ import annotations

import os
import time

import pytest

from modules import htable
from modules.htable import ht_api, ht_rpc
from modules.htable.ht_spec import parse_table_spec
from sipcore.errors import RpcFault
from sipcore.testing import Harness

HEAD = """
loadmodule "sl"
loadmodule "htable"
loadmodule "xlog"
modparam("htable", "htable", "ipban=>size=8;autoexpire=300;")
modparam("htable", "htable", "cnt=>size=4;initval=0;")
modparam("htable", "htable", "s=>size=4;")
modparam("htable", "htable", "short=>size=3;autoexpire=1;")
"""


def req(method: str = "OPTIONS", user: str = "alice", cid: str = "c1") -> str:
    return (f"{method} sip:bob@b.example SIP/2.0\n"
            f"Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK{cid}\n"
            f"From: <sip:{user}@a.example>;tag=1\n"
            f"To: <sip:bob@b.example>\n"
            f"Call-ID: {cid}\n"
            f"CSeq: 1 {method}\n"
            f"Content-Length: 0\n\n")


def harness(body: str, extra: str = "") -> Harness:
    return Harness.from_text(HEAD + extra + "\nrequest_route {\n" + body + "\n}\n")


def code(res) -> int:
    return res.replies[0].status if res.replies else 0


def test_table_spec_parsing():
    s = parse_table_spec("a=>size=4;autoexpire=7200;dbtable=htable_a;initval=3;updateexpire=0")
    assert (s.name, s.slots, s.autoexpire, s.dbtable, s.initval, s.updateexpire) == \
        ("a", 16, 7200, "htable_a", 3, 0)
    with pytest.raises(ValueError):
        parse_table_spec("b=>size=1")
    with pytest.raises(ValueError):
        parse_table_spec("nosep")
    with pytest.raises(ValueError):
        parse_table_spec("c=>color=1")
    assert parse_table_spec("d=>cols='k,v1,v2';dbtable=x").cols == ("k", "v1", "v2")


def test_ipban_flow_with_sht_and_null():
    h = harness("""
        if ($fU == "unban") { $sht(ipban=>$si) = $null; }
        if ($sht(ipban=>$si) != $null) { sl_send_reply("403", "Banned"); exit; }
        if ($fU == "bad") { $sht(ipban=>$si) = 1; sl_send_reply("429", "Now banned"); exit; }
        sl_send_reply("200", "OK");
    """)
    assert code(h.request(req())) == 200
    assert code(h.request(req(user="bad"))) == 429
    assert code(h.request(req())) == 403
    assert code(h.request(req(), src=("10.9.9.9", 5060))) == 200
    assert ht_api.get_table("ipban").get("127.0.0.1") == 1
    item = ht_api.get_table("ipban").get_item("127.0.0.1")
    assert item is not None and 299 <= item.expires <= 300
    h.request(req(user="unban"))
    assert ht_api.get_table("ipban").get("127.0.0.1") is None


def test_inc_dec_initval_strings_and_expire_pv():
    h = harness("""
        $var(a) = $shtinc(cnt=>$fU);
        $var(a) = $shtinc(cnt=>$fU);
        $var(b) = $shtdec(cnt=>$fU);
        $sht(s=>name) = "value-" + $fU;
        $sht(s=>num) = 7;
        $shtex(s=>num) = 50;
        if ($sht(cnt=>missing) == 0 && $var(b) == 1 && $sht(s=>name) == "value-alice"
            && $shtex(s=>num) >= 49 && $shtex(s=>name) == 0) {
            sl_send_reply("200", "OK");
        } else {
            sl_send_reply("500", "bad $var(a) $var(b)");
        }
    """)
    assert code(h.request(req())) == 200
    assert ht_api.get_table("cnt").get("alice") == 1
    assert ht_api.get_table("s").get("num") == 7


def test_count_pvs_and_match_and_rm():
    h = harness("""
        $sht(s=>user:alice) = "gold";
        $sht(s=>user:bob) = "silver";
        $sht(s=>user:carol) = "gold";
        $sht(s=>other) = 5;
        $var(n) = $shtcn(s=>%~user:);
        $var(v) = $shtcv(s=>==gold);
        $var(all) = $shtcn(s=>**);
        $var(e) = $shtcv(s=>eq5);
        if ($var(n) != 3 || $var(v) != 2 || $var(all) != 4 || $var(e) != 1) {
            sl_send_reply("500", "counts $var(n) $var(v) $var(all) $var(e)"); exit;
        }
        if (!sht_match_name("s", "sw", "user:")) { sl_send_reply("500", "match"); exit; }
        if (sht_match_name("s", "eq", "nobody")) { sl_send_reply("500", "match2"); exit; }
        if (!sht_match_str_value("s", "re", "^sil")) { sl_send_reply("500", "val"); exit; }
        sht_rm_value_re("s=>^gol");
        if ($shtcn(s=>**) != 2) { sl_send_reply("500", "rm_value_re"); exit; }
        sht_rm_name_re("s=>^user:");
        sht_rm("s", "other");
        if ($shtcn(s=>**) != 0) { sl_send_reply("500", "rm"); exit; }
        sl_send_reply("200", "OK");
    """)
    res = h.request(req())
    assert code(res) == 200, res.replies[0].reason if res.replies else res


def test_rm_name_value_ops_setx_reset():
    h = harness("""
        sht_setxs("s", "k1", "abc", 0);
        sht_setxi("s", "k2", 42, 100);
        sht_setxs("s", "pre-1", "x", 0);
        sht_setxs("s", "pre-2", "abx", 0);
        sht_rm_name("s", "sw", "pre-");
        sht_rm_value("s", "re", "^ab");
        if ($shtcn(s=>**) != 1 || $sht(s=>k2) != 42 || $shtex(s=>k2) < 99) {
            sl_send_reply("500", "ops"); exit;
        }
        sht_reset("s");
        if ($shtcn(s=>**) != 0) { sl_send_reply("500", "reset"); exit; }
        sl_send_reply("200", "OK");
    """)
    assert code(h.request(req())) == 200


def test_iterator():
    h = harness("""
        $sht(s=>a) = 1; $sht(s=>b) = 2; $sht(s=>c) = 3;
        $var(sum) = 0; $var(keys) = "";
        sht_iterator_start("i1", "s");
        while (sht_iterator_next("i1")) {
            $var(sum) = $var(sum) + $shtitval(i1);
            if ($shtitkey(i1) == "b") { sht_iterator_seti("i1", 20); }
            if ($shtitkey(i1) == "c") { sht_iterator_rm("i1"); }
        }
        sht_iterator_end("i1");
        if ($var(sum) == 6 && $sht(s=>b) == 20 && $sht(s=>c) == $null) {
            sl_send_reply("200", "OK");
        } else { sl_send_reply("500", "sum $var(sum)"); }
    """)
    assert code(h.request(req())) == 200
    assert not ht_api.ITERATORS


def test_lock_is_reentrant_and_unlock_checks_holder():
    h = harness("""
        sht_lock("cnt=>k");
        sht_lock("cnt=>k");
        $sht(cnt=>k) = $sht(cnt=>k) + 1;
        sht_unlock("cnt=>k");
        sht_unlock("cnt=>k");
        if (sht_unlock("cnt=>k")) { sl_send_reply("500", "unlock not held"); exit; }
        sl_send_reply("200", "OK");
    """)
    assert code(h.request(req())) == 200
    t = ht_api.get_table("cnt")
    assert all(lk.owner == 0 for lk in (t.locks[i] for i in range(len(t.locks))))


def test_unknown_table_is_a_config_error():
    from sipcore.errors import ConfigErrors

    with pytest.raises(ConfigErrors, match="nosuch"):
        harness('if ($sht(nosuch=>x) == 1) { drop; }')


def test_expired_event_route_and_mod_init_event():
    h = harness("""
        $sht(short=>$fU) = "v";
        sl_send_reply("200", "OK");
    """, extra="""
event_route[htable:mod-init] {
    $sht(s=>started) = 1;
}
event_route[htable:expired:short] {
    $sht(s=>expired-$shtrecord(key)) = $shtrecord(value);
}
""")
    assert ht_api.get_table("s").get("started") == 1
    h.request(req())
    assert ht_api.get_table("short").get("alice") == "v"
    time.sleep(1.05)
    assert ht_api.get_table("short").get("alice") is None        # invisible at once
    assert htable.sweep_expired() == 1
    assert ht_api.get_table("s").get("expired-alice") == "v"
    assert len(ht_api.get_table("short").table) == 0


def test_updateexpire_zero_keeps_expiry():
    Harness.from_text(HEAD + 'modparam("htable", "htable", "k=>size=3;autoexpire=100;'
                      'updateexpire=0;")\nrequest_route { drop; }\n')
    t = ht_api.get_table("k")
    t.set("a", 1)
    first = t.get_item("a").expires
    time.sleep(0.05)
    t.set("a", 2)
    assert t.get("a") == 2 and t.get_item("a").expires <= first
    assert t.add_int("a", 5) == 7 and t.get_item("a").expires <= first


def test_rpcs():
    harness("drop;")
    ht_rpc.sets("s", "k", "v")
    ht_rpc.seti("s", "n", "12")
    assert ht_rpc.get("s", "k") == {"item": {"name": "k", "value": "v"}}
    assert ht_rpc.get("s", "n")["item"]["value"] == 12
    dumped = {e["name"]: (e["value"], e["type"]) for slot in ht_rpc.dump("s")
              for e in slot["slot"]}
    assert dumped == {"k": ("v", "str"), "n": (12, "int")}
    ht_rpc.setxi("s", "x", 1, 100)
    ht_rpc.setex("s", "x", 10)
    assert 9 <= ht_api.get_table("s").get_item("x").expires <= 10
    ht_rpc.delete("s", "k")
    with pytest.raises(RpcFault):
        ht_rpc.get("s", "k")
    with pytest.raises(RpcFault):
        ht_rpc.get("nosuch", "k")
    names = {t["name"] for t in ht_rpc.list_tables()}
    assert names == {"ipban", "cnt", "s", "short"}
    st = {s["name"]: s for s in ht_rpc.stats()}
    assert st["s"]["all"] == 2 and st["s"]["slots"] == 16
    ht_rpc.flush("s")
    assert ht_rpc.dump("s") == []
    with pytest.raises(RpcFault):
        htable.mod.rpcs["htable.reload"].handler("s")      # no dbtable


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_workers_share_values_and_increments_are_atomic():
    """Forked processes (like SIP workers) see each other's values; $shtinc loses nothing."""
    h = harness("$var(x) = $shtinc(cnt=>hits); drop;")
    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            code_ = 0
            try:
                for _ in range(300):
                    h.request(req())
            except Exception:  # noqa: BLE001 - reported through the exit status
                code_ = 1
            os._exit(code_)
        pids.append(pid)
    for _ in range(300):
        h.request(req())
    assert [_wait(p) for p in pids] == [0, 0, 0]
    assert ht_api.get_table("cnt").get("hits") == 1200

    pid = os.fork()
    if pid == 0:
        ht_api.get_table("s").set("from-child", "hello")
        os._exit(0)
    assert _wait(pid) == 0
    assert ht_api.get_table("s").get("from-child") == "hello"


def test_script_lock_is_robust_when_holder_dies():
    harness("drop;")
    t = ht_api.get_table("cnt")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        t.script_lock("k")
        os.write(w, b"x")
        time.sleep(30)
        os._exit(0)
    os.read(r, 1)
    os.kill(pid, 9)
    _wait(pid)
    os.close(r)
    os.close(w)
    t.script_lock("k")            # recovers the dead owner's lock
    assert t.script_unlock("k")


def test_db_load_reload_and_write_back(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'ht.db'}"
    eng = sa.create_engine(url)
    md = sa.MetaData()
    t = sa.Table("htable", md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("key_name", sa.String(64)), sa.Column("key_type", sa.Integer),
                 sa.Column("value_type", sa.Integer), sa.Column("key_value", sa.String(128)),
                 sa.Column("expires", sa.Integer))
    md.create_all(eng)
    with eng.begin() as conn:
        conn.execute(sa.insert(t), [
            {"key_name": "gw", "key_type": 0, "value_type": 0, "key_value": "10.0.0.1",
             "expires": 0},
            {"key_name": "max", "key_type": 0, "value_type": 1, "key_value": "5", "expires": 0},
            {"key_name": "arr", "key_type": 1, "value_type": 0, "key_value": "a", "expires": 0},
            {"key_name": "arr", "key_type": 1, "value_type": 0, "key_value": "b", "expires": 0}])
    h = Harness.from_text(f"""
loadmodule "htable"
modparam("htable", "db_url", "{url}")
modparam("htable", "htable", "d=>size=4;dbtable=htable;dbmode=1;")
request_route {{ drop; }}
""")
    d = ht_api.get_table("d")
    assert (d.get("gw"), d.get("max"), d.get("arr[0]"), d.get("arr[1]"), d.get("arr::size")) \
        == ("10.0.0.1", 5, "a", "b", 2)
    d.set("new", 7)
    for hook in htable.mod.destroy_hooks:          # shutdown: dbmode=1 writes the table back
        hook(htable.mod.context)
    with eng.connect() as conn:
        rows = {r.key_name: (r.value_type, r.key_value) for r in conn.execute(sa.select(t))}
    assert rows["new"] == (1, "7") and rows["gw"] == (0, "10.0.0.1")
    with eng.begin() as conn:
        conn.execute(sa.delete(t).where(t.c.key_name == "new"))
    htable.mod.rpcs["htable.reload"].handler("d")
    assert d.get("new") is None and d.get("max") == 5
    eng.dispose()
