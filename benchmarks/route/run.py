#!/usr/bin/env python3
"""Microseconds per request to run a config's request_route in-process (no sockets).

Usage: python3 benchmarks/route/run.py [-n ITERATIONS] [--cfg FILE ...]

Measures, for each config (default: Kamailio's stock kamailio-5.6-default.cfg from
tests/data/compat and PyKam's etc/pykam.cfg), the wall time of receive_msg() (parse + request_route + building
what would be sent) on an OPTIONS keepalive to the proxy and on an initial INVITE to a user
registered first (each request a new one: own branch and Call-ID). CPU time of this process.
Sends are recorded, not performed. A route that reaches a function of a module that is
declared but not implemented yet is reported as such instead of timed.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from sipcore.errors import ModuleError  # noqa: E402
from sipcore.testing import Harness, to_wire  # noqa: E402

STOCK = os.path.join(ROOT, "tests", "data", "compat", "kamailio-5.6-default.cfg")

OPTIONS = to_wire(
    "OPTIONS sip:127.0.0.1:5060 SIP/2.0\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-opt-1;rport\n"
    "Max-Forwards: 70\n"
    "From: <sip:monitor@127.0.0.1>;tag=a73kszlfl\n"
    "To: <sip:127.0.0.1>\n"
    "Call-ID: 1j9FpLxk3uxtm8tn@127.0.0.1\n"
    "CSeq: 1 OPTIONS\n"
    "User-Agent: bench\n"
    "Content-Length: 0\n\n")

SDP = ("v=0\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
       "m=audio 49170 RTP/AVP 0 8 97\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\n"
       "a=rtpmap:97 iLBC/8000\n").replace("\n", "\r\n")
INVITE = to_wire(
    "INVITE sip:bob@127.0.0.1 SIP/2.0\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK776asdhds;rport\n"
    "Max-Forwards: 70\n"
    "To: Bob <sip:bob@127.0.0.1>\n"
    "From: Alice <sip:alice@127.0.0.1>;tag=1928301774\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\n"
    "CSeq: 314159 INVITE\n"
    "Contact: <sip:alice@127.0.0.1:5080>\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\n"
    "Supported: replaces, timer\n"
    "User-Agent: bench-ua/1.0\n"
    "Content-Type: application/sdp\n"
    f"Content-Length: {len(SDP)}\n\n") + SDP.encode()


REGISTER = to_wire(
    "REGISTER sip:127.0.0.1 SIP/2.0\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-reg-1;rport\n"
    "Max-Forwards: 70\n"
    "From: <sip:bob@127.0.0.1>;tag=reg1\n"
    "To: <sip:bob@127.0.0.1>\n"
    "Call-ID: reg-1@127.0.0.1\n"
    "CSeq: 1 REGISTER\n"
    "Contact: <sip:bob@127.0.0.1:5090>\n"
    "Expires: 3600\n"
    "Content-Length: 0\n\n")


def variants(raw: bytes, n: int) -> list[bytes]:
    """N copies of RAW as N new requests (own branch, Call-ID and From tag): a stateful proxy
    would absorb repeats of one request as retransmissions."""
    out = []
    for i in range(n):
        out.append(raw.replace(b"branch=z9hG4bK", b"branch=z9hG4bK%dx" % i, 1)
                   .replace(b"Call-ID: ", b"Call-ID: %dx" % i, 1)
                   .replace(b";tag=", b";tag=%dx" % i, 1))
    return out


def bench(h: Harness, raw: bytes, n: int) -> tuple[float, str]:
    msgs = variants(raw, n + 1)
    res = h.request(msgs[0])             # warm-up and sanity check of what it does
    what = ", ".join(f"{m.status} {m.reason}" if m.is_reply else f"{m.method} forwarded"
                     for m in res.parsed()) or "nothing sent"
    t0 = time.process_time()
    for m in msgs[1:]:
        h.request(m)
    return (time.process_time() - t0) / n * 1e6, what


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--cfg", action="append")
    args = ap.parse_args()
    cfgs = args.cfg or [STOCK, os.path.join(ROOT, "etc", "pykam.cfg")]
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    print(f"# route benchmark: python {platform.python_version()}, {platform.machine()}, "
          f"commit {commit}, {args.n} iterations")
    from sipcore import log as klog

    klog.capture(True)   # keep xlog output out of the timing
    for path in cfgs:
        h = Harness.from_file(path)
        print(f"{os.path.basename(path)}:")
        reg = h.request(REGISTER)        # bob registers, so the INVITE goes to a user
        if reg.replies:
            print(f"  (REGISTER bob: {reg.replies[0].status} {reg.replies[0].reason})")
        for label, raw in (("OPTIONS keepalive", OPTIONS), ("initial INVITE", INVITE)):
            try:
                us, what = bench(h, raw, args.n)
                print(f"  {label:<18} {us:8.1f} us/request   ({what})")
            except ModuleError as exc:
                print(f"  {label:<18}      n/a          ({exc})")


if __name__ == "__main__":
    main()
