"""R-URI rewriting: the core's rewrite*/set*, prefix, strip, strip_tail, userphone.

Runs in: SIP workers. Pure functions from a parsed URI plus the new part to the new URI text
(Kamailio action.c SET_*_T, which rebuilds the URI from its parsed parts); the caller stores
the result with `msg.set_ruri()`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from sipcore.errors import ParseError


@dataclass(slots=True)
class UriParts:
    """The pieces of a SIP URI that the rewrite functions replace one at a time."""

    scheme: str
    user: str
    password: Optional[str]
    host: str
    port: str                                   # "" when absent (kept as text, like Kamailio)
    params: list[tuple[str, Optional[str]]]
    headers: str                                # "" or "a=b&c=d" (without "?")

    @classmethod
    def from_uri(cls, uri: Any) -> "UriParts":
        """From a `sipcore.msg.SipURI`."""
        return cls(scheme=uri.scheme or "sip", user=uri.user or "",
                   password=uri.password if uri.password else None,
                   host=uri.host or "", port=str(uri.port) if uri.port else "",
                   params=list(uri.params or ()), headers=_headers_text(uri.headers))

    def text(self) -> str:
        out = [self.scheme, ":"]
        if self.user or self.password is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host)
        if self.port:
            out.append(":" + self.port)
        out.append(params_text(self.params))
        if self.headers:
            out.append("?" + self.headers)
        return "".join(out)


def params_text(params: Iterable[tuple[str, Optional[str]]]) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def _headers_text(headers: Any) -> str:
    if not headers:
        return ""
    if isinstance(headers, str):
        return headers.lstrip("?")
    parts = []
    for h in headers:
        if isinstance(h, tuple):
            name, value = h
            parts.append(name if value is None else f"{name}={value}")
        else:
            parts.append(str(h))
    return "&".join(parts)


def split_hostport(text: str) -> tuple[str, str]:
    """"host:port" -> (host, port); IPv6 "[::1]:5060" kept with brackets; port "" if none."""
    t = text.strip()
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise ParseError(f"bad IPv6 reference \"{text}\"")
        host, rest = t[: end + 1], t[end + 1:]
        if rest and not rest.startswith(":"):
            raise ParseError(f"bad host:port \"{text}\"")
        return host, rest[1:]
    if t.count(":") > 1:          # bare IPv6 address without port
        return f"[{t}]", ""
    host, _, port = t.partition(":")
    return host, port


# ---- the rewrite operations (names follow Kamailio's action types) ---------------------------

def set_user(p: UriParts, user: str) -> None:
    """SET_USER_T: replace the user, keep the password (empty user + no password drops '@')."""
    p.user = user


def set_userpass(p: UriParts, userpass: str) -> None:
    """SET_USERPASS_T: "user:pass" replaces both (the old password is dropped)."""
    p.user = userpass
    p.password = None


def set_host(p: UriParts, host: str) -> None:
    p.host = host


def set_hostport(p: UriParts, hostport: str) -> None:
    """SET_HOSTPORT_T: host and port both from the new value ("h" alone removes the port)."""
    p.host, p.port = split_hostport(hostport)


def set_hostporttrans(p: UriParts, value: str) -> None:
    """SET_HOSTPORTTRANS_T: "h[:p][;transport=x]" - host, port and transport all replaced.

    Kamailio copies the new text in place of host:port and leaves out the old transport param.
    """
    hostport, sep, rest = value.partition(";")
    set_hostport(p, hostport)
    new_params = [_split_param(x) for x in rest.split(";") if x] if sep else []
    p.params = new_params + [(n, v) for n, v in p.params if n.lower() != "transport"]


def set_port(p: UriParts, port: str) -> None:
    """SET_PORT_T: replace the port; an empty value removes it."""
    p.port = port.strip()


def prefix(p: UriParts, pfx: str) -> None:
    p.user = pfx + p.user


def strip(p: UriParts, n: int) -> None:
    """STRIP_T: remove the first N characters of the user (all of it if N is too long)."""
    p.user = p.user[n:] if n < len(p.user) else ""


def strip_tail(p: UriParts, n: int) -> None:
    p.user = p.user[:-n] if 0 < n < len(p.user) else ("" if n >= len(p.user) else p.user)


def userphone(p: UriParts) -> None:
    """Add ;user=phone unless a user= parameter is already there."""
    if not any(n.lower() == "user" for n, _ in p.params):
        p.params.append(("user", "phone"))


def _split_param(text: str) -> tuple[str, Optional[str]]:
    name, eq, value = text.partition("=")
    return (name.strip(), value.strip() if eq else None)
