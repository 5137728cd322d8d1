"""The real server over TCP (children=2, tcp_children=2) on 127.0.0.1: answers on the same
connection, opens and reuses outbound connections, relays between TCP and UDP, frames
streams, disconnects garbage and stalled peers without blocking others, closes idle
connections, and reports them over RPC. Every process is stopped and reaped by the
start_server fixture (by PID)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import pytest

from sipcore.msg import parse_msg
from sipcore.msg.framing import ReceiveBuffer
from tests.services import needs_ipv6, require_sipp

from .conftest import ROOT, UA, child_pids

pytestmark = pytest.mark.integration

CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
tcp_connection_lifetime={lifetime}
tcp_wait_data=1000
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
loadmodule "pv"
loadmodule "sl"
loadmodule "textops"
loadmodule "siputils"
request_route {
    force_rport();
    if (is_method("OPTIONS") && uri==myself && $rU==$null) {
        append_to_reply("X-Proto: $pr\\r\\nX-Conid: $conid\\r\\n");
        sl_send_reply("200", "Keepalive");
        exit;
    }
    if ($hdr(X-Alias) == "yes") { force_tcp_alias(); }
    if ($rd != "127.0.0.1") { sl_send_reply("404", "Not Found"); exit; }
    if (!forward()) { sl_send_reply("503", "Service Unavailable"); }
}
"""


def cfg(lifetime: int = 120) -> str:
    return CFG.replace("{lifetime}", str(lifetime))


class TcpUA:
    """A SIP client over one TCP connection to the server."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.port = self.sock.getsockname()[1]
        self.rb = ReceiveBuffer()
        self.pending: list[bytes] = []

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        self.sock.sendall(data)

    def recv(self, timeout: float = 3.0) -> bytes | None:
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65535)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionError("closed by the server")
            self.rb.feed(chunk)
            self.pending.extend(self.rb.messages())
        return self.pending.pop(0)

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65535):
                    return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True

    def close(self) -> None:
        self.sock.close()


class TcpListenerUA:
    """A SIP UA listening on TCP (the callee side): accepts connections, reads messages."""

    def __init__(self) -> None:
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.buffers: dict[socket.socket, ReceiveBuffer] = {}

    def recv(self, timeout: float = 3.0) -> tuple[socket.socket, bytes] | None:
        import select

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.lsock, *self.accepted], [], [], left)
            for s in r:
                if s is self.lsock:
                    c, _ = s.accept()
                    self.accepted.append(c)
                    self.buffers[c] = ReceiveBuffer()
                    continue
                data = s.recv(65535)
                if not data:
                    self.accepted.remove(s)
                    continue
                rb = self.buffers[s]
                rb.feed(data)
                for m in rb.messages():
                    return s, m

    def close(self) -> None:
        for s in self.accepted:
            s.close()
        self.lsock.close()


def options(via_proto: str, via_port: int, ruri: str, cid: str | None = None,
            extra: str = "", cseq: int = 1) -> str:
    cid = cid or uuid.uuid4().hex
    return (f"OPTIONS {ruri} SIP/2.0\n"
            f"Via: SIP/2.0/{via_proto} 127.0.0.1:{via_port};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\n"
            f"Max-Forwards: 70\n"
            f"From: <sip:tester@127.0.0.1>;tag={cid[:6]}\n"
            f"To: <sip:127.0.0.1>\n"
            f"Call-ID: {cid}\n"
            f"CSeq: {cseq} OPTIONS\n"
            f"{extra}"
            f"Content-Length: 0\n\n")


def reply_to(req: bytes, status: str = "200 OK") -> bytes:
    """A reply to REQ (all its Vias, the dialog headers), as a UAS builds it."""
    m = parse_msg(req)
    b = m.buf
    return (f"SIP/2.0 {status}\r\n".encode() +
            b"".join(b[h.start:h.end] for h in m.header_all("Via")) +
            b"".join(b[h.start:h.end] for h in m.headers
                     if h.canonical_name in ("From", "To", "Call-ID", "CSeq")) +
            b"Content-Length: 0\r\n\r\n")


def _rpc(srv, method: str) -> object:
    out = subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                          str(srv.rundir / "pykam_ctl"), "--json", method], cwd=ROOT,
                         timeout=15, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _wait(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def _ask_tcp(port: int) -> int:
    ua = TcpUA(port)
    try:
        ua.send(options("TCP", ua.port, f"sip:127.0.0.1:{port}"))
        data = ua.recv(3)
        return parse_msg(data).status if data else 0
    finally:
        ua.close()


def test_processes_and_options_over_tcp_on_same_connection(start_server):
    srv = start_server(cfg())
    descs = [p["DSC"] for p in _rpc(srv, "core.psx")]
    assert sum(d.startswith("tcp receiver") for d in descs) == 2
    assert sum(d.startswith("udp receiver") for d in descs) == 2
    ua = TcpUA(srv.port)
    try:
        ua.send(options("TCP", ua.port, f"sip:127.0.0.1:{srv.port}"))
        rpl = parse_msg(ua.recv())
        assert rpl.status == 200 and rpl.reason == "Keepalive"
        assert rpl.header("X-Proto").value == "tcp"
        conid = int(rpl.header("X-Conid").value)
        assert conid > 0
        conns = _rpc(srv, "core.tcp_list")
        mine = [c for c in conns if c["src_port"] == ua.port]
        assert len(mine) == 1 and mine[0]["id"] == conid and mine[0]["type"] == "TCP"
        info = _rpc(srv, "core.tcp_info")
        assert info["readers"] == 2 and info["opened_connections"] >= 1
        assert _rpc(srv, "core.tcp_options")["connection_lifetime"] == 120
    finally:
        ua.close()


def test_several_messages_in_one_segment_byte_by_byte_and_pings(start_server):
    srv = start_server(cfg())
    ua = TcpUA(srv.port)
    try:
        ruri = f"sip:127.0.0.1:{srv.port}"
        cids = [uuid.uuid4().hex for _ in range(3)]
        batch = "".join(options("TCP", ua.port, ruri, c) for c in cids)
        ua.send(batch)
        got = [parse_msg(ua.recv()).callid for _ in cids]
        assert got == cids
        one = options("TCP", ua.port, ruri).replace("\n", "\r\n").encode()
        for i in range(len(one)):
            ua.sock.sendall(one[i:i + 1])
            if i % 50 == 0:
                time.sleep(0.001)
        assert parse_msg(ua.recv()).status == 200
        ua.sock.sendall(b"\r\n\r\n")            # RFC 5626 ping: answered with CRLF
        ua.sock.settimeout(3)
        assert ua.sock.recv(16) == b"\r\n"
    finally:
        ua.close()


def test_udp_request_forwarded_to_tcp_ua_reuses_connection(start_server):
    srv = start_server(cfg())
    caller, callee = UA(), TcpListenerUA()
    try:
        ruri = f"sip:bob@127.0.0.1:{callee.port};transport=tcp"
        for n in range(2):
            caller.send(options("UDP", caller.port, ruri, cseq=n + 1), srv.port)
            got = callee.recv(5)
            assert got is not None, srv.log()
            conn, req = got
            fwd = parse_msg(req)
            assert fwd.vias[0].transport.upper() == "TCP" and fwd.vias[0].port == srv.port
            conn.sendall(reply_to(req))     # answered on the connection it came on
            back = parse_msg(caller.recv())
            assert back.status == 200 and len(back.vias) == 1
        assert len(callee.accepted) == 1    # the second request reused the connection
        conns = _rpc(srv, "core.tcp_list")
        assert any(c["outbound"] == 1 and c["src_port"] == callee.port for c in conns)
    finally:
        caller.close()
        callee.close()


def test_tcp_request_relayed_to_udp_reply_back_on_same_connection(start_server):
    srv = start_server(cfg())
    ua, callee = TcpUA(srv.port), UA()
    try:
        for n in range(3):
            ua.send(options("TCP", ua.port, f"sip:bob@127.0.0.1:{callee.port}", cseq=n + 1))
            req = callee.recv()
            assert req is not None, srv.log()
            fwd = parse_msg(req)
            assert fwd.vias[1].transport.upper() == "TCP"
            callee.send(reply_to(req), srv.port)    # over UDP: handled by a UDP worker
            back = ua.recv()
            assert back is not None, srv.log()
            assert parse_msg(back).status == 200 and parse_msg(back).callid == fwd.callid
    finally:
        ua.close()
        callee.close()


def test_force_tcp_alias_lets_requests_reuse_the_connection(start_server):
    srv = start_server(cfg())
    ua, caller = TcpUA(srv.port), UA()
    try:
        # the TCP UA advertises port 5099 in its Via; force_tcp_alias() maps it to this conn
        req = options("TCP", 5099, f"sip:127.0.0.1:{srv.port}", extra="X-Alias: yes\n")
        req = req.replace("OPTIONS sip:127.0.0.1", "OPTIONS sip:nobody@127.0.0.1")
        ua.send(req.replace(f"sip:nobody@127.0.0.1:{srv.port}",
                            "sip:nobody@127.0.0.2:9"))  # 404: not routed anywhere
        assert parse_msg(ua.recv()).status == 404
        caller.send(options("UDP", caller.port, "sip:bob@127.0.0.1:5099;transport=tcp"),
                    srv.port)
        got = ua.recv()
        assert got is not None, srv.log()
        assert parse_msg(got).method == "OPTIONS"
    finally:
        ua.close()
        caller.close()


def test_garbage_and_stalled_peers_are_disconnected_others_served(start_server):
    srv = start_server(cfg())
    garbage, stalled = TcpUA(srv.port), TcpUA(srv.port)
    try:
        stalled.send("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1")
        garbage.send(b"\x00\x01 this is not SIP at all\r\n\r\n")
        assert garbage.closed_by_peer(5)
        for _ in range(5):                     # others are served meanwhile
            assert _ask_tcp(srv.port) == 200
        assert stalled.closed_by_peer(5)       # tcp_wait_data=1000 ms
        stats = _rpc(srv, "stats.fetch")
        assert int(stats["tcp.bad_framing"]) >= 1 and int(stats["tcp.stalled"]) >= 1
    finally:
        garbage.close()
        stalled.close()


def test_idle_connection_closed_after_lifetime(start_server):
    srv = start_server(cfg(lifetime=1))
    ua = TcpUA(srv.port)
    try:
        ua.send(options("TCP", ua.port, f"sip:127.0.0.1:{srv.port}"))
        assert parse_msg(ua.recv()).status == 200
        t0 = time.monotonic()
        assert ua.closed_by_peer(5)
        assert 0.5 < time.monotonic() - t0 < 6        # lifetime 1 s, 0.25 s ticks
        assert _wait(lambda: _rpc(srv, "core.tcp_info")["opened_connections"] == 0)
    finally:
        ua.close()


def test_killed_tcp_worker_is_respawned_and_its_connections_forgotten(start_server):
    srv = start_server(cfg())
    ua = TcpUA(srv.port)
    try:
        ua.send(options("TCP", ua.port, f"sip:127.0.0.1:{srv.port}"))
        assert parse_msg(ua.recv()).status == 200
        owner = next(c["owner"] for c in _rpc(srv, "core.tcp_list")
                     if c["src_port"] == ua.port)
        procs = _rpc(srv, "core.psx")
        victim = next(p["PID"] for p in procs
                      if p["DSC"] == f"tcp receiver (generic) child={owner}")
        os.kill(victim, 9)
        assert ua.closed_by_peer(5)             # the kernel closed the dead owner's socket
        assert _wait(lambda: victim not in child_pids(srv.proc.pid)
                     and len(child_pids(srv.proc.pid)) == 6)
        assert _wait(lambda: all(c["src_port"] != ua.port
                                 for c in _rpc(srv, "core.tcp_list")))
        for _ in range(4):
            assert _ask_tcp(srv.port) == 200
    finally:
        ua.close()


# ---- SIPp over TCP ---------------------------------------------------------------------------

# SIPp sends R-URI sip:service@127.0.0.1:<uas port> to the proxy (-rsa); RELAY forwards it
# statelessly (forward) or statefully (t_relay); TO_TCP makes the hop to the uas go over TCP.
SIPP_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
loadmodule "sl"
LOAD_TM
loadmodule "maxfwd"
loadmodule "pv"
request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (method=="OPTIONS" && uri==myself) { sl_send_reply("200", "Keepalive"); exit; }
    TO_TCP
    RELAY
    exit;
}
"""

SIPP_CALLS = 1000
SIPP_RATE = 300         # calls/s: 1,000 calls in ~3.5 s on an idle machine


def sipp_cfg(stateful: bool, to_tcp: bool) -> str:
    relay = ("if (!t_relay()) { sl_reply_error(); }" if stateful
             else 'if (!forward()) { sl_send_reply("503", "Service Unavailable"); }')
    return (SIPP_CFG.replace("LOAD_TM", 'loadmodule "tm"' if stateful else "")
            .replace("TO_TCP", '$du = "sip:" + $rd + ":" + $rp + ";transport=tcp";'
                     if to_tcp else "")
            .replace("RELAY", relay))


def _sipp_calls(srv, tmp_path, calls: int, uac_t: str, uas_t: str) -> None:
    """SIPp uac (transport UAC_T) -> SRV -> SIPp uas (UAS_T): CALLS calls at SIPP_RATE, every
    one must complete."""
    from .conftest import free_udp_port
    from .test_sipp import UAS_XML, _last_stats, _spawn, _stop, _tail

    require_sipp()
    uas_port, uac_port = free_udp_port(), free_udp_port()
    uas_log, uac_log = tmp_path / "uas.log", tmp_path / "uac.log"
    stat = tmp_path / "uac-stat.csv"
    uas = _spawn(["sipp", "-sf", str(UAS_XML), "-d", "50", "-i", "127.0.0.1", "-t", uas_t,
                  "-p", str(uas_port), "-bind_local", "-nostdin"], tmp_path, uas_log)
    uac = None
    try:
        time.sleep(0.3)
        assert uas.poll() is None, _tail(uas_log)
        # -timeout bounds a run on a loaded 2-core machine; an idle one needs ~4 s. -d 20: the
        # uac talks 20 ms between its ACK and its BYE. Sent back to back over UDP, two UDP
        # workers may relay the BYE before the ACK (Kamailio with children=2 as well), and
        # SIPp's uas aborts the call on the late ACK instead of answering the BYE.
        uac = _spawn(["sipp", "-sn", "uac", "-i", "127.0.0.1", "-p", str(uac_port), "-t", uac_t,
                      "-bind_local", "-rsa", f"127.0.0.1:{srv.port}", f"127.0.0.1:{uas_port}",
                      "-d", "20", "-r", str(SIPP_RATE), "-m", str(calls), "-l", str(calls),
                      "-recv_timeout", "10000", "-timeout", "90s", "-nostdin", "-trace_stat",
                      "-stf", str(stat), "-fd", "3600", "-max_socket", str(calls + 100),
                      "-trace_err", "-error_file", str(tmp_path / "uac-errors.log")],
                     tmp_path, uac_log)
        try:
            rc = uac.wait(100)
        except subprocess.TimeoutExpired:
            rc = None
        st = _last_stats(stat)
        detail = (f"rc={rc} ok={st.get('SuccessfulCall(C)')} failed={st.get('FailedCall(C)')}"
                  f"\nerrors:\n{_tail(tmp_path / 'uac-errors.log')}"
                  f"\nuac:\n{_tail(uac_log, 1500)}\nuas:\n{_tail(uas_log, 1500)}"
                  f"\npykam:\n{srv.log()[-3000:]}")
        assert rc == 0 and int(st["SuccessfulCall(C)"]) == calls, detail
        assert int(st["FailedCall(C)"]) == 0, detail
    finally:
        if uac is not None:
            _stop(uac)
        _stop(uas)


@pytest.mark.parametrize("stateful", [False, True], ids=["forward", "t_relay"])
@pytest.mark.parametrize(("uac_t", "uas_t"), [("t1", "u1"), ("tn", "u1"), ("u1", "t1")],
                         ids=["uac-tcp-one-conn", "uac-tcp-conn-per-call", "uas-tcp"])
def test_sipp_1000_calls_between_tcp_and_udp(start_server, tmp_path, stateful, uac_t, uas_t):
    """Acceptance: 1,000 calls, 0 failures, children=2 and tcp_children=2; SIPp over TCP with
    one connection (t1) or one connection per call (tn) to a UDP uas, and a UDP uac to a
    TCP uas that pykam connects to once and then reuses."""
    srv = start_server(sipp_cfg(stateful, to_tcp=uas_t != "u1"))
    _sipp_calls(srv, tmp_path, SIPP_CALLS, uac_t, uas_t)
    stats = _rpc(srv, "stats.fetch")
    if uas_t == "t1":
        assert int(stats["tcp.connect_success"]) == 1           # one connection, reused
    elif uac_t == "tn":
        assert int(stats["tcp.passive_open"]) >= SIPP_CALLS      # one connection per call
    else:
        assert int(stats["tcp.passive_open"]) == 1
    assert "Traceback" not in srv.log()


V6_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
tcp_accept_aliases=yes
tcp_max_connections=4
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
listen=tcp:[::1]:{port}
loadmodule "pv"
loadmodule "sl"
loadmodule "textops"
loadmodule "siputils"
request_route {
    if (is_method("OPTIONS") && uri==myself && $rU==$null) {
        append_to_reply("X-Proto: $pr\\r\\nX-Src: $si\\r\\n");
        sl_send_reply("200", "Keepalive");
        exit;
    }
    if (!forward()) { sl_send_reply("503", "Service Unavailable"); }
}
"""


@needs_ipv6
def test_ipv6_via_alias_and_max_connections(start_server):
    srv = start_server(V6_CFG)
    c6 = socket.create_connection(("::1", srv.port), timeout=3)
    ua6 = TcpUA.__new__(TcpUA)
    ua6.sock, ua6.port, ua6.rb, ua6.pending = c6, c6.getsockname()[1], ReceiveBuffer(), []
    extra: list[TcpUA] = []
    try:
        req = options("TCP", ua6.port, f"sip:[::1]:{srv.port}").replace(
            "127.0.0.1:", "[::1]:", 1)
        ua6.send(req)
        rpl = parse_msg(ua6.recv())
        assert rpl.status == 200 and rpl.header("X-Src").value == "::1"
        # RFC 5923: ;alias in the Via makes the connection reachable at the sent-by port
        ua = TcpUA(srv.port)
        extra.append(ua)
        ua.send(options("TCP", 5098, f"sip:127.0.0.1:{srv.port}").replace(";rport", ";alias"))
        assert parse_msg(ua.recv()).status == 200
        caller = UA()
        try:
            caller.send(options("UDP", caller.port, "sip:bob@127.0.0.1:5098;transport=tcp"),
                        srv.port)
            got = ua.recv()
            assert got is not None and parse_msg(got).method == "OPTIONS", srv.log()
        finally:
            caller.close()
        # tcp_max_connections=4: two are open, two more are served, the fifth is refused
        extra.extend(TcpUA(srv.port) for _ in range(2))
        for u in extra[1:]:
            u.send(options("TCP", u.port, f"sip:127.0.0.1:{srv.port}"))
            assert parse_msg(u.recv()).status == 200
        refused = TcpUA(srv.port)
        extra.append(refused)
        assert refused.closed_by_peer(3)
        stats = _rpc(srv, "stats.fetch")
        assert int(stats["tcp.local_reject"]) >= 1
    finally:
        c6.close()
        for u in extra:
            u.close()


def test_200_connections_with_crlf_keepalives(start_server):
    srv = start_server(cfg())
    uas: list[TcpUA] = []
    try:
        for _ in range(200):
            uas.append(TcpUA(srv.port))
        for u in uas:
            u.send(options("TCP", u.port, f"sip:127.0.0.1:{srv.port}"))
        assert all(parse_msg(u.recv(5)).status == 200 for u in uas)
        # held open for 30 s with an RFC 5626 double-CRLF ping every 10 s, each answered
        # with a CRLF pong; all 200 stay open (tcp_connection_lifetime is longer)
        start = time.monotonic()
        for rnd in range(4):
            if rnd:
                time.sleep(max(0.0, start + 10 * rnd - time.monotonic()))
            for u in uas:
                u.sock.sendall(b"\r\n\r\n")
            for u in uas:
                u.sock.settimeout(5)
                assert u.sock.recv(16) == b"\r\n"
        assert time.monotonic() - start >= 30
        info = _rpc(srv, "core.tcp_info")
        assert info["opened_connections"] == 200
        owners = {c["owner"] for c in _rpc(srv, "core.tcp_list")}
        assert owners <= {0, 1}
    finally:
        for u in uas:
            u.close()


REG_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "tm"
loadmodule "pv"
loadmodule "textops"
loadmodule "siputils"
loadmodule "usrloc"
loadmodule "registrar"
request_route {
    if (is_method("OPTIONS") && uri==myself && $rU==$null) { sl_send_reply("200", "OK"); exit; }
    if (is_method("REGISTER")) { force_tcp_alias(); save("location"); exit; }
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    t_relay();
}
"""


def test_user_registered_over_tcp_is_reached_on_that_connection(start_server):
    srv = start_server(REG_CFG)
    phone, caller = TcpUA(srv.port), UA()
    try:
        cid = uuid.uuid4().hex
        phone.send(f"REGISTER sip:127.0.0.1:{srv.port} SIP/2.0\n"
                   f"Via: SIP/2.0/TCP 127.0.0.1:5097;branch=z9hG4bK{cid[:10]}\n"
                   "Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=r1\n"
                   f"To: <sip:alice@127.0.0.1>\nCall-ID: {cid}\nCSeq: 1 REGISTER\n"
                   "Contact: <sip:alice@127.0.0.1:5097;transport=tcp>\nExpires: 600\n"
                   "Content-Length: 0\n\n")
        assert parse_msg(phone.recv()).status == 200
        caller.send(options("UDP", caller.port, f"sip:alice@127.0.0.1:{srv.port}"), srv.port)
        got = phone.recv()                  # nobody listens on 5097: it must be this conn
        assert got is not None, srv.log()
        req = parse_msg(got)
        assert req.method == "OPTIONS" and req.ruri.startswith("sip:alice@127.0.0.1:5097")
        phone.send(reply_to(got))
        back = caller.recv()
        assert back is not None and parse_msg(back).status == 200
    finally:
        phone.close()
        caller.close()


LOOKUP_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "tm"
loadmodule "pv"
loadmodule "textops"
loadmodule "siputils"
loadmodule "usrloc"
loadmodule "registrar"
request_route {
    if (is_method("OPTIONS") && uri==myself && $rU==$null) { sl_send_reply("200", "OK"); exit; }
    if (is_method("REGISTER")) { save("location"); exit; }
    if (is_method("CANCEL") || has_totag()) { t_relay(); exit; }
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    if ($hdr(X-Stateless) == "yes") { forward(); exit; }
    t_relay();
}
"""


def _request(method: str, ruri: str, port: int, cid: str, branch: str, cseq: int = 1,
             extra: str = "") -> str:
    """A request from the UDP caller on PORT (same BRANCH for an INVITE and its CANCEL)."""
    return (f"{method} {ruri} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\n"
            "Max-Forwards: 70\n"
            f"From: <sip:bob@127.0.0.1>;tag=f{cid[:6]}\n"
            f"To: <sip:alice@127.0.0.1>\n"
            f"Call-ID: {cid}\n"
            f"CSeq: {cseq} {method}\n"
            f"Contact: <sip:bob@127.0.0.1:{port}>\n"
            f"{extra}"
            "Content-Length: 0\n\n")


def _answer(req: bytes, status: str, to_tag: str = "p1") -> bytes:
    """The phone's reply to REQ, with a To tag."""
    raw = reply_to(req, status)
    head, _, rest = raw.partition(b"\r\nTo: ")
    to_line, _, tail = rest.partition(b"\r\n")
    if b";tag=" not in to_line:
        to_line += f";tag={to_tag}".encode()
    return head + b"\r\nTo: " + to_line + b"\r\n" + tail


def _replies(ua: UA, want: set[int], timeout: float = 5.0) -> dict[int, bytes]:
    """Replies received by UA until every status in WANT is seen (100 Trying ignored)."""
    got: dict[int, bytes] = {}
    deadline = time.monotonic() + timeout
    while not want <= set(got):
        data = ua.recv(max(0.05, deadline - time.monotonic()))
        if data is None:
            break
        m = parse_msg(data)
        if m.is_request or m.status == 100:
            continue
        got[m.status] = data
    return got


def _values(tree: object, key: str) -> list[object]:
    if isinstance(tree, dict):
        return [v for k, v in tree.items() if k == key] + \
            [x for v in tree.values() for x in _values(v, key)]
    if isinstance(tree, list):
        return [x for v in tree for x in _values(v, key)]
    return []


def test_lookup_sends_over_the_connection_the_contact_registered_on(start_server):
    """A phone registers over TCP from a client socket that never listens; its Contact names
    a port where another TCP UA listens. lookup() takes the stored connection id, so the
    INVITE from a UDP caller, its CANCEL and the ACK of the 487 (t_relay), and a stateless
    forward() all arrive on the phone's own connection; the other UA gets nothing."""
    srv = start_server(LOOKUP_CFG)
    decoy = TcpListenerUA()                 # what address-based delivery would reach
    phone, caller = TcpUA(srv.port), UA()
    try:
        cid = uuid.uuid4().hex
        contact = f"sip:alice@127.0.0.1:{decoy.port};transport=tcp"
        phone.send(f"REGISTER sip:127.0.0.1:{srv.port} SIP/2.0\n"
                   f"Via: SIP/2.0/TCP 127.0.0.1:{decoy.port};branch=z9hG4bK{cid[:10]}\n"
                   "Max-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=r1\n"
                   f"To: <sip:alice@127.0.0.1>\nCall-ID: {cid}\nCSeq: 1 REGISTER\n"
                   f"Contact: <{contact}>\nExpires: 600\nContent-Length: 0\n\n")
        assert parse_msg(phone.recv()).status == 200
        conid = next(c["id"] for c in _rpc(srv, "core.tcp_list") if c["src_port"] == phone.port)
        assert _values(_rpc(srv, "ul.dump"), "Tcpconn-Id") == [conid]

        # stateful: INVITE, 180, CANCEL, 487 and its ACK, all on the phone's connection
        call, br = uuid.uuid4().hex, uuid.uuid4().hex[:12]
        ruri = f"sip:alice@127.0.0.1:{srv.port}"
        caller.send(_request("INVITE", ruri, caller.port, call, br), srv.port)
        inv = phone.recv(5)
        assert inv is not None, srv.log()[-3000:]
        assert parse_msg(inv).method == "INVITE" and parse_msg(inv).ruri == contact
        phone.send(_answer(inv, "180 Ringing"))
        assert 180 in _replies(caller, {180})
        caller.send(_request("CANCEL", ruri, caller.port, call, br), srv.port)
        cancel = phone.recv(5)
        assert cancel is not None and parse_msg(cancel).method == "CANCEL", srv.log()[-3000:]
        phone.send(_answer(cancel, "200 OK"))
        phone.send(_answer(inv, "487 Request Terminated"))
        assert {200, 487} <= set(_replies(caller, {200, 487}))
        ack = phone.recv(5)
        assert ack is not None and parse_msg(ack).method == "ACK", srv.log()[-3000:]

        # stateless: forward() after lookup() takes the same connection
        caller.send(_request("OPTIONS", ruri, caller.port, uuid.uuid4().hex,
                             uuid.uuid4().hex[:12], extra="X-Stateless: yes\n"), srv.port)
        opt = phone.recv(5)
        assert opt is not None and parse_msg(opt).method == "OPTIONS", srv.log()[-3000:]
        phone.send(reply_to(opt))
        assert 200 in _replies(caller, {200})

        assert decoy.recv(0.3) is None and decoy.accepted == []
        assert _rpc(srv, "stats.fetch")["tcp.connect_success"] in (0, "0")
        assert "Traceback" not in srv.log()
    finally:
        phone.close()
        caller.close()
        decoy.close()


FILTER_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "siputils"
loadmodule "usrloc"
loadmodule "registrar"
modparam("registrar", "lookup_filter_mode", 2)
request_route {
    if (is_method("REGISTER")) { save("location"); exit; }
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    append_to_reply("X-Ruri: $ru\\r\\n");
    sl_send_reply("200", "Found");
}
"""


def test_lookup_filter_mode_2_skips_contacts_whose_connection_closed(start_server):
    """lookup_filter_mode bit 2 (Kamailio REG_LOOKUP_FILTER_TCPCON): a contact registered
    over TCP is found while its connection is open and filtered out once it closes; a
    contact registered over UDP is never filtered."""
    srv = start_server(FILTER_CFG)
    phone, caller = TcpUA(srv.port), UA()
    try:
        def register(send: Callable[[str], None], user: str, port: int, proto: str) -> None:
            cid = uuid.uuid4().hex
            send(f"REGISTER sip:127.0.0.1:{srv.port} SIP/2.0\n"
                 f"Via: SIP/2.0/{proto} 127.0.0.1:{port};branch=z9hG4bK{cid[:10]}\n"
                 f"Max-Forwards: 70\nFrom: <sip:{user}@127.0.0.1>;tag=r1\n"
                 f"To: <sip:{user}@127.0.0.1>\nCall-ID: {cid}\nCSeq: 1 REGISTER\n"
                 f"Contact: <sip:{user}@127.0.0.1:{port};transport={proto.lower()}>\n"
                 "Expires: 600\nContent-Length: 0\n\n")

        def found(user: str) -> bytes | None:
            caller.send(options("UDP", caller.port, f"sip:{user}@127.0.0.1:{srv.port}"),
                        srv.port)
            r = parse_msg(caller.recv())
            if r.status == 404:
                return None
            assert r.status == 200, r
            return r.header("X-Ruri").value.encode()

        register(phone.send, "alice", phone.port, "TCP")
        assert parse_msg(phone.recv()).status == 200
        register(lambda m: caller.send(m, srv.port), "bob", caller.port, "UDP")
        assert parse_msg(caller.recv()).status == 200

        assert found("alice") == f"sip:alice@127.0.0.1:{phone.port};transport=tcp".encode()
        phone.close()
        assert _wait(lambda: not any(c["src_port"] == phone.port
                                     for c in _rpc(srv, "core.tcp_list"))), srv.log()[-2000:]
        assert found("alice") is None                      # its connection is gone
        assert found("bob") == f"sip:bob@127.0.0.1:{caller.port};transport=udp".encode()
        assert len(_values(_rpc(srv, "ul.dump"), "Contact")) == 2   # filtered, not removed
        assert "Traceback" not in srv.log()
    finally:
        phone.close()
        caller.close()
