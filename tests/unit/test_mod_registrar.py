"""registrar over usrloc through the harness: real REGISTER/INVITE messages, the replies sent,
the R-URI and branches lookup() leaves, expiry by the usrloc timer, and every db_mode against
SQLite, PostgreSQL and MariaDB (each in its own temporary database)."""
from __future__ import annotations

import time
import uuid

import pytest

from sipcore import db, stats
from sipcore.testing import Harness

from .test_db_engine import temp_db

BASE = """
loadmodule "sl"
loadmodule "textops"
loadmodule "xlog"
loadmodule "pv"
loadmodule "kex"
loadmodule "corex"
loadmodule "usrloc"
loadmodule "registrar"
{params}
request_route {{
    if (is_method("REGISTER")) {{
        {save}
        exit;
    }}
    {lookup}
    if ($rc == -1) {{ sl_send_reply("404", "Not Found"); exit; }}
    if ($rc == -2) {{ sl_send_reply("405", "Method Not Allowed"); exit; }}
    if ($rc < 0) {{ sl_send_reply("500", "Error"); exit; }}
    sl_send_reply("302", "Moved");
}}
"""


def harness(params: str = "", save: str = 'save("location");',
            lookup: str = 'lookup("location");') -> Harness:
    return Harness.from_text(BASE.format(params=params, save=save, lookup=lookup))


def register(user: str = "alice", contacts: str = "<sip:alice@192.0.2.10:5070>",
             callid: str | None = None, cseq: int = 1, expires: int | None = None,
             extra: str = "") -> str:
    callid = callid or uuid.uuid4().hex
    lines = ["REGISTER sip:127.0.0.1 SIP/2.0",
             f"Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK{uuid.uuid4().hex[:12]}",
             "Max-Forwards: 70",
             f"From: <sip:{user}@127.0.0.1>;tag=f{cseq}",
             f"To: <sip:{user}@127.0.0.1>",
             f"Call-ID: {callid}",
             f"CSeq: {cseq} REGISTER"]
    if contacts:
        lines.append(f"Contact: {contacts}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if extra:
        lines.extend(extra.strip().splitlines())
    return "\n".join(lines) + "\nContent-Length: 0\n\n"


def invite(user: str = "alice", method: str = "INVITE") -> str:
    return (f"{method} sip:{user}@127.0.0.1 SIP/2.0\n"
            f"Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK{uuid.uuid4().hex[:12]}\n"
            "Max-Forwards: 70\nFrom: <sip:bob@127.0.0.1>;tag=b1\n"
            f"To: <sip:{user}@127.0.0.1>\nCall-ID: {uuid.uuid4().hex}\nCSeq: 1 {method}\n"
            "Content-Length: 0\n\n")


def reply_of(res):
    (rep,) = res.replies
    return rep


def contacts_of(rep) -> dict[str, dict]:
    out = {}
    for na in rep.contacts.contacts:
        out[na.uri] = dict(na.params)
    return out


# ---- save() ------------------------------------------------------------------------------------

def test_register_200_lists_every_binding_with_expires():
    h = harness()
    c0, u0 = stats.get("usrloc:location-contacts"), stats.get("usrloc:location-users")
    r = h.request(register(contacts="<sip:alice@192.0.2.10:5070>;q=0.5, "
                           "<sip:alice@198.51.100.1:5080>", expires=600))
    assert r.rc == 1
    rep = reply_of(r)
    assert rep.status == 200
    cts = contacts_of(rep)
    assert set(cts) == {"sip:alice@192.0.2.10:5070", "sip:alice@198.51.100.1:5080"}
    assert all(599 <= int(p["expires"]) <= 600 for p in cts.values())
    assert cts["sip:alice@192.0.2.10:5070"]["q"] == "0.5"
    # a second device of the same AoR adds a binding; the reply lists all three
    r = h.request(register(contacts="<sip:alice@203.0.113.5>;expires=120"))
    assert r.rc == 1
    cts = contacts_of(reply_of(r))
    assert len(cts) == 3 and 119 <= int(cts["sip:alice@203.0.113.5"]["expires"]) <= 120
    # statistics are process-wide counters here (no shm attached): compare differences
    assert stats.get("usrloc:location-contacts") - c0 == 3
    assert stats.get("usrloc:location-users") - u0 == 1


def test_refresh_updates_and_query_lists():
    h = harness()
    cid = uuid.uuid4().hex
    assert h.request(register(callid=cid, cseq=1, expires=300)).rc == 1
    r = h.request(register(callid=cid, cseq=2, expires=900))
    assert r.rc == 2
    assert 899 <= int(contacts_of(reply_of(r))["sip:alice@192.0.2.10:5070"]["expires"]) <= 900
    r = h.request(register(contacts=""))                  # no Contact: a query
    assert r.rc == 4 and len(contacts_of(reply_of(r))) == 1


def test_min_expires_423_and_raise_and_max_expires():
    h = harness('modparam("registrar", "min_expires_mode", 1)\n'
                'modparam("registrar", "min_expires", 120)')
    r = h.request(register(expires=30))
    rep = reply_of(r)
    assert r.rc == -1 and (rep.status, rep.reason) == (423, "Interval Too Brief")
    assert rep.header("Min-Expires").value == "120"
    h = harness('modparam("registrar", "min_expires", 120)\n'
                'modparam("registrar", "max_expires", 1800)')
    rep = reply_of(h.request(register(expires=30)))
    assert 119 <= int(contacts_of(rep)["sip:alice@192.0.2.10:5070"]["expires"]) <= 120
    rep = reply_of(h.request(register(expires=7200)))
    assert 1799 <= int(contacts_of(rep)["sip:alice@192.0.2.10:5070"]["expires"]) <= 1800


def test_default_expires_when_none_given():
    h = harness('modparam("registrar", "default_expires", 1234)')
    rep = reply_of(h.request(register()))
    assert 1233 <= int(contacts_of(rep)["sip:alice@192.0.2.10:5070"]["expires"]) <= 1234


@pytest.mark.parametrize("contacts,expires,reason", [
    ("<sip:alice@192.0.2.10>;expires=abc", None, "Invalid expires param in contact"),
    ("<sip:alice@192.0.2.10>;q=7", None, "Invalid q param in contact"),
    ("*", 60, "* used in contact and expires is not zero"),
    ("*", None, "* used in contact and expires is not zero"),
    ("<sip:alice@192.0.2.10", None, "Contact parse error"),
])
def test_bad_contact_or_expires_400(contacts, expires, reason):
    """Kamailio's reply: "400 Bad Request" with the detail in P-Registrar-Error."""
    h = harness()
    r = h.request(register(contacts=contacts, expires=expires))
    rep = reply_of(r)
    assert r.rc == -1 and (rep.status, rep.reason) == (400, "Bad Request")
    assert rep.header("P-Registrar-Error").value == reason
    assert stats.get("registrar:rejected_regs") >= 1


def test_star_with_expires_0_removes_all():
    h = harness()
    c0 = stats.get("usrloc:location-contacts")
    h.request(register(contacts="<sip:alice@192.0.2.10>, <sip:alice@192.0.2.11>"))
    assert h.request(invite()).rc == 1
    r = h.request(register(contacts="*", expires=0))
    rep = reply_of(r)
    assert r.rc == 3 and rep.status == 200 and not rep.contacts.contacts
    assert reply_of(h.request(invite())).status == 404
    assert stats.get("usrloc:location-contacts") == c0


def test_expires_0_removes_one_binding():
    h = harness()
    h.request(register(contacts="<sip:alice@192.0.2.10>, <sip:alice@192.0.2.11>"))
    r = h.request(register(contacts="<sip:alice@192.0.2.11>;expires=0"))
    assert r.rc == 3
    assert list(contacts_of(reply_of(r))) == ["sip:alice@192.0.2.10"]


def test_cseq_rules_of_rfc3261_10_3():
    h = harness()
    cid = uuid.uuid4().hex
    assert h.request(register(callid=cid, cseq=5)).rc == 1
    r = h.request(register(callid=cid, cseq=4))                # older CSeq, same Call-ID
    rep = reply_of(r)
    assert r.rc == -1 and (rep.status, rep.reason) == (400, "Bad Request")
    assert rep.header("P-Registrar-Error").value == "Invalid CSeq number"
    # another Call-ID may use any CSeq (a new registration of the same contact)
    assert h.request(register(callid=uuid.uuid4().hex, cseq=1)).rc == 2


def test_max_contacts_and_single_contact_flag():
    h = harness('modparam("registrar", "max_contacts", 2)')
    h.request(register(contacts="<sip:alice@192.0.2.10>, <sip:alice@192.0.2.11>"))
    r = h.request(register(contacts="<sip:alice@192.0.2.12>"))
    rep = reply_of(r)
    assert r.rc == -2 and rep.status == 503
    h = harness(save='save("location", "0x04");')
    h.request(register(contacts="<sip:alice@192.0.2.10>, <sip:alice@192.0.2.11>"))
    r = h.request(register(contacts="<sip:alice@192.0.2.12>"))
    assert list(contacts_of(reply_of(r))) == ["sip:alice@192.0.2.12"]


def test_no_reply_flag_then_reg_send_reply():
    h = harness(save='save("location", "2"); xlog("L_INFO", "saved $rc\\n"); '
                     'reg_send_reply();')
    r = h.request(register())
    assert reply_of(r).status == 200
    h = harness(save='save("location", "2");')
    assert h.request(register()).replies == []


def test_path_modes():
    path = "Path: <sip:edge.example.net;lr>"
    h = harness('modparam("registrar", "use_path", 1)\nmodparam("registrar", "path_mode", 2)')
    rep = reply_of(h.request(register(extra=path)))
    assert rep.status == 420 and rep.header("Unsupported").value == "path"
    rep = reply_of(h.request(register(extra=path + "\nSupported: path")))
    assert rep.status == 200 and rep.header("Path").value == "<sip:edge.example.net;lr>"
    r = h.request(invite())
    assert r.ctx.dst_uri == "sip:edge.example.net;lr"
    assert r.ctx.path_vec == "<sip:edge.example.net;lr>"
    h = harness('modparam("registrar", "use_path", 1)\nmodparam("registrar", "path_mode", 0)')
    rep = reply_of(h.request(register(extra=path)))
    assert rep.status == 200 and rep.header("Path") is None


def test_received_avp_stored_and_used_as_destination():
    h = harness('modparam("registrar", "received_avp", "$avp(RECEIVED)")',
                save='$avp(RECEIVED) = "sip:198.51.100.7:40000"; save("location");')
    rep = reply_of(h.request(register()))
    assert contacts_of(rep)["sip:alice@192.0.2.10:5070"]["received"] == \
        '"sip:198.51.100.7:40000"'
    r = h.request(invite())
    assert r.ctx.msg.ruri == "sip:alice@192.0.2.10:5070"
    assert r.ctx.dst_uri == "sip:198.51.100.7:40000"


def test_gruu_answered_when_supported():
    h = harness()
    inst = '"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"'
    rep = reply_of(h.request(register(contacts=f"<sip:alice@192.0.2.10>;+sip.instance={inst}",
                                      extra="Supported: gruu")))
    params = contacts_of(rep)["sip:alice@192.0.2.10"]
    assert params["+sip.instance"] == inst
    assert "gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6" in params["pub-gruu"]
    h2 = harness('modparam("registrar", "gruu_enabled", 0)')
    rep = reply_of(h2.request(register(contacts=f"<sip:alice@192.0.2.10>;+sip.instance={inst}",
                                       extra="Supported: gruu")))
    assert "pub-gruu" not in contacts_of(rep)["sip:alice@192.0.2.10"]


def test_instance_matches_binding_across_contact_changes():
    h = harness()
    inst = '"<urn:uuid:00000000-0000-0000-0000-000000000001>"'
    h.request(register(contacts=f"<sip:alice@192.0.2.10>;+sip.instance={inst};reg-id=1"))
    r = h.request(register(contacts=f"<sip:alice@192.0.2.99>;+sip.instance={inst};reg-id=1"))
    assert r.rc == 2
    assert list(contacts_of(reply_of(r))) == ["sip:alice@192.0.2.99"]


# ---- lookup() ----------------------------------------------------------------------------------

def test_lookup_rewrites_ruri_and_appends_branches_in_q_order():
    h = harness()
    h.request(register(contacts="<sip:alice@192.0.2.10>;q=0.2, <sip:alice@192.0.2.11>;q=0.9, "
                                "<sip:alice@192.0.2.12>;q=0.5"))
    r = h.request(invite())
    assert r.rc == 1
    assert r.ctx.msg.ruri == "sip:alice@192.0.2.11"
    assert [b.uri for b in r.ctx.branches] == ["sip:alice@192.0.2.12", "sip:alice@192.0.2.10"]
    assert [b.q for b in r.ctx.branches] == [500, 200]
    # requests leave from the socket the REGISTER came in on
    assert r.ctx.force_socket is not None and r.ctx.force_socket.port == 5060
    assert all(b.force_socket is r.ctx.force_socket for b in r.ctx.branches)
    # the 302 built from the destination set names all three
    rep = reply_of(r)
    assert rep.status == 302 and len(rep.contacts.contacts) == 3
    h2 = harness('modparam("registrar", "append_branches", 0)')
    h2.request(register(contacts="<sip:alice@192.0.2.10>;q=0.2, <sip:alice@192.0.2.11>"))
    r = h2.request(invite())
    assert r.ctx.msg.ruri == "sip:alice@192.0.2.11" and r.ctx.branches == []


def test_lookup_not_found_and_method_filtering():
    h = harness('modparam("registrar", "method_filtering", 1)')
    assert reply_of(h.request(invite("nobody"))).status == 404
    h.request(register(extra="Allow: INVITE, ACK, BYE, CANCEL"))
    assert h.request(invite()).rc == 1
    assert reply_of(h.request(invite(method="MESSAGE"))).status == 405


def test_nat_bflag_saved_and_restored():
    h = harness('modparam("usrloc", "nat_bflag", 6)',
                save='setbflag(6); save("location");')
    h.request(register())
    r = h.request(invite())
    assert r.ctx.bflags & (1 << 6)


def test_lookup_to_dset_and_lookup_branches():
    h = harness(lookup='lookup_to_dset("location");')
    h.request(register(contacts="<sip:alice@192.0.2.10>, <sip:alice@192.0.2.11>"))
    r = h.request(invite())
    assert r.ctx.msg.ruri == "sip:alice@127.0.0.1" and len(r.ctx.branches) == 2
    h = harness(lookup='append_branch("sip:carol@127.0.0.1"); lookup_branches("location");')
    h.request(register(contacts="<sip:alice@192.0.2.10>"))
    h.request(register(user="carol", contacts="<sip:carol@192.0.2.30>"))
    r = h.request(invite())
    assert r.rc == 1 and r.ctx.msg.ruri == "sip:alice@192.0.2.10"
    assert [b.uri for b in r.ctx.branches] == ["sip:carol@192.0.2.30"]


def test_registered_unregister_and_ulc():
    h = harness(lookup="""
        if (!registered("location")) { sl_send_reply("480", "Offline"); exit; }
        if (reg_fetch_contacts("location", "$ru", "c")) {
            xlog("L_INFO", "count=$ulc(c=>count) addr=$(ulc(c=>addr)[0])\\n");
            $var(n) = $ulc(c=>count);
            reg_free_contacts("c");
        }
        if ($hdr(X-Unreg) == "yes") {
            unregister("location", "$ru");
            if ($rc == 1) { sl_send_reply("200", "Gone"); exit; }
        }
        lookup("location");""")
    assert reply_of(h.request(invite())).status == 480
    h.request(register(contacts="<sip:alice@192.0.2.10>"))
    from sipcore.pv.vars import VARS

    assert reply_of(h.request(invite())).status == 302 and VARS["n"] == 1
    inv = invite().replace("CSeq: 1 INVITE", "CSeq: 1 INVITE\nX-Unreg: yes")
    assert reply_of(h.request(inv)).reason == "Gone"
    assert reply_of(h.request(invite())).status == 480


def test_add_sock_hdr():
    h = harness(lookup='add_sock_hdr("X-Sock"); $var(h) = $hdr(X-Sock); lookup("location");')
    r = h.request(invite())
    assert b"X-Sock: udp:127.0.0.1:5060" in r.ctx.msg.build()


def test_use_domain_keys_by_user_and_domain():
    h = harness('modparam("usrloc", "use_domain", 1)')
    h.request(register())
    import modules.usrloc as ul

    assert list(ul.get_domain("location").dump()) == ["alice@127.0.0.1"]
    other = invite().replace("INVITE sip:alice@127.0.0.1", "INVITE sip:alice@example.org")
    assert reply_of(h.request(other)).status == 404
    assert h.request(invite()).rc == 1


def test_expiry_by_the_usrloc_timer():
    h = harness('modparam("usrloc", "timer_interval", 1)\n'
                'modparam("registrar", "min_expires", 0)')
    c0, e0 = stats.get("usrloc:location-contacts"), stats.get("usrloc:location-expires")
    h.request(register(contacts="<sip:alice@192.0.2.10>;expires=2, <sip:alice@192.0.2.11>"))
    assert stats.get("usrloc:location-contacts") - c0 == 2
    time.sleep(2.05)
    r = h.request(invite())
    assert r.ctx.msg.ruri == "sip:alice@192.0.2.11" and r.ctx.branches == []   # invisible
    assert h.run_timers() >= 1
    assert stats.get("usrloc:location-contacts") - c0 == 1
    assert stats.get("usrloc:location-expires") - e0 == 1


# ---- every db_mode on every backend ------------------------------------------------------------

def _rows(url: str) -> list:
    from sqlalchemy import select

    from sipcore.db import schema

    t = schema.location
    with db.get_engine(url).connect() as conn:
        return conn.execute(select(t.c.username, t.c.contact, t.c.expires, t.c.q,
                                   t.c.ruid).order_by(t.c.contact)).all()


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
@pytest.mark.parametrize("mode", [1, 2, 3])
def test_db_modes(kind, mode, tmp_path):
    with temp_db(kind, tmp_path) as url:
        db.create_all(url, ["location"])
        h = harness(f'modparam("usrloc", "db_url", "{url}")\n'
                    f'modparam("usrloc", "db_mode", {mode})\n'
                    'modparam("usrloc", "timer_interval", 1)\n'
                    'modparam("registrar", "min_expires", 0)')
        r = h.request(register(contacts="<sip:alice@192.0.2.10>;q=0.7, "
                                        "<sip:alice@192.0.2.11>;expires=2"))
        assert reply_of(r).status == 200
        rows = _rows(url)
        if mode == 2:
            assert rows == []                      # write-back: nothing until the timer
            import modules.usrloc as ul

            ul.rpc_flush()                          # what the timer does every interval
            rows = _rows(url)
        assert [(r.username, r.contact) for r in rows] == [
            ("alice", "sip:alice@192.0.2.10"), ("alice", "sip:alice@192.0.2.11")]
        assert abs(rows[0].q - 0.7) < 1e-6
        # lookup works (from shm in modes 1/2, from the DB in mode 3)
        r = h.request(invite())
        assert r.ctx.msg.ruri == "sip:alice@192.0.2.11" or r.ctx.msg.ruri == \
            "sip:alice@192.0.2.10"
        assert len(r.ctx.branches) == 1
        # expiry removes the row too (expires=2 ends within 2 s: whole seconds, as Kamailio)
        time.sleep(2.05)
        h.run_timers()
        assert [r.contact for r in _rows(url)] == ["sip:alice@192.0.2.10"]
        # de-registration removes the row (write-back: at the next timer run)
        h.request(register(contacts="*", expires=0))
        if mode == 2:
            time.sleep(1.05)
            h.run_timers()
        assert _rows(url) == []
        # preload: a restart (new harness) sees what the DB holds
        h.request(register(contacts="<sip:alice@192.0.2.50>"))
        if mode == 2:
            import modules.usrloc as ul

            ul.rpc_flush()
        h2 = harness(f'modparam("usrloc", "db_url", "{url}")\n'
                     f'modparam("usrloc", "db_mode", {mode})')
        r = h2.request(invite())
        assert r.rc == 1 and r.ctx.msg.ruri == "sip:alice@192.0.2.50"


@pytest.mark.parametrize("mode", [1, 3])
def test_database_down_gives_500_and_lookup_error(mode):
    url = "postgres://postgres@127.0.0.1:1/none"          # nothing listens on port 1
    h = harness(f'modparam("usrloc", "db_url", "{url}")\n'
                f'modparam("usrloc", "db_mode", {mode})\n'
                'modparam("usrloc", "db_load", 0)')
    r = h.request(register())
    rep = reply_of(r)
    assert r.rc == -1 and rep.status == 500
    if mode == 3:
        assert reply_of(h.request(invite())).status == 500        # lookup() returned -3
    db.dispose_engine(url)


def test_event_route_contact_expired_sees_ulc_exp():
    cfg = BASE.format(params='modparam("usrloc", "timer_interval", 1)\n'
                             'modparam("registrar", "min_expires", 0)',
                      save='save("location");', lookup='lookup("location");')
    cfg += """
event_route[usrloc:contact-expired] {
    $var(expired) = $ulc(exp=>addr) + " of " + $ulc(exp=>aor);
}
"""
    h = Harness.from_text(cfg)
    h.request(register(contacts="<sip:alice@192.0.2.10>;expires=2"))
    time.sleep(2.05)
    h.run_timers()
    from sipcore.pv.vars import VARS

    assert VARS["expired"] == "sip:alice@192.0.2.10 of alice"


def test_case_sensitive_aor():
    h = harness()
    h.request(register(user="Alice"))
    assert h.request(invite("alice")).rc == 1                 # default: case-insensitive
    h = harness('modparam("registrar", "case_sensitive", 1)')
    h.request(register(user="Alice"))
    assert reply_of(h.request(invite("alice"))).status == 404
    assert h.request(invite("Alice")).rc == 1

