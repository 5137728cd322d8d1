"""Via header body parser (RFC 3261 20.42, 25.1; RFC 3581 rport; RFC 5118 IPv6).

Runs in: workers (reply routing, transaction matching, received/rport), timer (retransmitted
replies), tests. Touches no shared state.

ABNF:
  Via = ( "Via" / "v" ) HCOLON via-parm *(COMMA via-parm)
  via-parm = sent-protocol LWS sent-by *( SEMI via-params )
  sent-protocol = protocol-name SLASH protocol-version SLASH transport   ; SLASH = SWS "/" SWS
  sent-by = host [ COLON port ]
"""
from __future__ import annotations

import re

from sipcore.errors import ParseError
from sipcore.msg.params import TOKEN_RE, Params, format_params, param_get, parse_params_at, skip_ws
from sipcore.msg.uri import _HOSTNAME_RE, parse_hostport

_HOST_RE = re.compile(r"\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9\-_.]+")
_PORT_RE = re.compile(r"[0-9]+")


_WELL_KNOWN = frozenset(("branch", "received", "rport", "maddr", "ttl"))


class Via:
    """One Via value (a header line may carry several)."""

    __slots__ = ("protocol", "version", "proto", "transport", "host", "port", "params",
                 "branch", "received", "rport", "maddr", "ttl")

    def __init__(self, protocol: str, version: str, proto: str, host: str, port: int | None,
                 params: Params) -> None:
        self.protocol = protocol
        self.version = version
        self.proto = proto.upper()
        self.transport = proto.lower()
        self.host = host
        self.port = port
        self.params = params
        # one pass: the first of each well-known parameter ("" for a valueless one)
        known: dict[str, str] = {}
        for k, v in params:
            lk = k.lower()
            if lk in _WELL_KNOWN and lk not in known:
                known[lk] = "" if v is None else v
        get = known.get
        self.branch, self.received, self.rport, self.maddr, self.ttl = \
            get("branch"), get("received"), get("rport"), get("maddr"), get("ttl")

    def param(self, name: str) -> str | None:
        return param_get(self.params, name)

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"SIP/2.0/{self.proto} {self.sent_by}{format_params(self.params)}"

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"


def _token(s: str, i: int, what: str) -> tuple[str, int]:
    m = TOKEN_RE.match(s, i)
    if m is None:
        raise ParseError(f"malformed Via {what}", i)
    return m.group(), m.end()


def _slash(s: str, i: int) -> int:
    i = skip_ws(s, i)
    if i >= len(s) or s[i] != "/":
        raise ParseError("malformed Via sent-protocol", i)
    return skip_ws(s, i + 1)


# Fast path for the overwhelmingly common shape: one via-parm, no LWS inside, no quoted or
# valueless-where-forbidden params: "SIP/2.0/UDP host[:port];name[=value]...". Anything else
# (several values, LWS, quotes, IPv6 with odd forms) goes through the full parser below, which
# gives the same result for these inputs.
_FAST_RE = re.compile(
    r"SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9\-_.]+|\[[0-9A-Fa-f:.]*\])(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~:\[\]/@]+)?)*)")
_FAST_PARAM_RE = re.compile(r";([^;=]+)(?:=([^;]*))?")
_NEED_VALUE = frozenset(("branch", "received", "maddr", "ttl"))


def _parse_via_fast(s: str) -> list[Via] | None:
    if "," in s:                         # several via-parms in one header line (SIPp does it)
        if '"' in s:
            return None
        out: list[Via] = []
        for part in s.split(","):
            one = _parse_via_fast_one(part.strip(" \t"))
            if one is None:
                return None
            out.append(one)
        return out
    one = _parse_via_fast_one(s)
    return None if one is None else [one]


def _parse_via_fast_one(s: str) -> Via | None:
    m = _FAST_RE.fullmatch(s)
    if m is None:
        return None
    proto, host, port_s, ptext = m.groups()
    if port_s is not None:
        port: int | None = int(port_s)
        if port > 65535:  # type: ignore[operator]
            return None
    else:
        port = None
    if host[0] == "[":
        return None                      # IPv6 reference: full checks in the slow path
    if _HOSTNAME_RE.fullmatch(host) is None:
        return None
    # _FAST_RE guarantees a non-empty value after "=", so "" means "no value"
    plist: Params = [(k, v or None) for k, v in _FAST_PARAM_RE.findall(ptext)] if ptext else []
    for k, v in plist:
        if v is None and k.lower() in _NEED_VALUE:
            return None
    return Via("SIP", "2.0", proto, host, port, plist)


def parse_via(s: str) -> list[Via]:
    """Parse a Via header value into its comma-separated via-parms."""
    fast = _parse_via_fast(s)
    if fast is not None:
        return fast
    return _parse_via_full(s)


def _parse_via_full(s: str) -> list[Via]:
    out: list[Via] = []
    n = len(s)
    i = skip_ws(s, 0)
    while True:
        protocol, i = _token(s, i, "protocol name")
        i = _slash(s, i)
        version, i = _token(s, i, "protocol version")
        i = _slash(s, i)
        proto, i = _token(s, i, "transport")
        if protocol.upper() != "SIP" or version != "2.0":
            raise ParseError("unsupported Via protocol", i)
        j = skip_ws(s, i)
        if j == i:
            raise ParseError("missing LWS before Via sent-by", i)
        m = _HOST_RE.match(s, j)
        if m is None:
            raise ParseError("malformed Via sent-by", j)
        hostport = m.group()
        i = skip_ws(s, m.end())
        if i < n and s[i] == ":":
            i = skip_ws(s, i + 1)
            pm = _PORT_RE.match(s, i)
            if pm is None:
                raise ParseError("malformed Via port", i)
            hostport += ":" + pm.group()
            i = pm.end()
        host, port = parse_hostport(hostport, j)
        params, i = parse_params_at(s, i)
        for k, v in params:
            if k.lower() in ("branch", "received", "maddr", "ttl") and v is None:
                raise ParseError(f"Via parameter {k} without value", i)
        out.append(Via(protocol, version, proto, host, port, params))
        i = skip_ws(s, i)
        if i >= n:
            return out
        if s[i] != ",":
            raise ParseError("junk in Via", i)
        i = skip_ws(s, i + 1)
