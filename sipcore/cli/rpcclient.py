"""JSON-RPC 2.0 client over the control socket (unix stream, or tcp:host:port / udp:host:port).

Runs in: the pykamcmd / pykamctl processes. Requests are dicts through json.dumps with
increasing ids; one request per connection, the reply is read until it parses.
"""
from __future__ import annotations

import itertools
import json
import socket
from typing import Any

DEFAULT_SOCKET = "/run/pykam/pykam_ctl"
_ids = itertools.count(1)


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def typed_param(text: str) -> Any:
    """kamcmd convention: `i:5` forces int, `s:5` forces string; bare digits are ints."""
    if text.startswith("i:"):
        return int(text[2:])
    if text.startswith("s:"):
        return text[2:]
    try:
        return int(text)
    except ValueError:
        return text


def _connect(address: str, timeout: float) -> socket.socket:
    if address.startswith(("tcp:", "udp:")):
        proto, rest = address.split(":", 1)
        host, _, port = rest.rpartition(":")
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        s = socket.create_connection((host.strip("[]"), int(port)), timeout) if proto == "tcp" \
            else socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
        if proto == "udp":
            s.settimeout(timeout)
            s.connect((host.strip("[]"), int(port)))
        return s
    path = address[5:] if address.startswith("unix:") else address
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def call(address: str, method: str, params: list[Any], timeout: float = 5.0) -> Any:
    req = {"jsonrpc": "2.0", "method": method, "params": params, "id": next(_ids)}
    s = _connect(address, timeout)
    try:
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            try:
                reply = json.loads(buf)
                break
            except ValueError:
                continue
        else:  # pragma: no cover
            pass
    finally:
        s.close()
    if not buf:
        raise RpcError(-32000, "empty reply from server")
    reply = json.loads(buf)
    if "error" in reply:
        err = reply["error"]
        raise RpcError(int(err.get("code", -32000)), str(err.get("message", "")))
    return reply.get("result")
