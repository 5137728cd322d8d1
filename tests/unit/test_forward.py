"""Stateless forwarding (sipcore.forward): what goes on the wire and where."""
from __future__ import annotations

import pytest

from sipcore.forward import forward_reply, forward_request
from sipcore.msg import parse_msg
from sipcore.net.addr import Dest, SocketInfo
from sipcore.reply import reply_dest
from sipcore.route import errcodes as E
from sipcore.testing import RecordingCore, make_ctx


def invite(ruri: str = "sip:bob@192.0.2.20", via: str = "SIP/2.0/UDP 10.0.0.1:5070;"
           "branch=z9hG4bKabc", extra: str = "") -> str:
    return (f"INVITE {ruri} SIP/2.0\n"
            f"Via: {via}\n"
            "Max-Forwards: 70\n"
            "From: <sip:alice@a.example>;tag=1\n"
            "To: <sip:bob@b.example>\n"
            "Call-ID: c1@10.0.0.1\n"
            "CSeq: 1 INVITE\n"
            f"{extra}"
            "Content-Length: 0\n\n")


def sent(ctx, i: int = -1):
    dest, buf = ctx.core.sent[i]
    return dest, parse_msg(buf), buf


# ---- requests ---------------------------------------------------------------------------------

def test_forward_to_ruri_adds_via_and_received():
    ctx = make_ctx(invite(), src=("192.0.2.5", 5099))
    assert forward_request(ctx) == 1
    dest, out, _ = sent(ctx)
    assert (dest.proto, dest.ip, dest.port) == ("udp", "192.0.2.20", 5060)
    assert dest.sock.port == 5060
    top, prev = out.vias[0], out.vias[1]
    assert top.sent_by == "127.0.0.1:5060" and top.proto == "UDP"
    assert top.branch.startswith("z9hG4bK")
    assert prev.received == "192.0.2.5"          # 10.0.0.1 != source IP
    assert prev.rport is None                    # no ;rport asked, no force_rport
    assert out.ruri == "sip:bob@192.0.2.20"


def test_rport_filled_when_requested():
    ctx = make_ctx(invite(via="SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKabc"),
                   src=("192.0.2.5", 5099))
    assert forward_request(ctx) == 1
    _, out, buf = sent(ctx)
    prev = out.vias[1]
    assert prev.rport == "5099" and prev.received == "192.0.2.5"
    assert prev.branch == "z9hG4bKabc"
    assert buf.count(b"rport") == 1               # the empty ;rport was replaced


def test_no_received_when_sent_by_is_source_ip():
    ctx = make_ctx(invite(via="SIP/2.0/UDP 192.0.2.5:5099;branch=z9hG4bKabc"),
                   src=("192.0.2.5", 5099))
    assert forward_request(ctx) == 1
    _, out, _ = sent(ctx)
    assert out.vias[1].received is None and out.vias[1].rport is None


def test_force_rport_and_local_rport_and_advertised():
    ctx = make_ctx(invite(), src=("192.0.2.5", 5099))
    ctx.force_rport = True
    ctx.local_rport = True
    ctx.advertised_address = "sip.example.net"
    ctx.advertised_port = 5080
    assert forward_request(ctx) == 1
    _, out, _ = sent(ctx)
    assert out.vias[0].sent_by == "sip.example.net:5080"
    assert out.vias[0].rport == ""
    assert out.vias[1].rport == "5099"


def test_du_wins_over_ruri_and_lumps_are_applied():
    ctx = make_ctx(invite())
    ctx.dst_uri = "sip:192.0.2.30:5088;transport=udp"
    ctx.msg.set_ruri("sip:carol@c.example")
    ctx.msg.add_header("X-Test: yes")
    assert forward_request(ctx) == 1
    dest, out, _ = sent(ctx)
    assert (dest.ip, dest.port) == ("192.0.2.30", 5088)
    assert out.ruri == "sip:carol@c.example"
    assert out.header("X-Test").value == "yes"


def test_explicit_host_port_and_proto():
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5060), SocketInfo("tcp", "127.0.0.1",
                                                                           5060)])
    ctx = make_ctx(invite(), core=core)
    assert forward_request(ctx, host="192.0.2.40", port=5090, proto="tcp") == 1
    dest, out, _ = sent(ctx)
    assert (dest.proto, dest.ip, dest.port) == ("tcp", "192.0.2.40", 5090)
    assert dest.sock.proto == "tcp"
    assert out.vias[0].proto == "TCP"


def test_uri_transport_maddr_and_sips_default_port():
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5060),
                          SocketInfo("tls", "127.0.0.1", 5061)])
    ctx = make_ctx(invite(ruri="sips:bob@192.0.2.20"), core=core)
    assert forward_request(ctx) == 1
    dest, _, _ = sent(ctx)
    assert (dest.proto, dest.port) == ("tls", 5061)

    ctx = make_ctx(invite(ruri="sip:bob@b.example;maddr=192.0.2.77"), core=core)
    assert forward_request(ctx) == 1
    assert sent(ctx)[0].ip == "192.0.2.77"


def test_ipv6_destination_and_socket():
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5060), SocketInfo("udp", "::1", 5060)])
    ctx = make_ctx(invite(ruri="sip:bob@[2001:db8::5]:5070"), core=core)
    assert forward_request(ctx) == 1
    dest, out, _ = sent(ctx)
    assert (dest.ip, dest.port) == ("2001:db8::5", 5070)
    assert out.vias[0].sent_by == "[::1]:5060"


def test_hostname_is_resolved(monkeypatch):
    import socket as _socket

    calls = []

    def fake_getaddrinfo(host, port, *a, **kw):
        calls.append(host)
        return [(_socket.AF_INET, _socket.SOCK_DGRAM, 17, "", ("192.0.2.99", port))]

    monkeypatch.setattr("sipcore.forward.socket.getaddrinfo", fake_getaddrinfo)
    ctx = make_ctx(invite(ruri="sip:bob@proxy.example"))
    assert forward_request(ctx) == 1
    assert calls == ["proxy.example"]
    assert sent(ctx)[0].ip == "192.0.2.99"


def test_unresolvable_host_and_send_failure():
    ctx = make_ctx(invite(ruri="sip:bob@no-such-host.invalid"))
    assert forward_request(ctx) == E.E_BAD_ADDRESS
    assert ctx.core.sent == []
    ctx = make_ctx(invite())
    ctx.core.fail_sends = True
    assert forward_request(ctx) == E.E_SEND


def test_no_socket_for_protocol():
    ctx = make_ctx(invite(ruri="sip:bob@192.0.2.20;transport=tcp"))
    assert forward_request(ctx) == E.E_NO_SOCKET


def test_forced_socket_is_used():
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5060),
                          SocketInfo("udp", "127.0.0.2", 5070)])
    ctx = make_ctx(invite(), core=core)
    ctx.force_socket = core.sockets[1]
    assert forward_request(ctx) == 1
    dest, out, _ = sent(ctx)
    assert dest.sock is core.sockets[1]
    assert out.vias[0].sent_by == "127.0.0.2:5070"


def test_forwarding_twice_edits_the_via_once():
    ctx = make_ctx(invite(via="SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKabc"),
                   src=("192.0.2.5", 5099))
    assert forward_request(ctx) == 1
    assert forward_request(ctx, host="192.0.2.21") == 1
    _, out, buf = sent(ctx)
    assert buf.count(b"received=") == 1 and out.vias[1].rport == "5099"


# ---- replies ----------------------------------------------------------------------------------

def reply(vias: list[str]) -> str:
    lines = "".join(f"Via: {v}\n" for v in vias)
    return ("SIP/2.0 200 OK\n" + lines +
            "From: <sip:alice@a.example>;tag=1\n"
            "To: <sip:bob@b.example>;tag=2\n"
            "Call-ID: c1@10.0.0.1\n"
            "CSeq: 1 INVITE\n"
            "Content-Length: 0\n\n")


def test_forward_reply_removes_our_via_and_uses_received_rport():
    ctx = make_ctx(reply(["SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKus",
                          "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc;received=192.0.2.5"
                          ";rport=5099"]), src=("192.0.2.20", 5060))
    assert forward_reply(ctx) == 1
    dest, out, _ = sent(ctx)
    assert (dest.ip, dest.port) == ("192.0.2.5", 5099)
    assert len(out.vias) == 1 and out.vias[0].branch == "z9hG4bKabc"
    assert out.status == 200


def test_forward_reply_via_values_in_one_header():
    ctx = make_ctx(reply(["SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKus, SIP/2.0/UDP "
                          "10.0.0.1:5070;branch=z9hG4bKabc"]))
    assert forward_reply(ctx) == 1
    dest, out, buf = sent(ctx)
    assert (dest.ip, dest.port) == ("10.0.0.1", 5070)
    assert [v.branch for v in out.vias] == ["z9hG4bKabc"]
    assert b"Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc\r\n" in buf


def test_forward_reply_maddr_and_default_port():
    ctx = make_ctx(reply(["SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKus",
                          "SIP/2.0/UDP host.example;branch=z9hG4bKabc;maddr=192.0.2.44"]))
    assert forward_reply(ctx) == 1
    dest, _, _ = sent(ctx)
    assert (dest.ip, dest.port) == ("192.0.2.44", 5060)


def test_forward_reply_not_ours_is_dropped():
    ctx = make_ctx(reply(["SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKother",
                          "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc"]))
    assert forward_reply(ctx) < 0
    assert ctx.core.sent == [] and ctx.dropped


def test_forward_reply_without_second_via():
    ctx = make_ctx(reply(["SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKus"]))
    assert forward_reply(ctx) == E.E_BAD_VIA
    assert ctx.core.sent == []


# ---- reply destination for requests we answer ------------------------------------------------

@pytest.mark.parametrize("via,force,expected", [
    ("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKa", False, ("192.0.2.5", 5070)),
    ("SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKa", False, ("192.0.2.5", 5099)),
    ("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKa", True, ("192.0.2.5", 5099)),
    ("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa", False, ("192.0.2.5", 5060)),
])
def test_reply_dest_udp(via, force, expected):
    ctx = make_ctx(invite(via=via), src=("192.0.2.5", 5099))
    d = reply_dest(ctx.msg, ctx.rcv, force)
    assert (d.proto, d.ip, d.port) == ("udp", *expected)


def test_reply_dest_tcp_uses_connection():
    ctx = make_ctx(invite(via="SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKa"),
                   src=("192.0.2.5", 40000), proto="tcp")
    ctx.rcv.conn_id = 7
    d = reply_dest(ctx.msg, ctx.rcv)
    assert d == Dest("tcp", "192.0.2.5", 40000, None, 7)


def test_onsend_route_sees_destination_and_can_drop():
    from sipcore.testing import Harness

    h = Harness.from_text(
        'request_route { if (!forward()) { setflag(1); } exit; }\n'
        'onsend_route {\n'
        '  if (snd_ip == 127.0.0.1 && to_ip == 192.0.2.66) { drop; }\n'
        '}\n')
    r = h.request(invite(ruri="sip:bob@192.0.2.66"))
    assert r.sent == [] and r.ctx.isflagset(1) and not r.ctx.dropped
    r = h.request(invite(ruri="sip:bob@192.0.2.67"))
    assert len(r.sent) == 1 and not r.ctx.isflagset(1)
