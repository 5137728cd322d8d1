"""Tokens of kamailio.cfg: identifiers, numbers, strings, PVs, IPv4 literals, operators.

Runs in: the master at configuration load. No shared state.

The lexer owns the file stack (includes), comments (`#`, `//`, nested `/* */`), directive
lines (handed to the Preprocessor) and define expansion: a defined name is replaced by the
tokens of its value only where an identifier token appears, never inside strings. Every token
carries the Pos of the text it came from (for an expanded define: where the name was used) and
`ws`: whether whitespace, a comment or a line break came before it, so the parser can glue
adjacent tokens (`udp:10.0.0.1:5060`, `tm:local-request`) back into one word.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from sipcore.cfg.pos import Pos
from sipcore.cfg.preproc import Preprocessor
from sipcore.errors import ConfigError

ID, INT, STR, PV, IP4, IP6, OP, EOF = "ID", "INT", "STR", "PV", "IP4", "IP6", "OP", "EOF"

_OPS = sorted([
    "==", "!=", "=~", "<=", ">=", "<<", ">>", "&&", "||",
    "=", "<", ">", "+", "-", "*", "/", "|", "&", "^", "~", "!",
    "(", ")", "{", "}", "[", "]", ",", ";", ":", ".", "@",
], key=len, reverse=True)
_IP4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w.])")
_IP6_RE = re.compile(r"\[[0-9a-fA-F.]*:[0-9a-fA-F:.]*\]")
_NUM_RE = re.compile(r"0[xX][0-9a-fA-F]+(?!\w)|[01]+b(?!\w)|\d+(?!\w)")
_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_EXPANSION_DEPTH = 32


@dataclass(slots=True)
class Token:
    kind: str
    text: str             # source text (for STR: the value after escapes and substs)
    value: Any            # int for INT, str for STR/ID/PV/OP/IP4
    pos: Pos
    ws: bool = True       # preceded by whitespace / comment / newline / file start

    def is_op(self, *ops: str) -> bool:
        return self.kind == OP and self.text in ops

    def is_id(self, *names: str) -> bool:
        return self.kind == ID and (not names or self.text in names)

    def __repr__(self) -> str:
        return f"{self.kind}({self.text!r})@{self.pos.line}:{self.pos.col}"


def parse_int(text: str) -> int:
    """Kamailio number syntax: decimal, 0x hex, leading-0 octal, trailing-b binary."""
    t = text.strip()
    neg = t.startswith("-")
    if neg or t.startswith("+"):
        t = t[1:]
    if t[:2] in ("0x", "0X"):
        v = int(t[2:], 16)
    elif t.endswith("b") and t[:-1] and set(t[:-1]) <= {"0", "1"}:
        v = int(t[:-1], 2)
    elif len(t) > 1 and t.startswith("0") and t.isdigit():
        v = int(t, 8)
    else:
        v = int(t, 10)
    return -v if neg else v


class _Source:
    __slots__ = ("text", "file", "i", "line", "line_start", "cond_depth", "depth")

    def __init__(self, text: str, file: str, cond_depth: int, depth: int) -> None:
        self.text = text
        self.file = file
        self.i = 0
        self.line = 1
        self.line_start = 0
        self.cond_depth = cond_depth
        self.depth = depth


class Lexer:
    """Iterate the tokens of a configuration (and everything it includes)."""

    def __init__(self, text: str, filename: str, pp: Optional[Preprocessor] = None,
                 directives: bool = True) -> None:
        self.pp = pp or Preprocessor()
        self.errors = self.pp.errors
        self.directives = directives
        self._stack: list[_Source] = [_Source(text, filename, len(self.pp.cond), 0)]
        self._define_cache: dict[str, list[Token]] = {}

    # ---- public -------------------------------------------------------------------------
    def tokens(self) -> list[Token]:
        return list(self._iter())

    def _iter(self) -> Iterator[Token]:
        while True:
            tok = self._next_raw()
            if tok.kind == ID and tok.text in self.pp.defines:
                yield from self._expand(tok, frozenset())
                continue
            if tok.kind == ID and tok.text in ("include_file", "import_file") and self.directives:
                if self._statement_include(tok):
                    continue
            yield tok
            if tok.kind == EOF:
                return

    # ---- define expansion ---------------------------------------------------------------
    def _expand(self, use: Token, seen: frozenset[str]) -> Iterator[Token]:
        name = use.text
        if name in seen or len(seen) > _MAX_EXPANSION_DEPTH:
            self.errors.append(ConfigError(f"recursive define \"{name}\"", use.pos))
            return
        value = self.pp.defines[name]
        body = self._define_cache.get(value or "")
        if body is None:
            body = []
            if value:
                sub = Lexer(value, use.pos.file, Preprocessor(substs=self.pp.substs),
                            directives=False)
                body = [t for t in sub.tokens() if t.kind != EOF]
                for e in sub.errors:
                    self.errors.append(ConfigError(f"in the value of define {name}: {e.message}",
                                                   use.pos))
            self._define_cache[value or ""] = body
        first = True
        for t in body:
            nt = Token(t.kind, t.text, t.value, use.pos, use.ws if first else t.ws)
            first = False
            if nt.kind == ID and nt.text in self.pp.defines:
                yield from self._expand(nt, seen | {name})
            else:
                yield nt

    def _statement_include(self, tok: Token) -> bool:
        """`include_file "x"` / `import_file "x"` written as statements (no `#!`)."""
        src = self._stack[-1]
        m = re.compile(r"[ \t]*(\"[^\"\n]*\"|'[^'\n]*')").match(src.text, src.i)
        if not m:
            return False
        src.i = m.end()
        inc = self.pp.include(m.group(1), tok.pos, src.file, src.depth,
                              required=(tok.text == "include_file"))
        if inc is not None:
            self._push(inc.text, inc.path)
        return True

    def _push(self, text: str, path: str) -> None:
        self._stack.append(_Source(text, path, len(self.pp.cond), len(self._stack)))

    # ---- scanning -----------------------------------------------------------------------
    def _pos(self, src: _Source, i: int) -> Pos:
        return Pos(src.file, src.line, i - src.line_start + 1)

    def _newline(self, src: _Source, i: int) -> None:
        src.line += 1
        src.line_start = i + 1

    def _at_line_start(self, src: _Source, i: int) -> bool:
        return src.text[src.line_start:i].strip() == ""

    def _next_raw(self) -> Token:
        ws = False
        while True:
            src = self._stack[-1]
            text, n = src.text, len(src.text)
            i = src.i
            if i == 0:
                ws = True
            if i >= n:
                if self.directives:
                    self.pp.check_balanced(src.cond_depth)
                if len(self._stack) == 1:
                    return Token(EOF, "", None, self._pos(src, i), True)
                self._stack.pop()
                ws = True
                continue
            c = text[i]
            if c == "\n":
                self._newline(src, i)
                src.i = i + 1
                ws = True
                continue
            if c in " \t\r\f\v":
                src.i = i + 1
                ws = True
                continue
            if self.directives and c in "#!" and text.startswith(("#!", "!!"), i) \
                    and self._at_line_start(src, i):
                self._directive(src, i)
                ws = True
                continue
            if self.pp.skipping:
                self._skip_line(src, i)
                ws = True
                continue
            if c == "#" or text.startswith("//", i):
                j = text.find("\n", i)
                src.i = n if j < 0 else j
                ws = True
                continue
            if text.startswith("/*", i):
                self._block_comment(src, i)
                ws = True
                continue
            pos = self._pos(src, i)
            tok = self._token(src, i, pos)
            if tok is None:
                ws = True
                continue
            tok.ws = ws
            return tok

    def _skip_line(self, src: _Source, i: int) -> None:
        j = src.text.find("\n", i)
        src.i = len(src.text) if j < 0 else j

    def _directive(self, src: _Source, i: int) -> None:
        pos = self._pos(src, i)
        text = src.text
        parts: list[str] = []
        j = i + 2
        while True:
            k = text.find("\n", j)
            end = len(text) if k < 0 else k
            line = text[j:end]
            if line.endswith("\\") and k >= 0:   # backslash-newline continues the directive
                parts.append(line[:-1])
                self._newline(src, k)
                j = k + 1
                continue
            parts.append(line)
            src.i = end
            break
        inc = self.pp.directive("".join(parts).rstrip("\r"), pos, src.file, src.depth)
        if inc is not None:
            self._push(inc.text, inc.path)

    def _block_comment(self, src: _Source, i: int) -> None:
        text, n = src.text, len(src.text)
        start = self._pos(src, i)
        depth, j = 1, i + 2
        while j < n:
            if text.startswith("/*", j):
                depth += 1
                j += 2
            elif text.startswith("*/", j):
                depth -= 1
                j += 2
                if depth == 0:
                    src.i = j
                    return
            else:
                if text[j] == "\n":
                    self._newline(src, j)
                j += 1
        self.errors.append(ConfigError("unterminated /* comment", start))
        src.i = n

    def _token(self, src: _Source, i: int, pos: Pos) -> Optional[Token]:
        text = src.text
        c = text[i]
        if c == '"' or c == "'":
            return self._string(src, i, pos)
        if c == "$":
            return self._pv(src, i, pos)
        if c == "[":
            m = _IP6_RE.match(text, i)
            if m:
                src.i = m.end()
                return Token(IP6, m.group(), m.group(), pos)
        if c.isdigit():
            m = _IP4_RE.match(text, i)
            if m:
                src.i = m.end()
                return Token(IP4, m.group(), m.group(), pos)
            m = _NUM_RE.match(text, i)
            if m:
                src.i = m.end()
                return Token(INT, m.group(), parse_int(m.group()), pos)
            m = re.compile(r"\d+\w*").match(text, i)
            assert m is not None
            src.i = m.end()
            self.errors.append(ConfigError(f"bad number \"{m.group()}\"", pos))
            return None
        if c.isalpha() or c == "_":
            m = _ID_RE.match(text, i)
            assert m is not None
            src.i = m.end()
            return Token(ID, m.group(), m.group(), pos)
        for op in _OPS:
            if text.startswith(op, i):
                src.i = i + len(op)
                return Token(OP, op, op, pos)
        src.i = i + 1
        what = "'%'" + " (modulo is the keyword 'mod')" if c == "%" else repr(c)
        self.errors.append(ConfigError(f"unexpected character {what}", pos))
        return None

    def _string(self, src: _Source, i: int, pos: Pos) -> Optional[Token]:
        text, n = src.text, len(src.text)
        q = text[i]
        j = i + 1
        out: list[str] = []
        while j < n:
            c = text[j]
            if c == q:
                break
            if c == "\n":
                self._newline(src, j)
            if c == "\\" and q == '"' and j + 1 < n:
                d = text[j + 1]
                simple = {"n": "\n", "r": "\r", "a": "\a", "t": "\t", '"': '"', "\\": "\\"}
                if d in simple:
                    out.append(simple[d])
                    j += 2
                    continue
                if d == "\n":              # backslash-newline is removed
                    self._newline(src, j + 1)
                    j += 2
                    continue
                if d == "x":
                    m = re.compile(r"[0-9a-fA-F]{1,2}").match(text, j + 2)
                    if m:
                        out.append(chr(int(m.group(), 16)))
                        j = m.end()
                        continue
                m = re.compile(r"[0-7]{2,3}").match(text, j + 1)
                if m:
                    out.append(chr(int(m.group(), 8) & 0xFF))
                    j = m.end()
                    continue
                out.append(c + d)          # unknown escapes (regex \d, \+ ...) stay as written
                j += 2
                continue
            out.append(c)
            j += 1
        if j >= n:
            self.errors.append(ConfigError("unterminated string", pos))
            src.i = n
            return None
        src.i = j + 1
        value = "".join(out)
        if self.pp.substs:
            value = self.pp.apply_substs(value)
        return Token(STR, value, value, pos)

    def _pv(self, src: _Source, i: int, pos: Pos) -> Optional[Token]:
        import sipcore.pv as pvmod

        text = src.text
        try:
            end = pvmod.scan_pv(text, i)
        except ValueError as e:   # PvError is a ValueError
            self.errors.append(ConfigError(f"bad pseudo-variable: {e}", pos))
            j = i + 1
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            src.i = j
            return None
        body = text[i:end]
        nl = body.count("\n")
        if nl:
            src.line += nl
            src.line_start = i + body.rfind("\n") + 1
        src.i = end
        return Token(PV, body, body, pos)


def tokenize(text: str, filename: str = "<string>", pp: Optional[Preprocessor] = None
             ) -> tuple[list[Token], list[ConfigError]]:
    lx = Lexer(text, filename, pp)
    toks = lx.tokens()
    return toks, lx.errors
