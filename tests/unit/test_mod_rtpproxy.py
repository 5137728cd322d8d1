"""rtpproxy through the harness against a fake rtpproxy written here: a UDP socket on
127.0.0.1 (never anything else) that answers the control protocol (cookie, V/U/L/D/R) and
records the commands. INVITE/200/BYE go through rtpproxy_manage; the SDP on the wire is
checked, as are retries, node failover/disable and the RPCs."""
from __future__ import annotations

import socket
import threading
import uuid

import pytest

from modules.rtpproxy import rpc_enable, rpc_list
from modules.rtpproxy.rtpp_nodes import parse_sock_param
from sipcore.testing import Harness


class FakeRtpproxy:
    """Answers "<cookie> <cmd>" datagrams; U/L allocate a port per (call, tag, media)."""

    def __init__(self, relay_ip: str | None = "127.0.0.1", drop_first: int = 0,
                 mute: bool = False, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind(("127.0.0.1", port))
        except OSError:
            self.sock.close()
            raise
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.relay_ip = relay_ip
        self.drop_first = drop_first            # ignore the first N datagrams (retries)
        self.mute = mute
        self.commands: list[str] = []
        self.received = 0
        self.sessions: dict[str, int] = {}
        self.next_port = 35000
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"udp:127.0.0.1:{self.port}"

    def _answer(self, cmd: str) -> str:
        args = cmd.split()
        verb = args[0]
        if verb == "V":
            return "20040107"
        if verb[0] in "UL":
            callid = args[1]
            if verb[0] == "L" and callid not in self.sessions:
                return "E8"
            self.sessions.setdefault(callid, 0)
            self.next_port += 2
            port = self.next_port
            return f"{port} {self.relay_ip}" if self.relay_ip else str(port)
        if verb == "D":
            return "0" if self.sessions.pop(args[1], None) is not None else "E8"
        if verb == "R":
            return "0"
        return "E1"

    def _run(self) -> None:
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[0] != "127.0.0.1":
                continue                        # only loopback peers are answered
            self.received += 1
            if self.mute or self.received <= self.drop_first:
                continue
            cookie, _, cmd = data.decode().strip().partition(" ")
            self.commands.append(cmd)
            self.sock.sendto(f"{cookie} {self._answer(cmd)}\n".encode(), addr)

    def close(self) -> None:
        self._stop = True
        self.thread.join(1)
        self.sock.close()


@pytest.fixture()
def rtpp():
    fake = FakeRtpproxy()
    yield fake
    fake.close()


CFG = """
loadmodule "sl"
loadmodule "textops"
loadmodule "pv"
loadmodule "rtpproxy"
{params}
request_route {{
    $var(f) = "";
    if (is_present_hf("X-Flags")) $var(f) = $hdr(X-Flags);
    if ($hdr(X-Do) == "offer") {{ rtpproxy_offer("$var(f)"); $var(r) = $rc; }}
    else if ($hdr(X-Do) == "record") {{ start_recording(); $var(r) = $rc; }}
    else if ($hdr(X-Do) == "unforce") {{ unforce_rtp_proxy(); $var(r) = $rc; }}
    else {{ rtpproxy_manage("$var(f)"); $var(r) = $rc; }}
    if ($hdr(X-Fwd) == "no") {{
        append_to_reply("X-Rc: $var(r)\\r\\n");
        sl_send_reply("200", "OK");
        exit;
    }}
    forward("127.0.0.1", "5099");
}}
reply_route {{
    rtpproxy_manage("co");
}}
"""


def harness(*socks: str, params: str = "") -> Harness:
    lines = [f'modparam("rtpproxy", "rtpproxy_sock", "{s}")' for s in socks]
    lines.append('modparam("rtpproxy", "rtpproxy_tout", 200)')
    lines.append('modparam("rtpproxy", "rtpproxy_retr", 2)')
    return Harness.from_text(CFG.format(params="\n".join(lines) + "\n" + params))


SDP = ("v=0\r\no=alice 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
       "m=audio 49170 RTP/AVP 0 8\r\na=rtcp:49171\r\nm=video 51372 RTP/AVP 31\r\n"
       "c=IN IP4 10.0.0.6\r\n")
ANSWER = ("v=0\r\no=bob 2 2 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
          "m=audio 6000 RTP/AVP 0\r\n")


def invite(callid: str, body: str = SDP, extra: str = "", method: str = "INVITE",
           to_tag: str = "") -> str:
    lines = [f"{method} sip:bob@127.0.0.1 SIP/2.0",
             f"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK{uuid.uuid4().hex[:10]}",
             "Max-Forwards: 70", "From: <sip:alice@127.0.0.1>;tag=ft1",
             "To: <sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""),
             f"Call-ID: {callid}", f"CSeq: 1 {method}", "Contact: <sip:alice@10.0.0.5>"]
    lines += [ln for ln in extra.split("\n") if ln]
    if body:
        lines.append("Content-Type: application/sdp")
    return "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n" + body


def reply_200(callid: str, body: str = ANSWER) -> str:
    return ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
            "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKy\r\n"
            "From: <sip:alice@127.0.0.1>;tag=ft1\r\nTo: <sip:bob@127.0.0.1>;tag=tt2\r\n"
            f"Call-ID: {callid}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.20>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")


def test_manage_offer_answer_delete(rtpp):
    h = harness(rtpp.url)
    callid = uuid.uuid4().hex
    res = h.request(invite(callid, extra="X-Flags: co"), src=("127.0.0.1", 5070))
    (req,) = res.requests
    body = req.body.decode()
    # U per media stream, from the source address (no 'r'), tag;medianum
    assert rtpp.commands[0] == f"U {callid} 127.0.0.1 49170 ft1;1"
    assert rtpp.commands[1] == f"U {callid} 127.0.0.1 51372 ft1;2"
    assert "m=audio 35002 RTP/AVP 0 8\r\n" in body and "a=rtcp:35003\r\n" in body
    assert "m=video 35004 RTP/AVP 31\r\n" in body
    assert body.count("c=IN IP4 127.0.0.1\r\n") == 2       # session ('c' flag) + video
    assert "o=alice 1 1 IN IP4 127.0.0.1\r\n" in body       # 'o' flag
    assert "a=nortpproxy:yes\r\n" in body and "10.0.0." not in body
    assert req.content_length == len(req.body)
    # the 200 OK answer: L with both tags, SDP rewritten in the relayed reply
    res = h.reply(reply_200(callid), src=("127.0.0.1", 5090))
    assert rtpp.commands[2] == f"L {callid} 127.0.0.1 6000 ft1;1 tt2;1"
    (rep,) = res.replies
    assert b"m=audio 35006 RTP/AVP 0\r\n" in rep.body and b"192.0.2.20" not in rep.body
    # BYE deletes the session
    bye = invite(callid, body="", method="BYE", to_tag="tt2", extra="X-Fwd: no")
    res = h.request(bye)
    (rep,) = res.replies
    assert rtpp.commands[3] == f"D {callid} ft1 tt2"
    assert rep.header("X-Rc").value == "1"


def test_trust_flag_and_reply_without_address(rtpp):
    rtpp.relay_ip = None
    h = harness(rtpp.url)
    callid = uuid.uuid4().hex
    res = h.request(invite(callid, extra="X-Do: offer\nX-Flags: rai"))
    assert rtpp.commands[0] == f"UAI {callid} 10.0.0.5 49170 ft1;1"
    (req,) = res.requests
    # no address in the reply: our own (receiving) address goes into the SDP
    assert b"c=IN IP4 127.0.0.1\r\n" in req.body


def test_retry_then_answer(rtpp):
    rtpp.drop_first = 1                         # first datagram lost: the retry gets through
    h = harness(rtpp.url)
    callid = uuid.uuid4().hex
    res = h.request(invite(callid, body=ANSWER, extra="X-Do: offer"))
    assert rtpp.received == 2 and len(rtpp.commands) == 1
    (req,) = res.requests
    assert b"m=audio 35002 RTP/AVP 0" in req.body


def test_dead_node_is_disabled_and_set_fails_over(rtpp):
    dead = FakeRtpproxy(mute=True)
    try:
        h = harness(f"{dead.url}=100 {rtpp.url}=1")
        callid = uuid.uuid4().hex
        res = h.request(invite(callid, body=ANSWER, extra="X-Do: offer\nX-Fwd: no"))
        (rep,) = res.replies
        assert rep.header("X-Rc").value == "1"
        assert dead.received == 2                    # rtpproxy_retr tries, then failover
        assert rtpp.commands == [f"U {callid} 127.0.0.1 6000 ft1;1"]
        state = {n["url"]: n["disabled"] for n in rpc_list()}
        assert state == {dead.url: 1, rtpp.url: 0}
    finally:
        dead.close()


def test_no_node_answers():
    dead = FakeRtpproxy(mute=True)
    try:
        h = harness(dead.url)
        res = h.request(invite(uuid.uuid4().hex, extra="X-Do: offer\nX-Fwd: no"))
        (rep,) = res.replies
        assert rep.header("X-Rc").value == "-1"
    finally:
        dead.close()


def test_nortpproxy_mark_skips_unless_forced(rtpp):
    h = harness(rtpp.url)
    marked = ANSWER + "a=nortpproxy:yes\r\n"
    res = h.request(invite(uuid.uuid4().hex, body=marked, extra="X-Do: offer\nX-Fwd: no"))
    assert res.replies[0].header("X-Rc").value == "-1" and rtpp.commands == []
    res = h.request(invite(uuid.uuid4().hex, body=marked,
                           extra="X-Do: offer\nX-Flags: f\nX-Fwd: no"))
    assert res.replies[0].header("X-Rc").value == "1"


def test_late_offer_in_reply_and_error_reply(rtpp):
    h = harness(rtpp.url)
    callid = uuid.uuid4().hex
    h.request(invite(callid, body=""))                 # INVITE without SDP: nothing to do
    assert rtpp.commands == []
    h.reply(reply_200(callid))
    assert rtpp.commands[0].startswith(f"U {callid} ")   # the 200's SDP is the offer
    res = h.reply(reply_200(callid).replace("200 OK", "486 Busy Here"))
    assert rtpp.commands[-1] == f"D {callid} ft1 tt2"
    assert res.replies


def test_start_recording_and_unforce(rtpp):
    h = harness(rtpp.url)
    callid = uuid.uuid4().hex
    h.request(invite(callid, extra="X-Do: offer"))
    res = h.request(invite(callid, body="", to_tag="tt2", extra="X-Do: record\nX-Fwd: no"))
    assert rtpp.commands[-1] == f"R {callid} ft1 tt2"
    assert res.replies[0].header("X-Rc").value == "1"
    res = h.request(invite(callid, body="", to_tag="tt2", extra="X-Do: unforce\nX-Fwd: no"))
    assert rtpp.commands[-1] == f"D {callid} ft1 tt2"


def test_rpc_enable(rtpp):
    dead = FakeRtpproxy(mute=True)
    try:
        harness(f"{rtpp.url} {dead.url}")
        assert rpc_enable(rtpp.url, 0) == {"changed": 1}
        assert {n["url"]: n["permanent"] for n in rpc_list()}[rtpp.url] == 1
        assert rpc_enable(rtpp.url, 1) == {"changed": 1}     # V answered
        assert {n["url"]: n["disabled"] for n in rpc_list()}[rtpp.url] == 0
        from sipcore.errors import RpcFault

        with pytest.raises(RpcFault):
            rpc_enable(dead.url, 1)
        with pytest.raises(RpcFault):
            rpc_enable("udp:127.0.0.1:1", 1)
    finally:
        dead.close()


def test_sock_param_parsing():
    nodes = parse_sock_param("1 == udp:127.0.0.1:7722=2 udp6:[::1]:7723")
    assert [(n.set_id, n.host, n.port, n.weight, n.af) for n in nodes] == \
        [(1, "127.0.0.1", 7722, 2, 4), (1, "::1", 7723, 1, 6)]
    with pytest.raises(ValueError):
        parse_sock_param("tcp:127.0.0.1:7722")
    from sipcore.errors import ConfigError

    with pytest.raises((ConfigError, Exception)):
        harness("udp:127.0.0.1:99999")


def test_without_sockets_functions_fail():
    h = Harness.from_text(CFG.format(params=""))
    res = h.request(invite(uuid.uuid4().hex, extra="X-Do: offer\nX-Fwd: no"))
    assert res.replies[0].header("X-Rc").value == "-1"
    assert b"10.0.0.5" in res.ctx.msg.build()              # SDP untouched


def test_via_branch_flag(rtpp):
    h = harness(rtpp.url)
    callid = uuid.uuid4().hex
    raw = invite(callid, body=ANSWER, extra="X-Do: offer\nX-Flags: 1\nX-Fwd: no")
    h.request(raw)
    branch = raw.split("branch=", 1)[1].split("\r\n", 1)[0]
    assert rtpp.commands == [f"U {callid};{branch} 127.0.0.1 6000 ft1;1"]
