"""AST route blocks -> Python source, one function per block, with fixups done once.

Runs in: the master at configuration load (children inherit the compiled functions). Shared
state: none; the generated code touches only the RouteCtx it is given.

Every name the generated code needs (function implementations, PV getters/setters, compiled
formats and regexes, other routes) is bound once in the shared namespace dict, so a message
pays for attribute loads and calls only: no tree walking, no per-message parsing. Expression
compilation tracks a static type per node ('i' int, 's' str, 'a' any = int|str|None from a PV,
'b' Python bool) to inline coercions when the type is known and call the runtime helpers only
when it is not.

Names in the generated code (`pykam -c --print-routes` shows it), derived from the cfg text so
that it reads like the configuration:

- a route block: its label, `request_route`, `route_RELAY`, `failure_route_MANAGE_FAILURE`,
  `event_route_tm_local_request`;
- the implementation of cfg function NAME: `NAME` (`t_relay`). When the config uses a second
  implementation of NAME (another overload by arity), that one is `NAME_<n>`, n its number of
  arguments (`f_str` and `f_str_2`), or `NAME__<module>` when `NAME_<n>` is taken too;
- NAME with arguments parsed per call (a Custom fixup of a value with pseudo-variables):
  `NAME_dyn` (`NAME_<n>_dyn`, `NAME__<module>_dyn` as above);
- a parsed constant argument: an int or str result is written inline
  (`sl_send_reply(ctx, 404, 'Not here')`), another value is named after the fixup and the
  text (`methods_INVITE_SUBSCRIBE`), shared by the calls with the same text when immutable;
- PV getter / setter / spec: `get_<pv>` / `set_<pv>` / `pv_<pv>` (`get_rU`, `set_var_rc`);
- a string with pseudo-variables: `fmt_<first words>` (`fmt_Malformed_SIP_request`);
- a regular expression, an IP network: `rx_<pattern>`, `net_<network>`.

Text becomes an identifier by turning every run of other characters than letters, digits and
`_` into one `_` (long texts are cut at a word). A derived name already taken (by a runtime
helper, a Python keyword or builtin, `ctx`, `rc`, another route or another bound object) gets
the next alternative, and `_v2`, `_v3`... after the last one. Locals of the generated code
start with `_` (`_sv3`, `_m4`, `_w5`) or are `ctx` and `rc`.
"""
from __future__ import annotations

import builtins
import ipaddress
import keyword
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from sipcore.cfg import ast as A
from sipcore.cfg.lexer import parse_int
from sipcore.cfg.parser import IP_KEYWORDS
from sipcore.cfg.pos import Pos
from sipcore.cfg.regex import compile_posix
from sipcore.errors import ConfigError
from sipcore.mod.exports import Custom, FuncExport, Fx, RouteType

# (python source, static type)
_KEYWORDS: dict[str, tuple[str, str]] = {
    "method": ("ctx.msg.method", "s"),
    "uri": ("kw_uri(ctx)", "s"),
    "status": ("kw_status(ctx)", "s"),
    "from_uri": ("kw_from_uri(ctx)", "s"),
    "to_uri": ("kw_to_uri(ctx)", "s"),
    "src_ip": ("ctx.rcv.src_ip", "s"),
    "dst_ip": ("ctx.rcv.dst_ip", "s"),
    "src_port": ("ctx.rcv.src_port", "i"),
    "dst_port": ("ctx.rcv.dst_port", "i"),
    "proto": ("ctx.rcv.proto", "s"),
    "af": ("ctx.rcv.af", "i"),
    "msg:len": ("ctx.msg.len", "i"),
    "max_len": ("65535", "i"),
    "snd_ip": ("kw_snd_ip(ctx)", "s"),
    "snd_port": ("kw_snd_port(ctx)", "i"),
    "snd_proto": ("kw_snd_proto(ctx)", "s"),
    "to_proto": ("kw_snd_proto(ctx)", "s"),
    "snd_af": ("kw_snd_af(ctx)", "i"),
    "to_af": ("kw_snd_af(ctx)", "i"),
    "to_ip": ("kw_to_ip(ctx)", "s"),
    "to_port": ("kw_to_port(ctx)", "i"),
}
# Kamailio compares these old-style string keywords case-insensitively
_CI_KEYWORDS = {"method", "uri", "status", "from_uri", "to_uri", "proto", "snd_proto",
                "to_proto"}
_URI_KEYWORDS = {"uri", "from_uri", "to_uri"}

# Functions whose Fx.ROUTE argument names a route of a known kind.
ROUTE_ARG_KINDS: dict[str, str] = {
    "t_on_failure": "failure", "t_on_reply": "onreply", "t_on_branch": "branch",
    "t_on_branch_failure": "branch_failure",
}

KIND_LABEL = {"request": "request_route", "route": "route", "failure": "failure_route",
              "branch": "branch_route", "onreply": "onreply_route", "reply": "reply_route",
              "onsend": "onsend_route", "event": "event_route"}

_ROUTE_TYPE_NAMES = [(RouteType.REQUEST, "request_route"), (RouteType.FAILURE, "failure_route"),
                     (RouteType.ONREPLY, "onreply_route"), (RouteType.BRANCH, "branch_route"),
                     (RouteType.ONSEND, "onsend_route"), (RouteType.LOCAL, "local route"),
                     (RouteType.EVENT, "event_route"),
                     (RouteType.BRANCH_FAILURE, "branch-failure event_route")]


def route_types_text(rt: RouteType) -> str:
    names = [n for f, n in _ROUTE_TYPE_NAMES if rt & f]
    return ", ".join(names) if names else "no route"


_NON_IDENT = re.compile(r"[^0-9A-Za-z_]+")


def ident(text: str, limit: int = 0) -> str:
    """TEXT as the tail of a Python identifier: each run of characters other than letters,
    digits and `_` becomes one `_` (leading and trailing ones dropped); with LIMIT, cut after
    the last whole word that fits (or at LIMIT when the first word is longer)."""
    s = _NON_IDENT.sub("_", text).strip("_")
    if limit and len(s) > limit:
        cut = s.rfind("_", 0, limit + 1)
        s = s[:cut] if cut > 0 else s[:limit]
    return s or "x"


class Names:
    """The identifiers of one namespace of generated code: each name is handed out once."""

    RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | \
        frozenset(dir(builtins)) | {"__builtins__", "ctx", "rc"}

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken: set[str] = set(self.RESERVED)
        self._taken.update(taken)

    def __contains__(self, name: str) -> bool:
        return name in self._taken

    def new(self, *candidates: str) -> str:
        """The first free candidate; else the first one with `_v2`, `_v3`... appended."""
        candidates = tuple(c if c.isidentifier() else "n_" + c for c in candidates)
        for c in candidates:
            if c not in self._taken:
                self._taken.add(c)
                return c
        k = 2
        while f"{candidates[0]}_v{k}" in self._taken:
            k += 1
        name = f"{candidates[0]}_v{k}"
        self._taken.add(name)
        return name


def route_label(kind: str, name: Optional[str]) -> str:
    """`request_route`, `route[RELAY]`, `event_route[tm:local-request]`."""
    return KIND_LABEL[kind] + (f"[{name}]" if name is not None else "")


def _inline_const(v: Any) -> bool:
    """A parsed argument value the generated code can hold as a literal."""
    return v is None or v.__class__ in (int, str, bool)


def _shareable(v: Any) -> bool:
    """An immutable parsed value: equal fixups may share one bound object."""
    return isinstance(v, (frozenset, bytes, re.Pattern))


def make_dyn_call(impl: Callable[..., int], parsers: tuple[Optional[Callable[[str], Any]], ...],
                  name: str) -> Callable[..., int]:
    """Wrap a call whose Custom(dynamic=True) arguments are parsed per call: a bad value makes
    the function fail with -1 (and a log line), as Kamailio's runtime fixups do."""
    import logging

    log = logging.getLogger("pykam.script")

    def call(ctx: Any, *args: Any) -> int:
        conv = []
        for p, a in zip(parsers, args):
            if p is None:
                conv.append(a)
                continue
            try:
                conv.append(p(a))
            except ValueError as e:
                log.error("%s(): bad argument %r: %s", name, a, e)
                return -1
        return impl(ctx, *conv)

    return call


@dataclass
class RouteInfo:
    kind: str
    name: Optional[str]
    block: A.RouteBlock
    pyname: str
    mask: RouteType                 # where its function calls must be allowed
    runtime_type: RouteType         # ctx.route_type when run()
    source: str = ""
    linemap: list[Optional[Pos]] = field(default_factory=list)
    filename: str = ""


def render_routes(infos: Iterable[RouteInfo], described: dict[str, str]) -> str:
    """The generated Python of route blocks as `pykam -c --print-routes` prints it: a comment
    naming what the functions use from the shared namespace, then each block's function
    (headed by a comment with its kind, name and cfg file:line). Valid Python."""
    infos = list(infos)
    body = "\n".join(ri.source for ri in infos)
    used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", body))
    out = ["# The route blocks of the configuration compiled to Python, one function each,",
           "# called with the message's RouteCtx `ctx` (sipcore/cfg/codegen.py). Helpers from",
           "# sipcore/cfg/runtime.py: callv(ctx, rc) runs a call used as a value (sets $rc,",
           "# stops the script on 0, true when > 0), route_call() is route(NAME), to_int() and",
           "# to_str() convert script values; ScriptExit stops the script (exit, drop).",
           "# ctx.cfg_line is the cfg line of the call being made ($cfg(line)).",
           "# Names bound once when the configuration is loaded:"]
    width = max((len(n) for n in described if n in used), default=0)
    for name, desc in described.items():
        if name in used:
            out.append(f"#   {name:<{width}}  {desc}")
    if not infos:
        out.append("#   (no route blocks)")
    return "\n".join(out) + "\n\n\n" + "\n\n".join(ri.source for ri in infos)


class _Emitter:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.poss: list[Optional[Pos]] = []

    def emit(self, ind: int, text: str, pos: Optional[Pos]) -> None:
        self.lines.append("    " * ind + text)
        self.poss.append(pos)


class CodeGen:
    """Generates the functions of every route block into one namespace."""

    def __init__(self, registry: Any, routes: dict[str, dict[Optional[str], RouteInfo]],
                 flags: dict[str, int], globals_: dict[str, Any], ns: dict[str, Any],
                 errors: list[ConfigError]) -> None:
        self.registry = registry
        self.routes = routes
        self.flags = flags
        self.ns = ns
        self.errors = errors
        self.max_while = int(globals_.get("max_while_loops") or 0)
        self.max_rec = int(globals_.get("max_recursive_level") or 256)
        self._bound: dict[Any, str] = {}
        self._counter = 0
        self._pv_cache: dict[str, Any] = {}
        self._fmt_cache: dict[str, Any] = {}
        self._cur: Optional[RouteInfo] = None
        self._out = _Emitter()
        # the cfg line ctx.cfg_line is known to hold where the next line is emitted (None:
        # unknown), so that each statement sets it once and only when it changes
        self._line: Optional[int] = None
        self.names = Names(ns)
        # bound name -> what it is, for the reader of `pykam -c --print-routes`
        self.described: dict[str, str] = {}
        for tbl in routes.values():
            for ri in tbl.values():
                ri.pyname = self.names.new(ident(route_label(ri.kind, ri.name)))

    # ---- namespace ----------------------------------------------------------------------
    def bind(self, obj: Any, candidates: tuple[str, ...], key: Any = None, desc: str = ""
             ) -> str:
        """The namespace name of OBJ (bound once per KEY, default its identity): the first
        free name among CANDIDATES (see the module docstring)."""
        k = key if key is not None else ("id", id(obj))
        name = self._bound.get(k)
        if name is None:
            name = self.names.new(*candidates)
            self._bound[k] = name
            self.ns[name] = obj
            self.described[name] = desc
        return name

    def tmp(self, prefix: str) -> str:
        self._counter += 1
        return self.names.new(f"_{prefix}{self._counter}")

    def err(self, msg: str, pos: Pos) -> None:
        self.errors.append(ConfigError(msg, pos))

    # ---- routes -------------------------------------------------------------------------
    def gen_route(self, ri: RouteInfo) -> str:
        self._cur = ri
        self._out = _Emitter()
        self._line = None
        pos = ri.block.pos
        self._out.emit(0, f"# {route_label(ri.kind, ri.name)} at {pos.file}:{pos.line}", pos)
        self._out.emit(0, f"def {ri.pyname}(ctx):", pos)
        if not self.stmts(ri.block.body, 1, tail=True):
            self._out.emit(1, "return 1", ri.block.pos)   # fell off the end
        ri.source = "\n".join(self._out.lines) + "\n"
        ri.linemap = list(self._out.poss)
        return ri.source

    def emit(self, ind: int, text: str, pos: Optional[Pos]) -> None:
        self._out.emit(ind, text, pos)

    # ---- statements ---------------------------------------------------------------------
    def stmts(self, body: tuple[A.Stmt, ...], ind: int, tail: bool = False) -> bool:
        """TAIL: BODY ends the route block, so (as in Kamailio, where a block's value is its
        last action's) a trailing call's return code becomes the route's return value.

        True when BODY never completes (it ends in return, exit, drop, break, or an if whose
        branches all do). The statements after one that never completes are compiled, so
        that their errors are reported, but not emitted: they cannot run."""
        n0 = len(self._out.lines)
        done = False
        for i, s in enumerate(body):
            if done:
                self._unreachable(s, ind)
                continue
            nxt = body[i + 1] if i + 1 < len(body) else None
            done = self.stmt(s, ind, tail and nxt is None, _stops(nxt))
        if len(self._out.lines) == n0 or all(
                ln.strip().startswith("#") for ln in self._out.lines[n0:]):
            self.emit(ind, "pass", body[0].pos if body else None)
        return done

    def _unreachable(self, s: A.Stmt, ind: int) -> None:
        out, line = self._out, self._line
        self._out = _Emitter()
        try:
            self.stmt(s, ind)
        finally:
            self._out, self._line = out, line

    def set_line(self, ind: int, pos: Pos) -> None:
        """$cfg(line) and module log lines: ctx.cfg_line is the cfg line of the call being
        made. One int store before a statement that calls functions, left out when ctx.cfg_line
        already holds that line: set by an enclosing or earlier statement of the same line,
        with only calls of module functions in between (a route block they run on this ctx,
        through CompiledConfig.run, gives the line back when it ends); route() does not."""
        if self._line != pos.line:
            self.emit(ind, f"ctx.cfg_line = {pos.line}", pos)
            self._line = pos.line

    def stmt(self, s: A.Stmt, ind: int, tail: bool = False, stops_next: bool = False) -> bool:
        """Emit statement S; True when it never completes (see stmts). STOPS_NEXT: the next
        statement is an exit (or return(0)), which makes a call's own stop-on-0 redundant."""
        head: Optional[A.Expr] = None
        if isinstance(s, A.CallStmt):
            head = s.call
        elif isinstance(s, A.Assign):
            head = s.value
        elif isinstance(s, (A.If, A.While)):
            head = s.cond
        elif isinstance(s, A.Switch):
            head = s.expr
        elif isinstance(s, A.Return):
            head = s.value
        # (the value of exit(N) and drop(N) is checked, not evaluated: no call is made)
        if head is not None and _has_call(head):
            self.set_line(ind, s.pos)
            if _has_route_call(head) and not isinstance(s, A.While):
                self._line = None     # what comes next runs after the route()
        if isinstance(s, A.CallStmt):
            c = s.call
            if isinstance(c, A.RouteCall):
                src = self.route_call(c)
                if src:
                    self.emit(ind, f"return {src}" if tail else src, s.pos)
                return tail
            fn = self.resolve_call(c)
            if fn is None:
                return False
            if stops_next:   # `f(); exit;`: the script stops either way
                self.emit(ind, f"ctx.rc = {fn}", s.pos)
                return False
            self.emit(ind, f"rc = ctx.rc = {fn}", s.pos)
            self.emit(ind, "if rc == 0:", s.pos)
            self.emit(ind + 1, "raise ScriptExit()", s.pos)
            if tail:
                self.emit(ind, "return rc", s.pos)
            return tail
        if isinstance(s, A.Assign):
            self.assign(s, ind)
            return False
        if isinstance(s, A.If):
            return self.if_stmt(s, ind, "if", tail)
        if isinstance(s, A.Switch):
            self.switch(s, ind)
            return False
        if isinstance(s, A.While):
            self.while_stmt(s, ind)
            return False
        if isinstance(s, A.Return):
            self.return_stmt(s, ind)
        elif isinstance(s, A.Exit):
            if s.value is not None:
                self.ex(s.value)   # checked, value not used (exit(N) stops like exit)
            self.emit(ind, "raise ScriptExit()", s.pos)
        elif isinstance(s, A.Drop):
            if s.value is not None:
                self.ex(s.value)
            self.emit(ind, "ctx.dropped = True", s.pos)
            self.emit(ind, "raise ScriptExit(True)", s.pos)
        elif isinstance(s, A.Break):
            self.emit(ind, "break", s.pos)
        else:  # pragma: no cover - parser produces only the kinds above
            raise TypeError(f"unknown statement {s!r}")
        return True

    def if_stmt(self, s: A.If, ind: int, kw: str, tail: bool = False) -> bool:
        """True when no branch completes (there is an else, and every branch stops)."""
        cond = self.pos_truth(*self.ex(s.cond)[:2])
        self.emit(ind, f"{kw} {cond}:", s.pos)
        if kw == "elif" and _has_route_call(s.cond):
            self._line = None
        after_cond = self._line
        ends: list[Optional[int]] = []     # the line known at the end of each branch that ends
        done = self.stmts(s.then, ind + 1, tail)
        if not done:
            ends.append(self._line)
        self._line = after_cond
        if s.orelse is None:
            ends.append(after_cond)
            done = False
        elif len(s.orelse) == 1 and isinstance(s.orelse[0], A.If):
            if not self.if_stmt(s.orelse[0], ind, "elif", tail):
                ends.append(self._line)
                done = False
        else:
            self.emit(ind, "else:", s.pos)
            if not self.stmts(s.orelse, ind + 1, tail):
                ends.append(self._line)
                done = False
        self._line = _same(ends)
        return done

    def while_stmt(self, s: A.While, ind: int) -> None:
        cond = self.pos_truth(*self.ex(s.cond)[:2])
        if self.max_while > 0:
            n = self.tmp("w")
            self.emit(ind, f"{n} = 0", s.pos)
            self.emit(ind, f"while {cond}:", s.pos)
            self.emit(ind + 1, f"{n} += 1", s.pos)
            self.emit(ind + 1, f"if {n} > {self.max_while}:", s.pos)
            self.emit(ind + 2, f"while_runaway({self.max_while}, {str(s.pos)!r})", s.pos)
            self.emit(ind + 2, "break", s.pos)
        else:
            self.emit(ind, f"while {cond}:", s.pos)
        # the condition runs before each pass: with calls in it, at the while's line (set
        # before the loop by stmt(), and again at the end of a body that changed it)
        calls = _has_call(s.cond)
        self._line = s.pos.line if calls and not _has_route_call(s.cond) else None
        if not self.stmts(s.body, ind + 1) and calls:
            self.set_line(ind + 1, s.pos)
        self._line = None

    def switch(self, s: A.Switch, ind: int) -> None:
        labels = [c for c in s.cases if c.label is not None]
        int_mode = bool(labels) and all(
            not c.is_regex and isinstance(c.label, A.Const) and isinstance(c.label.value, int)
            for c in labels)
        conds: list[tuple[int, str]] = []
        for idx, c in enumerate(s.cases):
            if c.label is None:
                continue
            if c.is_regex:
                assert isinstance(c.label, A.Const)
                rx = self.regex(str(c.label.value), 0, c.label.pos)
                if rx is not None:
                    conds.append((idx, f"{rx}.search({{sv}}) is not None"))
                continue
            if isinstance(c.label, A.Word):
                self.err(f"unknown identifier \"{c.label.text}\" as case label (missing "
                         "#!define?)", c.label.pos)
                continue
            ok, val = self.static_value(c.label)
            if not ok:
                self.err("case label must be a constant (int or string)", c.label.pos)
                continue
            if int_mode:
                conds.append((idx, f"{{sv}} == {int(val)!r}"))
            else:
                if isinstance(val, int) and not isinstance(val, bool):
                    self.err("mixed int and string case labels in the same switch", c.pos)
                    continue
                conds.append((idx, f"{{sv}} == {str(val)!r}"))
        defaults = [i for i, c in enumerate(s.cases) if c.label is None]
        if len(defaults) > 1:
            self.err("more than one 'default' in switch", s.cases[defaults[1]].pos)
        default_idx = defaults[0] if defaults else len(s.cases)
        src, t, _ = self.ex(s.expr)
        sv, m = self.tmp("sv"), self.tmp("m")
        self.emit(ind, f"{sv} = {self.as_int(src, t) if int_mode else self.as_str(src, t)}",
                  s.pos)
        if conds:
            for k, (idx, cond) in enumerate(conds):
                self.emit(ind, f"{'if' if k == 0 else 'elif'} {cond.format(sv=sv)}:", s.pos)
                self.emit(ind + 1, f"{m} = {idx}", s.pos)
            self.emit(ind, "else:", s.pos)
            self.emit(ind + 1, f"{m} = {default_idx}", s.pos)
        else:
            self.emit(ind, f"{m} = {default_idx}", s.pos)
        self.emit(ind, "while True:", s.pos)   # a loop so that `break` leaves the switch
        entry = self._line
        done = False
        for idx, c in enumerate(s.cases):
            if c.body:   # an empty case just falls through to the next one
                self.emit(ind + 1, f"if {m} <= {idx}:", c.pos)
                # jumped to, or fallen into from the case before when that one completes
                self._line = entry if done else _same([entry, self._line])
                done = self.stmts(c.body, ind + 2)
        self.emit(ind + 1, "break", s.pos)
        self._line = None

    def return_stmt(self, s: A.Return, ind: int) -> None:
        if s.value is None:
            self.emit(ind, "return 1", s.pos)
            return
        src, t, const = self.ex(s.value)
        if const:
            v = self._const_eval(self.as_int(src, t))
            if v == 0:
                self.emit(ind, "raise ScriptExit()", s.pos)
            else:
                self.emit(ind, f"return {v!r}", s.pos)
            return
        self.emit(ind, f"return ret_value({self.as_int(src, t)})", s.pos)

    def assign(self, s: A.Assign, ind: int) -> None:
        text = s.target.text
        spec = self.pv_spec(s.target)
        src, t, _ = self.ex(s.value)
        if spec is None:
            return
        if text.startswith("$(") and "{" in text:
            self.err(f"cannot assign to {text}: transformations are not allowed on the left "
                     "side", s.pos)
            return
        if not getattr(spec, "writable", False):
            self.err(f"read only pvar in assignment left side: {text}", s.pos)
            return
        setter = self.bind(spec.set, (f"set_{ident(text)}",), ("set", text), f"writes {text}")
        self.emit(ind, f"{setter}(ctx, {self.val(src, t)})", s.pos)

    # ---- calls --------------------------------------------------------------------------
    def route_call(self, c: A.RouteCall) -> Optional[str]:
        ok, val = self.static_value(c.target)
        if ok and not (isinstance(val, str) and "$" in val):
            name = str(val)
            ri = self.routes.get("route", {}).get(name)
            if ri is None:
                self.err(f"unknown route \"{name}\" in route() (no route[{name}] block)",
                         c.target.pos)
                return None
            return f"route_call(ctx, {ri.pyname}, {name!r}, {self.max_rec})"
        if ok:
            fmt = self.format(str(val), c.target.pos)
            if fmt is None:
                return None
            return f"route_dynamic(ctx, ROUTES, {fmt}, {self.max_rec})"
        src, t, _ = self.ex(c.target)
        return f"route_dynamic(ctx, ROUTES, {self.val(src, t)}, {self.max_rec})"

    def resolve_call(self, c: A.Call) -> Optional[str]:
        """`F(ctx, args...)` for a function call, or None after recording errors."""
        overloads: list[FuncExport] = self.registry.find_function(c.name)
        if not overloads:
            self.err(f"unknown function \"{c.name}\" (unknown command, missing loadmodule?)",
                     c.pos)
            for a in c.args:   # still check the arguments (unknown PVs...)
                if not isinstance(a, A.Word):
                    self.ex(a)
            return None
        n = len(c.args)
        fe = next((o for o in overloads if len(o.args) == n), None)
        if fe is None:
            counts = sorted({len(o.args) for o in overloads})
            exp = " or ".join(str(k) for k in counts)
            self.err(f"wrong number of arguments for {c.name}(): got {n}, expected {exp}",
                     c.pos)
            return None
        assert self._cur is not None
        if not (fe.routes & self._cur.mask):
            where = KIND_LABEL[self._cur.kind]
            if self._cur.kind == "route":
                where = f"route[{self._cur.name}] (reached from {route_types_text(self._cur.mask)})"
            self.err(f"{c.name}() is not allowed in {where} (allowed in: "
                     f"{route_types_text(fe.routes)}) - command cannot be used in the block",
                     c.pos)
        args: list[str] = []
        parsers: list[Optional[Callable[[str], Any]]] = []
        dynamic = False
        for i, (arg, fx) in enumerate(zip(c.args, fe.args)):
            src, parser = self.fixup(c, i, arg, fx)
            args.append(src)
            parsers.append(parser)
            dynamic = dynamic or parser is not None
        base = ident(c.name)
        cands = (base, f"{base}_{n}", f"{base}__{ident(fe.module or 'core')}")
        desc = (f"{fe.module or 'core'}: {c.name}(), {n} argument{'' if n == 1 else 's'} "
                f"({getattr(fe.impl, '__module__', '?')}."
                f"{getattr(fe.impl, '__qualname__', '?')})")
        if dynamic:
            ptuple = tuple(parsers)
            impl = make_dyn_call(fe.impl, ptuple, c.name)
            key = ("dyn", id(fe.impl), tuple(id(p) if p is not None else None for p in ptuple))
            fname = self.bind(impl, tuple(f"{x}_dyn" for x in cands), key,
                              desc + ", arguments parsed per call")
        else:
            fname = self.bind(fe.impl, cands, ("impl", id(fe.impl)), desc)
        return f"{fname}(ctx{''.join(', ' + a for a in args)})"

    def fixup(self, c: A.Call, i: int, arg: A.Expr, fx: Any
              ) -> tuple[str, Optional[Callable[[str], Any]]]:
        """Source for one argument (and a per-call parser for dynamic Custom fixups)."""
        where = f"argument {i + 1} of {c.name}()"
        bad = ("0", None)
        if isinstance(arg, A.Word) and fx is not Fx.FLAG and not self._word_ok(arg):
            self.err(f"unknown identifier \"{arg.text}\" in {where} (missing #!define?)",
                     arg.pos)
            return bad
        ok, val = self.static_value(arg)
        if isinstance(fx, Custom):
            if ok:
                if fx.dynamic and isinstance(val, str) and "$" in val:
                    fmt = self.format(val, arg.pos)
                    return (fmt or "''"), fx.parse
                try:
                    parsed = fx.parse(str(val))
                except ValueError as e:
                    self.err(f"bad {where}: {e}", arg.pos)
                    return bad
                if _inline_const(parsed):
                    return repr(parsed), None
                key = ("const", id(fx.parse), str(val)) if _shareable(parsed) else None
                return self.bind(parsed, (f"{ident(fx.name)}_{ident(str(val), 32)}",), key,
                                 f"{_short_repr(parsed)}  ({fx.name} {str(val)!r})"), None
            if not fx.dynamic:
                self.err(f"{where} must be a constant ({fx.name})", arg.pos)
                return bad
            src, t, _ = self.ex(arg)
            return self.as_str(src, t), fx.parse
        if fx is Fx.STR:
            if not ok:
                self.err(f"{where} must be a static string", arg.pos)
                return bad
            return repr(str(val)), None
        if fx is Fx.INT:
            iv = self._to_int_static(ok, val)
            if iv is None:
                self.err(f"{where} must be an integer" + (f", got \"{val}\"" if ok else ""),
                         arg.pos)
                return bad
            return repr(iv), None
        if fx is Fx.FLAG:
            if isinstance(arg, A.Word):
                if arg.text in self.flags:
                    return repr(self.flags[arg.text]), None
                self.err(f"unknown flag \"{arg.text}\" in {where} (declare it with 'flags' or "
                         "#!define)", arg.pos)
                return bad
            iv = self._to_int_static(ok, val)
            if iv is None:
                if ok and isinstance(val, str) and val in self.flags:
                    return repr(self.flags[val]), None
                self.err(f"{where} must be a flag number or name", arg.pos)
                return bad
            if not 0 <= iv <= 31:
                self.err(f"flag {iv} out of range (0..31) in {where}", arg.pos)
                return bad
            return repr(iv), None
        if fx is Fx.SPVE:
            if ok:
                if isinstance(val, str):
                    return (self.format(val, arg.pos) or "''"), None
                return repr(str(val)), None
            if isinstance(arg, A.Pv):
                return (self.format(arg.text, arg.pos) or "''"), None
            src, t, _ = self.ex(arg)
            return self.as_str(src, t), None
        if fx is Fx.IGP:
            if ok:
                iv = self._to_int_static(ok, val)
                if iv is not None:
                    return repr(iv), None
                if isinstance(val, str) and "$" in val:
                    fmt = self.format(val, arg.pos)
                    return (f"to_int({fmt})" if fmt else "0"), None
                self.err(f"{where} must be an integer or a pseudo-variable, got \"{val}\"",
                         arg.pos)
                return bad
            src, t, _ = self.ex(arg)
            return self.as_int(src, t), None
        if fx is Fx.PVAR:
            text = arg.text if isinstance(arg, A.Pv) else (
                val if ok and isinstance(val, str) and val.startswith("$") else None)
            if text is None:
                self.err(f"{where} must be a pseudo-variable", arg.pos)
                return bad
            spec = self.pv_spec(A.Pv(arg.pos, text))
            if spec is None:
                return bad
            return self.bind(spec, (f"pv_{ident(text)}",), ("spec", text),
                             f"the pseudo-variable {text}"), None
        if fx is Fx.REGEX:
            if not ok:
                self.err(f"{where} must be a static regular expression", arg.pos)
                return bad
            rx = self.regex(str(val), re.IGNORECASE | re.MULTILINE, arg.pos, where)
            return (rx or "None"), None
        if fx is Fx.ROUTE:
            if not ok:
                src, t, _ = self.ex(arg)
                return self.as_str(src, t), None
            name = str(val)
            if "$" in name:
                return (self.format(name, arg.pos) or "''"), None
            self.check_route_ref(c.name, name, arg.pos)
            return repr(name), None
        if fx is Fx.ANY:
            if isinstance(arg, A.Word):
                return repr(arg.text), None
            src, t, _ = self.ex(arg)
            return self.val(src, t), None
        self.err(f"{where}: unsupported fixup {fx!r} declared by the module", arg.pos)
        return bad

    def _word_ok(self, w: A.Word) -> bool:
        """A bare word is a value only when glued (`udp:1.2.3.4:5060`, `uri:host`) or a
        declared flag name; otherwise it is most likely a missing #!define."""
        return (":" in w.text or "." in w.text) or w.text in self.flags

    @staticmethod
    def _to_int_static(ok: bool, val: Any) -> Optional[int]:
        if not ok:
            return None
        if isinstance(val, bool):
            return int(val)
        if isinstance(val, int):
            return val
        try:
            return parse_int(str(val))
        except ValueError:
            return None

    def check_route_ref(self, func: str, name: str, pos: Pos) -> None:
        kind = ROUTE_ARG_KINDS.get(func)
        if kind == "branch_failure":
            ev = f"tm:branch-failure:{name}"
            if ev not in self.routes.get("event", {}):
                self.err(f"unknown route \"{name}\" in {func}() (no event_route[{ev}] block)",
                         pos)
            return
        if kind is not None:
            if name not in self.routes.get(kind, {}):
                self.err(f"unknown route \"{name}\" in {func}() (no {KIND_LABEL[kind]}[{name}] "
                         "block)", pos)
            return
        if not any(name in tbl for tbl in self.routes.values()):
            self.err(f"unknown route \"{name}\" in {func}()", pos)

    # ---- fixup helpers ------------------------------------------------------------------
    def pv_spec(self, node: A.Pv) -> Any:
        if node.text in self._pv_cache:
            return self._pv_cache[node.text]
        import sipcore.pv as pvmod

        try:
            spec = pvmod.parse_pv(node.text, self.registry)
        except ValueError as e:   # PvError is a ValueError
            msg = str(e)
            self.err(msg if node.text in msg else f"bad pseudo-variable {node.text}: {msg}",
                     node.pos)
            spec = None
        self._pv_cache[node.text] = spec
        return spec

    def format(self, text: str, pos: Pos) -> Optional[str]:
        """Source evaluating a string with embedded PVs (a literal when it has none)."""
        if "$" not in text:
            return repr(text)
        fmt = self._fmt_cache.get(text)
        if fmt is None:
            import sipcore.pv as pvmod

            try:
                fmt = pvmod.parse_format(text, self.registry)
            except ValueError as e:
                self.err(f"bad pseudo-variable in \"{text}\": {e}", pos)
                return None
            self._fmt_cache[text] = fmt
        if fmt.is_static:
            return repr(fmt.static_value)
        name = self.bind(fmt.eval, (f"fmt_{ident(text, 24)}",), ("fmt", text),
                         f"evaluates {text!r}")
        return f"{name}(ctx)"

    def regex(self, pattern: str, flags: int, pos: Pos, where: str = "") -> Optional[str]:
        try:
            rx = compile_posix(pattern, flags)
        except re.error as e:
            self.err(f"bad regular expression \"{pattern}\"{' in ' + where if where else ''}: "
                     f"{e}", pos)
            return None
        return self.bind(rx, (f"rx_{ident(pattern, 24)}",), ("rx", pattern, flags),
                         f"regular expression {pattern!r}"
                         f"{' (case-insensitive)' if flags & re.IGNORECASE else ''}")

    def static_value(self, e: A.Expr) -> tuple[bool, Any]:
        """(True, value) when E is known at compile time (literals, folded expressions)."""
        if isinstance(e, A.Const):
            return True, e.value
        if isinstance(e, (A.Word, A.IpLit)):
            return True, e.text
        if isinstance(e, (A.Unary, A.Binary, A.Builtin)) and self._is_pure_const(e):
            src, t, const = self.ex(e)
            if const:
                return True, self._const_eval(self.val(src, t))
        return False, None

    def _is_pure_const(self, e: A.Expr) -> bool:
        if isinstance(e, A.Const):
            return True
        if isinstance(e, A.Unary):
            return self._is_pure_const(e.operand)
        if isinstance(e, A.Binary):
            return self._is_pure_const(e.left) and self._is_pure_const(e.right)
        if isinstance(e, A.Builtin):
            return all(self._is_pure_const(a) for a in e.args)
        return False

    def _const_eval(self, src: str) -> Any:
        return eval(src, self.ns)  # noqa: S307 - our own generated constant expression

    # ---- expressions --------------------------------------------------------------------
    @staticmethod
    def as_int(s: str, t: str) -> str:
        if t == "i":
            return s
        if t == "b":
            return f"(1 if {s} else 0)"
        return f"to_int({s})"

    @staticmethod
    def as_str(s: str, t: str) -> str:
        if t == "s":
            return s
        if t == "b":
            return f"('1' if {s} else '0')"
        if t == "i":
            return f"str({s})"
        return f"to_str({s})"

    @staticmethod
    def val(s: str, t: str) -> str:
        return f"(1 if {s} else 0)" if t == "b" else s

    @staticmethod
    def pos_truth(s: str, t: str) -> str:
        """Truth in if/while: the value as int is > 0."""
        if t == "b":
            return s
        if t == "i":
            return f"{s} > 0"
        return f"to_int({s}) > 0"

    @staticmethod
    def nz_truth(s: str, t: str) -> str:
        """Truth of an operand of ! && || (C semantics: non-zero)."""
        if t == "b":
            return s
        if t == "i":
            return f"{s} != 0"
        return f"to_int({s}) != 0"

    def need_int(self, e: A.Expr, t: str, op: str) -> None:
        if t == "s":
            self.err(f"type mismatch: string operand for integer operator '{op}' (use (int) "
                     "or {s.int} to convert)", e.pos)

    def _fold(self, src: str, t: str, const: bool) -> tuple[str, str, bool]:
        if not const:
            return src, t, const
        try:
            v = self._const_eval(src)
        except Exception:  # noqa: BLE001 - not foldable: keep the expression as is
            return src, t, const
        if isinstance(v, bool):
            return repr(v), "b", True
        if isinstance(v, int):
            return repr(v), "i", True
        if isinstance(v, str):
            return repr(v), "s", True
        return src, t, const

    def ex(self, e: A.Expr) -> tuple[str, str, bool]:
        """(python source, static type, is-constant) for an expression."""
        if isinstance(e, A.Const):
            if isinstance(e.value, int):
                return repr(e.value), "i", True
            return repr(e.value), "s", True
        if isinstance(e, A.Null):
            return "None", "a", True
        if isinstance(e, A.Pv):
            if e.text in ("$rc", "$retcode", "$?"):
                return "ctx.rc", "i", False
            spec = self.pv_spec(e)
            if spec is None:
                return "None", "a", False
            getter = self.bind(spec.get, (f"get_{ident(e.text)}",), ("get", e.text),
                               f"reads {e.text}")
            return f"{getter}(ctx)", "a", False
        if isinstance(e, A.Word):
            if e.text in self.flags:
                return repr(self.flags[e.text]), "i", True
            self.err(f"unknown identifier \"{e.text}\" (missing #!define?)", e.pos)
            return "0", "i", True
        if isinstance(e, A.Keyword):
            src, t = _KEYWORDS[e.name]
            return src, t, False
        if isinstance(e, A.IpLit):
            return repr(e.text), "s", True
        if isinstance(e, A.Myself):
            self.err("'myself' can only be compared with uri, from_uri, to_uri, src_ip or "
                     "dst_ip", e.pos)
            return "False", "b", True
        if isinstance(e, A.Unary):
            return self._fold(*self.unary(e))
        if isinstance(e, A.Binary):
            return self._fold(*self.binary(e))
        if isinstance(e, A.Call):
            fn = self.resolve_call(e)
            if fn is None:
                return "False", "b", False
            return f"callv(ctx, {fn})", "b", False
        if isinstance(e, A.RouteCall):
            src = self.route_call(e)
            if src is None:
                return "False", "b", False
            return f"({src} > 0)", "b", False
        if isinstance(e, A.Builtin):
            return self._fold(*self.builtin(e))
        raise TypeError(f"unknown expression {e!r}")  # pragma: no cover

    def builtin(self, e: A.Builtin) -> tuple[str, str, bool]:
        parts = [self.ex(a) for a in e.args]
        const = all(p[2] for p in parts)
        if e.name == "strlen":
            s, t, _ = parts[0]
            return f"len({self.as_str(s, t)})", "i", const
        if e.name == "strempty":
            s, t, _ = parts[0]
            return f"(not {self.as_str(s, t)})", "b", const
        (cs, ct, _), (as_, at, _), (bs, bt, _) = parts
        t = at if at == bt else "a"
        return (f"({self.val(as_, at)} if {self.pos_truth(cs, ct)} else {self.val(bs, bt)})", t,
                const)

    def unary(self, e: A.Unary) -> tuple[str, str, bool]:
        op = e.op
        if op == "defined":
            if isinstance(e.operand, A.Null):
                return "False", "b", True
            s, t, c = self.ex(e.operand)
            if t in ("i", "s", "b"):
                return "True", "b", c
            return f"({s} is not None)", "b", c
        s, t, c = self.ex(e.operand)
        if op == "!":
            return f"(not {self.nz_truth(s, t)})", "b", c
        if op in ("-", "~"):
            self.need_int(e.operand, t, op)
            return f"({op}{self.as_int(s, t)})", "i", c
        if op == "(int)":
            return self.as_int(s, t), "i", c
        if op == "(str)":
            return self.as_str(s, t), "s", c
        raise TypeError(op)  # pragma: no cover

    def binary(self, e: A.Binary) -> tuple[str, str, bool]:
        op, L, R = e.op, e.left, e.right
        if op in ("==", "!="):
            src = self._equality(e)
            if src is None:
                return "False", "b", True
            s, c = src
            return (s if op == "==" else f"(not {s})"), "b", c
        ls, lt, lc = self.ex(L)
        rs, rt, rc = self.ex(R)
        c = lc and rc
        if op in ("||", "&&"):
            py = "or" if op == "||" else "and"
            return f"({self.nz_truth(ls, lt)} {py} {self.nz_truth(rs, rt)})", "b", c
        if op in ("eq", "ne"):
            cmp = "==" if op == "eq" else "!="
            return f"({self.as_str(ls, lt)} {cmp} {self.as_str(rs, rt)})", "b", c
        if op in ("ieq", "ine"):
            cmp = "==" if op == "ieq" else "!="
            return f"({self.as_int(ls, lt)} {cmp} {self.as_int(rs, rt)})", "b", c
        if op == "=~":
            subj = self.as_str(ls, lt)
            if isinstance(R, A.Const) and isinstance(R.value, str):
                rx = self.regex(R.value, re.IGNORECASE, R.pos)
                if rx is None:
                    return "False", "b", True
                return f"({rx}.search({subj}) is not None)", "b", False
            return f"rx_search({subj}, {self.as_str(rs, rt)})", "b", False
        if op in ("<", ">", "<=", ">="):
            self.need_int(L, lt, op)
            self.need_int(R, rt, op)
            return f"({self.as_int(ls, lt)} {op} {self.as_int(rs, rt)})", "b", c
        if op == "+":
            if lt in ("i", "b"):
                self.need_int(R, rt, op)
                return f"({self.as_int(ls, lt)} + {self.as_int(rs, rt)})", "i", c
            if lt == "s":
                return f"({ls} + {self.as_str(rs, rt)})", "s", c
            return f"plus({ls}, {self.val(rs, rt)})", "a", c
        self.need_int(L, lt, op)
        self.need_int(R, rt, op)
        a, b = self.as_int(ls, lt), self.as_int(rs, rt)
        if op == "/":
            return f"idiv({a}, {b})", "i", c
        if op == "mod":
            return f"imod({a}, {b})", "i", c
        if op in ("-", "*", "|", "&", "^", "<<", ">>"):
            return f"({a} {op} {b})", "i", c
        raise TypeError(op)  # pragma: no cover

    def _equality(self, e: A.Binary) -> Optional[tuple[str, bool]]:
        """Source of `L == R` as a Python bool (the caller negates for !=)."""
        L, R = e.left, e.right
        if isinstance(L, A.Null) or isinstance(R, A.Null):
            other = L if isinstance(R, A.Null) else R
            if isinstance(other, A.Null):
                return "True", True
            s, t, c = self.ex(other)
            if t != "a":
                return ("False", True) if c else (f"({s} is None)", False)
            return f"({s} is None)", c
        if isinstance(L, A.Myself) or isinstance(R, A.Myself):
            other = L if isinstance(R, A.Myself) else R
            if isinstance(other, A.Keyword) and other.name in _URI_KEYWORDS:
                s, _, _ = self.ex(other)
                return f"myself_uri(ctx, {s})", False
            if isinstance(other, A.Keyword) and other.name in IP_KEYWORDS:
                s, _, _ = self.ex(other)
                return f"myself_ip(ctx, {s})", False
            self.err("'myself' can only be compared with uri, from_uri, to_uri, src_ip or "
                     "dst_ip (use is_myself() for pseudo-variables)", e.pos)
            return None
        if isinstance(R, A.IpLit) and isinstance(L, A.Keyword) and L.name in IP_KEYWORDS:
            try:
                net = ipaddress.ip_network(R.text.replace("[", "").replace("]", ""),
                                           strict=False)
            except ValueError as ex:
                self.err(f"bad IP address or network \"{R.text}\": {ex}", R.pos)
                return None
            ls, _, _ = self.ex(L)
            nname = self.bind(net, (f"net_{ident(str(net))}",), ("net", str(net)),
                              f"IP network {net}")
            return f"ip_in({ls}, {nname})", False
        ls, lt, lc = self.ex(L)
        rs, rt, rc = self.ex(R)
        c = lc and rc
        ci = any(isinstance(x, A.Keyword) and x.name in _CI_KEYWORDS for x in (L, R))
        if ci:
            def low(s: str, t: str, node: A.Expr) -> str:
                if isinstance(node, A.Const) and isinstance(node.value, str):
                    return repr(node.value.lower())
                return f"{self.as_str(s, t)}.lower()"
            return f"({low(ls, lt, L)} == {low(rs, rt, R)})", c
        if lt in ("i", "b"):
            self.need_int(R, rt, "==")
            return f"({self.as_int(ls, lt)} == {self.as_int(rs, rt)})", c
        if lt == "s":
            return f"({ls} == {self.as_str(rs, rt)})", c
        return f"eq({ls}, {self.val(rs, rt)})", c


def _short_repr(v: Any, limit: int = 80) -> str:
    r = repr(v)
    if isinstance(v, frozenset):   # the same text on every run (set order follows hashes)
        try:
            r = "frozenset({" + ", ".join(repr(x) for x in sorted(v)) + "})"
        except TypeError:
            pass
    return r if len(r) <= limit else r[:limit - 3] + "..."


def _same(lines: list[Optional[int]]) -> Optional[int]:
    """Where paths join: the line they all leave in ctx.cfg_line, else None (unknown)."""
    first = lines[0] if lines else None
    return first if all(x == first for x in lines) else None


def _stops(s: Optional[A.Stmt]) -> bool:
    """S stops the whole script as a call returning 0 does: exit, return(0)."""
    if isinstance(s, A.Exit):
        return True
    return (isinstance(s, A.Return) and isinstance(s.value, A.Const)
            and s.value.value.__class__ is int and s.value.value == 0)


def _has_route_call(e: A.Expr) -> bool:
    """E runs a route() (with its own line markers) on this ctx."""
    if isinstance(e, A.RouteCall):
        return True
    if isinstance(e, A.Unary):
        return _has_route_call(e.operand)
    if isinstance(e, A.Binary):
        return _has_route_call(e.left) or _has_route_call(e.right)
    if isinstance(e, (A.Builtin, A.Call)):
        return any(_has_route_call(a) for a in e.args)
    return False


def _has_call(e: A.Expr) -> bool:
    if isinstance(e, (A.Call, A.RouteCall)):
        return True
    if isinstance(e, A.Unary):
        return _has_call(e.operand)
    if isinstance(e, A.Binary):
        return _has_call(e.left) or _has_call(e.right)
    if isinstance(e, A.Builtin):
        return any(_has_call(a) for a in e.args)
    return False
