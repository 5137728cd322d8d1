"""Checker and compiler: globals, loadmodule/modparam, route tables, then code generation.

Runs in: the master at configuration load (and `pykam -c`). It loads module *declarations*
(no mod_init) and sets their parameters; CompiledConfig is what the workers run.

Errors are collected across the whole pass (preprocessor, lexer, parser, checker) and raised
together as ConfigErrors, sorted by position.
"""
from __future__ import annotations

import linecache
import logging
import os
import re
from collections import deque
from typing import Any, Callable, Optional

from sipcore.cfg import ast as A
from sipcore.cfg import globals as G
from sipcore.cfg import runtime as RT
from sipcore.cfg.codegen import CodeGen, RouteInfo, render_routes
from sipcore.cfg.pos import Pos
from sipcore.errors import ConfigError, ConfigErrors, ModuleError
from sipcore.mod.exports import RouteType
from sipcore.route.ctx import RouteCtx, ScriptExit

log = logging.getLogger("pykam.cfg")

KINDS = ("request", "route", "failure", "branch", "onreply", "reply", "onsend", "event")

_KIND_MASK = {
    "request": RouteType.REQUEST, "route": RouteType.REQUEST, "failure": RouteType.FAILURE,
    "branch": RouteType.BRANCH, "onreply": RouteType.ONREPLY, "reply": RouteType.ONREPLY,
    "onsend": RouteType.ONSEND, "event": RouteType.EVENT,
}


def event_route_type(name: str) -> RouteType:
    """ctx.route_type while running event_route[NAME]."""
    if name == "tm:local-request":
        return RouteType.LOCAL
    if name.startswith("tm:branch-failure"):
        return RouteType.BRANCH_FAILURE
    return RouteType.EVENT


def _runtime_namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {"ScriptExit": ScriptExit}
    for name in ("to_int", "to_str", "plus", "eq", "idiv", "imod", "rx_search", "callv",
                 "route_call", "route_dynamic", "ret_value", "while_runaway", "kw_uri",
                 "kw_status", "kw_from_uri", "kw_to_uri", "kw_snd_ip", "kw_snd_port",
                 "kw_to_ip", "kw_to_port", "kw_snd_proto", "kw_snd_af", "ip_in", "myself_uri",
                 "myself_ip"):
        ns[name] = getattr(RT, name)
    ns["ROUTES"] = {}
    return ns


class CompiledConfig:
    """A checked, compiled configuration: typed globals, loaded modules, route functions."""

    def __init__(self, globals_: dict[str, Any], modules: Any, engine: str,
                 routes: dict[str, dict[Optional[str], RouteInfo]], ns: dict[str, Any],
                 flags: dict[str, int], cfg_vars: dict[str, tuple[Any, str]],
                 defines: dict[str, Optional[str]], module_paths: list[str]) -> None:
        self.globals = globals_
        self.modules = modules
        self.engine = engine
        self.flags = flags                  # named flags (flags NAME:n declarations)
        self.cfg_vars = cfg_vars            # "group.var" -> (value, desc)
        self.defines = defines              # final #!define table
        self.module_paths = module_paths    # loadpath / mpath values
        self.kemi: Any = None               # KEMI engine (app_lua/app_python3 mod_init sets it)
        self.warnings: list[ConfigError] = []   # what the check found worth telling
        self.described: dict[str, str] = {}     # generated code's bound names: what they are
        self._routes = routes
        self._ns = ns
        self._entries: dict[tuple[str, Optional[str]], tuple[Callable[[RouteCtx], int],
                                                             RouteType]] = {}
        self._by_file: dict[str, RouteInfo] = {}
        for kind, tbl in routes.items():
            for name, ri in tbl.items():
                self._entries[(kind, name)] = (ns[ri.pyname], ri.runtime_type)
                self._by_file[ri.filename] = ri

    def setup_process(self) -> None:
        """This process's script state: $def lookups and the log_prefix evaluator (the master
        before fork, so every child inherits them; the harness)."""
        from sipcore import log as klog
        from sipcore.pv import parse_format
        from sipcore.pv.miscpv import set_defines_provider

        set_defines_provider(self.defines.get)
        prefix = self.globals.get("log_prefix")
        klog.set_prefix(parse_format(str(prefix), self.modules).eval if prefix else None)

    @staticmethod
    def _key(kind: str, name: Optional[str]) -> tuple[str, Optional[str]]:
        if kind == "onreply" and name is None:
            return "reply", None
        if kind == "route" and name in (None, "0"):
            return "request", None
        if kind not in KINDS:
            raise ValueError(f"unknown route kind \"{kind}\" (expected one of {', '.join(KINDS)})")
        return kind, name

    def has_route(self, kind: str, name: Optional[str] = None) -> bool:
        if self.kemi is not None:
            return self.kemi.has_route(kind, name)
        return self._key(kind, name) in self._entries

    def route_names(self, kind: str) -> list[Any]:
        return list(self._routes.get(kind, {}))

    def python_source(self, kind: str, name: Optional[str] = None) -> str:
        k, n = self._key(kind, name)
        return self._routes[k][n].source

    def generated_python(self) -> str:
        """The generated Python of every route block, for `pykam -c --print-routes`."""
        return render_routes((ri for kind in KINDS for ri in self._routes.get(kind, {}).values()),
                             self.described)

    def route_function(self, kind: str, name: Optional[str] = None
                       ) -> Optional[Callable[[RouteCtx], int]]:
        e = self._entries.get(self._key(kind, name))
        return e[0] if e else None

    def run(self, kind: str, name: Optional[str], ctx: RouteCtx) -> int:
        """Run a route block on CTX: the block's return value, 0 after exit/drop/return(0).
        A route the config does not define returns 1 (nothing to do). With a KEMI cfgengine
        the script function for the route runs instead.

        ctx.cfg_line is given back when the block ends: a block run on the ctx of a running
        one (onsend_route from forward(), an event_route from a module function) leaves the
        caller's $cfg(line) as it was, which the generated code counts on (it sets the line
        once per statement, not again after each call)."""
        if self.kemi is not None:
            return self.kemi.run(kind, name, ctx)
        # a key as the parser makes them (the aliases _key maps are never in _entries)
        entry = self._entries.get((kind, name))
        if entry is None:
            entry = self._entries.get(self._key(kind, name))
            if entry is None:
                return 1
        fn, rtype = entry
        ctx.route_type = rtype
        ctx.route_name = name or kind
        line = ctx.cfg_line
        try:
            return fn(ctx)
        except ScriptExit as e:
            if e.drop:
                ctx.dropped = True
            return 0
        except Exception as e:
            pos = self.error_pos(e)
            if pos is not None:
                e.add_note(f"while running the configuration at {pos}")
            raise
        finally:
            ctx.cfg_line = line

    def cfg_pos(self, filename: str, lineno: int) -> Optional[Pos]:
        """Map a line of generated code back to the cfg file:line:col it came from."""
        ri = self._by_file.get(filename)
        if ri is None or not 1 <= lineno <= len(ri.linemap):
            return None
        return ri.linemap[lineno - 1]

    def error_pos(self, exc: BaseException) -> Optional[Pos]:
        """The cfg position of the innermost generated-code frame in EXC's traceback."""
        tb = exc.__traceback__
        found: Optional[Pos] = None
        while tb is not None:
            p = self.cfg_pos(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
            if p is not None:
                found = p
            tb = tb.tb_next
        return found


class Compiler:
    def __init__(self, cfg: A.Config, registry: Any, errors: list[ConfigError],
                 defines: dict[str, Optional[str]]) -> None:
        self.cfg = cfg
        self.registry = registry
        self.errors = errors
        self.defines = defines
        self.gb = G.GlobalsBuilder()
        self.engine = "native"
        self.flags: dict[str, int] = {}
        self.cfg_vars: dict[str, tuple[Any, str]] = {}
        self.module_paths: list[str] = []
        self.routes: dict[str, dict[Optional[str], RouteInfo]] = {k: {} for k in KINDS}
        self._blocks: list[A.RouteBlock] = []
        self._loaded_at: dict[str, Pos] = {}
        self.warnings: list[ConfigError] = []    # accepted, but worth telling (inert params)

    def err(self, msg: str, pos: Pos) -> None:
        self.errors.append(ConfigError(msg, pos))

    def warn(self, msg: str, pos: Pos) -> None:
        self.warnings.append(ConfigError(msg, pos))

    def compile(self) -> CompiledConfig:
        for item in self.cfg.items:
            self.top_item(item)
        self.check_depends()
        self.build_route_table()
        ns = _runtime_namespace()
        gen = CodeGen(self.registry, self.routes, self.flags, self.gb.values, ns, self.errors)
        for kind in KINDS:
            for ri in self.routes[kind].values():
                gen.gen_route(ri)
        if self.errors:
            raise_errors(self.errors)
        for kind in KINDS:
            for ri in self.routes[kind].values():
                try:
                    self._exec(ri, ns)
                except (SyntaxError, RecursionError) as e:
                    # e.g. more than 20 nested while/switch blocks (a CPython limit)
                    pos = ri.linemap[e.lineno - 1] if isinstance(e, SyntaxError) and \
                        e.lineno and e.lineno <= len(ri.linemap) else ri.block.pos
                    self.err(f"route block too complex to compile: {e}", pos or ri.block.pos)
        if self.errors:
            raise_errors(self.errors)
        ns["ROUTES"].update({n: ns[ri.pyname] for n, ri in self.routes["route"].items()})
        compiled = CompiledConfig(self.gb.values, self.registry, self.engine, self.routes, ns,
                                  self.flags, self.cfg_vars, self.defines, self.module_paths)
        compiled.warnings = self.warnings
        compiled.described = gen.described
        return compiled

    @staticmethod
    def _exec(ri: RouteInfo, ns: dict[str, Any]) -> None:
        ri.filename = f"<cfg {ri.kind}[{ri.name or ''}] {ri.block.pos}>"
        code = compile(ri.source, ri.filename, "exec")
        lines = ri.source.splitlines(keepends=True)
        linecache.cache[ri.filename] = (len(ri.source), None, lines, ri.filename)
        exec(code, ns)  # noqa: S102 - our own generated route function

    # ---- top-level items ----------------------------------------------------------------
    def top_item(self, item: A.TopItem) -> None:
        if isinstance(item, A.GlobalParam):
            cp = G.lookup(item.name)
            if cp is None:
                self.err(f"unknown core parameter \"{item.name}\"", item.pos)
                return
            try:
                self.gb.set(cp, item.value, item.is_string, item.extra)
            except ValueError as e:
                self.err(str(e), item.pos)
        elif isinstance(item, A.CfgVar):
            full = f"{item.group}.{item.name}"
            cp = G.lookup(full)
            if cp is not None:
                try:
                    self.gb.set(cp, item.value, isinstance(item.value, str))
                except ValueError as e:
                    self.err(str(e), item.pos)
                return
            if full in self.cfg_vars:
                self.err(f"cfg variable \"{full}\" declared twice", item.pos)
            self.cfg_vars[full] = (item.value, item.desc)
        elif isinstance(item, A.FlagsDecl):
            self.flags_decl(item)
        elif isinstance(item, A.LoadPath):
            self.module_paths.append(item.path)
        elif isinstance(item, A.LoadModule):
            spec = self.expand(item.spec, item.pos) if item.expand else item.spec
            try:
                mod = self.registry.load(spec)
            except ModuleError as e:
                self.err(f"loadmodule \"{item.spec}\": {e}", item.pos)
                return
            self._loaded_at.setdefault(mod.name, item.pos)
        elif isinstance(item, A.ModParam):
            self.modparam(item)
        elif isinstance(item, A.CfgEngine):
            self.engine = item.name
        elif isinstance(item, A.RouteBlock):
            self._blocks.append(item)

    def flags_decl(self, item: A.FlagsDecl) -> None:
        used = set(self.flags.values())
        for name, num, pos in item.flags:
            if name in self.flags:
                self.err(f"flag \"{name}\" declared twice", pos)
                continue
            if num is None:
                num = next((i for i in range(32) if i not in used), -1)
                if num < 0:
                    self.err("no free flag left (0..31)", pos)
                    continue
            elif not 0 <= num <= 31:
                self.err(f"flag number {num} out of range (0..31)", pos)
                continue
            elif num in used:
                self.err(f"flag number {num} already used by another named flag", pos)
                continue
            self.flags[name] = num
            used.add(num)

    def expand(self, text: str, pos: Pos) -> str:
        """loadmodulex/modparamx: substitute $env(NAME) and $def(NAME) in a string."""
        def sub(m: re.Match[str]) -> str:
            kind, name = m.group(1), m.group(2)
            value = os.environ.get(name) if kind == "env" else self.defines.get(name)
            if value is None:
                self.err(f"${kind}({name}) is not set", pos)
                return ""
            return value.strip('"') if kind == "def" else value
        return re.sub(r"\$(env|def)\(([^)]*)\)", sub, text)

    def modparam(self, item: A.ModParam) -> None:
        if item.expand and isinstance(item.value, str):
            item = A.ModParam(item.pos, item.module, item.param,
                              self.expand(item.value, item.value_pos), item.value_pos)
        mods = self.registry.match(item.module)
        if not mods:
            self.err(f"modparam: no loaded module matches \"{item.module}\" (missing "
                     "loadmodule before modparam?)", item.pos)
            return
        having = [m for m in mods if item.param in m.params]
        if not having:
            names = ", ".join(m.name for m in mods)
            self.err(f"modparam: unknown parameter \"{item.param}\" for module {names}",
                     item.pos)
            return
        for m in having:
            try:
                m.set_param(item.param, item.value)
            except (ValueError, TypeError) as e:
                self.err(f"modparam(\"{m.name}\", \"{item.param}\"): {e}", item.value_pos)
                continue
            inert = m.params[item.param].inert
            if inert:
                self.warn(f"modparam(\"{m.name}\", \"{item.param}\") is accepted without "
                          f"effect: {inert}", item.pos)

    def check_depends(self) -> None:
        for mod in self.registry:
            for dep in getattr(mod, "depends", ()):
                if dep not in self.registry:
                    pos = self._loaded_at.get(mod.name)
                    if pos is not None:
                        self.err(f"module \"{mod.name}\" needs loadmodule \"{dep}\"", pos)

    # ---- routes -------------------------------------------------------------------------
    def build_route_table(self) -> None:
        for b in self._blocks:
            tbl = self.routes[b.kind]
            if b.name in tbl:
                label = b.kind + (f"[{b.name}]" if b.name is not None else "")
                self.err(f"route block {label} defined twice (first at "
                         f"{tbl[b.name].block.pos})", b.pos)
                continue
            rtype = (event_route_type(b.name or "") if b.kind == "event"
                     else _KIND_MASK[b.kind])
            mask = _KIND_MASK[b.kind] | rtype
            # pyname: CodeGen names the functions (with every other name of the namespace)
            tbl[b.name] = RouteInfo(b.kind, b.name, b, "", mask, rtype)
        self._propagate_masks()

    def _propagate_masks(self) -> None:
        """route[X] blocks: functions must be allowed in request_route (Kamailio parses them as
        REQUEST_ROUTE) or in one of the route types that call X."""
        subs = self.routes["route"]
        callers: dict[str, RouteType] = {n: RouteType(0) for n in subs}
        queue: deque[tuple[A.RouteBlock, RouteType]] = deque()
        for kind, tbl in self.routes.items():
            if kind != "route":
                for ri in tbl.values():
                    queue.append((ri.block, ri.mask))
        seen: set[tuple[str, int]] = set()
        while queue:
            block, mask = queue.popleft()
            for name in _called_routes(block.body):
                sub = subs.get(name)
                if sub is None or (name, int(mask)) in seen:
                    continue
                seen.add((name, int(mask)))
                callers[name] |= mask
                queue.append((sub.block, mask))
        for name, ri in subs.items():
            ri.mask = RouteType.REQUEST | callers[name]


def _called_routes(body: tuple[A.Stmt, ...]) -> list[str]:
    out: list[str] = []

    def expr(e: Any) -> None:
        if isinstance(e, A.RouteCall):
            t = e.target
            if isinstance(t, (A.Const, A.Word)):
                out.append(str(t.value if isinstance(t, A.Const) else t.text))
        elif isinstance(e, A.Unary):
            expr(e.operand)
        elif isinstance(e, A.Binary):
            expr(e.left)
            expr(e.right)
        elif isinstance(e, (A.Call, A.Builtin)):
            for a in e.args:
                expr(a)

    def stmts(ss: tuple[A.Stmt, ...]) -> None:
        for s in ss:
            if isinstance(s, A.CallStmt):
                expr(s.call)
            elif isinstance(s, A.Assign):
                expr(s.value)
            elif isinstance(s, A.If):
                expr(s.cond)
                stmts(s.then)
                stmts(s.orelse or ())
            elif isinstance(s, A.While):
                expr(s.cond)
                stmts(s.body)
            elif isinstance(s, A.Switch):
                expr(s.expr)
                for c in s.cases:
                    stmts(c.body)
            elif isinstance(s, (A.Return, A.Exit, A.Drop)) and s.value is not None:
                expr(s.value)

    stmts(body)
    return out


def raise_errors(errors: list[ConfigError]) -> None:
    seen: set[tuple[str, str]] = set()
    uniq: list[ConfigError] = []
    for e in errors:
        key = (str(e.pos), e.message)
        if key not in seen:
            seen.add(key)
            uniq.append(e)
    files: dict[str, int] = {}
    for e in uniq:
        if e.pos is not None:
            files.setdefault(e.pos.file, len(files))

    def order(e: ConfigError) -> tuple[int, int, int]:
        if e.pos is None:
            return (-1, 0, 0)
        return (files[e.pos.file], e.pos.line, e.pos.col)

    uniq.sort(key=order)
    raise ConfigErrors(uniq)
