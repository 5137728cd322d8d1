"""rr: Record-Route on the wire, loose/strict routing, route params, direction."""
from __future__ import annotations

import re

import pytest

import modules.rr as rr
from sipcore.forward import forward_request
from sipcore.msg import parse_msg
from sipcore.net.addr import SocketInfo
from sipcore.testing import RecordingCore, make_ctx

INVITE = ("INVITE sip:bob@192.0.2.20 SIP/2.0\n"
          "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc\n"
          "Max-Forwards: 70\n"
          "From: <sip:alice@a.example>;tag=ft1\n"
          "To: <sip:bob@b.example>\n"
          "Call-ID: c1\n"
          "CSeq: 1 INVITE\n"
          "Content-Length: 0\n\n")


def in_dialog(routes: list[str], ruri: str = "sip:bob@192.0.2.20", from_tag: str = "ft1",
              to_tag: str | None = "tt") -> str:
    to = "<sip:bob@b.example>" + (f";tag={to_tag}" if to_tag else "")
    return (f"BYE {ruri} SIP/2.0\n"
            "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKbye\n"
            + "".join(f"Route: {r}\n" for r in routes) +
            f"From: <sip:alice@a.example>;tag={from_tag}\n"
            f"To: {to}\n"
            "Call-ID: c1\n"
            "CSeq: 2 BYE\n"
            "Content-Length: 0\n\n")


@pytest.fixture(autouse=True)
def params():
    rr.mod.reset_params()
    yield
    rr.mod.reset_params()


def call(ctx, name, *args):
    return rr.mod.lookup(name, len(args)).impl(ctx, *args)


def forwarded(ctx):
    assert forward_request(ctx) == 1
    dest, buf = ctx.core.sent[-1]
    return dest, parse_msg(buf), buf


# ---- Record-Route -----------------------------------------------------------------------------

def test_record_route_single():
    ctx = make_ctx(INVITE)
    assert call(ctx, "record_route") == 1
    _, out, buf = forwarded(ctx)
    assert [r.uri for r in out.record_routes] == ["sip:127.0.0.1;lr;ftag=ft1"]
    assert buf.index(b"Record-Route:") < buf.index(b"Via:")


def test_record_route_params_full_lr_and_no_fromtag():
    rr.mod.set_param("enable_full_lr", 1)
    rr.mod.set_param("append_fromtag", 0)
    ctx = make_ctx(INVITE)
    assert call(ctx, "add_rr_param", ";before=1") == 1
    assert call(ctx, "record_route", "p=1") == 1
    assert call(ctx, "add_rr_param", "nat=yes") == 1
    _, out, _ = forwarded(ctx)
    assert out.record_routes[0].uri == "sip:127.0.0.1;lr=on;p=1;before=1;nat=yes"


def test_double_rr_when_sockets_differ():
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5060),
                          SocketInfo("tcp", "127.0.0.1", 5060)])
    ctx = make_ctx(INVITE.replace("sip:bob@192.0.2.20", "sip:bob@192.0.2.20;transport=tcp"),
                   core=core)
    assert call(ctx, "record_route") == 1
    _, out, _ = forwarded(ctx)
    assert [r.uri for r in out.record_routes] == [
        "sip:127.0.0.1;transport=tcp;r2=on;lr;ftag=ft1",
        "sip:127.0.0.1;r2=on;lr;ftag=ft1",
    ]


def test_double_rr_always_and_disabled():
    rr.mod.set_param("enable_double_rr", 2)
    ctx = make_ctx(INVITE)
    call(ctx, "record_route")
    _, out, _ = forwarded(ctx)
    assert len(out.record_routes) == 2
    rr.mod.reset_params()
    rr.mod.set_param("enable_double_rr", 0)
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5060),
                          SocketInfo("udp", "127.0.0.2", 5070)])
    ctx = make_ctx(INVITE, core=core)
    ctx.force_socket = core.sockets[1]
    call(ctx, "record_route")
    _, out, _ = forwarded(ctx)
    assert [r.uri for r in out.record_routes] == ["sip:127.0.0.1;lr;ftag=ft1"]


def test_rr_port_and_username_and_advertised():
    rr.mod.set_param("add_username", 1)
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5080)])
    ctx = make_ctx(INVITE, core=core)
    call(ctx, "record_route")
    _, out, _ = forwarded(ctx)
    assert out.record_routes[0].uri == "sip:bob@127.0.0.1:5080;lr;ftag=ft1"
    ctx = make_ctx(INVITE, core=RecordingCore())
    assert call(ctx, "record_route_advertised_address", "pub.example:5090") == 1
    _, out, _ = forwarded(ctx)
    assert out.record_routes[0].uri == "sip:bob@pub.example:5090;lr;ftag=ft1"


def test_record_route_preset():
    ctx = make_ctx(INVITE)
    assert call(ctx, "record_route_preset", "198.51.100.1:5090") == 1
    _, out, _ = forwarded(ctx)
    assert out.record_routes[0].uri == "sip:198.51.100.1:5090;lr;ftag=ft1"
    ctx = make_ctx(INVITE)
    assert call(ctx, "record_route_preset", "10.0.0.5", "192.0.2.5:5070") == 1
    _, out, _ = forwarded(ctx)
    assert [r.uri for r in out.record_routes] == ["sip:10.0.0.5;r2=on;lr;ftag=ft1",
                                                   "sip:192.0.2.5:5070;r2=on;lr;ftag=ft1"]


def test_remove_record_route():
    ctx = make_ctx(INVITE)
    call(ctx, "record_route")
    assert call(ctx, "remove_record_route") == 1
    _, out, _ = forwarded(ctx)
    assert out.record_routes == []


def test_rr_goes_above_existing_record_routes():
    ctx = make_ctx(INVITE.replace("Max-Forwards: 70\n",
                                  "Record-Route: <sip:198.51.100.9;lr>\nMax-Forwards: 70\n"))
    call(ctx, "record_route")
    _, out, _ = forwarded(ctx)
    assert [r.uri for r in out.record_routes] == ["sip:127.0.0.1;lr;ftag=ft1",
                                                   "sip:198.51.100.9;lr"]


# ---- loose_route ------------------------------------------------------------------------------

def test_loose_route_removes_us_and_sets_du():
    ctx = make_ctx(in_dialog(["<sip:127.0.0.1;lr;ftag=ft1;nat=yes>, <sip:192.0.2.99;lr>",
                              "<sip:192.0.2.98;lr>"]))
    assert call(ctx, "loose_route") == 1
    assert ctx.dst_uri == "sip:192.0.2.99;lr"
    assert call(ctx, "rr_next_hop_route") == 1
    assert call(ctx, "check_route_param", re.compile("nat=yes")) == 1
    assert call(ctx, "check_route_param", re.compile("nat=no")) == -1
    dest, out, _ = forwarded(ctx)
    assert (dest.ip, dest.port) == ("192.0.2.99", 5060)
    assert [r.uri for r in out.routes] == ["sip:192.0.2.99;lr", "sip:192.0.2.98;lr"]
    assert out.ruri == "sip:bob@192.0.2.20"


def test_loose_route_only_us_goes_to_ruri():
    ctx = make_ctx(in_dialog(["<sip:127.0.0.1:5060;lr>"]))
    assert call(ctx, "loose_route") == 1
    assert ctx.dst_uri is None and call(ctx, "rr_next_hop_route") == -1
    dest, out, _ = forwarded(ctx)
    assert dest.ip == "192.0.2.20" and out.routes == []


def test_loose_route_no_route_and_not_ours():
    assert call(make_ctx(in_dialog([])), "loose_route") == -1
    ctx = make_ctx(in_dialog(["<sip:192.0.2.99;lr>"]))
    assert call(ctx, "loose_route") == 1                # not ours: next hop is that Route
    assert ctx.dst_uri == "sip:192.0.2.99;lr"
    assert call(ctx, "check_route_param", re.compile("lr")) == -1


def test_loose_route_next_hop_strict_router():
    ctx = make_ctx(in_dialog(["<sip:127.0.0.1;lr>", "<sip:192.0.2.99>"]))
    assert call(ctx, "loose_route") == 1
    _, out, _ = forwarded(ctx)
    assert out.ruri == "sip:192.0.2.99"
    assert [r.uri for r in out.routes] == ["sip:bob@192.0.2.20"]   # old R-URI saved last


def test_double_rr_route_removes_both_and_forces_socket():
    core = RecordingCore([SocketInfo("udp", "127.0.0.1", 5060),
                          SocketInfo("tcp", "127.0.0.1", 5060)])
    ctx = make_ctx(in_dialog(["<sip:127.0.0.1;transport=tcp;r2=on;lr>",
                              "<sip:127.0.0.1;r2=on;lr>", "<sip:192.0.2.99;lr>"]), core=core)
    assert call(ctx, "loose_route") == 1
    assert ctx.force_socket is core.sockets[0]       # the socket the second RR names
    assert ctx.dst_uri == "sip:192.0.2.99;lr"
    _, out, _ = forwarded(ctx)
    assert [r.uri for r in out.routes] == ["sip:192.0.2.99;lr"]


def test_preloaded_route():
    ctx = make_ctx(in_dialog(["<sip:127.0.0.1;lr>"], to_tag=None))
    assert call(ctx, "loose_route") == -3
    ctx = make_ctx(in_dialog(["<sip:127.0.0.1;lr>", "<sip:192.0.2.99;lr>"], to_tag=None))
    assert call(ctx, "loose_route_preloaded") == 1
    assert ctx.dst_uri == "sip:192.0.2.99;lr"
    assert call(make_ctx(in_dialog(["<sip:127.0.0.1;lr>"])), "loose_route_preloaded") == -1


def test_after_strict_router():
    # the previous hop was a strict router: our RR URI is the R-URI, the original R-URI
    # was appended as the last Route.
    ctx = make_ctx(in_dialog(["<sip:192.0.2.99;lr>", "<sip:bob@192.0.2.20>"],
                             ruri="sip:127.0.0.1;lr;ftag=ft1"))
    assert call(ctx, "loose_route") == 1
    assert ctx.dst_uri == "sip:192.0.2.99;lr"
    assert ctx.msg.ruri == "sip:bob@192.0.2.20"
    assert call(ctx, "check_route_param", re.compile("ftag=ft1")) == 1
    _, out, _ = forwarded(ctx)
    assert [r.uri for r in out.routes] == ["sip:192.0.2.99;lr"]
    # loose_route_mode(1) skips that test
    ctx = make_ctx(in_dialog(["<sip:192.0.2.99;lr>"], ruri="sip:127.0.0.1;lr"))
    assert call(ctx, "loose_route_mode", 1) == 1 and ctx.msg.ruri == "sip:127.0.0.1;lr"


def test_is_direction():
    ctx = make_ctx(in_dialog(["<sip:127.0.0.1;lr;ftag=ft1>"]))
    call(ctx, "loose_route")
    assert call(ctx, "is_direction", "downstream") == 1
    assert call(ctx, "is_direction", "upstream") == -1
    ctx = make_ctx(in_dialog(["<sip:127.0.0.1;lr;ftag=ft1>"], from_tag="other"))
    call(ctx, "loose_route")
    assert call(ctx, "is_direction", "upstream") == 1
    rr.mod.set_param("append_fromtag", 0)
    assert call(ctx, "is_direction", "upstream") == -1


def test_route_uri_pv():
    ctx = make_ctx(in_dialog(["<sip:127.0.0.1;lr>, <sip:192.0.2.99;lr>"]))
    assert rr.mod.pvs["route_uri"].factory(None).get(ctx) == "sip:127.0.0.1;lr"
    assert rr.mod.pvs["route_uri"].factory(None).get(make_ctx(INVITE)) is None


def test_rr_in_a_config():
    from sipcore.cfg import compile_text

    cfg = compile_text('loadmodule "rr"\n'
                       'modparam("rr", "append_fromtag", 0)\n'
                       'request_route {\n'
                       '  if (loose_route()) { forward(); exit; }\n'
                       '  record_route();\n'
                       '  forward();\n'
                       '}\n')
    core = RecordingCore()
    core.routes = cfg
    ctx = make_ctx(INVITE, core=core)
    cfg.run("request", None, ctx)
    out = parse_msg(core.sent[-1][1])
    assert out.record_routes[0].uri == "sip:127.0.0.1;lr"
    assert rr.mod.implemented
