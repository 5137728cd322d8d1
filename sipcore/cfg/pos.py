"""Source positions for configuration diagnostics (`file:line:col`)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@lru_cache(maxsize=64)
def _file_lines(path: str) -> tuple[str, ...]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return tuple(fh.read().splitlines())
    except OSError:
        return ()


@dataclass(frozen=True, slots=True)
class Pos:
    """A place in a configuration file: 1-based line and column."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def source_line(self) -> str | None:
        lines = _file_lines(self.file)
        if 1 <= self.line <= len(lines):
            return lines[self.line - 1]
        return None

    def render(self, message: str) -> str:
        """The error as a user sees it: position, message, the line and a caret under col."""
        out = f"{self}: {message}"
        src = self.source_line()
        if src is not None:
            caret_pad = "".join("\t" if ch == "\t" else " " for ch in src[: max(self.col - 1, 0)])
            out += f"\n    {src}\n    {caret_pad}^"
        return out
