"""etc/pykam.cfg, the README's run command config: keepalive, REGISTER, a call to a registered
user relayed statefully, 404 for an unknown user."""
from __future__ import annotations

import uuid

import pytest

from sipcore.msg import parse_msg

from .conftest import ROOT, UA, options

pytestmark = pytest.mark.integration


def _req(method: str, ua: UA, port: int, ruri: str, extra: str = "", cseq: int = 1) -> str:
    cid = uuid.uuid4().hex
    return (f"{method} {ruri} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bK{cid[:12]};rport\n"
            f"Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag={cid[:6]}\n"
            f"To: <{ruri}>\nCall-ID: {cid}\nCSeq: {cseq} {method}\n{extra}"
            f"Content-Length: 0\n\n")


def _final(ua: UA) -> object:
    while True:
        data = ua.recv(5.0)
        assert data is not None
        m = parse_msg(data)
        if m.is_reply and m.status >= 200:
            return m


def test_default_config_registers_and_routes(start_server):
    cfg = (ROOT / "etc" / "pykam.cfg").read_text().replace(
        "#!trydef LISTEN udp:127.0.0.1:5060", "#!trydef LISTEN udp:127.0.0.1:{port}")
    srv = start_server(cfg)
    caller, bob = UA(), UA()
    try:
        caller.send(options(caller, srv.port), srv.port)
        assert parse_msg(caller.recv()).reason == "Keepalive"

        bob.send(_req("REGISTER", bob, srv.port, f"sip:bob@127.0.0.1:{srv.port}",
                      f"Contact: <sip:bob@127.0.0.1:{bob.port}>\nExpires: 60\n"), srv.port)
        reg = _final(bob)
        assert reg.status == 200 and f"127.0.0.1:{bob.port}" in reg.header("Contact").value

        caller.send(_req("INVITE", caller, srv.port, f"sip:bob@127.0.0.1:{srv.port}",
                         f"Contact: <sip:alice@127.0.0.1:{caller.port}>\n"), srv.port)
        trying = parse_msg(caller.recv())
        assert trying.status == 100                      # tm answered hop by hop
        inv = parse_msg(bob.recv())
        assert inv.method == "INVITE" and inv.ruri == f"sip:bob@127.0.0.1:{bob.port}"
        assert inv.header("Record-Route") is not None

        caller.send(_req("INVITE", caller, srv.port, f"sip:nobody@127.0.0.1:{srv.port}",
                         f"Contact: <sip:alice@127.0.0.1:{caller.port}>\n"), srv.port)
        assert _final(caller).status == 404
    finally:
        caller.close()
        bob.close()


def test_default_config_cancel_gives_487(start_server):
    from .test_kemi import cancel_flow

    cfg = (ROOT / "etc" / "pykam.cfg").read_text().replace(
        "#!trydef LISTEN udp:127.0.0.1:5060", "#!trydef LISTEN udp:127.0.0.1:{port}")
    cancel_flow(start_server(cfg))
