"""name-addr / addr-spec parser for From, To, Contact, Route, Record-Route, P-Asserted-Identity...

Runs in: workers, timer, tests. Touches no shared state.

ABNF (RFC 3261 25.1):
  name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
  display-name = *(token LWS) / quoted-string
  from-spec    = ( name-addr / addr-spec ) *( SEMI from-param )
  LAQUOT = SWS "<" ; RAQUOT = ">" SWS
In the addr-spec form the URI ends at the first ";" , "," or LWS: what follows are header
parameters (RFC 3261 20: a URI with ",", "?" or ";" MUST be enclosed in <>).
"""
from __future__ import annotations

import re

from sipcore.errors import ParseError
from sipcore.msg.params import (
    Params, format_params, param_get, parse_params_at, quote, read_quoted, skip_ws, unquote,
)
from sipcore.msg.uri import SipURI, parse_uri

_DISPLAY_TOKENS_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`'~]+)*")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:")
_ADDR_SPEC_END = frozenset(";, \t")


class NameAddr:
    """One name-addr value: display name (unquoted), URI text, header parameters."""

    __slots__ = ("display", "uri", "params", "tag", "_parsed_uri", "angle")

    def __init__(self, display: str, uri: str, params: Params, angle: bool = True) -> None:
        self.display = display
        self.uri = uri
        self.params = params
        self.tag = param_get(params, "tag")
        self.angle = angle
        self._parsed_uri: SipURI | None = None

    def param(self, name: str) -> str | None:
        return param_get(self.params, name)

    @property
    def parsed_uri(self) -> SipURI:
        if self._parsed_uri is None:
            self._parsed_uri = parse_uri(self.uri)
        return self._parsed_uri

    @property
    def expires(self) -> str | None:
        return self.param("expires")

    @property
    def q(self) -> str | None:
        return self.param("q")

    def __str__(self) -> str:
        disp = quote(self.display) + " " if self.display else ""
        return f"{disp}<{self.uri}>{format_params(self.params)}"

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"


def _parse_one(s: str, i: int) -> tuple[NameAddr, int]:
    n = len(s)
    i = skip_ws(s, i)
    if i >= n:
        raise ParseError("empty name-addr", i)
    display = ""
    angle = True
    if s[i] == '"':
        j = read_quoted(s, i)
        display = unquote(s[i:j])
        i = skip_ws(s, j)
        if i >= n or s[i] != "<":
            raise ParseError("quoted display name without <URI>", i)
    elif s[i] != "<":
        m = _DISPLAY_TOKENS_RE.match(s, i)
        j = skip_ws(s, m.end()) if m is not None else i
        if m is not None and j < n and s[j] == "<":
            display = m.group()
            i = j
        else:
            angle = False
    if angle:
        close = s.find(">", i + 1)
        if close < 0:
            raise ParseError("missing '>' in name-addr", i)
        uri = s[i + 1 : close]
        if not uri or _SCHEME_RE.match(uri) is None or any(c in uri for c in ' \t<"'):
            raise ParseError("malformed URI in name-addr", i + 1)
        i = close + 1
    else:
        j = i
        while j < n and s[j] not in _ADDR_SPEC_END:
            j += 1
        uri = s[i:j]
        if _SCHEME_RE.match(uri) is None or any(c in uri for c in '<>"?'):
            raise ParseError("malformed addr-spec", i)
        i = j
    params, i = parse_params_at(s, i)
    return NameAddr(display, uri, params, angle), i


def parse_nameaddr(s: str) -> NameAddr:
    """Parse exactly one name-addr/addr-spec with parameters (From, To, Refer-To...)."""
    na, i = _parse_one(s, 0)
    i = skip_ws(s, i)
    if i != len(s):
        raise ParseError("junk after name-addr", i)
    return na


def parse_nameaddr_list(s: str) -> list[NameAddr]:
    """Parse a comma-separated list of name-addrs (Contact, Route, Record-Route, Path)."""
    out: list[NameAddr] = []
    n = len(s)
    i = 0
    while True:
        na, i = _parse_one(s, i)
        out.append(na)
        i = skip_ws(s, i)
        if i >= n:
            return out
        if s[i] != ",":
            raise ParseError("junk in name-addr list", i)
        i += 1


class ContactList:
    """Contact header values: `*` or a list of name-addrs."""

    __slots__ = ("star", "contacts")

    def __init__(self, star: bool, contacts: list[NameAddr]) -> None:
        self.star = star
        self.contacts = contacts

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.contacts)

    def __len__(self) -> int:
        return len(self.contacts)

    def __repr__(self) -> str:
        return "ContactList(*)" if self.star else f"ContactList({self.contacts!r})"


def parse_contacts(s: str) -> ContactList:
    """Parse a Contact value: `*` (RFC 3261 10.2.2 remove-all) or name-addr list."""
    if s.strip(" \t") == "*":
        return ContactList(True, [])
    return ContactList(False, parse_nameaddr_list(s))
