"""nathelper script functions: NAT detection tests, Contact/R-URI rewriting, SDP fixing.

Runs in: SIP workers. Shared state: none (edits go to the message's edit list; the Contact
text other nathelper calls must see is remembered in the message's NH slot).
Kamailio equivalent: modules/nathelper/nathelper.c (nat_uac_test, fix_nated_contact,
fix_nated_sdp, add_rcv_param, *_contact_alias, handle_ruri_alias).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sipcore.errors import ParseError
from sipcore.msg import HdrType, SipMsg, parse_uri
from sipcore.msg.lumps import LumpList, apply_ops
from sipcore.msg.sdp import SdpLine, parse_connection, parse_origin, split_lines
from sipcore.msg.spans import value_spans
from sipcore.route.ctx import MsgSlot, RouteCtx

from . import nh_addr as na

log = logging.getLogger(__name__)

# nat_uac_test bits (Kamailio NAT_UAC_TEST_*)
NAT_UAC_TEST_C_1918 = 0x01      # Contact URI host is private
NAT_UAC_TEST_RCVD = 0x02        # top Via host differs from the source address
NAT_UAC_TEST_V_1918 = 0x04      # top Via host is private
NAT_UAC_TEST_S_1918 = 0x08      # an SDP c= address is private
NAT_UAC_TEST_RPORT = 0x10       # source port differs from the Via port
NAT_UAC_TEST_O_1918 = 0x20      # source address is private
NAT_UAC_TEST_WS = 0x40          # received over WebSocket
NAT_UAC_TEST_C_PORT = 0x80      # Contact URI port differs from the source port
NAT_UAC_TEST_SDP_CLINE = 0x100  # an SDP c= address differs from the source address

# fix_nated_sdp flags
FIX_ADD_ACTIVE = 0x01
FIX_MEDIP = 0x02
FIX_ADD_NORTPPROXY = 0x04
FIX_ORGIP = 0x08



@dataclass(frozen=True)
class NhConfig:
    """The parameters the functions read (taken from mod.p by __init__.py)."""

    nat_addr_mode: int = 1
    received_avp: str | None = None
    nortpproxy_str: str = "a=nortpproxy:yes\r\n"
    append_sdp_oldmediaip: int = 1
    alias_name: str = "alias"


def _default_port(proto: str) -> int:
    return 5061 if proto.lower() in ("tls", "wss") else 5060


# ---- nat_uac_test -------------------------------------------------------------------------

def has_sdp(msg: SipMsg) -> bool:
    ct = msg.content_type
    if ct is None:
        return bool(msg.body) and msg.body.lstrip().startswith(b"v=")
    # multipart bodies are not handled (as Kamailio's nathelper without a SDP part parser)
    return ct.mime == "application/sdp" and bool(msg.body)


def is_null_addr(ip: str) -> bool:
    return ip in ("0.0.0.0", "::")


def _sdp_conn_addrs(ctx: RouteCtx) -> list[str]:
    """The addresses of every IN c= line of the current body (earlier edits applied)."""
    msg = ctx.msg
    if not has_sdp(msg):
        return []
    out = []
    for ln in split_lines(msg.current_body()):
        if ln.type == "c":
            conn = parse_connection(ln.value)
            if conn is not None and conn.nettype == "IN":
                out.append(conn.host)
    return out


def _contact_uri(ctx: RouteCtx):  # -> SipURI | None
    try:
        cl = ctx.msg.contacts
    except ParseError:
        return None
    if cl.star or not cl.contacts:
        return None
    try:
        return cl.contacts[0].parsed_uri
    except ParseError:
        return None


def nat_uac_test(ctx: RouteCtx, cfg: NhConfig, tests: int) -> int:
    """1 when one of the selected tests says the sender is behind a NAT, else -1."""
    msg, rcv = ctx.msg, ctx.rcv
    mode = cfg.nat_addr_mode
    via = None
    try:
        via = msg.via1
    except ParseError:
        via = None
    if tests & NAT_UAC_TEST_RCVD and via is not None and not na.same_ip(via.host, rcv.src_ip):
        return 1
    if tests & NAT_UAC_TEST_RPORT and via is not None:
        vport = via.port or _default_port(via.transport)
        if vport != rcv.src_port:
            return 1
    if tests & NAT_UAC_TEST_V_1918 and via is not None and na.is_private(via.host, mode):
        return 1
    if tests & (NAT_UAC_TEST_C_1918 | NAT_UAC_TEST_C_PORT):
        cu = _contact_uri(ctx)
        if cu is not None:
            if tests & NAT_UAC_TEST_C_1918 and na.is_private(cu.host or "", mode):
                return 1
            if tests & NAT_UAC_TEST_C_PORT:
                cport = cu.port or _default_port(cu.transport or "udp")
                if cport != rcv.src_port:
                    return 1
    if tests & NAT_UAC_TEST_O_1918 and na.is_private(rcv.src_ip, mode):
        return 1
    if tests & NAT_UAC_TEST_WS and rcv.proto in ("ws", "wss"):
        return 1
    if tests & (NAT_UAC_TEST_S_1918 | NAT_UAC_TEST_SDP_CLINE):
        for addr in _sdp_conn_addrs(ctx):
            if tests & NAT_UAC_TEST_S_1918 and na.is_private(addr, mode):
                return 1
            if (tests & NAT_UAC_TEST_SDP_CLINE and not is_null_addr(addr)
                    and not na.same_ip(addr, rcv.src_ip)):
                return 1
    return -1


def is_rfc1918(cfg: NhConfig, ip: str) -> int:
    return 1 if na.is_private(ip, cfg.nat_addr_mode) else -1


# ---- the first Contact -------------------------------------------------------------------

@dataclass
class ContactRef:
    """Where the first Contact URI sits in the received buffer, and its current text."""

    start: int          # offset of the element (name-addr or addr-spec) in msg.buf
    end: int
    element: str        # current element text (after earlier nathelper edits)


@dataclass(slots=True)
class NhMsg:
    """nathelper's part of one message: the first Contact as nathelper edited it."""

    contact: ContactRef | None = None

    def copy(self) -> "NhMsg":
        return NhMsg(self.contact)


NH: MsgSlot[NhMsg] = MsgSlot("nathelper", NhMsg)


def _edited_contact(ctx: RouteCtx) -> ContactRef | None:
    st = NH.peek(ctx)
    return st.contact if st is not None else None


def _first_contact(ctx: RouteCtx) -> ContactRef | None:
    ref = _edited_contact(ctx)
    if ref is not None:
        return ref
    msg = ctx.msg
    h = msg.header(HdrType.CONTACT)
    if h is None:
        return None
    buf = msg.buf
    spans = value_spans(buf, h.value_start, h.value_end, angle=True)
    if not spans:
        return None
    s, e = spans[0]
    element = buf[s:e].decode("utf-8", "surrogateescape")
    return None if element == "*" else ContactRef(s, e, element)


def _set_first_contact(ctx: RouteCtx, ref: ContactRef, element: str) -> None:
    """Record the new element text: one replacement lump over the original element, replaced
    again when a later nathelper call edits the same Contact (lumps must not overlap)."""
    msg = ctx.msg
    if _edited_contact(ctx) is not None:
        # drop our previous replacement of this range, then add the new one
        mine = ref.element.encode("utf-8", "surrogateescape")
        msg.lumps.discard([e for e in msg.lumps.ops
                           if e.pos == ref.start and e.end == ref.end and e.data == mine])
    msg.replace_range(ref.start, ref.end, element.encode("utf-8", "surrogateescape"))
    ref.element = element
    NH.of(ctx).contact = ref


def contact_uri_text(ctx: RouteCtx) -> str | None:
    """The first Contact URI as nathelper left it (for tests and set_alias_to_pv)."""
    ref = _first_contact(ctx)
    if ref is None:
        return None
    us, ue, _ = na.element_uri_span(ref.element)
    return ref.element[us:ue]


def fix_nated_contact(ctx: RouteCtx) -> int:
    """Contact URI host:port := source ip:port."""
    ref = _first_contact(ctx)
    if ref is None:
        return -1
    try:
        us, ue, _ = na.element_uri_span(ref.element)
        uri = ref.element[us:ue]
        new_uri = na.replace_hostport(uri, ctx.rcv.src_ip, ctx.rcv.src_port)
    except ValueError as exc:
        log.error("nathelper: fix_nated_contact: %s", exc)
        return -1
    if new_uri == uri:
        return 1
    _set_first_contact(ctx, ref, ref.element[:us] + new_uri + ref.element[ue:])
    return 1


def received_uri(ctx: RouteCtx) -> str:
    """sip:src_ip:src_port[;transport=proto] (Kamailio create_rcv_uri)."""
    return na.transport_uri(ctx.rcv.src_ip, ctx.rcv.src_port, ctx.rcv.proto)


def fix_nated_register(ctx: RouteCtx, cfg: NhConfig) -> int:
    """REGISTER: the source URI into received_avp, which registrar saves as `received`."""
    if not cfg.received_avp:
        log.error("nathelper: fix_nated_register needs modparam received_avp")
        return -1
    if not ctx.msg.is_request or ctx.msg.method != "REGISTER":
        return -1
    from sipcore.pv import cached_pv

    cached_pv(cfg.received_avp).set(ctx, received_uri(ctx))
    return 1


def add_rcv_param(ctx: RouteCtx, flag: int) -> int:
    """;received="<source uri>" on every Contact (flag 1: as a URI parameter instead)."""
    msg = ctx.msg
    rcv = received_uri(ctx)
    found = False
    for h in msg.header_all(HdrType.CONTACT):
        for off, end in value_spans(msg.buf, h.value_start, h.value_end, angle=True):
            elem = msg.buf[off:end].decode("utf-8", "surrogateescape")
            if elem == "*":
                continue
            found = True
            if not flag:
                msg.insert_after(end, f';received="{rcv}"'.encode())
                continue
            try:
                _, ue, angle = na.element_uri_span(elem)
            except ValueError as exc:
                log.error("nathelper: add_rcv_param: %s", exc)
                return -1
            # inside the URI ';' and '=' of the transport part must be escaped
            param = ";received=" + rcv.replace(";", "%3B").replace("=", "%3D")
            if angle:
                msg.insert_before(off + len(elem[:ue].encode("utf-8", "surrogateescape")),
                                  param.encode())
            else:
                new = "<" + elem[:ue] + param + ">" + elem[ue:]
                msg.replace_range(off, end, new.encode("utf-8", "surrogateescape"))
    return 1 if found else -1


def _uri_matches_source(uri: str, ctx: RouteCtx) -> bool:
    try:
        u = parse_uri(uri)
    except ParseError:
        return False
    rcv = ctx.rcv
    proto = (u.transport or "udp").lower()
    port = u.port or _default_port(proto)
    return na.same_ip(u.host or "", rcv.src_ip) and port == rcv.src_port and proto == rcv.proto


def add_contact_alias(ctx: RouteCtx, cfg: NhConfig, ip: str | None = None,
                      port: int | None = None, proto: str | None = None,
                      trim: bool = False) -> int:
    """;alias=ip~port~proto on the first Contact URI when it differs from the source (or from
    the given address). 1 added, 2 nothing to do, -1 error."""
    ref = _first_contact(ctx)
    if ref is None:
        return -1
    try:
        us, ue, angle = na.element_uri_span(ref.element)
    except ValueError as exc:
        log.error("nathelper: contact alias: %s", exc)
        return -1
    uri = ref.element[us:ue]
    if trim:
        uri, _ = na.remove_uri_param(uri, cfg.alias_name)
    if ip is None:
        if _uri_matches_source(uri, ctx):
            return 2
        ip, port, proto = ctx.rcv.src_ip, ctx.rcv.src_port, ctx.rcv.proto
    assert port is not None and proto is not None
    if na.parse_ip(ip) is None or not 0 < port < 65536 or proto.lower() not in na.PROTO_NUM:
        log.error("nathelper: bad alias address %s:%s/%s", ip, port, proto)
        return -1
    _, pend = na.uri_params_span(uri)
    new_uri = f"{uri[:pend]};{cfg.alias_name}={na.encode_alias(ip.strip('[]'), port, proto)}" \
              f"{uri[pend:]}"
    if angle:
        elem = ref.element[:us] + new_uri + ref.element[ue:]
    else:
        elem = "<" + new_uri + ">" + ref.element[ue:]
    _set_first_contact(ctx, ref, elem)
    return 1


def handle_ruri_alias(ctx: RouteCtx, cfg: NhConfig, mode: int) -> int:
    """R-URI ;alias=ip~port~proto -> $du, param removed. 1 done, 2 no alias, -1 error."""
    msg = ctx.msg
    if not msg.is_request:
        return -1
    ruri = msg.ruri
    new_ruri, values = na.remove_uri_param(ruri, cfg.alias_name,
                                           "first" if mode == 0 else "all")
    if not values:
        return 2
    try:
        ip, port, proto = na.decode_alias(values[0] if mode == 0 else values[-1])
    except ValueError as exc:
        log.error("nathelper: handle_ruri_alias: %s", exc)
        return -1
    ctx.dst_uri = na.transport_uri(ip, port, proto)
    msg.set_ruri(new_ruri)
    return 1


def alias_to_uri(ctx: RouteCtx, cfg: NhConfig) -> str | None:
    """set_alias_to_pv(): the first Contact URI with host:port (and transport) from its alias
    param, the param removed; None when there is no alias."""
    uri = contact_uri_text(ctx)
    if uri is None:
        return None
    stripped, values = na.remove_uri_param(uri, cfg.alias_name, "first")
    if not values:
        return None
    ip, port, proto = na.decode_alias(values[0])
    out = na.replace_hostport(stripped, ip, port)
    out, _ = na.remove_uri_param(out, "transport")
    if proto != "udp":
        _, e = na.uri_params_span(out)
        out = out[:e] + f";transport={proto}" + out[e:]
    return out


# ---- fix_nated_sdp -----------------------------------------------------------------------

def fix_nated_sdp(ctx: RouteCtx, cfg: NhConfig, flags: int, ip: str | None) -> int:
    """Rewrite the SDP for a NATed endpoint. 1 something changed, 2 nothing to change,
    -1 no SDP / error. Works on the current body (earlier byte edits applied) by line span and
    sets the result as the new body."""
    msg = ctx.msg
    if not has_sdp(msg):
        return -1
    target = ip or ctx.rcv.src_ip
    if na.parse_ip(target) is None:
        log.error("nathelper: fix_nated_sdp: bad address %r", target)
        return -1
    body = msg.current_body()
    lines = split_lines(body)
    eol = next((ln.eol for ln in lines if ln.eol), "\r\n")
    fam = "IP6" if ":" in target else "IP4"
    edits = LumpList()
    texts = [ln.text for ln in lines]     # the lines there will be (any order): marker test
    first_m = next((ln for ln in lines if ln.type == "m"), None)
    last_has_eol = not lines or bool(lines[-1].eol)

    def rewrite(ln: SdpLine, text: str, extra: str = "") -> None:
        """LN becomes TEXT (keeping its line ending, or getting one) followed by EXTRA."""
        nonlocal last_has_eol
        edits.replace(ln.start, ln.end, (text + (ln.eol or eol) + extra).encode(
            "utf-8", "surrogateescape"))
        texts.remove(ln.text)
        texts.append(text)
        if ln is lines[-1]:
            last_has_eol = True

    def add(pos: int, text: str) -> None:
        nonlocal last_has_eol
        edits.insert_before(pos, (text + eol).encode("utf-8", "surrogateescape"))
        texts.append(text)
        if pos == len(body):
            last_has_eol = True

    if flags & FIX_ADD_ACTIVE and first_m is not None:
        add(first_m.start, "a=direction:active")
    for ln in lines:
        if ln.type == "c" and flags & FIX_MEDIP:
            conn = parse_connection(ln.value)
            if (conn is not None and conn.nettype == "IN" and not is_null_addr(conn.host)
                    and conn.host != target):
                new = f"c=IN {fam} {target}{conn.address[len(conn.host):]}"
                old = f"a=oldmediaip:{conn.host}" if cfg.append_sdp_oldmediaip else ""
                rewrite(ln, new, old + eol if old else "")
                if old:
                    texts.append(old)
                continue
        if ln.type == "a" and flags & FIX_MEDIP and ln.text.startswith("a=rtcp:"):
            parts = ln.text.split()
            if len(parts) == 4 and parts[1] == "IN" and not is_null_addr(parts[3]) \
                    and parts[3] != target:
                rewrite(ln, " ".join([parts[0], parts[1], fam, target]))
                continue
        if ln.type == "o" and flags & FIX_ORGIP:
            origin = parse_origin(ln.value)
            if origin is not None and origin.nettype == "IN" and origin.address != target:
                parts = ln.value.split()
                parts[4], parts[5] = fam, target
                rewrite(ln, "o=" + " ".join(parts))
                continue
    if flags & FIX_ADD_ACTIVE and first_m is None:
        # (after a last line without a line ending, as it always was)
        add(len(body), "a=direction:active")
    if flags & FIX_ADD_NORTPPROXY:
        marker = cfg.nortpproxy_str.rstrip("\r\n")
        if marker and marker not in texts:
            if not last_has_eol:
                edits.insert_before(len(body), eol.encode())
            add(first_m.start if first_m is not None else len(body), marker)
    if not edits:
        return 2
    msg.set_body(apply_ops(body, edits.ops, 0, len(body)))
    return 1


def has_nortpproxy(msg: SipMsg, marker: str) -> bool:
    m = marker.rstrip("\r\n")
    return bool(m) and any(ln.text == m for ln in split_lines(msg.current_body()))
