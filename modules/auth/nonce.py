"""Nonces: self-contained, integrity protected, expiring (Kamailio auth nonce.c).

Runs in: SIP workers (challenge and check) and tests. Pure: the secret, the clock value and the
message data are passed in; no shared state (replay tracking lives in nid.py).

Layout (before base64url without padding):
    expires u32 | since u32 | nid u64 | mac1 8 bytes | [mac2 8 bytes]
mac1 = HMAC-SHA256(secret, "1" + expires|since|nid) truncated: proves we issued the nonce, so
any worker of any node sharing `secret` accepts it (no per-nonce state is needed to verify).
mac2 = HMAC-SHA256(secret, "2" + expires|since|nid + extra check data) is present when
auth_checks_* selects message fields (R-URI, Call-ID, From tag, source IP): a nonce used with
other values of those fields is treated as stale, as Kamailio does (auth_checks_*).
"""
from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import struct

_HEAD = struct.Struct(">IIQ")
_MAC = 8

# auth_checks_* bits (Kamailio AUTH_CHECK_*)
CHECK_FULL_URI = 1
CHECK_CALLID = 2
CHECK_FROMTAG = 4
CHECK_SRC_IP = 8


class NonceStatus(enum.Enum):
    OK = "ok"
    BAD = "bad"          # not ours, malformed or issued in the future beyond the drift
    STALE = "stale"      # expired, or extra check fields differ


def _mac(secret: bytes, tag: bytes, data: bytes) -> bytes:
    return hmac.new(secret, tag + data, hashlib.sha256).digest()[:_MAC]


def make_nonce(secret: bytes, now: int, expire: int, nid: int = 0,
               checks: bytes | None = None) -> str:
    """A nonce valid from NOW for EXPIRE seconds; CHECKS: extra data bound to it (or None)."""
    head = _HEAD.pack((now + expire) & 0xFFFFFFFF, now & 0xFFFFFFFF, nid)
    raw = head + _mac(secret, b"1", head)
    if checks is not None:
        raw += _mac(secret, b"2", head + checks)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class NonceInfo:
    """What a valid (or stale) nonce carries."""

    __slots__ = ("expires", "nid", "since")

    def __init__(self, expires: int, since: int, nid: int) -> None:
        self.expires = expires
        self.since = since
        self.nid = nid


def decode_nonce(secret: bytes, nonce: str) -> tuple[NonceInfo, bytes, bytes] | None:
    """(info, head, mac2) of a nonce we issued, or None when it is not ours."""
    text = nonce.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) not in (_HEAD.size + _MAC, _HEAD.size + 2 * _MAC):
        return None
    head = raw[: _HEAD.size]
    mac1 = raw[_HEAD.size: _HEAD.size + _MAC]
    if not hmac.compare_digest(mac1, _mac(secret, b"1", head)):
        return None
    expires, since, nid = _HEAD.unpack(head)
    return NonceInfo(expires, since, nid), head, raw[_HEAD.size + _MAC:]


def check_nonce(secret: bytes, nonce: str, now: int, *, max_drift: int = 3,
                checks: bytes | None = None) -> tuple[NonceStatus, NonceInfo | None]:
    """Verify a nonce from credentials against the secret, the clock and the check data."""
    decoded = decode_nonce(secret, nonce)
    if decoded is None:
        return NonceStatus.BAD, None
    info, head, mac2 = decoded
    if info.since > now + max_drift:
        return NonceStatus.BAD, info
    if now > info.expires:
        return NonceStatus.STALE, info
    if checks is not None and (
            not mac2 or not hmac.compare_digest(mac2, _mac(secret, b"2", head + checks))):
        return NonceStatus.STALE, info
    return NonceStatus.OK, info


__all__ = ["CHECK_CALLID", "CHECK_FROMTAG", "CHECK_FULL_URI", "CHECK_SRC_IP", "NonceInfo",
           "NonceStatus", "check_nonce", "decode_nonce", "make_nonce"]
