"""permissions allow/deny files (hosts.allow-like) for allow_routing, allow_register,
allow_uri.

Runs in: SIP workers (files are read on first use per process and kept; they are static).
Shared state: none.

Line format: `FROM_LIST : RURI_LIST [EXCEPT ...]`, each list being comma/space separated
regular expressions or `ALL`, with `EXCEPT` excluding what follows; `#` comments.
Decision (Kamailio): allowed if every (from, target) pair matches the allow file; else denied
if some pair matches the deny file; else allowed.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Expr:
    include: tuple[re.Pattern[str] | None, ...]     # None = ALL
    exclude: tuple[re.Pattern[str] | None, ...]

    def match(self, s: str) -> bool:
        def hit(lst: tuple[re.Pattern[str] | None, ...]) -> bool:
            return any(p is None or p.search(s) for p in lst)
        return hit(self.include) and not hit(self.exclude)


_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s,:"]+)|(:)')


def _expr(tokens: list[tuple[str, bool]], where: str) -> Expr:
    """tokens: (text, quoted). ALL and EXCEPT are keywords only when unquoted."""
    inc: list[re.Pattern[str] | None] = []
    exc: list[re.Pattern[str] | None] = []
    cur = inc
    for w, quoted in tokens:
        if not quoted and w == "EXCEPT":
            cur = exc
            continue
        if not quoted and w == "ALL":
            cur.append(None)
            continue
        try:
            cur.append(re.compile(w, re.IGNORECASE))
        except re.error as e:
            raise ValueError(f"{where}: bad regular expression \"{w}\": {e}") from None
    return Expr(tuple(inc), tuple(exc))


Rule = tuple[Expr, Expr]


def parse_rules(path: str) -> list[Rule]:
    """Rules of one file; a missing file is empty (as Kamailio)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except FileNotFoundError:
        log.warning("permissions: file %s not found, treated as empty", path)
        return []
    rules = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        left: list[tuple[str, bool]] = []
        right: list[tuple[str, bool]] = []
        cur = left
        for m in _TOKEN.finditer(line):
            if m.group(3):
                if cur is right:
                    raise ValueError(f"{path}:{n}: more than one \":\"")
                cur = right
            elif m.group(1) is not None:
                cur.append((m.group(1), True))
            elif m.group(2).startswith("#"):
                break
            else:
                cur.append((m.group(2), False))
        if cur is not right:
            raise ValueError(f"{path}:{n}: \"left : right\" expected")
        rules.append((_expr(left, f"{path}:{n}"), _expr(right, f"{path}:{n}")))
    return rules


def matches(rules: list[Rule], left: str, right: str) -> bool:
    return any(lx.match(left) and rx.match(right) for lx, rx in rules)


class RuleFiles:
    """allow/deny file pairs by path, loaded once per process."""

    def __init__(self) -> None:
        self._files: dict[str, list[Rule]] = {}

    def rules(self, path: str) -> list[Rule]:
        r = self._files.get(path)
        if r is None:
            r = self._files[path] = parse_rules(path)
        return r

    def clear(self) -> None:
        self._files.clear()

    def check(self, allow: str, deny: str, pairs: list[tuple[str, str]]) -> int:
        """1 allowed, -1 denied."""
        if not pairs:
            return 1
        if all(matches(self.rules(allow), a, b) for a, b in pairs):
            return 1
        if any(matches(self.rules(deny), a, b) for a, b in pairs):
            return -1
        return 1


def resolve(path: str, base_dir: str) -> str:
    return path if os.path.isabs(path) else os.path.join(base_dir, path)
