"""avpops: operations on AVPs - write, delete, check, copy, push into the message, print,
integer operations, regex substitution - and AVPs loaded from / stored to the database
(the `usr_preferences` table).

Runs in: SIP workers (the functions; a DB engine per process, opened in child_init), the
master (mod_init: the preferences table's version check).
Shared state: none. The AVPs are the message's (`$avp`, sipcore.pv.vars.AvpList), which tm
keeps with the transaction, so AVPs written here are seen in failure_route and onreply_route.
Argument texts are parsed once at compile time (avpops_parse.py); names, flags, return
codes and the `type` column follow Kamailio's avpops.
Kamailio equivalent: modules/avpops.
"""
from __future__ import annotations

import fnmatch
import logging
import re
from typing import Any, Optional

from sipcore import db
from sipcore.errors import ModuleError
from sipcore.mod import Custom, ModContext, Module
from sipcore.msg import ParseError
from sipcore.msg.uri import parse_uri
from sipcore.proc import ranks
from sipcore.pv import PvError, cached_pv
from sipcore.pv.spec import ALL, PvValue, to_int, to_str
from sipcore.pv.vars import AvpName, avps
from sipcore.route.ctx import Branch, RouteCtx

from . import avpops_db as adb
from . import avpops_parse as ap

log = logging.getLogger(__name__)

mod = Module("avpops", summary="AVP operations: write, delete, check, copy, push, print, "
             "arithmetic, substitution, and AVPs from the database (usr_preferences).")

mod.param("db_url", str, None, doc="Database with the preferences table (avp_db_* functions).")
mod.param("avp_table", str, None, doc="Preferences table used when the name has no \"/table\" "
          "(usually \"usr_preferences\").")
mod.param("use_domain", int, 0, doc="1: a URI source matches username and domain; 0: username "
          "only.")
mod.param("uuid_column", str, "uuid", doc="Column with the uuid.")
mod.param("username_column", str, "username", doc="Column with the username.")
mod.param("domain_column", str, "domain", doc="Column with the domain.")
mod.param("attribute_column", str, "attribute", doc="Column with the AVP name.")
mod.param("value_column", str, "value", doc="Column with the AVP value.")
mod.param("type_column", str, "type", doc="Column with the type: bit 1 integer value, bit 2 "
          "integer name.")

PREFS_VERSION = 2       # usr_preferences


def _cols() -> adb.Columns:
    p = mod.p
    return adb.Columns(p.uuid_column, p.username_column, p.domain_column,
                       p.attribute_column, p.type_column, p.value_column)


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: with db_url and avp_table, check the table's version row."""
    url, tname = mod.p.db_url, mod.p.avp_table
    if url and tname:
        try:
            table_version = db.table_version(url, tname)
            if table_version != PREFS_VERSION:
                raise ModuleError(f"avpops: table {tname} has version {table_version} in "
                                  f"{db.display_url(url)}, expected {PREFS_VERSION} "
                                  "(create it with `pykamctl db create`)")
        except db.DbError as exc:
            raise ModuleError(f"avpops: {exc}") from None
        finally:
            db.dispose_engine(url)


@mod.on_child_init
def _child_init(ctx: ModContext, rank: int) -> None:
    """Every child: its own engine (connections open on first use)."""
    if mod.p.db_url and rank not in (ranks.PROC_INIT, ranks.PROC_MAIN):
        db.get_engine(mod.p.db_url)


def _values(ctx: RouteCtx, ref: ap.AvpRef) -> list[tuple[AvpName, PvValue]]:
    """(name, value) of the AVPs REF designates, newest first; only the first value of a
    name unless REF has the 'g' flag (classes 'a'/'i'/'s' always take every value)."""
    lst = ctx.avps
    if lst is None:
        return []
    if ref.name is not None:
        vals = lst.values(ref.name)
        return [(ref.name, v) for v in (vals if "g" in ref.flags else vals[:1])]
    return [(n, v) for n in lst.names() if ref.matches(n) for v in lst.values(n)]


def _operand(ctx: RouteCtx, o: ap.Operand) -> PvValue:
    return o.pv.get(ctx) if o.pv is not None else o.const


# ---- writing, deleting, checking ------------------------------------------------------------

@mod.function("avp_write", args=(Custom(ap.write_value, name="value"),
                                  Custom(ap.avp_ref, name="AVP name")))
def ki_avp_write(ctx: RouteCtx, value: ap.WriteValue, name: ap.AvpRef) -> int:
    """Add an AVP NAME with VALUE: "i:N" (integer), "s:text", text with PVs, or a URI PV with
    "/username" or "/domain" for that part; 1, -1 when the value is $null."""
    if value.fmt is None:
        v: PvValue = value.const
    else:
        v = value.fmt.value(ctx)
        if value.part and v is not None:
            try:
                u = parse_uri(to_str(v))
            except (ParseError, ValueError):
                log.error('avp_write: "%s" is not a URI', v)
                return -1
            v = u.user if value.part == "username" else u.host
    if v is None or name.name is None:
        return -1
    avps(ctx).add(name.name, v)
    return 1


@mod.function("avp_delete", args=(Custom(lambda t: ap.avp_ref(t, "g", classes=True),
                                         name="AVP name"),))
def ki_avp_delete(ctx: RouteCtx, name: ap.AvpRef) -> int:
    """Delete AVP NAME ($avp(x): its newest value, "/g" every value) or every AVP of a class
    ("a" all, "i" integer names, "s" string names); 1."""
    lst = ctx.avps
    if lst is None:
        return 1
    if name.name is not None:
        lst.delete(name.name, ALL if "g" in name.flags else 0)
        return 1
    for n in [n for n in lst.names() if name.matches(n)]:
        lst.delete(n, ALL)
    return 1


@mod.function("is_avp_set", args=(Custom(lambda t: ap.avp_ref(t, "ns"), name="AVP name"),))
def ki_is_avp_set(ctx: RouteCtx, name: ap.AvpRef) -> int:
    """1 if AVP NAME exists (with "/n" an integer value, "/s" a string value), else -1."""
    for _n, v in _values(ctx, ap.AvpRef(name.name, flags="g")):
        if "n" in name.flags and not isinstance(v, int):
            continue
        if "s" in name.flags and not isinstance(v, str):
            continue
        return 1
    return -1


def _as_int(v: PvValue) -> Optional[int]:
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"\s*[+-]?\d+\s*", v):
        return int(v)
    return None


def check_one(v: PvValue, op: str, ref: PvValue, flags: str,
              rx: Optional["re.Pattern[str]"]) -> bool:
    """Kamailio ops_check_avp for one value: eq ne lt le gt ge (integers when both are,
    strings otherwise; 'i' ignores case), re (regex search), fm (fnmatch), and/or/xor
    (bitwise, true when the result is not 0)."""
    if v is None or ref is None:
        return False
    if op in ("and", "or", "xor"):
        a, b = _as_int(v), _as_int(ref)
        if a is None or b is None:
            return False
        return bool({"and": a & b, "or": a | b, "xor": a ^ b}[op])
    ci = "i" in flags
    if op == "re":
        pat = rx if rx is not None else re.compile(to_str(ref), re.I if ci else 0)
        return pat.search(to_str(v)) is not None
    if op == "fm":
        a_s, b_s = to_str(v), to_str(ref)
        return fnmatch.fnmatchcase(a_s.lower(), b_s.lower()) if ci else \
            fnmatch.fnmatchcase(a_s, b_s)
    ai, bi = _as_int(v), _as_int(ref)
    a: Any
    b: Any
    if isinstance(v, int) or isinstance(ref, int):
        if ai is None or bi is None:
            return False
        a, b = ai, bi
    else:
        a, b = (to_str(v).lower(), to_str(ref).lower()) if ci else (to_str(v), to_str(ref))
    return {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b,
            "ge": a >= b}[op]


@mod.function("avp_check", args=(Custom(ap.avp_ref, name="AVP name"),
                                  Custom(lambda t: ap.op_value(t, ap.CHECK_OPS, "gi"),
                                         name="op/value[/flags]")))
def ki_avp_check(ctx: RouteCtx, name: ap.AvpRef, opv: ap.OpValue) -> int:
    """Compare AVP NAME with "op/value[/flags]" (ops eq ne lt le gt ge re fm and or xor;
    value "i:N", "s:text", text or a PV; flags g: any value of the AVP, i: ignore case);
    1 when it matches, -1 otherwise."""
    assert opv.value is not None
    ref = _operand(ctx, opv.value)
    scope = ap.AvpRef(name.name, flags="g" if "g" in opv.flags else "")
    try:
        for _n, v in _values(ctx, scope):
            if check_one(v, opv.op, ref, opv.flags, opv.regex):
                return 1
    except re.error as exc:
        log.error('avp_check: bad regular expression "%s": %s', ref, exc)
    return -1


# ---- copying, pushing, printing ---------------------------------------------------------------

@mod.function("avp_copy", args=(Custom(ap.avp_ref, name="AVP name"),
                                 Custom(lambda t: ap.avp_ref(t, "gdns"), name="AVP name")))
def ki_avp_copy(ctx: RouteCtx, old: ap.AvpRef, new: ap.AvpRef) -> int:
    """Copy AVP OLD to NEW ("/g" every value, order kept; "/d" delete OLD's copied values,
    i.e. move; "/n" or "/s" convert to integer or string); 1, -1 when OLD has no value."""
    src = _values(ctx, ap.AvpRef(old.name, flags=new.flags))
    if not src or new.name is None or old.name is None:
        return -1
    lst = avps(ctx)
    for _n, v in reversed(src):                  # oldest first: NEW keeps OLD's order
        if "n" in new.flags:
            v = to_int(v)
        elif "s" in new.flags:
            v = to_str(v)
        lst.add(new.name, v)
    if "d" in new.flags and old.name != new.name:
        lst.delete(old.name, ALL if "g" in new.flags else 0)
    return 1


@mod.function("avp_pushto", args=(Custom(ap.push_dest, name="destination"),
                                   Custom(lambda t: ap.avp_ref(t, "g"), name="AVP name")))
def ki_avp_pushto(ctx: RouteCtx, dest: ap.PushDest, name: ap.AvpRef) -> int:
    """Write AVP NAME into the R-URI ($ru, or its "/username" or "/domain"), $du, a new
    branch ($br) or another writable PV; "/g" pushes every value (one branch each for $br);
    1, -1 when the AVP has no value or the write fails."""
    vals = _values(ctx, name)
    if not vals:
        return -1
    for _n, v in vals:
        text = to_str(v)
        try:
            if dest.kind == "br":
                ctx.branches.append(Branch(uri=text))
            elif dest.kind == "pv":
                assert dest.pv is not None
                dest.pv.set(ctx, v)
            else:
                cached_pv("$" + dest.kind).set(ctx, text)
        except (PvError, ParseError, ValueError) as exc:
            log.error('avp_pushto: cannot set %s to "%s": %s', dest.kind, text, exc)
            return -1
    return 1


@mod.function("avp_print", args=())
def ki_avp_print(ctx: RouteCtx) -> int:
    """Log every AVP of the message (name, type, value) at level INFO; 1."""
    lst = ctx.avps
    for n in (lst.names() if lst is not None else []):
        for v in lst.values(n):          # type: ignore[union-attr]
            log.info("avp_print: name=<%s> name_type=%s value=<%s> value_type=%s",
                     n, "int" if isinstance(n, int) else "str", v,
                     "int" if isinstance(v, int) else "str")
    return 1


# ---- arithmetic and substitution --------------------------------------------------------------

def arith(op: str, a: int, b: int) -> int:
    """avp_op's operation with C integer semantics (division truncates toward zero)."""
    if op in ("div", "mod"):
        q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
        return q if op == "div" else a - q * b
    return {"add": a + b, "sub": a - b, "mul": a * b, "and": a & b, "or": a | b,
            "xor": a ^ b, "not": ~a}[op]


@mod.function("avp_op", args=(Custom(ap.subst_avps, name="src[/dst]"),
                               Custom(lambda t: ap.op_value(t, ap.ARITH_OPS, "gd"),
                                      name="op/value[/flags]")))
def ki_avp_op(ctx: RouteCtx, names: ap.SubstAvps, opv: ap.OpValue) -> int:
    """Integer operation on AVP src (add sub mul div mod and or xor not, value "i:N" or a
    PV); the result replaces src, or is added as dst; flags g: every value, d: delete src
    (with dst). 1, -1 when src has no integer value or on division by 0."""
    ref: Optional[int] = None
    if opv.value is not None:
        ref = _as_int(_operand(ctx, opv.value))
        if ref is None:
            return -1
    src = _values(ctx, ap.AvpRef(names.src, flags="g" if "g" in opv.flags else ""))
    lst = avps(ctx)
    done = 0
    results: list[int] = []
    for idx, (_n, v) in enumerate(src):
        a = _as_int(v)
        if a is None:
            continue
        if opv.op in ("div", "mod") and not ref:
            log.error("avp_op: %s by zero", opv.op)
            return -1
        r = arith(opv.op, a, ref or 0)
        if names.dst is None:
            lst.replace(names.src, idx, r)
        else:
            results.append(r)
        done += 1
    for r in reversed(results):
        lst.add(names.dst, r)                              # type: ignore[arg-type]
    if done and names.dst is not None and "d" in opv.flags and names.dst != names.src:
        lst.delete(names.src, ALL if "g" in opv.flags else 0)
    return 1 if done else -1


@mod.function("avp_subst", args=(Custom(ap.subst_avps, name="src[/dst][/flags]"),
                                  Custom(ap.subst, name="/re/repl/flags")))
def ki_avp_subst(ctx: RouteCtx, names: ap.SubstAvps, sub: ap.Subst) -> int:
    """sed-like substitution on the string values of AVP src (\\0..\\9 and PVs in the
    replacement; subst flags g: every match, i: ignore case); the result replaces src or is
    added as dst; flags g: every value of src, d: delete src (with dst). 1 when something
    was substituted, -1 otherwise."""
    src = _values(ctx, ap.AvpRef(names.src, flags=names.flags))
    lst = avps(ctx)
    template = sub.repl.eval(ctx)
    out: list[tuple[int, str]] = []
    for idx, (_n, v) in enumerate(src):
        if not isinstance(v, str):
            continue
        new, n = sub.regex.subn(lambda m: ap.expand(m, template), v, count=sub.count)
        if n:
            out.append((idx, new))
    if not out:
        return -1
    if names.dst is None or names.dst == names.src:
        for idx, new in out:
            lst.replace(names.src, idx, new)
        return 1
    for _idx, new in reversed(out):
        lst.add(names.dst, new)
    if "d" in names.flags:
        lst.delete(names.src, ALL if "g" in names.flags else 0)
    return 1


# ---- database -----------------------------------------------------------------------------------

def _owner(ctx: RouteCtx, src: ap.Source) -> Optional[adb.Owner]:
    """The rows' owner for SRC: uuid, username[+domain], username or domain columns."""
    cols = _cols()
    text = src.const if src.pv is None else to_str(src.pv.get(ctx))
    if not text:
        return None
    if src.mode == "uuid":
        return adb.Owner(((cols.uuid, text),))
    try:
        u = parse_uri(text)
    except (ParseError, ValueError):
        log.error('avpops: "%s" is not a URI', text)
        return None
    if src.mode == "username":
        return adb.Owner(((cols.username, u.user),))
    if src.mode == "domain":
        return adb.Owner(((cols.domain, u.host),))
    if int(mod.p.use_domain):
        return adb.Owner(((cols.username, u.user), (cols.domain, u.host)))
    return adb.Owner(((cols.username, u.user),))


def _db_args(ctx: RouteCtx, src: ap.Source, name: ap.AvpRef, what: str
             ) -> Optional[tuple[str, str, adb.Owner]]:
    url = mod.p.db_url
    tname = name.table or mod.p.avp_table
    if not url or not tname:
        log.error('%s: no db_url or table (avp_table or "/table" in the name)', what)
        return None
    owner = _owner(ctx, src)
    if owner is None:
        return None
    return url, tname, owner


_DB_NAME = Custom(lambda t: ap.avp_ref(t, classes=True, table=True), name="AVP name[/table]")
_DB_SRC = Custom(ap.source, name="source")


@mod.function("avp_db_load", args=(_DB_SRC, _DB_NAME))
def ki_avp_db_load(ctx: RouteCtx, src: ap.Source, name: ap.AvpRef) -> int:
    """Load the preferences of SOURCE ($fu, $ru, $tu, $du: the URI's user [and domain with
    use_domain]; "/username", "/domain"; any other PV or text: the uuid column) into AVPs:
    NAME only, or every attribute ("a"), integer names ("i") or string names ("s"); 1 when
    something was loaded, -1 when nothing was or on a database error."""
    args = _db_args(ctx, src, name, "avp_db_load")
    if args is None:
        return -1
    try:
        rows = adb.load(*args[:2], _cols(), args[2], name.name, name.kind)
    except db.DbError:
        return -1
    lst = avps(ctx)
    for aname, value in rows:
        lst.add(aname, value)
    return 1 if rows else -1


@mod.function("avp_db_store", args=(_DB_SRC, _DB_NAME))
def ki_avp_db_store(ctx: RouteCtx, src: ap.Source, name: ap.AvpRef) -> int:
    """Write every value of AVP NAME (or of every AVP of a class) as rows of SOURCE; 1 when
    rows were written, -1 when the AVP has no value or on a database error."""
    args = _db_args(ctx, src, name, "avp_db_store")
    if args is None:
        return -1
    items = _values(ctx, ap.AvpRef(name.name, name.kind, "g"))
    items = [(n, v) for n, v in items if v is not None]
    try:
        n = adb.store(*args[:2], _cols(), args[2], list(reversed(items)))
    except db.DbError:
        return -1
    return 1 if n else -1


@mod.function("avp_db_delete", args=(_DB_SRC, _DB_NAME))
def ki_avp_db_delete(ctx: RouteCtx, src: ap.Source, name: ap.AvpRef) -> int:
    """Delete the rows of SOURCE for NAME (or for a class of names); 1, -1 on a database
    error."""
    args = _db_args(ctx, src, name, "avp_db_delete")
    if args is None:
        return -1
    try:
        adb.remove(*args[:2], _cols(), args[2], name.name, name.kind)
    except db.DbError:
        return -1
    return 1


__all__ = ["mod"]
