"""Lua and Python routing scripts through the in-process Harness: KSR.pv/hdr on real
messages, Kamailio's return rules, named routes, errors answered 500, reload over RPC."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sipcore import log as klog
from sipcore.errors import RpcFault
from sipcore.testing import Harness, make_ctx

ROOT = Path(__file__).resolve().parents[2]


def req(ruri="sip:alice@127.0.0.1", method="OPTIONS", extra="", cid="kemi-1"):
    return (f"{method} {ruri} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK{cid}\n"
            f"Max-Forwards: 70\nFrom: <sip:a@127.0.0.1>;tag=1\nTo: <sip:b@127.0.0.1>\n"
            f"Call-ID: {cid}\nCSeq: 1 {method}\nX-Two: first\nX-Two: second\n{extra}"
            f"Content-Length: 0\n\n")


LUA = r'''
function ksr_request_route()
  local r = {}
  r[#r+1] = "opt=" .. tostring(KSR.is_OPTIONS()) .. " inv=" .. tostring(KSR.is_INVITE())
  r[#r+1] = "in=" .. tostring(KSR.is_method_in("IO"))
  r[#r+1] = "ru=" .. KSR.pv.get("$ru") .. " rU=" .. KSR.pv.get("$rU")
  r[#r+1] = "null=" .. tostring(KSR.pv.get("$hdr(X-None)")) .. "|" .. KSR.pv.gete("$hdr(X-None)")
        .. "|" .. KSR.pv.getw("$hdr(X-None)") .. "|" .. KSR.pv.geti("$hdr(X-None)")
        .. "|" .. tostring(KSR.pv.is_null("$hdr(X-None)"))
  KSR.pv.sets("$var(s)", "abc"); KSR.pv.seti("$var(i)", 41)
  r[#r+1] = "var=" .. KSR.pv.get("$var(s)") .. (KSR.pv.get("$var(i)") + 1)
  r[#r+1] = "hdr=" .. KSR.hdr.get("X-Two") .. "|" .. KSR.hdr.get_idx("X-Two", 1) .. "|"
        .. tostring(KSR.hdr.get("X-None")) .. "|" .. KSR.hdr.is_present("X-None") .. "|"
        .. KSR.hdr.is_present("x-two")
  r[#r+1] = "flag=" .. tostring(KSR.setflag(5)) .. tostring(KSR.isflagset(5))
        .. tostring(KSR.isflagset(6))
  r[#r+1] = "totag=" .. KSR.siputils.has_totag()
  KSR.hdr.remove("X-Two")
  KSR.hdr.append("X-Added: 1\r\n")
  KSR.hdr.insert("X-First: 1\r\n")
  KSR.hdr.append_after("X-After: 1\r\n", "Call-ID")
  for _, v in ipairs(r) do KSR.hdr.append_to_reply("X-R: " .. v .. "\r\n") end
  if KSR.pv.get("$rU") == "exit" then
    local rc = KSR.sl.sl_send_reply(200, "Exited")
    KSR.pv.seti("$var(rc)", rc)
    KSR.x.exit()
    KSR.pv.seti("$var(after_exit)", 1)
  end
  if KSR.pv.get("$rU") == "drop" then KSR.x.drop() end
  if KSR.pv.get("$rU") == "boom" then local t = nil; return t.field end
  if KSR.pv.get("$rU") == "nested" then KSR.route("ksr_helper") end
  KSR.sl.sl_send_reply(200, "After")
end

function ksr_helper()
  KSR.sl.sl_send_reply(202, "Helper")
  KSR.x.exit()
end

function ksr_failure_manage()
  KSR.pv.sets("$var(failed)", "yes")
  return 7
end

function ksr_reply_route()
  if KSR.pv.get("$rs") == 180 then KSR.x.drop() end
end
'''

PY = '''
import KSR


def mod_init():
    return Routing()


class Routing:
    def __init__(self):
        self.rank = None

    def child_init(self, rank):
        self.rank = rank
        return 0

    def ksr_request_route(self, msg):
        r = []
        r.append(f"opt={KSR.is_OPTIONS()} inv={KSR.is_INVITE()}")
        r.append(f"in={KSR.is_method_in('IO')}")
        r.append(f"ru={KSR.pv.get('$ru')} rU={KSR.pv.get('$rU')}")
        r.append(f"null={KSR.pv.get('$hdr(X-None)')}|{KSR.pv.gete('$hdr(X-None)')}|"
                 f"{KSR.pv.getw('$hdr(X-None)')}|{KSR.pv.geti('$hdr(X-None)')}|"
                 f"{KSR.pv.is_null('$hdr(X-None)')}")
        KSR.pv.sets("$var(s)", "abc")
        KSR.pv.seti("$var(i)", 41)
        r.append(f"var={KSR.pv.get('$var(s)')}{KSR.pv.get('$var(i)') + 1}")
        r.append(f"hdr={KSR.hdr.get('X-Two')}|{KSR.hdr.get_idx('X-Two', 1)}|"
                 f"{KSR.hdr.get('X-None')}|{KSR.hdr.is_present('X-None')}|"
                 f"{KSR.hdr.is_present('x-two')}")
        r.append(f"flag={KSR.setflag(5)}{KSR.isflagset(5)}{KSR.isflagset(6)}")
        r.append(f"totag={KSR.siputils.has_totag()}")
        KSR.hdr.remove("X-Two")
        KSR.hdr.append("X-Added: 1\\r\\n")
        KSR.hdr.insert("X-First: 1\\r\\n")
        KSR.hdr.append_after("X-After: 1\\r\\n", "Call-ID")
        for v in r:
            KSR.hdr.append_to_reply(f"X-R: {v}\\r\\n")
        ru = KSR.pv.get("$rU")
        if ru == "exit":
            rc = KSR.sl.sl_send_reply(200, "Exited")
            KSR.pv.seti("$var(rc)", rc)
            KSR.x.exit()
            KSR.pv.seti("$var(after_exit)", 1)
        if ru == "drop":
            KSR.x.drop()
        if ru == "boom":
            return {}["field"]
        if ru == "nested":
            KSR.route("ksr_helper")
            return 1
        KSR.sl.sl_send_reply(200, "After")
        return 1

    def ksr_helper(self, msg):
        KSR.sl.sl_send_reply(202, "Helper")
        return 1

    def ksr_failure_manage(self, msg):
        KSR.pv.sets("$var(failed)", "yes")
        return 7

    def ksr_reply_route(self, msg):
        if KSR.pv.get("$rs") == 180:
            KSR.x.drop()
        return 1
'''

CFG = '''
loadmodule "pv"
loadmodule "sl"
loadmodule "siputils"
loadmodule "textops"
loadmodule "{mod}"
modparam("{mod}", "load", "{path}")
cfgengine "{engine}"
'''

ENGINES = {"lua": ("app_lua", LUA, "t.lua"), "python": ("app_python3", PY, "t_routing.py")}


@pytest.fixture(params=sorted(ENGINES))
def kemi(request, tmp_path):
    engine = request.param
    mod, src, fname = ENGINES[engine]
    path = tmp_path / fname
    path.write_text(textwrap.dedent(src))
    h = Harness.from_text(CFG.format(mod=mod, path=path, engine=engine))
    h.engine_name, h.script, h.mod = engine, path, mod
    return h


def _reply_headers(res):
    (rpl,) = res.replies
    return rpl, [h.value for h in rpl.header_all("X-R")]


def test_pv_hdr_and_return_rules(kemi):
    res = kemi.request(req())
    rpl, xr = _reply_headers(res)
    assert rpl.status == 200 and rpl.reason == "After"
    t, f = ("true", "false") if kemi.engine_name == "lua" else ("True", "False")
    none = "nil" if kemi.engine_name == "lua" else "None"
    assert xr == [f"opt={t} inv={f}", f"in={t}", "ru=sip:alice@127.0.0.1 rU=alice",
                  f"null={none}||<null>|0|{t}", "var=abc42",
                  f"hdr=first|second|{none}|-1|1", f"flag={t}{t}{f}", "totag=-1"]
    assert res.ctx.flags & (1 << 5)


def test_header_edits_reach_the_forwarded_message(kemi):
    res = kemi.request(req())
    out = res.ctx.msg.build()
    assert b"X-Two" not in out
    assert out.index(b"X-First: 1") < out.index(b"Via:")
    assert out.index(b"Call-ID: kemi-1\r\nX-After: 1\r\n") > 0
    assert out.rstrip().endswith(b"X-Added: 1")


def test_exit_stops_and_module_int_returned(kemi):
    res = kemi.request(req("sip:exit@127.0.0.1"))
    rpl, _ = _reply_headers(res)
    from sipcore.pv import cached_pv

    assert rpl.reason == "Exited"
    assert cached_pv("$var(rc)").get(res.ctx) == 1          # a number, not a boolean
    assert cached_pv("$var(after_exit)").get(res.ctx) in (None, 0)


def test_drop_marks_message_dropped(kemi):
    res = kemi.request(req("sip:drop@127.0.0.1"))
    assert res.sent == [] and res.dropped


def test_nested_route_call(kemi):
    res = kemi.request(req("sip:nested@127.0.0.1"))
    rpl, _ = _reply_headers(res)
    assert (rpl.status, rpl.reason) == (202, "Helper")


def test_script_error_gives_500_with_file_line_and_callid(kemi):
    logs = klog.capture(True)
    try:
        res = kemi.request(req("sip:boom@127.0.0.1", cid="err-cid-1"))
    finally:
        klog.capture(False)
    (rpl,) = res.replies
    assert rpl.status == 500
    text = "\n".join(t for _, t in logs)
    assert "err-cid-1" in text and f"{kemi.script}:" in text, text
    assert res.dropped
    # the process still routes the next message
    assert kemi.request(req()).replies[0].reason == "After"


def test_script_error_on_ack_sends_nothing(kemi):
    klog.capture(True)
    try:
        res = kemi.request(req("sip:boom@127.0.0.1", method="ACK"))
    finally:
        klog.capture(False)
    assert res.sent == [] and res.dropped


def test_named_route_kinds_call_script_functions(kemi):
    cfg = kemi.cfg
    assert cfg.has_route("failure", "ksr_failure_manage")
    assert not cfg.has_route("failure", "no_such_function")
    assert cfg.has_route("reply")
    ctx = make_ctx(req(), core=kemi.core)
    assert cfg.run("failure", "ksr_failure_manage", ctx) == 7
    assert ctx.route_name == "ksr_failure_manage"
    from sipcore.pv import cached_pv
    assert cached_pv("$var(failed)").get(ctx) == "yes"
    assert cfg.run("branch", "no_such_function", ctx) == 1


def test_reply_route_drop(kemi):
    rpl = ("SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\n"
           "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKy\nFrom: <sip:a@b>;tag=1\n"
           "To: <sip:b@c>;tag=2\nCall-ID: r1\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
    res = kemi.reply(rpl)
    assert res.dropped and res.sent == []
    res = kemi.reply(rpl.replace("180 Ringing", "200 OK"))
    assert not res.dropped and len(res.sent) == 1


def _rpc_reload(kemi):
    import importlib

    return importlib.import_module(f"modules.{kemi.mod}").rpc_reload()


def test_reload_takes_effect_at_next_message_and_bad_script_is_refused(kemi):
    src = kemi.script.read_text()
    kemi.script.write_text(src.replace('"After"', '"Reloaded"'))
    assert kemi.request(req()).replies[0].reason == "After"     # not before the RPC
    res = _rpc_reload(kemi)
    assert res["new"] == res["old"] + 1
    # the text validated by the RPC is what loads, even if the file changes again meanwhile
    kemi.script.write_text(src.replace('"After"', '"Unchecked"'))
    assert kemi.request(req()).replies[0].reason == "Reloaded"
    kemi.script.write_text("this is ( not a script\n")
    with pytest.raises(RpcFault) as exc:
        _rpc_reload(kemi)
    assert "not reloaded" in exc.value.message
    assert kemi.request(req()).replies[0].reason == "Reloaded"  # old script kept


def _finals(res):
    return [m.status for m in res.replies if m.status >= 200]


@pytest.mark.parametrize("cfg", ["pykam.cfg", "pykam-lua.cfg", "pykam-python.cfg"])
def test_default_routing_same_in_every_language(cfg, monkeypatch):
    """What etc/pykam.cfg does, the Lua and Python default scripts do too (they are stateful:
    a 100 Trying may come first)."""
    monkeypatch.chdir(ROOT)
    h = Harness.from_file(str(ROOT / "etc" / cfg), defines={"DBGLEVEL": "1"})
    keep = h.request(req("sip:127.0.0.1:5060"))
    assert [(m.status, m.reason) for m in keep.replies] == [(200, "Keepalive")]
    local = h.request(req("sip:bob@127.0.0.1:5060", method="INVITE"))
    assert _finals(local) == [404]
    assert h.request(req("sip:bob@127.0.0.1:5060", method="ACK", cid="ack-1")).sent == []
    hops = h.request(req("sip:bob@127.0.0.2").replace("Max-Forwards: 70",
                                                     "Max-Forwards: 0"))
    assert _finals(hops) == [483]
    relay = h.request(req("sip:bob@127.0.0.2:5070", method="INVITE", cid="relay-1"))
    (fwd,) = relay.requests
    assert fwd.max_forwards == 69 and len(fwd.vias) == 2
    assert [d.port for d, b in relay.sent if not b.startswith(b"SIP/2.0")] == [5070]


REGISTER = ("REGISTER sip:127.0.0.1:5060 SIP/2.0\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKreg1\nMax-Forwards: 70\n"
            "From: <sip:bob@127.0.0.1>;tag=r1\nTo: <sip:bob@127.0.0.1>\nCall-ID: reg-1\n"
            "CSeq: 1 REGISTER\nContact: <sip:bob@127.0.0.1:5090>\nExpires: 300\n"
            "Content-Length: 0\n\n")


@pytest.mark.parametrize("cfg", ["pykam-lua.cfg", "pykam-python.cfg"])
def test_default_scripts_register_call_and_failure(cfg, monkeypatch):
    """The stock-config logic of the KEMI default scripts: REGISTER, call to the registered
    contact with Record-Route, a 486 through the failure route back to the caller."""
    monkeypatch.chdir(ROOT)
    h = Harness.from_file(str(ROOT / "etc" / cfg), defines={"DBGLEVEL": "1"})
    reg = h.request(REGISTER, src=("127.0.0.1", 5090))
    (ok,) = reg.replies
    assert ok.status == 200 and "127.0.0.1:5090" in ok.header("Contact").value
    inv = h.request(req("sip:bob@127.0.0.1:5060", method="INVITE", cid="call-1"))
    assert [m.status for m in inv.replies] == [100]
    (fwd,) = inv.requests
    assert fwd.ruri == "sip:bob@127.0.0.1:5090"
    assert fwd.header("Record-Route") is not None
    vias = b"".join(fwd.buf[v.start:v.end] for v in fwd.header_all("Via"))
    busy = (b"SIP/2.0 486 Busy Here\r\n" + vias + b"From: <sip:a@127.0.0.1>;tag=1\r\n"
            b"To: <sip:b@127.0.0.1>;tag=x\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\n"
            b"Content-Length: 0\r\n\r\n")
    out = h.reply(busy, src=("127.0.0.1", 5090))
    assert [m.status for m in out.replies] == [486]            # relayed upstream
    assert [m.method for m in out.requests] == ["ACK"]         # tm ACKs the callee


TM_LUA = r'''
function ksr_request_route()
  KSR.tm.t_on_failure("ksr_failure_manage")
  KSR.tm.t_on_branch("ksr_branch_manage")
  if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end
function ksr_branch_manage()
  KSR.hdr.append("X-Branch: kemi\r\n")
end
function ksr_failure_manage()
  KSR.tm.t_reply(404, "From Failure " .. KSR.pv.get("$T_reply_code"))
end
'''

TM_PY = '''
import KSR


def mod_init():
    return Routing()


class Routing:
    def ksr_request_route(self, msg):
        KSR.tm.t_on_failure("ksr_failure_manage")
        KSR.tm.t_on_branch("ksr_branch_manage")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1

    def ksr_branch_manage(self, msg):
        KSR.hdr.append("X-Branch: kemi\\r\\n")
        return 1

    def ksr_failure_manage(self, msg):
        KSR.tm.t_reply(404, f"From Failure {KSR.pv.get('$T_reply_code')}")
        return 1
'''


@pytest.mark.parametrize("engine", ["lua", "python"])
def test_tm_branch_and_failure_routes_armed_by_function_name(engine, tmp_path):
    mod, _, fname = ENGINES[engine]
    path = tmp_path / fname
    path.write_text(TM_LUA if engine == "lua" else TM_PY)
    h = Harness.from_text(f'''
loadmodule "pv"
loadmodule "sl"
loadmodule "tm"
loadmodule "tmx"
loadmodule "{mod}"
modparam("{mod}", "load", "{path}")
cfgengine "{engine}"
''')
    res = h.request(req("sip:bob@127.0.0.2:5070", method="INVITE", cid="tm-kemi"))
    (fwd,) = res.requests
    assert fwd.header("X-Branch").value == "kemi"            # branch route ran
    vias = b"".join(fwd.buf[v.start:v.end] for v in fwd.header_all("Via"))
    busy = (b"SIP/2.0 486 Busy Here\r\n" + vias + b"From: <sip:a@127.0.0.1>;tag=1\r\n"
            b"To: <sip:b@127.0.0.1>;tag=x\r\nCall-ID: tm-kemi\r\nCSeq: 1 INVITE\r\n"
            b"Content-Length: 0\r\n\r\n")
    out = h.reply(busy, src=("127.0.0.2", 5070))
    assert [(m.status, m.reason) for m in out.replies] == [(404, "From Failure 486")]


def test_event_route_callback_receives_event_name(tmp_path):
    path = tmp_path / "ev.lua"
    path.write_text('function ksr_request_route() end\n'
                    'function ksr_event(evname) KSR.pv.sets("$var(ev)", evname) return 3 end\n')
    h = Harness.from_text(f'''
kemi.event_route_callback="ksr_event"
loadmodule "pv"
loadmodule "app_lua"
modparam("app_lua", "load", "{path}")
cfgengine "lua"
''')
    ctx = make_ctx(req(), core=h.core)
    assert h.cfg.has_route("event", "core:worker-one-init")
    assert h.cfg.run("event", "core:worker-one-init", ctx) == 3
    from sipcore.pv import cached_pv
    assert cached_pv("$var(ev)").get(ctx) == "core:worker-one-init"


def test_missing_request_route_refused_at_load(tmp_path):
    from sipcore.errors import ModuleError

    path = tmp_path / "none.lua"
    path.write_text("function something_else() end\n")
    with pytest.raises(ModuleError, match="ksr_request_route"):
        Harness.from_text(f'''
loadmodule "app_lua"
modparam("app_lua", "load", "{path}")
cfgengine "lua"
''')


def test_lua_python_exception_from_ksr_call(tmp_path):
    """A Python exception raised under a KSR call from Lua: logged with the Lua line and
    answered 500; a ParseError keeps receive.py's 400."""
    from sipcore.errors import ParseError

    path = tmp_path / "pyexc.lua"
    path.write_text('function ksr_request_route()\n'
                    '  if KSR.pv.get("$rU") == "boom" then PYBOOM() end\n'
                    '  if KSR.pv.get("$rU") == "parse" then PYPARSE() end\n'
                    '  KSR.sl.sl_send_reply(200, "ok")\n'
                    'end\n')
    h = Harness.from_text(f'''
loadmodule "pv"
loadmodule "sl"
loadmodule "app_lua"
modparam("app_lua", "load", "{path}")
cfgengine "lua"
''')

    def boom():
        raise RuntimeError("kaput")

    def parse():
        raise ParseError("broken header")

    g = h.cfg.kemi.state.globals
    g.PYBOOM, g.PYPARSE = boom, parse
    logs = klog.capture(True)
    try:
        r1 = h.request(req("sip:boom@127.0.0.1", cid="py-exc"))
        r2 = h.request(req("sip:parse@127.0.0.1"))
    finally:
        klog.capture(False)
    assert [m.status for m in r1.replies] == [500]
    text = "\n".join(t for _, t in logs)
    assert "RuntimeError: kaput" in text and f"{path}:2" in text and "py-exc" in text, text
    assert [m.status for m in r2.replies] == [400]
    assert [m.reason for m in h.request(req()).replies] == ["ok"]
