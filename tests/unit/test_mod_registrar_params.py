"""registrar parameters as a UA and a script see them (through the in-process harness): the
expires ranges, RFC 5626 outbound (outbound_mode, regid_mode, flow_timer), Path with
path_use_received / path_check_local, use_expired_contacts, the socket parameters
(sock_flag + sock_hdr_name, sock_mode), xavp_cfg overrides (max_contacts, q, socket,
registered()'s match values, lookup_filter_mode's rlf_bflags), xavp_rcd / xavp_rcd_mask, and
error replies with Kamailio's reason phrases plus P-Registrar-Error."""
from __future__ import annotations

import time
import uuid

from sipcore.pv.vars import xavp_get

from .test_mod_registrar import contacts_of, harness, invite, register, reply_of

CONTACT = "sip:alice@192.0.2.10:5070"


def expires_in_reply(rep, contact: str = CONTACT) -> int:
    return int(contacts_of(rep)[contact]["expires"])


def stored(user: str = "alice") -> list:
    """The bindings usrloc holds for USER (shm), best first."""
    from modules.usrloc import get_domain

    return get_domain("location").get(user, include_expired=True)


def rcd(ctx, name: str = "rcd") -> dict[str, object]:
    """$xavp(NAME=>...) children as a dict (newest value of each name)."""
    root = xavp_get(ctx.xavps.xavp, name) if ctx.xavps is not None else None
    if root is None:
        return {}
    out: dict[str, object] = {}
    for x in reversed(root.value):
        out[x.name] = x.value
    return out


# ---- expires ranges --------------------------------------------------------------------------

def test_expires_range_randomises_below_the_requested_value_unless_flag_0x08():
    h = harness('modparam("registrar", "expires_range", 50)')
    seen = set()
    for i in range(25):
        rep = reply_of(h.request(register(user=f"u{i}", contacts=f"<sip:u{i}@192.0.2.10>",
                                          expires=1000)))
        seen.add(expires_in_reply(rep, f"sip:u{i}@192.0.2.10"))
    assert all(499 <= e <= 1000 for e in seen) and len(seen) > 3
    h = harness('modparam("registrar", "expires_range", 50)', save='save("location", "8");')
    rep = reply_of(h.request(register(expires=1000)))
    assert 999 <= expires_in_reply(rep) <= 1000


def test_default_expires_range_applies_only_to_the_default():
    h = harness('modparam("registrar", "default_expires", 1000)\n'
                'modparam("registrar", "default_expires_range", 20)')
    seen = set()
    for i in range(25):
        rep = reply_of(h.request(register(user=f"d{i}", contacts=f"<sip:d{i}@192.0.2.10>")))
        seen.add(expires_in_reply(rep, f"sip:d{i}@192.0.2.10"))
    assert all(799 <= e <= 1000 for e in seen) and len(seen) > 3
    rep = reply_of(h.request(register(expires=1000)))       # an Expires header: no range
    assert 999 <= expires_in_reply(rep) <= 1000


# ---- outbound (RFC 5626) ---------------------------------------------------------------------

INST = '"<urn:uuid:00000000-0000-0000-0000-0000000000aa>"'
OB_CONTACT = f"<sip:alice@192.0.2.10:5070;ob>;+sip.instance={INST};reg-id=1"


def test_outbound_none_rejects_require_outbound_with_420():
    h = harness()
    rep = reply_of(h.request(register(extra="Require: outbound")))
    assert (rep.status, rep.reason) == (420, "Bad Extension")
    assert rep.header("Unsupported").value == "outbound"
    assert rep.header("P-Registrar-Error").value == "No support for Outbound on server"
    assert stored() == []


def test_outbound_required_421_then_200_with_require_and_flow_timer():
    h = harness('modparam("registrar", "outbound_mode", 2)\n'
                'modparam("registrar", "flow_timer", 25)')
    rep = reply_of(h.request(register(extra="Supported: path")))
    assert (rep.status, rep.reason) == (421, "Extension Required")
    assert rep.header("Require").value == "outbound"
    assert rep.header("P-Registrar-Error").value == "No support for Outbound indicated"
    rep = reply_of(h.request(register(contacts=OB_CONTACT, extra="Supported: outbound, path")))
    assert rep.status == 200
    assert rep.header_values("Require") == ["outbound"]
    assert "outbound" in rep.header_values("Supported")
    assert rep.header("Flow-Timer").value == "25"
    params = contacts_of(rep)["sip:alice@192.0.2.10:5070;ob"]
    assert params["reg-id"] == "1"          # first hop (one Via): the reg-id is used


def test_outbound_supported_answers_in_kind():
    h = harness('modparam("registrar", "outbound_mode", 1)\n'
                'modparam("registrar", "flow_timer", 30)')
    rep = reply_of(h.request(register()))
    assert rep.status == 200 and rep.header_values("Supported") == ["outbound"]
    assert rep.header("Require") is None and rep.header("Flow-Timer") is None
    rep = reply_of(h.request(register(contacts=OB_CONTACT, extra="Supported: outbound")))
    assert rep.header_values("Require") == ["outbound"]
    assert rep.header("Flow-Timer").value == "30"


def _via2() -> str:
    return "Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKedge1"


def test_outbound_behind_an_edge_without_ob_439_or_reg_id_ignored():
    h = harness('modparam("registrar", "outbound_mode", 1)')
    # a UA doing outbound through an edge proxy that did not add ;ob to its Path: 439
    rep = reply_of(h.request(register(contacts=OB_CONTACT,
                                      extra=f"{_via2()}\nSupported: outbound")))
    assert (rep.status, rep.reason) == (439, "First Hop Lacks Outbound Support")
    assert rep.header("P-Registrar-Error").value == "No support for Outbound on edge proxy"
    # not asking for outbound: accepted, the reg-id is ignored (regid_mode 0)
    rep = reply_of(h.request(register(contacts=OB_CONTACT, extra=_via2())))
    assert rep.status == 200
    assert "reg-id" not in contacts_of(rep)["sip:alice@192.0.2.10:5070;ob"]
    assert stored()[0].reg_id == 0
    # regid_mode=1: always used
    h = harness('modparam("registrar", "outbound_mode", 1)\n'
                'modparam("registrar", "regid_mode", 1)')
    rep = reply_of(h.request(register(contacts=OB_CONTACT, extra=_via2())))
    assert contacts_of(rep)["sip:alice@192.0.2.10:5070;ob"]["reg-id"] == "1"
    # the edge marked its Path URI with ;ob: outbound used end to end
    h = harness('modparam("registrar", "outbound_mode", 1)\nmodparam("registrar", "use_path", 1)'
                '\nmodparam("registrar", "path_mode", 1)')
    rep = reply_of(h.request(register(
        contacts=OB_CONTACT,
        extra=f"{_via2()}\nPath: <sip:edge.example.net;lr;ob>\nSupported: outbound, path")))
    assert rep.status == 200 and rep.header_values("Require") == ["outbound"]
    assert contacts_of(rep)["sip:alice@192.0.2.10:5070;ob"]["reg-id"] == "1"


def test_reg_id_zero_is_a_bad_request():
    h = harness()
    rep = reply_of(h.request(register(contacts=f"<sip:alice@192.0.2.10>;+sip.instance={INST};"
                                               "reg-id=0")))
    assert (rep.status, rep.header("P-Registrar-Error").value) == (400, "Invalid Reg-Id number")


# ---- Path ------------------------------------------------------------------------------------

def test_path_use_received_stores_the_edge_received_and_sets_the_nat_flag():
    h = harness('modparam("registrar", "use_path", 1)\nmodparam("registrar", "path_mode", 0)\n'
                'modparam("registrar", "path_use_received", 1)\n'
                'modparam("usrloc", "nat_bflag", 6)')
    path = "Path: <sip:edge.example.net;lr;received=sip:198.51.100.9%3A41000>"
    rep = reply_of(h.request(register(extra=path)))
    assert rep.status == 200
    assert contacts_of(rep)[CONTACT]["received"] == '"sip:198.51.100.9:41000"'
    (c,) = stored()
    assert c.received == "sip:198.51.100.9:41000" and c.cflags & (1 << 6)
    r = h.request(invite())
    assert r.ctx.dst_uri == "sip:edge.example.net;lr;received=sip:198.51.100.9%3A41000"
    assert r.ctx.bflags & (1 << 6)                      # NAT flag restored on lookup
    # without the parameter the received param of the Path URI is not looked at
    h = harness('modparam("registrar", "use_path", 1)\nmodparam("registrar", "path_mode", 0)')
    h.request(register(extra=path))
    assert stored()[0].received == ""


def test_path_first_hop_must_be_a_loose_router():
    h = harness('modparam("registrar", "use_path", 1)\nmodparam("registrar", "path_mode", 0)')
    rep = reply_of(h.request(register(extra="Path: <sip:edge.example.net>")))
    assert (rep.status, rep.header("P-Registrar-Error").value) == (400, "Path parse error")


def test_path_check_local_skips_a_first_hop_that_is_this_server():
    params = ('modparam("registrar", "use_path", 1)\nmodparam("registrar", "path_mode", 0)\n'
              'modparam("registrar", "path_check_local", 1)\n'
              'modparam("registrar", "received_avp", "$avp(RECEIVED)")')
    h = harness(params)
    h.request(register(extra="Path: <sip:127.0.0.1:5060;lr>, <sip:edge2.example.net;lr>"))
    r = h.request(invite())
    assert r.ctx.dst_uri == "sip:edge2.example.net;lr"
    assert r.ctx.path_vec == "<sip:edge2.example.net;lr>"
    # only the local hop: no Path left, the received address is the destination
    h = harness(params, save='$avp(RECEIVED) = "sip:198.51.100.7:40000"; save("location");')
    h.request(register(extra="Path: <sip:127.0.0.1;lr>"))
    r = h.request(invite())
    assert r.ctx.dst_uri == "sip:198.51.100.7:40000" and not r.ctx.path_vec
    # off: the local hop stays first
    h = harness(params.replace('"path_check_local", 1', '"path_check_local", 0'))
    h.request(register(extra="Path: <sip:127.0.0.1:5060;lr>, <sip:edge2.example.net;lr>"))
    assert h.request(invite()).ctx.dst_uri == "sip:127.0.0.1:5060;lr"


# ---- use_expired_contacts --------------------------------------------------------------------

def test_use_expired_contacts_finds_a_contact_the_timer_has_not_removed():
    for flag, status in ((0, 404), (1, 302)):
        h = harness('modparam("registrar", "min_expires", 0)\n'
                    f'modparam("registrar", "use_expired_contacts", {flag})')
        assert reply_of(h.request(register(expires=1))).status == 200
        time.sleep(1.2)
        assert reply_of(h.request(invite())).status == status


# ---- sockets ---------------------------------------------------------------------------------

LISTEN2 = ("listen=udp:127.0.0.1:5060 advertise 203.0.113.1:5080\n"
           "listen=udp:127.0.0.1:5070\n")


def test_sock_flag_takes_the_socket_from_sock_hdr_name():
    h = harness(LISTEN2 + 'modparam("registrar", "sock_flag", 3)\n'
                'modparam("registrar", "sock_hdr_name", "X-Sock")',
                save='setflag(3); save("location");')
    h.request(register(extra="X-Sock: udp:127.0.0.1:5070"))
    assert stored()[0].socket == "udp:127.0.0.1:5070"
    # not one of ours: the receiving socket
    h.request(register(user="bob", contacts="<sip:bob@192.0.2.11>",
                       extra="X-Sock: udp:10.9.9.9:5060"))
    assert stored("bob")[0].socket == "udp:127.0.0.1:5060"
    # flag not set: header ignored
    h = harness(LISTEN2 + 'modparam("registrar", "sock_flag", 3)\n'
                'modparam("registrar", "sock_hdr_name", "X-Sock")')
    h.request(register(extra="X-Sock: udp:127.0.0.1:5070"))
    assert stored()[0].socket == "udp:127.0.0.1:5060"


def test_sock_flag_with_xavp_cfg_socket():
    h = harness(LISTEN2 + 'modparam("registrar", "sock_flag", 3)\n'
                'modparam("registrar", "xavp_cfg", "reg")',
                save='setflag(3); $xavp(reg=>socket) = "udp:127.0.0.1:5070"; save("location");')
    h.request(register())
    assert stored()[0].socket == "udp:127.0.0.1:5070"


def test_sock_mode_stores_the_advertised_address():
    h = harness(LISTEN2 + 'modparam("registrar", "sock_mode", 1)')
    h.request(register())
    assert stored()[0].socket == "udp:203.0.113.1:5080"
    h = harness(LISTEN2)
    h.request(register())
    assert stored()[0].socket == "udp:127.0.0.1:5060"


# ---- xavp_cfg / xavp_rcd ---------------------------------------------------------------------

def test_xavp_cfg_overrides_max_contacts_and_q():
    h = harness('modparam("registrar", "xavp_cfg", "reg")\n'
                'modparam("registrar", "max_contacts", 5)',
                save='$xavp(reg=>max_contacts) = 1; $xavp(reg[0]=>q) = 300; save("location");')
    rep = reply_of(h.request(register(contacts="<sip:alice@192.0.2.10>;q=0.9")))
    assert rep.status == 200 and contacts_of(rep)["sip:alice@192.0.2.10"]["q"] == "0.3"
    rep = reply_of(h.request(register(contacts="<sip:alice@192.0.2.11>")))
    assert (rep.status, rep.reason) == (503, "Service Unavailable")
    assert rep.header("P-Registrar-Error").value == "Too many registered contacts"


def test_xavp_rcd_after_save_and_lookup_with_mask():
    h = harness('modparam("registrar", "xavp_rcd", "ulrcd")')
    r = h.request(register(expires=600))
    d = rcd(r.ctx, "ulrcd")
    (c,) = stored()
    assert d["ruid"] == c.ruid and d["contact"] == CONTACT and 599 <= d["expires"] <= 600
    r = h.request(invite())
    d = rcd(r.ctx, "ulrcd")
    assert d["ruid"] == c.ruid and d["contact"] == CONTACT and "received" not in d
    h = harness('modparam("registrar", "xavp_rcd", "ulrcd")\n'
                'modparam("registrar", "xavp_rcd_mask", 5)')     # no ruid, no expires
    h.request(register())
    d = rcd(h.request(invite()).ctx, "ulrcd")
    assert set(d) == {"contact"}


def test_registered_match_values_from_xavp_cfg():
    cid = uuid.uuid4().hex
    lookup = ('$xavp(reg=>match_callid) = $hdr(X-Cid); '
              'if (registered("location", "sip:alice@127.0.0.1", 1)) { '
              'sl_send_reply("200", "Registered"); exit; } '
              'sl_send_reply("404", "Not Registered"); exit;')
    h = harness('modparam("registrar", "xavp_cfg", "reg")\n'
                'modparam("registrar", "xavp_rcd", "rcd")', lookup=lookup)
    h.request(register(callid=cid))
    r = h.request(invite().replace("Content-Length", f"X-Cid: {cid}\nContent-Length"))
    assert reply_of(r).status == 200 and rcd(r.ctx)["contact"] == CONTACT
    r = h.request(invite().replace("Content-Length", "X-Cid: other\nContent-Length"))
    assert reply_of(r).status == 404


def test_lookup_filter_mode_rlf_bflags():
    params = ('modparam("registrar", "xavp_cfg", "reg")\n'
              'modparam("registrar", "lookup_filter_mode", 1)')
    save = 'if ($hdr(X-Flag) == "yes") { setbflag(4); } save("location");'
    # Kamailio reg_lookup_filter_match: a contact passes with ANY of the flags (16 | 32)
    lookup = '$xavp(reg=>rlf_bflags) = 48; lookup("location");'
    h = harness(params, save=save, lookup=lookup)
    h.request(register(contacts="<sip:alice@192.0.2.10>", extra="X-Flag: no"))
    assert reply_of(h.request(invite())).status == 404          # no contact has flag 4 or 5
    h.request(register(contacts="<sip:alice@192.0.2.20>", extra="X-Flag: yes"))
    r = h.request(invite())
    assert reply_of(r).status == 302 and r.ctx.msg.ruri == "sip:alice@192.0.2.20"
    assert r.ctx.branches == []                                   # the other one filtered


# ---- event_callback (KEMI) -------------------------------------------------------------------

KEMI_SCRIPT = '''
import KSR


def mod_init():
    return Routing()


class Routing:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.is_REGISTER():
            KSR.registrar.save("location", 0)
        return 1

    def ksr_ul_expired(self, msg, evname):
        with open(OUT, "a") as fh:
            fh.write(f"{evname} {KSR.pv.get('$ulc(exp=>addr)')} {KSR.pv.get('$ulc(exp=>aor)')}\\n")
        return 1
'''


def test_event_callback_runs_the_kemi_function_for_expired_contacts(tmp_path):
    from sipcore.testing import Harness

    out = tmp_path / "expired.txt"
    script = tmp_path / "reg_kemi.py"
    script.write_text(KEMI_SCRIPT.replace("OUT", repr(str(out))))
    h = Harness.from_text(f'''
loadmodule "pv"
loadmodule "sl"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "app_python3"
modparam("app_python3", "load", "{script}")
modparam("usrloc", "timer_interval", 1)
modparam("registrar", "min_expires", 0)
modparam("registrar", "event_callback", "ksr_ul_expired")
cfgengine "python"
''')
    rep = reply_of(h.request(register(contacts="<sip:alice@192.0.2.10>;expires=1")))
    assert rep.status == 200
    time.sleep(1.1)
    h.run_timers()
    assert out.read_text() == "usrloc:contact-expired sip:alice@192.0.2.10 alice\n"


def test_usrloc_xavp_contact_saved_with_the_contact_and_restored_by_lookup():
    save = ('$xavp(ulattrs=>tenant) = "acme"; $xavp(ulattrs[0]=>level) = 3; '
            'save("location");')
    lookup = 'if (lookup("location")) { append_to_reply("X-T: $xavp(ulattrs=>tenant)/' \
             '$xavp(ulattrs=>level)\\r\\n"); }'
    h = harness('modparam("usrloc", "xavp_contact", "ulattrs")', save=save, lookup=lookup)
    assert reply_of(h.request(register())).status == 200
    (c,) = stored()
    assert c.xavp                                          # kept in the shm record
    rep = reply_of(h.request(invite()))                    # another message: restored
    assert rep.status == 302 and rep.header("X-T").value == "acme/3"


def test_database_failure_500_with_retry_after_and_p_registrar_error():
    from sipcore import db

    url = "postgres://postgres@127.0.0.1:1/none"          # nothing listens on port 1
    h = harness(f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 1)\n'
                'modparam("usrloc", "db_load", 0)\nmodparam("registrar", "retry_after", 30)')
    rep = reply_of(h.request(register()))
    assert (rep.status, rep.reason) == (500, "Server Internal Error")
    assert rep.header("Retry-After").value == "30"
    assert rep.header("P-Registrar-Error") is not None
    db.dispose_engine(url)
