"""Recursive-descent parser: tokens -> ast.Config, collecting one error per problem.

Runs in: the master at configuration load. No shared state.

Operator precedence follows config-language.md §8.1 (lowest first): `|| or`, `&& and`, `|`,
`&`, `^`, `<<`, `>>`, `== != =~ eq ne ieq ine`, `< > <= >=`, `+ -`, `* / mod`, unary
`! not - ~`, `defined`, casts. After a syntax error the parser skips to the end of the
statement (or to the next top-level item) and goes on, so one run reports several mistakes.
"""
from __future__ import annotations

from typing import Optional, Union

from sipcore.cfg import ast as A
from sipcore.cfg.lexer import EOF, ID, INT, IP4, IP6, OP, PV, STR, Token
from sipcore.cfg.pos import Pos
from sipcore.errors import ConfigError

BINARY_PREC: dict[str, int] = {
    "||": 1, "or": 1, "&&": 2, "and": 2, "|": 3, "&": 4, "^": 5, "<<": 6, ">>": 7,
    "==": 8, "!=": 8, "=~": 8, "eq": 8, "ne": 8, "ieq": 8, "ine": 8,
    "<": 9, ">": 9, "<=": 9, ">=": 9, "+": 10, "-": 10, "*": 11, "/": 11, "mod": 11,
}
_WORD_OPS = {"or": "||", "and": "&&", "mod": "mod", "eq": "eq", "ne": "ne", "ieq": "ieq",
             "ine": "ine"}

KEYWORDS = {"method", "uri", "status", "from_uri", "to_uri", "src_ip", "dst_ip", "src_port",
            "dst_port", "proto", "af", "snd_ip", "snd_port", "snd_proto", "snd_af", "to_ip",
            "to_port", "to_proto", "to_af", "max_len"}
IP_KEYWORDS = {"src_ip", "dst_ip", "snd_ip", "to_ip"}
ONSEND_ONLY = {"snd_ip", "snd_port", "snd_proto", "snd_af", "to_ip", "to_port", "to_proto",
               "to_af"}
PROTO_CONSTS = {"UDP": "udp", "udp": "udp", "TCP": "tcp", "tcp": "tcp", "TLS": "tls",
                "tls": "tls", "SCTP": "sctp", "sctp": "sctp", "WS": "ws", "ws": "ws",
                "WSS": "wss", "wss": "wss"}
AF_CONSTS = {"INET": 4, "IPv4": 4, "INET6": 6, "IPv6": 6}
BUILTINS = {"strlen": 1, "strempty": 1, "selval": 3}

ROUTE_KINDS = {
    "request_route": "request", "route": "route", "failure_route": "failure",
    "branch_route": "branch", "onreply_route": "onreply", "reply_route": "reply",
    "onsend_route": "onsend", "event_route": "event",
}
_TOP_STARTERS = {"loadmodule", "loadmodulex", "loadpath", "mpath", "modparam", "modparamx",
                 "cfgengine", "flags"} | set(ROUTE_KINDS)


class _Fail(Exception):
    """Internal: abort the current statement after recording an error."""


class Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0
        self.errors: list[ConfigError] = []
        self._loop_depth = 0
        self._route_kind = ""

    # ---- token helpers ------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        j = min(self.i + k, len(self.toks) - 1)
        return self.toks[j]

    def advance(self) -> Token:
        t = self.toks[self.i]
        if t.kind != EOF:
            self.i += 1
        return t

    def fail(self, msg: str, pos: Optional[Pos] = None) -> _Fail:
        self.errors.append(ConfigError(msg, pos or self.tok.pos))
        return _Fail()

    def expect_op(self, op: str, what: str = "") -> Token:
        if self.tok.is_op(op):
            return self.advance()
        raise self.fail(f"syntax error: expected '{op}'{what}, found {_describe(self.tok)}")

    def accept_op(self, op: str) -> bool:
        if self.tok.is_op(op):
            self.advance()
            return True
        return False

    def strings(self) -> str:
        """One or more adjacent string literals, concatenated."""
        if self.tok.kind != STR:
            raise self.fail(f"syntax error: expected a string, found {_describe(self.tok)}")
        parts = [self.advance().value]
        while self.tok.kind == STR:
            parts.append(self.advance().value)
        return "".join(parts)

    def glued(self, extra_ops: tuple[str, ...] = (":", ".")) -> str:
        """The current token plus every following token written without a space before it."""
        parts = [self._text(self.advance())]
        while not self.tok.ws and self.tok.kind != EOF and (
                self.tok.kind in (ID, INT, IP4, IP6) or self.tok.is_op(*extra_ops)):
            parts.append(self._text(self.advance()))
        return "".join(parts)

    @staticmethod
    def _text(t: Token) -> str:
        return t.text

    # ---- top level ----------------------------------------------------------------------
    def parse(self) -> A.Config:
        items: list[A.TopItem] = []
        while self.tok.kind != EOF:
            start = self.i
            try:
                item = self.top_item()
                if item is not None:
                    items.append(item)
            except _Fail:
                self._sync_top(start)
        return A.Config(tuple(items))

    def _sync_top(self, start: int) -> None:
        if self.i == start:
            self.advance()
        depth = 0
        while self.tok.kind != EOF:
            t = self.tok
            if t.is_op("{"):
                depth += 1
            elif t.is_op("}"):
                depth -= 1
                if depth <= 0:
                    self.advance()
                    if depth < 0:
                        continue
                    return
            elif depth <= 0 and t.kind == ID and t.pos.col == 1:
                return
            self.advance()

    def top_item(self) -> Optional[A.TopItem]:
        t = self.tok
        if t.is_op(";"):
            self.advance()
            return None
        if t.kind != ID:
            raise self.fail(f"syntax error: unexpected {_describe(t)} at top level")
        name = t.text
        if name in ("loadmodule", "loadmodulex"):
            self.advance()
            spec = self.strings()
            self.accept_op(";")
            return A.LoadModule(t.pos, spec, name == "loadmodulex")
        if name in ("loadpath", "mpath"):
            self.advance()
            self.accept_op("=")
            path = self.strings()
            self.accept_op(";")
            return A.LoadPath(t.pos, path)
        if name in ("modparam", "modparamx"):
            return self.modparam()
        if name == "cfgengine":
            self.advance()
            self.accept_op("=")
            eng = self.strings() if self.tok.kind == STR else self.advance().text
            self.accept_op(";")
            return A.CfgEngine(t.pos, eng)
        if name == "flags" and not self.peek().is_op("="):
            return self.flags_decl()
        if name in ROUTE_KINDS and (self.peek().is_op("{", "[")):
            return self.route_block()
        return self.global_param()

    def modparam(self) -> A.ModParam:
        t = self.advance()
        self.expect_op("(")
        module = self.strings()
        self.expect_op(",")
        param = self.strings()
        self.expect_op(",")
        vpos = self.tok.pos
        value = self.param_value()
        self.expect_op(")")
        self.accept_op(";")
        return A.ModParam(t.pos, module, param, value, vpos, t.text == "modparamx")

    def param_value(self) -> Union[int, str]:
        t = self.tok
        if t.kind == STR:
            return self.strings()
        if t.kind == INT:
            return self.advance().value
        if t.is_op("-") and self.peek().kind == INT and not self.peek().ws:
            self.advance()
            return -self.advance().value
        if t.kind == ID:
            word = t.text.lower()
            if word in ("yes", "true", "on", "enable"):
                self.advance()
                return 1
            if word in ("no", "false", "off", "disable"):
                self.advance()
                return 0
            raise self.fail(f"unknown identifier \"{t.text}\" as parameter value "
                            "(missing #!define?)")
        raise self.fail(f"syntax error: expected a string or number, found {_describe(t)}")

    def flags_decl(self) -> A.FlagsDecl:
        t = self.advance()
        flags: list[tuple[str, Optional[int], Pos]] = []
        while True:
            ft = self.tok
            if ft.kind == STR:
                name = self.strings()
            elif ft.kind == ID:
                name = self.advance().text
            else:
                raise self.fail(f"syntax error: flag name expected, found {_describe(ft)}")
            num: Optional[int] = None
            if self.accept_op(":"):
                if self.tok.kind != INT:
                    raise self.fail("syntax error: flag number expected")
                num = self.advance().value
            flags.append((name, num, ft.pos))
            if not self.accept_op(","):
                break
        self.accept_op(";")
        return A.FlagsDecl(t.pos, tuple(flags))

    def global_param(self) -> A.TopItem:
        t = self.advance()
        name = t.text
        group: Optional[str] = None
        if self.tok.is_op(".") and not self.tok.ws:
            self.advance()
            if self.tok.kind != ID:
                raise self.fail("syntax error: expected a name after '.'")
            group, name = name, self.advance().text
        if not self.tok.is_op("="):
            raise self.fail(f"syntax error: unexpected {_describe(self.tok)} after "
                            f"\"{t.text}\" (expected '=' for a global parameter, or a "
                            "route block)")
        self.advance()
        value, is_string = self.global_value()
        if group is not None:
            desc = ""
            if self.tok.is_id("desc"):
                self.advance()
                desc = self.strings()
            self.accept_op(";")
            return A.CfgVar(t.pos, group, name, value, desc)
        extra: list[tuple[str, object]] = []
        while self.tok.kind == ID and self.tok.text in ("advertise", "name", "virtual") \
                and name == "listen" and self.tok.pos.line == t.pos.line:
            key = self.advance().text
            if key == "advertise":
                extra.append((key, self.glued()))
            elif key == "name":
                extra.append((key, self.strings()))
            else:
                extra.append((key, True))
        self.accept_op(";")
        return A.GlobalParam(t.pos, name, value, is_string, tuple(extra))

    def global_value(self) -> tuple[Union[int, str], bool]:
        t = self.tok
        if t.kind == STR:
            return self.strings(), True
        if t.is_op("-") and self.peek().kind == INT and not self.peek().ws:
            self.advance()
            return -self.advance().value, False
        if t.kind == INT and (self.peek().ws or self.peek().is_op(";") or
                              self.peek().kind == EOF):
            return self.advance().value, False
        if t.kind in (ID, INT, IP4, IP6) or t.is_op("[", "*"):
            return self.glued((":", ".", "[", "]", "*", "/", "-")), False
        raise self.fail(f"syntax error: expected a value, found {_describe(t)}")

    # ---- route blocks -------------------------------------------------------------------
    def route_block(self) -> A.RouteBlock:
        t = self.advance()
        kind = ROUTE_KINDS[t.text]
        name: Optional[str] = None
        if self.tok.is_op("["):
            self.advance()
            parts: list[str] = []
            while not self.tok.is_op("]"):
                if self.tok.kind == EOF or self.tok.is_op("{"):
                    raise self.fail("syntax error: missing ']' after route name")
                nt = self.advance()
                parts.append(nt.value if nt.kind == STR else nt.text)
            self.advance()
            name = "".join(parts)
            if not name:
                raise self.fail("empty route name", t.pos)
        if kind == "route" and name in (None, "0", "DEFAULT_ROUTE"):
            kind, name = "request", None
        elif kind == "request" and name is not None:
            raise self.fail("request_route takes no name", t.pos)
        elif kind == "onreply" and name in (None, "0"):
            kind, name = "reply", None
        elif kind in ("failure", "branch", "event") and name is None:
            raise self.fail(f"{t.text} needs a name: {t.text}[NAME]", t.pos)
        elif kind in ("reply", "onsend") and name is not None:
            raise self.fail(f"{t.text} takes no name", t.pos)
        if kind == "event" and ":" not in (name or ""):
            raise self.fail(f"bad event route name \"{name}\" (expected group:name)", t.pos)
        self._route_kind = kind
        body = self.block()
        return A.RouteBlock(t.pos, kind, name, body)

    def block(self) -> tuple[A.Stmt, ...]:
        self.expect_op("{")
        stmts: list[A.Stmt] = []
        while not self.tok.is_op("}"):
            if self.tok.kind == EOF:
                raise self.fail("syntax error: missing '}' at end of file")
            start = self.i
            try:
                s = self.statement()
                if s is not None:
                    stmts.extend(s if isinstance(s, list) else [s])
            except _Fail:
                self._sync_stmt(start)
        self.advance()
        return tuple(stmts)

    def _sync_stmt(self, start: int) -> None:
        if self.i == start and not self.tok.is_op("}"):
            self.advance()
        depth = 0
        while self.tok.kind != EOF:
            t = self.tok
            if t.is_op("{"):
                depth += 1
            elif t.is_op("}"):
                if depth == 0:
                    return
                depth -= 1
                if depth == 0:
                    self.advance()
                    return
            elif t.is_op(";") and depth == 0:
                self.advance()
                return
            elif depth == 0 and t.kind == ID and t.pos.col == 1 and t.text in _TOP_STARTERS:
                return
            self.advance()

    def body_or_stmt(self) -> tuple[A.Stmt, ...]:
        if self.tok.is_op("{"):
            return self.block()
        s = self.statement()
        if s is None:
            return ()
        return tuple(s) if isinstance(s, list) else (s,)

    def end_stmt(self) -> None:
        if not self.tok.is_op(";"):
            raise self.fail(f"syntax error: missing ';' before {_describe(self.tok)}")
        self.advance()

    def statement(self) -> Union[A.Stmt, list[A.Stmt], None]:
        t = self.tok
        if t.is_op(";"):
            self.advance()
            return None
        if t.is_op("{"):
            return list(self.block())
        if t.kind == PV:
            return self.assignment()
        if t.kind != ID:
            raise self.fail(f"syntax error: unexpected {_describe(t)}")
        w = t.text
        if w == "if":
            return self.if_stmt()
        if w == "switch":
            return self.switch_stmt()
        if w == "while":
            return self.while_stmt()
        if w in ("return", "exit", "drop"):
            self.advance()
            value: Optional[A.Expr] = None
            if self.tok.is_op("(") and self.peek().is_op(")"):
                self.advance()
                self.advance()
            elif not self.tok.is_op(";", "}"):
                value = self.expr()
            self.end_stmt()
            cls = {"return": A.Return, "exit": A.Exit, "drop": A.Drop}[w]
            return cls(t.pos, value)
        if w == "break":
            self.advance()
            self.end_stmt()
            if self._loop_depth == 0:
                raise self.fail("'break' is allowed only inside switch or while", t.pos)
            return A.Break(t.pos)
        if w in ("else", "case", "default"):
            raise self.fail(f"syntax error: unexpected '{w}'")
        if self.peek().is_op("("):
            call = self.primary()
            if not isinstance(call, (A.Call, A.RouteCall)):
                raise self.fail(f"syntax error: \"{w}(...)\" is not a statement", t.pos)
            self.end_stmt()
            return A.CallStmt(t.pos, call)
        if self.peek().is_op(";"):
            self.advance()
            self.advance()
            return A.CallStmt(t.pos, A.Call(t.pos, w, ()))
        if self.peek().is_op("="):
            raise self.fail(f"\"{w}\" is not assignable (global parameters are not allowed "
                            "inside route blocks)")
        raise self.fail(f"syntax error: unexpected {_describe(self.peek())} after \"{w}\"",
                        self.peek().pos)

    def assignment(self) -> A.Assign:
        t = self.advance()
        if self.tok.is_op("=="):
            raise self.fail("syntax error: '==' is a comparison; use '=' to assign")
        if not self.tok.is_op("="):
            if self.tok.is_op("[", "+", "-"):
                raise self.fail("syntax error: only '=' assignments to a pseudo-variable are "
                                "allowed (use $(name[index]) for indexes)")
            raise self.fail(f"syntax error: expected '=' after {t.text}")
        self.advance()
        value = self.expr()
        self.end_stmt()
        return A.Assign(t.pos, A.Pv(t.pos, t.text), value)

    def if_stmt(self) -> A.If:
        t = self.advance()
        self.expect_op("(", " after 'if'")
        cond = self.expr()
        self.expect_op(")", " to close the if condition")
        then = self.body_or_stmt()
        orelse: Optional[tuple[A.Stmt, ...]] = None
        if self.tok.is_id("else"):
            self.advance()
            orelse = self.body_or_stmt()
        return A.If(t.pos, cond, then, orelse)

    def while_stmt(self) -> A.While:
        t = self.advance()
        self.expect_op("(", " after 'while'")
        cond = self.expr()
        self.expect_op(")", " to close the while condition")
        self._loop_depth += 1
        try:
            body = self.body_or_stmt()
        finally:
            self._loop_depth -= 1
        return A.While(t.pos, cond, body)

    def switch_stmt(self) -> A.Switch:
        t = self.advance()
        self.expect_op("(", " after 'switch'")
        e = self.expr()
        self.expect_op(")", " to close the switch expression")
        self.expect_op("{")
        cases: list[A.Case] = []
        self._loop_depth += 1
        try:
            while not self.tok.is_op("}"):
                ct = self.tok
                if ct.is_id("case"):
                    self.advance()
                    is_regex = False
                    if self.tok.is_op("/"):
                        self.advance()
                        is_regex = True
                        lpos = self.tok.pos
                        label: Optional[A.Expr] = A.Const(lpos, self.strings())
                    else:
                        label = self.unary()
                    self.expect_op(":", " after the case label")
                elif ct.is_id("default"):
                    self.advance()
                    self.expect_op(":", " after 'default'")
                    label, is_regex = None, False
                else:
                    raise self.fail(f"syntax error: expected 'case' or 'default' in switch, "
                                    f"found {_describe(ct)}")
                body: list[A.Stmt] = []
                while not (self.tok.is_id("case", "default") or self.tok.is_op("}")):
                    if self.tok.kind == EOF:
                        raise self.fail("syntax error: missing '}' at end of file")
                    start = self.i
                    try:
                        s = self.statement()
                        if s is not None:
                            body.extend(s if isinstance(s, list) else [s])
                    except _Fail:
                        self._sync_stmt(start)
                cases.append(A.Case(ct.pos, label, is_regex, tuple(body)))
        finally:
            self._loop_depth -= 1
        self.advance()
        return A.Switch(t.pos, e, tuple(cases))

    # ---- expressions --------------------------------------------------------------------
    def _binop(self) -> Optional[str]:
        t = self.tok
        if t.kind == OP and t.text in BINARY_PREC:
            return t.text
        if t.kind == ID and t.text in _WORD_OPS:
            return t.text
        return None

    def expr(self, min_prec: int = 1) -> A.Expr:
        left = self.unary()
        while True:
            op = self._binop()
            if op is None or BINARY_PREC[op] < min_prec:
                return left
            ot = self.advance()
            norm = _WORD_OPS.get(op, op)
            prec = BINARY_PREC[op]
            if norm in ("==", "!=") and isinstance(left, A.Keyword) and left.name in IP_KEYWORDS:
                right = self.ip_operand(prec + 1)
            else:
                right = self.expr(prec + 1)
            left = A.Binary(ot.pos, norm, left, right)

    def ip_operand(self, prec: int) -> A.Expr:
        t = self.tok
        if t.kind in (IP4, IP6):
            text = self.advance().text
            if self.tok.is_op("/") and self.peek().kind in (INT, IP4):
                self.advance()
                text += "/" + self.advance().text
            return A.IpLit(t.pos, text)
        if t.is_id("myself"):
            self.advance()
            return A.Myself(t.pos)
        return self.expr(prec)

    def unary(self) -> A.Expr:
        t = self.tok
        if t.is_op("!") or t.is_id("not"):
            self.advance()
            return A.Unary(t.pos, "!", self.unary())
        if t.is_op("-"):
            self.advance()
            operand = self.unary()
            if isinstance(operand, A.Const) and isinstance(operand.value, int):
                return A.Const(t.pos, -operand.value)
            return A.Unary(t.pos, "-", operand)
        if t.is_op("~"):
            self.advance()
            return A.Unary(t.pos, "~", self.unary())
        if t.is_id("defined"):
            self.advance()
            return A.Unary(t.pos, "defined", self.unary())
        if t.is_op("(") and self.peek().is_id("int", "str") and self.peek(2).is_op(")"):
            self.advance()
            cast = self.advance().text
            self.advance()
            return A.Unary(t.pos, f"({cast})", self.unary())
        return self.primary()

    def primary(self) -> A.Expr:
        t = self.tok
        if t.kind == INT:
            self.advance()
            return A.Const(t.pos, t.value)
        if t.kind == STR:
            return A.Const(t.pos, self.strings())
        if t.kind == PV:
            self.advance()
            if t.text == "$null":
                return A.Null(t.pos)
            return A.Pv(t.pos, t.text)
        if t.kind in (IP4, IP6):
            self.advance()
            return A.IpLit(t.pos, t.text)
        if t.is_op("("):
            self.advance()
            e = self.expr()
            self.expect_op(")")
            return e
        if t.kind != ID:
            raise self.fail(f"syntax error: expected an expression, found {_describe(t)}")
        name = t.text
        if self.peek().is_op("("):
            self.advance()
            self.advance()
            args: list[A.Expr] = []
            if not self.tok.is_op(")"):
                while True:
                    args.append(self.argument())
                    if self.accept_op(","):
                        continue
                    break
            self.expect_op(")", f" to close the arguments of {name}()")
            if name == "route":
                if len(args) != 1:
                    raise self.fail("route() takes exactly one route name", t.pos)
                return A.RouteCall(t.pos, args[0])
            if name in BUILTINS:
                if len(args) != BUILTINS[name]:
                    raise self.fail(f"{name}() takes {BUILTINS[name]} argument(s), "
                                    f"got {len(args)}", t.pos)
                return A.Builtin(t.pos, name, tuple(args))
            return A.Call(t.pos, name, tuple(args))
        if name == "msg" and self.peek().is_op(":") and not self.peek().ws \
                and self.peek(2).is_id("len"):
            self.advance()
            self.advance()
            self.advance()
            return A.Keyword(t.pos, "msg:len")
        nxt = self.peek()
        if nxt.is_op(":") and not nxt.ws and not self.peek(2).ws \
                and self.peek(2).kind in (ID, INT, IP4, IP6):
            return A.Word(t.pos, self.word())      # uri:host, udp:1.2.3.4:5060
        if name in KEYWORDS:
            self.advance()
            if name in ONSEND_ONLY and self._route_kind != "onsend":
                raise self.fail(f"'{name}' is allowed only in onsend_route", t.pos)
            return A.Keyword(t.pos, name)
        if name == "myself":
            self.advance()
            return A.Myself(t.pos)
        if name in PROTO_CONSTS and (self.peek().ws or not self.peek().is_op(":")):
            self.advance()
            return A.Const(t.pos, PROTO_CONSTS[name])
        if name in AF_CONSTS:
            self.advance()
            return A.Const(t.pos, AF_CONSTS[name])
        return A.Word(t.pos, self.word())

    def word(self) -> str:
        """A bare identifier plus adjacent `:x` / `.x` parts (`uri:host`, `udp:1.2.3.4:5060`);
        a trailing `:` (a case label) is not part of it."""
        parts = [self.advance().text]
        while not self.tok.ws:
            t = self.tok
            if t.kind in (ID, INT, IP4, IP6):
                parts.append(self.advance().text)
            elif t.is_op(":", ".") and not self.peek().ws and (
                    self.peek().kind in (ID, INT, IP4, IP6)):
                parts.append(self.advance().text)
            else:
                break
        return "".join(parts)

    def argument(self) -> A.Expr:
        return self.expr()


def _describe(t: Token) -> str:
    if t.kind == EOF:
        return "end of file"
    if t.kind == STR:
        return f"string \"{t.value}\""
    return f"'{t.text}'"


def parse_tokens(tokens: list[Token]) -> tuple[A.Config, list[ConfigError]]:
    p = Parser(tokens)
    cfg = p.parse()
    return cfg, p.errors
