"""ratelimit through the Harness: queues by method, TAILDROP/RED/NETWORK/FEEDBACK, RPCs, and a
budget shared by forked processes."""
from __future__ import annotations

import os
from dataclasses import replace

import pytest

import modules.ratelimit as rl
from sipcore import limits
from sipcore.errors import RpcFault
from sipcore.testing import Harness

CFG = """
loadmodule "sl"
loadmodule "ratelimit"
modparam("ratelimit", "timer_interval", 2)
modparam("ratelimit", "pipe", "0:TAILDROP:3")
modparam("ratelimit", "pipe", "1:RED:1")
modparam("ratelimit", "pipe", "2:NETWORK:1000000000")
modparam("ratelimit", "pipe", "3:FEEDBACK:50")
modparam("ratelimit", "queue", "0:INVITE")
modparam("ratelimit", "queue", "1:*")
request_route {
    if ($hdr(X-Pipe) != $null) {
        $var(p) = $(hdr(X-Pipe){s.int});
        if (!rl_check("$var(p)")) { sl_send_reply("503", "Limited"); exit; }
        sl_send_reply("200", "OK"); exit;
    }
    if (!rl_check()) { sl_send_reply("503", "Limited"); exit; }
    sl_send_reply("200", "OK");
}
"""


def req(method: str = "INVITE", extra: str = "", cid: str = "c1") -> str:
    return (f"{method} sip:bob@b.example SIP/2.0\n"
            f"Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK{cid}\n"
            "From: <sip:alice@a.example>;tag=1\nTo: <sip:bob@b.example>\n"
            f"Call-ID: {cid}\nCSeq: 1 {method}\n{extra}Content-Length: 0\n\n")


def status(h: Harness, raw: str) -> int:
    res = h.request(raw)
    return res.replies[0].status if res.replies else 0


@pytest.fixture
def h() -> Harness:
    return Harness.from_text(CFG)


def test_parse_params():
    assert rl.parse_pipe("4:red:10") == (4, limits.RED, 10)
    assert rl.parse_queue("3:invite") == (3, "INVITE")
    for bad in ("1:RED", "x:RED:1", "99:RED:1", "1:FAST:3"):
        with pytest.raises(ValueError):
            rl.parse_pipe(bad)
    with pytest.raises(ValueError):
        rl.parse_queue("nopipe")


def test_taildrop_per_interval(h):
    # limit 3/s * timer_interval 2 s = 6 INVITEs per interval
    got = [status(h, req(cid=f"i{i}")) for i in range(8)]
    assert got == [200] * 6 + [503] * 2
    rl.interval_timer()
    assert status(h, req(cid="next")) == 200
    assert rl.rpc_stats()["PIPES"][0] == {"id": 0, "load": 0, "counter": 8}


def test_red_drops_every_load_th_request(h):
    for i in range(8):                    # 8 requests on RED limit 1/s*2 = load 4
        assert status(h, req("OPTIONS", cid=f"o{i}")) == 200
    rl.interval_timer()
    assert rl.rpc_stats()["PIPES"][1]["load"] == 4
    got = [status(h, req("OPTIONS", cid=f"p{i}")) for i in range(8)]
    assert got == [200, 200, 200, 503, 200, 200, 200, 503]


def test_pipe_from_pvar_network_and_feedback(h):
    assert status(h, req("MESSAGE", "X-Pipe: 2\n")) == 200        # huge NETWORK limit
    rl.rpc_set_pipe(2, "NETWORK", 0)
    t = rl._table()
    t.set(b"load", replace(rl._load(), net=10).pack())
    assert status(h, req("MESSAGE", "X-Pipe: 2\n")) == 503
    # FEEDBACK: CPU at 100% with a 50% setpoint -> the PID drives the drop rate to 1
    rl.rpc_set_pid(1.0, 1.0, 0.0)
    rl.rpc_push_load(1.0)
    assert rl.rpc_stats()["DROP"]["drop_rate"] == 1.0
    assert status(h, req("MESSAGE", "X-Pipe: 3\n")) == 503
    rl.rpc_push_load(0.0)
    assert rl.rpc_stats()["DROP"]["drop_rate"] == 0.0
    assert status(h, req("MESSAGE", "X-Pipe: 3\n")) == 200
    assert status(h, req("MESSAGE", "X-Pipe: 17\n")) == 503        # no such pipe


def test_rpcs(h):
    assert [p["algorithm"] for p in rl.rpc_get_pipes()] == ["TAILDROP", "RED", "NETWORK",
                                                            "FEEDBACK"]
    assert rl.rpc_get_queues() == [{"id": 0, "method": "INVITE", "pipe": 0},
                                   {"id": 1, "method": "*", "pipe": 1}]
    rl.rpc_set_queue(0, "register", 0)
    assert rl.rpc_get_queues()[0]["method"] == "REGISTER"
    rl.rpc_set_pipe(5, "TAILDROP", 1)
    rl.rpc_set_queue(2, "INVITE", 5)
    assert rl.rpc_get_queues()[2] == {"id": 2, "method": "INVITE", "pipe": 5}
    with pytest.raises(RpcFault):
        rl.rpc_set_queue(9, "INVITE", 0)
    with pytest.raises(RpcFault):
        rl.rpc_set_pipe(1, "WARP", 3)
    rl.rpc_set_pid(0.5, 0.6, 0.7)
    assert rl.rpc_get_pid() == {"ki": 0.5, "kp": 0.6, "kd": 0.7}
    with pytest.raises(RpcFault):
        rl.rpc_push_load(2)
    assert rl.rpc_set_dbg(1) == {}


def test_budget_is_shared_by_processes(h):
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            os._exit(0 if all(rl.check_pipe(0) == 1 for _ in range(3)) else 1)
        pids.append(pid)
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 0
    assert rl.check_pipe(0) == -1          # 6 of 6 used by the children
