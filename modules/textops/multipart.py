"""multipart/* bodies (RFC 2046 section 5.1): split, build, find parts by Content-Type.

Runs in: SIP workers. Shared state: none. Pure functions over bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

DEFAULT_BOUNDARY = "unique-boundary-1"
_BOUNDARY_RE = re.compile(r'boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))', re.I)


@dataclass
class Part:
    headers: list[tuple[str, str]] = field(default_factory=list)
    content: bytes = b""
    raw: bytes = b""                      # headers + blank line + content, as in the body

    @property
    def content_type(self) -> str:
        for n, v in self.headers:
            if n.lower() in ("content-type", "c"):
                return v
        return "text/plain"

    def mime(self) -> str:
        return self.content_type.split(";", 1)[0].strip().lower()


def boundary_of(content_type: Optional[str]) -> Optional[str]:
    if not content_type:
        return None
    m = _BOUNDARY_RE.search(content_type)
    if m is None:
        return None
    return m.group(1) if m.group(1) is not None else m.group(2)


def split(body: bytes, boundary: str) -> list[Part]:
    """The parts between '--boundary' delimiters; empty list when the body has none."""
    delim = b"--" + boundary.encode("latin-1")
    chunks = body.split(delim)
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break                                   # close delimiter
        # the CRLF after the delimiter line belongs to the delimiter, the CRLF before the
        # next delimiter too (RFC 2046: "the CRLF preceding the boundary delimiter line")
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        elif chunk.startswith(b"\n"):
            chunk = chunk[1:]
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        elif chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        parts.append(_parse_part(chunk))
    return parts


def _parse_part(raw: bytes) -> Part:
    sep = raw.find(b"\r\n\r\n")
    skip = 4
    if sep < 0:
        sep = raw.find(b"\n\n")
        skip = 2
    if raw.startswith(b"\r\n"):
        head, content = b"", raw[2:]
    elif sep < 0:
        head, content = raw, b""
    else:
        head, content = raw[:sep], raw[sep + skip:]
    headers = []
    for line in head.decode("latin-1").splitlines():
        if not line.strip():
            continue
        if line[0] in " \t" and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + " " + line.strip())
            continue
        n, _, v = line.partition(":")
        headers.append((n.strip(), v.strip()))
    return Part(headers, content, raw)


def make_part(content: bytes, content_type: str, disposition: str = "") -> bytes:
    hdrs = f"Content-Type: {content_type}\r\n"
    if disposition:
        hdrs += f"Content-Disposition: {disposition}\r\n"
    return hdrs.encode("latin-1") + b"\r\n" + content


def join(raw_parts: list[bytes], boundary: str) -> bytes:
    delim = b"--" + boundary.encode("latin-1")
    out = b""
    for raw in raw_parts:
        out += delim + b"\r\n" + raw + b"\r\n"
    return out + delim + b"--\r\n"
