"""usrloc: the packed contact records, the shm domain (update, expiry, write-back states,
statistics), matching modes, the ul.* RPCs, DB failures, and preload - through a harness so
the module runs with a real (private) shm segment and the timer API."""
from __future__ import annotations

import time

import pytest

import modules.usrloc as ul
from modules.usrloc.ucontact import (
    CS_DELETED,
    CS_DIRTY,
    CS_NEW,
    CS_SYNC,
    Contact,
    pack_record,
    unpack_record,
)
from sipcore import db
from sipcore.errors import RpcFault
from sipcore.testing import Harness

from .test_db_engine import temp_db


def harness(params: str = "") -> Harness:
    return Harness.from_text(f'loadmodule "usrloc"\n{params}\nrequest_route {{ exit; }}\n')


def contact(uri: str, ttl: int = 3600, **kw) -> Contact:
    now = int(time.time())
    kw.setdefault("ruid", ul.api.new_ruid())
    return Contact(c=uri, expires=now + ttl if ttl else 0, last_modified=now, **kw)


def add(dom, aor: str, *cts: Contact):
    return dom.update(aor, lambda cur: cur + list(cts))


def test_record_round_trip_is_compact_bytes():
    cts = [contact("sip:a@192.0.2.1", q=500, callid="c1", cseq=7, flags=1, cflags=64,
                   user_agent="ua/1 ü", received="sip:198.51.100.1:5060",
                   path="<sip:p1;lr>,<sip:p2;lr>", socket="udp:127.0.0.1:5060", methods=33,
                   instance='"<urn:uuid:1>"', reg_id=2, conn_id=9),
           contact("sip:b@192.0.2.2", ttl=0)]
    raw = pack_record(cts)
    assert isinstance(raw, bytes) and b"pickle" not in raw and len(raw) < 400
    assert unpack_record(raw) == cts
    assert cts[1].expires == 0 and not cts[1].is_expired()      # permanent


def test_update_get_sort_and_stats():
    harness()
    dom = ul.get_domain("location")
    add(dom, "alice", contact("sip:a@1", q=100), contact("sip:a@2", q=900),
        contact("sip:a@3"))
    assert [c.c for c in dom.get("alice")] == ["sip:a@3", "sip:a@2", "sip:a@1"]
    assert dom.get("nobody") == []
    assert list(dom.dump()) == ["alice"]
    assert dom.delete_aor("alice") and not dom.delete_aor("alice")
    assert dom.get("alice") == []


def test_desc_time_order():
    harness('modparam("usrloc", "desc_time_order", 1)')
    dom = ul.get_domain("location")
    old = contact("sip:a@1", q=1000)
    old.last_modified -= 100
    add(dom, "alice", old, contact("sip:a@2", q=100))
    assert [c.c for c in dom.get("alice")] == ["sip:a@2", "sip:a@1"]


@pytest.mark.parametrize("mode,uri,callid,path,want", [
    (0, "sip:a@1", "other", "", True),
    (1, "sip:a@1", "other", "", False),
    (1, "sip:a@1", "cid", "", True),
    (2, "sip:a@1", "x", "<sip:p;lr>", True),
    (2, "sip:a@1", "x", "<sip:q;lr>", False),
    (3, "sip:zzz@9", "cid", "", True),
])
def test_matching_modes(mode, uri, callid, path, want):
    harness(f'modparam("usrloc", "matching_mode", {mode})')
    stored = [contact("sip:a@1", callid="cid", path="<sip:p;lr>")]
    assert (ul.api.match_contact(stored, uri, callid, path) is not None) is want


def test_instance_and_reg_id_match_first():
    harness()
    stored = [contact("sip:a@1", instance='"<urn:uuid:1>"', reg_id=1)]
    assert ul.api.match_contact(stored, "sip:new@2", "x", "", '"<urn:uuid:1>"', 1) is stored[0]
    assert ul.api.match_contact(stored, "sip:new@2", "x", "", '"<urn:uuid:1>"', 2) is None


def test_timer_expires_contacts_and_counts():
    h = harness('modparam("usrloc", "timer_interval", 1)')
    dom = ul.get_domain("location")
    c0 = ul.stats.get("usrloc:location-contacts")
    e0 = ul.stats.get("usrloc:location-expires")
    gone = contact("sip:a@1")
    gone.expires = int(time.time()) - 1
    add(dom, "alice", gone, contact("sip:a@2"))
    assert [c.c for c in dom.get("alice")] == ["sip:a@2"]       # invisible at once
    time.sleep(1.05)
    h.run_timers()
    assert len(dom.table.get(b"alice")) < len(pack_record([gone, contact("sip:a@2")]))
    assert ul.stats.get("usrloc:location-contacts") - c0 == 1
    assert ul.stats.get("usrloc:location-expires") - e0 == 1
    assert dom.timer() == 0


def test_write_back_states_and_tombstones(tmp_path):
    with temp_db("sqlite", tmp_path) as url:
        db.create_all(url, ["location"])
        harness(f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 2)')
        dom = ul.get_domain("location")
        c1, c2 = contact("sip:a@1"), contact("sip:a@2")
        add(dom, "alice", c1, c2)
        states = {c.c: c.state for c in unpack_record(dom.table.get(b"alice"))}
        assert states == {"sip:a@1": CS_NEW, "sip:a@2": CS_NEW}
        dom.flush()
        assert {c.state for c in unpack_record(dom.table.get(b"alice"))} == {CS_SYNC}
        assert dom.db.count_contacts() == 2
        # change one, delete the other: DIRTY and a tombstone until the next flush
        dom.update("alice", lambda cur: [c.copy(cseq=9) for c in cur if c.c == "sip:a@1"])
        states = {c.c: c.state for c in unpack_record(dom.table.get(b"alice"))}
        assert states == {"sip:a@1": CS_DIRTY, "sip:a@2": CS_DELETED}
        assert [c.c for c in dom.get("alice")] == ["sip:a@1"]
        dom.flush()
        assert [c.cseq for c in dom.db.get_aor("alice")] == [9]
        assert [c.state for c in unpack_record(dom.table.get(b"alice"))] == [CS_SYNC]
        # a contact added and removed between flushes never reaches the DB
        add(dom, "bob", contact("sip:b@1"))
        dom.delete_aor("bob")
        assert dom.table.get(b"bob") is None


def test_rpcs():
    harness('modparam("usrloc", "preload", "location")')   # the RPCs see registered domains
    assert ul.rpc_add("location", "alice@example.com", "sip:alice@192.0.2.1", 600, 0.5,
                      "0", 0, 64, -1, "sip:198.51.100.1:5060", ".") == {}
    ul.rpc_add("location", "alice", "sip:alice@192.0.2.2", 0, -1, ".", 0, 0, -1)
    out = ul.rpc_dump()
    (dom,) = out["Domains"]
    assert dom["Domain"]["Domain"] == "location"
    (rec,) = dom["Domain"]["AoRs"]
    assert rec["Info"]["AoR"] == "alice"
    by_addr = {c["Contact"]["Address"]: c["Contact"] for c in rec["Info"]["Contacts"]}
    assert by_addr["sip:alice@192.0.2.2"]["Expires"] == "permanent"
    one = by_addr["sip:alice@192.0.2.1"]
    assert 599 <= one["Expires"] <= 600 and one["Q"] == 0.5 and one["CFlags"] == 64
    assert one["Received"] == "sip:198.51.100.1:5060" and one["Path"] == "[not set]"
    brief = ul.rpc_dump("brief")["Domains"][0]["Domain"]["AoRs"][0]["Info"]["Contacts"]
    assert {c["Contact"]["Address"] for c in brief} == set(by_addr)
    assert len(ul.rpc_lookup("location", "sip:alice@example.com")["Contacts"]) == 2
    ul.rpc_rm_contact("location", "alice", "sip:alice@192.0.2.2")
    with pytest.raises(RpcFault, match="Contact not found"):
        ul.rpc_rm_contact("location", "alice", "sip:alice@192.0.2.2")
    ul.rpc_rm("location", "alice")
    with pytest.raises(RpcFault) as ei:
        ul.rpc_lookup("location", "alice")
    assert ei.value.code == 404
    with pytest.raises(RpcFault, match="Domain not found"):
        ul.rpc_lookup("nosuch", "alice")
    with pytest.raises(RpcFault, match="db_mode=0"):
        ul.rpc_db_users("location")
    assert ul.rpc_flush() == {}


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
def test_db_rpcs_and_preload(kind, tmp_path):
    with temp_db(kind, tmp_path) as url:
        db.create_all(url, ["location"])
        params = (f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 1)\n'
                  'modparam("usrloc", "use_domain", 1)\n'
                  'modparam("usrloc", "preload", "location")')
        harness(params)
        ul.rpc_add("location", "alice@example.com", "sip:alice@192.0.2.1", 600, 1, "0", 0, 0,
                   -1)
        ul.rpc_add("location", "bob@example.com", "sip:bob@192.0.2.2", 0, 1, "0", 0, 0, -1)
        ul.rpc_add("location", "bob@example.com", "sip:bob@192.0.2.3", 600, 1, "0", 0, 0, -1)
        assert ul.rpc_db_users("location") == 2
        assert ul.rpc_db_contacts("location") == 3
        assert ul.rpc_db_expired_contacts("location") == 0
        harness(params)                                  # a restart: preload from the DB
        dom = ul.get_domain("location")
        assert sorted(dom.dump()) == ["alice@example.com", "bob@example.com"]
        bob = {c.c: c for c in dom.get("bob@example.com")}
        assert bob["sip:bob@192.0.2.2"].expires == 0         # permanent survives the DB
        assert 590 <= bob["sip:bob@192.0.2.3"].expires_in() <= 600


def test_db_down_is_an_error_not_a_crash():
    url = "postgres://postgres@127.0.0.1:1/none"
    harness(f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 3)')
    dom = ul.get_domain("location")
    with pytest.raises(db.DbError):
        dom.get("alice")
    with pytest.raises(RpcFault, match="database error"):
        ul.rpc_lookup("location", "alice")
    dom.timer()          # the timer job logs and carries on
    db.dispose_engine(url)


def test_bad_db_mode_rejected():
    from sipcore.errors import ModuleError

    with pytest.raises(ModuleError, match="db_mode"):
        harness('modparam("usrloc", "db_mode", 7)')


def test_oversized_field_is_an_rpc_fault():
    harness('modparam("usrloc", "preload", "location")')
    with pytest.raises(RpcFault, match="too long"):
        ul.rpc_add("location", "alice", "sip:alice@192.0.2.1", 60, 1, "<sip:p;lr>" * 7000,
                   0, 0, -1)
    assert ul.get_domain("location").get("alice") == []


def test_write_back_race_between_timer_and_workers(tmp_path, monkeypatch):
    """A worker changes or removes a NEW contact while the timer inserts its row: the contact
    becomes DIRTY (next round UPDATEs, no duplicate INSERT) or the row is deleted."""
    with temp_db("sqlite", tmp_path) as url:
        db.create_all(url, ["location"])
        harness(f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 2)')
        dom = ul.get_domain("location")
        add(dom, "alice", contact("sip:a@1"))
        add(dom, "bob", contact("sip:b@1"))
        real = dom.db.write_batch

        def racing_write(ins, upd, dels):
            real(ins, upd, dels)             # the rows are in; now the workers act
            dom.update("alice", lambda cur: [c.copy(cseq=5) for c in cur])
            dom.delete_aor("bob")

        monkeypatch.setattr(dom.db, "write_batch", racing_write)
        dom.flush()
        monkeypatch.setattr(dom.db, "write_batch", real)
        assert [c.state for c in unpack_record(dom.table.get(b"alice"))] == [CS_DIRTY]
        assert dom.db.get_aor("bob") == []                   # orphan row deleted
        dom.flush()                                          # UPDATE, not a second INSERT
        assert [c.cseq for c in dom.db.get_aor("alice")] == [5]
        assert [c.state for c in unpack_record(dom.table.get(b"alice"))] == [CS_SYNC]
