"""PvError: a pseudo-variable or transformation that cannot be parsed, or a bad write.

Runs in: the master (cfg compile time: parse errors) and SIP workers (writes of bad values,
writes to read-only PVs). The cfg compiler turns a PvError into a located ConfigError.
"""
from __future__ import annotations

from typing import Optional


class PvError(ValueError):
    """A pseudo-variable problem. `offset` is the character offset in the parsed text, if known."""

    def __init__(self, message: str, offset: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
