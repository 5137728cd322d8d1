"""Exception tree shared by the whole core.

Peer mistakes (bad SIP) raise ParseError with a status hint; our configuration mistakes raise
ConfigError carrying a file:line:col position; module lifecycle problems raise ModuleError.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.cfg.pos import Pos


class PykamError(Exception):
    """Base class of every error PyKam raises on purpose."""


class ParseError(PykamError):
    """A SIP message (or part of one) is malformed.

    reason: short human text; offset: byte offset in the buffer where it was noticed (or -1);
    status_hint: the reply code a request with this defect should get (400 by default).
    """

    def __init__(self, reason: str, offset: int = -1, status_hint: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.status_hint = status_hint


class ConfigError(PykamError):
    """A configuration error at a known place: rendered as `file:line:col: message`."""

    def __init__(self, message: str, pos: Optional["Pos"] = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos

    def __str__(self) -> str:
        if self.pos is None:
            return self.message
        return f"{self.pos}: {self.message}"

    def render(self) -> str:
        """`file:line:col: message` followed by the offending line and a caret."""
        if self.pos is None:
            return self.message
        return self.pos.render(self.message)


class ConfigErrors(PykamError):
    """Several ConfigErrors collected in one pass (the checker reports them all)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


class ModuleError(PykamError):
    """A module could not be loaded, configured or initialised."""


class RpcFault(PykamError):
    """An RPC handler refuses a call: becomes a JSON-RPC error object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
