"""SDP reading and rewriting for nathelper (RFC 4566 line structure, no full parser).

Runs in: SIP workers (pure functions over bytes; the caller writes the result back with
SipMsg.set_body). Shared state: none.
"""
from __future__ import annotations

from dataclasses import dataclass

from sipcore.msg import SipMsg
from sipcore.msg.lumps import apply_ops


@dataclass
class SdpLine:
    kind: str           # "v", "o", "c", "m", "a", ...
    text: str           # without the line ending
    eol: str            # "\r\n", "\n" or "" (last line without ending)
    media: int          # -1 session level, else index of the m= section


def split_lines(body: bytes) -> list[SdpLine]:
    text = body.decode("utf-8", "surrogateescape")
    out: list[SdpLine] = []
    media = -1
    pos = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        if nl < 0:
            raw, eol, pos = text[pos:], "", len(text)
        else:
            raw = text[pos:nl]
            eol = "\n"
            if raw.endswith("\r"):
                raw, eol = raw[:-1], "\r\n"
            pos = nl + 1
        kind = raw[0] if len(raw) >= 2 and raw[1] == "=" else ""
        if kind == "m":
            media += 1
        out.append(SdpLine(kind, raw, eol, media))
    return out


def join_lines(lines: list[SdpLine]) -> bytes:
    return "".join(ln.text + ln.eol for ln in lines).encode("utf-8", "surrogateescape")


def line_eol(lines: list[SdpLine]) -> str:
    return next((ln.eol for ln in lines if ln.eol), "\r\n")


def conn_addr(text: str) -> tuple[str, str] | None:
    """c=IN IP4 1.2.3.4[/ttl] -> ("IP4", "1.2.3.4")."""
    parts = text[2:].split()
    if len(parts) < 3 or parts[0] != "IN":
        return None
    return parts[1], parts[2].split("/", 1)[0]


def with_conn_addr(text: str, ip: str) -> str:
    parts = text[2:].split()
    fam = "IP6" if ":" in ip else "IP4"
    suffix = ""
    if "/" in parts[2]:
        suffix = parts[2][parts[2].index("/"):]
    return f"c=IN {fam} {ip}{suffix}"


def origin_addr(text: str) -> tuple[str, str] | None:
    """o=user sess ver IN IP4 addr -> ("IP4", addr)."""
    parts = text[2:].split()
    if len(parts) < 6 or parts[3] != "IN":
        return None
    return parts[4], parts[5]


def with_origin_addr(text: str, ip: str) -> str:
    parts = text[2:].split()
    parts[4] = "IP6" if ":" in ip else "IP4"
    parts[5] = ip
    return "o=" + " ".join(parts)


def is_null_addr(ip: str) -> bool:
    return ip in ("0.0.0.0", "::")


def current_body(msg: SipMsg) -> bytes:
    """The body as it will be sent: set_body() value, or the received body with the byte
    edits other functions (textops subst...) recorded on it."""
    body = msg.body
    if body != msg.orig_body or not msg.lumps_pending:
        return body
    start = msg.body_offset
    end = start + len(msg.orig_body)
    ops = [op for op in msg.lumps.ops if op[0] >= start]
    return apply_ops(msg.buf, ops, start, end) if ops else body


def has_sdp(msg: SipMsg) -> bool:
    ct = msg.content_type
    if ct is None:
        return bool(msg.body) and msg.body.lstrip().startswith(b"v=")
    # multipart bodies are not handled (as Kamailio's nathelper without a SDP part parser)
    return ct.mime == "application/sdp" and bool(msg.body)
