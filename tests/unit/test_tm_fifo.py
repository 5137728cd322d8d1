"""t_write_req() / t_write_unix() (Kamailio t_fifo.c): the transaction's request goes to an
external application as twenty "\\n"-ended lines, to a FIFO (O_NONBLOCK) or a unix datagram
socket; a missing reader is an error (-1), never a blocked worker; a blind branch makes tm
answer 408 when the application does not reply in time."""
from __future__ import annotations

import os
import socket
import time

import pytest

import modules.tm as tm
import modules.tmx as tmx
from modules.tm.state import table
from modules.tm.t_fifo import parse_tw_append
from sipcore import log as klog
from sipcore.msg import parse_msg
from sipcore.testing import Harness
from tests.unit.test_tm_relay import reply_to

CFG = """
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "textops"
modparam("tm", "fr_timer", 200)
modparam("tm", "tw_append", "app1: ua=hdr[User-Agent]; avp[s:who]; msg[body]")

request_route {
    if (is_method("ACK")) { t_check_trans(); exit; }
    t_newtran();
    $avp(who) = "box-7";
    if (is_method("MESSAGE")) {
        if (!t_write_unix("SOCK", "voicemail/app1")) { t_reply("500", "Unix write failed"); }
        exit;
    }
    if (!t_write_req("FIFO", "voicemail")) { t_reply("500", "Fifo write failed"); }
    exit;
}
"""

SDP = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n"

INVITE = ("INVITE sip:bob@example.com SIP/2.0\r\n"
          "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKw1;rport\r\n"
          "Record-Route: <sip:p1.example.net;lr>, <sip:p2.example.net;lr>\r\n"
          "Max-Forwards: 70\r\n"
          "From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n"
          "To: <sip:bob@example.com>\r\n"
          "Call-ID: w-call-1\r\n"
          "CSeq: 17 INVITE\r\n"
          "Contact: <sip:alice@10.0.0.1:5070>\r\n"
          "User-Agent: softphone 1.0\r\n"
          "Content-Type: application/sdp\r\n"
          f"Content-Length: {len(SDP)}\r\n\r\n{SDP}")

MESSAGE = ("MESSAGE sip:carol@example.com SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKw2;rport\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:alice@example.com>;tag=a2\r\n"
           "To: <sip:carol@example.com>;tag=c9\r\n"
           "Call-ID: w-call-2\r\n"
           "CSeq: 3 MESSAGE\r\n"
           "User-Agent: softphone 1.0\r\n"
           "Content-Type: text/plain\r\n"
           "Content-Length: 5\r\n\r\nhello")


@pytest.fixture(autouse=True)
def _forget_modparams():
    yield
    for m in (tm.mod, tmx.mod):
        m.reset_params()


@pytest.fixture
def paths(tmp_path):
    fifo = tmp_path / "vm.fifo"
    sock = tmp_path / "vm.sock"
    return str(fifo), str(sock)


def harness(fifo: str, sock: str) -> Harness:
    for m in (tm.mod, tmx.mod):
        m.reset_params()
    return Harness.from_text(CFG.replace("FIFO", fifo).replace("SOCK", sock))


def tid_text() -> str:
    [cell] = table().cells()
    return f"{int(cell.tid[:8], 16)}:{int(cell.tid[8:], 16)}"


def test_t_write_req_writes_kamailio_lines_to_the_fifo(paths):
    fifo, sock = paths
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        h = harness(fifo, sock)
        res = h.request(INVITE)
        assert [m.status for m in res.replies] == [100]      # no 500: written
        data = os.read(reader, 65536)
    finally:
        os.close(reader)
    # the first Record-Route is a loose router: next hop, and (as Kamailio's assemble_msg
    # does) it heads the route set twice
    expected = "".join(line + "\n" for line in [
        "0.3", "sip_request.voicemail", "INVITE", "bob", "example.com", "127.0.0.1", ".",
        "sip:bob@example.com", "sip:alice@10.0.0.1:5070",
        "\"Alice\" <sip:alice@example.com>;tag=a1", "<sip:bob@example.com>", "w-call-1",
        "a1", "", "17", tid_text(),
        "<sip:p1.example.net;lr>,<sip:p1.example.net;lr>,<sip:p2.example.net;lr>",
        "sip:p1.example.net;lr", "P-MsgFlags: 08\n.", SDP])
    assert data == expected.encode()


def test_t_write_unix_sends_one_datagram_with_the_append(paths):
    fifo, sock = paths
    app = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    app.bind(sock)
    app.settimeout(2)
    try:
        h = harness(fifo, sock)
        res = h.request(MESSAGE)
        assert res.replies == []
        data = app.recv(65536)
    finally:
        app.close()
    expected = "".join(line + "\n" for line in [
        "0.3", "sip_request.voicemail", "MESSAGE", "carol", "example.com", "127.0.0.1", ".",
        "sip:carol@example.com", "sip:alice@example.com",   # no Contact: the From URI
        "<sip:alice@example.com>;tag=a2", "<sip:carol@example.com>;tag=c9", "w-call-2",
        "a2", "c9", "3", tid_text(), ".", ".",
        "P-MsgFlags: 08\nua: softphone 1.0\nwho: box-7\n.", "hello"])
    assert data == expected.encode()


def test_no_reader_is_an_error_not_a_blocked_worker(paths):
    fifo, sock = paths
    os.mkfifo(fifo)
    lines = klog.capture()
    try:
        h = harness(fifo, sock)
        start = time.monotonic()
        res = h.request(INVITE)
        assert time.monotonic() - start < 1
        assert [m.status for m in res.replies] == [100, 500]
        assert any("nobody listening for reading" in t for _l, t in lines)
        # no socket bound at SOCK: t_write_unix fails the same way
        res = h.request(MESSAGE)
        assert [m.status for m in res.replies] == [500]
    finally:
        klog.capture(False)


def test_blind_branch_answers_408_when_the_application_is_silent(paths):
    fifo, sock = paths
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        h = harness(fifo, sock)
        h.request(INVITE)
        [cell] = table().cells()
        assert len(cell.branches) == 1 and cell.branches[0].buf == b""
        before = len(h.core.sent)
        time.sleep(0.25)
        h.run_timers()
        up = [parse_msg(b) for d, b in h.core.sent[before:] if d.port == 5080]
        assert [m.status for m in up] == [408]
    finally:
        os.close(reader)


def test_tw_append_syntax_and_unknown_append_name(paths):
    app = parse_tw_append("test: ua=hdr[User-Agent] ;avp[i:5]; msg[body]")
    assert app.name == "test" and app.add_body
    assert [(e.kind, e.title, e.name) for e in app.elems] == [
        ("hdr", "ua", "User-Agent"), ("avp", "5", "5")]
    for bad in ("noelements:", "x: avp[]", "x: foo[bar]", "x: msg[head]", ": hdr[To]"):
        with pytest.raises(ValueError):
            parse_tw_append(bad)
    fifo, sock = paths
    from sipcore.errors import ConfigErrors

    with pytest.raises(ConfigErrors, match="unknown append name <nope>"):
        Harness.from_text(CFG.replace("voicemail/app1", "voicemail/nope")
                          .replace("FIFO", fifo).replace("SOCK", sock))


def test_t_write_req_in_failure_route(paths):
    """Voicemail on busy: the failure_route hands the transaction over; the P-MsgFlags show
    Kamailio's failure_route flags (SHM clone, branch replied); nothing goes upstream."""
    fifo, _sock = paths
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        for m in (tm.mod, tmx.mod):
            m.reset_params()
        h = Harness.from_text(f"""
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
request_route {{
    t_on_failure("VM");
    $du = "sip:127.0.0.1:5210";
    t_relay();
}}
failure_route[VM] {{
    if (!t_write_req("{fifo}", "voicemail")) {{ t_reply("500", "No voicemail"); }}
}}
""")
        out = [b for d, b in h.request(INVITE).sent if d.port == 5210][0]
        res = h.reply(reply_to(out, 486, "Busy Here"))
        assert [parse_msg(b).method for d, b in res.sent if d.port == 5210] == ["ACK"]
        assert [d.port for d, _b in res.sent if d.port == 5080] == []
        lines = os.read(reader, 65536).decode().split("\n")
    finally:
        os.close(reader)
    assert lines[:3] == ["0.3", "sip_request.voicemail", "INVITE"]
    assert lines[18:20] == ["P-MsgFlags: 0d", "."]      # 0x80 | 0x10 | 0x40
