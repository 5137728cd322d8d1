"""jsonrpcs: JSON-RPC 2.0 control interface - FIFO, datagram and HTTP (xhttp) transports,
and jsonrpc_exec() to run an RPC command from the script.

Runs in: the master (params), SIP workers (jsonrpc_exec, jsonrpc_dispatch) and the ctl
process, which serves `dgram_socket` (transport bit 4) beside the ctl sockets.
Shared state: none here; RPC handlers read shm through sipcore.rpc.env.

jsonrpc_exec() runs a request through the same registry as the ctl socket (sipcore.rpc).
Not served yet: the FIFO transport (bit 2; a warning is logged) and the HTTP path
(jsonrpc_dispatch needs xhttp).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Optional

from sipcore.mod import ANY_ROUTE, Fx, Module
from sipcore.route.ctx import MsgSlot, RouteCtx
from sipcore.rpc import jsonrpc
from sipcore.rpc.env import RpcEnv
from sipcore.rpc.registry import RpcRegistry

log = logging.getLogger(__name__)

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


_cache: list[tuple[Any, Any, RpcRegistry]] = []      # [(env, modules, registry)], one entry
_default_env = RpcEnv()      # a context without an RPC environment (embedding): this process


def _registry(ctx: RouteCtx) -> RpcRegistry:
    """The RPC registry of this process: core methods bound to the process's RpcEnv plus
    the RPCs of the modules loaded by the running configuration (built once per env and
    module set; the cache holds both, so identity comparison is safe)."""
    env = mod.context.rpc if mod.context is not None and mod.context.rpc is not None \
        else _default_env
    modules = getattr(ctx.core.routes, "modules", None)
    if modules is None:
        modules = env.modules
    if _cache and _cache[0][0] is env and _cache[0][1] is modules:
        return _cache[0][2]
    reg = RpcRegistry.build(env, modules)
    _cache[:] = [(env, modules, reg)]
    return reg


def reply_code(resp: jsonrpc.Response) -> int:
    """$jsonrpl(code): 200, the fault code of the method (Kamailio: 400/404/500...), 400 for
    a malformed request and 500 for an internal error."""
    if resp.error is None:
        return 200
    code = resp.error[0]
    if 100 <= code < 700:
        return code
    return 500 if code == jsonrpc.INTERNAL_ERROR else 400


def execute(ctx: RouteCtx, doc: str) -> dict[str, Any]:
    """Run one JSON-RPC request document; returns {"code", "text", "body"} ($jsonrpl)."""
    decoded = jsonrpc.decode(doc)
    responses = _registry(ctx).run(decoded)
    if not responses:                        # a notification: nothing to answer
        return {"code": 200, "text": "OK", "body": ""}
    objs = [r.to_obj() for r in responses]
    indent = 4 if mod.p.pretty_format else None
    body_obj: Any = objs if decoded.batch else objs[0]
    if jsonrpc.has_pairs(body_obj):
        body = jsonrpc.dumps(body_obj)
    else:
        body = json.dumps(body_obj, indent=indent, default=str)
    first = responses[0]
    text = "OK" if first.error is None else first.error[1]
    return {"code": reply_code(first), "text": text, "body": body}


@dataclass(slots=True)
class JsonrplMsg:
    """jsonrpcs' part of one message: the reply of the last jsonrpc_exec() ($jsonrpl)."""

    reply: Optional[dict[str, Any]] = None

    def copy(self) -> "JsonrplMsg":
        return JsonrplMsg(self.reply)


JSONRPL: MsgSlot[JsonrplMsg] = MsgSlot("jsonrpcs", JsonrplMsg)


@mod.function("jsonrpc_exec", args=(Fx.SPVE,))
def ki_jsonrpc_exec(ctx: RouteCtx, doc: str) -> int:
    """Run the JSON-RPC request DOC; the reply is in $jsonrpl(code|text|body)."""
    reply = execute(ctx, doc)
    JSONRPL.of(ctx).reply = reply
    return 1 if reply["code"] == 200 else -1


@mod.function("jsonrpc_dispatch", args=(), routes=ANY_ROUTE)
def ki_jsonrpc_dispatch(ctx: RouteCtx) -> int:
    """Answer the HTTP request being handled (event_route[xhttp:request]) with JSON-RPC."""
    log.error("jsonrpc_dispatch: the HTTP transport needs xhttp (runtime issue); request not "
              "answered")
    return -1


def _jsonrpl_pv(inner: str | None) -> Any:
    from sipcore.pv.spec import FuncPv

    key = (inner or "").strip()
    if key not in ("code", "text", "body"):
        raise ValueError("$jsonrpl(code|text|body) expected")

    def get(ctx: RouteCtx) -> Any:
        st = JSONRPL.peek(ctx)
        reply = st.reply if st is not None else None
        return None if reply is None else reply[key]

    return FuncPv(get, text=f"$jsonrpl({key})")


mod.pv("jsonrpl", _jsonrpl_pv, doc="$jsonrpl(code|text|body): reply of jsonrpc_exec().")
