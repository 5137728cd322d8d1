"""Contact URI encodings of siputils: encode_contact/decode_contact (user-part encoding with a
separator) and contact_param_encode/decode (the whole URI as Base64URL in a parameter).

Runs in: SIP workers. Shared state: none. Pure functions over URI text.
"""
from __future__ import annotations

import base64
from typing import Optional

from sipcore.errors import ParseError
from sipcore.msg import parse_uri


def encode_uri(uri: str, prefix: str, public: str, sep: str) -> str:
    """sip:user@host:port;transport=t;x -> sip:PREFIX*user*host*port*t@PUBLIC;x
    (Kamailio contact_ops.c encode_uri; the other params follow the public host)."""
    u = parse_uri(uri)
    if not u.is_sip:
        raise ParseError(f"cannot encode non-SIP URI {uri}")
    transport = u.param("transport") or ""
    rest = "".join(f";{n}" if v is None else f";{n}={v}"
                   for n, v in u.params if n.lower() != "transport")
    if u.headers:
        rest += "?" + "&".join(f"{n}={v}" for n, v in u.headers)
    fields = [prefix, u.user, u.host, str(u.port) if u.port else "", transport]
    return f"{u.scheme}:{sep.join(fields)}@{public}{rest}"


def decode_uri(uri: str, sep: str) -> Optional[str]:
    """Inverse of encode_uri; None when URI does not carry an encoded contact."""
    u = parse_uri(uri)
    fields = u.user.split(sep) if u.user else []
    if len(fields) != 5:
        return None
    _prefix, user, host, port, transport = fields
    if not host:
        return None
    out = f"{u.scheme}:"
    if user:
        out += user + "@"
    out += host
    if port:
        out += ":" + port
    if transport:
        out += ";transport=" + transport
    out += "".join(f";{n}" if v is None else f";{n}={v}" for n, v in u.params)
    if u.headers:
        out += "?" + "&".join(f"{n}={v}" for n, v in u.headers)
    return out


def b64url_encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> str:
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text + pad).decode("utf-8")


def param_encode(uri: str, pname: str, saddr: str) -> str:
    """SADDR;PNAME=<Base64URL(URI)> (Kamailio contact_param_encode)."""
    return f"{saddr};{pname}={b64url_encode(uri)}"


def param_decode(uri: str, pname: str) -> Optional[str]:
    """The URI carried in parameter PNAME of URI, or None."""
    u = parse_uri(uri)
    v = u.param(pname)
    if not v:
        return None
    return b64url_decode(v)


def param_remove(uri: str, pname: str) -> Optional[str]:
    """URI without parameter PNAME, or None when it has none."""
    u = parse_uri(uri)
    if u.param(pname) is None:
        return None
    from sipcore.route.ruri import UriParts

    p = UriParts.from_uri(u)
    p.params = [(n, v) for n, v in p.params if n.lower() != pname.lower()]
    return p.text()
