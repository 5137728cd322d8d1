"""sed-like substitution expressions: '/re/repl/flags' (Kamailio core re.c subst_parser).

Runs in: the master at config compile time (parse) and SIP workers (apply). Shared state: none.

Flags: i (ignore case), g (all matches), s (let '.' match newlines and '^'/'$' only at the
ends; by default the expression is compiled with POSIX REG_NEWLINE semantics = Python re.M).
The replacement knows \\0-\\9 (groups), \\n \\r \\t, \\\\, \\$ and pseudo-variables.
Matching works on text decoded as latin-1 so that offsets are byte offsets of the buffer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Union

from sipcore.cfg.regex import compile_posix

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class Group:
    n: int


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class PvText:
    fmt: Any            # sipcore.pv Format


Piece = Union[Group, Literal, PvText]


@dataclass(frozen=True)
class SubstExpr:
    source: str
    regex: "re.Pattern[str]"
    pieces: tuple[Piece, ...]
    global_: bool

    def replacement(self, m: "re.Match[str]", ctx: Any) -> bytes:
        out: list[bytes] = []
        for p in self.pieces:
            if isinstance(p, Literal):
                out.append(p.text.encode("utf-8"))
            elif isinstance(p, Group):
                g = m.group(p.n)
                out.append((g or "").encode("latin-1"))
            else:
                out.append(p.fmt.eval(ctx).encode("utf-8"))
        return b"".join(out)

    def matches(self, text: str) -> list["re.Match[str]"]:
        """Non-empty matches to replace (first only unless the g flag)."""
        out = []
        for m in self.regex.finditer(text):
            if m.end() == m.start():
                continue
            out.append(m)
            if not self.global_:
                break
        return out

    def apply_str(self, text: str, ctx: Any) -> Optional[str]:
        """Substitute in TEXT (a str of any origin); None when nothing matched."""
        ms = self.matches(text)
        if not ms:
            return None
        parts: list[str] = []
        pos = 0
        for m in ms:
            parts.append(text[pos:m.start()])
            parts.append(self.replacement(m, ctx).decode("latin-1"))
            pos = m.end()
        parts.append(text[pos:])
        return "".join(parts)


def _split(expr: str) -> tuple[str, str, str]:
    if len(expr) < 4:
        raise ValueError(f"subst expression \"{expr}\" too short (use /re/repl/flags)")
    sep = expr[0]
    fields: list[str] = []
    cur: list[str] = []
    i = 1
    while i < len(expr):
        c = expr[i]
        if c == "\\" and i + 1 < len(expr):
            nxt = expr[i + 1]
            if nxt == sep:
                cur.append(sep if len(fields) == 0 else "\\" + sep)
            else:
                cur.append(c + nxt)
            i += 2
            continue
        if c == sep and len(fields) < 2:
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if len(fields) != 2:
        raise ValueError(f"subst expression \"{expr}\": missing '{sep}' separator")
    return fields[0], fields[1], "".join(cur)


def _pieces(repl: str, sep: str, ngroups: int) -> tuple[Piece, ...]:
    from sipcore.pv import parse_format

    out: list[Piece] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            text = "".join(buf)
            out.append(PvText(parse_format(text)) if "$" in text else Literal(text))
            buf.clear()

    i = 0
    while i < len(repl):
        c = repl[i]
        if c == "\\" and i + 1 < len(repl):
            nxt = repl[i + 1]
            i += 2
            if nxt.isdigit():
                n = int(nxt)
                if n > ngroups:
                    raise ValueError(f"subst replacement refers to group \\{n}, the regex has "
                                     f"{ngroups}")
                flush()
                out.append(Group(n))
            else:
                flush()
                out.append(Literal(_ESCAPES.get(nxt, nxt)))
            continue
        buf.append(c)
        i += 1
    flush()
    return tuple(out)


def parse_subst(expr: str) -> SubstExpr:
    """Compile '/re/repl/flags' once; ValueError with a message on bad input."""
    expr = expr.strip()
    pat, repl, flags = _split(expr)
    reflags = re.M
    global_ = False
    for f in flags:
        if f == "i":
            reflags |= re.I
        elif f == "g":
            global_ = True
        elif f == "s":
            reflags = (reflags & ~re.M) | re.S
        else:
            raise ValueError(f"subst expression \"{expr}\": unknown flag '{f}'")
    try:
        rx = compile_posix(pat, reflags)
    except re.error as exc:
        raise ValueError(f"subst expression \"{expr}\": bad regex: {exc}") from None
    return SubstExpr(expr, rx, _pieces(repl, expr[0], rx.groups), global_)
