"""The RPC registry: method name -> handler, from the core table plus every loaded module.

Runs in: the ctl process (and workers running jsonrpc_exec()). Shared state: none itself;
handlers read shm through the RpcEnv.

A handler is called `handler(*params)` and returns a JSON-able value (None -> `{}`), or raises
sipcore.errors.RpcFault(code, message). The number of parameters and the simple type hints
(int, float, str, bool, Optional[...] of those) of the handler's signature are checked
before the call: a mismatch is a -32602 error naming the expected parameters, so a TypeError
raised inside a handler is never mistaken for a caller mistake.

Name clashes: the core serves stats.* and cfg.* itself (in Kamailio they come with kex and
cfg_rpc, which most configs load anyway), so one implementation answers whichever modules are
loaded: a module exporting a name the core serves is skipped (debug log); between two modules
the first loaded wins (warning).
"""
from __future__ import annotations

import inspect
import logging
import traceback
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union

from sipcore.errors import RpcFault
from sipcore.mod.exports import RpcExport
from sipcore.rpc import jsonrpc
from sipcore.rpc.jsonrpc import Call, Response

log = logging.getLogger(__name__)

_SCALARS = (int, float, str, bool)


@dataclass
class RpcMethod:
    """One registered method with what its signature says about its parameters."""

    name: str
    handler: Callable[..., Any]
    doc: str = ""
    params: str = ""                  # human signature, e.g. "group var [value]"
    origin: str = "core"              # "core" or the module name
    min_args: int = 0
    max_args: int | None = None    # None: any number
    types: list[type | None] = field(default_factory=list)
    varargs: bool = False             # the last entry of `types` repeats

    @classmethod
    def from_export(cls, exp: RpcExport, origin: str) -> RpcMethod:
        m = cls(exp.name, exp.handler, exp.doc or _first_line(exp.handler), exp.params,
                origin)
        m._inspect()
        return m

    def _inspect(self) -> None:
        try:
            sig = inspect.signature(self.handler)
        except (TypeError, ValueError):      # builtins without a signature: no checks
            return
        try:
            hints = typing.get_type_hints(self.handler)
        except (NameError, TypeError, AttributeError):
            hints = {}
        n_req = 0
        n_pos = 0
        types: list[type | None] = []
        varargs = False
        for p in sig.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                n_pos += 1
                if p.default is p.empty:
                    n_req += 1
                types.append(_scalar_type(hints.get(p.name)))
            elif p.kind is p.VAR_POSITIONAL:
                varargs = True
                types.append(_scalar_type(hints.get(p.name)))
                break
        self.min_args = n_req
        self.max_args = None if varargs else n_pos
        self.types = types
        self.varargs = varargs

    def signature(self) -> str:
        return f"{self.name} {self.params}".strip()

    def check_params(self, params: list[Any]) -> list[Any]:
        """Count and type-check PARAMS (converting "12" for an int parameter and numbers
        for a str one, like Kamailio's autoconversion); raises RpcFault(-32602)."""
        n = len(params)
        if n < self.min_args or (self.max_args is not None and n > self.max_args):
            if self.max_args is None:
                want = f"at least {self.min_args}"
            elif self.min_args == self.max_args:
                want = str(self.min_args)
            else:
                want = f"{self.min_args} to {self.max_args}"
            usage = f" ({self.params})" if self.params else ""
            raise RpcFault(jsonrpc.INVALID_PARAMS,
                           f"Invalid params: {self.name} expects {want} parameter"
                           f"{'' if want == '1' else 's'}{usage}, got {n}")
        if not self.types:
            return list(params)
        out = []
        for i, value in enumerate(params):
            if self.varargs:
                t = self.types[min(i, len(self.types) - 1)]
            else:
                t = self.types[i] if i < len(self.types) else None
            out.append(_convert(value, t, i + 1, self))
        return out


def _first_line(fn: Callable[..., Any]) -> str:
    return (getattr(fn, "__doc__", None) or "").strip().split("\n")[0]


def _scalar_type(hint: Any) -> type | None:
    """int/float/str/bool, or Optional of one of them; anything else: not checked."""
    if hint in _SCALARS:
        return hint
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and args[0] in _SCALARS:
            return args[0]
    return None


def _convert(value: Any, t: type | None, pos: int, m: RpcMethod) -> Any:
    if t is None or value is None:
        return value
    bad = RpcFault(jsonrpc.INVALID_PARAMS,
                   f"Invalid params: {m.name} parameter {pos} must be "
                   f"{'an integer' if t is int else 'a ' + t.__name__}, got {value!r}")
    if t is int:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip(), 0)
            except ValueError:
                raise bad from None
        raise bad
    if t is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if t is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if t is bool:
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("0", "1", "yes", "no", "true",
                                                         "false", "on", "off"):
            return value.lower() in ("1", "yes", "true", "on")
        raise bad
    return value


class RpcRegistry:
    """The methods one process can answer."""

    def __init__(self) -> None:
        self._methods: dict[str, RpcMethod] = {}
        for exp in self._system_exports():
            self._methods[exp.name] = RpcMethod.from_export(exp, "core")

    # ---- building --------------------------------------------------------------------------
    @classmethod
    def build(cls, env: Any, modules: Iterable[Any] | None = None) -> RpcRegistry:
        """Core methods bound to ENV, then the `rpcs` of every loaded module."""
        from sipcore.rpc.core_cmds import core_exports

        reg = cls()
        for exp in core_exports(env):
            reg.add(exp, "core")
        for mod in (env.modules if modules is None else modules):
            for exp in getattr(mod, "rpcs", {}).values():
                reg.add(exp, mod.name)
        return reg

    def add(self, exp: RpcExport, origin: str) -> None:
        old = self._methods.get(exp.name)
        if old is not None:
            if old.origin == "core":
                log.debug("rpc: %s of %s not used: the core serves it", exp.name, origin)
            else:
                log.warning("rpc: %s of %s ignored: already exported by %s",
                            exp.name, origin, old.origin)
            return
        self._methods[exp.name] = RpcMethod.from_export(exp, origin)

    def _system_exports(self) -> list[RpcExport]:
        return [
            RpcExport("system.listMethods", self._list_methods,
                      "Names of all RPC methods.", ""),
            RpcExport("system.methodHelp", self._method_help,
                      "Help text of an RPC method.", "method"),
            RpcExport("system.methodSignature", self._method_signature,
                      "Parameters of an RPC method.", "method"),
        ]

    # ---- system.* ------------------------------------------------------------------------
    def _list_methods(self) -> list[str]:
        return self.names()

    def _method_help(self, name: str) -> str:
        m = self._methods.get(name)
        if m is None:
            raise RpcFault(404, f"command {name} not found")
        return m.doc or "undocumented"

    def _method_signature(self, name: str) -> list[str]:
        m = self._methods.get(name)
        if m is None:
            raise RpcFault(404, f"command {name} not found")
        return [m.signature()]

    # ---- lookup and calls -------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._methods)

    def get(self, name: str) -> RpcMethod | None:
        return self._methods.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._methods

    def call(self, method: str, params: list[Any]) -> Any:
        """Run METHOD; raises RpcFault (unknown method -32601, bad params -32602, handler
        faults with their code). Other handler exceptions propagate."""
        m = self._methods.get(method)
        if m is None:
            raise RpcFault(jsonrpc.METHOD_NOT_FOUND, "Method Not Found")
        args = m.check_params(params)
        return m.handler(*args)

    def dispatch(self, call: Call) -> Response:
        """Run one call; every failure becomes an error Response. Never raises (except
        KeyboardInterrupt/SystemExit)."""
        try:
            result = self.call(call.method, call.params)
        except RpcFault as exc:
            return jsonrpc.error(int(exc.code), str(exc.message), call.id)
        except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the ctl process
            log.error("rpc: %s failed: %s: %s\n%s",
                      call.method, type(exc).__name__, exc, traceback.format_exc())
            return jsonrpc.error(jsonrpc.HANDLER_ERROR,
                                 f"Internal error in {call.method}: "
                                 f"{type(exc).__name__}: {exc}", call.id)
        return Response(id=call.id, result=result)

    def execute(self, doc: bytes | str) -> bytes | None:
        """One JSON-RPC document in, the reply document out (None: nothing to send)."""
        decoded = jsonrpc.decode(doc)
        return jsonrpc.encode(self.run(decoded), decoded.batch)

    def run(self, decoded: jsonrpc.Decoded) -> list[Response]:
        out: list[Response] = []
        for item in decoded.items:
            if isinstance(item, Response):
                out.append(item)
                continue
            resp = self.dispatch(item)
            if not item.notify:
                out.append(resp)
        return out
