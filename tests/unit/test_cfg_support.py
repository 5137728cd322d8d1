"""Shared helpers for the test_cfg_* tests: small fake modules and a message context.

The fake modules are registered as `modules.<name>` packages in sys.modules so that
`loadmodule "fakemod"` goes through the real ModuleRegistry.load path.
"""
from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any, Optional

from sipcore.cfg import compile_text
from sipcore.mod import ANY_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE, REQUEST_ROUTE, Custom, Fx, Module
from sipcore.net.addr import RecvInfo, SocketInfo
from sipcore.net.node import CoreApi
from sipcore.route.ctx import RouteCtx

CALLS: list[tuple[Any, ...]] = []


def _register(mod: Module) -> None:
    name = f"modules.{mod.name}"
    pkg = types.ModuleType(name)
    pkg.__spec__ = importlib.machinery.ModuleSpec(name, None)
    pkg.mod = mod  # type: ignore[attr-defined]
    sys.modules[name] = pkg


def _parse_even(text: str) -> int:
    v = int(text)
    if v % 2:
        raise ValueError(f"{v} is not even")
    return v


def _build_fakemod() -> Module:
    m = Module("fakemod", summary="test functions")
    m.param("p_int", int, 0)
    m.param("p_str", str, "")
    m.param("p_multi", str, (), multi=True)

    def rec(*a: Any) -> None:
        CALLS.append(a)

    @m.function("f_true")
    def f_true(ctx: RouteCtx) -> int:
        rec("f_true")
        return 1

    @m.function("f_false")
    def f_false(ctx: RouteCtx) -> int:
        rec("f_false")
        return -1

    @m.function("f_zero")
    def f_zero(ctx: RouteCtx) -> int:
        rec("f_zero")
        return 0

    @m.function("f_ret", args=(Fx.IGP,))
    def f_ret(ctx: RouteCtx, v: int) -> int:
        rec("f_ret", v)
        return v

    @m.function("f_str", args=(Fx.SPVE,))
    def f_str(ctx: RouteCtx, s: str) -> int:
        rec("f_str", s)
        return 1

    @m.function("f_str", args=(Fx.STR, Fx.INT))
    def f_str2(ctx: RouteCtx, s: str, i: int) -> int:
        rec("f_str2", s, i)
        return 1

    @m.function("f_flag", args=(Fx.FLAG,))
    def f_flag(ctx: RouteCtx, f: int) -> int:
        rec("f_flag", f)
        return 1

    @m.function("f_rx", args=(Fx.REGEX, Fx.SPVE))
    def f_rx(ctx: RouteCtx, rx: Any, s: str) -> int:
        rec("f_rx", rx.search(s) is not None)
        return 1 if rx.search(s) else -1

    @m.function("f_pvar", args=(Fx.PVAR, Fx.ANY))
    def f_pvar(ctx: RouteCtx, spec: Any, v: Any) -> int:
        spec.set(ctx, v)
        return 1

    @m.function("f_any", args=(Fx.ANY,))
    def f_any(ctx: RouteCtx, v: Any) -> int:
        rec("f_any", v)
        return 1

    @m.function("f_even", args=(Custom(_parse_even, name="even"),))
    def f_even(ctx: RouteCtx, v: int) -> int:
        rec("f_even", v)
        return 1

    @m.function("f_even_dyn", args=(Custom(_parse_even, dynamic=True, name="even"),))
    def f_even_dyn(ctx: RouteCtx, v: int) -> int:
        rec("f_even_dyn", v)
        return 1

    @m.function("f_reply_only", routes=ONREPLY_ROUTE)
    def f_reply_only(ctx: RouteCtx) -> int:
        return 1

    return m


def _build_faketm() -> Module:
    m = Module("faketm", summary="tm-like test functions")
    m.param("fr_timer", int, 30000)

    @m.function("t_relay", routes=REQUEST_ROUTE | FAILURE_ROUTE)
    def t_relay(ctx: RouteCtx) -> int:
        CALLS.append(("t_relay",))
        return 1

    @m.function("t_on_failure", args=(Fx.ROUTE,), routes=ANY_ROUTE)
    def t_on_failure(ctx: RouteCtx, name: str) -> int:
        CALLS.append(("t_on_failure", name))
        return 1

    @m.function("t_on_reply", args=(Fx.ROUTE,))
    def t_on_reply(ctx: RouteCtx, name: str) -> int:
        return 1

    @m.function("t_on_branch", args=(Fx.ROUTE,))
    def t_on_branch(ctx: RouteCtx, name: str) -> int:
        return 1

    return m


def _build_fakedep() -> Module:
    return Module("fakedep", summary="needs faketm", depends=("faketm",))


FAKEMOD = _build_fakemod()
FAKETM = _build_faketm()
_register(FAKEMOD)
_register(FAKETM)
_register(_build_fakedep())

HEADER = 'loadmodule "fakemod"\nloadmodule "faketm"\n'

INVITE = (b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
          b"Via: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK776\r\n"
          b"From: \"Alice\" <sip:alice@example.org>;tag=1928\r\n"
          b"To: <sip:bob@example.com>\r\n"
          b"Call-ID: abc@10.1.2.3\r\n"
          b"CSeq: 1 INVITE\r\n"
          b"Max-Forwards: 70\r\n"
          b"Content-Length: 0\r\n\r\n")


def make_ctx(raw: bytes = INVITE, src_ip: str = "10.1.2.3", proto: str = "udp") -> RouteCtx:
    from sipcore.msg import parse_msg

    core = CoreApi(sockets=[SocketInfo("udp", "127.0.0.1", 5060)],
                   aliases=[("sip.example.test", None, None)])
    return RouteCtx(parse_msg(raw), RecvInfo(proto=proto, src_ip=src_ip), core)


def compile_routes(body: str, extra: str = "", defines: Optional[dict] = None):
    """Compile a request_route BODY (with the fake modules loaded) plus EXTRA top-level text."""
    from sipcore.pv import vars as pvvars

    CALLS.clear()
    pvvars.reset_vars()
    return compile_text(HEADER + extra + "\nrequest_route {\n" + body + "\n}\n",
                        defines=defines)


def var(ctx: RouteCtx, name: str) -> Any:
    from sipcore.pv import parse_pv

    return parse_pv(f"$var({name})").get(ctx)


def run_body(body: str, extra: str = "", ctx: Optional[RouteCtx] = None) -> tuple[int, RouteCtx]:
    cfg = compile_routes(body, extra)
    ctx = ctx or make_ctx()
    from sipcore.pv import vars as pvvars

    pvvars.reset_vars()
    return cfg.run("request", None, ctx), ctx
