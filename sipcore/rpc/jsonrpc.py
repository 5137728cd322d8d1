"""JSON-RPC 2.0 codec, sans-I/O: bytes in, calls out; responses in, bytes out.

Runs in: the ctl process (server), workers running jsonrpc_exec(), and pykamcmd (client side
helpers `dumps`/`loads` and `StreamDecoder`). Touches no socket and no shared state.

Nothing here raises on peer input: a bad document becomes an error Response.
Error codes: JSON-RPC 2.0 for protocol errors (-32700 parse error, -32600 invalid request,
-32602 invalid params); RpcFault codes of the handlers (Kamailio uses 400/404/500) pass
through; an unexpected handler exception is 500. An unknown method is answered like
Kamailio's jsonrpcs does: code 500, message "Method Not Found" (its error table defines
-32601, but its dispatcher answers 500; kamcli/kamctl users see the same text).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = 500       # Kamailio jsonrpcs answers 500 "Method Not Found"
JSONRPC_METHOD_NOT_FOUND = -32601   # the JSON-RPC 2.0 code (not sent; for clients)
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HANDLER_ERROR = 500          # Kamailio jsonrpcs: a method's generic fault

MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    JSONRPC_METHOD_NOT_FOUND: "Method Not Found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
}

_NO_ID = object()            # "id" absent: a notification, which gets no response


class Pairs(list):
    """A JSON object that may repeat keys, as a list of (key, value): Kamailio structs built
    with repeated struct_add() (core.sockets_list: {"socket": {...}, "socket": {...}})."""

    def keys_values(self) -> Iterator[tuple[str, Any]]:
        return iter(self)


@dataclass(frozen=True)
class Call:
    """One valid request: METHOD with positional PARAMS. `id` is None with notify=True for a
    notification (no response is sent)."""

    method: str
    params: list[Any]
    id: Any = None
    notify: bool = False


@dataclass
class Response:
    """A result or an error for request id ID (None when the id could not be read)."""

    id: Any = None
    result: Any = None
    error: tuple[int, str] | None = None
    data: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"jsonrpc": "2.0"}
        if self.error is not None:
            err: dict[str, Any] = {"code": self.error[0], "message": self.error[1]}
            if self.data is not None:
                err["data"] = self.data
            obj["error"] = err
        else:
            obj["result"] = {} if self.result is None else self.result
        obj["id"] = self.id
        return obj


def error(code: int, message: str | None = None, rid: Any = None, data: Any = None
          ) -> Response:
    return Response(id=rid, error=(code, message or MESSAGES.get(code, "Error")), data=data)


@dataclass
class Decoded:
    """A decoded document: its items in order (a Call to run, or a Response already decided,
    e.g. an invalid batch member) and whether it was a batch."""

    items: list[Call | Response] = field(default_factory=list)
    batch: bool = False


def _call_from_obj(obj: Any) -> Call | Response:
    if not isinstance(obj, dict):
        return error(INVALID_REQUEST, "Invalid Request: not an object")
    rid = obj.get("id", _NO_ID)
    if rid is not _NO_ID and not (rid is None or isinstance(rid, (str, int, float))
                                  and not isinstance(rid, bool)):
        return error(INVALID_REQUEST, "Invalid Request: bad id")
    reply_id = None if rid is _NO_ID else rid
    if obj.get("jsonrpc") != "2.0":
        return error(INVALID_REQUEST, "Invalid Request: \"jsonrpc\": \"2.0\" expected",
                     reply_id)
    method = obj.get("method")
    if not isinstance(method, str) or not method:
        return error(INVALID_REQUEST, "Invalid Request: method must be a string", reply_id)
    params = obj.get("params", [])
    if isinstance(params, dict):
        params = list(params.values())        # Kamailio: only the order of values matters
    elif params is None:
        params = []
    elif not isinstance(params, list):
        return error(INVALID_REQUEST, "Invalid Request: params must be an array or object",
                     reply_id)
    return Call(method, params, reply_id, notify=rid is _NO_ID)


def decode(data: bytes | str) -> Decoded:
    """One JSON-RPC document (a request or a batch) -> Decoded. Never raises."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            return Decoded([error(PARSE_ERROR, f"Parse error: invalid UTF-8 at byte "
                                               f"{exc.start}")])
    else:
        text = data
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        return Decoded([error(PARSE_ERROR, f"Parse error: {msg}")])
    if isinstance(obj, list):
        if not obj:
            return Decoded([error(INVALID_REQUEST, "Invalid Request: empty batch")])
        return Decoded([_call_from_obj(o) for o in obj], batch=True)
    return Decoded([_call_from_obj(obj)])


def _encode_value(value: Any, out: list[str]) -> None:
    if isinstance(value, Pairs):
        out.append("{")
        for i, (k, v) in enumerate(value):
            if i:
                out.append(",")
            out.append(json.dumps(str(k)))
            out.append(":")
            _encode_value(v, out)
        out.append("}")
    elif isinstance(value, dict):
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(k)))
            out.append(":")
            _encode_value(v, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode_value(v, out)
        out.append("]")
    elif isinstance(value, bytes):
        out.append(json.dumps(value.decode("utf-8", "replace")))
    else:
        out.append(json.dumps(value, default=str))


def dumps(value: Any) -> str:
    """json.dumps that also writes Pairs (repeated keys) and turns unknown objects into
    strings instead of failing."""
    if not has_pairs(value):
        return json.dumps(value, default=str)
    out: list[str] = []
    _encode_value(value, out)
    return "".join(out)


def has_pairs(value: Any) -> bool:
    if isinstance(value, Pairs):
        return True
    if isinstance(value, dict):
        return any(has_pairs(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_pairs(v) for v in value)
    return False


def _pairs_hook(items: list[tuple[str, Any]]) -> dict[str, Any] | Pairs:
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        return Pairs(items)
    return dict(items)


def loads(text: str | bytes) -> Any:
    """json.loads keeping repeated keys as Pairs (client side). Raises ValueError."""
    return json.loads(text, object_pairs_hook=_pairs_hook)


def encode(responses: list[Response], batch: bool) -> bytes | None:
    """The reply document for RESPONSES (None when there is nothing to send: only
    notifications), newline-terminated."""
    if not responses:
        return None
    if batch:
        return (dumps([r.to_obj() for r in responses]) + "\n").encode("utf-8")
    return (dumps(responses[0].to_obj()) + "\n").encode("utf-8")


def request(method: str, params: list[Any], rid: Any) -> bytes:
    """A request document (client side), newline-terminated."""
    return (json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": rid})
            + "\n").encode("utf-8")


class StreamDecoder:
    """Splits a byte stream into JSON documents: one document per request, separated by a
    newline or simply complete (pretty-printed multi-line JSON works too).

    feed(data) returns the complete documents (as text) and parse errors (as Response) in
    order; an incomplete document stays buffered. `max_size` caps the buffered bytes: when
    exceeded, `overflow` becomes True and the caller should answer and close.
    """

    def __init__(self, max_size: int = 1 << 20) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self.overflow = False
        self._dec = json.JSONDecoder()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[str | Response]:
        self._buf += data
        out = self._drain(final=False)
        if len(self._buf) > self.max_size:
            self.overflow = True
            self._buf.clear()
        return out

    def eof(self) -> list[str | Response]:
        """The peer closed: whatever is left is a (parse) error."""
        return self._drain(final=True)

    def _drain(self, final: bool) -> list[str | Response]:
        out: list[str | Response] = []
        while True:
            start = 0
            while start < len(self._buf) and self._buf[start] in b" \t\r\n":
                start += 1
            del self._buf[:start]
            if not self._buf:
                return out
            bad_at: int | None = None      # first byte that is not valid UTF-8
            try:
                text = self._buf.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = self._buf[:exc.start].decode("utf-8")
                if final or not _utf8_truncated(bytes(self._buf[exc.start:])):
                    bad_at = exc.start        # else: a multi-byte char split by recv()
            try:
                _, end = self._dec.raw_decode(text)
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(text.rstrip()) or exc.msg.startswith(
                    "Unterminated string")
                if bad_at is not None and incomplete:
                    out.append(error(PARSE_ERROR, f"Parse error: invalid UTF-8 at byte "
                                                  f"{bad_at}"))
                    self._skip_line(bad_at)
                    continue
                if incomplete and not final:
                    return out
                out.append(error(PARSE_ERROR, f"Parse error: {exc.msg} at char {exc.pos}"))
                self._skip_line(len(text[:exc.pos].encode("utf-8")))
                continue
            except RecursionError:
                out.append(error(PARSE_ERROR, "Parse error: nesting too deep"))
                self._buf.clear()
                return out
            nbytes = len(text[:end].encode("utf-8"))
            out.append(text[:end])
            del self._buf[:nbytes]

    def _skip_line(self, at: int) -> None:
        """Drop the bad document: up to the newline after byte AT (or everything)."""
        nl = self._buf.find(b"\n", at)
        if nl < 0:
            self._buf.clear()
        else:
            del self._buf[:nl + 1]


def _utf8_truncated(tail: bytes) -> bool:
    """True if TAIL is the start of a valid multi-byte UTF-8 sequence cut short."""
    try:
        tail.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start == 0 and exc.reason.startswith("unexpected end")
    return False
