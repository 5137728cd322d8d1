"""TLS pseudo-variables ($tls_version, $tls_peer_subject_cn, ...) of the tls module.

Runs in: TCP workers, while routing a message received over TLS (the connection is owned by
that process, so its ssl object is at hand). Shared state: none. Elsewhere (a UDP worker
routing a reply, the timer) there is no TLS connection and every PV is $null.

Peer certificate fields come from ssl.SSLSocket.getpeercert(), which Python fills only for a
verified certificate (verify_certificate / require_certificate on); unverified peers give
$null for them and 0 for $tls_peer_verified.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sipcore.pv.spec import FuncPv, PvValue


def tls_socket(ctx: Any) -> Any:
    """The ssl socket the current message came on, or None."""
    if ctx.rcv.proto != "tls":
        return None
    net = ctx.core.stream
    if net is None or net.worker is None:
        return None
    conn = net.worker.conns.get(ctx.rcv.conn_id)
    return None if conn is None else conn.sock


def _name_field(name: Any, key: str) -> str | None:
    for rdn in name or ():
        for k, v in rdn:
            if k == key:
                return v
    return None


def _name_text(name: Any) -> str | None:
    if not name:
        return None
    return ",".join(f"{k}={v}" for rdn in name for k, v in rdn)


def _peer(ctx: Any) -> dict:
    s = tls_socket(ctx)
    if s is None:
        return {}
    try:
        return s.getpeercert() or {}
    except ValueError:                  # handshake not complete
        return {}


def _cipher(ctx: Any, i: int) -> PvValue:
    s = tls_socket(ctx)
    c = s.cipher() if s is not None else None
    return None if c is None else c[i]


GETTERS: dict[str, tuple[Callable[[Any], PvValue], str]] = {
    "tls_version": (lambda ctx: (s := tls_socket(ctx)) and s.version(),
                    "TLS protocol version of the connection (TLSv1.3, ...)."),
    "tls_description": (lambda ctx: (s := tls_socket(ctx)) and " ".join(
        str(x) for x in (s.cipher() or ())), "Cipher, protocol and bits."),
    "tls_cipher_info": (lambda ctx: _cipher(ctx, 0), "Cipher name."),
    "tls_cipher_bits": (lambda ctx: _cipher(ctx, 2), "Cipher secret bits."),
    "tls_peer_verified": (lambda ctx: 1 if _peer(ctx) else (0 if tls_socket(ctx) else None),
                          "1 when the peer certificate was verified, else 0."),
    "tls_peer_subject": (lambda ctx: _name_text(_peer(ctx).get("subject")),
                         "Subject of the (verified) peer certificate."),
    "tls_peer_subject_cn": (lambda ctx: _name_field(_peer(ctx).get("subject"), "commonName"),
                            "Common name of the (verified) peer certificate."),
    "tls_peer_issuer": (lambda ctx: _name_text(_peer(ctx).get("issuer")),
                        "Issuer of the (verified) peer certificate."),
    "tls_peer_serial": (lambda ctx: _peer(ctx).get("serialNumber"),
                        "Serial number (hex) of the (verified) peer certificate."),
    "tls_peer_notBefore": (lambda ctx: _peer(ctx).get("notBefore"), "Start of validity."),
    "tls_peer_notAfter": (lambda ctx: _peer(ctx).get("notAfter"), "End of validity."),
}


def factory(name: str) -> Callable[[str | None], FuncPv]:
    getter = GETTERS[name][0]

    def make(inner: str | None) -> FuncPv:
        if inner:
            raise ValueError(f"${name} takes no inner name")
        return FuncPv(getter, text=f"${name}")

    return make
