"""Authorization / Proxy-Authorization credentials parser (RFC 3261 22.4, 25.1; RFC 2617).

Runs in: workers (auth module: www_authorize, proxy_authorize, consume_credentials), tests.
Touches no shared state.

ABNF:
  credentials = ("Digest" LWS digest-response) / other-response
  digest-response = dig-resp *(COMMA dig-resp) ; auth-param = auth-param-name EQUAL ( token / quoted-string )
"""
from __future__ import annotations

import re

from sipcore.errors import ParseError
from sipcore.msg.params import TOKEN_RE, read_quoted, skip_ws, unquote

# values of unquoted auth-params: token, plus the LHEX/URI chars seen in practice (nc=00000001,
# uri=sip:host without quotes from broken UAs)
_VALUE_RE = re.compile(r"[^\s,\"]+")
_FIELDS = ("username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "opaque",
           "qop", "nc")


class DigestCredentials:
    """Parsed credentials; `params` holds every auth-param (lower-case names, unquoted values)."""

    __slots__ = ("scheme", "params") + _FIELDS

    # the _FIELDS, set in __init__ (declared for type checkers; absent params are None)
    username: str | None
    realm: str | None
    nonce: str | None
    uri: str | None
    response: str | None
    algorithm: str | None
    cnonce: str | None
    opaque: str | None
    qop: str | None
    nc: str | None

    def __init__(self, scheme: str, params: dict[str, str]) -> None:
        self.scheme = scheme
        self.params = params
        for f in _FIELDS:
            setattr(self, f, params.get(f))

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"

    def __repr__(self) -> str:
        return f"DigestCredentials({self.scheme!r}, {self.params!r})"


def parse_digest(s: str) -> DigestCredentials:
    """Parse one credentials value (`Digest username="a", realm="b", ...`)."""
    n = len(s)
    i = skip_ws(s, 0)
    m = TOKEN_RE.match(s, i)
    if m is None:
        raise ParseError("missing auth scheme", i)
    scheme = m.group()
    i = skip_ws(s, m.end())
    params: dict[str, str] = {}
    if i < n and m.end() == i:
        raise ParseError("missing LWS after auth scheme", i)
    while i < n:
        pm = TOKEN_RE.match(s, i)
        if pm is None:
            raise ParseError("malformed auth-param name", i)
        name = pm.group().lower()
        i = skip_ws(s, pm.end())
        if i >= n or s[i] != "=":
            raise ParseError("auth-param without '='", i)
        i = skip_ws(s, i + 1)
        if i < n and s[i] == '"':
            j = read_quoted(s, i)
            value = unquote(s[i:j])
        else:
            vm = _VALUE_RE.match(s, i)
            if vm is None:
                raise ParseError("missing auth-param value", i)
            j = vm.end()
            value = vm.group()
        if name in params:
            raise ParseError(f"duplicate auth-param {name}", i)
        params[name] = value
        i = skip_ws(s, j)
        if i < n:
            if s[i] != ",":
                raise ParseError("junk in credentials", i)
            i = skip_ws(s, i + 1)
            if i >= n:
                raise ParseError("trailing ',' in credentials", i)
    return DigestCredentials(scheme, params)
