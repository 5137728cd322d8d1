"""pike through the Harness with real SIP messages; fork test for counting across processes."""
from __future__ import annotations

import os
import time

import pytest

from modules import pike
from modules.htable import ht_api
from sipcore.errors import RpcFault
from sipcore.testing import Harness

CFG = """
loadmodule "sl"
loadmodule "htable"
loadmodule "pike"
modparam("pike", "sampling_time_unit", 10)
modparam("pike", "reqs_density_per_unit", 5)
modparam("pike", "remove_latency", 4)
modparam("htable", "htable", "ipban=>size=8;autoexpire=300;")
request_route {
    if ($sht(ipban=>$si) != $null) { exit; }
    if (!pike_check_req()) {
        $sht(ipban=>$si) = 1;
        sl_send_reply("503", "Flood");
        exit;
    }
    sl_send_reply("200", "OK");
}
"""


def req(cid: str = "c1") -> str:
    return ("OPTIONS sip:bob@b.example SIP/2.0\n"
            f"Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK{cid}\n"
            "From: <sip:alice@a.example>;tag=1\n"
            "To: <sip:bob@b.example>\n"
            f"Call-ID: {cid}\n"
            "CSeq: 1 OPTIONS\n"
            "Content-Length: 0\n\n")


def codes(h: Harness, n: int, src: tuple[str, int]) -> list[int]:
    out = []
    for i in range(n):
        res = h.request(req(f"c{i}"), src=src)
        out.append(res.replies[0].status if res.replies else 0)
    return out


def test_flood_is_detected_and_banned():
    h = Harness.from_text(CFG)
    got = codes(h, 7, ("10.1.1.1", 5060))
    assert got == [200, 200, 200, 200, 503, 0, 0]
    assert ht_api.get_table("ipban").get("10.1.1.1") == 1
    assert codes(h, 3, ("10.1.1.2", 5060)) == [200, 200, 200]     # other sources unaffected
    top = pike.rpc_top()
    assert [e["ip_addr"] for e in top] == ["10.1.1.1"]
    assert top[0]["status"] == "HOT" and top[0]["leaf_hits_curr"] == 5
    assert {e["ip_addr"] for e in pike.rpc_top("ALL")} == {"10.1.1.1", "10.1.1.2"}
    assert [e["ip_addr"] for e in pike.rpc_top("warm")] == ["10.1.1.2"]
    with pytest.raises(RpcFault):
        pike.rpc_top("LUKEWARM")


def test_return_codes_first_then_known():
    Harness.from_text(CFG)
    rcs = [pike.check_ip("10.2.2.2") for _ in range(7)]
    assert rcs == [1, 1, 1, 1, -2, -1, -1]


def test_pike_check_ip_validates():
    h = Harness.from_text(CFG)
    fe = pike.mod.lookup("pike_check_ip", 1)
    ctx = h.request(req()).ctx
    assert fe.impl(ctx, "not-an-ip") == -1
    assert fe.impl(ctx, "192.0.2.1") == 1


def test_check_route_drops_flood_before_request_route():
    cfg = CFG.split("request_route")[0] + '''modparam("pike", "check_route", "FLOOD")
request_route { sl_send_reply("200", "OK"); }
route[FLOOD] { $sht(ipban=>flooded) = $si; }
'''
    h = Harness.from_text(cfg)
    got = codes(h, 6, ("10.3.3.3", 5060))
    assert got[:4] == [200, 200, 200, 200] and got[4:] == [0, 0]
    assert ht_api.get_table("ipban").get("flooded") == "10.3.3.3"


def test_counts_add_up_across_processes():
    Harness.from_text(CFG)
    # the hits must land in one sampling window (10 s, aligned on the monotonic clock): a
    # window ending between the children's hits and ours would halve their weight
    left_ms = 10_000 - (time.monotonic_ns() // 1_000_000) % 10_000
    if left_ms < 3000:
        time.sleep(left_ms / 1000 + 0.05)
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            for _ in range(2):
                pike.check_ip("10.4.4.4")
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 0
    # 4 hits from the children; the 5th one reaches the density
    assert pike.check_ip("10.4.4.4") == -2
