"""The `pv` module: its declaration, params, functions and RPCs, on real messages."""
from __future__ import annotations

from typing import Iterator

import pytest

from modules.pv import (
    ki_is_int, ki_not_empty, ki_pv_evalx, ki_pv_isset, ki_pv_unset, ki_pv_var_to_xavp,
    ki_pv_xavp_print, ki_pv_xavp_to_var, ki_sbranch_append, ki_sbranch_reset,
    ki_sbranch_set_ruri, ki_typeof, ki_xavi_child_sets, ki_xavp_child_rm, ki_xavp_child_seti,
    ki_xavp_child_sets, ki_xavp_copy, ki_xavp_copy_dst, ki_xavp_params_explode,
    ki_xavp_params_implode, ki_xavp_rm, ki_xavp_slist_explode, ki_xavu_params_explode,
    ki_xavu_params_implode, mod, rpc_shv_get, rpc_shv_set,
)
from sipcore.errors import RpcFault
from sipcore.mod import Fx
from sipcore.mod.loader import ModuleRegistry
from sipcore.pv import miscpv, parse_pv, shv
from sipcore.pv import vars as pvvars
from sipcore.testing import make_ctx

MSG = """\
INVITE sip:alice@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpvmod
From: <sip:bob@biloxi.com>;tag=t1
To: <sip:alice@example.com>
Call-ID: pvmod-1
CSeq: 7 INVITE
Content-Length: 0

"""


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    pvvars.reset_vars()
    old = shv.backend()
    shv.set_backend(shv.LocalShvBackend())
    miscpv.sbranch_reset()
    yield
    pvvars.reset_vars()
    pvvars.AVP_ALIASES.clear()
    shv.set_backend(old)
    miscpv.sbranch_reset()
    mod.reset_params()


def ctx():  # type: ignore[no-untyped-def]
    return make_ctx(MSG)


P = parse_pv


def test_declaration() -> None:
    names = set(mod.functions)
    for f in ("pv_isset", "pv_unset", "is_int", "typeof", "not_empty", "xavp_params_explode",
              "xavp_params_implode", "xavp_child_seti", "xavp_child_sets", "xavp_rm",
              "xavp_child_rm", "sbranch_set_ruri", "sbranch_append", "sbranch_reset",
              "pv_var_to_xavp", "pv_xavp_to_var", "xavp_copy", "xavp_slist_explode",
              "pv_evalx", "pv_xavp_print"):
        assert f in names, f
    assert {len(o.args) for o in mod.functions["xavp_copy"]} == {3, 4}
    assert mod.lookup("pv_isset", 1).args == (Fx.PVAR,)
    assert set(mod.params) == {"shvset", "varset", "avp_aliases"}
    assert set(mod.rpcs) == {"pv.shvSet", "pv.shvGet"}
    reg = ModuleRegistry()
    assert reg.load("pv") is mod


def test_params_and_mod_init() -> None:
    mod.set_param("shvset", "calls=i:5")
    mod.set_param("shvset", "name=s:pykam")
    mod.set_param("varset", "limit=i:10")
    mod.set_param("avp_aliases", "uid=s:user_id;num=i:3")
    for hook in mod.init_hooks:
        hook(None)
    c = ctx()
    assert P("$shv(calls)").get(c) == 5
    assert P("$shv(name)").get(c) == "pykam"
    assert P("$var(limit)").get(c) == 10
    P("$avp(uid)").set(c, "u1")
    assert P("$avp(s:user_id)").get(c) == "u1"
    P("$avp(num)").set(c, 1)
    assert P("$avp(i:3)").get(c) == 1
    with pytest.raises(ValueError):
        mod.set_param("shvset", "bad")
    with pytest.raises(ValueError):
        mod.set_param("avp_aliases", "noequals")


def test_isset_unset_types() -> None:
    c = ctx()
    assert ki_pv_isset(c, P("$avp(a)")) == -1
    P("$avp(a)").set(c, "x")
    assert ki_pv_isset(c, P("$avp(a)")) == 1
    assert ki_pv_isset(c, P("$ru")) == 1
    assert ki_pv_isset(c, P("$du")) == -1
    assert ki_pv_unset(c, P("$avp(a)")) == 1
    assert ki_pv_isset(c, P("$avp(a)")) == -1
    assert ki_pv_unset(c, P("$ci")) == -1                # read-only
    P("$var(i)").set(c, 12)
    P("$var(s)").set(c, "-34")
    P("$var(t)").set(c, "12a")
    assert ki_is_int(c, P("$var(i)")) == 1
    assert ki_is_int(c, P("$var(s)")) == 1
    assert ki_is_int(c, P("$var(t)")) == -1
    assert ki_is_int(c, P("$cs")) == 1
    assert ki_is_int(c, P("$du")) == -1
    assert ki_typeof(c, P("$var(i)"), "int") == 1
    assert ki_typeof(c, P("$var(s)"), "str") == 1
    assert ki_typeof(c, P("$var(s)"), "int") == -1
    assert ki_typeof(c, P("$du"), "null") == 1
    assert ki_typeof(c, P("$ru"), "null") == -1
    assert ki_typeof(c, P("$ru"), "bogus") == -1
    assert ki_not_empty(c, P("$ru")) == 1
    P("$var(e)").set(c, "")
    assert ki_not_empty(c, P("$var(e)")) == -1
    assert ki_not_empty(c, P("$du")) == -1
    assert ki_not_empty(c, P("$var(i)")) == -1


def test_pv_evalx() -> None:
    c = ctx()
    # the cfg argument "$var(tpl)" arrives evaluated once; pv_evalx evaluates it again
    P("$var(tpl)").set(c, "user=$rU")
    assert ki_pv_evalx(c, P("$var(out)"), str(P("$var(tpl)").get(c))) == 1
    assert P("$var(out)").get(c) == "user=alice"
    assert ki_pv_evalx(c, P("$var(out)"), "bad $") == -1


def test_xavp_params_explode_implode() -> None:
    c = ctx()
    assert ki_xavp_params_explode(c, "a=1;b=two;c", "x") == 1
    assert P("$xavp(x=>a)").get(c) == "1"
    assert P("$xavp(x=>b)").get(c) == "two"
    assert P("$xavp(x=>c)").get(c) == ""
    assert ki_xavp_params_implode(c, "x", P("$var(out)")) == 1
    assert P("$var(out)").get(c) == "a=1;b=two;c="
    assert ki_xavp_params_implode(c, "nope", P("$var(out)")) == -1
    assert ki_xavp_params_explode(c, "", "x") == -1
    assert ki_xavu_params_explode(c, "k=v", "u") == 1
    assert ki_xavu_params_explode(c, "k=w", "u") == 1
    assert P("$xavu(u=>k)").get(c) == "w" and len(c.xavps.xavu) == 1
    assert ki_xavu_params_implode(c, "u", P("$var(o2)")) == 1
    assert P("$var(o2)").get(c) == "k=w"


def test_xavp_slist_explode() -> None:
    c = ctx()
    assert ki_xavp_slist_explode(c, "a, b ,c", ",", "t", "l") == 1
    assert P("$xavp(l=>v)").get(c) == "a"
    assert P("$xavp(l=>v[2])").get(c) == "c"
    assert P("$cnt($xavp(l=>v))").get(c) == 3
    assert ki_xavp_slist_explode(c, "x;;y| z", ";|", "", "m") == 1   # empty tokens skipped
    assert P("$(xavp(m=>v[*]))").get(c) == "x, y,  z"
    assert ki_xavp_slist_explode(c, "", ",", "t", "m") == -1


def test_xavp_child_set_rm() -> None:
    c = ctx()
    assert ki_xavp_child_seti(c, "r", "n", 5) == 1          # creates the root
    assert ki_xavp_child_sets(c, "r", "s", "txt") == 1
    assert ki_xavp_child_seti(c, "r", "n", 6) == 1          # replaces the value
    assert P("$xavp(r=>n)").get(c) == 6
    assert P("$cnt($xavp(r=>n))").get(c) == 1
    assert P("$xavp(r=>s)").get(c) == "txt"
    assert ki_xavp_child_rm(c, "r", "n") == 1
    assert P("$xavp(r=>n)").get(c) is None
    assert ki_xavp_child_rm(c, "r", "n") == -1
    assert ki_xavp_rm(c, "r") == 1
    assert P("$xavp(r=>s)").get(c) is None
    assert ki_xavp_rm(c, "r") == -1
    assert ki_xavi_child_sets(c, "Ri", "F", "v") == 1
    assert P("$xavi(ri=>f)").get(c) == "v"


def test_xavp_copy() -> None:
    c = ctx()
    P("$xavp(src=>a)").set(c, "1")
    assert ki_xavp_copy(c, "src", 0, "dst") == 1
    assert P("$xavp(dst=>a)").get(c) == "1"
    P("$xavp(dst[0]=>a[0])").set(c, "changed")
    assert P("$xavp(src=>a)").get(c) == "1"                # deep copy
    P("$xavp(src=>a)").set(c, "2")                          # new src item at index 0
    assert ki_xavp_copy_dst(c, "src", 0, "dst", 0) == 1
    assert P("$xavp(dst=>a)").get(c) == "2"
    assert ki_xavp_copy(c, "src", 5, "dst") == -1
    assert ki_xavp_copy_dst(c, "src", 0, "dst", 3) == -1


def test_var_xavp_conversion() -> None:
    c = ctx()
    P("$var(a)").set(c, 1)
    P("$var(b)").set(c, "two")
    assert ki_pv_var_to_xavp(c, "*", "vars") == 1
    assert P("$xavp(vars=>a)").get(c) == 1
    assert P("$xavp(vars=>b)").get(c) == "two"
    assert ki_pv_var_to_xavp(c, "*", "vars") == 1                # replaces, not appends
    assert P("$cnt($xavp(vars))").get(c) == 1
    assert ki_pv_var_to_xavp(c, "a", "one") == 1
    assert P("$xavp(one=>a)").get(c) == 1
    assert P("$xavp(one=>b)").get(c) is None
    assert ki_pv_var_to_xavp(c, "missing", "one") == -1
    pvvars.reset_vars()
    assert ki_pv_xavp_to_var(c, "vars") == 1
    assert P("$var(a)").get(c) == 1 and P("$var(b)").get(c) == "two"
    assert ki_pv_xavp_to_var(c, "none") == -1
    assert ki_pv_xavp_print(c) == 1


def test_sbranch() -> None:
    c = ctx()
    assert ki_sbranch_set_ruri(c) == -1                    # empty static branch
    P("$sbranch(uri)").set(c, "sip:static@example.net")
    P("$sbranch(dst_uri)").set(c, "sip:gw.example.net:5070")
    P("$sbranch(flags)").set(c, 4)
    assert ki_sbranch_set_ruri(c) == 1
    assert c.msg.ruri == "sip:static@example.net"
    assert c.dst_uri == "sip:gw.example.net:5070"
    assert c.bflags == 4
    assert ki_sbranch_append(c) == 1
    assert [b.uri for b in c.branches] == ["sip:static@example.net"]
    assert c.branches[0].dst_uri == "sip:gw.example.net:5070"
    assert ki_sbranch_reset(c) == 1
    assert P("$sbranch(uri)").get(c) is None
    assert ki_sbranch_append(c) == -1


def test_rpc_shv() -> None:
    assert rpc_shv_set("n", "int", "7").startswith("Ok")
    assert rpc_shv_set("s", "str", "hello").startswith("Ok")
    assert rpc_shv_get("n") == [{"name": "n", "type": "int", "value": 7}]
    assert {d["name"] for d in rpc_shv_get()} == {"n", "s"}
    assert P("$shv(s)").get(ctx()) == "hello"
    with pytest.raises(RpcFault):
        rpc_shv_set("n", "int", "x")
    with pytest.raises(RpcFault):
        rpc_shv_set("n", "float", "1")
    with pytest.raises(RpcFault):
        rpc_shv_get("missing")
