"""The core global parameter table and value typing."""
from __future__ import annotations

import pytest

from sipcore.cfg import compile_text
from sipcore.cfg import globals as G
from sipcore.errors import ConfigErrors


def test_table_is_complete_and_unambiguous():
    names: set[str] = set()
    for cp in G.CORE_PARAMS:
        assert cp.doc, cp.name
        assert cp.type in ("int", "bool", "str", "listen", "alias", "proto", "ip"), cp.name
        for n in (cp.name, *cp.aliases):
            assert n not in names, f"duplicate name {n}"
            names.add(n)
    for required in ("debug", "children", "listen", "alias", "max_while_loops",
                     "max_recursive_level", "tcp_connection_lifetime", "enable_sctp",
                     "log_prefix", "shm_mem_size", "server_header", "udp_mtu_try_proto"):
        assert required in G.BY_NAME


@pytest.mark.parametrize("line,name,value", [
    ("core_log=2", "corelog", 2),
    ('wdir="/tmp"', "workdir", "/tmp"),
    ('shm_mem=32', "shm_mem_size", 32),
    ("tos=0x20", "tos", 32),
    ("fork=no", "fork", False),
    ("fork=1", "fork", True),
    ("enable_sctp=no", "enable_sctp", 0),
    ("udp_mtu_try_proto=TCP", "udp_mtu_try_proto", "tcp"),
    ("tcp_source_ipv4=10.0.0.1", "tcp_source_ipv4", "10.0.0.1"),
    ('server_header="Server: pykam"', "server_header", "Server: pykam"),
    ("dns_try_ipv6=off", "dns_try_ipv6", False),
])
def test_typed_values_and_aliases(line, name, value):
    cfg = compile_text(line + "\n")
    assert cfg.globals[name] == value


@pytest.mark.parametrize("line,msg", [
    ("children=many", 'children expects an integer, got "many"'),
    ("fork=perhaps", "fork expects a boolean (yes/no), got \"perhaps\""),
    ("udp_mtu_try_proto=FTP", "udp_mtu_try_proto expects a protocol"),
    ("listen=udp:1.2.3.4:0", "bad port 0 in listen address"),
    ("tcp_source_ipv4=nothost", "tcp_source_ipv4 expects an IP address"),
])
def test_bad_values(line, msg):
    with pytest.raises(ConfigErrors) as ei:
        compile_text(line + "\n", "g.cfg")
    (e,) = ei.value.errors
    assert e.message.startswith(msg) and (e.pos.line, e.pos.col) == (1, 1)
