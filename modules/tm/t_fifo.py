"""t_write_req() / t_write_unix(): hand a request's transaction to an external application
(the legacy SEMS/voicemail interface), Kamailio's t_fifo.c format.

Runs in: SIP workers (request_route, failure_route). Touches no shared state besides the
transaction (a blind branch is added so that tm answers 408 if the application never replies).

The application gets twenty lines, each ended by "\\n" (Kamailio TWRITE_PARAMS, version 0.3):

  0.3                               format version
  sip_request.<action>              the action part of the info argument ("action[/append]")
  <method>
  <R-URI user>                      of the current R-URI
  <R-URI host>
  <receiving socket IP>
  <receiving socket port>           "." when the request came to port 5060
  <Request-URI as received>
  <next R-URI for in-dialog requests>  caller's Contact URI (or From URI), see Record-Route
  <From body>  <To body>  <Call-ID>  <From tag>  <To tag>  <CSeq number>
  <hash_index>:<label>              the transaction ($T(id_index):$T(id_label))
  <route set>                       "<uri>,<uri>..." from Record-Route, "." if none
  <next hop>                        first Record-Route URI if it is a loose router, else "."
  P-MsgFlags: <hex, least significant digit first>   then the tw_append lines, then "."
  <body>                            for INVITE, INFO or an append with msg[body]; else "."

The FIFO is opened O_WRONLY|O_NONBLOCK (no reader: an error and -1, never a blocked worker);
the unix socket gets one SOCK_DGRAM datagram (sent with the unix_tx_timeout parameter).
"""
from __future__ import annotations

import logging

import errno
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Optional

from sipcore.mod import Custom, Fx
from sipcore.route.ctx import RouteCtx, RouteType

from . import RF, mod
from .h_table import B_REPLIED, B_TIMEOUT
from .state import TM, table
from .t_lookup import lookup_request

log = logging.getLogger(__name__)

TWRITE_VERSION = "0.3"
SIP_PORT = 5060
APPEND_BUFFER_MAX = 4096
ROUTE_BUFFER_MAX = 512
CMD_BUFFER_MAX = 128
UNIX_PATH_MAX = 107

# Kamailio msg_flags bits reported in P-MsgFlags
FL_FORCE_RPORT = 1 << 0
FL_SHM_CLONE = 1 << 4           # failure_route runs on the transaction's copy
FL_TIMEOUT = 1 << 5             # failure_route: the failed branch timed out
FL_REPLIED = 1 << 6             # failure_route: the failed branch got a reply
FL_HASH_INDEX = 1 << 7          # set once tm looked the request up (t_newtran)


@dataclass
class Elem:
    """One tw_append element: `title=avp[name]` or `title=hdr[name]`."""

    kind: str                   # "avp" or "hdr"
    title: str
    name: str                   # AVP name or header name
    avp_id: Optional[int] = None


@dataclass
class TwAppend:
    name: str
    add_body: bool = False
    elems: list[Elem] = field(default_factory=list)


def parse_tw_append(text: str) -> TwAppend:
    """`name:element[;element]`, element = `[title=]avp[spec]` | `[title=]hdr[name]` |
    `msg[body]` (Kamailio tw_append syntax). Raises ValueError."""
    name, colon, rest = text.strip().partition(":")
    name = name.strip()
    if not colon or not name or any(c.isspace() for c in name) or not rest.strip():
        raise ValueError(f"tw_append: parse error in \"{text}\" (name:element[;element])")
    app = TwAppend(name)
    for raw in rest.split(";"):
        item = raw.strip()
        if not item:
            raise ValueError(f"tw_append: empty element in \"{text}\"")
        title = ""
        if "=" in item.split("[", 1)[0]:
            title, _eq, item = item.partition("=")
            title, item = title.strip(), item.strip()
        kind, bracket, inner = item.partition("[")
        kind = kind.strip().lower()
        if not bracket or not inner.endswith("]") or not inner[:-1].strip() \
                or any(c in inner[:-1] for c in " \t;]"):
            raise ValueError(f"tw_append: parse error at \"{raw.strip()}\" in \"{text}\"")
        value = inner[:-1]
        if kind == "msg":
            if value.lower() != "body":
                raise ValueError(f"tw_append: unsupported value <{value}> for msg type")
            app.add_body = True
        elif kind == "avp":
            spec = value
            if spec.startswith("$avp(") and spec.endswith(")"):
                spec = spec[5:-1]
            avp_id: Optional[int] = None
            if spec.startswith("i:") or spec.isdigit():
                num = spec.removeprefix("i:")
                if not num.isdigit():
                    raise ValueError(f"tw_append: bad avp spec <{value}>")
                avp_id = int(num)
                spec = num
            else:
                spec = spec.removeprefix("s:")
            app.elems.append(Elem("avp", title or spec, spec, avp_id))
        elif kind == "hdr":
            app.elems.append(Elem("hdr", title or value, value))
        else:
            raise ValueError(f"tw_append: unknown type <{kind}>")
    return app


def _appends() -> dict[str, TwAppend]:
    out: dict[str, TwAppend] = {}
    for text in mod.p.tw_append or ():
        app = parse_tw_append(text)
        out.setdefault(app.name.lower(), app)
    return out


def validate_tw_append(text: Any) -> str:
    """modparam("tm", "tw_append", ...): syntax check, duplicates rejected."""
    app = parse_tw_append(str(text))
    if app.name.lower() in _appends():
        raise ValueError(f"duplicated tw_append name <{app.name}>")
    return str(text)


def parse_info(text: str) -> tuple[str, str]:
    """The info argument "action[/append_name]" -> (action, append name or "")."""
    action, slash, append = text.partition("/")
    if slash and not action:
        raise ValueError("empty action name")
    if slash and not append:
        raise ValueError("empty append name")
    return action, append


def _flags_hex(value: int) -> str:
    """Kamailio int2reverse_hex(): lower-case hex digits, least significant first."""
    if value == 0:
        return "0"
    out = []
    while value:
        out.append("0123456789abcdef"[value & 0xF])
        value >>= 4
    return "".join(out)


def _append_lines(ctx: RouteCtx, app: TwAppend) -> list[str]:
    out = []
    for e in app.elems:
        if e.kind == "avp":
            if ctx.avps is None:
                continue
            v = ctx.avps.first(e.avp_id if e.avp_id is not None else e.name)
            if v is not None:
                out.append(f"{e.title}: {v}")
        else:
            h = ctx.msg.header(e.name)
            if h is not None:
                out.append(f"{e.title}: {h.value.strip()}")
    return out


def _routes(msg: Any, next_ruri: str) -> tuple[str, str, str]:
    """(route set, next hop, R-URI for subsequent requests) from Record-Route as Kamailio's
    assemble_msg() computes them (the first Record-Route URI is repeated when it is a loose
    router: Kamailio copies it before the loop over every Record-Route entry too)."""
    from sipcore.msg.nameaddr import parse_nameaddr_list
    from sipcore.msg.uri import parse_uri

    rrs = [na.uri for h in msg.header_all("Record-Route") if h.value.strip()
           for na in parse_nameaddr_list(h.value)]
    if not rrs:
        return ".", ".", next_ruri
    first = rrs[0]
    try:
        lr = parse_uri(first).param("lr") is not None
    except Exception:  # noqa: BLE001 - an unparsable URI just is no loose router
        lr = False
    route = [first] if lr else []
    route += rrs if lr else rrs[1:]
    if not lr:
        route.append(next_ruri)
        next_ruri, next_hop = first, "."
    else:
        next_hop = first
    text = ",".join(f"<{u}>" for u in route)
    if len(text) + 3 >= ROUTE_BUFFER_MAX:
        raise ValueError("buffer overflow while copying new route")
    return text, next_hop, next_ruri


def assemble(ctx: RouteCtx, info: str) -> Optional[bytes]:
    """The twenty lines for the transaction of ctx.msg; None on error (logged)."""
    msg = ctx.msg
    if not msg.is_request:
        log.error("t_write: called for something else than a SIP request")
        return None
    st = TM.of(ctx)
    tid = st.tid or lookup_request(ctx)
    if tid is None:
        log.error("t_write: no transaction (call t_newtran() first)")
        return None
    st.tid = tid
    try:
        action, append_name = parse_info(info)
    except ValueError as exc:
        log.error("t_write: %s", exc)
        return None
    app: Optional[TwAppend] = None
    if append_name:
        app = _appends().get(append_name.lower())
        if app is None:
            log.error("t_write: unknown append name <%s>", append_name)
            return None
    try:
        ruri = msg.parsed_ruri
        from_ = msg.from_
        to = msg.to
        contact = ""
        ch = msg.header("Contact")
        if ch is not None:
            from sipcore.msg.nameaddr import parse_contacts

            cl = parse_contacts(ch.value)
            if cl.contacts:
                contact = cl.contacts[0].uri
        route, next_hop, next_ruri = _routes(msg, contact or from_.uri)
    except Exception as exc:  # noqa: BLE001 - ParseError and friends: logged, -1
        log.error("t_write: cannot parse the request: %s", exc)
        return None
    rcv = ctx.rcv
    sock = rcv.sock
    ip = sock.ip if sock is not None else rcv.dst_ip
    port = "." if rcv.dst_port == SIP_PORT else str(sock.port if sock is not None
                                                      else rcv.dst_port)
    if msg.method in ("INVITE", "INFO") or (app is not None and app.add_body):
        body = msg.orig_body.decode("utf-8", "surrogateescape")
    else:
        body = "."
    flags = _msg_flags(ctx)
    extra = ["P-MsgFlags: " + _flags_hex(flags)]
    if app is not None:
        extra += _append_lines(ctx, app)
    append = "\n".join(extra) + "\n."
    if len(append) >= APPEND_BUFFER_MAX:
        log.error("t_write: overflow -> append exceeded %s len", APPEND_BUFFER_MAX)
        return None
    cmd = "sip_request." + action
    if len(action) + 12 >= CMD_BUFFER_MAX:
        log.error("t_write: buffer overflow while copying command name")
        return None
    lines = [TWRITE_VERSION, cmd, msg.method, ruri.user, ruri.host, ip, port,
             msg.orig_ruri, next_ruri or ".", from_value(msg, "From"), from_value(msg, "To"),
             msg.callid, from_.tag or "", to.tag or "", str(msg.cseq.num),
             f"{int(tid[:8], 16)}:{int(tid[8:], 16)}", route, next_hop, append, body]
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


def _msg_flags(ctx: RouteCtx) -> int:
    """Kamailio's msg_flags of the request as far as PyKam knows them."""
    flags = FL_HASH_INDEX | (FL_FORCE_RPORT if ctx.force_rport else 0)
    if ctx.route_type == RouteType.FAILURE:
        flags |= FL_SHM_CLONE
        st = TM.of(ctx)
        best = st.best
        cell = table().get(st.tid) if st.tid is not None else None
        if best is not None and cell is not None and 0 <= best[2] < len(cell.branches):
            bflags = cell.branches[best[2]].flags
            flags |= (FL_TIMEOUT if bflags & B_TIMEOUT else 0) | \
                (FL_REPLIED if bflags & B_REPLIED else 0)
    return flags


def from_value(msg: Any, name: str) -> str:
    h = msg.header(name)
    return h.value.strip() if h is not None else ""


def _add_blind_uac(ctx: RouteCtx) -> int:
    """A branch that is never sent: its fr timer makes tm answer 408 when the application
    does not reply in time (Kamailio add_blind_uac)."""
    from .t_fwd import add_blind_uac

    return add_blind_uac(ctx)


def write_to_fifo(path: str, data: bytes, ctx: RouteCtx) -> int:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            log.error("t_write_req: cannot open fifo file - nobody listening for reading [%s] "
                      "(%s)", path, exc.strerror)
        else:
            log.error("t_write_req: failed to open [%s] fifo: %s", path, exc.strerror)
        return -1
    try:
        while True:
            try:
                os.write(fd, data)
                break
            except InterruptedError:
                continue
    except OSError as exc:
        log.error("t_write_req: write failed: %s", exc.strerror)
        return -1
    finally:
        os.close(fd)
    return 1


def write_to_unixsock(path: str, data: bytes, timeout_ms: int, ctx: RouteCtx) -> int:
    if not path:
        log.debug("t_write_unix: empty socket name")
        return -1
    if len(path) > UNIX_PATH_MAX:
        log.error("t_write_unix: socket name too long")
        return -1
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.settimeout(max(timeout_ms, 1) / 1000.0)
        s.sendto(data, path)
    except OSError as exc:
        log.error("t_write_unix: send to [%s] failed: %s", path, exc.strerror or exc)
        return -1
    finally:
        s.close()
    return 1


def t_write_req(ctx: RouteCtx, fifo: str, info: str) -> int:
    """1 written (and the blind branch armed), -1 on error."""
    data = assemble(ctx, info)
    if data is None:
        return -1
    if write_to_fifo(fifo, data, ctx) < 0:
        return -1
    return 1 if _add_blind_uac(ctx) >= 0 else -1


def t_write_unix(ctx: RouteCtx, sock: str, info: str) -> int:
    data = assemble(ctx, info)
    if data is None:
        return -1
    if write_to_unixsock(sock, data, int(mod.p.unix_tx_timeout), ctx) < 0:
        return -1
    return 1 if _add_blind_uac(ctx) >= 0 else -1


# ---- script functions -----------------------------------------------------------------------

def _tw_info(text: str) -> str:
    """t_write_req/t_write_unix info "action[/append_name]" (the append must be a tw_append)."""
    _action, append = parse_info(text.strip())
    if append and append.lower() not in _appends():
        raise ValueError(f"unknown append name <{append}> (no such tw_append)")
    return text.strip()


TW_INFO = Custom(_tw_info, name="tw-info")


@mod.function("t_write_req", args=(Fx.STR, TW_INFO), routes=RF)
def ki_t_write_req(ctx: RouteCtx, fifo: str, info: str) -> int:
    """Write the transaction's request to FIFO for an application (legacy); 1 / -1."""
    return t_write_req(ctx, fifo, info)


@mod.function("t_write_unix", args=(Fx.STR, TW_INFO), routes=RF)
def ki_t_write_unix(ctx: RouteCtx, sock: str, info: str) -> int:
    """Same to a unix datagram socket (legacy); 1 / -1."""
    return t_write_unix(ctx, sock, info)
