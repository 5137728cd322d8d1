"""pv: pseudo-variable functions and parameters (Kamailio modules/pv).

The PV classes and transformations themselves are core (`sipcore.pv`), so a cfg that uses
`$ru` works with or without `loadmodule "pv"`, as most Kamailio configs load it anyway. This
module adds the script functions over PVs and XAVPs, the static branch functions, the
`shvset`/`varset`/`avp_aliases` parameters and the pv.shvSet/pv.shvGet RPCs.

Runs in: SIP workers (functions), the master (modparam, mod_init: initial $var/$shv values,
inherited by every child) and the RPC process (pv.shv*).
Shared state: $shv values through `sipcore.pv.shv` (process-local until the runtime installs
the shm backend); $var values are per process by design.
"""
from __future__ import annotations

import logging
from typing import Any, Optional, Union

from sipcore.errors import RpcFault
from sipcore.mod import BRANCH_ROUTE, FAILURE_ROUTE, REQUEST_ROUTE, Fx, ModContext, Module
from sipcore.pv import PvError, PvSpec, miscpv, parse_format, shv
from sipcore.pv import vars as pvvars
from sipcore.pv.vars import Xavp, xavp_add, xavp_find_all, xavp_get, xavp_rm, xavps
from sipcore.route.ctx import Branch, RouteCtx

log = logging.getLogger(__name__)

mod = Module("pv", summary="Pseudo-variable functions: isset/unset, type checks, xavp helpers, "
             "static branch, $shv/$var initial values.")


# ---- parameters -------------------------------------------------------------------------------

def _typed(text: str) -> tuple[str, Union[int, str]]:
    return pvvars.parse_typed_value(text)


def _aliases(text: str) -> dict[str, pvvars.AvpName]:
    """"alias=name;alias2=i:5" -> {alias: name}. Applied right away: the routes that follow the
    modparam in the cfg are compiled with the aliases known (Kamailio does the same)."""
    out: dict[str, pvvars.AvpName] = {}
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        alias, eq, name = item.partition("=")
        if not eq or not alias.strip() or not name.strip():
            raise ValueError(f"invalid avp alias \"{item}\": expected alias=name")
        try:
            out[alias.strip()] = pvvars.parse_avp_name(name.strip())
        except PvError as e:
            raise ValueError(str(e)) from None
    pvvars.AVP_ALIASES.update(out)
    return out


mod.param("shvset", str, None, multi=True, validator=_typed,
          doc="Initial value of a shared variable: \"name=i:1\" or \"name=s:text\". Repeatable.")
mod.param("varset", str, None, multi=True, validator=_typed,
          doc="Initial value of a script variable $var(name), same format. Repeatable.")
mod.param("avp_aliases", str, None, multi=True, validator=_aliases,
          doc="AVP name aliases \"alias=name;alias2=i:5\".")


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: initial $shv and $var values (children inherit them)."""
    for name, value in mod.p.shvset:
        shv.set(name, value)
    for name, value in mod.p.varset:
        pvvars.init_var(name, value)
    for aliases in mod.p.avp_aliases:
        pvvars.AVP_ALIASES.update(aliases)


# ---- PV checks -----------------------------------------------------------------------------------

@mod.function("pv_isset", args=(Fx.PVAR,))
def ki_pv_isset(ctx: RouteCtx, pv: PvSpec) -> int:
    """1 if the PV has a value (is not $null), else -1."""
    return 1 if pv.get(ctx) is not None else -1


@mod.function("pv_unset", args=(Fx.PVAR,))
def ki_pv_unset(ctx: RouteCtx, pv: PvSpec) -> int:
    """Assign $null to a writable PV (delete the AVP/XAVP, reset the $var)."""
    try:
        pv.set(ctx, None)
    except PvError as e:
        log.error("pv_unset: %s", e)
        return -1
    return 1


def _is_int_value(v: Any) -> bool:
    if isinstance(v, int):
        return True
    if not isinstance(v, str):
        return False
    t = v[1:] if v[:1] in ("-", "+") else v
    return t.isdigit() and t.isascii()


@mod.function("is_int", args=(Fx.PVAR,))
def ki_is_int(ctx: RouteCtx, pv: PvSpec) -> int:
    """1 if the value is an integer (or a string holding only an integer), else -1."""
    return 1 if _is_int_value(pv.get(ctx)) else -1


@mod.function("typeof", args=(Fx.PVAR, Fx.STR))
def ki_typeof(ctx: RouteCtx, pv: PvSpec, vtype: str) -> int:
    """1 if the value's type is VTYPE: "int", "str" or "null"."""
    v = pv.get(ctx)
    t = vtype.strip().lower()
    if t.startswith("n"):
        return 1 if v is None else -1
    if t.startswith("i"):
        return 1 if isinstance(v, int) else -1
    if t.startswith("s"):
        return 1 if isinstance(v, str) else -1
    log.error('typeof: unknown type "%s" (int|str|null)', vtype)
    return -1


@mod.function("not_empty", args=(Fx.PVAR,))
def ki_not_empty(ctx: RouteCtx, pv: PvSpec) -> int:
    """1 if the value is a non-empty string, else -1 (ints and $null are not strings)."""
    v = pv.get(ctx)
    return 1 if isinstance(v, str) and v else -1


@mod.function("pv_evalx", args=(Fx.PVAR, Fx.SPVE))
def ki_pv_evalx(ctx: RouteCtx, dst: PvSpec, fmt: str) -> int:
    """Evaluate FMT (already evaluated once as an argument) again as a format into DST."""
    try:
        dst.set(ctx, parse_format(fmt).eval(ctx))
    except PvError as e:
        log.error("pv_evalx: %s", e)
        return -1
    return 1


# ---- xavp helpers ----------------------------------------------------------------------------

def _roots(ctx: RouteCtx, kind: str) -> list[Xavp]:
    return xavps(ctx).roots(kind)


def _params_explode(ctx: RouteCtx, kind: str, params: str, xname: str) -> int:
    """"a=1;b=2" -> a new root XNAME with fields a, b (in order: a is index 0 of its name)."""
    fields: list[Xavp] = []
    for item in params.rstrip(";").split(";"):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip()
        if not name:
            return -1
        fields.append(Xavp(name, value.strip() if eq else ""))
    if not fields:
        return -1
    roots = _roots(ctx, kind)
    if kind == "xavu":
        xavp_rm(roots, xname)
    xavp_add(roots, xname, list(reversed(fields)))
    return 1


def _params_implode(ctx: RouteCtx, kind: str, xname: str, dst: PvSpec) -> int:
    st = ctx.xavps
    root = xavp_get(st.roots(kind), xname) if st is not None else None
    if root is None or not isinstance(root.value, list):
        return -1
    parts = [f"{x.name}={'' if x.value is None else x.value}" for x in reversed(root.value)
             if not isinstance(x.value, list)]
    dst.set(ctx, ";".join(parts))
    return 1


@mod.function("xavp_params_explode", args=(Fx.SPVE, Fx.SPVE))
def ki_xavp_params_explode(ctx: RouteCtx, params: str, xname: str) -> int:
    """Turn "a=1;b=2" into a new $xavp(XNAME) item with fields a and b."""
    return _params_explode(ctx, "xavp", params, xname)


@mod.function("xavu_params_explode", args=(Fx.SPVE, Fx.SPVE))
def ki_xavu_params_explode(ctx: RouteCtx, params: str, xname: str) -> int:
    """Same as xavp_params_explode() for $xavu (replaces the item)."""
    return _params_explode(ctx, "xavu", params, xname)


@mod.function("xavp_params_implode", args=(Fx.SPVE, Fx.PVAR))
def ki_xavp_params_implode(ctx: RouteCtx, xname: str, dst: PvSpec) -> int:
    """Write the fields of the first $xavp(XNAME) item as "a=1;b=2" into DST."""
    return _params_implode(ctx, "xavp", xname, dst)


@mod.function("xavu_params_implode", args=(Fx.SPVE, Fx.PVAR))
def ki_xavu_params_implode(ctx: RouteCtx, xname: str, dst: PvSpec) -> int:
    """Same as xavp_params_implode() for $xavu."""
    return _params_implode(ctx, "xavu", xname, dst)


@mod.function("xavp_slist_explode", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE, Fx.SPVE))
def ki_xavp_slist_explode(ctx: RouteCtx, slist: str, sep: str, mode: str, xname: str) -> int:
    """Split SLIST at any char of SEP into fields v of a new $xavp(XNAME) item, so that
    $xavp(XNAME=>v[0]) is the first token. MODE "t" trims whitespace around tokens; empty
    tokens are skipped."""
    if not slist or not sep or not xname:
        return -1
    tokens: list[str] = []
    cur: list[str] = []
    for c in slist + sep[0]:
        if c in sep:
            tok = "".join(cur)
            if mode[:1] == "t":
                tok = tok.strip(" \t\r\n")
            if tok:
                tokens.append(tok)
            cur = []
        else:
            cur.append(c)
    fields = [Xavp("v", t) for t in tokens]
    xavp_add(_roots(ctx, "xavp"), xname, fields)
    return 1


def _child_set(ctx: RouteCtx, kind: str, rname: str, cname: str, value: Union[int, str]
               ) -> int:
    ci = kind == "xavi"
    roots = _roots(ctx, kind)
    root = xavp_get(roots, rname, 0, ci)
    if root is None:
        xavp_add(roots, rname, [Xavp(cname, value)])
        return 1
    if not isinstance(root.value, list):
        root.value = []
    children: list[Xavp] = root.value
    child = xavp_get(children, cname, 0, ci)
    if child is not None:
        child.value = value
    else:
        xavp_add(children, cname, value)
    return 1


@mod.function("xavp_child_seti", args=(Fx.SPVE, Fx.SPVE, Fx.IGP))
def ki_xavp_child_seti(ctx: RouteCtx, rname: str, cname: str, ival: int) -> int:
    """Set field CNAME of the first $xavp(RNAME) item to an int (creating what is missing)."""
    return _child_set(ctx, "xavp", rname, cname, ival)


@mod.function("xavp_child_sets", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE))
def ki_xavp_child_sets(ctx: RouteCtx, rname: str, cname: str, sval: str) -> int:
    """Set field CNAME of the first $xavp(RNAME) item to a string."""
    return _child_set(ctx, "xavp", rname, cname, sval)


@mod.function("xavi_child_seti", args=(Fx.SPVE, Fx.SPVE, Fx.IGP))
def ki_xavi_child_seti(ctx: RouteCtx, rname: str, cname: str, ival: int) -> int:
    """xavp_child_seti() for $xavi (case-insensitive names)."""
    return _child_set(ctx, "xavi", rname, cname, ival)


@mod.function("xavi_child_sets", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE))
def ki_xavi_child_sets(ctx: RouteCtx, rname: str, cname: str, sval: str) -> int:
    """xavp_child_sets() for $xavi (case-insensitive names)."""
    return _child_set(ctx, "xavi", rname, cname, sval)


def _rm(ctx: RouteCtx, kind: str, rname: str) -> int:
    st = ctx.xavps
    if st is None:
        return -1
    return 1 if xavp_rm(st.roots(kind), rname, ci=kind == "xavi") else -1


def _child_rm(ctx: RouteCtx, kind: str, rname: str, cname: str) -> int:
    st = ctx.xavps
    ci = kind == "xavi"
    root = xavp_get(st.roots(kind), rname, 0, ci) if st is not None else None
    if root is None or not isinstance(root.value, list):
        return -1
    return 1 if xavp_rm(root.value, cname, ci=ci) else -1


@mod.function("xavp_rm", args=(Fx.SPVE,))
def ki_xavp_rm(ctx: RouteCtx, rname: str) -> int:
    """Remove every $xavp(RNAME) item. -1 if there was none."""
    return _rm(ctx, "xavp", rname)


@mod.function("xavp_child_rm", args=(Fx.SPVE, Fx.SPVE))
def ki_xavp_child_rm(ctx: RouteCtx, rname: str, cname: str) -> int:
    """Remove field CNAME from the first $xavp(RNAME) item. -1 if absent."""
    return _child_rm(ctx, "xavp", rname, cname)


@mod.function("xavi_rm", args=(Fx.SPVE,))
def ki_xavi_rm(ctx: RouteCtx, rname: str) -> int:
    """xavp_rm() for $xavi."""
    return _rm(ctx, "xavi", rname)


@mod.function("xavi_child_rm", args=(Fx.SPVE, Fx.SPVE))
def ki_xavi_child_rm(ctx: RouteCtx, rname: str, cname: str) -> int:
    """xavp_child_rm() for $xavi."""
    return _child_rm(ctx, "xavi", rname, cname)


@mod.function("xavu_rm", args=(Fx.SPVE,))
def ki_xavu_rm(ctx: RouteCtx, rname: str) -> int:
    """Remove $xavu(RNAME). -1 if absent."""
    return _rm(ctx, "xavu", rname)


def _copy_value(v: Any) -> Any:
    if isinstance(v, list):
        return [Xavp(x.name, _copy_value(x.value)) for x in v]
    return v


@mod.function("xavp_copy", args=(Fx.SPVE, Fx.IGP, Fx.SPVE))
def ki_xavp_copy(ctx: RouteCtx, src: str, sidx: int, dst: str) -> int:
    """Copy item SIDX of $xavp(SRC) as a new item of $xavp(DST)."""
    roots = _roots(ctx, "xavp")
    item = xavp_get(roots, src, sidx)
    if item is None:
        return -1
    xavp_add(roots, dst, _copy_value(item.value))
    return 1


@mod.function("xavp_copy", args=(Fx.SPVE, Fx.IGP, Fx.SPVE, Fx.IGP), kemi_name="xavp_copy_dst")
def ki_xavp_copy_dst(ctx: RouteCtx, src: str, sidx: int, dst: str, didx: int) -> int:
    """Copy item SIDX of $xavp(SRC) over item DIDX of $xavp(DST) (which must exist)."""
    roots = _roots(ctx, "xavp")
    item = xavp_get(roots, src, sidx)
    target = xavp_get(roots, dst, didx)
    if item is None or target is None:
        return -1
    target.value = _copy_value(item.value)
    return 1


def _dump(ctx: RouteCtx, kind: str) -> int:
    st = ctx.xavps
    roots = st.roots(kind) if st is not None else []
    for i, r in enumerate(roots):
        log.info("%s[%s]: %s = %s", kind, i, r.name, _fmt_xavp(r.value))
    return 1


def _fmt_xavp(v: Any) -> str:
    if isinstance(v, list):
        return "{" + ", ".join(f"{x.name}={_fmt_xavp(x.value)}" for x in v) + "}"
    return repr(v)


@mod.function("pv_xavp_print", args=())
def ki_pv_xavp_print(ctx: RouteCtx) -> int:
    """Log every xavp of the message (info level)."""
    return _dump(ctx, "xavp")


@mod.function("pv_xavu_print", args=())
def ki_pv_xavu_print(ctx: RouteCtx) -> int:
    """Log every xavu of the message (info level)."""
    return _dump(ctx, "xavu")


@mod.function("pv_xavi_print", args=())
def ki_pv_xavi_print(ctx: RouteCtx) -> int:
    """Log every xavi of the message (info level)."""
    return _dump(ctx, "xavi")


@mod.function("pv_var_to_xavp", args=(Fx.SPVE, Fx.SPVE))
def ki_pv_var_to_xavp(ctx: RouteCtx, varname: str, xname: str) -> int:
    """Replace $xavp(XNAME) by one item holding $var(VARNAME), or every $var with "*"
    (empty strings skipped), as fields named after the variables."""
    roots = _roots(ctx, "xavp")
    xavp_rm(roots, xname)
    if varname == "*":
        fields = [Xavp(n, v) for n, v in pvvars.iter_vars() if v != ""]
        if fields:
            xavp_add(roots, xname, list(reversed(fields)))
        return 1
    if varname not in pvvars.VARS:
        log.error("pv_var_to_xavp: script var [%s] not found", varname)
        return -1
    xavp_add(roots, xname, [Xavp(varname, pvvars.VARS[varname])])
    return 1


@mod.function("pv_xavp_to_var", args=(Fx.SPVE,))
def ki_pv_xavp_to_var(ctx: RouteCtx, xname: str) -> int:
    """Copy the fields of every $xavp(XNAME) item into $var(field) variables (later items
    and older fields win when names repeat, as in Kamailio)."""
    st = ctx.xavps
    items = xavp_find_all(st.xavp, xname) if st is not None else []
    if not items or not isinstance(items[0].value, list):
        log.error("pv_xavp_to_var: xavp [%s] not found or not a structure", xname)
        return -1
    for item in items:
        if not isinstance(item.value, list):
            continue
        for x in item.value:
            if isinstance(x.value, (int, str)):
                pvvars.VARS[x.name] = x.value
    return 1


# ---- static branch ------------------------------------------------------------------------------

@mod.function("sbranch_set_ruri", args=(), routes=REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE)
def ki_sbranch_set_ruri(ctx: RouteCtx) -> int:
    """Set the R-URI (and $du, branch flags, send socket) from the static branch."""
    b = miscpv.sbranch()
    if not b.uri:
        log.error("sbranch_set_ruri: the static branch has no URI")
        return -1
    try:
        ctx.msg.set_ruri(b.uri)
    except ValueError as e:
        log.error("sbranch_set_ruri: %s", e)
        return -1
    ctx.dst_uri = b.dst_uri or None
    ctx.bflags = b.bflags
    if b.force_socket is not None:
        ctx.force_socket = b.force_socket
    if b.ruid:
        ctx.ruid = b.ruid
    if b.location_ua:
        ctx.location_ua = b.location_ua
    return 1


@mod.function("sbranch_append", args=(), routes=REQUEST_ROUTE | FAILURE_ROUTE)
def ki_sbranch_append(ctx: RouteCtx) -> int:
    """Append a copy of the static branch to the destination set."""
    b = miscpv.sbranch()
    if not b.uri:
        log.error("sbranch_append: the static branch has no URI")
        return -1
    ctx.branches.append(Branch(uri=b.uri, dst_uri=b.dst_uri, path=b.path, q=b.q,
                               bflags=b.bflags, force_socket=b.force_socket,
                               instance=b.instance, ruid=b.ruid, location_ua=b.location_ua))
    return 1


@mod.function("sbranch_reset", args=())
def ki_sbranch_reset(ctx: RouteCtx) -> int:
    """Clear the static branch."""
    miscpv.sbranch_reset()
    return 1


# ---- RPC -------------------------------------------------------------------------------------

def rpc_shv_set(name: str, vtype: str, value: Any) -> str:
    """pv.shvSet name int|str value"""
    t = str(vtype).strip().lower()
    if t == "int":
        try:
            v: Union[int, str] = int(str(value).strip(), 0)
        except ValueError:
            raise RpcFault(500, "Invalid integer value") from None
    elif t == "str":
        v = str(value)
    else:
        raise RpcFault(500, "Unknown value type")
    shv.set(str(name), v)
    return "Ok. Variable set to new value."


def rpc_shv_get(name: Optional[str] = None) -> list[dict[str, Any]]:
    """pv.shvGet [name]: [{name, type, value}] for one or every shared variable."""
    def item(n: str, v: Union[int, str]) -> dict[str, Any]:
        return {"name": n, "type": "int" if isinstance(v, int) else "string", "value": v}

    if name:
        v = shv.get(str(name))
        if v is None:
            raise RpcFault(404, "Variable not found")
        return [item(str(name), v)]
    return [item(n, v) for n, v in shv.backend().items()]


mod.rpc("pv.shvSet", rpc_shv_set, params="name:str type:str value:str",
        doc="Set a shared variable: pv.shvSet name int|str value.")
mod.rpc("pv.shvGet", rpc_shv_get, params="[name:str]",
        doc="Shared variables with their type and value (all, or the one named).")
