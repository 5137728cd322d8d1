"""Containers: $var/$vz/$vn, $avp, $xavp/$xavu/$xavi, $shv, $cnt and dynamic names."""
from __future__ import annotations

from typing import Iterator

import pytest

from sipcore.pv import PvError, parse_pv, shv, vars as pvvars
from sipcore.testing import make_ctx

MSG = """\
OPTIONS sip:ping@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKopt1
From: <sip:mon@example.com>;tag=m1
To: <sip:ping@example.com>
Call-ID: opt-1@10.0.0.1
CSeq: 1 OPTIONS
X-Name: X-Target
Content-Length: 0

"""


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    pvvars.reset_vars()
    old = shv.backend()
    shv.set_backend(shv.LocalShvBackend())
    yield
    pvvars.reset_vars()
    shv.set_backend(old)


def ctx():  # type: ignore[no-untyped-def]
    return make_ctx(MSG)


def test_var_int_str_and_null_reset() -> None:
    c = ctx()
    v = parse_pv("$var(x)")
    assert v.writable
    assert v.get(c) == 0                       # never set: int 0, never $null
    v.set(c, 5)
    assert v.get(c) == 5
    v.set(c, "abc")
    assert v.get(c) == "abc"
    v.set(c, None)
    assert v.get(c) == 0


def test_var_survives_messages_in_process() -> None:
    parse_pv("$var(counter)").set(ctx(), 3)
    assert parse_pv("$var(counter)").get(ctx()) == 3       # another message, same process
    assert parse_pv("$vz(counter)").get(ctx()) == 3        # $vz shares the store


def test_vn_holds_null() -> None:
    c = ctx()
    v = parse_pv("$vn(x)")
    assert v.get(c) is None
    v.set(c, "a")
    assert v.get(c) == "a"
    v.set(c, None)
    assert v.get(c) is None


def test_varset_param_format() -> None:
    assert pvvars.parse_typed_value("a=i:10") == ("a", 10)
    assert pvvars.parse_typed_value("b=s:hello world") == ("b", "hello world")
    assert pvvars.parse_typed_value("c=i:0x10") == ("c", 16)
    for bad in ("a", "a=x:1", "a=i:zz", "=i:1"):
        with pytest.raises(ValueError):
            pvvars.parse_typed_value(bad)


def test_avp_stack_semantics() -> None:
    c = ctx()
    a = parse_pv("$avp(x)")
    assert a.get(c) is None
    a.set(c, "first")
    a.set(c, 2)
    a.set(c, "third")
    assert a.get(c) == "third"                                  # last added is index 0
    assert parse_pv("$(avp(x)[0])").get(c) == "third"
    assert parse_pv("$(avp(x)[1])").get(c) == 2
    assert parse_pv("$(avp(x)[-1])").get(c) == "first"
    assert parse_pv("$(avp(x)[3])").get(c) is None
    assert parse_pv("$(avp(x)[*])").get(c) == "third, 2, first"
    assert parse_pv("$cnt($avp(x))").get(c) == 3
    parse_pv("$(avp(x)[1])").set(c, "two")                     # overwrite in place
    assert parse_pv("$(avp(x)[*])").get(c) == "third, two, first"
    a.set(c, None)                                              # $null removes the top
    assert parse_pv("$(avp(x)[*])").get(c) == "two, first"
    parse_pv("$(avp(x)[-1])").set(c, None)
    assert parse_pv("$(avp(x)[*])").get(c) == "two"
    parse_pv("$(avp(x)[*])").set(c, "only")                     # [*] = v: replace all
    assert parse_pv("$(avp(x)[*])").get(c) == "only"
    parse_pv("$(avp(x)[*])").set(c, None)                       # delete all
    assert a.get(c) is None and parse_pv("$cnt($avp(x))").get(c) == 0
    with pytest.raises(PvError):
        parse_pv("$(avp(x)[4])").set(c, "nope")


def test_avp_names_ids_aliases_and_per_message_scope() -> None:
    c = ctx()
    parse_pv("$avp(s:name)").set(c, "v1")
    assert parse_pv("$avp(name)").get(c) == "v1"
    parse_pv("$avp(i:7)").set(c, 70)
    assert parse_pv("$avp(i:7)").get(c) == 70
    assert parse_pv("$avp(7)").get(c) is None                  # "7" is a name, i:7 an id
    pvvars.AVP_ALIASES["al"] = "name"
    try:
        assert parse_pv("$avp(al)").get(c) == "v1"
    finally:
        pvvars.AVP_ALIASES.clear()
    assert parse_pv("$avp(name)").get(ctx()) is None          # a new message has no AVPs
    with pytest.raises(PvError):
        parse_pv("$avp(i:x)")


def test_dynamic_names() -> None:
    c = ctx()
    parse_pv("$var(n)").set(c, "dyn")
    d = parse_pv("$avp($var(n))")
    assert d.writable
    d.set(c, "val")
    assert parse_pv("$avp(dyn)").get(c) == "val"
    parse_pv("$var(n)").set(c, "other")
    assert d.get(c) is None
    d.set(c, 1)
    assert parse_pv("$avp(other)").get(c) == 1
    parse_pv("$var(h)").set(c, "X-Name")
    assert parse_pv("$hdr($var(h))").get(c) == "X-Target"
    assert parse_pv("$(hdr($hdr(X-Name)))").get(c) is None
    parse_pv("$var(vn)").set(c, "x")
    parse_pv("$var($var(vn))").set(c, 9)
    assert parse_pv("$var(x)").get(c) == 9
    parse_pv("$(avp($var(n))[*])").set(c, None)
    assert parse_pv("$avp(other)").get(c) is None


def test_dynamic_name_that_is_invalid_reads_null_and_logs() -> None:
    from sipcore import log as klog

    c = ctx()
    parse_pv("$var(h)").set(c, "bad name")
    lines = klog.capture(True)
    try:
        assert parse_pv("$hdr($var(h))").get(c) is None
    finally:
        klog.capture(False)
    assert any("invalid header name" in text for _lvl, text in lines)
    parse_pv("$var(e)").set(c, "")
    with pytest.raises(PvError):                           # a write to a bad name is an error
        parse_pv("$var($var(e))").set(c, 1)


def test_xavp_roots_fields_and_indexes() -> None:
    c = ctx()
    parse_pv("$xavp(sf=>uri)").set(c, "sip:10.0.0.1")          # new root item
    parse_pv("$xavp(sf[0]=>fr_timer)").set(c, 10)               # field on that item
    parse_pv("$xavp(sf=>uri)").set(c, "sip:10.0.0.2")          # another new root (index 0)
    parse_pv("$xavp(sf[0]=>fr_timer)").set(c, 20)
    assert parse_pv("$xavp(sf=>uri)").get(c) == "sip:10.0.0.2"
    assert parse_pv("$xavp(sf[1]=>uri)").get(c) == "sip:10.0.0.1"
    assert parse_pv("$xavp(sf[-1]=>fr_timer)").get(c) == 10
    assert parse_pv("$xavp(sf[0]=>fr_timer)").get(c) == 20
    assert parse_pv("$cnt($xavp(sf))").get(c) == 2
    assert parse_pv("$xavp(sf)").get(c).startswith("<<xavp:")
    parse_pv("$xavp(sf[0]=>fr_timer)").set(c, 25)               # add a second value
    assert parse_pv("$xavp(sf[0]=>fr_timer)").get(c) == 25
    assert parse_pv("$xavp(sf[0]=>fr_timer[1])").get(c) == 20
    assert parse_pv("$cnt($xavp(sf[0]=>fr_timer))").get(c) == 2
    parse_pv("$xavp(sf[0]=>fr_timer[1])").set(c, 21)            # overwrite by index
    assert parse_pv("$xavp(sf[0]=>fr_timer[1])").get(c) == 21
    assert parse_pv("$(xavp(sf[0]=>fr_timer[*]))").get(c) == "25, 21"
    parse_pv("$xavp(sf[0]=>fr_timer)").set(c, None)             # removes the first one
    assert parse_pv("$xavp(sf[0]=>fr_timer)").get(c) == 21
    parse_pv("$xavp(sf[0]=>fr_timer[*])").set(c, None)          # removes them all
    assert parse_pv("$xavp(sf[0]=>fr_timer)").get(c) is None
    assert parse_pv("$xavp(sf[0]=>uri)").get(c) == "sip:10.0.0.2"
    parse_pv("$xavp(sf[*]=>uri)").set(c, None)                  # field of every item
    assert parse_pv("$xavp(sf[1]=>uri)").get(c) is None
    assert parse_pv("$xavp(sf[1]=>fr_timer)").get(c) == 10
    parse_pv("$xavp(sf)").set(c, None)                          # removes the first item
    assert parse_pv("$cnt($xavp(sf))").get(c) == 1
    assert parse_pv("$xavp(sf=>fr_timer)").get(c) == 10
    parse_pv("$xavp(sf=>a)").set(c, 1)
    parse_pv("$xavp(sf[*])").set(c, None)                       # removes every item
    assert parse_pv("$xavp(sf=>a)").get(c) is None
    assert parse_pv("$cnt($xavp(sf))").get(c) == 0


def test_xavp_simple_root_values_and_errors() -> None:
    c = ctx()
    parse_pv("$xavp(x)").set(c, 1)
    parse_pv("$xavp(x)").set(c, "two")
    assert parse_pv("$xavp(x)").get(c) == "two"
    assert parse_pv("$xavp(x[1])").get(c) == 1
    assert parse_pv("$xavp(x=>f)").get(c) is None              # simple value has no fields
    parse_pv("$xavp(x[1])").set(c, "one")
    assert parse_pv("$xavp(x[1])").get(c) == "one"
    with pytest.raises(PvError):
        parse_pv("$xavp(x[5])").set(c, 1)
    with pytest.raises(PvError):
        parse_pv("$xavp(x[*])").set(c, 1)
    parse_pv("$xavp(y[3]=>f)").set(c, 1)                       # no item 3: nothing happens
    assert c.xavps.xavp and parse_pv("$cnt($xavp(y))").get(c) == 0
    with pytest.raises(PvError):
        parse_pv("$xavp(x[0]=>f)").set(c, 1)                   # item 0 is a plain value
    for bad in ("$xavp(a[z]=>b)", "$xavp(=>b)", "$xavp(a=>)"):
        with pytest.raises(PvError):
            parse_pv(bad)
    parse_pv("$var(i)").set(c, 1)
    assert parse_pv("$xavp(x[$var(i)])").get(c) == "one"


def test_xavu_single_value() -> None:
    c = ctx()
    parse_pv("$xavu(u=>a)").set(c, 1)
    parse_pv("$xavu(u=>a)").set(c, 2)
    parse_pv("$xavu(u=>b)").set(c, "x")
    assert parse_pv("$xavu(u=>a)").get(c) == 2
    assert parse_pv("$xavu(u=>b)").get(c) == "x"
    assert parse_pv("$cnt($xavu(u=>a))").get(c) == 1
    parse_pv("$xavu(u=>a)").set(c, None)
    assert parse_pv("$xavu(u=>a)").get(c) is None
    parse_pv("$xavu(r)").set(c, "v1")
    parse_pv("$xavu(r)").set(c, "v2")
    assert parse_pv("$xavu(r)").get(c) == "v2"
    assert len(c.xavps.xavu) == 2
    with pytest.raises(PvError):
        parse_pv("$xavu(u[0]=>a)")


def test_xavi_case_insensitive() -> None:
    c = ctx()
    parse_pv("$xavi(Root=>Field)").set(c, "v")
    assert parse_pv("$xavi(rOOT=>fIELD)").get(c) == "v"
    assert parse_pv("$xavp(Root=>Field)").get(c) is None      # separate list


def test_shv_shared_store() -> None:
    c = ctx()
    s = parse_pv("$shv(calls)")
    assert s.get(c) is None
    s.set(c, 10)
    assert parse_pv("$shv(calls)").get(ctx()) == 10
    s.set(c, None)
    assert s.get(c) == 0
    assert dict(shv.backend().items()) == {"calls": 0}

    class Recording(shv.LocalShvBackend):
        writes: list = []

        def set(self, name, value):  # type: ignore[no-untyped-def]
            self.writes.append((name, value))
            super().set(name, value)

    shv.set_backend(Recording())                              # the one-class swap
    s.set(c, "x")
    assert Recording.writes == [("calls", "x")] and s.get(c) == "x"


def test_cnt_needs_container() -> None:
    with pytest.raises(PvError):
        parse_pv("$cnt($ru)")
