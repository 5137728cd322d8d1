"""Generic SIP lexical helpers: `;name=value` parameter lists, tokens, quoted strings, comma splits.

Runs in: every process that parses or builds SIP (workers, timer, tests). Touches no shared state.
All functions work on header values as str (as decoded by sipcore.msg.headers.Header, folding
already replaced by one SP) and raise ParseError with an offset into that string.

ABNF (RFC 3261 25.1):
  token         = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
  quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
  generic-param = token [ EQUAL gen-value ] ; gen-value = token / host / quoted-string
  SEMI = SWS ";" SWS ; EQUAL = SWS "=" SWS ; COMMA = SWS "," SWS
"""
from __future__ import annotations

import re

from sipcore.errors import ParseError

TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# a gen-value that is not quoted: token / host (incl. IPv6 reference or bare IPv6 as seen in the
# wild in received=, RFC 5118 4.5)
_VALUE_RE = re.compile(r"\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9\-.!%*_+`'~:\[\]/@]+")
_WS = " \t"

Params = list[tuple[str, "str | None"]]


def skip_ws(s: str, i: int) -> int:
    """Index of the first non SP/HT character at or after i."""
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    return i


def is_token(s: str) -> bool:
    return bool(s) and TOKEN_RE.fullmatch(s) is not None


def read_quoted(s: str, i: int) -> int:
    """s[i] is a DQUOTE: return the index after the closing DQUOTE (quoted-pair aware)."""
    n = len(s)
    j = i + 1
    while j < n:
        c = s[j]
        if c == '"':
            return j + 1
        if c == "\\":
            j += 2
            continue
        j += 1
    raise ParseError("unterminated quoted string", i)


def unquote(q: str) -> str:
    """Strip the DQUOTEs of a quoted-string and resolve quoted-pairs."""
    if len(q) >= 2 and q[0] == '"' and q[-1] == '"':
        q = q[1:-1]
        if "\\" in q:
            q = re.sub(r"\\(.)", r"\1", q, flags=re.S)
    return q


def quote(s: str) -> str:
    """Render s as a quoted-string (escaping DQUOTE and backslash)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params_at(s: str, i: int) -> tuple[Params, int]:
    """Parse `*(SEMI generic-param)` starting at s[i] (after optional SWS).

    Stops before the first character that does not continue the list (",", ">", end...).
    Returns (params, index). Names keep their case; values keep their quotes.
    """
    params: Params = []
    n = len(s)
    i = skip_ws(s, i)
    while i < n and s[i] == ";":
        i = skip_ws(s, i + 1)
        m = TOKEN_RE.match(s, i)
        if m is None:
            raise ParseError("empty or malformed parameter name", i)
        name = m.group()
        i = skip_ws(s, m.end())
        if i < n and s[i] == "=":
            i = skip_ws(s, i + 1)
            if i < n and s[i] == '"':
                j = read_quoted(s, i)
                value: str | None = s[i:j]
                i = j
            else:
                mv = _VALUE_RE.match(s, i)
                if mv is None:
                    raise ParseError(f"missing value of parameter {name!r}", i)
                value = mv.group()
                i = mv.end()
            i = skip_ws(s, i)
        else:
            value = None
        params.append((name, value))
    return params, i


def parse_params(s: str) -> Params:
    """Parse a whole `;a=1;b` (leading ';' optional) string; raise on trailing junk."""
    t = s.strip(_WS)
    if t and t[0] != ";":
        t = ";" + t
    params, i = parse_params_at(t, 0)
    if i != len(t):
        raise ParseError("junk after parameters", i)
    return params


def param_get(params: Params, name: str) -> str | None:
    """Value of the first parameter called name (case-insensitive); "" for a valueless one."""
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return "" if v is None else v
    return None


def format_params(params: Params) -> str:
    """Render params as `;a=1;b`."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def split_commas(s: str) -> list[str]:
    """Split a header value at top-level commas (not inside quotes or <>), trimming SP/HT.

    Empty elements are dropped (RFC 7230-style "#rule" tolerance for `a, ,b`); callers that must
    refuse empty elements (Via, Contact) use their own cursor parsers.
    """
    if "," not in s:
        t = s.strip(_WS)
        return [t] if t else []
    out: list[str] = []
    n = len(s)
    start = 0
    i = 0
    in_angle = False
    while i < n:
        c = s[i]
        if c == '"':
            try:
                i = read_quoted(s, i)
            except ParseError:
                i = n
            continue
        if c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == "," and not in_angle:
            t = s[start:i].strip(_WS)
            if t:
                out.append(t)
            start = i + 1
        i += 1
    t = s[start:].strip(_WS)
    if t:
        out.append(t)
    return out
