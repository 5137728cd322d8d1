"""10,000 fuzzed datagrams at the server's UDP socket: nothing dies, OPTIONS still answered.

The datagrams are mutations of real requests (truncation, byte flips, duplicated and oversized
headers, NUL bytes, broken line ends and Content-Length, random garbage), from a fixed seed. The
server's process tree (the master and every child, from /proc ppid) must be the same set of live
PIDs before and after (a worker that died and was respawned counts as a failure), the log must
show no Traceback, an OPTIONS must still be answered and a clean request still relayed, and the
counter of dropped malformed messages (`core:drop_msgs`, read with pykamcmd from the control
socket under the cfg's rundir) must have grown by about the number of datagrams the parser
rejects. Uses only the command line, pykamcmd, /proc and the wire.

Safety: the config forwards only requests whose R-URI is exactly 127.0.0.1:<sink port> (a socket
of this test), answers the rest itself (to the source address), and drops replies, so no fuzzed
address can send traffic anywhere but to this test on 127.0.0.1.
"""
from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sipcore.errors import ParseError
from sipcore.msg import parse_msg

from .conftest import ROOT, UA, options

pytestmark = pytest.mark.integration

COUNT = 10_000
SEED = 20261126
MAX_DGRAM = 65507

CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
listen=udp:127.0.0.1:{port}
rundir="RUNDIR"
loadmodule "sl"
loadmodule "maxfwd"
loadmodule "sanity"
modparam("sanity", "autodrop", 0)
request_route {
    force_rport();
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!sanity_check("17895", "7")) { exit; }
    if (method=="OPTIONS" && uri==myself) { sl_send_reply("200", "Keepalive"); exit; }
    if ($rd == "127.0.0.1" && $rp == SINKPORT) { forward(); exit; }
    if (method!="ACK") { sl_send_reply("404", "Not Found"); }
    exit;
}
reply_route { drop; }
"""


# ---------------------------------------------------------------------------- corpus

def _base_requests(port: int, src: int, sink: int) -> list[bytes]:
    sdp = ("v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\n"
           "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 97\r\n"
           "a=rtpmap:0 PCMU/8000\r\na=rtpmap:97 iLBC/8000\r\n")
    common = (f"Via: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{{b}};rport\r\n"
              f"Max-Forwards: 70\r\n"
              f"From: \"Alice\" <sip:alice@127.0.0.1>;tag=1928301774\r\n"
              f"Call-ID: a84b4c76e66710@127.0.0.1\r\n")
    reqs = [
        (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n" + common +
         f"To: <sip:127.0.0.1:{port}>\r\nCSeq: 63104 OPTIONS\r\nAccept: application/sdp\r\n"
         "Content-Length: 0\r\n\r\n"),
        (f"INVITE sip:bob@127.0.0.1:{sink} SIP/2.0\r\n" + common +
         f"To: Bob <sip:bob@127.0.0.1:{sink}>\r\nCSeq: 314159 INVITE\r\n"
         f"Contact: <sip:alice@127.0.0.1:{src};transport=udp>\r\n"
         "Route: <sip:127.0.0.1;lr>\r\nRecord-Route: <sip:p1.example.invalid;lr>\r\n"
         "Supported: replaces, timer\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
         "User-Agent: fuzz/1.0\r\nContent-Type: application/sdp\r\n"
         f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"),
        (f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n" + common +
         "To: <sip:alice@127.0.0.1>\r\nCSeq: 2 REGISTER\r\n"
         f"Contact: <sip:alice@127.0.0.1:{src}>;expires=3600;q=0.7, *\r\n"
         "Authorization: Digest username=\"alice\", realm=\"127.0.0.1\", nonce=\"abc\", "
         f"uri=\"sip:127.0.0.1:{port}\", response=\"0123456789abcdef0123456789abcdef\"\r\n"
         "Expires: 3600\r\nContent-Length: 0\r\n\r\n"),
        (f"BYE sip:bob@127.0.0.1:{sink} SIP/2.0\r\n" + common +
         f"To: <sip:bob@127.0.0.1:{sink}>;tag=a6c85cf\r\nCSeq: 314160 BYE\r\n"
         "Content-Length: 0\r\n\r\n"),
        (f"ACK sip:bob@127.0.0.1:{sink} SIP/2.0\r\n" + common +
         f"To: <sip:bob@127.0.0.1:{sink}>;tag=a6c85cf\r\nCSeq: 314159 ACK\r\n"
         "Content-Length: 0\r\n\r\n"),
        (f"MESSAGE sip:bob@127.0.0.1:{port} SIP/2.0\r\n" + common.replace("Via:", "v:") +
         "t: <sip:bob@127.0.0.1>\r\nCSeq: 7 MESSAGE\r\nc: text/plain\r\nl: 5\r\n\r\nhello"),
        (f"SUBSCRIBE sip:bob@127.0.0.1:{port} SIP/2.0\r\n" + common +
         "To: <sip:bob@127.0.0.1>\r\nCSeq: 9 SUBSCRIBE\r\nEvent: presence\r\nExpires: 600\r\n"
         "Accept: application/pidf+xml\r\nContent-Length: 0\r\n\r\n"),
    ]
    out = []
    for i, r in enumerate(reqs):
        out.append(r.replace("{b}", f"{i:04d}fuzzbase").encode())
    return out


def _header_lines(msg: bytes) -> tuple[list[bytes], bytes]:
    head, sep, body = msg.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body if sep else b""


def _join(lines: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _mutate_once(rnd: random.Random, m: bytes) -> bytes:
    kind = rnd.randrange(12)
    if kind == 0 and m:                                    # truncation
        return m[:rnd.randrange(len(m))]
    if kind == 1 and m:                                    # byte flips
        b = bytearray(m)
        for _ in range(rnd.randint(1, 16)):
            i = rnd.randrange(len(b))
            b[i] = rnd.randrange(256) if rnd.random() < 0.5 else b[i] ^ (1 << rnd.randrange(8))
        return bytes(b)
    lines, body = _header_lines(m)
    if kind == 2 and len(lines) > 1:                       # duplicated header(s)
        i = rnd.randrange(1, len(lines))
        lines[i + 1:i + 1] = [lines[i]] * rnd.choice([1, 2, 10, 100, 1000])
        return _join(lines, body)[:MAX_DGRAM]
    if kind == 3 and len(lines) > 1:                       # oversized header value
        i = rnd.randrange(1, len(lines))
        fill = rnd.choice([b"a", b",", b";x=y", b"<sip:a@b>,", b" ", b"\"", b"%00", b"\xff"])
        lines[i] += fill * (rnd.randint(1000, 60000) // len(fill))
        return _join(lines, body)[:MAX_DGRAM]
    if kind == 4:                                          # NUL bytes
        b = bytearray(m)
        for _ in range(rnd.randint(1, 8)):
            b.insert(rnd.randrange(len(b) + 1), 0)
        return bytes(b)
    if kind == 5 and len(lines) > 1:                       # a header removed
        del lines[rnd.randrange(1, len(lines))]
        return _join(lines, body)
    if kind == 6:                                          # Content-Length games
        val = rnd.choice([b"-1", b"0", b"99999999999999999999", b"abc", b"", b"5 5",
                          str(rnd.randrange(100000)).encode(), b"0x10", b"1e3"])
        lines = [ln for ln in lines if not ln.lower().startswith((b"content-length", b"l:"))]
        lines.append(b"Content-Length: " + val)
        return _join(lines, body)
    if kind == 7:                                          # line ends
        return rnd.choice([m.replace(b"\r\n", b"\n"), m.replace(b"\r\n", b"\r"),
                           m.replace(b"\r\n", b"\r\n ", rnd.randint(1, 5)),
                           m.replace(b"\r\n\r\n", b"\r\n", 1), m + b"\r\n" * 5,
                           b"\r\n\r\n" + m])
    if kind == 8 and len(lines) > 1:                       # header line mangling
        i = rnd.randrange(1, len(lines))
        name, _, value = lines[i].partition(b":")
        lines[i] = rnd.choice([name, name + b":", b":" + value, name + b" :" + value,
                               name.upper() + b":" + value * 3, b" " + lines[i],
                               name + b":" + value.replace(b" ", b"\t"),
                               name + b": " + b"\x80\xc3\x28\xfe" + value])
        return _join(lines, body)
    if kind == 9:                                          # first line mangling
        first = lines[0].split(b" ")
        first[rnd.randrange(len(first))] = rnd.choice(
            [b"", b"SIP/3.0", b"SIP/2.0/UDP", b"sip:", b"<sip:a@b>", b"INV\x00ITE",
             b"x" * rnd.randint(1, 5000), b"sip:@:0", b"sip:a@[::1", b"sip:a@127.0.0.1:99999",
             b"tel:+1;;;", b"200", b"sips:%zz@127.0.0.1"])
        lines[0] = b" ".join(first)
        return _join(lines, body)[:MAX_DGRAM]
    if kind == 10:                                         # random garbage
        return bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 1500)))
    # splice two messages / repeat a slice
    if m:
        i, j = sorted((rnd.randrange(len(m)), rnd.randrange(len(m))))
        return (m[:j] + m[i:j] * rnd.randint(1, 20) + m[j:])[:MAX_DGRAM]
    return m


def fuzz_corpus(bases: list[bytes], count: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        m = rnd.choice(bases)
        for _ in range(rnd.choice([1, 1, 1, 2, 3])):
            m = _mutate_once(rnd, m)
        out.append(m[:MAX_DGRAM])
    return out


# ---------------------------------------------------------------------------- /proc

def _ppid_state(pid: int) -> tuple[int, str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            rest = f.read().decode("ascii", "replace").rpartition(")")[2].split()
    except OSError:
        return None
    return int(rest[1]), rest[0]


def live_tree(root: int) -> set[int]:
    """root and its live (non-zombie) descendants, from the ppid field of /proc/*/stat."""
    kids: dict[int, list[int]] = {}
    state: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            ps = _ppid_state(int(name))
            if ps:
                kids.setdefault(ps[0], []).append(int(name))
                state[int(name)] = ps[1]
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        if state.get(p, "Z") != "Z":
            out.add(p)
        todo.extend(kids.get(p, ()))
    return out


# ---------------------------------------------------------------------------- test

def _drain(sock_ua: UA) -> int:
    n = 0
    sock_ua.sock.setblocking(False)
    try:
        while True:
            sock_ua.sock.recvfrom(65535)
            n += 1
    except (BlockingIOError, InterruptedError):
        pass
    return n


def _parses(data: bytes) -> bool:
    try:
        parse_msg(data)
    except ParseError:
        return False
    return True


def _drop_msgs(ctl: Path) -> int:
    """core:drop_msgs read with pykamcmd from the server's control socket."""
    out = subprocess.run([sys.executable, str(ROOT / "bin" / "pykamcmd"), "-s", str(ctl),
                          "--json", "stats.get_statistics", "core:drop_msgs"],
                         capture_output=True, text=True, timeout=20, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"core:drop_msgs = (\d+)", out.stdout)
    return int(m[1]) if m else 0          # a counter never incremented may be absent


def test_fuzzed_datagrams_do_not_hurt_the_server(start_server, tmp_path):
    sink = UA()
    fuzzer = UA()
    try:
        rundir = tmp_path / "run"
        rundir.mkdir()
        srv = start_server(CFG.replace("SINKPORT", str(sink.port)).replace("RUNDIR", str(rundir)))
        # the fixture's -Y rundir (when it passes one) wins over the cfg's rundir=
        ctl = (getattr(srv, "rundir", None) or rundir) / "pykam_ctl"
        deadline = time.monotonic() + 10      # the ctl process is up when its socket exists
        while not ctl.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)                       # let a prefork server finish starting its children
        tree_before = live_tree(srv.proc.pid)
        corpus = fuzz_corpus(_base_requests(srv.port, fuzzer.port, sink.port), COUNT, SEED)
        assert len(corpus) == COUNT
        unparsable = sum(1 for d in corpus if not _parses(d))
        drops_before = _drop_msgs(ctl)
        fuzzer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        t0 = time.monotonic()
        sent = 0
        for i in range(0, COUNT, 50):         # paced bursts, bounded total time
            for dgram in corpus[i:i + 50]:
                try:
                    fuzzer.sock.sendto(dgram, ("127.0.0.1", srv.port))
                    sent += 1
                except OSError:
                    pass                       # e.g. EMSGSIZE: not a server problem
            _drain(fuzzer)
            _drain(sink)
            time.sleep(0.01)
            assert time.monotonic() - t0 < 60, "fuzzing took too long"
        assert sent >= COUNT * 0.99
        # wait until the server has worked through its queue: OPTIONS answered (late answers
        # to fuzzed requests are skipped)
        fuzzer.sock.setblocking(True)
        answered = False
        deadline = time.monotonic() + 20
        while not answered and time.monotonic() < deadline:
            probe = options(fuzzer, srv.port)
            callid = re.search(r"Call-ID: (\S+)", probe).group(1)
            fuzzer.send(probe, srv.port)
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                data = fuzzer.recv(0.5)
                if data is None:
                    break
                if b"Call-ID: " + callid.encode() not in data:
                    continue                   # a late answer to a fuzzed request
                rpl = parse_msg(data)
                if rpl.is_reply and rpl.callid == callid and rpl.status == 200:
                    answered = True
                    break
        log = srv.log()
        assert srv.alive(), log[-3000:]
        assert answered, "OPTIONS not answered after fuzzing:\n" + log[-3000:]
        tree_after = live_tree(srv.proc.pid)
        assert tree_after == tree_before, (
            f"server processes changed (died/respawned): before {sorted(tree_before)}, "
            f"after {sorted(tree_after)}\n{log[-3000:]}")
        assert "Traceback" not in log, log[log.index("Traceback") - 500:][:4000]
        # and it still relays: a clean request for the sink is forwarded
        probe = options(fuzzer, srv.port, ruri=f"sip:bob@127.0.0.1:{sink.port}")
        callid = re.search(r"Call-ID: (\S+)", probe).group(1)
        fuzzer.send(probe, srv.port)
        deadline = time.monotonic() + 5
        relayed = False
        while not relayed and time.monotonic() < deadline:
            data = sink.recv(1.0)
            relayed = data is not None and b"Call-ID: " + callid.encode() in data
        assert relayed, "a clean request was not relayed after fuzzing:\n" + srv.log()[-3000:]
        # the unparsable ones were counted: core:drop_msgs over pykamcmd grew by (about) the
        # number of datagrams the parser rejects in-process (some may be lost to a full
        # socket buffer under the burst, other drop reasons may add to it)
        dropped = _drop_msgs(ctl) - drops_before
        assert dropped >= unparsable * 0.8 and dropped > 0, (
            f"core:drop_msgs grew by {dropped}, {unparsable} unparsable datagrams sent")
    finally:
        sink.close()
        fuzzer.close()
