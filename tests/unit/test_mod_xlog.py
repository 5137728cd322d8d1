"""xlog: levels, facilities, prefix, line prefixes and methods_filter, with real messages."""
from __future__ import annotations

import pytest

import modules.xlog as xl
from sipcore import log as klog
from sipcore.testing import make_ctx

REQ = ("INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\n"
       "From: <sip:alice@example.com>;tag=1\nTo: <sip:bob@example.com>\nCall-ID: call-1\n"
       "CSeq: 1 INVITE\nContent-Length: 0\n\n")


@pytest.fixture
def logs():
    xl.mod.reset_params()
    old = klog.get_debug()
    klog.set_debug(klog.L_DBG)
    lines = klog.capture(True)
    yield lines
    klog.capture(False)
    klog.set_debug(old)
    xl.mod.reset_params()


@pytest.fixture
def ctx():
    return make_ctx(REQ)


def fmt(s: str) -> str:
    """The format argument is Fx.SPVE: functions get the evaluated text."""
    return s


def test_xlog_default_level_is_err(logs, ctx):
    assert xl.ki_xlog(ctx, fmt("call call-1\n")) == 1
    assert logs == [(klog.L_ERR, "<script>: call call-1")]


def test_xlog_with_level(logs, ctx):
    assert xl.ki_xlog_level(ctx, xl.parse_level("L_INFO"), fmt("m=INVITE")) == 1
    assert logs == [(klog.L_INFO, "<script>: m=INVITE")]


def test_level_below_debug_is_not_logged(logs, ctx):
    klog.set_debug(klog.L_WARN)
    assert xl.ki_xlog_level(ctx, klog.L_DBG, fmt("hidden")) == 1
    assert logs == []


def test_xlog_with_facility(logs, ctx):
    fac = xl.parse_facility("LOG_LOCAL1")
    assert xl.ki_xlog_facility(ctx, fac, klog.L_NOTICE, fmt("x")) == 1
    assert logs == [(klog.L_NOTICE, "<script>: x")]
    with pytest.raises(ValueError):
        xl.parse_facility("LOG_NOPE")


def test_level_fixup():
    assert xl.parse_level("L_ALERT") == -5
    assert xl.parse_level("2") == 2               # the value of a dynamic $var(level)
    with pytest.raises(ValueError):
        xl.parse_level("L_LOUD")
    assert xl.LEVEL.dynamic


@pytest.mark.parametrize("name,level", [
    ("xdbg", klog.L_DBG), ("xinfo", klog.L_INFO), ("xnotice", klog.L_NOTICE),
    ("xwarn", klog.L_WARN), ("xerr", klog.L_ERR), ("xbug", klog.L_BUG),
    ("xcrit", klog.L_CRIT), ("xalert", klog.L_ALERT)])
def test_fixed_level_functions(logs, ctx, name, level):
    fn = xl.mod.functions[name][0].impl
    assert fn(ctx, fmt("t")) == 1
    assert logs == [(level, "<script>: t")]


def test_xlogl_line_prefix(logs, ctx):
    ctx.cfg_line = 42
    assert xl.ki_xlogl(ctx, fmt("here")) == 1
    xl.mod.set_param("long_format", 1)
    ctx.core.globals["cfg_file"] = "pykam.cfg"
    assert xl.ki_xlogl_level(ctx, klog.L_INFO, fmt("there")) == 1
    assert xl.ki_xdbgl(ctx, fmt("dbg")) == 1
    assert logs == [(klog.L_ERR, "<script>: 42:here"),
                    (klog.L_INFO, "<script>: pykam.cfg:42:there"),
                    (klog.L_DBG, "<script>: pykam.cfg:42:dbg")]


def test_prefix_params(logs, ctx):
    xl.mod.set_param("prefix", "[$ci] ")
    assert xl.ki_xerr(ctx, fmt("a")) == 1
    xl.mod.set_param("prefix_mode", 1)
    assert xl.ki_xerr(ctx, fmt("b")) == 1
    assert logs == [(klog.L_ERR, "[$ci] a"), (klog.L_ERR, "[call-1] b")]


def test_buf_size_truncates(logs, ctx):
    xl.mod.set_param("buf_size", 12)
    xl.mod.set_param("prefix", "")
    assert xl.ki_xerr(ctx, fmt("0123456789abcdef")) == 1
    assert logs == [(klog.L_ERR, "0123456789ab")]


def test_xlogm_methods_filter(logs, ctx):
    assert xl.ki_xlogm(ctx, klog.L_ERR, fmt("filtered")) == 1      # default -1: all skipped
    from sipcore.msg import METHOD_INVITE, METHOD_REGISTER

    xl.mod.set_param("methods_filter", METHOD_REGISTER)
    assert xl.ki_xlogm(ctx, klog.L_ERR, fmt("shown")) == 1
    xl.mod.set_param("methods_filter", METHOD_INVITE)
    assert xl.ki_xlogm(ctx, klog.L_ERR, fmt("hidden")) == 1
    assert logs == [(klog.L_ERR, "<script>: shown")]


def test_param_validation():
    with pytest.raises(ValueError):
        xl.mod.set_param("log_facility", "LOG_BOGUS")
    with pytest.raises(ValueError):
        xl.mod.set_param("log_colors", "L_ERR=zz")
    xl.mod.set_param("log_colors", "L_ERR=cr;L_INFO=g")
    with pytest.raises(ValueError):
        xl.mod.set_param("buf_size", 0)
    xl.mod.reset_params()


def test_exports():
    assert sorted(len(f.args) for f in xl.mod.functions["xlog"]) == [1, 2, 3]
    assert sorted(len(f.args) for f in xl.mod.functions["xlogl"]) == [1, 2, 3]
    for n in ("xdbg", "xinfo", "xnotice", "xwarn", "xerr", "xbug", "xcrit", "xalert",
              "xdbgl", "xlogm"):
        assert n in xl.mod.functions
    assert xl.mod.params["prefix"].default == "<script>: "
    assert xl.mod.params["buf_size"].default == 4096


# ---- through the cfg compiler ---------------------------------------------------------------

CFG = """
loadmodule "xlog"
loadmodule "textopsx"
modparam("xlog", "prefix", "[$ci] ")
modparam("xlog", "prefix_mode", 1)
request_route {
    xlog("call $ci from $fu\\n");
    $var(level) = 2;
    xlog("$var(level)", "dynamic level $rm\\n");
    $var(level) = 3;
    xlog("$var(level)", "debug $rm\\n");
    xlog("LOG_LOCAL0", "L_NOTICE", "with facility\\n");
    hf_iterator_start("h");
    xinfo("first header $hfitname(h)\\n");
    exit;
}
"""


def test_xlog_from_cfg(logs):
    from sipcore.testing import Harness

    klog.set_debug(klog.L_INFO)
    h = Harness.from_text(CFG)
    h.request(REQ)
    assert logs == [(klog.L_ERR, "[call-1] call call-1 from sip:alice@example.com"),
                    (klog.L_INFO, "[call-1] dynamic level INVITE"),
                    (klog.L_NOTICE, "[call-1] with facility"),
                    (klog.L_INFO, "[call-1] first header Via")]


def test_bad_level_is_a_config_error():
    from sipcore.errors import ConfigErrors
    from sipcore.testing import Harness

    with pytest.raises(ConfigErrors) as ei:
        Harness.from_text('loadmodule "xlog"\nrequest_route {\n xlog("L_LOUD", "x");\n}\n')
    assert "unknown log level" in str(ei.value)
