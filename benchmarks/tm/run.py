#!/usr/bin/env python3
"""CPU microseconds per stateful call, in-process: tm's share of the SIPp stateful benchmark.

Usage: python3 benchmarks/tm/run.py [-n CALLS] [--rounds R] [--profile FILE]

Runs the config of `benchmarks/sipp/run.py --stateful` (maxfwd, then t_relay()) in one process
through sipcore.testing.Harness, no sockets: per call the caller's INVITE, the callee's 180 and
200, the caller's ACK and BYE and the callee's 200 for the BYE, each parsed and routed by
receive_msg() as a worker would (replies built from what PyKam sent downstream), then the
timer jobs the call armed, run as the timer process would run them once due. Prints CPU time
per call (process time) of the best of R rounds: other load on the machine still slows a
Python process (shared caches), the best round least. --profile writes a
cProfile of the measured loop for `python3 -m pstats`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from sipcore.msg import parse_msg  # noqa: E402
from sipcore.msg.builder import build_reply  # noqa: E402
from sipcore.testing import Harness, to_wire  # noqa: E402

CFG = """
debug=1
children=1
listen=udp:127.0.0.1:5060
loadmodule "sl"
loadmodule "maxfwd"
loadmodule "tm"
request_route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (!t_relay()) { sl_reply_error(); }
    exit;
}
"""

SDP = ("v=0\no=user1 53655765 2353687637 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
       "m=audio 6000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n").replace("\n", "\r\n")


def request(method: str, i: int, cseq: int, to_tag: str = "", body: str = "") -> bytes:
    """A request of call I as SIPp's built-in uac sends it."""
    tt = f";tag={to_tag}" if to_tag else ""
    ctype = "Content-Type: application/sdp\n" if body else ""
    return to_wire(
        f"{method} sip:service@127.0.0.1:5070 SIP/2.0\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-{i}-{cseq}-{method}\n"
        f"From: sipp <sip:sipp@127.0.0.1:5080>;tag={i}SIPpTag00{i}\n"
        f"To: service <sip:service@127.0.0.1:5070>{tt}\n"
        f"Call-ID: {i}-bench@127.0.0.1\n"
        f"CSeq: {cseq} {method}\n"
        "Contact: sip:sipp@127.0.0.1:5080\n"
        "Max-Forwards: 70\n"
        "Subject: Performance Test\n"
        f"{ctype}Content-Length: {len(body)}\n\n") + body.encode()


def one_call(h: Harness, i: int) -> None:
    sent = h.core.sent
    sent.clear()
    h.request(request("INVITE", i, 1, body=SDP))
    fwd = parse_msg(sent[-1][1])                        # the INVITE as relayed to the callee
    totag = f"uas{i}"
    h.reply(build_reply(fwd, 180, "Ringing", to_tag=totag, server_header=None))
    h.reply(build_reply(fwd, 200, "OK", to_tag=totag, server_header=None,
                        extra_headers=["Contact: <sip:127.0.0.1:5070>",
                                       "Content-Type: application/sdp"], body=SDP.encode()))
    h.request(request("ACK", i, 1, totag))
    h.request(request("BYE", i, 2, totag))
    fwd = parse_msg(sent[-1][1])
    h.reply(build_reply(fwd, 200, "OK", to_tag=totag, server_header=None))
    if len(sent) != 7:      # 100 Trying, INVITE, 180, 200, ACK, BYE, 200
        raise SystemExit(f"call {i}: expected 7 messages sent, got {len(sent)}")


def run_timers_all(h: Harness) -> int:
    """Run every one-shot timer job the calls armed as if its time had come, in the order
    they were due (the timer process's share); periodic jobs are left alone. Jobs armed
    meanwhile run too."""
    n = 0
    while h.timers.make_due(lambda d: d.periodic is None and d.when > -1e5):
        n += h.timers.run_due()
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3000, help="calls (default 3000)")
    ap.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    ap.add_argument("--profile", help="write a cProfile of the measured loop here")
    args = ap.parse_args()
    h = Harness.from_text(CFG)
    for i in range(200):                                # warm-up
        one_call(h, i)
    run_timers_all(h)
    prof = None
    if args.profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    msgs, tjobs, njobs = [], [], 0
    base = 1000
    for _ in range(args.rounds):
        t0 = time.process_time()
        for i in range(base, base + args.n):
            one_call(h, i)
        t1 = time.process_time()
        njobs = run_timers_all(h)
        t2 = time.process_time()
        base += args.n
        msgs.append((t1 - t0) / args.n * 1e6)
        tjobs.append((t2 - t1) / args.n * 1e6)
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile)
    best = min(range(len(msgs)), key=lambda k: msgs[k] + tjobs[k])
    print(f"stateful call in-process, {args.n} calls x {args.rounds} rounds (best round; "
          f"process CPU time): messages {msgs[best]:6.1f} us/call, timer jobs "
          f"{tjobs[best]:5.1f} us/call ({njobs / args.n:.1f} jobs/call), total "
          f"{msgs[best] + tjobs[best]:6.1f} us/call; median total "
          f"{sorted(m + t for m, t in zip(msgs, tjobs))[len(msgs) // 2]:6.1f} us/call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
