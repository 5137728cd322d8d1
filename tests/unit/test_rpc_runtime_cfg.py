"""RuntimeCfg: values shared across fork, per-process refresh() with hooks (core.debug drives
the log level of every process), validation, caller-provided buffers."""
from __future__ import annotations

import os
import signal

import pytest

from sipcore import log as klog
from sipcore.rpc.runtime_cfg import STR_MAX, CfgError, CfgVar, RuntimeCfg


def _in_child(fn) -> dict:
    """Fork a child that runs FN once the parent says go (_finish) and writes the result
    to a pipe; returns the child's pid and pipe ends."""
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.close(go_w)
            os.read(go_r, 1)                 # wait until the parent changed the value
            os.write(w, str(fn()).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.close(go_r)
    return {"pid": pid, "r": r, "go": go_w}


def _finish(child: dict) -> str:
    """Let the child run, read its answer, reap it."""
    os.write(child["go"], b"x")
    os.close(child["go"])
    data = b""
    while True:
        chunk = os.read(child["r"], 100)
        if not chunk:
            break
        data += chunk
    os.close(child["r"])
    try:
        os.waitpid(child["pid"], 0)
    except ChildProcessError:
        pass
    return data.decode()


def test_debug_change_reaches_a_forked_process():
    old = klog.get_debug()
    rc = RuntimeCfg.from_config({"debug": 0})

    def child_view():
        rc.refresh()
        return klog.get_debug()

    child = _in_child(child_view)
    try:
        rc.set("core", "debug", 3)             # as the ctl process would
        assert _finish(child) == "3"
        assert klog.get_debug() == 3           # the writer refreshed itself too
    finally:
        klog.set_debug(old)
        try:
            os.kill(child["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_refresh_is_cheap_and_reports_changes():
    rc = RuntimeCfg([CfgVar("g", "a", "int", 1), CfgVar("g", "s", "str", "x")])
    seen = []
    rc.on_change("g", "a", seen.append)
    assert rc.refresh() is False
    rc.set("g", "a", 2)                       # set() refreshes this process
    assert seen == [2]
    assert rc.refresh() is False
    rc.set("g", "s", "é" * 10)
    assert rc.get("g", "s") == "é" * 10
    assert rc.generation() % 2 == 0


def test_validation_and_limits():
    rc = RuntimeCfg.from_config({})
    with pytest.raises(CfgError) as ei:
        rc.set("core", "debug", "high")
    assert ei.value.code == 400
    with pytest.raises(CfgError):
        rc.set("core", "log_facility", "LOG_BOGUS")
    with pytest.raises(CfgError):
        rc.set("core", "log_facility", "x" * (STR_MAX + 1))
    with pytest.raises(CfgError) as ei:
        rc.get("core", "no_such")
    assert ei.value.code == 404
    rc.set("core", "debug", "0x2")
    assert rc.get("core", "debug") == 2


def test_config_values_are_the_defaults_and_rt_params_only():
    rc = RuntimeCfg.from_config({"debug": 3, "children": 4, "dns_try_ipv6": False})
    assert rc.get("core", "debug") == 3
    assert rc.get("core", "dns_try_ipv6") == 0
    with pytest.raises(CfgError):
        rc.get("core", "children")             # not runtime-changeable


def test_caller_buffer():
    vars_ = [CfgVar("g", "a", "int", 5)]
    buf = bytearray(RuntimeCfg.size_for(vars_))
    rc = RuntimeCfg(vars_, buf)
    rc.set("g", "a", 9)
    assert int.from_bytes(buf[8:16], "little") == 9
    with pytest.raises(ValueError):
        RuntimeCfg(vars_, bytearray(4))


def test_module_cfg_group_tm_values_change_new_transactions():
    """A module's cfg group (Kamailio's cfg framework): `cfg.seti tm fr_inv_timer 1500`
    reaches tm's values in a process that refreshes, and new transactions carry it."""
    from modules.tm.config import CFG
    from modules.tm.state import table
    from sipcore.testing import Harness

    h = Harness.from_text('loadmodule "sl"\nloadmodule "tm"\n'
                          'modparam("tm", "fr_inv_timer", 90000)\n'
                          'request_route { t_relay("127.0.0.1", 5090); }\n')
    tm = next(m for m in h.cfg.modules if m.name == "tm")
    rc = RuntimeCfg.from_config({}, {}, modules=h.cfg.modules)
    assert rc.get("tm", "fr_inv_timer") == 90000          # starts from the modparam
    assert {v.name for v in rc.list("tm")} >= {"fr_timer", "fr_inv_timer", "wt_timer"}
    with pytest.raises(CfgError):
        rc.set("tm", "fr_inv_timer", "soon")
    rc.set("tm", "fr_inv_timer", 1500)
    assert CFG.fr_inv_timer == 1500 and tm.p.fr_inv_timer == 90000
    h.request("INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
                    "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcfg1\r\n"
                    "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n"
                    "Call-ID: cfg-group-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                    "Content-Length: 0\r\n\r\n")
    cells = table().cells()
    assert [c.fr_inv_timer for c in cells if c.method == "INVITE"] == [1500]
