"""listen= / alias= parsing and the myself check built from them."""
import pytest

from sipcore.net.listen import parse_listen
from sipcore.net.node import CoreApi


@pytest.mark.parametrize("spec,expect", [
    ("udp:127.0.0.1:5060", [("udp", "127.0.0.1", 5060, None, None)]),
    ("127.0.0.1", [("udp", "127.0.0.1", 5060, None, None)]),
    ("tcp:127.0.0.1", [("tcp", "127.0.0.1", 5060, None, None)]),
    ("tls:127.0.0.1", [("tls", "127.0.0.1", 5061, None, None)]),
    ("udp:[::1]:5070", [("udp", "::1", 5070, None, None)]),
    ("udp:127.0.0.1:5060 advertise 198.51.100.7:5080",
     [("udp", "127.0.0.1", 5060, "198.51.100.7", 5080)]),
    ("any:127.0.0.1:5062", [("udp", "127.0.0.1", 5062, None, None),
                            ("tcp", "127.0.0.1", 5062, None, None)]),
])
def test_parse_listen(spec, expect):
    got = [(s.proto, s.ip, s.port, s.advertise_host, s.advertise_port)
           for s in parse_listen(spec)]
    assert got == expect


@pytest.mark.parametrize("bad", ["udp:127.0.0.1:99999", "udp:127.0.0.1:5060 advertise",
                                 "foo:bar:baz:qux"])
def test_parse_listen_rejects(bad):
    with pytest.raises(ValueError):
        parse_listen(bad)


def test_myself_matches_sockets_aliases_and_advertise():
    core = CoreApi(sockets=parse_listen("udp:127.0.0.1:5060 advertise 198.51.100.7:5080")
                   + parse_listen("udp:[::1]:5060"),
                   aliases=[("sip.example.test", None, None), ("pbx.example.test", 5070, None)])
    assert core.is_myself("127.0.0.1", 5060)
    assert core.is_myself("127.0.0.1")
    assert not core.is_myself("127.0.0.1", 5061)
    assert core.is_myself("198.51.100.7", 5080)
    assert core.is_myself("[::1]", 5060)
    assert core.is_myself("0:0:0:0:0:0:0:1", 5060)
    assert core.is_myself("SIP.example.test", 5999)
    assert core.is_myself("pbx.example.test", 5070)
    assert not core.is_myself("pbx.example.test", 5071)
    assert not core.is_myself("example.test")
