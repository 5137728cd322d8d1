"""avpops through the Harness: AVPs written, checked, copied, pushed, printed, changed and
substituted as the script sees them (reply headers built from $avp), loaded from, stored to and
deleted from usr_preferences on SQLite, compile-time errors for bad arguments, and AVPs
written by avpops seen in failure_route (after a negative reply and after a timeout)."""
from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import Column, MetaData, Table, insert, select

import modules.avpops as avpops
import modules.tm as tm
from sipcore import db
from sipcore import log as klog
from sipcore.db import schema
from sipcore.errors import ConfigErrors, ModuleError
from sipcore.msg import parse_msg
from sipcore.testing import Harness
from tests.unit.test_tm_relay import invite, reply_to

HEAD = """
loadmodule "sl"
loadmodule "tm"
loadmodule "textops"
loadmodule "avpops"
"""

OPS_CFG = HEAD + """
request_route {
    if ($rU == "write") {
        avp_write("i:42", "$avp(n)");
        avp_write("s:hello", "$avp(s)");
        avp_write("$fu/username", "$avp(fuser)");
        avp_write("$fu/domain", "$avp(fdom)");
        avp_write("x-$rU", "$avp(fmt)");
        avp_write("i:7", "$avp(i:12)");
        if (!is_avp_set("$avp(n)/n") || is_avp_set("$avp(n)/s") || is_avp_set("$avp(nope)")) {
            sl_send_reply("500", "is_avp_set"); exit;
        }
        append_to_reply("X-A: $avp(n) $avp(s) $avp(fuser) $avp(fdom) $avp(fmt) $avp(i:12)\\r\\n");
    }
    if ($rU == "check") {
        $avp(v) = 10; $avp(v) = 20; $avp(name) = "Alice";
        $var(r) = "";
        if (avp_check("$avp(v)", "eq/i:20")) { $var(r) = $var(r) + "eq "; }
        if (avp_check("$avp(v)", "eq/i:10")) { $var(r) = $var(r) + "BAD "; }
        if (avp_check("$avp(v)", "eq/i:10/g")) { $var(r) = $var(r) + "eqg "; }
        if (avp_check("$avp(v)", "gt/15")) { $var(r) = $var(r) + "gt "; }
        if (avp_check("$avp(v)", "and/i:4")) { $var(r) = $var(r) + "and "; }
        if (avp_check("$avp(name)", "eq/s:alice")) { $var(r) = $var(r) + "BAD "; }
        if (avp_check("$avp(name)", "eq/s:alice/i")) { $var(r) = $var(r) + "eqi "; }
        if (avp_check("$avp(name)", "re/^Al.*e$")) { $var(r) = $var(r) + "re "; }
        if (avp_check("$avp(name)", "fm/A*")) { $var(r) = $var(r) + "fm "; }
        $var(x) = "Alice";
        if (avp_check("$avp(name)", "eq/$var(x)")) { $var(r) = $var(r) + "pv "; }
        if (avp_check("$avp(missing)", "ne/s:x")) { $var(r) = $var(r) + "BAD "; }
        append_to_reply("X-Check: $var(r)\\r\\n");
    }
    if ($rU == "copy") {
        $avp(a) = "one"; $avp(a) = "two";
        avp_copy("$avp(a)", "$avp(first)");
        avp_copy("$avp(a)", "$avp(all)/g");
        $avp(num) = "15";
        avp_copy("$avp(num)", "$avp(numi)/n");
        avp_copy("$avp(a)", "$avp(moved)/gd");
        if (avp_copy("$avp(nothing)", "$avp(z)")) { sl_send_reply("500", "copy"); exit; }
        append_to_reply("X-Copy: $avp(first) $(avp(all)[0]) $(avp(all)[1]) "
                        "$(avp(moved)[*]) [$avp(a)] $avp(numi)\\r\\n");
        avp_delete("$avp(all)");
        avp_delete("$avp(moved)/g");
        append_to_reply("X-Del: $(avp(all)[*]) [$avp(moved)]\\r\\n");
        $avp(i:1) = 1; $avp(s1) = "x";
        avp_delete("i");
        append_to_reply("X-Cls: [$avp(i:1)] $avp(s1) $avp(first)\\r\\n");
        avp_delete("a");
        append_to_reply("X-All: [$avp(s1)] [$avp(first)]\\r\\n");
    }
    if ($rU == "op") {
        $avp(n) = 10;
        avp_op("$avp(n)", "add/i:5");
        $avp(m) = 3;
        avp_op("$avp(n)", "mul/$avp(m)");
        avp_op("$avp(n)/$avp(half)", "div/i:2");
        if (avp_op("$avp(n)", "div/i:0")) { sl_send_reply("500", "div0"); exit; }
        $avp(neg) = -7; $avp(neg) = -9;
        avp_op("$avp(neg)/$avp(q)", "div/i:2/g");
        avp_op("$avp(neg)", "mod/i:2/g");
        append_to_reply("X-Op: $avp(n) $avp(half) $(avp(q)[*]) $(avp(neg)[*])\\r\\n");
    }
    if ($rU == "subst") {
        $avp(u) = "sip:alice@old.example.com";
        avp_subst("$avp(u)", "/old\\\\.example\\\\.com/new.$rd/");
        $avp(w) = "a-b-c";
        avp_subst("$avp(w)/$avp(w2)", "/-/+/g");
        avp_subst("$avp(w)/$avp(w3)", "/(a)-(b)/\\\\2\\\\1/");
        if (avp_subst("$avp(w)", "/zzz/y/")) { sl_send_reply("500", "subst"); exit; }
        append_to_reply("X-Subst: $avp(u) $avp(w2) $avp(w3) $avp(w)\\r\\n");
    }
    if ($rU == "push") {
        $avp(target) = "sip:carol@192.0.2.1";
        $avp(user) = "dave";
        avp_pushto("$ru", "$avp(target)");
        avp_pushto("$ru/username", "$avp(user)");
        $avp(proxy) = "sip:127.0.0.1:5099";
        avp_pushto("$du", "$avp(proxy)");
        $avp(br) = "sip:b1@192.0.2.2"; $avp(br) = "sip:b2@192.0.2.3";
        avp_pushto("$br", "$avp(br)/g");
        avp_pushto("$var(copy)", "$avp(user)");
        if (avp_pushto("$du", "$avp(none)")) { sl_send_reply("500", "push"); exit; }
        append_to_reply("X-Push: $ru $du $var(copy)\\r\\n");
        avp_print();
    }
    sl_send_reply("200", "OK");
}
"""


def req(user: str, frm: str = "sip:bob@example.org") -> str:
    cid = uuid.uuid4().hex
    return (f"MESSAGE sip:{user}@example.com SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK{cid[:10]}\n"
            f"From: <{frm}>;tag=f{cid[:5]}\nTo: <sip:{user}@example.com>\n"
            f"Call-ID: {cid}\nCSeq: 1 MESSAGE\nContent-Length: 0\n\n")


def hdr(res, name: str) -> str:
    rpl = res.replies[-1]
    assert rpl.status == 200, (rpl.status, rpl.reason)
    h = rpl.header(name)
    assert h is not None, rpl.buf.decode()
    return h.value


@pytest.fixture
def h():
    for m in (tm.mod, avpops.mod):
        m.reset_params()
    lines = klog.capture()
    level = klog.get_debug()
    klog.set_debug(klog.L_INFO)
    harness = Harness.from_text(OPS_CFG)
    harness.lines = lines
    yield harness
    klog.capture(False)
    klog.set_debug(level)
    for m in (tm.mod, avpops.mod):
        m.reset_params()


def test_avp_write_and_is_avp_set(h):
    assert hdr(h.request(req("write")), "X-A") == "42 hello bob example.org x-write 7"


def test_avp_check_operations_and_flags(h):
    assert hdr(h.request(req("check")), "X-Check") == "eq eqg gt and eqi re fm pv"


def test_avp_copy_and_delete(h):
    res = h.request(req("copy"))
    # newest first: $avp(a)[0] is "two"; /g keeps the order; /gd moves every value
    assert hdr(res, "X-Copy") == "two two one two, one [<null>] 15"
    assert hdr(res, "X-Del") == "one [<null>]"             # without /g only the newest
    assert hdr(res, "X-Cls") == "[<null>] x two"           # "i": every integer-named AVP
    assert hdr(res, "X-All") == "[<null>] [<null>]"        # "a": all AVPs


def test_avp_op(h):
    # C semantics (truncation toward zero); /g keeps the values' order in the destination
    assert hdr(h.request(req("op")), "X-Op") == "45 22 -4, -3 -1, -1"


def test_avp_subst(h):
    assert hdr(h.request(req("subst")), "X-Subst") == \
        "sip:alice@new.example.com a+b+c ba-c a-b-c"


def test_avp_pushto_and_print(h):
    res = h.request(req("push"))
    assert hdr(res, "X-Push") == "sip:dave@192.0.2.1 sip:127.0.0.1:5099 dave"
    assert [b.uri for b in res.ctx.branches] == ["sip:b2@192.0.2.3", "sip:b1@192.0.2.2"]
    printed = [t for _l, t in h.lines if "avp_print:" in t]
    assert any("name=<user>" in t and "value=<dave>" in t for t in printed), printed


@pytest.mark.parametrize("call, msg", [
    ('avp_check("$avp(x)", "like/1")', "unknown operation"),
    ('avp_copy("$avp(x)", "$avp(y)/q")', "unknown flags"),
    ('avp_subst("$avp(x)", "/(/x/")', "bad regular expression"),
    ('avp_pushto("$ru/port", "$avp(x)")', "unknown part"),
    ('avp_delete("$var(x)")', "is not an AVP"),
    ('avp_db_load("$fu/nothing", "$avp(x)")', "unexpected text '/nothing'"),
])
def test_bad_arguments_are_config_errors(call, msg):
    with pytest.raises(ConfigErrors) as exc:
        Harness.from_text(HEAD + f"request_route {{ {call}; }}\n")
    assert msg in str(exc.value)


# ---- the database: usr_preferences ----------------------------------------------------------

DB_CFG = HEAD + """
modparam("avpops", "db_url", "DBURL")
modparam("avpops", "avp_table", "usr_preferences")
request_route {
    if ($rU == "load") {
        if (!avp_db_load("$fu", "$avp(fwd)")) { sl_send_reply("404", "no fwd"); exit; }
        avp_db_load("$fu", "i");
        append_to_reply("X-Fwd: $avp(fwd) $avp(i:10) $(avp(i:10)[*])\\r\\n");
        avp_db_load("dev-1234", "a");
        append_to_reply("X-Uuid: $avp(lang) $avp(vol)\\r\\n");
        avp_db_load("$fu/domain", "$avp(policy)");
        append_to_reply("X-Dom: $avp(policy)\\r\\n");
        if (avp_db_load("$fu", "$avp(nothing)")) { sl_send_reply("500", "loaded"); exit; }
    }
    if ($rU == "store") {
        $avp(pref) = "a"; $avp(pref) = "b";
        $avp(i:20) = 5;
        if (!avp_db_store("$fu", "$avp(pref)") || !avp_db_store("$fu", "$avp(i:20)")) {
            sl_send_reply("500", "store"); exit;
        }
        if (avp_db_store("$fu", "$avp(unset)")) { sl_send_reply("500", "stored"); exit; }
    }
    if ($rU == "delete") {
        avp_db_delete("$fu", "$avp(pref)");
    }
    if ($rU == "other") {
        if (!avp_db_load("$ru/username", "$avp(x)/other_prefs")) {
            sl_send_reply("404", "no x"); exit;
        }
        append_to_reply("X-Other: $avp(x)\\r\\n");
    }
    sl_send_reply("200", "OK");
}
"""


@pytest.fixture
def dbh(tmp_path):
    url = f"sqlite:///{tmp_path / 'prefs.sqlite'}"
    db.create_all(url, ["usr_preferences"])
    assert db.table_version(url, "usr_preferences") == 2          # Kamailio 5.6's version
    prefs = schema.TABLES["usr_preferences"]
    other = Table("other_prefs", MetaData(), *[Column(c.name, c.type, primary_key=c.primary_key)
                                                for c in prefs.columns])
    with db.get_engine(url).begin() as conn:
        other.create(conn)
        conn.execute(insert(prefs), [{"uuid": "", "username": "", "domain": "", **r} for r in [
            {"username": "bob", "domain": "example.org", "attribute": "fwd", "type": 0,
             "value": "sip:voicemail@example.org"},
            {"username": "bob", "domain": "example.org", "attribute": "10", "type": 3,
             "value": "1"},
            {"username": "bob", "domain": "example.org", "attribute": "10", "type": 3,
             "value": "2"},
            {"username": "bob", "attribute": "fwd2", "type": 0, "value": "s-named"},
            {"uuid": "dev-1234", "attribute": "lang", "type": 0, "value": "fr"},
            {"uuid": "dev-1234", "attribute": "vol", "type": 1, "value": "7"},
            {"domain": "example.org", "attribute": "policy", "type": 0, "value": "strict"},
        ]])
        conn.execute(insert(other), [{"uuid": "", "domain": "", "username": "other",
                                      "attribute": "x", "type": 0,
                                      "value": "from-other-table"}])
    for m in (tm.mod, avpops.mod):
        m.reset_params()
    harness = Harness.from_text(DB_CFG.replace("DBURL", url))
    harness.url = url
    yield harness
    for m in (tm.mod, avpops.mod):
        m.reset_params()
    db.dispose_engine(url)


def rows(url: str, username: str) -> list[tuple[str, int, str]]:
    t = schema.TABLES["usr_preferences"]
    with db.get_engine(url).connect() as conn:
        return sorted(conn.execute(select(t.c.attribute, t.c.type, t.c.value)
                                   .where(t.c.username == username)).all())


def test_avp_db_load(dbh):
    res = dbh.request(req("load"))
    assert hdr(res, "X-Fwd").startswith("sip:voicemail@example.org ")
    vals = hdr(res, "X-Fwd").split(" ", 2)
    assert vals[1] in ("1", "2") and sorted(vals[2].split(", ")) == ["1", "2"]
    assert hdr(res, "X-Uuid") == "fr 7"
    assert hdr(res, "X-Dom") == "strict"
    assert [a for a in res.ctx.avps.names() if a == "fwd2"] == []      # "i": integer names
    assert res.ctx.avps.first("vol") == 7                              # type 1: integer


def test_avp_db_load_from_another_table(dbh):
    assert hdr(dbh.request(req("other")), "X-Other") == "from-other-table"


def test_avp_db_store_and_delete(dbh):
    frm = "sip:erin@example.net"
    assert dbh.request(req("store", frm)).replies[-1].status == 200
    assert rows(dbh.url, "erin") == [("20", 3, "5"), ("pref", 0, "a"), ("pref", 0, "b")]
    assert dbh.request(req("delete", frm)).replies[-1].status == 200
    assert rows(dbh.url, "erin") == [("20", 3, "5")]


def test_avp_db_errors(dbh, tmp_path):
    # a table that goes away under a running server: logged, -1, the script goes on
    with db.get_engine(dbh.url).begin() as conn:
        conn.exec_driver_sql("DROP TABLE usr_preferences")
    assert dbh.request(req("load")).replies[-1].status == 404
    assert dbh.request(req("store")).replies[-1].status == 500
    # at start: no usr_preferences table (no version row) is a startup error, as in Kamailio
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    db.create_all(url, ["subscriber"])
    avpops.mod.reset_params()
    with pytest.raises(ModuleError, match="usr_preferences has version None"):
        Harness.from_text(DB_CFG.replace("DBURL", url))
    db.dispose_engine(url)


# ---- AVPs follow the transaction into failure_route ------------------------------------------

FAIL_CFG = HEAD + """
loadmodule "tmx"
modparam("tm", "fr_inv_timer", 200)
modparam("tm", "fr_timer", 200)
request_route {
    if (is_method("ACK")) { t_check_trans(); exit; }
    avp_write("caller-$fU", "$avp(who)");
    avp_write("i:3", "$avp(tries)");
    t_on_failure("F");
    $du = "sip:127.0.0.1:5090";
    t_relay();
}
failure_route[F] {
    avp_op("$avp(tries)", "sub/i:1");
    t_reply("480", "who=$avp(who) tries=$avp(tries) code=$T_reply_code");
}
"""


@pytest.fixture
def fh():
    tm.mod.reset_params()
    yield Harness.from_text(FAIL_CFG)
    tm.mod.reset_params()


def test_avps_seen_in_failure_route_after_a_negative_reply(fh):
    res = fh.request(invite("bob", n="f1", callid="fail-1"))
    fwd = [b for d, b in res.sent if d.port == 5090][0]
    out = fh.reply(reply_to(fwd, 486, "Busy Here"))
    up = [parse_msg(b) for d, b in out.sent if d.port == 5080]
    assert [(m.status, m.reason) for m in up] == [(480, "who=caller-alice tries=2 code=486")]


def test_avps_seen_in_failure_route_after_a_timeout(fh):
    fh.request(invite("bob", n="f2", callid="fail-2"))
    before = len(fh.core.sent)
    deadline = time.monotonic() + 3
    up = []
    while time.monotonic() < deadline and not up:
        time.sleep(0.05)
        fh.run_timers()
        up = [parse_msg(b) for d, b in fh.core.sent[before:] if d.port == 5080
              and parse_msg(b).status >= 300]
    assert [(m.status, m.reason) for m in up] == [(480, "who=caller-alice tries=2 code=408")]
