"""ctl: the control socket (Kamailio binrpc; PyKam speaks JSON-RPC 2.0 on it, see
ARCHITECTURE.md "Control and operations" and docs/rpc.md) and its ctl.* RPCs.

Runs in: the master (params, validation) and the ctl process, which listens on the
addresses named by `binrpc` (default unix:<rundir>/pykam_ctl; sipcore.rpc.server).
Shared state: none; ctl.* report the ctl process's own listeners and connections.

Differences from Kamailio: the wire protocol is JSON-RPC 2.0, not binrpc (kamcmd cannot talk
to it; pykamcmd and kamcli's JSON-RPC socket mode can); `mode` defaults to 0660 (the issue's
choice, Kamailio: 0600); `fifo` and the binrpc buffer sizes are accepted and not used.
"""
from __future__ import annotations

from typing import Any

from sipcore.errors import RpcFault
from sipcore.mod import Module

mod = Module("ctl", summary="Control socket for RPC commands (pykamcmd).")

_SCHEMES = ("unix:", "unixs:", "unixd:", "udp:", "tcp:")


def parse_mode(value: int) -> int:
    """File mode bits (the cfg lexer reads 0600 as octal, as Kamailio's does)."""
    if not 0 <= value <= 0o7777:
        raise ValueError(f"invalid file mode {value:o} (octal 0..7777 expected)")
    return value


def parse_binrpc(value: str) -> str:
    """`unix:/path`, `unixs:`, `unixd:`, `udp:host:port`, `tcp:host:port`, a bare path (unix
    stream) or `host:port` (UDP)."""
    v = value.strip()
    if not v:
        raise ValueError("binrpc: empty address")
    if v.startswith(_SCHEMES):
        scheme, _, rest = v.partition(":")
        if not rest:
            raise ValueError(f"binrpc: missing address in \"{value}\"")
        if scheme in ("udp", "tcp"):
            _host, sep, port = rest.rpartition(":")
            if not sep or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"binrpc: bad host:port in \"{value}\"")
    return v


mod.param("binrpc", str, None, multi=True, validator=parse_binrpc,
          doc="Listen address (repeatable): unix:/path, unixd:/path, udp:h:p, tcp:h:p. "
          "Default unix:<rundir>/pykam_ctl.")
mod.param("binrpc_buffer_size", int, 1024, doc="Per-connection buffer size (bytes).")
mod.param("binrpc_max_body_size", int, 32, doc="Max reply body size (KB).")
mod.param("binrpc_struct_max_body_size", int, 8, doc="Max struct body size (KB).")
mod.param("mode", int, 0o660, validator=parse_mode, doc="Unix socket file mode.")
mod.param("user", str, None, doc="Owner of the unix socket.")
mod.param("group", str, None, doc="Group of the unix socket.")
mod.param("fifo", str, None, doc="Old text FIFO protocol path (off by default).")
mod.param("autoconversion", int, 0, doc="1: convert parameter types automatically.")


def _server() -> Any:
    env = mod.context.rpc if mod.context is not None else None
    srv = getattr(env, "server", None)
    if srv is None:
        raise RpcFault(500, "not answered by the ctl process (no control listener here)")
    return srv


def rpc_listen() -> list[dict[str, str]]:
    """ctl.listen: the control sockets, [{protocol, transport, address}]."""
    return _server().listen_info()


def rpc_connections() -> int:
    """ctl.connections: number of open stream connections (this one included)."""
    return len(_server().conns)


def rpc_who() -> list[dict[str, Any]]:
    """ctl.who: the open connections, [{protocol, transport, from, to, requests, idle}]."""
    return _server().who()


mod.rpc("ctl.listen", rpc_listen, doc="List the listening control sockets.")
mod.rpc("ctl.connections", rpc_connections, doc="Number of open control connections.")
mod.rpc("ctl.who", rpc_who, doc="List the open control connections.")
