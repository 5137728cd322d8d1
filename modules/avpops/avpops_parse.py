"""avpops: parsing of the function arguments (compile time, through `Custom` fixups).

Runs in: the master while compiling the cfg (and KEMI on first use of an argument text).
Shared state: none. Every parser raises ValueError with a message the compiler reports as
`file:line:col`. Pseudo-variables inside the arguments are the core ones ($avp, $var, $ru,
$fu, $hdr(...)...), parsed here without the module registry.
Kamailio equivalent: modules/avpops/avpops_parse.c.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Union

from sipcore.pv import PvError, PvSpec, parse_format, parse_pv, scan_pv
from sipcore.pv.parser import Format
from sipcore.pv.vars import AvpName, AvpPv, parse_avp_name

URI_PVS = ("$ru", "$fu", "$tu", "$du")
CHECK_OPS = ("eq", "ne", "lt", "le", "gt", "ge", "re", "fm", "and", "or", "xor")
ARITH_OPS = ("add", "sub", "mul", "div", "mod", "and", "or", "xor", "not")


@dataclass(frozen=True)
class AvpRef:
    """An AVP, or a class of AVPs: `$avp(name)`, `i:5`, `s:name`, or the matching flags
    'a' (all), 'i' (integer names), 's' (string names); FLAGS are the letters after "/" and
    TABLE the "/table" of the DB functions."""

    name: Optional[AvpName] = None      # None: every AVP of `kind`
    kind: str = "a"                     # with name None: "a", "i" or "s"
    flags: str = ""
    table: str = ""

    def matches(self, name: AvpName) -> bool:
        if self.name is not None:
            return name == self.name
        return self.kind == "a" or (self.kind == "i") == isinstance(name, int)

    @property
    def text(self) -> str:
        if self.name is None:
            return self.kind
        return f"$avp({'i:' if isinstance(self.name, int) else ''}{self.name})"


def _split_pv(text: str) -> tuple[str, str]:
    """("$pv(...)", rest after it) for TEXT starting with '$'."""
    try:
        end = scan_pv(text, 0)
    except PvError as exc:
        raise ValueError(str(exc)) from None
    return text[:end], text[end:]


def _avp_name(text: str) -> AvpName:
    t = text.strip()
    if t.startswith("$"):
        pv, rest = _split_pv(t)
        if rest:
            raise ValueError(f"unexpected \"{rest}\" after {pv}")
        try:
            spec = parse_pv(pv)
        except PvError as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(spec, AvpPv):
            raise ValueError(f"{pv} is not an AVP")
        return spec.name
    try:
        return parse_avp_name(t)
    except PvError as exc:
        raise ValueError(str(exc)) from None


def avp_ref(text: str, flags: str = "", classes: bool = False, table: bool = False) -> AvpRef:
    """`$avp(x)[/flags]`; with CLASSES also 'a'/'i'/'s'; with TABLE a "/table" suffix."""
    t = text.strip()
    if not t:
        raise ValueError("empty AVP name")
    if t.startswith("$"):
        head, rest = _split_pv(t)
    else:
        head, _s, rest = t.partition("/")
        rest = "/" + rest if _s else ""
    suffix = rest[1:] if rest.startswith("/") else rest
    if rest and not rest.startswith("/"):
        raise ValueError(f"unexpected \"{rest}\" after {head}")
    ref_flags, ref_table = "", ""
    if suffix:
        if table:
            ref_table = suffix
        elif all(c in flags + flags.upper() for c in suffix):
            ref_flags = suffix.lower()
        else:
            raise ValueError(f"unknown flags \"{suffix}\" (allowed: {flags or 'none'})")
    if classes and head.lower() in ("a", "i", "s"):
        return AvpRef(None, head.lower(), ref_flags, ref_table)
    return AvpRef(_avp_name(head), "a", ref_flags, ref_table)


@dataclass(frozen=True)
class Source:
    """Whose preferences a DB function works on: a PV or a constant, and how it matches
    (uri: username [+ domain with use_domain], username, domain, or uuid)."""

    pv: Optional[PvSpec]
    const: str
    mode: str


def source(text: str) -> Source:
    """`$fu`, `$ru/username`, `$avp(x)/uuid`, `some-uuid`... (Kamailio avp_db_* source)."""
    t = text.strip()
    if not t:
        raise ValueError("empty source")
    mode = ""
    head, _s, suffix = t.rpartition("/")
    if _s and suffix.lower() in ("username", "domain", "uri", "uuid"):
        t, mode = head, suffix.lower()
    if t.startswith("$"):
        try:
            spec = parse_pv(t)
        except PvError as exc:
            raise ValueError(str(exc)) from None
        return Source(spec, "", mode or ("uri" if t in URI_PVS else "uuid"))
    if mode in ("uri", "username", "domain") and not t.startswith("sip"):
        raise ValueError(f"/{mode} needs a pseudo-variable or a SIP URI")
    return Source(None, t, mode or "uuid")


@dataclass(frozen=True)
class Operand:
    """A value in an argument: a PV, or a constant (int for `i:N` and integer text)."""

    pv: Optional[PvSpec]
    const: Union[int, str, None]


def operand(text: str) -> Operand:
    if text.startswith("$"):
        try:
            return Operand(parse_pv(text), None)
        except PvError as exc:
            raise ValueError(str(exc)) from None
    if text[:2] in ("i:", "I:"):
        try:
            return Operand(None, int(text[2:], 0))
        except ValueError:
            raise ValueError(f"\"{text}\" is not an integer") from None
    if text[:2] in ("s:", "S:"):
        return Operand(None, text[2:])
    if re.fullmatch(r"[+-]?\d+", text):
        return Operand(None, int(text))
    return Operand(None, text)


@dataclass(frozen=True)
class OpValue:
    """"op/value[/flags]" of avp_check and avp_op."""

    op: str
    value: Optional[Operand]
    flags: str
    regex: Optional["re.Pattern[str]"] = None


def op_value(text: str, ops: tuple[str, ...], flags: str) -> OpValue:
    op, _s, rest = text.strip().partition("/")
    op = op.lower()
    if op not in ops:
        raise ValueError(f"unknown operation \"{op}\" (one of {', '.join(ops)})")
    fl = ""
    head, s2, tail = rest.rpartition("/")
    if s2 and tail and all(c in flags + flags.upper() for c in tail):
        rest, fl = head, tail.lower()
    if op == "not":
        return OpValue(op, None, fl)
    if not rest:
        raise ValueError(f"\"{op}\" needs a value")
    val = operand(rest)
    rx = None
    if op == "re" and val.pv is None:
        try:
            rx = re.compile(str(val.const), re.I if "i" in fl else 0)
        except re.error as exc:
            raise ValueError(f"bad regular expression \"{val.const}\": {exc}") from None
    return OpValue(op, val, fl, rx)


@dataclass(frozen=True)
class Subst:
    """"/regexp/replacement/flags" (sed-like; \\0..\\9 and PVs in the replacement)."""

    regex: "re.Pattern[str]"
    repl: Format
    count: int                          # 0: every match ('g'), 1: the first


def subst(text: str) -> Subst:
    t = text
    if len(t) < 4:
        raise ValueError(f"bad substitution \"{text}\"")
    sep = t[0]
    parts: list[str] = []
    cur: list[str] = []
    i = 1
    while i < len(t):
        c = t[i]
        if c == "\\" and i + 1 < len(t) and t[i + 1] == sep:
            cur.append(sep)
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    if len(parts) != 3:
        raise ValueError(f"bad substitution \"{text}\" (expected {sep}re{sep}repl{sep}flags)")
    rx_text, repl, fl = parts
    if any(c not in "gGiI" for c in fl):
        raise ValueError(f"unknown substitution flags \"{fl}\"")
    try:
        rx = re.compile(rx_text, re.I if "i" in fl.lower() else 0)
    except re.error as exc:
        raise ValueError(f"bad regular expression \"{rx_text}\": {exc}") from None
    try:
        fmt = parse_format(repl)
    except PvError as exc:
        raise ValueError(str(exc)) from None
    return Subst(rx, fmt, 0 if "g" in fl.lower() else 1)


def expand(m: "re.Match[str]", template: str) -> str:
    """The replacement TEMPLATE with \\0..\\9 taken from match M."""
    out: list[str] = []
    i = 0
    while i < len(template):
        c = template[i]
        if c == "\\" and i + 1 < len(template) and template[i + 1].isdigit():
            g = int(template[i + 1])
            out.append((m.group(g) or "") if g <= (m.re.groups or 0) else "")
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class SubstAvps:
    """"$avp(src)[/$avp(dst)][/flags]" of avp_subst (flags: g all values, d delete src)."""

    src: AvpName
    dst: Optional[AvpName]
    flags: str


def subst_avps(text: str) -> SubstAvps:
    parts = _slash_parts(text.strip())
    if not parts or len(parts) > 3:
        raise ValueError(f"bad AVP spec \"{text}\"")
    src = _avp_name(parts[0])
    dst: Optional[AvpName] = None
    fl = ""
    for p in parts[1:]:
        if p.startswith("$") or p[:2] in ("i:", "s:"):
            if dst is not None:
                raise ValueError(f"two destinations in \"{text}\"")
            dst = _avp_name(p)
        elif all(c in "gGdD" for c in p):
            fl = p.lower()
        else:
            raise ValueError(f"unknown flags \"{p}\" (allowed: g, d)")
    return SubstAvps(src, dst, fl)


def _slash_parts(text: str) -> list[str]:
    """Split on "/" outside PV tokens ("$avp(a)/$avp(b)/g" -> three parts)."""
    out: list[str] = []
    i, start = 0, 0
    while i < len(text):
        if text[i] == "$":
            i += len(_split_pv(text[i:])[0])
            continue
        if text[i] == "/":
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return [p for p in out if p] if text else []


@dataclass(frozen=True)
class PushDest:
    """avp_pushto destination: $ru (whole, /username or /domain), $du, $br, or another
    writable PV."""

    kind: str                           # "ru", "rU", "rd", "du", "br", "pv"
    pv: Optional[PvSpec] = None


def push_dest(text: str) -> PushDest:
    t = text.strip()
    base, _s, part = t.partition("/")
    if base == "$ru":
        if not part:
            return PushDest("ru")
        if part.lower() in ("username", "domain"):
            return PushDest("rU" if part.lower() == "username" else "rd")
        raise ValueError(f"unknown part \"{part}\" of $ru (username or domain)")
    if part:
        raise ValueError(f"\"/{part}\" is allowed only after $ru")
    if base in ("$du", "$br"):
        return PushDest(base[1:])
    try:
        spec = parse_pv(base)
    except PvError as exc:
        raise ValueError(str(exc)) from None
    if not getattr(spec, "writable", False):
        raise ValueError(f"{base} cannot be written")
    return PushDest("pv", spec)


@dataclass(frozen=True)
class WriteValue:
    """avp_write value: `$pv[/username|/domain]`, `i:N`, `s:text` or text with PVs."""

    fmt: Optional[Format]
    const: Union[int, str, None]
    part: str = ""


def write_value(text: str) -> WriteValue:
    t = text
    if t.startswith("$"):
        pv, rest = _split_pv(t)
        if rest.lower() in ("/username", "/domain"):
            return WriteValue(parse_format(pv), None, rest[1:].lower())
    if t[:2] in ("i:", "I:", "s:", "S:"):
        return WriteValue(None, operand(t).const)
    try:
        return WriteValue(parse_format(t), None)
    except PvError as exc:
        raise ValueError(str(exc)) from None
