"""The `#!` / `!!` preprocessor: defines, conditionals, substitutions, includes, env defines.

Runs in: the master (and `pykam -c`) at configuration load. No shared state. The only I/O of
the cfg package happens here: reading included files.

As in Kamailio the preprocessor is driven by the lexer, which hands over every directive line
(with its position) and asks `skipping` whether the text under it is active. Keeping it inside
the token stream is what lets each token keep its own file:line:col through includes and
conditionals, and lets a define expand only where an identifier token appears.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from sipcore.cfg.pos import Pos
from sipcore.errors import ConfigError

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_COMPAT = {"KAMAILIO", "OPENSER", "SER", "ALL", "MAXCOMPAT"}
MAX_INCLUDE_DEPTH = 16


@dataclass
class Subst:
    """One `#!subst "/re/repl/flags"`: applied to string literals lexed after it."""

    rx: re.Pattern[str]
    repl: str
    count: int  # 0 = all (flag g), else 1

    def apply(self, s: str) -> str:
        return self.rx.sub(self.repl, s, count=self.count)


@dataclass
class CondFrame:
    pos: Pos
    active: bool          # this branch is taken
    parent_active: bool   # the enclosing region was active
    seen_else: bool = False


@dataclass
class Include:
    """A file the lexer must read next (its text and absolute path)."""

    path: str
    text: str
    pos: Pos


@dataclass
class Preprocessor:
    """Directive state shared by every file of one configuration."""

    defines: dict[str, Optional[str]] = field(default_factory=dict)
    substs: list[Subst] = field(default_factory=list)
    cond: list[CondFrame] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    read_file: Callable[[str], str] = field(default=lambda p: open(p, encoding="utf-8").read())

    @property
    def skipping(self) -> bool:
        return bool(self.cond) and not self.cond[-1].active

    def error(self, msg: str, pos: Pos) -> None:
        self.errors.append(ConfigError(msg, pos))

    def apply_substs(self, s: str) -> str:
        for sb in self.substs:
            s = sb.apply(s)
        return s

    # ---- directives ---------------------------------------------------------------------
    def directive(self, line: str, pos: Pos, cur_file: str, depth: int) -> Optional[Include]:
        """Handle one directive line (text after `#!`/`!!`, continuations joined)."""
        m = re.match(r"\s*([A-Za-z_]+)\s*(.*)$", line, re.S)
        if not m:
            if not self.skipping:
                self.error(f"bad preprocessor directive \"#!{line.strip()}\"", pos)
            return None
        name, rest = m.group(1), m.group(2).strip()
        lname = name.lower()
        if lname in ("ifdef", "ifndef", "else", "endif"):
            self._conditional(lname, rest, pos)
            return None
        if self.skipping:
            return None
        if name in _COMPAT:
            return None
        if lname in ("define", "def"):
            self._define(rest, pos, mode="define")
        elif lname in ("trydef", "trydefine"):
            self._define(rest, pos, mode="try")
        elif lname in ("redefine", "redef"):
            self._define(rest, pos, mode="redefine")
        elif lname == "undef":
            self.defines.pop(rest.split()[0] if rest else "", None)
        elif lname in ("subst", "substdef", "substdefs"):
            self._subst(lname, rest, pos)
        elif lname in ("include_file", "import_file"):
            return self.include(rest, pos, cur_file, depth, required=(lname == "include_file"))
        elif lname in ("defenv", "defenvs", "trydefenv", "trydefenvs"):
            self._defenv(lname, rest, pos)
        else:
            self.error(f"unknown preprocessor directive \"#!{name}\"", pos)
        return None

    def _conditional(self, kind: str, rest: str, pos: Pos) -> None:
        if kind in ("ifdef", "ifndef"):
            name = rest.split()[0] if rest else ""
            if not name:
                self.error(f"#!{kind} needs a name", pos)
            parent = not self.skipping
            hit = (name in self.defines) == (kind == "ifdef")
            self.cond.append(CondFrame(pos, parent and hit, parent))
        elif kind == "else":
            if not self.cond:
                self.error("#!else without #!ifdef/#!ifndef", pos)
                return
            top = self.cond[-1]
            if top.seen_else:
                self.error(f"second #!else for the #!ifdef at {top.pos}", pos)
                return
            top.seen_else = True
            top.active = top.parent_active and not top.active
        else:
            if not self.cond:
                self.error("#!endif without #!ifdef/#!ifndef (unbalanced)", pos)
                return
            self.cond.pop()

    def check_balanced(self, depth_at_start: int) -> None:
        """At the end of a file: every #!ifdef opened in it must be closed in it."""
        while len(self.cond) > depth_at_start:
            frame = self.cond.pop()
            self.error("unbalanced #!ifdef/#!ifndef: missing #!endif", frame.pos)

    def _define(self, rest: str, pos: Pos, mode: str) -> None:
        parts = rest.split(None, 1)
        if not parts:
            self.error("#!define needs a name", pos)
            return
        name = parts[0]
        value = parts[1].strip() if len(parts) > 1 else None
        if not _NAME_RE.match(name):
            self.error(f"invalid define name \"{name}\"", pos)
            return
        if name in self.defines:
            if mode == "try":
                return
            if mode == "define":
                self.error(f"\"{name}\" is already defined (use #!redefine or #!trydef)", pos)
                return
        self.define(name, value or None)

    def define(self, name: str, value: Optional[str]) -> None:
        self.defines[name] = value

    def _subst(self, kind: str, rest: str, pos: Pos) -> None:
        text = _unquote(rest)
        if text is None or len(text) < 3:
            self.error(f"#!{kind} expects a quoted \"/regex/replacement/flags\"", pos)
            return
        sep = text[0]
        parts = _split_unescaped(text[1:], sep)
        if len(parts) != 3:
            self.error(f"#!{kind}: bad expression \"{text}\" (expected {sep}re{sep}repl{sep}flags)",
                       pos)
            return
        pattern, repl, flags = parts
        bad = set(flags) - set("ig")
        if bad:
            self.error(f"#!{kind}: unknown flag(s) \"{''.join(sorted(bad))}\"", pos)
            return
        from sipcore.cfg.regex import compile_posix

        try:
            rx = compile_posix(pattern, re.IGNORECASE if "i" in flags else 0)
        except re.error as e:
            self.error(f"#!{kind}: bad regular expression \"{pattern}\": {e}", pos)
            return
        py_repl = re.sub(r"\\(\d)", r"\\g<\1>", repl.replace("\\" + sep, sep))
        self.substs.append(Subst(rx, py_repl, 0 if "g" in flags else 1))
        if kind in ("substdef", "substdefs"):
            if not _NAME_RE.match(pattern):
                self.error(f"#!{kind}: \"{pattern}\" is not a valid define name", pos)
                return
            if pattern in self.defines:
                self.error(f"\"{pattern}\" is already defined", pos)
                return
            self.define(pattern, _quote(repl) if kind == "substdefs" else repl)

    def _defenv(self, kind: str, rest: str, pos: Pos) -> None:
        arg = rest.split()[0] if rest else ""
        if not arg:
            self.error(f"#!{kind} needs NAME=ENVVAR or ENVVAR", pos)
            return
        name, _, env = arg.partition("=")
        if not env:
            env = name
        if not _NAME_RE.match(name):
            self.error(f"invalid define name \"{name}\"", pos)
            return
        tryit = kind.startswith("try")
        value = self.environ.get(env)
        if value is None:
            if not tryit:
                self.error(f"#!{kind}: environment variable \"{env}\" is not set", pos)
            return
        if name in self.defines:
            if not tryit:
                self.error(f"\"{name}\" is already defined", pos)
            return
        self.define(name, _quote(value) if kind.endswith("s") else value)

    # ---- includes -----------------------------------------------------------------------
    def include(self, rest: str, pos: Pos, cur_file: str, depth: int, required: bool
                ) -> Optional[Include]:
        path = _unquote(rest.strip())
        if path is None:
            self.error("include_file/import_file expects a quoted file name", pos)
            return None
        return self.open_include(path, pos, cur_file, depth, required)

    def open_include(self, path: str, pos: Pos, cur_file: str, depth: int, required: bool
                     ) -> Optional[Include]:
        if depth >= MAX_INCLUDE_DEPTH:
            self.error(f"too many nested includes ({MAX_INCLUDE_DEPTH}) including \"{path}\"",
                       pos)
            return None
        full = path
        if not os.path.isabs(path):
            base = os.path.dirname(cur_file) if not cur_file.startswith("<") else os.getcwd()
            full = os.path.normpath(os.path.join(base, path))
        try:
            text = self.read_file(full)
        except OSError as e:
            if required:
                self.error(f"cannot include file \"{path}\": {e.strerror or e}", pos)
            return None
        return Include(full, text, pos)


def _unquote(s: str) -> Optional[str]:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return s[1:-1]
    return None


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_unescaped(s: str, sep: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] == sep:
            cur.append("\\" + sep)
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    if parts and parts[-1] == "" and len(parts) == 4:
        parts.pop()
    return parts
