"""The Via fast path gives exactly what the full parser gives, or defers to it."""
import json
import random

import pytest

from sipcore.errors import ParseError
from sipcore.msg import parse_msg
from sipcore.msg.via import _parse_via_fast, _parse_via_full
from tests.paths import TORTURE

CASES = [
    "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport",
    "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1;rport=5061;received=192.0.2.1",
    "SIP/2.0/TCP pc33.example.com:5066;branch=z9hG4bKx;alias",
    "SIP/2.0/UDP host.example.com;branch=z9hG4bK1;maddr=239.255.255.1;ttl=15",
    "SIP/2.0/TLS [2001:db8::9:1]:5061;branch=z9hG4bK1",
    "SIP/2.0/UDP h;branch",                      # branch without value: error in both
    "SIP/2.0/UDP h:99999;branch=z9hG4bK1",       # bad port
    "SIP/2.0/UDP -bad-;branch=z9hG4bK1",
    "SIP/2.0/UDP h;BRANCH=z9hG4bK1;Received=1.2.3.4;RPORT",
    "SIP/2.0/UDP h;x=\"quoted\"",
    "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa.0,SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKb",
    "SIP/2.0/UDP a;branch=z9hG4bKa, SIP/2.0/TCP b:5;branch=z9hG4bKb;rport=7",
    "SIP/2.0/UDP a;branch=z9hG4bKa,,SIP/2.0/UDP b",
    "SIP/2.0/UDP a;branch=z9hG4bKa,",
]


def _norm(vias):
    return [(v.proto, v.host, v.port, v.params, v.branch, v.received, v.rport, v.maddr, v.ttl)
            for v in vias]


def _full(s):
    try:
        return _norm(_parse_via_full(s))
    except ParseError:
        return "error"


def _check(s):
    fast = _parse_via_fast(s)
    if fast is not None:
        assert _norm(fast) == _full(s), s
    return fast


def test_multi_value_line_takes_fast_path():
    assert len(_check(CASES[-4])) == 2


@pytest.mark.parametrize("s", CASES)
def test_fast_path_agrees(s):
    _check(s)


def test_fast_path_agrees_on_torture_and_mutations():
    values = list(CASES)
    files = sorted((TORTURE / "msgs").glob("*.dat"))
    assert files, f"no torture messages in {TORTURE}"
    for f in files:
        try:
            m = parse_msg(f.read_bytes())
            values += [h.value for h in m.header_all("Via")]
        except ParseError:
            pass
    rnd = random.Random(7)
    alphabet = "abc;=:[]/ ,\"0123456789.-_zZ"
    for v in list(values):
        for _ in range(200):
            b = list(v)
            for _ in range(rnd.randint(1, 3)):
                op = rnd.random()
                pos = rnd.randrange(len(b) + 1)
                if op < 0.4 and b:
                    del b[min(pos, len(b) - 1)]
                elif op < 0.8:
                    b.insert(pos, rnd.choice(alphabet))
                elif b:
                    b[min(pos, len(b) - 1)] = rnd.choice(alphabet)
            _check("".join(b))
