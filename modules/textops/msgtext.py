"""Byte-level views of a SipMsg that the regex functions of textops/textopsx work on.

Runs in: SIP workers. Shared state: none.

Kamailio's textops works on the received buffer: search() on all of it, replace()/subst() from
the end of the first line, the *_body functions on the body. Offsets returned here are offsets
in `msg.buf`, so an edit is recorded as `delete_range`/`insert_before` on the received bytes.
Python patterns may be str or bytes; str patterns see the buffer decoded as latin-1 (one char
per byte, so match offsets are byte offsets).
"""
from __future__ import annotations

import re
from typing import Any, Iterator, Optional, Union

Pattern = Union["re.Pattern[str]", "re.Pattern[bytes]"]


def first_line_end(buf: bytes) -> int:
    """Offset just after the first line's line terminator."""
    i = buf.find(b"\n")
    return len(buf) if i < 0 else i + 1


def subject(pattern: Pattern, data: bytes) -> Any:
    """DATA in the type PATTERN wants (latin-1 keeps offsets == byte offsets)."""
    return data if isinstance(pattern.pattern, bytes) else data.decode("latin-1")


def to_text(data: bytes) -> str:
    return data.decode("latin-1")


def search(pattern: Pattern, data: bytes) -> Optional["re.Match[Any]"]:
    return pattern.search(subject(pattern, data))


def finditer_nonempty(pattern: Pattern, data: bytes) -> Iterator["re.Match[Any]"]:
    for m in pattern.finditer(subject(pattern, data)):
        if m.end() > m.start():
            yield m


def encode(text: str) -> bytes:
    return text.encode("utf-8")


def replace_span(msg: Any, start: int, end: int, new: bytes) -> None:
    """Record 'bytes [start, end) of the received buffer become NEW'."""
    msg.replace_range(start, end, new)
