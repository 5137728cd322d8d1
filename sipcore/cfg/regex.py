"""POSIX extended regular expressions (as Kamailio's regcomp uses them) -> Python `re`.

Runs in: the master at compile time (constant regexes) and workers (regexes built from PVs).
Python's syntax is a superset of ERE for practical configs; the differences handled here are
the POSIX bracket classes (`[[:digit:]]`) and a backslash inside a bracket expression, which
POSIX takes literally.
"""
from __future__ import annotations

import re

_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r" \t\r\n\v\f", "blank": r" \t", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f",
    "cntrl": r"\x00-\x1f\x7f", "print": r"\x20-\x7e", "graph": r"\x21-\x7e", "word": r"\w",
}


def posix_to_python(pattern: str) -> str:
    """Translate the ERE constructs Python spells differently; everything else passes."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c != "[":
            out.append(c)
            i += 1
            continue
        # bracket expression: copy up to the closing ']' (a leading ']' or '^]' is literal)
        j = i + 1
        buf = ["["]
        if j < n and pattern[j] == "^":
            buf.append("^")
            j += 1
        if j < n and pattern[j] == "]":
            buf.append(r"\]")
            j += 1
        closed = False
        while j < n:
            d = pattern[j]
            if d == "]":
                closed = True
                j += 1
                break
            if d == "[" and pattern.startswith("[:", j):
                k = pattern.find(":]", j + 2)
                if k > 0 and pattern[j + 2:k] in _CLASSES:
                    buf.append(_CLASSES[pattern[j + 2:k]])
                    j = k + 2
                    continue
            if d == "\\":
                buf.append(r"\\")
            elif d == "[":
                buf.append(r"\[")
            else:
                buf.append(d)
            j += 1
        if not closed:  # let re report the unbalanced bracket with its own message
            out.append(pattern[i:])
            break
        buf.append("]")
        out.append("".join(buf))
        i = j
    return "".join(out)


def compile_posix(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile an ERE; raises re.error on a bad pattern."""
    return re.compile(posix_to_python(pattern), flags)
