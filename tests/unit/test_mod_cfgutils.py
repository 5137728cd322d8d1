"""cfgutils: probability, gflags, locks, core_hash, route checks, config hash, $RANDOM."""
from __future__ import annotations

import hashlib

import pytest

import modules.cfgutils as cfgutils
from modules.cfgutils.state import STATE, core_hash
from sipcore.errors import RpcFault
from sipcore.route.ctx import ScriptExit
from sipcore.testing import make_ctx

REQ = ("OPTIONS sip:bob@b.example SIP/2.0\n"
       "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc\n"
       "From: <sip:alice@a.example>;tag=1\n"
       "To: <sip:bob@b.example>\n"
       "Call-ID: c1\n"
       "CSeq: 1 OPTIONS\n"
       "Content-Length: 0\n\n")


def call(ctx, name, *args):
    fe = cfgutils.mod.lookup(name, len(args))
    assert fe is not None, f"{name}/{len(args)}"
    return fe.impl(ctx, *args)


def fixup(name, idx, text):
    return cfgutils.mod.lookup(name, 1).args[idx].parse(text)


@pytest.fixture
def ctx():
    cfgutils.mod.reset_params()
    cfgutils.mod.set_param("lock_set_size", 4)
    cfgutils.mod.set_param("initial_gflags", 5)
    for hook in cfgutils.mod.init_hooks:
        hook(None)
    yield make_ctx(REQ)
    cfgutils.mod.reset_params()


def test_probability(ctx):
    assert call(ctx, "rand_get_prob") == 10
    assert call(ctx, "rand_set_prob", fixup("rand_set_prob", 0, "100")) == 1
    assert all(call(ctx, "rand_event") == 1 for _ in range(20))
    assert call(ctx, "rand_set_prob", 0) == 1
    assert all(call(ctx, "rand_event") == -1 for _ in range(20))
    assert call(ctx, "rand_reset_prob") == 1 and call(ctx, "rand_get_prob") == 10
    with pytest.raises(ValueError):
        fixup("rand_set_prob", 0, "101")


def test_gflags(ctx):
    assert STATE.gflags() == 5
    assert call(ctx, "is_gflag", fixup("is_gflag", 0, "2")) == 1
    assert call(ctx, "is_gflag", fixup("is_gflag", 0, "1")) == -1
    assert call(ctx, "set_gflag", fixup("set_gflag", 0, "1")) == 1
    assert call(ctx, "is_gflag", 2) == 1 and STATE.gflags() == 7
    assert call(ctx, "reset_gflag", fixup("reset_gflag", 0, "0")) == 1 and STATE.gflags() == 6
    with pytest.raises(ValueError):
        fixup("set_gflag", 0, "32")
    assert cfgutils.rpc_get_gflags() == "0x6 (6)"
    assert cfgutils.rpc_is_gflag(6) == "TRUE" and cfgutils.rpc_is_gflag(7) == "FALSE"
    cfgutils.rpc_set_gflag(1)
    cfgutils.rpc_reset_gflag(2)
    assert STATE.gflags() == 5


def test_locks(ctx):
    assert call(ctx, "lock", "alice") == 1
    assert call(ctx, "trylock", "alice") == -1      # same slot, held
    assert call(ctx, "lock", "ALICE") == -1         # case-insensitive slot: would deadlock
    assert call(ctx, "unlock", "alice") == 1
    assert call(ctx, "trylock", "alice") == 1
    assert call(ctx, "unlock", "alice") == 1


def test_locks_need_lock_set(ctx):
    cfgutils.mod.reset_params()
    for hook in cfgutils.mod.init_hooks:
        hook(None)
    assert call(ctx, "lock", "x") == -1


def test_core_hash_matches_kamailio():
    # Values computed with Kamailio's core_hash() (src/core/hashes.h) formula.
    assert core_hash("abcd", None, 0) == _reference_core_hash(b"abcd", b"")
    assert core_hash("alice@example.com", "x", 0) == _reference_core_hash(
        b"alice@example.com", b"x")
    assert core_hash("abc", None, 16) == _reference_core_hash(b"abc", b"") & 15


def _reference_core_hash(s1: bytes, s2: bytes) -> int:
    def part(h, data):
        i = 0
        while i + 4 <= len(data):
            v = (data[i] << 24) + (data[i + 1] << 16) + (data[i + 2] << 8) + data[i + 3]
            h = (h + (v ^ (v >> 3))) & 0xFFFFFFFF
            i += 4
        v = 0
        for b in data[i:]:
            v = ((v << 8) + b) & 0xFFFFFFFF
        return (h + (v ^ (v >> 3))) & 0xFFFFFFFF

    h = part(0, s1)
    if s2:
        h = part(h, s2)
    return ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & 0xFFFFFFFF


def test_core_hash_function(ctx):
    v = call(ctx, "core_hash", "alice", "example.com", 4)
    assert 1 <= v <= 16
    assert v == core_hash("alice", "example.com", 16) + 1
    assert call(ctx, "core_hash", "a", "", 0) in (1, 2)


def test_route_checks(ctx):
    from sipcore.cfg import compile_text

    cfg = compile_text('request_route { exit; }\n'
                       'route[CHECK] { setflag(5); return(7); }\n'
                       'route[STOP] { exit; }\n')
    ctx.core.routes = cfg
    assert call(ctx, "check_route_exists", "CHECK") == 1
    assert call(ctx, "check_route_exists", "NOPE") == -1
    assert call(ctx, "route_if_exists", "CHECK") == 7 and ctx.isflagset(5)
    assert call(ctx, "route_if_exists", "NOPE") == -1
    with pytest.raises(ScriptExit):
        call(ctx, "route_if_exists", "STOP")        # exit in the route stops the script


def test_from_a_config(ctx):
    from sipcore.cfg import compile_text

    cfg = compile_text('loadmodule "cfgutils"\n'
                       'modparam("cfgutils", "lock_set_size", 2)\n'
                       'request_route { if (route_if_exists("R")) { exit; } drop; }\n'
                       'route[R] { if (lock("k")) { unlock("k"); return(2); } }\n')
    assert cfg.has_route("route", "R")


def test_sleeps(ctx):
    assert call(ctx, "usleep", 1000) == 1
    assert call(ctx, "sleep", 0) == 1


def test_config_hash(ctx, tmp_path):
    f = tmp_path / "k.cfg"
    f.write_text("request_route { exit; }\n")
    cfgutils.mod.set_param("hash_file", str(f))
    for hook in cfgutils.mod.init_hooks:
        hook(None)
    assert cfgutils.rpc_get_config_hash() == hashlib.md5(f.read_bytes()).hexdigest()
    assert cfgutils.rpc_check_config_hash() == "Identical hash"
    f.write_text("changed\n")
    assert cfgutils.rpc_check_config_hash() == "Different hash"


def test_rpc_probability(ctx):
    cfgutils.rpc_rand_set_prob(42)
    assert cfgutils.rpc_rand_get_prob() == "actual probability: 42 percent"
    with pytest.raises(RpcFault):
        cfgutils.rpc_rand_set_prob(200)
    cfgutils.rpc_rand_reset_prob()
    assert STATE.probability() == 10


def test_random_pv(ctx):
    spec = cfgutils.mod.pvs["RANDOM"].factory(None)
    v = spec.get(ctx)
    assert isinstance(v, int) and 0 <= v < 2**31
