"""ctl: the control socket (Kamailio binrpc; PyKam speaks JSON-RPC 2.0 on it, see
ARCHITECTURE.md "Control and operations") and its ctl.* RPCs.

Runs in: the master (params, validation) and, with the runtime issue, the ctl process that
listens on the sockets named by `binrpc` (default unix:<rundir>/pykam_ctl).
Shared state: none here.

Pending (runtime issue): the ctl process, the listeners and the ctl.* RPCs. Until then the
module validates its parameters, so configs check, and does nothing at run time.
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
            host, sep, port = rest.rpartition(":")
            if not sep or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"binrpc: bad host:port in \"{value}\"")
    return v


mod.param("binrpc", str, None, multi=True, validator=parse_binrpc,
          doc="Listen address (repeatable): unix:/path, unixd:/path, udp:h:p, tcp:h:p. "
          "Default unix:<rundir>/pykam_ctl.")
mod.param("binrpc_buffer_size", int, 1024, doc="Per-connection buffer size (bytes).")
mod.param("binrpc_max_body_size", int, 32, doc="Max reply body size (KB).")
mod.param("binrpc_struct_max_body_size", int, 8, doc="Max struct body size (KB).")
mod.param("mode", int, 0o600, validator=parse_mode, doc="Unix socket file mode.")
mod.param("user", str, None, doc="Owner of the unix socket.")
mod.param("group", str, None, doc="Group of the unix socket.")
mod.param("fifo", str, None, doc="Old text FIFO protocol path (off by default).")
mod.param("autoconversion", int, 0, doc="1: convert parameter types automatically.")


def _pending(name: str):
    def handler(*_args: Any) -> Any:
        raise RpcFault(500, f"{name}: the ctl process arrives with the runtime issue")
    handler.__doc__ = f"{name}: wired by the runtime issue."
    return handler


for _n, _doc in (("ctl.listen", "List the listening control sockets."),
                 ("ctl.connections", "Number of open control connections."),
                 ("ctl.who", "List the open control connections.")):
    mod.rpc(_n, _pending(_n), doc=_doc)
