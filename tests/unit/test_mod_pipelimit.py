"""pipelimit through the Harness: DB-loaded and dynamic pipes, pl_drop, RPCs, shared counts."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

import modules.pipelimit as pl
from sipcore.errors import RpcFault
from sipcore.testing import Harness

CFG = """
loadmodule "sl"
loadmodule "pipelimit"
modparam("pipelimit", "db_url", "{url}")
modparam("pipelimit", "timer_interval", 5)
modparam("pipelimit", "clean_unused", 2)
request_route {
    pl_check("$fU");
    $var(rc) = $rc;
    if ($var(rc) == -2) {
        if (!pl_check("dyn-$fU", "TAILDROP", 2)) { pl_drop(3, 3); exit; }
        sl_send_reply("202", "Dynamic"); exit;
    }
    if ($var(rc) == 2) { sl_send_reply("203", "Nop"); exit; }
    if ($var(rc) < 0) { pl_drop(); exit; }
    sl_send_reply("200", "OK");
}
"""


def req(user: str, cid: str) -> str:
    return ("INVITE sip:bob@b.example SIP/2.0\n"
            f"Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK{cid}\n"
            f"From: <sip:{user}@a.example>;tag=1\nTo: <sip:bob@b.example>\n"
            f"Call-ID: {cid}\nCSeq: 1 INVITE\nContent-Length: 0\n\n")


@pytest.fixture
def h(tmp_path) -> Harness:
    url = f"sqlite:///{tmp_path / 'pl.db'}"
    eng = sa.create_engine(url)
    md = sa.MetaData()
    t = sa.Table("pl_pipes", md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("pipeid", sa.String(64)), sa.Column("algorithm", sa.String(32)),
                 sa.Column("plimit", sa.Integer))
    md.create_all(eng)
    with eng.begin() as conn:
        conn.execute(sa.insert(t), [{"pipeid": "alice", "algorithm": "TAILDROP", "plimit": 3},
                                    {"pipeid": "nop", "algorithm": "NOP", "plimit": 0}])
    eng.dispose()
    return Harness.from_text(CFG.replace("{url}", url))


def replies(h: Harness, user: str, n: int) -> list[tuple[int, bytes]]:
    """(status, raw reply) of N requests from USER."""
    out = []
    for i in range(n):
        res = h.request(req(user, f"{user}{i}"))
        out.append((res.replies[0].status, res.sent[0][1]))
    return out


def test_db_pipes_taildrop_and_pl_drop(h):
    got = replies(h, "alice", 5)
    assert [c for c, _ in got] == [200, 200, 200, 503, 503]
    assert b"\r\nRetry-After: 5\r\n" in got[3][1] and b"Server Unavailable" in got[3][1]
    assert b"Retry-After" not in got[0][1]
    assert [c for c, _ in replies(h, "nop", 2)] == [203, 203]
    pl.interval_timer()
    assert [c for c, _ in replies(h, "alice", 1)] == [200]


def test_dynamic_pipes_and_cleanup(h):
    got = replies(h, "carol", 3)
    assert [c for c, _ in got] == [202, 202, 503]
    assert b"\r\nRetry-After: 3\r\n" in got[2][1]
    assert {p["name"] for p in pl.rpc_list()} == {"alice", "nop", "dyn-carol"}
    pl.interval_timer()
    pl.interval_timer()
    pl.interval_timer()             # unused for 2 intervals: removed
    assert {p["name"] for p in pl.rpc_list()} == set()


def test_rpcs(h):
    assert pl.rpc_list("alice") == [{"name": "alice", "algorithm": "TAILDROP", "limit": 3,
                                     "counter": 0}]
    with pytest.raises(RpcFault):
        pl.rpc_list("nobody")
    pl.rpc_set_pipe("alice", "red", 10)
    assert pl.rpc_get_pipes()[0]["algorithm"] == "RED"
    with pytest.raises(RpcFault):
        pl.rpc_set_pipe("alice", "zap", 1)
    pl.rpc_set_pid(0.1, 0.2, 0.3)
    assert pl.rpc_get_pid() == {"ki": 0.1, "kp": 0.2, "kd": 0.3}
    pl.rpc_set_pipe("fb", "FEEDBACK", 10)
    pl.rpc_set_pid(1, 1, 0)
    pl.rpc_push_load(1.0)
    assert pl.check("fb") == -1
    assert {s["name"] for s in pl.rpc_stats()} == {"alice", "nop", "fb"}


def test_counts_shared_by_processes(h):
    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            os._exit(0 if pl.check("alice") == 1 else 1)
        pids.append(pid)
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 0
    assert pl.check("alice") == -1
