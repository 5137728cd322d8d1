"""The real server on 127.0.0.1 over UDP: answers, relays, survives bad packets, stops cleanly."""
from __future__ import annotations

import json
import signal
import time

import pytest

from sipcore.msg import parse_msg
from tests.paths import TORTURE, TORTURE_MANIFEST

from .conftest import UA, options

pytestmark = pytest.mark.integration

CFG = """#!KAMAILIO
debug=2
log_stderror=yes
listen=udp:127.0.0.1:{port}
loadmodule "pv"
loadmodule "kex"
loadmodule "xlog"
loadmodule "sl"
loadmodule "maxfwd"
loadmodule "textops"
loadmodule "siputils"
loadmodule "sanity"
modparam("sanity", "autodrop", 0)
request_route {
    force_rport();
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (is_method("OPTIONS") && uri==myself && $rU==$null) {
        append_to_reply("X-Seen: $si\\r\\n");
        sl_send_reply("200", "Keepalive");
        exit;
    }
    if (uri==myself) { sl_send_reply("404", "Not Found"); exit; }
    # tests never resolve names or send anywhere but loopback
    if ($rd != "127.0.0.1") { sl_send_reply("404", "Not Found"); exit; }
    append_hf("X-Proxied: yes\\r\\n");
    if (!forward()) { sl_send_reply("503", "Service Unavailable"); }
}
"""

def test_options_keepalive_answered(start_server):
    srv = start_server(CFG)
    ua = UA()
    try:
        ua.send(options(ua, srv.port), srv.port)
        rpl = parse_msg(ua.recv())
        assert rpl.status == 200 and rpl.reason == "Keepalive"
        assert rpl.header("X-Seen").value == "127.0.0.1"
        assert rpl.via1.rport == str(ua.port)          # force_rport filled rport
        assert rpl.to_tag                               # local reply got a To tag
    finally:
        ua.close()


def test_request_relayed_statelessly_and_reply_comes_back(start_server):
    srv = start_server(CFG)
    caller, callee = UA(), UA()
    try:
        req = options(caller, srv.port, ruri=f"sip:bob@127.0.0.1:{callee.port}")
        caller.send(req, srv.port)
        fwd = parse_msg(callee.recv())
        assert fwd.method == "OPTIONS"
        assert fwd.max_forwards == 69                    # decremented by mf_process_maxfwd_header
        assert fwd.header("X-Proxied").value == "yes"
        assert fwd.vias[0].port == srv.port and fwd.vias[0].branch.startswith("z9hG4bK")
        assert fwd.vias[1].rport == str(caller.port)
        # the callee answers to the proxy's Via; the proxy relays it by the next Via
        top, rest = fwd.header_all("Via")[0], fwd.buf
        reply = (b"SIP/2.0 200 OK\r\n" +
                 b"".join(rest[h.start:h.end] for h in fwd.header_all("Via")) +
                 b"".join(rest[h.start:h.end] for h in fwd.headers
                          if h.canonical_name in ("From", "To", "Call-ID", "CSeq")) +
                 b"Content-Length: 0\r\n\r\n")
        assert top.value
        callee.send(reply, srv.port)
        back = parse_msg(caller.recv())
        assert back.status == 200 and len(back.vias) == 1
        assert back.callid == fwd.callid
    finally:
        caller.close()
        callee.close()


def test_too_many_hops(start_server):
    srv = start_server(CFG)
    ua = UA()
    try:
        ua.send(options(ua, srv.port, ruri="sip:bob@127.0.0.1:9").replace(
            "Max-Forwards: 70", "Max-Forwards: 0"), srv.port)
        assert parse_msg(ua.recv()).status == 483
    finally:
        ua.close()


def test_survives_torture_messages(start_server):
    srv = start_server(CFG)
    ua = UA()
    try:
        manifest = json.loads(TORTURE_MANIFEST.read_text())
        for m in manifest["messages"]:
            ua.send((TORTURE / m["file"]).read_bytes(), srv.port)
            ua.recv(0.05)
        time.sleep(0.3)
        assert srv.alive(), srv.log()
        # still serving
        ua.send(options(ua, srv.port), srv.port)
        got = None
        for _ in range(60):            # skip late answers to torture requests
            data = ua.recv(1.0)
            assert data is not None, srv.log()
            got = parse_msg(data)
            if got.cseq.method == "OPTIONS" and got.reason == "Keepalive":
                break
        assert got is not None and got.status == 200
        assert "Traceback" not in srv.log()
    finally:
        ua.close()


def test_sigterm_stops_quickly(start_server):
    srv = start_server(CFG)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(5) == 0
    assert time.monotonic() - t0 < 2.0
