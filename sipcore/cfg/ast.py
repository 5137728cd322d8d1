"""AST of a configuration: frozen dataclasses, every node with the Pos it came from.

Runs in: the master at configuration load. No shared state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

from sipcore.cfg.pos import Pos


# ---- expressions ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Const:
    pos: Pos
    value: Union[int, str]


@dataclass(frozen=True, slots=True)
class Null:
    pos: Pos


@dataclass(frozen=True, slots=True)
class Pv:
    pos: Pos
    text: str                # "$var(x)", "$(avp(a)[*])"


@dataclass(frozen=True, slots=True)
class Word:
    """A bare identifier (or tokens glued without spaces: `udp:1.2.3.4:5060`) that is not a
    keyword or a define: a flag name, a protocol, a socket for core functions."""

    pos: Pos
    text: str


@dataclass(frozen=True, slots=True)
class Keyword:
    """Core keywords usable in expressions: method, uri, src_ip, proto, msg:len, ..."""

    pos: Pos
    name: str


@dataclass(frozen=True, slots=True)
class IpLit:
    """An IP address or network (`10.0.0.0/8`, `[::1]`) on the right of an IP comparison."""

    pos: Pos
    text: str


@dataclass(frozen=True, slots=True)
class Myself:
    pos: Pos


@dataclass(frozen=True, slots=True)
class Unary:
    pos: Pos
    op: str                  # "!", "-", "~", "defined", "(int)", "(str)"
    operand: "Expr"


@dataclass(frozen=True, slots=True)
class Binary:
    pos: Pos
    op: str                  # normalized: "||", "&&", "|", "&", "^", "<<", ">>", "==", ...
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True, slots=True)
class Call:
    """A function call (core or module): statement or value."""

    pos: Pos
    name: str
    args: tuple["Expr", ...]


@dataclass(frozen=True, slots=True)
class RouteCall:
    pos: Pos
    target: "Expr"           # Const(str) / Word for static names, else an expression


@dataclass(frozen=True, slots=True)
class Builtin:
    pos: Pos
    name: str                # strlen, strempty, selval
    args: tuple["Expr", ...]


Expr = Union[Const, Null, Pv, Word, Keyword, IpLit, Myself, Unary, Binary, Call, RouteCall,
             Builtin]


# ---- statements ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CallStmt:
    pos: Pos
    call: Union[Call, RouteCall]


@dataclass(frozen=True, slots=True)
class Assign:
    pos: Pos
    target: Pv
    value: Expr


@dataclass(frozen=True, slots=True)
class If:
    pos: Pos
    cond: Expr
    then: tuple["Stmt", ...]
    orelse: Optional[tuple["Stmt", ...]]


@dataclass(frozen=True, slots=True)
class Case:
    pos: Pos
    label: Optional[Expr]    # None = default
    is_regex: bool
    body: tuple["Stmt", ...]


@dataclass(frozen=True, slots=True)
class Switch:
    pos: Pos
    expr: Expr
    cases: tuple[Case, ...]


@dataclass(frozen=True, slots=True)
class While:
    pos: Pos
    cond: Expr
    body: tuple["Stmt", ...]


@dataclass(frozen=True, slots=True)
class Return:
    pos: Pos
    value: Optional[Expr]


@dataclass(frozen=True, slots=True)
class Exit:
    pos: Pos
    value: Optional[Expr]


@dataclass(frozen=True, slots=True)
class Drop:
    pos: Pos
    value: Optional[Expr]


@dataclass(frozen=True, slots=True)
class Break:
    pos: Pos


Stmt = Union[CallStmt, Assign, If, Switch, While, Return, Exit, Drop, Break]


# ---- top level -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GlobalParam:
    """`name = value` (value: int or str as written; `raw` keeps glued words)."""

    pos: Pos
    name: str
    value: Union[int, str]
    is_string: bool          # the value was a quoted string
    extra: tuple[tuple[str, Any], ...] = ()   # listen: ("advertise", ...), ("name", ...)


@dataclass(frozen=True, slots=True)
class CfgVar:
    """`group.var = value [desc "text"]` (runtime cfg framework declaration)."""

    pos: Pos
    group: str
    name: str
    value: Union[int, str]
    desc: str


@dataclass(frozen=True, slots=True)
class FlagsDecl:
    pos: Pos
    flags: tuple[tuple[str, Optional[int], Pos], ...]


@dataclass(frozen=True, slots=True)
class LoadModule:
    pos: Pos
    spec: str
    expand: bool = False     # loadmodulex: $env(NAME) / $def(NAME) are substituted


@dataclass(frozen=True, slots=True)
class LoadPath:
    pos: Pos
    path: str


@dataclass(frozen=True, slots=True)
class ModParam:
    pos: Pos
    module: str
    param: str
    value: Union[int, str]
    value_pos: Pos
    expand: bool = False     # modparamx: $env(NAME) / $def(NAME) are substituted


@dataclass(frozen=True, slots=True)
class CfgEngine:
    pos: Pos
    name: str


@dataclass(frozen=True, slots=True)
class RouteBlock:
    pos: Pos
    kind: str                # request|route|failure|branch|onreply|reply|onsend|event
    name: Optional[str]
    body: tuple[Stmt, ...]


TopItem = Union[GlobalParam, CfgVar, FlagsDecl, LoadModule, LoadPath, ModParam, CfgEngine,
                RouteBlock]


@dataclass(frozen=True, slots=True)
class Config:
    items: tuple[TopItem, ...]
