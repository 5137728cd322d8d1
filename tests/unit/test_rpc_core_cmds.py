"""Core RPC handlers (core.*, stats.*, cfg.*) against a fake RpcEnv: Kamailio result shapes."""
from __future__ import annotations

import os
import signal
import time

import pytest

from sipcore import log as klog
from sipcore.errors import RpcFault
from sipcore.net.addr import SocketInfo
from sipcore.rpc.env import RpcEnv
from sipcore.rpc.jsonrpc import Pairs
from sipcore.rpc.registry import RpcRegistry
from sipcore.rpc.runtime_cfg import RuntimeCfg


class FakeProcs:
    def entries(self):
        return [(0, 100, 0, "main process - attendant"), (1, 101, 1, "udp receiver child=0"),
                (2, 102, -2, "timer"), (3, 103, -3, "ctl handler")]


class FakeStats:
    def __init__(self):
        self.values = {"core:rcv_requests": 7, "core:fwd_requests": 3, "sl:200_replies": 2}

    def snapshot(self, prefix=""):
        return {k: v for k, v in self.values.items() if k.startswith(prefix)}

    def reset(self, name):
        self.values[name] = 0


SHM = {"total": 64 << 20, "free": 60 << 20, "used": 3 << 20, "real_used": 4 << 20,
       "max_used": 5 << 20, "fragments": 12}


@pytest.fixture()
def env():
    return RpcEnv(start_time=time.time() - 42, rundir="/tmp", proc_table=FakeProcs(),
                  shm_stats=lambda: dict(SHM), stats=FakeStats(),
                  sockets=[SocketInfo("udp", "127.0.0.1", 5060),
                           SocketInfo("udp", "::1", 5062, "example.com", 5080, "lo6")],
                  aliases=[("example.com", 5060, "udp"), ("sip.example.com", None, None)],
                  runtime_cfg=RuntimeCfg.from_config({"debug": 2}, {"my.limit": (5, "a limit"),
                                                                    "my.name": ("x", "")}),
                  argv=["pykam", "-f", "x.cfg"])


@pytest.fixture()
def reg(env):
    return RpcRegistry.build(env, [])


def test_version_and_info(reg):
    assert reg.call("core.version", []).startswith("pykam 0.1.0 (")
    info = reg.call("core.info", [])
    assert set(info) == {"version", "id", "compiler", "compiled", "flags"}


def test_uptime_shape(reg):
    up = reg.call("core.uptime", [])
    assert set(up) == {"now", "up_since", "uptime"}
    assert 41 <= up["uptime"] <= 44
    assert time.strptime(up["now"], "%a %b %d %H:%M:%S %Y")


def test_psx_ps_psa(reg):
    psx = reg.call("core.psx", [])
    assert psx[0] == {"IDX": 0, "PID": 100, "DSC": "main process - attendant"}
    assert [p["DSC"] for p in psx][-1] == "ctl handler"
    assert reg.call("core.ps", [])[:4] == [100, "main process - attendant", 101,
                                          "udp receiver child=0"]
    assert reg.call("core.psa", [])[2]["RANK"] == -2


def test_shmmem_and_units(reg):
    assert reg.call("core.shmmem", []) == SHM
    m = reg.call("core.shmmem", ["m"])
    assert m["total"] == 64 and m["fragments"] == 12
    assert reg.call("core.shmmem", ["k"])["free"] == 60 * 1024
    with pytest.raises(RpcFault) as ei:
        reg.call("core.shmmem", ["x"])
    assert ei.value.code == 400


def test_sockets_and_aliases_repeat_keys_like_kamailio(reg):
    socks = reg.call("core.sockets_list", [])
    assert isinstance(socks, Pairs) and [k for k, _ in socks] == ["socket", "socket"]
    assert socks[0][1] == {"proto": "udp", "address": "127.0.0.1", "port": "5060",
                           "mcast": "no", "mhomed": "no", "virtual": "no"}
    assert socks[1][1]["advertise"] == "example.com:5080" and socks[1][1]["name"] == "lo6"
    al = reg.call("core.aliases_list", [])
    assert al == Pairs([("alias", {"proto": "udp", "address": "example.com", "port": "5060"}),
                        ("alias", {"proto": "*", "address": "sip.example.com", "port": "*"})])


def test_echo_prints_printi_arg(reg):
    assert reg.call("core.echo", [1, "a", {"k": [1]}]) == [1, "a", {"k": [1]}]
    assert reg.call("core.prints", [1, "a"]) == ["1", "a"]
    assert reg.call("core.printi", ["5", 6]) == [5, 6]
    assert reg.call("core.arg", []) == ["pykam", "-f", "x.cfg"]
    assert reg.call("core.pwd", []) == [os.getcwd()]


def test_kill_signals_the_master(env, reg):
    pid = os.fork()
    if pid == 0:                                  # stand-in master: wait for the signal
        time.sleep(10)
        os._exit(3)
    try:
        env.master_pid = pid
        reg.call("core.kill", [])
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    with pytest.raises(RpcFault):
        reg.call("core.kill", [999])


# ---- stats.* ----------------------------------------------------------------------------------

def test_get_statistics_selectors(reg):
    allv = reg.call("stats.get_statistics", ["all"])
    assert "core:rcv_requests = 7" in allv and "shmem:free_size = 62914560" in allv
    assert "shmem:fragments = 12" in allv
    assert reg.call("stats.get_statistics", ["core:"]) == ["core:fwd_requests = 3",
                                                          "core:rcv_requests = 7"]
    assert reg.call("stats.get_statistics", ["sl:200_replies"]) == ["sl:200_replies = 2"]
    assert reg.call("stats.get_statistics", ["rcv_requests"]) == ["core:rcv_requests = 7"]
    assert reg.call("stats.get_statistics", ["no:such"]) == []
    assert reg.call("stats.fetch", ["sl:"]) == {"sl.200_replies": "2"}
    assert reg.call("stats.fetchn", ["sl:"]) == {"sl.200_replies": 2}


def test_reset_and_clear_statistics(env, reg):
    assert reg.call("stats.clear_statistics", ["core:"]) == ["core:fwd_requests = 3",
                                                            "core:rcv_requests = 7"]
    assert env.stats.values["core:rcv_requests"] == 0
    env.stats.values["sl:200_replies"] = 9
    assert reg.call("stats.reset_statistics", ["all"]) is None
    assert env.stats.values["sl:200_replies"] == 0
    with pytest.raises(RpcFault):
        reg.call("stats.reset_statistics", [])


# ---- cfg.* ------------------------------------------------------------------------------------

def test_cfg_get_seti_changes_this_process_log_level(reg):
    old = klog.get_debug()
    try:
        assert reg.call("cfg.get", ["core", "debug"]) == 2
        reg.call("cfg.seti", ["core", "debug", 3])
        assert reg.call("cfg.get", ["core", "debug"]) == 3
        assert klog.get_debug() == 3
        reg.call("cfg.seti", ["core", "debug", "-1"])
        assert klog.get_debug() == -1
    finally:
        klog.set_debug(old)


def test_cfg_errors(reg):
    for method, params, code in [("cfg.get", ["core", "nope"], 404),
                                 ("cfg.get", ["nogroup", "debug"], 404),
                                 ("cfg.seti", ["core", "log_facility", 1], 400),
                                 ("cfg.sets", ["core", "debug", "x"], 400),
                                 ("cfg.sets", ["core", "log_facility", "LOG_NOPE"], 400),
                                 ("cfg.set", ["core", "debug", "abc"], 400),
                                 ("cfg.list", ["nogroup"], 404)]:
        with pytest.raises(RpcFault) as ei:
            reg.call(method, params)
        assert ei.value.code == code, (method, params)


def test_cfg_strings_list_help_and_script_vars(reg):
    reg.call("cfg.sets", ["core", "log_facility", "LOG_LOCAL3"])
    assert reg.call("cfg.get", ["core", "log_facility"]) == "LOG_LOCAL3"
    assert reg.call("cfg.get", ["my", "limit"]) == 5
    reg.call("cfg.set", ["my", "limit", "7"])
    assert reg.call("cfg.get", ["my", "limit"]) == 7
    lines = reg.call("cfg.list", [])
    assert "core: debug" in lines and "my: limit" in lines and "my: name" in lines
    assert reg.call("cfg.list", ["my"]) == ["my: limit", "my: name"]
    assert "a limit" in reg.call("cfg.help", ["my", "limit"])


def test_cfg_delayed_commit_rollback_reset(reg):
    reg.call("cfg.set_delayed_int", ["my", "limit", 9])
    reg.call("cfg.set_delayed_string", ["my", "name", "y"])
    assert reg.call("cfg.get", ["my", "limit"]) == 5
    assert {d["variable"]: (d["old"], d["new"]) for d in reg.call("cfg.diff", [])} == {
        "limit": (5, 9), "name": ("x", "y")}
    reg.call("cfg.commit", [])
    assert reg.call("cfg.get", ["my", "limit"]) == 9 and reg.call("cfg.diff", []) == []
    reg.call("cfg.set_delayed", ["my", "limit", 1])
    reg.call("cfg.rollback", [])
    assert reg.call("cfg.get", ["my", "limit"]) == 9
    reg.call("cfg.reset", ["my"])
    assert reg.call("cfg.get", ["my", "limit"]) == 5


def test_real_process_table_rows_and_debug_link():
    """sipcore.proc.table.ProcTable: ProcEntry rows for core.psx, and cfg.seti core debug
    writes its shared debug word (which every child adopts in on_idle)."""
    from sipcore.proc.table import STATUS_READY, ProcTable

    table = ProcTable(3, debug=1)
    table.set(0, 10, 0, "main process - attendant", STATUS_READY)
    table.set(2, 12, -2, "timer", STATUS_READY)
    env = RpcEnv(proc_table=table, runtime_cfg=RuntimeCfg.from_config({"debug": 0}))
    reg = RpcRegistry.build(env, [])
    assert reg.call("core.psx", []) == [{"IDX": 0, "PID": 10, "DSC": "main process - attendant"},
                                        {"IDX": 2, "PID": 12, "DSC": "timer"}]
    assert reg.call("cfg.get", ["core", "debug"]) == 1          # seeded from the table
    gen = table.generation
    old = klog.get_debug()
    try:
        reg.call("cfg.seti", ["core", "debug", 3])
    finally:
        klog.set_debug(old)
    assert table.debug == 3 and table.generation > gen


def test_shm_figures_come_from_the_stats_when_attached(env, reg):
    env.stats.values["shmem:free_size"] = 99               # stats attached to shm
    assert "shmem:free_size = 99" in reg.call("stats.get_statistics", ["shmem:"])
    assert reg.call("stats.clear_statistics", ["shmem:"]) == []   # computed: not resettable


def test_union_hints_are_checked():
    from sipcore.errors import RpcFault as Fault
    from sipcore.mod import Module

    m = Module("uniontest")

    def f(a: int | None = None, b: str | None = None) -> list:
        return [a, b]

    m.rpc("u.f", f)
    reg = RpcRegistry.build(RpcEnv(), [m])
    assert reg.call("u.f", ["4", 5]) == [4, "5"]
    with pytest.raises(Fault) as ei:
        reg.call("u.f", ["x"])
    assert ei.value.code == -32602
