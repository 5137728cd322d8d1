#!/usr/bin/env python3
"""Microseconds per request: the same routing as native cfg, Lua (KEMI) and Python (KEMI).

Usage: python3 benchmarks/kemi/run.py [-n ITERATIONS] [-r ROUNDS]

Runs etc/pykam.cfg (the routing of the default KEMI scripts written in
the native language), etc/pykam-lua.cfg (etc/pykam.lua) and etc/pykam-python.cfg
(etc/pykam_routing.py) in-process through the Harness (parse + route + build what would be
sent; sends recorded, not performed), on an OPTIONS keepalive to the proxy (stateless), an
INVITE to an unregistered local user (transaction + 100 + 404) and an INVITE relayed
statefully (transaction + 100 + forwarded INVITE). CPU time of this process is measured,
rounds are interleaved and the best round is reported, so the three engines see the same
machine load; the ratio column is against the native config.
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

import importlib.util

from sipcore.testing import Harness


def _route_bench() -> object:
    """benchmarks/route/run.py, for the same OPTIONS and INVITE messages."""
    spec = importlib.util.spec_from_file_location(
        "route_bench", os.path.join(ROOT, "benchmarks", "route", "run.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_rb = _route_bench()
OPTIONS: bytes = _rb.OPTIONS  # type: ignore[attr-defined]
INVITE: bytes = _rb.INVITE    # type: ignore[attr-defined]

CONFIGS = (
    ("native", os.path.join("etc", "pykam.cfg"), None),
    ("lua", os.path.join("etc", "pykam-lua.cfg"), "pykam.lua"),
    ("python", os.path.join("etc", "pykam-python.cfg"), "pykam_routing.py"),
)
LOCAL_INVITE = INVITE.replace(b"INVITE sip:bob@127.0.0.2:5060", b"INVITE sip:bob@127.0.0.1:5060")
# (label, message, stateful): stateful cases get a new branch and Call-ID per request (a
# repeated one would be absorbed as a retransmission) and fewer iterations (every transaction
# stays in the harness's 32 MB shm until its timers run)
CASES = (("OPTIONS keepalive", OPTIONS, False), ("INVITE local 404", LOCAL_INVITE, True),
         ("INVITE relayed", INVITE, True))


def harness(cfg: str, script: str | None) -> Harness:
    defines: dict[str, str | None] = {"DBGLEVEL": "1"}
    if script:
        defines["KEMI_SCRIPT"] = f"\"{os.path.join(ROOT, 'etc', script)}\""
    return Harness.from_file(os.path.join(ROOT, cfg), defines=defines)


_seq = [0]


def variants(raw: bytes, n: int, unique: bool) -> list[bytes]:
    """N copies of RAW; with UNIQUE, each with its own Via branch and Call-ID."""
    if not unique:
        return [raw] * n
    out = []
    for _ in range(n):
        _seq[0] += 1
        i = str(_seq[0]).encode()
        out.append(raw.replace(b"branch=z9hG4bK", b"branch=z9hG4bK" + i + b"x")
                   .replace(b"Call-ID: ", b"Call-ID: " + i + b"-"))
    return out


def describe(h: Harness, raw: bytes) -> str:
    res = h.request(raw)
    return ", ".join(f"{m.status} {m.reason}" if m.is_reply else f"{m.method} forwarded"
                     for m in res.parsed()) or "nothing sent"


def timed(h: Harness, msgs: list[bytes]) -> float:
    """CPU microseconds of this process per request (other processes' load does not count)."""
    req = h.request
    t0 = time.process_time()
    for raw in msgs:
        req(raw)
    return (time.process_time() - t0) / len(msgs) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3000, help="requests per round")
    ap.add_argument("-r", type=int, default=5, help="rounds (best is reported)")
    ap.add_argument("--n-stateful", type=int, default=500,
                    help="requests per round in the stateful cases")
    args = ap.parse_args()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip() or "?"
    from modules.app_lua.lua_engine import lua_module

    print(f"# KEMI benchmark: python {platform.python_version()}, {platform.machine()}, "
          f"{lua_module().__name__}, commit {commit}, {args.n} requests x {args.r} rounds, "
          "CPU time")
    from sipcore import log as klog

    klog.capture(True)       # keep log output out of the timing
    # the three configs load the same modules with the same parameters, so their harnesses
    # can live side by side and the rounds can be interleaved
    harnesses = {engine: harness(cfg, script) for engine, cfg, script in CONFIGS}
    best: dict[tuple[str, str], float] = {}
    what: dict[tuple[str, str], str] = {}
    for label, raw, stateful in CASES:
        n = min(args.n, args.n_stateful) if stateful else args.n
        for engine, h in harnesses.items():
            what[(label, engine)] = describe(h, variants(raw, 1, stateful)[0])
            timed(h, variants(raw, min(n, 100), stateful))           # warm-up
        for _ in range(args.r):
            for engine, h in harnesses.items():
                us = timed(h, variants(raw, n, stateful))
                best[(label, engine)] = min(us, best.get((label, engine), us))
    klog.capture(False)
    print(f"{'case':<20} {'engine':<8} {'us/request':>11} {'x native':>9}  result")
    for label, _, _ in CASES:
        base = best[(label, "native")]
        for engine, _, _ in CONFIGS:
            us = best[(label, engine)]
            print(f"{label:<20} {engine:<8} {us:11.1f} {us / base:9.2f}  {what[(label, engine)]}")


if __name__ == "__main__":
    main()
