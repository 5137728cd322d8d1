"""JSON-RPC 2.0 client for the control socket: unix stream (default), tcp:HOST:PORT,
udp:HOST:PORT and unixd:PATH (jsonrpcs datagram).

Runs in: the pykamcmd / pykamctl processes. Requests are dicts through json.dumps with
increasing ids (sipcore.rpc.jsonrpc.request); the reply is read until one complete JSON
document arrived (sipcore.rpc.jsonrpc.StreamDecoder), so pretty-printed replies work too.
"""
from __future__ import annotations

import itertools
import os
import re
import socket
import tempfile
from typing import Any

from sipcore.rpc import jsonrpc

DEFAULT_SOCKET = os.environ.get("PYKAM_CTL", "/run/pykam/pykam_ctl")
_ids = itertools.count(1)


class RpcError(Exception):
    """The server answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CtlConnectError(OSError):
    """The control socket cannot be reached (server not running, wrong path, no access)."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot connect to pykam at {address}: {reason}")
        self.address = address
        self.reason = reason


class CtlProtocolError(OSError):
    """The server closed the connection or sent something that is not a JSON-RPC reply."""


_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def typed_param(text: str) -> Any:
    """kamcmd convention: `i:5` forces int, `s:5` forces string; otherwise an integer or a
    decimal number (`12`, `-3`, `0.5`) becomes a number and anything else stays a string.
    Raises ValueError for `i:` with a non-integer."""
    if text.startswith("i:"):
        return int(text[2:], 0)
    if text.startswith("s:"):
        return text[2:]
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    return text


def _split_hostport(rest: str, address: str) -> tuple[str, int]:
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise CtlConnectError(address, "expected HOST:PORT")
    return host.strip("[]"), int(port)


def _reason(exc: OSError) -> str:
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        return f"{exc.strerror} (is pykam running?)"
    if isinstance(exc, socket.timeout):
        return "timed out"
    return exc.strerror or str(exc)


def _exchange_stream(sock: socket.socket, data: bytes, address: str) -> Any:
    sock.sendall(data)
    dec = jsonrpc.StreamDecoder(max_size=64 << 20)
    while True:
        chunk = sock.recv(65536)
        items = dec.feed(chunk) if chunk else dec.eof()
        for item in items:
            if isinstance(item, jsonrpc.Response):
                raise CtlProtocolError(f"{address}: unreadable reply ({item.error[1]})"
                                       if item.error else f"{address}: unreadable reply")
            return jsonrpc.loads(item)
        if not chunk:
            raise CtlProtocolError(f"{address}: connection closed without a reply")


def _exchange_dgram(address: str, data: bytes, timeout: float) -> Any:
    if address.startswith("udp:"):
        host, port = _split_hostport(address[4:], address)
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        target: Any = (host, port)
        local = None
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        target = address[len("unixd:"):]
        local = os.path.join(tempfile.gettempdir(), f"pykamcmd.{os.getpid()}.sock")
        if os.path.exists(local):
            os.unlink(local)
        s.bind(local)                    # the server replies to our address
    s.settimeout(timeout)
    try:
        try:
            s.sendto(data, target)
        except OSError as exc:
            raise CtlConnectError(address, _reason(exc)) from None
        reply, _ = s.recvfrom(1 << 20)
    finally:
        s.close()
        if local:
            os.unlink(local)
    try:
        return jsonrpc.loads(reply)
    except ValueError:
        raise CtlProtocolError(f"{address}: unreadable reply") from None


def _connect(address: str, timeout: float) -> socket.socket:
    try:
        if address.startswith("tcp:"):
            host, port = _split_hostport(address[4:], address)
            return socket.create_connection((host, port), timeout)
        path = address.removeprefix("unix:")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
        except OSError:
            s.close()
            raise
        return s
    except OSError as exc:
        if isinstance(exc, CtlConnectError):
            raise
        raise CtlConnectError(address, _reason(exc)) from None


def call(address: str, method: str, params: list[Any], timeout: float = 5.0) -> Any:
    """Call METHOD on the server at ADDRESS; returns the result or raises RpcError (an error
    reply), CtlConnectError (nobody listening) or CtlProtocolError / socket.timeout."""
    rid = next(_ids)
    data = jsonrpc.request(method, params, rid)
    if address.startswith(("udp:", "unixd:")):
        reply = _exchange_dgram(address, data, timeout)
    else:
        sock = _connect(address, timeout)
        try:
            reply = _exchange_stream(sock, data, address)
        finally:
            sock.close()
    if not isinstance(reply, dict):
        raise CtlProtocolError(f"{address}: reply is not a JSON-RPC object")
    if "error" in reply:
        err = reply["error"] if isinstance(reply["error"], dict) else {}
        raise RpcError(int(err.get("code", -32000)), str(err.get("message", "")))
    return reply.get("result")
