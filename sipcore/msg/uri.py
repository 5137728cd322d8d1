"""SIP/SIPS/TEL URI parsing, formatting and comparison (RFC 3261 19.1, RFC 3966, RFC 5118).

Runs in: every process that looks at URIs (workers: R-URI, To/From/Contact, registrar lookups;
tests). Touches no shared state. parse_uri is cached per string (an LRU of immutable results),
because the same few URIs are parsed over and over on a busy proxy.

ABNF (RFC 3261 25.1):
  SIP-URI    = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
  userinfo   = ( user / telephone-subscriber ) [ ":" password ] "@"
  hostport   = host [ ":" port ] ; host = hostname / IPv4address / IPv6reference
  uri-parameters = *( ";" uri-parameter ) ; headers = "?" header *( "&" header )
Other schemes (tel:, urn:, unknown ones) are kept opaque: scheme + `opaque` text, user = the
number for tel: (params split off), host "".
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from sipcore.errors import ParseError

# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# chars that never occur unescaped in a URI (whitespace, CTL, delimiters of name-addr)
_BAD_CHARS_RE = re.compile(r'[\x00-\x20\x7f<>"]')
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9_])?\.?|[A-Za-z0-9]")
_PNAME_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]+")
_PVALUE_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]*")
_PORT_MAX = 65535


class SipURI:
    """A parsed URI. Immutable by convention (instances are shared through the parse cache)."""

    __slots__ = ("scheme", "user", "password", "host", "port", "params", "headers", "raw", "opaque")

    def __init__(
        self,
        scheme: str,
        user: str = "",
        password: str | None = None,
        host: str = "",
        port: int | None = None,
        params: list[tuple[str, str | None]] | None = None,
        headers: list[tuple[str, str]] | None = None,
        raw: str = "",
        opaque: str = "",
    ) -> None:
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = params if params is not None else []
        self.headers = headers if headers is not None else []
        self.raw = raw
        self.opaque = opaque

    # -- accessors -------------------------------------------------------------------------
    def param(self, name: str) -> str | None:
        """Value of URI parameter `name` (case-insensitive); "" if present without value."""
        lname = name.lower()
        for k, v in self.params:
            if k.lower() == lname:
                return "" if v is None else v
        return None

    @property
    def host_port(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def transport(self) -> str:
        t = self.param("transport")
        return t.lower() if t else ""

    @property
    def user_param(self) -> str:
        return self.param("user") or ""

    @property
    def is_sip(self) -> bool:
        return self.scheme in ("sip", "sips")

    def __str__(self) -> str:
        if not self.is_sip:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.user:
            out.append(self.user)
            if self.password is not None:
                out += (":", self.password)
            out.append("@")
        out.append(self.host_port)
        for k, v in self.params:
            out.append(f";{k}" if v is None else f";{k}={v}")
        if self.headers:
            out.append("?" + "&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(out)

    def __repr__(self) -> str:
        return f"SipURI({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipURI):
            return NotImplemented
        return uri_equal(self, other)

    def __hash__(self) -> int:
        return hash((self.scheme, _unescape(self.user), self.host.lower(), self.port))


def _unescape(s: str) -> str:
    if "%" not in s:
        return s
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), s)


def _check_ipv6_ref(ref: str, off: int) -> None:
    try:
        ipaddress.IPv6Address(ref[1:-1])
    except ValueError:
        raise ParseError("malformed IPv6 reference", off) from None


def parse_hostport(s: str, off: int = 0) -> tuple[str, int | None]:
    """Parse `host[:port]`; IPv6 references keep their brackets."""
    if s.startswith("["):
        close = s.find("]")
        if close < 0:
            raise ParseError("unterminated IPv6 reference", off)
        host = s[: close + 1]
        _check_ipv6_ref(host, off)
        rest = s[close + 1 :]
        if rest and rest[0] != ":":
            raise ParseError("junk after IPv6 reference", off + close + 1)
        port_s = rest[1:] if rest else None
    else:
        host, sep, port_s = s.partition(":")
        if not sep:
            port_s = None
        if not host or _HOSTNAME_RE.fullmatch(host) is None:
            raise ParseError("malformed host", off)
    port = None
    if port_s is not None:
        if not port_s.isdigit() or len(port_s) > 5 or int(port_s) > _PORT_MAX:
            raise ParseError("malformed port", off + len(host) + 1)
        port = int(port_s)
    return host, port


def _parse_uri_params(s: str, off: int) -> list[tuple[str, str | None]]:
    params: list[tuple[str, str | None]] = []
    pos = off
    for item in s.split(";"):
        name, eq, value = item.partition("=")
        if _PNAME_RE.fullmatch(name) is None:
            raise ParseError("empty or malformed URI parameter", pos)
        if eq:
            if _PVALUE_RE.fullmatch(value) is None:
                raise ParseError("malformed URI parameter value", pos)
            params.append((name, value))
        else:
            params.append((name, None))
        pos += len(item) + 1
    return params


@lru_cache(maxsize=4096)
def parse_uri(s: str) -> SipURI:
    """Parse a URI; raise ParseError (status 400) when malformed."""
    if not s:
        raise ParseError("empty URI", 0)
    m = _SCHEME_RE.match(s)
    if m is None or m.end() >= len(s) or s[m.end()] != ":":
        raise ParseError("URI without scheme", 0)
    bad = _BAD_CHARS_RE.search(s)
    if bad is not None:
        raise ParseError("forbidden character in URI", bad.start())
    if _BAD_ESCAPE_RE.search(s) is not None:
        raise ParseError("malformed %-escape in URI", _BAD_ESCAPE_RE.search(s).start())  # type: ignore[union-attr]
    scheme = m.group().lower()
    start = m.end() + 1
    rest = s[start:]
    if scheme not in ("sip", "sips"):
        if not rest:
            raise ParseError("empty URI after scheme", start)
        if scheme in ("tel", "tels"):
            number, _sep, ptext = rest.partition(";")
            if not number:
                raise ParseError("empty telephone-subscriber", start)
            params = _parse_uri_params(ptext, start + len(number) + 1) if _sep else []
            return SipURI(scheme, user=number, params=params, raw=s, opaque=rest)
        return SipURI(scheme, raw=s, opaque=rest)

    user = ""
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo = rest[:at]
        user, sep, pw = userinfo.partition(":")
        if sep:
            password = pw
        if not user:
            raise ParseError("empty user in URI", start)
        hp_start = at + 1
    else:
        hp_start = 0
    # hostport ends at the first ";" or "?" after it ("[...]" cannot contain either)
    rest2 = rest[hp_start:]
    end = len(rest2)
    for ch in ";?":
        k = rest2.find(ch)
        if 0 <= k < end:
            end = k
    host, port = parse_hostport(rest2[:end], start + hp_start)
    tail = rest2[end:]
    params: list[tuple[str, str | None]] = []
    headers: list[tuple[str, str]] = []
    if tail:
        ptext, qm, htext = tail.partition("?")
        if ptext:
            params = _parse_uri_params(ptext[1:], start + hp_start + end + 1)
        if qm:
            for item in htext.split("&"):
                hname, eq, hvalue = item.partition("=")
                if not hname or not eq:
                    raise ParseError("malformed URI header", start + hp_start + end)
                headers.append((hname, hvalue))
    return SipURI(scheme, user, password, host, port, params, headers, raw=s, opaque=rest)


def uri_equal(a: SipURI, b: SipURI) -> bool:
    """RFC 3261 19.1.4 comparison (escapes resolved, host/scheme case-insensitive, user case
    sensitive; user/ttl/method/maddr/transport must match when present in either; other params
    only when present in both; headers must match)."""
    if a.scheme != b.scheme:
        return False
    if not a.is_sip:
        return a.opaque == b.opaque if a.scheme not in ("tel", "tels") else (
            _unescape(a.user) == _unescape(b.user)
        )
    if _unescape(a.user) != _unescape(b.user) or (a.password or "") != (b.password or ""):
        return False
    if a.host.lower() != b.host.lower() or a.port != b.port:
        return False
    pa = {k.lower(): (v or "") for k, v in a.params}
    pb = {k.lower(): (v or "") for k, v in b.params}
    for k in ("user", "ttl", "method", "maddr", "transport"):
        if (k in pa) != (k in pb):
            return False
    for k in pa.keys() & pb.keys():
        if _unescape(pa[k]).lower() != _unescape(pb[k]).lower():
            return False
    ha = {k.lower(): _unescape(v) for k, v in a.headers}
    hb = {k.lower(): _unescape(v) for k, v in b.headers}
    return ha == hb
