"""counters: declared script counters, cnt_* functions and cnt.* RPCs."""
from __future__ import annotations

import pytest

import modules.counters as counters
from sipcore import stats
from sipcore.errors import RpcFault
from sipcore.testing import make_ctx

REQ = ("OPTIONS sip:bob@b.example SIP/2.0\n"
       "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc\n"
       "From: <sip:alice@a.example>;tag=1\n"
       "To: <sip:bob@b.example>\n"
       "Call-ID: c1\n"
       "CSeq: 1 OPTIONS\n"
       "Content-Length: 0\n\n")


@pytest.fixture
def ctx():
    counters.mod.reset_params()
    counters.mod.set_param("script_counter", "calls Number of calls")
    counters.mod.set_param("script_counter", "billing.minutes")
    for key in ("script:calls", "billing:minutes"):
        stats.reset(key)
    for hook in counters.mod.init_hooks:
        hook(None)
    yield make_ctx(REQ)
    counters.mod.reset_params()


def fix(name, text):
    return counters.mod.lookup(name, 1 if name != "cnt_add" else 2).args[0].parse(text)


def call(ctx, name, *args):
    return counters.mod.lookup(name, len(args)).impl(ctx, *args)


def test_inc_add_reset(ctx):
    calls = fix("cnt_inc", "calls")
    minutes = fix("cnt_add", "billing.minutes")
    assert call(ctx, "cnt_inc", calls) == 1
    assert call(ctx, "cnt_inc", calls) == 1
    assert call(ctx, "cnt_add", minutes, 30) == 1
    assert call(ctx, "cnt_add", minutes, -5) == 1
    assert stats.get("script:calls") == 2 and stats.get("billing:minutes") == 25
    assert call(ctx, "cnt_reset", calls) == 1 and stats.get("script:calls") == 0


def test_undeclared_counter_is_a_config_error(ctx):
    with pytest.raises(ValueError, match="does not exist"):
        fix("cnt_inc", "nosuch")
    with pytest.raises(ValueError):
        counters.mod.set_param("script_counter", "grp.")


def test_default_group_param(ctx):
    counters.mod.reset_params()
    counters.mod.set_param("script_cnt_grp_name", "mine")
    counters.mod.set_param("script_counter", "hits")
    assert fix("cnt_inc", "hits") == "mine:hits"


def test_rpcs(ctx):
    call(ctx, "cnt_inc", fix("cnt_inc", "calls"))
    assert counters.rpc_get("script", "calls") == 1
    assert "script" in counters.rpc_grps_list() and "billing" in counters.rpc_grps_list()
    assert counters.rpc_var_list("billing") == ["minutes"]
    assert counters.rpc_grp_get_all("script")["calls"] == 1
    assert counters.rpc_help("script", "calls") == "Number of calls"
    counters.rpc_reset("script", "calls")
    assert counters.rpc_get("script", "calls") == 0
    with pytest.raises(RpcFault):
        counters.rpc_get("script", "nope")
    with pytest.raises(RpcFault):
        counters.rpc_var_list("nogroup")
    assert counters.mod.rpcs["cnt.list_groups"].handler is counters.rpc_grps_list
