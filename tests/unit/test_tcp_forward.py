"""Forwarding decisions for stream transports (sipcore.forward + sipcore.reply): the
`;i=` connection id in our Via and its use for relayed replies, no-connect and close flags."""
from __future__ import annotations

from sipcore.forward import forward_reply, forward_request
from sipcore.msg import parse_msg
from sipcore.net.addr import SocketInfo
from sipcore.reply import send_stateless_reply
from sipcore.testing import RecordingCore, make_ctx

REQ = ("OPTIONS sip:bob@192.0.2.20 SIP/2.0\n"
       "Via: SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKabc;rport\n"
       "Max-Forwards: 70\nFrom: <sip:a@a>;tag=1\nTo: <sip:b@b>\nCall-ID: c1\n"
       "CSeq: 1 OPTIONS\nContent-Length: 0\n\n")


def _core() -> RecordingCore:
    return RecordingCore([SocketInfo("udp", "127.0.0.1", 5060),
                          SocketInfo("tcp", "127.0.0.1", 5060)])


def test_request_from_tcp_carries_connection_id_and_reply_uses_it():
    ctx = make_ctx(REQ, src=("10.0.0.1", 40001), proto="tcp", core=_core())
    ctx.rcv.conn_id = 0x2A
    assert forward_request(ctx) == 1
    dest, buf = ctx.core.sent[-1]
    fwd = parse_msg(buf)
    assert dest.proto == "udp" and fwd.vias[0].param("i") == "2a"
    # the UAS answers; the relayed reply goes to TCP connection 0x2a (Via 2 names port 5070)
    b = fwd.buf
    reply = (b"SIP/2.0 200 OK\r\n" + b"".join(b[h.start:h.end] for h in fwd.header_all("Via"))
             + b"".join(b[h.start:h.end] for h in fwd.headers
                        if h.canonical_name in ("From", "To", "Call-ID", "CSeq"))
             + b"Content-Length: 0\r\n\r\n")
    rctx = make_ctx(reply.decode(), src=("192.0.2.20", 5060), core=ctx.core)
    assert forward_reply(rctx) == 1
    rdest, _ = ctx.core.sent[-1]
    assert (rdest.proto, rdest.conn_id, rdest.port) == ("tcp", 0x2A, 40001)


def test_udp_request_has_no_connection_id():
    ctx = make_ctx(REQ.replace("TCP", "UDP"), src=("10.0.0.1", 5070), core=_core())
    assert forward_request(ctx) == 1
    assert parse_msg(ctx.core.sent[-1][1]).vias[0].param("i") is None


def test_no_connect_and_close_flags_reach_the_destination():
    ctx = make_ctx(REQ.replace("bob@192.0.2.20", "bob@192.0.2.20;transport=tcp"),
                   src=("10.0.0.1", 40001), proto="tcp", core=_core())
    ctx.forward_no_connect = True
    ctx.forward_close = True
    assert forward_request(ctx) == 1
    dest, _ = ctx.core.sent[-1]
    assert dest.proto == "tcp" and dest.no_connect and dest.close_after
    ctx.reply_no_connect = True
    ctx.reply_close = True
    assert send_stateless_reply(ctx, 200, "OK")
    rdest, _ = ctx.core.sent[-1]
    assert rdest.no_connect and rdest.close_after and rdest.proto == "tcp"


def test_otcpid_names_the_connection_unless_a_host_is_given():
    """lookup() sets ctx.otcpid (the contact's connection): forward() to the R-URI/$du sends on
    it, forward(host) to another hop does not, and UDP never carries one."""
    tcp_req = REQ.replace("bob@192.0.2.20", "bob@192.0.2.20;transport=tcp")
    ctx = make_ctx(tcp_req, src=("10.0.0.1", 5070), core=_core())
    ctx.otcpid = 77
    assert forward_request(ctx) == 1
    assert ctx.core.sent[-1][0].conn_id == 77
    assert forward_request(ctx, host="192.0.2.30", proto="tcp") == 1
    assert ctx.core.sent[-1][0].conn_id == 0
    udp = make_ctx(REQ, src=("10.0.0.1", 5070), core=_core())
    udp.otcpid = 77
    assert forward_request(udp) == 1
    assert udp.core.sent[-1][0].conn_id == 0
