"""jsonrpcs: JSON-RPC 2.0 control interface - FIFO, datagram and HTTP (xhttp) transports,
and jsonrpc_exec() to run an RPC command from the script.

Runs in: the master (params), SIP workers (jsonrpc_exec, jsonrpc_dispatch) and, with the
runtime issue, the FIFO/datagram listener processes.
Shared state: none here.

Pending (runtime issue): the FIFO and datagram listeners and the HTTP path
(jsonrpc_dispatch needs xhttp). jsonrpc_exec() works now for RPCs of the loaded modules.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Optional

from sipcore import log as klog
from sipcore.errors import RpcFault
from sipcore.mod import ANY_ROUTE, Fx, Module
from sipcore.route.ctx import RouteCtx

mod = Module("jsonrpcs", summary="JSON-RPC 2.0 control interface.")

TRANSPORT_HTTP, TRANSPORT_FIFO, TRANSPORT_DGRAM = 1, 2, 4


def parse_mode(value: int) -> int:
    """File mode bits (the cfg lexer reads 0660 as octal, as Kamailio's does)."""
    if not 0 <= value <= 0o7777:
        raise ValueError(f"invalid file mode {value:o} (octal 0..7777 expected)")
    return value


def _transport(v: int) -> int:
    if not 0 <= v <= 7:
        raise ValueError(f"transport must be a bitmask 0..7 (1 HTTP, 2 FIFO, 4 datagram), "
                         f"got {v}")
    return v


mod.param("pretty_format", int, 1, doc="1: indent the JSON replies.")
mod.param("transport", int, 6, validator=_transport,
          doc="Bitmask: 1 HTTP (xhttp), 2 FIFO, 4 datagram; 0 = all possible.")
mod.param("fifo_name", str, "kamailio_rpc.fifo", doc="FIFO path (relative to rundir).")
mod.param("fifo_mode", int, 0o660, validator=parse_mode, doc="FIFO file mode.")
mod.param("fifo_user", str, None, doc="FIFO owner.")
mod.param("fifo_group", str, None, doc="FIFO group.")
mod.param("fifo_reply_dir", str, "/tmp/", doc="Directory of the reply FIFOs.")
mod.param("dgram_socket", str, "kamailio_rpc.sock",
          doc="Unix datagram socket (relative to rundir) or udp:ip:port.")
mod.param("dgram_workers", int, 1, doc="Datagram listener processes.")
mod.param("dgram_mode", int, 0o660, validator=parse_mode, doc="Datagram socket file mode.")
mod.param("dgram_user", str, None, doc="Datagram socket owner.")
mod.param("dgram_group", str, None, doc="Datagram socket group.")
mod.param("dgram_timeout", int, 2000, doc="Datagram send timeout (ms).")


def _find_rpc(ctx: RouteCtx, method: str) -> Optional[Callable[..., Any]]:
    """The handler of METHOD among the modules loaded by the running configuration."""
    routes = ctx.core.routes
    registry = getattr(routes, "modules", None) or getattr(routes, "registry", None)
    if registry is None:
        return None
    for m in registry:
        exp = m.rpcs.get(method)
        if exp is not None:
            return exp.handler
    return None


def execute(ctx: RouteCtx, doc: str) -> dict[str, Any]:
    """Run one JSON-RPC request document; returns {"code", "text", "body"} ($jsonrpl)."""
    try:
        req = json.loads(doc)
    except json.JSONDecodeError as exc:
        return _reply(None, error=(-32700, f"Parse error: {exc.msg}"), code=400)
    if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or "method" not in req:
        return _reply(req.get("id") if isinstance(req, dict) else None,
                      error=(-32600, "Invalid Request"), code=400)
    rid = req.get("id")
    params = req.get("params", [])
    if isinstance(params, dict):          # only the order of values matters (Kamailio)
        params = list(params.values())
    handler = _find_rpc(ctx, str(req["method"]))
    if handler is None:
        return _reply(rid, error=(500, "Method Not Found"), code=500)
    try:
        result = handler(*params)
    except RpcFault as exc:
        return _reply(rid, error=(exc.code, exc.message), code=exc.code)
    return _reply(rid, result={} if result is None else result)


def _reply(rid: Any, result: Any = None, error: Optional[tuple[int, str]] = None,
           code: int = 200) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0"}
    if error is not None:
        body["error"] = {"code": error[0], "message": error[1]}
    else:
        body["result"] = result
    body["id"] = rid
    indent = 4 if mod.p.pretty_format else None
    return {"code": code, "text": "OK" if error is None else error[1],
            "body": json.dumps(body, indent=indent)}


@mod.function("jsonrpc_exec", args=(Fx.SPVE,))
def ki_jsonrpc_exec(ctx: RouteCtx, doc: str) -> int:
    """Run the JSON-RPC request DOC; the reply is in $jsonrpl(code|text|body)."""
    reply = execute(ctx, doc)
    ctx.extra["jsonrpl"] = reply
    return 1 if reply["code"] == 200 else -1


@mod.function("jsonrpc_dispatch", args=(), routes=ANY_ROUTE)
def ki_jsonrpc_dispatch(ctx: RouteCtx) -> int:
    """Answer the HTTP request being handled (event_route[xhttp:request]) with JSON-RPC."""
    klog.err("jsonrpc_dispatch: the HTTP transport needs xhttp (runtime issue); request "
             "not answered", ctx)
    return -1


def _jsonrpl_pv(inner: Optional[str]) -> Any:
    from sipcore.pv.spec import FuncPv

    key = (inner or "").strip()
    if key not in ("code", "text", "body"):
        raise ValueError("$jsonrpl(code|text|body) expected")

    def get(ctx: RouteCtx) -> Any:
        reply = ctx.extra.get("jsonrpl")
        return None if reply is None else reply[key]

    return FuncPv(get, text=f"$jsonrpl({key})")


mod.pv("jsonrpl", _jsonrpl_pv, doc="$jsonrpl(code|text|body): reply of jsonrpc_exec().")
