"""Digest computations of RFC 2617 / RFC 7616 (MD5, MD5-sess, SHA-256, SHA-256-sess).

Runs in: SIP workers (auth, auth_db) and tests. Pure functions, no shared state.

    HA1       = H(username ":" realm ":" password)
    HA1-sess  = H(HA1 ":" nonce ":" cnonce)
    HA2       = H(method ":" digest-uri)                    qop absent or "auth"
    HA2       = H(method ":" digest-uri ":" H(body))        qop "auth-int"
    response  = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)   with qop
    response  = H(HA1 ":" nonce ":" HA2)                             without qop (RFC 2069)
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

_HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
}


class UnsupportedAlgorithm(ValueError):
    """The credentials name an algorithm we cannot verify."""


def split_algorithm(algorithm: str | None) -> tuple[str, bool]:
    """("MD5" | "SHA-256", is_sess) for an algorithm token (absent means MD5, RFC 2617 3.2.1)."""
    name = (algorithm or "MD5").strip().upper()
    sess = name.endswith("-SESS")
    if sess:
        name = name[: -len("-SESS")]
    if name not in _HASHES:
        raise UnsupportedAlgorithm(f"unsupported digest algorithm \"{algorithm}\"")
    return name, sess


def hash_hex(alg: str, data: str | bytes) -> str:
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    return _HASHES[alg](raw).hexdigest()


def hash_len(alg: str) -> int:
    """Length of a hex digest of ALG (32 for MD5, 64 for SHA-256)."""
    return _HASHES[alg](b"").digest_size * 2


def calc_ha1(alg: str, username: str, realm: str, password: str) -> str:
    return hash_hex(alg, f"{username}:{realm}:{password}")


def calc_ha1_sess(alg: str, ha1: str, nonce: str, cnonce: str) -> str:
    return hash_hex(alg, f"{ha1}:{nonce}:{cnonce}")


def calc_response(alg: str, ha1: str, nonce: str, method: str, uri: str, *,
                  qop: str | None = None, nc: str | None = None,
                  cnonce: str | None = None, body: bytes = b"") -> str:
    """The request-digest a UA must send (ha1 already includes -sess if used)."""
    if qop == "auth-int":
        ha2 = hash_hex(alg, f"{method}:{uri}:{hash_hex(alg, body)}")
    else:
        ha2 = hash_hex(alg, f"{method}:{uri}")
    if qop in ("auth", "auth-int"):
        return hash_hex(alg, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return hash_hex(alg, f"{ha1}:{nonce}:{ha2}")


__all__ = ["UnsupportedAlgorithm", "calc_ha1", "calc_ha1_sess", "calc_response", "hash_hex",
           "hash_len", "split_algorithm"]
