"""Transformations `{class.op,arg,...}`: parsed once at compile time into a chain of objects.

Runs in: the master (parsing, with the cfg) and SIP workers (`apply` per message). No shared
state. Classes: s, uri, param, nameaddr, tobody, line, re, sql, urialias (Kamailio pv/textops/
sqlops), plus classes added with `register_class()` or by modules (`Module.transform`).

Value rule: a `$null` input gives `$null` (Kamailio's tr_eval_* fail on null) unless the
operation says otherwise (`sql.val*`). A transformation that cannot apply to its input (a
malformed URI, an index out of range, bad hex) yields `$null` and a debug log.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from sipcore import log as klog
from sipcore.errors import ParseError
from sipcore.msg import parse_nameaddr, parse_uri
from sipcore.msg.params import format_params, split_commas
from sipcore.pv.errors import PvError
from sipcore.pv.spec import PvSpec, PvValue, to_int, to_str

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.route.ctx import RouteCtx


class TrFail(Exception):
    """The transformation does not apply to this input: the result is $null."""


class Transform:
    """One compiled `{class.op,...}`."""

    accepts_null: bool = False
    text: str = ""

    def apply(self, ctx: "RouteCtx", value: PvValue) -> PvValue:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Transform {{{self.text}}}>"


class TrArg:
    """An argument: literal text, or one PV evaluated per message."""

    __slots__ = ("static", "pv")

    def __init__(self, static: Optional[str] = None, pv: Optional[PvSpec] = None) -> None:
        self.static = static
        self.pv = pv

    def eval(self, ctx: "RouteCtx") -> PvValue:
        return self.static if self.pv is None else self.pv.get(ctx)


# ---- argument splitting -----------------------------------------------------------------------

def split_args(raw: Optional[str], maxparts: int) -> list[str]:
    """Split at commas (at most MAXPARTS pieces), never inside a nested PV token."""
    if raw is None:
        return []
    from sipcore.pv.parser import scan_pv

    out: list[str] = []
    cur = 0
    i = 0
    n = len(raw)
    while i < n and len(out) < maxparts - 1:
        c = raw[i]
        if c == "$":
            try:
                i = scan_pv(raw, i)
                continue
            except PvError:
                pass
        elif c == ",":
            out.append(raw[cur:i])
            cur = i + 1
        i += 1
    out.append(raw[cur:])
    return out


def make_arg(text: str, modreg: Any) -> TrArg:
    """A PV argument when the text is exactly one PV token, else literal text."""
    if text.startswith("$"):
        from sipcore.pv.parser import parse_pv, scan_pv

        try:
            end = scan_pv(text, 0)
        except PvError:
            end = -1
        if end == len(text):
            return TrArg(pv=parse_pv(text, modreg))
    return TrArg(static=text)


# ---- generic table-driven transformation -----------------------------------------------------

@dataclass(frozen=True)
class Op:
    """fn(value, *args): value converted per `input` ('s' str, 'i' int, 'v' as is);
    `args` one letter per argument: 'i' int, 's' str; `optional` trailing ones may be absent."""

    fn: Callable[..., PvValue]
    args: str = ""
    optional: int = 0
    input: str = "s"
    accepts_null: bool = False


class OpTransform(Transform):
    def __init__(self, text: str, op: Op, args: list[TrArg]) -> None:
        self.text = text
        self.fn = op.fn
        self.kinds = op.args[:len(args)]
        self.input = op.input
        self.accepts_null = op.accepts_null
        self.args = args
        # all-literal arguments are converted once here
        self.static_args: Optional[tuple[Any, ...]] = None
        if all(a.pv is None for a in args):
            self.static_args = tuple(self._conv(k, a.static) for k, a in zip(self.kinds, args))

    def _conv(self, kind: str, v: PvValue) -> Any:
        if kind == "i":
            if isinstance(v, int):
                return v
            t = to_str(v).strip()
            try:
                return int(t)
            except ValueError:
                raise PvError(f"{{{self.text}}}: argument {t!r} is not an integer") from None
        return to_str(v)

    def apply(self, ctx: "RouteCtx", value: PvValue) -> PvValue:
        if self.input == "s":
            if not isinstance(value, str) and value is not None:
                value = str(value)
        elif self.input == "i" and value is not None:
            value = to_int(value)
        args = self.static_args
        try:
            if args is None:
                args = tuple(self._conv(k, a.eval(ctx)) for k, a in zip(self.kinds, self.args))
            return self.fn(value, *args)
        except (TrFail, ParseError, PvError, ValueError, IndexError, UnicodeError) as e:
            if klog.enabled(klog.L_DBG):
                log.debug("transformation {%s} failed: %s", self.text, e)
            return None


def _table_parser(cls: str, table: dict[str, Op]) -> "ClassParser":
    def parse(op: str, raw: Optional[str], text: str, modreg: Any) -> Transform:
        d = table.get(op)
        if d is None:
            raise PvError(f"unknown transformation {{{cls}.{op}}}")
        nmax = len(d.args)
        parts = split_args(raw, nmax) if nmax else ([] if raw is None else [raw])
        if len(parts) > nmax:
            raise PvError(f"transformation {{{cls}.{op}}} takes no arguments")
        if len(parts) < nmax - d.optional:
            raise PvError(f"transformation {{{cls}.{op}}} needs {nmax - d.optional} "
                          f"argument(s): {{{text}}}")
        return OpTransform(text, d, [make_arg(p, modreg) for p in parts])
    return parse


# ---- registry of classes ----------------------------------------------------------------------

# parse(op, raw_args_or_None, full_text, modreg) -> Transform
ClassParser = Callable[[str, Optional[str], str, Any], Transform]
_CLASSES: dict[str, ClassParser] = {}


def register_class(name: str, parser: ClassParser) -> None:
    """Add a transformation class (core or a module's own)."""
    if name in _CLASSES:
        raise PvError(f"transformation class {name} registered twice")
    _CLASSES[name] = parser


class _CallableTransform(Transform):
    def __init__(self, text: str, fn: Callable[[Any, PvValue], PvValue]) -> None:
        self.text = text
        self.fn = fn

    def apply(self, ctx: "RouteCtx", value: PvValue) -> PvValue:
        return self.fn(ctx, value)


def parse_transform(body: str, modreg: Any = None) -> Transform:
    """`s.substr,1,2` (the text between braces) -> Transform."""
    head, comma, raw = body.partition(",")
    cls, dot, op = head.strip().partition(".")
    if not dot or not op:
        raise PvError(f"invalid transformation {{{body}}}: expected {{class.op[,args]}}")
    parser = _CLASSES.get(cls)
    if parser is not None:
        return parser(op.strip(), raw if comma else None, body, modreg)
    exp = modreg.find_transform(cls) if modreg is not None else None
    if exp is None:
        raise PvError(f"unknown transformation class {{{cls}.{op}}}")
    # Module transformation factories: factory(op, raw_args_or_None) -> Transform | callable
    try:
        tr = exp.factory(op.strip(), raw if comma else None)
    except PvError:
        raise
    except ValueError as e:
        raise PvError(str(e)) from None
    if isinstance(tr, Transform):
        tr.text = tr.text or body
        return tr
    if callable(tr):
        return _CallableTransform(body, tr)
    raise PvError(f"transformation class {cls} returned {type(tr)!r}")


# ---- {s.*} -----------------------------------------------------------------------------------

def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _u(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _substr(s: str, off: int, length: int) -> str:
    """Kamailio TR_S_SUBSTR: length 0 (or past the end) = to the end; negative length is an
    error; a negative offset counts from the end."""
    n = len(s)
    if length < 0:
        raise TrFail("negative length")
    if off >= 0:
        if off >= n:
            raise TrFail("offset out of range")
        if off + length >= n:
            length = 0
        return s[off:] if length == 0 else s[off:off + length]
    back = -off
    if back > n:
        raise TrFail("offset out of range")
    if back < length:
        length = 0
    return s[n - back:] if length == 0 else s[n - back:n - back + length]


_SELECT_ESCAPES = {"\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\s": "", "\\w": " "}


def _select(s: str, idx: int, sep: str) -> str:
    """Kamailio TR_S_SELECT: field IDX (negative from the end) split at one char; "\\s" means
    any whitespace; an index past the fields gives ""."""
    if len(sep) > 1:
        if sep not in _SELECT_ESCAPES:
            raise TrFail(f"invalid select separator {sep!r}")
        sep = _SELECT_ESCAPES[sep]
    if not sep:
        fields = re.split(r"[ \t\r\n]", s)
    else:
        fields = s.split(sep)
    if idx < 0:
        idx += len(fields)
    if not 0 <= idx < len(fields):
        return ""
    return fields[idx]


def _prefixes(s: str, n: int = 0, quoted: bool = False) -> str:
    top = n if 0 < n < len(s) else len(s)
    q = "'" if quoted else ""
    return ",".join(f"{q}{s[:i]}{q}" for i in range(1, top + 1))


def core_hash(s: str, size: int = 0) -> int:
    """Kamailio core_hash() (hash_func.h): the hash of its hash tables; `& (size-1)` if size."""
    data = _b(s)
    # the C code reads `char`, which is signed on the platforms Kamailio targets
    sb = [c - 256 if c > 127 else c for c in data]
    m = 0xFFFFFFFF
    h = 0
    i = 0
    n = len(sb)
    while i <= n - 4:
        v = ((sb[i] << 24) + (sb[i + 1] << 16) + (sb[i + 2] << 8) + sb[i + 3]) & m
        h = (h + (v ^ (v >> 3))) & m
        i += 4
    rest = n - i
    if rest == 3:
        v = ((sb[i] << 16) + (sb[i + 1] << 8) + sb[i + 2]) & m
    elif rest == 2:
        v = ((sb[i] << 8) + sb[i + 1]) & m
    elif rest == 1:
        v = sb[i] & m
    else:
        v = 0
    h = (h + (v ^ (v >> 3))) & m
    h = ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & m
    return h & (size - 1) if size else h


def escape_common(s: str) -> str:
    out = []
    for c in s:
        if c in ("'", '"', "\\"):
            out.append("\\" + c)
        elif c == "\0":
            out.append("\\0")
        else:
            out.append(c)
    return "".join(out)


def unescape_common(s: str) -> str:
    out = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            nxt = s[i + 1]
            out.append("\0" if nxt == "0" else nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


# RFC 3261 §25.1: user = 1*( unreserved / escaped / user-unreserved )
_USER_SAFE = "-_.!~*'()&=+$,;?/"
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
_PARAM_SAFE = "-_.!~*'()[]/:&+$"


def _pct(s: str, safe: str) -> str:
    return urllib.parse.quote(_b(s), safe=safe)


def _unpct(s: str) -> str:
    return urllib.parse.unquote(s, errors="surrogateescape")


def _escape_csv(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _hex_decode(s: str) -> str:
    try:
        return _u(binascii.unhexlify(s.strip()))
    except (binascii.Error, ValueError) as e:
        raise TrFail(str(e)) from None


def _b64enc(alt: bool, pad: bool) -> Callable[[str], str]:
    def enc(s: str) -> str:
        out = (base64.urlsafe_b64encode if alt else base64.b64encode)(_b(s)).decode()
        return out if pad else out.rstrip("=")
    return enc


def _b64dec(alt: bool) -> Callable[[str], str]:
    def dec(s: str) -> str:
        t = s.strip()
        t += "=" * (-len(t) % 4)
        try:
            return _u((base64.urlsafe_b64decode if alt else base64.b64decode)(t))
        except (binascii.Error, ValueError) as e:
            raise TrFail(str(e)) from None
    return dec


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58enc(s: str) -> str:
    data = _b(s)
    num = int.from_bytes(data, "big")
    out = ""
    while num:
        num, r = divmod(num, 58)
        out = _B58[r] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


def _b58dec(s: str) -> str:
    num = 0
    for c in s.strip():
        i = _B58.find(c)
        if i < 0:
            raise TrFail(f"invalid base58 character {c!r}")
        num = num * 58 + i
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    pad = len(s) - len(s.lstrip("1"))
    return _u(b"\0" * pad + body)


def _ftime(v: int, fmt: str) -> str:
    return time.strftime(fmt, time.localtime(v))


# before/after/stripto/count look for the FIRST CHARACTER of their argument (Kamailio).
# Not found: before/rbefore keep the whole value, after/rafter/stripto give "".

def _before(s: str, x: str) -> str:
    i = s.find(x[:1]) if x else -1
    return s if i < 0 else s[:i]


def _after(s: str, x: str) -> str:
    i = s.find(x[:1]) if x else -1
    return "" if i < 0 else s[i + 1:]


def _rbefore(s: str, x: str) -> str:
    i = s.rfind(x[:1]) if x else -1
    return s if i < 0 else s[:i]


def _rafter(s: str, x: str) -> str:
    i = s.rfind(x[:1]) if x else -1
    return "" if i < 0 else s[i + 1:]


def _stripto(s: str, c: str) -> str:
    i = s.find(c[:1]) if c else -1
    return "" if i < 0 else s[i:]


_RM_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}


def _rm(s: str, x: str) -> str:
    """Remove every occurrence of X; X may use \\n \\r \\t \\\\ escapes."""
    if "\\" in x:
        x = re.sub(r"\\(.)", lambda m: _RM_ESCAPES.get(m.group(1), m.group(1)), x)
    return s.replace(x, "") if x else s


def _unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in ('"', "'"):
        return s[1:-1]
    return s


_BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def _unbracket(s: str) -> str:
    if len(s) >= 2 and _BRACKETS.get(s[0]) == s[-1]:
        return s[1:-1]
    return s


def _hash(name: str) -> Callable[[str], str]:
    return lambda s: hashlib.new(name, _b(s)).hexdigest()


_WS = " \t\r\n"

S_OPS: dict[str, Op] = {
    "len": Op(len),
    "int": Op(to_int, input="v"),
    "numeric": Op(lambda s: "".join(c for c in s if "0" <= c <= "9")),
    "md5": Op(_hash("md5")),
    "sha1": Op(_hash("sha1")),
    "sha256": Op(_hash("sha256")),
    "sha384": Op(_hash("sha384")),
    "sha512": Op(_hash("sha512")),
    "corehash": Op(lambda s, n=0: str(core_hash(s, n)), "i", optional=1),
    "tolower": Op(str.lower),
    "toupper": Op(str.upper),
    "substr": Op(_substr, "ii"),
    "select": Op(_select, "is"),
    "strip": Op(lambda s, n: s[n:] if n > 0 else s, "i"),
    "striptail": Op(lambda s, n: (s[:-n] if n < len(s) else "") if n > 0 else s, "i"),
    "stripto": Op(_stripto, "s"),
    "prefixes": Op(_prefixes, "i", optional=1),
    "prefixes.quoted": Op(lambda s, n=0: _prefixes(s, n, True), "i", optional=1),
    "replace": Op(lambda s, a, b: s.replace(a, b) if a else s, "ss"),
    "rm": Op(_rm, "s"),
    "trim": Op(lambda s: s.strip(_WS)),
    "rtrim": Op(lambda s: s.rstrip(_WS)),
    "ltrim": Op(lambda s: s.lstrip(_WS)),
    "rmws": Op(lambda s: "".join(c for c in s if c not in _WS)),
    "unquote": Op(_unquote),
    "unbracket": Op(_unbracket),
    "count": Op(lambda s, c: s.count(c[:1]) if c else 0, "s"),
    "before": Op(_before, "s"),
    "after": Op(_after, "s"),
    "rbefore": Op(_rbefore, "s"),
    "rafter": Op(_rafter, "s"),
    "encode.hexa": Op(lambda s: _b(s).hex()),
    "decode.hexa": Op(_hex_decode),
    "encode.base64": Op(_b64enc(False, True)),
    "decode.base64": Op(_b64dec(False)),
    "encode.base64t": Op(_b64enc(False, False)),
    "decode.base64t": Op(_b64dec(False)),
    "encode.base64url": Op(_b64enc(True, True)),
    "decode.base64url": Op(_b64dec(True)),
    "encode.base64urlt": Op(_b64enc(True, False)),
    "decode.base64urlt": Op(_b64dec(True)),
    "encode.base58": Op(_b58enc),
    "decode.base58": Op(_b58dec),
    "escape.common": Op(escape_common),
    "unescape.common": Op(unescape_common),
    "escape.user": Op(lambda s: _pct(s, _USER_SAFE)),
    "unescape.user": Op(_unpct),
    "escape.param": Op(lambda s: _pct(s, _PARAM_SAFE)),
    "unescape.param": Op(_unpct),
    "escape.csv": Op(_escape_csv),
    "urlencode.param": Op(lambda s: urllib.parse.quote_plus(_b(s), safe="")),
    "urldecode.param": Op(lambda s: urllib.parse.unquote_plus(s, errors="surrogateescape")),
    "ftime": Op(_ftime, "s", input="i"),
}
register_class("s", _table_parser("s", S_OPS))


# ---- {uri.*} ---------------------------------------------------------------------------------

def _puri(s: str) -> Any:
    t = s.strip()
    if not t:
        raise TrFail("empty URI")
    if len(t) > 4 and t[-1] == ";":        # Kamailio tolerates one trailing ';'
        t = t[:-1]
    return parse_uri(t)


def _uri_param(name: str) -> Callable[[str], str]:
    return lambda s: _puri(s).param(name) or ""


def _uri_port(s: str) -> str:
    u = _puri(s)
    return str(u.port) if u.port else ""


def _uri_headers(s: str) -> str:
    return "&".join(f"{k}={v}" if v is not None else k for k, v in _puri(s).headers)


def _uri_tosocket(s: str) -> str:
    u = _puri(s)
    return f"{u.transport or 'udp'}:{u.host}:{u.port or 5060}"


def _uri_simple(s: str, user: bool, port_transport: bool) -> str:
    """Kamailio duri/saor/suri: scheme:[user@]host[:port][;transport=x]."""
    u = _puri(s)
    out = [u.scheme, ":"]
    if user and u.user:
        out += (u.user, "@")
    out.append(u.host)
    if port_transport:
        if u.port:
            out.append(f":{u.port}")
        t = u.param("transport")
        if t:
            out.append(f";transport={t}")
    return "".join(out)


URI_OPS: dict[str, Op] = {
    "user": Op(lambda s: _puri(s).user or ""),
    "host": Op(lambda s: _puri(s).host),
    "domain": Op(lambda s: _puri(s).host),
    "passwd": Op(lambda s: _puri(s).password or ""),
    "port": Op(_uri_port),
    "params": Op(lambda s: format_params(_puri(s).params)[1:]),
    "param": Op(lambda s, name: _puri(s).param(name) or "", "s"),
    "headers": Op(_uri_headers),
    "transport": Op(_uri_param("transport")),
    "ttl": Op(_uri_param("ttl")),
    "uparam": Op(_uri_param("user")),
    "maddr": Op(_uri_param("maddr")),
    "method": Op(_uri_param("method")),
    "lr": Op(_uri_param("lr")),
    "r2": Op(_uri_param("r2")),
    "gr": Op(_uri_param("gr")),
    "scheme": Op(lambda s: _puri(s).scheme),
    "tosocket": Op(_uri_tosocket),
    "duri": Op(lambda s: _uri_simple(s, False, True)),
    "saor": Op(lambda s: _uri_simple(s, True, False)),
    "suri": Op(lambda s: _uri_simple(s, True, True)),
}
register_class("uri", _table_parser("uri", URI_OPS))


# ---- {param.*} -------------------------------------------------------------------------------

def split_params(s: str, sep: str = ";") -> list[tuple[str, Optional[str]]]:
    """"a=1;b;c=\"x;y\"" -> [(a, 1), (b, None), (c, x;y)] (quotes of a quoted value removed)."""
    if len(sep) != 1:
        raise TrFail("parameter separator must be one character")
    if not s:
        raise TrFail("empty parameter list")
    out: list[tuple[str, Optional[str]]] = []
    cur: list[str] = []
    quote = False
    items: list[str] = []
    for c in s:
        if c == '"':
            quote = not quote
        if c == sep and not quote:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    items.append("".join(cur))
    for it in items:
        it = it.strip(_WS)
        if not it:
            continue
        name, eq, val = it.partition("=")
        val = val.strip(_WS)
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        out.append((name.strip(_WS), val if eq else None))
    return out


def _pl_find(s: str, name: str, sep: str) -> Optional[tuple[str, Optional[str]]]:
    low = name.strip().lower()
    for item in split_params(s, sep):
        if item[0].lower() == low:
            return item
    return None


def _pl_value(s: str, name: str, sep: str = ";") -> str:
    """Value of NAME; "" when absent or without value (Kamailio)."""
    item = _pl_find(s, name, sep)
    return (item[1] or "") if item is not None else ""


def _pl_at(items: list[tuple[str, Optional[str]]], idx: int) -> tuple[str, Optional[str]]:
    if idx < 0:
        idx += len(items)
    if not 0 <= idx < len(items):
        return ("", "")
    return items[idx]


PARAM_OPS: dict[str, Op] = {
    "value": Op(_pl_value, "ss", optional=1),
    "valueat": Op(lambda s, i, sep=";": _pl_at(split_params(s, sep), i)[1] or "", "is",
                  optional=1),
    "name": Op(lambda s, i, sep=";": _pl_at(split_params(s, sep), i)[0], "is", optional=1),
    "in": Op(lambda s, name, sep=";": 0 if _pl_find(s, name, sep) is None else 1, "ss",
             optional=1),
    "count": Op(lambda s, sep=";": len(split_params(s, sep)), "s", optional=1),
}
register_class("param", _table_parser("param", PARAM_OPS))


# ---- {nameaddr.*} and {tobody.*} ------------------------------------------------------------

@dataclass(frozen=True)
class _RawNameAddr:
    name: str       # display name as written (quotes kept), "" if none
    uri: str
    length: int     # length of the name-addr up to and including '>'
    params: str     # text after '>' without the leading ';'


def raw_nameaddr(s: str) -> _RawNameAddr:
    """Kamailio parse_nameaddr(): the part before '<' is the name, the URI is inside <>; with
    no '<' the whole text is the URI. Quotes are kept (use {s.unquote})."""
    t = s.strip()
    if not t:
        raise TrFail("empty name-addr")
    i = 0
    n = len(t)
    while i < n and t[i] != "<":
        if t[i] == '"':
            j = i + 1
            while j < n and t[j] != '"':
                j += 2 if t[j] == "\\" else 1
            i = j
        i += 1
    if i >= n:
        uri, _, params = t.partition(";")
        return _RawNameAddr("", uri.strip(), n, params)
    gt = t.find(">", i)
    if gt < 0:
        raise TrFail("missing '>' in name-addr")
    rest = t[gt + 1:].strip()
    return _RawNameAddr(t[:i].strip(), t[i + 1:gt].strip(), gt + 1,
                        rest[1:] if rest.startswith(";") else rest)


def _na(s: str) -> Any:
    """Parsed first name-addr of S (a Contact/Route value may hold a list, as in Kamailio)."""
    t = s.strip()
    try:
        return parse_nameaddr(t)
    except ParseError:
        first = split_commas(t)
        if len(first) < 2:
            raise
        return parse_nameaddr(first[0])


NAMEADDR_OPS: dict[str, Op] = {
    "name": Op(lambda s: raw_nameaddr(s).name),
    "uri": Op(lambda s: raw_nameaddr(s).uri),
    "len": Op(lambda s: raw_nameaddr(s).length),
}
register_class("nameaddr", _table_parser("nameaddr", NAMEADDR_OPS))

TOBODY_OPS: dict[str, Op] = {
    "uri": Op(lambda s: _na(s).uri),
    "display": Op(lambda s: raw_nameaddr(s).name),
    "tag": Op(lambda s: _na(s).tag or ""),
    "user": Op(lambda s: _na(s).parsed_uri.user),
    "host": Op(lambda s: _na(s).parsed_uri.host),
    "params": Op(lambda s: raw_nameaddr(s).params),
}
register_class("tobody", _table_parser("tobody", TOBODY_OPS))


# ---- {line.*} --------------------------------------------------------------------------------

def _lines(s: str) -> list[str]:
    if not s:
        raise TrFail("empty text")
    return s.split("\n")[:-1] if s.endswith("\n") else s.split("\n")


def _cr(line: str) -> str:
    return line[:-1] if line.endswith("\r") else line


def _line_at(s: str, n: int) -> str:
    """Line N (negative from the end); "" when there is no such line."""
    lines = _lines(s)
    if n < 0:
        n += len(lines)
    if not 0 <= n < len(lines):
        return ""
    return _cr(lines[n])


def _line_sw(s: str, prefix: str) -> str:
    """First line starting with PREFIX; "" when none does."""
    for ln in _lines(s):
        if ln.startswith(prefix):
            return _cr(ln)
    return ""


LINE_OPS: dict[str, Op] = {
    "count": Op(lambda s: s.count("\n") + (0 if s.endswith("\n") else 1) if s else 0),
    "at": Op(_line_at, "i"),
    "sw": Op(_line_sw, "s"),
}
register_class("line", _table_parser("line", LINE_OPS))


# ---- {sql.*} ---------------------------------------------------------------------------------

def _sql_val(v: PvValue) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + escape_common(v) + "'"


SQL_OPS: dict[str, Op] = {
    "val": Op(_sql_val, input="v", accepts_null=True),
    "val.int": Op(lambda v: "0" if v is None else _sql_val(v), input="v", accepts_null=True),
    "val.str": Op(lambda v: "''" if v is None else _sql_val(v if isinstance(v, str) else str(v)),
                  input="v", accepts_null=True),
}
register_class("sql", _table_parser("sql", SQL_OPS))


# ---- {urialias.*} ----------------------------------------------------------------------------

_PROTO_BY_ID = {"1": "udp", "2": "tcp", "3": "tls", "4": "sctp", "5": "ws", "6": "wss"}
_ID_BY_PROTO = {v: k for k, v in _PROTO_BY_ID.items()}


def _alias_encode(s: str) -> str:
    u = _puri(s)
    host = u.host[1:-1] if u.host.startswith("[") else u.host
    return f"{host}~{u.port or 5060}~{_ID_BY_PROTO.get(u.transport or 'udp', '1')}"


def _alias_decode(s: str) -> str:
    parts = s.strip().split("~")
    if len(parts) != 3 or parts[2] not in _PROTO_BY_ID:
        raise TrFail("not an ip~port~proto alias")
    host = f"[{parts[0]}]" if ":" in parts[0] else parts[0]
    proto = _PROTO_BY_ID[parts[2]]
    return f"sip:{host}:{parts[1]}" + ("" if proto == "udp" else f";transport={proto}")


URIALIAS_OPS: dict[str, Op] = {"encode": Op(_alias_encode), "decode": Op(_alias_decode)}
register_class("urialias", _table_parser("urialias", URIALIAS_OPS))


# ---- {re.subst,/re/repl/flags} ---------------------------------------------------------------

class SubstTransform(Transform):
    """sed-like substitution: delimiter = first char; flags i (ignore case), g (all)."""

    def __init__(self, text: str, expr: str) -> None:
        self.text = text
        self.rx, self.repl, self.count = parse_subst(expr)

    def apply(self, ctx: "RouteCtx", value: PvValue) -> PvValue:
        s = value if isinstance(value, str) else to_str(value)
        try:
            return self.rx.sub(self.repl, s, count=self.count)
        except (re.error, IndexError) as e:
            if klog.enabled(klog.L_DBG):
                log.debug("transformation {%s} failed: %s", self.text, e)
            return None


def parse_subst(expr: str) -> tuple[re.Pattern[str], str, int]:
    """"/re/repl/flags" -> (compiled regex, Python replacement template, count)."""
    if len(expr) < 3:
        raise PvError(f"invalid substitution {expr!r}: expected /re/repl/flags")
    d = expr[0]
    parts: list[str] = []
    cur: list[str] = []
    i = 1
    while i < len(expr):
        c = expr[i]
        if c == "\\" and i + 1 < len(expr) and expr[i + 1] == d:
            cur.append(d)
            i += 2
            continue
        if c == d and len(parts) < 2:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if len(parts) != 2:
        raise PvError(f"invalid substitution {expr!r}: expected {d}re{d}repl{d}flags")
    flags_text = "".join(cur)
    flags = 0
    count = 1
    for f in flags_text:
        if f == "i":
            flags |= re.IGNORECASE
        elif f == "g":
            count = 0
        elif f == "s":
            pass
        else:
            raise PvError(f"invalid substitution flag {f!r} in {expr!r}")
    try:
        rx = re.compile(parts[0], flags)
    except re.error as e:
        raise PvError(f"invalid regular expression in {expr!r}: {e}") from None
    # \N back-references work the same in Python templates; make "\\" and a lone "\" safe
    repl = re.sub(r"\\(?![0-9\\])", r"\\\\", parts[1])
    return rx, repl, count


def _parse_re(op: str, raw: Optional[str], text: str, modreg: Any) -> Transform:
    if op != "subst":
        raise PvError(f"unknown transformation {{re.{op}}}")
    if raw is None:
        raise PvError("{re.subst} needs an expression: {re.subst,/re/repl/flags}")
    return SubstTransform(text, raw)


register_class("re", _parse_re)
