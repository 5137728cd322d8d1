"""textopsx: textops extensions - apply pending changes, reply status, header values,
header and body-line iterators.

Runs in: SIP workers (functions, PVs) and the master (fixups). Shared state: none; iterator
state lives in the message's RouteCtx (the TX slot).
Kamailio equivalent: modules/textopsx. The @hf_value selects are not provided (PyKam has no
select framework); the same data is reachable through the functions below.
"""
from __future__ import annotations

import fnmatch as _fnmatch
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from sipcore.errors import ParseError
from sipcore.mod import ANY_ROUTE, ONREPLY_ROUTE, REQUEST_ROUTE, Custom, Fx, Module
from sipcore.route.ctx import MsgSlot, RouteCtx

from .hfvalue import HfSpec, ValueSpan, param_span, parse_hf_spec, select, value_spans

log = logging.getLogger(__name__)

mod = Module("textopsx", summary="textops extensions: msg_apply_changes, reply status, "
             "header value editing, header and body-line iterators.")

# ---- fixups ----------------------------------------------------------------------------------

HF = Custom(parse_hf_spec, dynamic=True, name="hf-value-spec")


def parse_fn_flags(text: str) -> str:
    t = text.strip()
    if any(c not in "i" for c in t):
        raise ValueError(f"invalid fnmatch flags \"{text}\" (only 'i')")
    return t


FN_FLAGS = Custom(parse_fn_flags, name="fnmatch-flags")


def parse_iname(text: str) -> str:
    t = text.strip()
    if not t or not re.match(r"^[A-Za-z0-9_]+$", t):
        raise ValueError(f"invalid iterator name \"{text}\"")
    return t


INAME = Custom(parse_iname, name="iterator-name")

# ---- message rebuilds ------------------------------------------------------------------------


def _reparse(ctx: RouteCtx, buf: bytes) -> int:
    from sipcore.msg import parse_msg

    try:
        ctx.msg = parse_msg(buf)
    except ParseError as exc:
        log.error("textopsx: the rebuilt message does not parse: %s", exc)
        return -1
    ctx.body_ctype = None               # the rebuilt message carries its Content-Type
    TX.drop(ctx)                        # iterator offsets were into the old buffer
    return 1


@mod.function("msg_apply_changes", args=(), routes=REQUEST_ROUTE | ONREPLY_ROUTE)
def ki_msg_apply_changes(ctx: RouteCtx) -> int:
    """Build the message with its pending edits and continue with the rebuilt message, so
    later functions see the changes. 1 / -1 (rebuilt message does not parse)."""
    if not ctx.msg.lumps_pending:
        return 1
    return _reparse(ctx, ctx.msg.build())


@mod.function("msg_set_buffer", args=(Fx.SPVE,), routes=REQUEST_ROUTE | ONREPLY_ROUTE)
def ki_msg_set_buffer(ctx: RouteCtx, data: str) -> int:
    """Replace the whole message with DATA (parsed again). 1 / -1."""
    if not data:
        return -1
    return _reparse(ctx, data.encode("utf-8"))


def _change_status(ctx: RouteCtx, code: int, reason: Optional[str]) -> int:
    msg = ctx.msg
    if not msg.is_reply:
        log.error("change_reply_status: not a reply")
        return -1
    if not 100 <= code <= 699:
        log.error("change_reply_status: invalid code %s", code)
        return -1
    old = msg.status
    if (old < 300 or code < 300) and old // 100 != code // 100:
        # Kamailio: the class of a provisional or positive final reply cannot be changed
        log.error("change_reply_status: cannot change %s to %s", old, code)
        return -1
    buf = msg.buf
    eol = buf.find(b"\n")
    eol = eol - 1 if eol > 0 and buf[eol - 1:eol] == b"\r" else eol
    code_start = buf.find(b" ") + 1
    if reason is None:
        msg.delete_range(code_start, code_start + 3)
        msg.insert_before(code_start, str(code).encode())
    else:
        msg.delete_range(code_start, eol)
        msg.insert_before(code_start, f"{code} {reason}".encode("utf-8"))
    return 1


@mod.function("change_reply_status", args=(Fx.IGP, Fx.SPVE), routes=ONREPLY_ROUTE)
def ki_change_reply_status(ctx: RouteCtx, code: int, reason: str) -> int:
    """Change the status code and reason of the reply being processed. 1 / -1.
    A 1xx or 2xx cannot change class (and nothing can become 1xx/2xx)."""
    return _change_status(ctx, code, reason)


@mod.function("change_reply_status_code", args=(Fx.IGP,), routes=ONREPLY_ROUTE)
def ki_change_reply_status_code(ctx: RouteCtx, code: int) -> int:
    """Change only the status code of the reply. 1 / -1."""
    return _change_status(ctx, code, None)


@mod.function("remove_body", args=(), routes=ANY_ROUTE)
def ki_remove_body(ctx: RouteCtx) -> int:
    """Remove the body (Content-Length becomes 0). 1 / -1 when there is no body."""
    if not ctx.msg.body:
        return -1
    ctx.msg.set_body(b"")
    return 1


#: headers keep_hf() never removes (Kamailio textopsx keep_hf_f)
KEEP_TYPES = ("VIA", "FROM", "TO", "CALLID", "CSEQ", "CONTACT", "CONTENTLENGTH",
              "CONTENTTYPE", "ROUTE", "RECORDROUTE", "MAXFORWARDS")


def _keep(ctx: RouteCtx, rx: Any) -> int:
    from sipcore.msg import HdrType

    keep = {getattr(HdrType, t) for t in KEEP_TYPES}
    for h in ctx.msg.headers:
        if h.type in keep:
            continue
        if rx is not None:
            name = h.name if isinstance(rx.pattern, str) else h.name.encode("latin-1")
            if rx.search(name):
                continue
        ctx.msg.remove_header(h)
    return 1


@mod.function("keep_hf", args=(), routes=ANY_ROUTE)
def ki_keep_hf(ctx: RouteCtx) -> int:
    """Remove every header except Via, From, To, Call-ID, CSeq, Contact, Content-Length,
    Content-Type, Route, Record-Route and Max-Forwards. 1."""
    return _keep(ctx, None)


@mod.function("keep_hf", args=(Fx.REGEX,), routes=ANY_ROUTE)
def ki_keep_hf_re(ctx: RouteCtx, rx: Any) -> int:
    """keep_hf() also keeping headers whose name matches RX. 1."""
    return _keep(ctx, rx)


@mod.function("fnmatch", args=(Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_fnmatch(ctx: RouteCtx, value: str, expr: str) -> int:
    """VALUE matches the shell glob EXPR: 1, else -1."""
    return 1 if _fnmatch.fnmatchcase(value, expr) else -1


@mod.function("fnmatch", args=(Fx.SPVE, Fx.SPVE, FN_FLAGS), routes=ANY_ROUTE)
def ki_fnmatch_flags(ctx: RouteCtx, value: str, expr: str, flags: str) -> int:
    """fnmatch() with flags: 'i' ignores case."""
    if "i" in flags:
        return 1 if _fnmatch.fnmatchcase(value.lower(), expr.lower()) else -1
    return ki_fnmatch(ctx, value, expr)


# ---- header values ---------------------------------------------------------------------------

def _remove_value(ctx: RouteCtx, v: ValueSpan) -> None:
    msg = ctx.msg
    if v.n_in_hdr <= 1:
        msg.remove_header(v.hdr)
    elif v.next_start >= 0:
        msg.delete_range(v.start, v.next_start)
    else:
        msg.delete_range(v.prev_end, v.end)


def _new_header(ctx: RouteCtx, name: str, value: str, first: bool) -> None:
    hs = ctx.msg.header_all(name)
    line = f"{name}: {value}"
    if hs and first:
        ctx.msg.add_header(line, before=hs[0])
    elif hs:
        ctx.msg.add_header(line, after=hs[-1])
    else:
        ctx.msg.add_header(line)


def _hv_add(ctx: RouteCtx, spec: HfSpec, val: str, append: bool) -> int:
    if spec.param:
        log.error('%s_hf_value: a param is not allowed in "%s"', 'append' if append else 'insert',
                  spec)
        return -1
    spans = value_spans(ctx.msg, spec.name)
    if not spec.has_idx or not spans:
        _new_header(ctx, spec.name, val, first=not append)
        return 1
    targets = select(spans, spec.idx if spec.idx is not None else (-1 if append else 1))
    if not targets:
        return -1
    v = targets[0]
    data = val.encode("utf-8")
    if append:
        ctx.msg.insert_before(v.end, b", " + data)
    else:
        ctx.msg.insert_before(v.start, data + b", ")
    return 1


@mod.function("append_hf_value", args=(HF, Fx.SPVE), routes=ANY_ROUTE)
def ki_append_hf_value(ctx: RouteCtx, spec: HfSpec, val: str) -> int:
    """'NAME': add a new NAME header after the existing ones; 'NAME[i]': add VAL after
    value i (-1: the last). 1 / -1."""
    return _hv_add(ctx, spec, val, True)


@mod.function("insert_hf_value", args=(HF, Fx.SPVE), routes=ANY_ROUTE)
def ki_insert_hf_value(ctx: RouteCtx, spec: HfSpec, val: str) -> int:
    """'NAME': add a new NAME header before the existing ones; 'NAME[i]': insert VAL before
    value i. 1 / -1."""
    return _hv_add(ctx, spec, val, False)


def _hv_remove(ctx: RouteCtx, spec: HfSpec, split: bool) -> int:
    spans = select(value_spans(ctx.msg, spec.name, split), spec.idx)
    if not spans:
        return -1
    if spec.param:
        n = 0
        for v in spans:
            ps = param_span(ctx.msg.buf, v, spec.param)
            if ps is not None:
                ctx.msg.delete_range(ps[0], ps[1])
                n += 1
        return 1 if n else -1
    if split and spec.idx is None:
        for h in {id(v.hdr): v.hdr for v in spans}.values():
            ctx.msg.remove_header(h)
        return 1
    for v in spans:
        if split:
            _remove_value(ctx, v)
        else:
            ctx.msg.remove_header(v.hdr)
    return 1


@mod.function("remove_hf_value", args=(HF,), routes=ANY_ROUTE)
def ki_remove_hf_value(ctx: RouteCtx, spec: HfSpec) -> int:
    """Remove value i ('NAME[i]'), all values ('NAME'), or PARAM of the selected values
    ('NAME[i].param'). 1 / -1 when nothing matched."""
    return _hv_remove(ctx, spec, True)


@mod.function("remove_hf_value2", args=(HF,), routes=ANY_ROUTE)
def ki_remove_hf_value2(ctx: RouteCtx, spec: HfSpec) -> int:
    """remove_hf_value() where each header occurrence is one value (no comma split)."""
    return _hv_remove(ctx, spec, False)


def _hv_assign(ctx: RouteCtx, spec: HfSpec, val: str, split: bool) -> int:
    msg = ctx.msg
    spans = select(value_spans(msg, spec.name, split), spec.idx)
    if not spans:
        if spec.param or spec.has_idx:
            return -1
        _new_header(ctx, spec.name, val, first=False)
        return 1
    data = val.encode("utf-8")
    if spec.param:
        for v in spans:
            ps = param_span(msg.buf, v, spec.param)
            pdata = f";{spec.param}={val}".encode("utf-8") if val else \
                f";{spec.param}".encode("utf-8")
            if ps is None:
                msg.insert_before(v.end, pdata)
            else:
                msg.delete_range(ps[0], ps[1])
                msg.insert_before(ps[0], pdata)
        return 1
    if not spec.has_idx:
        # 'NAME': the whole list becomes VAL (first header keeps it, the others go)
        first = spans[0].hdr
        msg.delete_range(first.value_start, first.value_end)
        msg.insert_before(first.value_start, data)
        for h in {id(v.hdr): v.hdr for v in spans if v.hdr is not first}.values():
            msg.remove_header(h)
        return 1
    for v in spans:
        msg.delete_range(v.start, v.end)
        msg.insert_before(v.start, data)
    return 1


@mod.function("assign_hf_value", args=(HF, Fx.SPVE), routes=ANY_ROUTE)
def ki_assign_hf_value(ctx: RouteCtx, spec: HfSpec, val: str) -> int:
    """Set value i ('NAME[i]'), every value ('NAME[*]'), the whole list ('NAME'), or PARAM
    ('NAME[i].param', added when missing) to VAL. 1 / -1."""
    return _hv_assign(ctx, spec, val, True)


@mod.function("assign_hf_value2", args=(HF, Fx.SPVE), routes=ANY_ROUTE)
def ki_assign_hf_value2(ctx: RouteCtx, spec: HfSpec, val: str) -> int:
    """assign_hf_value() where each header occurrence is one value."""
    return _hv_assign(ctx, spec, val, False)


def _value_equals(buf: bytes, v: ValueSpan, val: str) -> bool:
    return v.text(buf).strip().lower() == val.strip().lower()


@mod.function("include_hf_value", args=(HF, Fx.SPVE), routes=ANY_ROUTE)
def ki_include_hf_value(ctx: RouteCtx, spec: HfSpec, val: str) -> int:
    """Add VAL to the NAME list unless present (case-insensitive). 1."""
    spans = value_spans(ctx.msg, spec.name)
    if any(_value_equals(ctx.msg.buf, v, val) for v in spans):
        return 1
    if spans:
        ctx.msg.insert_before(spans[-1].end, b", " + val.encode("utf-8"))
    else:
        _new_header(ctx, spec.name, val, first=False)
    return 1


@mod.function("exclude_hf_value", args=(HF, Fx.SPVE), routes=ANY_ROUTE)
def ki_exclude_hf_value(ctx: RouteCtx, spec: HfSpec, val: str) -> int:
    """Remove VAL from the NAME list (a header left empty is removed). 1 / -1 if absent."""
    spans = value_spans(ctx.msg, spec.name)
    hits = [v for v in spans if _value_equals(ctx.msg.buf, v, val)]
    if not hits:
        return -1
    by_hdr: dict[int, list[ValueSpan]] = {}
    for v in spans:
        by_hdr.setdefault(id(v.hdr), []).append(v)
    for vs in by_hdr.values():
        gone = [v for v in vs if v in hits]
        if len(gone) == len(vs):
            ctx.msg.remove_header(vs[0].hdr)
            continue
        for v in gone:
            _remove_value(ctx, v)
    return 1


@mod.function("hf_value_exists", args=(HF, Fx.SPVE), routes=ANY_ROUTE)
def ki_hf_value_exists(ctx: RouteCtx, spec: HfSpec, val: str) -> int:
    """VAL is one of the NAME values (case-insensitive): 1, else -1."""
    spans = value_spans(ctx.msg, spec.name)
    return 1 if any(_value_equals(ctx.msg.buf, v, val) for v in spans) else -1


# ---- iterators -------------------------------------------------------------------------------

MAX_ITERATORS = 4


@dataclass
class _HfIt:
    pos: int = -1                 # index in msg.headers; -1 before the first


@dataclass
class _BlIt:
    start: int = -1               # current line span (absolute offsets in msg.buf)
    end: int = -1                 # end of line content (without the line terminator)
    next_: int = -1               # offset of the next line


@dataclass(slots=True)
class TxMsg:
    """textopsx's part of one message: the header iterators and the body-line iterators, by
    name."""

    hfit: dict[str, Any] = field(default_factory=dict)
    blit: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> "TxMsg":
        return TxMsg(dict(self.hfit), dict(self.blit))


TX: MsgSlot[TxMsg] = MsgSlot("textopsx", TxMsg)


def _its(ctx: RouteCtx, key: str) -> dict[str, Any]:
    st = TX.of(ctx)
    return st.hfit if key == "hfit" else st.blit


def _it_get(ctx: RouteCtx, key: str, name: str, create: bool) -> Any:
    its = _its(ctx, key)
    if name not in its:
        if not create:
            return None
        if len(its) >= MAX_ITERATORS:
            log.error("textopsx: too many iterators (max %s)", MAX_ITERATORS)
            return None
        its[name] = _HfIt() if key == "hfit" else _BlIt()
    return its[name]


def _add_text(ctx: RouteCtx, text: str, **where: Any) -> int:
    try:
        ctx.msg.add_header(text, **where)
    except ValueError as exc:
        log.error("textopsx: cannot add header %r: %s", text, exc)
        return -1
    return 1


def _hf_cur(ctx: RouteCtx, name: str) -> Any:
    it = _it_get(ctx, "hfit", name, False)
    if it is None or not 0 <= it.pos < len(ctx.msg.headers):
        return None
    return ctx.msg.headers[it.pos]


@mod.function("hf_iterator_start", args=(INAME,), routes=ANY_ROUTE)
def ki_hf_iterator_start(ctx: RouteCtx, name: str) -> int:
    """Start iterator NAME on the first header. 1 / -1 (no headers, too many iterators)."""
    it = _it_get(ctx, "hfit", name, True)
    if it is None or not ctx.msg.headers:
        return -1
    it.pos = 0
    return 1


@mod.function("hf_iterator_next", args=(INAME,), routes=ANY_ROUTE)
def ki_hf_iterator_next(ctx: RouteCtx, name: str) -> int:
    """Move iterator NAME to the next header. 1 / -1 at the end."""
    it = _it_get(ctx, "hfit", name, False)
    if it is None or it.pos + 1 >= len(ctx.msg.headers):
        if it is not None:
            it.pos = len(ctx.msg.headers)
        return -1
    it.pos += 1
    return 1


@mod.function("hf_iterator_prev", args=(INAME,), routes=ANY_ROUTE)
def ki_hf_iterator_prev(ctx: RouteCtx, name: str) -> int:
    """Move iterator NAME to the previous header. 1 / -1 at the start."""
    it = _it_get(ctx, "hfit", name, False)
    if it is None or it.pos <= 0:
        return -1
    it.pos -= 1
    return 1


@mod.function("hf_iterator_end", args=(INAME,), routes=ANY_ROUTE)
def ki_hf_iterator_end(ctx: RouteCtx, name: str) -> int:
    """Release iterator NAME. 1."""
    _its(ctx, "hfit").pop(name, None)
    return 1


@mod.function("hf_iterator_rm", args=(INAME,), routes=ANY_ROUTE)
def ki_hf_iterator_rm(ctx: RouteCtx, name: str) -> int:
    """Remove the header at iterator NAME. 1 / -1."""
    h = _hf_cur(ctx, name)
    if h is None:
        return -1
    ctx.msg.remove_header(h)
    return 1


@mod.function("hf_iterator_append", args=(INAME, Fx.SPVE), routes=ANY_ROUTE)
def ki_hf_iterator_append(ctx: RouteCtx, name: str, text: str) -> int:
    """Add header(s) TEXT after the header at iterator NAME. 1 / -1."""
    h = _hf_cur(ctx, name)
    if h is None or not text.strip():
        return -1
    return _add_text(ctx, text, after=h)


@mod.function("hf_iterator_insert", args=(INAME, Fx.SPVE), routes=ANY_ROUTE)
def ki_hf_iterator_insert(ctx: RouteCtx, name: str, text: str) -> int:
    """Add header(s) TEXT before the header at iterator NAME. 1 / -1."""
    h = _hf_cur(ctx, name)
    if h is None or not text.strip():
        return -1
    return _add_text(ctx, text, before=h)


def _body_bounds(msg: Any) -> tuple[int, int]:
    """[start, end) of the received body in msg.buf."""
    buf = msg.buf
    i, j = buf.find(b"\r\n\r\n"), buf.find(b"\n\n")
    if i >= 0 and (j < 0 or i <= j):
        s = i + 4
    else:
        s = j + 2 if j >= 0 else len(buf)
    return s, s + len(msg.orig_body)


def _bl_load(msg: Any, it: _BlIt, start: int) -> bool:
    _, bend = _body_bounds(msg)
    if start >= bend:
        it.start = it.end = it.next_ = bend
        return False
    nl = msg.buf.find(b"\n", start, bend)
    if nl < 0:
        it.start, it.end, it.next_ = start, bend, bend
    else:
        end = nl - 1 if nl > start and msg.buf[nl - 1:nl] == b"\r" else nl
        it.start, it.end, it.next_ = start, end, nl + 1
    return True


@mod.function("bl_iterator_start", args=(INAME,), routes=ANY_ROUTE)
def ki_bl_iterator_start(ctx: RouteCtx, name: str) -> int:
    """Start body-line iterator NAME on the first line of the body. 1 / -1 (no body)."""
    it = _it_get(ctx, "blit", name, True)
    if it is None:
        return -1
    s, _ = _body_bounds(ctx.msg)
    return 1 if _bl_load(ctx.msg, it, s) else -1


@mod.function("bl_iterator_next", args=(INAME,), routes=ANY_ROUTE)
def ki_bl_iterator_next(ctx: RouteCtx, name: str) -> int:
    """Move body-line iterator NAME to the next line. 1 / -1 at the end."""
    it = _it_get(ctx, "blit", name, False)
    if it is None or it.next_ < 0:
        return -1
    return 1 if _bl_load(ctx.msg, it, it.next_) else -1


@mod.function("bl_iterator_end", args=(INAME,), routes=ANY_ROUTE)
def ki_bl_iterator_end(ctx: RouteCtx, name: str) -> int:
    """Release body-line iterator NAME. 1."""
    _its(ctx, "blit").pop(name, None)
    return 1


def _bl_cur(ctx: RouteCtx, name: str) -> Optional[_BlIt]:
    it = _it_get(ctx, "blit", name, False)
    if it is None or it.start < 0 or it.start >= _body_bounds(ctx.msg)[1]:
        return None
    return it


@mod.function("bl_iterator_rm", args=(INAME,), routes=ANY_ROUTE)
def ki_bl_iterator_rm(ctx: RouteCtx, name: str) -> int:
    """Remove the body line at iterator NAME (with its line end). 1 / -1."""
    it = _bl_cur(ctx, name)
    if it is None:
        return -1
    ctx.msg.delete_range(it.start, it.next_)
    return 1


@mod.function("bl_iterator_append", args=(INAME, Fx.SPVE), routes=ANY_ROUTE)
def ki_bl_iterator_append(ctx: RouteCtx, name: str, text: str) -> int:
    """Insert TEXT after the body line at iterator NAME (after its line end). 1 / -1."""
    it = _bl_cur(ctx, name)
    if it is None:
        return -1
    ctx.msg.insert_before(it.next_, text.encode("utf-8"))
    return 1


@mod.function("bl_iterator_insert", args=(INAME, Fx.SPVE), routes=ANY_ROUTE)
def ki_bl_iterator_insert(ctx: RouteCtx, name: str, text: str) -> int:
    """Insert TEXT before the body line at iterator NAME. 1 / -1."""
    it = _bl_cur(ctx, name)
    if it is None:
        return -1
    ctx.msg.insert_before(it.start, text.encode("utf-8"))
    return 1


# ---- pseudo-variables ------------------------------------------------------------------------

def _pv_factory(getter_for: Any, cls: str) -> Any:
    def factory(inner: Optional[str]) -> Any:
        from sipcore.pv.spec import FuncPv

        if not inner or not re.match(r"^[A-Za-z0-9_]+$", inner.strip()):
            raise ValueError(f"${cls} needs an iterator name: ${cls}(name)")
        name = inner.strip()
        return FuncPv(lambda ctx: getter_for(ctx, name), text=f"${cls}({name})")
    return factory


def _get_hfitname(ctx: RouteCtx, name: str) -> Optional[str]:
    h = _hf_cur(ctx, name)
    return None if h is None else h.name


def _get_hfitbody(ctx: RouteCtx, name: str) -> Optional[str]:
    h = _hf_cur(ctx, name)
    return None if h is None else h.value


def _get_blitval(ctx: RouteCtx, name: str) -> Optional[str]:
    it = _bl_cur(ctx, name)
    if it is None:
        return None
    return ctx.msg.buf[it.start:it.next_].decode("utf-8", "replace")


mod.pv("hfitname", _pv_factory(_get_hfitname, "hfitname"),
       doc="$hfitname(iname): name of the header at header iterator INAME.")
mod.pv("hfitbody", _pv_factory(_get_hfitbody, "hfitbody"),
       doc="$hfitbody(iname): value of the header at header iterator INAME.")
mod.pv("blitval", _pv_factory(_get_blitval, "blitval"),
       doc="$blitval(iname): the body line (with its line end) at body-line iterator INAME.")
