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

import errno
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Optional

from sipcore import log as klog
from sipcore.route.ctx import RouteCtx

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
    from . import mod

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
    from . import t_funcs as tf

    msg = ctx.msg
    if not msg.is_request:
        klog.err("t_write: called for something else than a SIP request", ctx)
        return None
    tid = ctx.extra.get(tf.TID) or tf.lookup_request(ctx)
    if tid is None:
        klog.err("t_write: no transaction (call t_newtran() first)", ctx)
        return None
    ctx.extra[tf.TID] = tid
    try:
        action, append_name = parse_info(info)
    except ValueError as exc:
        klog.err(f"t_write: {exc}", ctx)
        return None
    app: Optional[TwAppend] = None
    if append_name:
        app = _appends().get(append_name.lower())
        if app is None:
            klog.err(f"t_write: unknown append name <{append_name}>", ctx)
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
        klog.err(f"t_write: cannot parse the request: {exc}", ctx)
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
        klog.err(f"t_write: overflow -> append exceeded {APPEND_BUFFER_MAX} len", ctx)
        return None
    cmd = "sip_request." + action
    if len(action) + 12 >= CMD_BUFFER_MAX:
        klog.err("t_write: buffer overflow while copying command name", ctx)
        return None
    lines = [TWRITE_VERSION, cmd, msg.method, ruri.user, ruri.host, ip, port,
             msg.orig_ruri, next_ruri or ".", from_value(msg, "From"), from_value(msg, "To"),
             msg.callid, from_.tag or "", to.tag or "", str(msg.cseq.num),
             f"{int(tid[:8], 16)}:{int(tid[8:], 16)}", route, next_hop, append, body]
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


def _msg_flags(ctx: RouteCtx) -> int:
    """Kamailio's msg_flags of the request as far as PyKam knows them."""
    from sipcore.mod.exports import RouteType

    from . import t_funcs as tf
    from .h_table import B_REPLIED, B_TIMEOUT

    flags = FL_HASH_INDEX | (FL_FORCE_RPORT if ctx.force_rport else 0)
    if ctx.route_type == RouteType.FAILURE:
        flags |= FL_SHM_CLONE
        best = ctx.extra.get(tf.BEST)
        cell = tf.table().get(ctx.extra[tf.TID])
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
    from . import t_funcs as tf

    return tf.add_blind_uac(ctx)


def write_to_fifo(path: str, data: bytes, ctx: RouteCtx) -> int:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            klog.err(f"t_write_req: cannot open fifo file - nobody listening for reading "
                     f"[{path}] ({exc.strerror})", ctx)
        else:
            klog.err(f"t_write_req: failed to open [{path}] fifo: {exc.strerror}", ctx)
        return -1
    try:
        while True:
            try:
                os.write(fd, data)
                break
            except InterruptedError:
                continue
    except OSError as exc:
        klog.err(f"t_write_req: write failed: {exc.strerror}", ctx)
        return -1
    finally:
        os.close(fd)
    return 1


def write_to_unixsock(path: str, data: bytes, timeout_ms: int, ctx: RouteCtx) -> int:
    if not path:
        klog.dbg("t_write_unix: empty socket name", ctx)
        return -1
    if len(path) > UNIX_PATH_MAX:
        klog.err("t_write_unix: socket name too long", ctx)
        return -1
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.settimeout(max(timeout_ms, 1) / 1000.0)
        s.sendto(data, path)
    except OSError as exc:
        klog.err(f"t_write_unix: send to [{path}] failed: {exc.strerror or exc}", ctx)
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
    from . import mod

    data = assemble(ctx, info)
    if data is None:
        return -1
    if write_to_unixsock(sock, data, int(mod.p.unix_tx_timeout), ctx) < 0:
        return -1
    return 1 if _add_blind_uac(ctx) >= 0 else -1
