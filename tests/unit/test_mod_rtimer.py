"""rtimer: timer definitions, exec bindings, routes run by the timer loop on a faked request."""
from __future__ import annotations

import time

import pytest

from modules import rtimer
from modules.htable import ht_api
from sipcore.errors import ConfigErrors, ModuleError
from sipcore.testing import Harness

CFG = """
loadmodule "htable"
loadmodule "rtimer"
loadmodule "corex"
modparam("htable", "htable", "t=>size=3;")
modparam("rtimer", "timer", "name=fast;interval=50000u;mode=1;")
modparam("rtimer", "timer", "name=slow;interval=100;")
modparam("rtimer", "exec", "timer=fast;route=TICK")
modparam("rtimer", "exec", "timer=fast;route=TOCK")
modparam("rtimer", "exec", "timer=slow;route=TICK")
request_route { drop; }
route[TICK] { $var(x) = $shtinc(t=>ticks); if (is_faked_msg()) { $sht(t=>faked) = 1; } }
route[TOCK] { $var(x) = $shtinc(t=>tocks); }
"""


def test_parse_definitions():
    td = rtimer.parse_timer("name=t1;interval=10;mode=1;")
    assert (td.name, td.interval_ms, td.mode) == ("t1", 10000, 1)
    assert rtimer.parse_timer("name=u;interval=1500u").interval_ms == 2
    assert rtimer.parse_timer("name=d").interval_ms is None
    assert rtimer.parse_exec("timer=t1;route=R") == ("t1", "R")
    for bad in ("interval=10", "name=x;interval=abc", "name=x;colour=red", "name=x;interval=0"):
        with pytest.raises(ValueError):
            rtimer.parse_timer(bad)
    with pytest.raises(ValueError):
        rtimer.parse_exec("timer=t1")


def test_routes_run_from_the_timer_loop():
    h = Harness.from_text(CFG)
    assert [r for r in rtimer.TIMERS["fast"].routes] == ["TICK", "TOCK"]
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and (ht_api.get_table("t").get("ticks") or 0) < 3:
        h.run_timers()
        time.sleep(0.01)
    t = ht_api.get_table("t")
    assert t.get("ticks") >= 3 and t.get("tocks") >= 3 and t.get("faked") == 1


def test_exec_errors_are_startup_errors():
    with pytest.raises((ModuleError, ConfigErrors), match="undefined timer"):
        Harness.from_text(CFG.replace("timer=slow;route=TICK", "timer=nope;route=TICK"))
    with pytest.raises((ModuleError, ConfigErrors), match="NOROUTE"):
        Harness.from_text(CFG.replace("timer=slow;route=TICK", "timer=slow;route=NOROUTE"))
