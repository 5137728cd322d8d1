"""maxfwd on real requests: decrement, add, limits and errors as Kamailio returns them."""
from __future__ import annotations

import pytest

import modules.maxfwd as mf
from sipcore.msg import parse_msg
from sipcore.testing import make_ctx


def req(maxfwd: str | None) -> str:
    mfline = f"Max-Forwards: {maxfwd}\n" if maxfwd is not None else ""
    return ("OPTIONS sip:bob@example.com SIP/2.0\n"
            "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\n" + mfline +
            "From: <sip:a@example.com>;tag=1\nTo: <sip:bob@example.com>\n"
            "Call-ID: c1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n")


def out_value(ctx) -> int | None:
    return parse_msg(ctx.msg.build()).max_forwards


@pytest.fixture(autouse=True)
def _reset():
    mf.mod.reset_params()
    yield
    mf.mod.reset_params()


@pytest.mark.parametrize("fn", [mf.ki_maxfwd_process, mf.ki_mf_process_maxfwd_header,
                                mf.ki_process_maxfwd])
def test_decrement(fn):
    ctx = make_ctx(req("10"))
    assert fn(ctx, 10) == 1
    assert out_value(ctx) == 9


def test_absent_header_is_added():
    ctx = make_ctx(req(None))
    assert mf.ki_maxfwd_process(ctx, 16) == 2
    assert out_value(ctx) == 16


def test_zero_returns_minus_one():
    ctx = make_ctx(req("0"))
    assert mf.ki_maxfwd_process(ctx, 10) == -1
    assert not ctx.msg.lumps_pending


def test_unparseable_is_error():
    for bad in ("abc", "-1", "70000"):
        assert mf.ki_maxfwd_process(make_ctx(req(bad)), 10) == -2


def test_max_limit_lowers_high_values():
    ctx = make_ctx(req("200"))
    assert mf.ki_maxfwd_process(ctx, 10) == 1
    assert out_value(ctx) == 70                    # default max_limit
    mf.mod.set_param("max_limit", "16")
    ctx = make_ctx(req("200"))
    assert mf.ki_maxfwd_process(ctx, 10) == 1
    assert out_value(ctx) == 16


def test_max_limit_validation():
    with pytest.raises(ValueError):
        mf.mod.set_param("max_limit", 0)
    with pytest.raises(ValueError):
        mf.mod.set_param("max_limit", 257)


def test_max_value_fixup():
    assert mf.parse_max_value(" 70 ") == 70
    for bad in ("0", "300", "x"):
        with pytest.raises(ValueError):
            mf.parse_max_value(bad)


@pytest.mark.parametrize("fn", [mf.ki_is_maxfwd_lt, mf.ki_maxfwd_at_least, mf.ki_mf_lowlimit])
def test_is_maxfwd_lt(fn):
    assert fn(make_ctx(req("3")), 5) == 1
    assert fn(make_ctx(req("5")), 5) == -1
    assert fn(make_ctx(req(None)), 5) == -2
    assert fn(make_ctx(req("x")), 5) == -3


def test_exports():
    for name in ("maxfwd_process", "mf_process_maxfwd_header", "process_maxfwd",
                 "is_maxfwd_lt", "maxfwd_at_least", "mf_lowlimit"):
        assert [len(f.args) for f in mf.mod.functions[name]] == [1]
    assert mf.mod.params["max_limit"].default == 70


CFG = """
loadmodule "sl"
loadmodule "maxfwd"
modparam("maxfwd", "max_limit", 20)
request_route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (is_maxfwd_lt("5")) {
        sl_send_reply("499", "Low $hdr(Max-Forwards)");
        exit;
    }
}
"""


def test_maxfwd_from_cfg():
    from sipcore.testing import Harness

    h = Harness.from_text(CFG)
    r = h.request(req("0"))
    assert [(m.status, m.reason) for m in r.replies] == [(483, "Too Many Hops")]
    r = h.request(req("3"))
    assert [(m.status, m.reason) for m in r.replies] == [(499, "Low 3")]
    r = h.request(req("200"))
    assert r.replies == [] and parse_msg(r.ctx.msg.build()).max_forwards == 20
