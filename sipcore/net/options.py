"""TCP/TLS core parameters (config-language.md §4.3) as one typed object.

Runs in: the master builds it from the cfg globals before forking; every process reads its
inherited copy. Shared state: none (the values do not change at run time).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TcpOptions:
    children: int = 8                   # tcp_children (default: children)
    connection_lifetime: float = 120.0  # s of inactivity before a connection is closed
    connect_timeout: float = 10.0
    send_timeout: float = 10.0
    max_connections: int = 2048
    tls_max_connections: int = 2048
    accept_aliases: bool = False        # honour ;alias in the top Via (RFC 5923)
    accept_no_cl: bool = False
    rd_buf_size: int = 16384
    conn_wq_max: int = 32768            # bytes queued per connection before it is dropped
    crlf_ping: bool = True              # answer CRLFCRLF with CRLF
    keepalive: bool = True
    keepidle: int = 0
    keepintvl: int = 0
    keepcnt: int = 0
    no_connect: bool = False            # never open outbound connections
    wait_data: float = 5.0              # s a started message may take to complete
    max_msg_size: int = 65535
    source_ipv4: str | None = None      # tcp_source_ipv4: local address of outbound IPv4
    source_ipv6: str | None = None

    @classmethod
    def from_globals(cls, g: dict[str, Any], children: int) -> TcpOptions:
        def num(name: str, default: float) -> float:
            v = g.get(name)
            return default if v is None else float(v)

        tcp_children = g.get("tcp_children")
        return cls(
            children=int(tcp_children) if tcp_children else children,
            connection_lifetime=num("tcp_connection_lifetime", 120),
            connect_timeout=num("tcp_connect_timeout", 10),
            send_timeout=num("tcp_send_timeout", 10),
            max_connections=int(num("tcp_max_connections", 2048)),
            tls_max_connections=int(num("tls_max_connections", 2048)),
            accept_aliases=bool(g.get("tcp_accept_aliases", False)),
            accept_no_cl=bool(g.get("tcp_accept_no_cl", False)),
            rd_buf_size=max(512, int(num("tcp_rd_buf_size", 16384))),
            conn_wq_max=int(num("tcp_conn_wq_max", 32768)),
            crlf_ping=bool(g.get("tcp_crlf_ping", True)),
            keepalive=bool(g.get("tcp_keepalive", True)),
            keepidle=int(num("tcp_keepidle", 0)),
            keepintvl=int(num("tcp_keepintvl", 0)),
            keepcnt=int(num("tcp_keepcnt", 0)),
            no_connect=bool(g.get("tcp_no_connect", False)),
            wait_data=num("tcp_wait_data", 5000) / 1000.0,
            source_ipv4=str(g["tcp_source_ipv4"]) if g.get("tcp_source_ipv4") else None,
            source_ipv6=str(g["tcp_source_ipv6"]).strip("[]") if g.get("tcp_source_ipv6")
            else None,
        )

    def as_rpc(self) -> dict[str, Any]:
        """core.tcp_options: Kamailio's names."""
        d = asdict(self)
        return {
            "connect_timeout": int(d["connect_timeout"]),
            "send_timeout": int(d["send_timeout"]),
            "connection_lifetime": int(d["connection_lifetime"]),
            "max_connections(soft)": d["max_connections"],
            "max_tls_connections(soft)": d["tls_max_connections"],
            "no_connect": int(d["no_connect"]),
            "fd_cache": 0,
            "async": 1,
            "connect_wait": 1,
            "conn_wq_max": d["conn_wq_max"],
            "defer_accept": 0,
            "delayed_ack": 0,
            "syncnt": 0,
            "linger2": 0,
            "keepalive": int(d["keepalive"]),
            "keepidle": d["keepidle"],
            "keepintvl": d["keepintvl"],
            "keepcnt": d["keepcnt"],
            "crlf_ping": int(d["crlf_ping"]),
            "accept_aliases": int(d["accept_aliases"]),
            "alias_flags": 1,
            "new_conn_alias_flags": 2,
            "accept_no_cl": int(d["accept_no_cl"]),
            "rd_buf_size": d["rd_buf_size"],
            "wait_data_ms": int(d["wait_data"] * 1000),
            "children": d["children"],
        }
