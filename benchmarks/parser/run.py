"""Parser benchmark: messages/second of the C scanner path vs a pure-Python regex baseline.

Runs in: a developer shell only (`python3 benchmarks/parser/run.py`). Touches no shared state.
Each iteration parses one message and extracts From tag, To tag, Call-ID, CSeq (number and
method), top Via branch and Contact URI. Printed beside the machine, Python and git commit;
numbers are never asserted in tests (STYLE rule 10).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import baseline  # noqa: E402

from sipcore.msg import parse_msg  # noqa: E402
from sipcore.msg.parser import c_scan  # noqa: E402


def _crlf(text: str) -> bytes:
    head, _, body = text.partition("\n\n")
    head = head.strip("\n").replace("\n", "\r\n")
    body = body.replace("\n", "\r\n")
    head = head.replace("Content-Length: @", f"Content-Length: {len(body)}")
    return (head + "\r\n\r\n" + body).encode()


SDP = """v=0
o=alice 2890844526 2890844526 IN IP4 192.0.2.101
s=-
c=IN IP4 192.0.2.101
t=0 0
m=audio 49172 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
"""

INVITE = _crlf("""INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: "Bob" <sip:bob@biloxi.example.com>
From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, UPDATE, PRACK
Supported: replaces, timer, 100rel
User-Agent: ExamplePhone/4.2.1 (Linux)
Session-Expires: 1800;refresher=uac
Min-SE: 90
P-Asserted-Identity: "Alice" <sip:+15551234567@atlanta.example.com>
Content-Type: application/sdp
Content-Length: @

""" + SDP)

OK200 = _crlf("""SIP/2.0 200 OK
Via: SIP/2.0/UDP proxy.biloxi.example.com:5060;branch=z9hG4bK83842.1;received=192.0.2.222
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.101;rport=5060
Record-Route: <sip:proxy.biloxi.example.com;lr>
To: "Bob" <sip:bob@biloxi.example.com>;tag=a6c85cf
From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.4:5060>
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY
Supported: replaces, timer
Server: ExampleGateway/1.0
Require: timer
Session-Expires: 1800;refresher=uac
Content-Type: application/sdp
Content-Length: @

""" + SDP.replace("alice 2890844526", "bob 2808844564").replace("192.0.2.101", "192.0.2.4"))


def extract_pykam(buf: bytes, scanner: str | None = None) -> tuple:
    msg = parse_msg(buf, scanner=scanner)
    cseq = msg.cseq
    return (msg.from_tag, msg.to_tag, msg.callid, cseq.num, cseq.method, msg.via1_branch,
            msg.contact_uri)


def _calibrate(fn: Callable[[bytes], object], buf: bytes, seconds: float) -> int:
    n = 500
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn(buf)
        dt = time.perf_counter() - t0
        if dt > 0.05:
            return max(1, int(n * seconds / dt))
        n *= 4


def rates(fns: list[Callable[[bytes], object]], buf: bytes, seconds: float,
          rounds: int = 7) -> list[float]:
    """Messages per second of each fn: rounds interleave the fns (so load from other processes
    on a shared machine hits them alike) and the best round of each counts."""
    counts = [_calibrate(fn, buf, seconds / rounds) for fn in fns]
    best = [0.0] * len(fns)
    for _ in range(rounds):
        for k, (fn, n) in enumerate(zip(fns, counts)):
            t0 = time.perf_counter()
            for _ in range(n):
                fn(buf)
            best[k] = max(best[k], n / (time.perf_counter() - t0))
    return best


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = ap.parse_args()
    for name, buf in (("INVITE", INVITE), ("200 OK+SDP", OK200)):
        ref = baseline.extract(buf)
        if extract_pykam(buf, "py") != ref or (c_scan and extract_pykam(buf, "c") != ref):
            print(f"field mismatch on {name}: {ref} vs {extract_pykam(buf)}", file=sys.stderr)
            return 1
    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} "
          f"python {platform.python_version()} commit {_commit()}")
    if c_scan is None:
        print("C scanner not built: python3 cffi_build/build_sipparse.py")
    print(f"{'message':<12} {'bytes':>6} {'C (msg/s)':>12} {'py-scan':>10} {'regex base':>11} "
          f"{'C/base':>7}")
    for name, buf in (("INVITE", INVITE), ("200 OK+SDP", OK200)):
        fns: list[Callable[[bytes], object]] = [lambda b: extract_pykam(b, "py"), baseline.extract]
        if c_scan is not None:
            fns.insert(0, lambda b: extract_pykam(b, "c"))
        res = rates(fns, buf, args.seconds)
        c = res.pop(0) if c_scan is not None else 0.0
        py, base = res
        print(f"{name:<12} {len(buf):>6} {c:>12,.0f} {py:>10,.0f} {base:>11,.0f} "
              f"{c / base:>6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
