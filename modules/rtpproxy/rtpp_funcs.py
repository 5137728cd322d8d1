"""rtpproxy offer/answer/delete/record over the control protocol, and SDP rewriting.

Runs in: SIP workers (script functions) and the timer process (expiring the offer marks).
Shared state: the node table (rtpp_nodes.py) and the shm table "rtpproxy:offers"
(Call-ID + CSeq of requests whose SDP was offered, so a reply in any worker knows whether its
SDP is the answer or a late offer).
Kamailio equivalent: modules/rtpproxy/rtpproxy.c (force_rtp_proxy, unforce_rtp_proxy,
rtpproxy_manage, start_recording).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from sipcore.errors import ParseError
from sipcore.mod import RouteType
from sipcore.msg.lumps import LumpList, apply_ops
from sipcore.msg.sdp import SdpLine, SdpSession, SdpStream, parse_connection, parse_sdp
from sipcore.route.ctx import MsgSlot, RouteCtx
from sipcore.shm import ShmHashTable

from . import rtpp_sdp
from .rtpp_nodes import Node, NodeTable
from .rtpp_proto import (
    SUPPORTED_VERSION,
    RtppClient,
    RtppError,
    check_ok,
    cmd_delete,
    cmd_record,
    cmd_update,
    parse_media_reply,
)

log = logging.getLogger(__name__)



@dataclass(slots=True)
class RtppMsg:
    """rtpproxy's part of one message: the set set_rtp_proxy_set() chose."""

    set_id: Optional[int] = None

    def copy(self) -> "RtppMsg":
        return RtppMsg(self.set_id)


RTPP: MsgSlot[RtppMsg] = MsgSlot("rtpproxy", RtppMsg)
OFFER_TTL_S = 180


class FlagError(ValueError):
    pass


@dataclass(frozen=True)
class Flags:
    """Kamailio rtpproxy_offer/answer flags."""

    asymmetric: bool = False        # a: UA does not do symmetric RTP (implies r)
    lookup: bool = False            # l: only update an existing session (L command)
    trust: bool = False             # r: trust the SDP address (else the source address)
    origin: bool = False            # o: rewrite o= too
    session_c: bool = False         # c: rewrite the session c= even if every m= has its own
    force: bool = False             # f: ignore the nortpproxy mark of another proxy
    direction: str = ""             # "I", "E", "IE", "EI" (i/e flags)
    weak: bool = False              # w: force symmetric RTP for this side
    repacketize: str = ""           # zNN: ptime for re-packetization
    via: int = 0                    # 1/2/3: ";<Via branch>" after the Call-ID (per-branch
                                    # sessions): 1 top Via, 2 second Via, 3 top for requests
                                    # and second for replies

    def modifiers(self) -> str:
        m = ""
        if self.asymmetric:
            m += "A"
        if self.weak:
            m += "W"
        m += self.direction
        if self.repacketize:
            m += "Z" + self.repacketize
        return m


def parse_flags(text: str) -> Flags:
    kw: dict[str, object] = {}
    direction = ""
    i = 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "a":
            kw["asymmetric"] = True
            kw["trust"] = True
        elif ch == "A":
            kw["asymmetric"] = True
        elif ch in "lL":
            kw["lookup"] = True
        elif ch in "rR":
            kw["trust"] = True
        elif ch in "oO":
            kw["origin"] = True
        elif ch in "cC":
            kw["session_c"] = True
        elif ch in "fF":
            kw["force"] = True
        elif ch in "iIeE":
            if len(direction) >= 2:
                raise FlagError("more than two direction flags (i/e)")
            direction += ch.upper()
        elif ch in "wW":
            kw["weak"] = True
        elif ch in "zZ":
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            if j == i:
                raise FlagError("flag z needs a number (zNN)")
            kw["repacketize"] = text[i:j]
            i = j
        elif ch in "123":
            kw["via"] = int(ch)
        elif ch in " \t":
            continue
        else:
            raise FlagError(f"unsupported rtpproxy flag {ch!r}")
    return Flags(direction=direction, **kw)  # type: ignore[arg-type]


def _has_sdp(ctx: RouteCtx) -> bool:
    msg = ctx.msg
    ct = msg.content_type
    return bool(msg.body) and ct is not None and ct.mime == "application/sdp"


def _stream_addr(session: SdpSession, st: SdpStream) -> str | None:
    """The address of the stream's c= line (IN), or of the session's when it has none."""
    line = st.c_line if st.c_line is not None else session.c_line
    conn = parse_connection(line.value) if line is not None else None
    return conn.host if conn is not None and conn.nettype == "IN" else None


def session_callid(ctx: RouteCtx, via: int) -> str:
    """The Call-ID as rtpproxy keys the session: with flag 1/2/3 the Via branch appended."""
    msg = ctx.msg
    if via == 0:
        return msg.callid
    if via == 3:
        via = 1 if msg.is_request else 2
    v = msg.via1 if via == 1 else msg.via2
    if v is None or not v.branch:
        raise ParseError(f"no branch in Via {via} for rtpproxy flag {via}", -1)
    return f"{msg.callid};{v.branch}"


def _tags(ctx: RouteCtx) -> tuple[str, str]:
    msg = ctx.msg
    return msg.from_tag or "", msg.to_tag or ""


class Engine:
    """The module's working state in one process (built in mod_init, inherited by fork)."""

    def __init__(self, nodes: NodeTable, client: RtppClient, nortpproxy_str: str,
                 offers: ShmHashTable | None) -> None:
        self.nodes = nodes
        self.client = client
        self.nortpproxy = nortpproxy_str.rstrip("\r\n")
        self.offers = offers

    # ---- talking to a node --------------------------------------------------------------
    def ping(self, node: Node) -> bool:
        reply = self.client.send(node, "V")
        return reply is not None and reply.strip() == SUPPORTED_VERSION

    def _recheck(self, set_id: int) -> None:
        for n in self.nodes.in_set(set_id):
            if self.nodes.due_for_recheck(n):
                if self.ping(n):
                    self.nodes.enable(n)
                else:
                    self.nodes.disable(n)        # next recheck after disable_tout

    def send(self, ctx: RouteCtx, command: str) -> str | None:
        """Send COMMAND to the node for this call; a node that does not answer is disabled
        and the next one of the set tried. None when no node answered."""
        st = RTPP.peek(ctx)
        set_id = st.set_id if st is not None else None
        if set_id is None:
            set_id = self.nodes.default_set()
        if set_id is None:
            log.error("rtpproxy: no rtpproxy_sock configured")
            return None
        self._recheck(set_id)
        tried: set[str] = set()
        callid = ctx.msg.callid
        while True:
            node = self.nodes.select(set_id, callid, frozenset(tried))
            if node is None:
                log.error("rtpproxy: no available node in set %s", set_id)
                return None
            reply = self.client.send(node, command)
            if reply is not None:
                return reply
            log.warning("rtpproxy: %s does not answer, disabled", node.url)
            self.nodes.disable(node)
            tried.add(node.url)

    # ---- offer / answer -------------------------------------------------------------------
    def force(self, ctx: RouteCtx, flags: Flags, offer: bool, new_ip: str | None) -> int:
        """Offer (U) or answer (L) every media stream of the message's SDP and rewrite it."""
        msg = ctx.msg
        if not _has_sdp(ctx):
            return -1
        try:
            callid = session_callid(ctx, flags.via)
            from_tag, to_tag = _tags(ctx)
        except ParseError as exc:
            log.error("rtpproxy: %s", exc)
            return -1
        if not msg.callid or not from_tag:
            log.error("rtpproxy: Call-ID and From tag are required")
            return -1
        lookup = flags.lookup or not offer
        if lookup and not to_tag:
            log.error("rtpproxy: answer without To tag")
            return -1
        body = msg.body
        session = parse_sdp(body, strict=False).sessions[0]
        ports: list[int] = []
        for st in session.streams:
            try:
                ports.append(int(st.port.split("/", 1)[0]))
            except ValueError:
                log.error("rtpproxy: bad SDP media line %r", st.m_line.text)
                return -1
        lines = session.all_lines
        if self.nortpproxy and self._has_line(lines) and not flags.force:
            log.debug("rtpproxy: SDP already handled by another proxy")
            return -1
        if not session.streams:
            return -1
        edits = LumpList()

        def set_text(ln: SdpLine, text: str) -> None:      # the line's ending stays
            edits.replace(ln.start, ln.text_end, text.encode("utf-8", "surrogateescape"))

        session_c_needed = False
        last_ip: str | None = None
        medianum = 0
        for st, port in zip(session.streams, ports):
            medianum += 1
            if port == 0:
                continue                        # disabled stream (RFC 3264 6)
            old_ip = _stream_addr(session, st)
            if old_ip is None:
                log.error("rtpproxy: media stream without connection address")
                return -1
            cmd_ip = old_ip if (flags.trust or rtpp_sdp.is_null(old_ip)) else ctx.rcv.src_ip
            cmd = cmd_update(lookup, flags.modifiers(), callid, cmd_ip, port, from_tag,
                             to_tag, medianum)
            reply = self.send(ctx, cmd)
            if reply is None:
                return -1
            try:
                mr = parse_media_reply(reply)
            except RtppError as exc:
                log.error("rtpproxy: %s: %s", cmd.split(' ', 1)[0], exc)
                return -1
            if rtpp_sdp.is_null(old_ip):
                ip = old_ip                     # on hold stays on hold
            else:
                ip = new_ip or mr.addr or self._local_addr(ctx)
            set_text(st.m_line, rtpp_sdp.with_media_port(st.m_line.text, mr.port))
            if st.c_line is not None:
                set_text(st.c_line, rtpp_sdp.with_conn(st.c_line.text, ip))
            else:
                session_c_needed = True
            if st.rtcp_line is not None:
                set_text(st.rtcp_line, rtpp_sdp.with_rtcp(st.rtcp_line.text, mr.port + 1, ip))
            last_ip = ip
        if last_ip is None:
            return -1                           # every stream disabled: nothing to relay
        if session.c_line is not None and (session_c_needed or flags.session_c):
            set_text(session.c_line, rtpp_sdp.with_conn(session.c_line.text, last_ip))
        if flags.origin and session.o_line is not None:
            set_text(session.o_line, rtpp_sdp.with_origin(session.o_line.text, last_ip))
        if self.nortpproxy and not self._has_line(lines):
            eol = next((ln.eol for ln in lines if ln.eol), "\r\n")
            edits.insert_before(session.streams[0].m_line.start,
                                (self.nortpproxy + eol).encode("utf-8", "surrogateescape"))
        msg.set_body(apply_ops(body, edits.ops, 0, len(body)))
        return 1

    def _has_line(self, lines: list[SdpLine]) -> bool:
        return any(ln.text == self.nortpproxy for ln in lines)

    def _local_addr(self, ctx: RouteCtx) -> str:
        sock = ctx.rcv.sock
        if sock is not None and getattr(sock, "advertise_host", None):
            return str(sock.advertise_host)
        return ctx.rcv.dst_ip

    # ---- delete / record ---------------------------------------------------------------------
    def destroy(self, ctx: RouteCtx, via: int = 0) -> int:
        try:
            callid = session_callid(ctx, via)
            from_tag, to_tag = _tags(ctx)
        except ParseError as exc:
            log.error("rtpproxy: %s", exc)
            return -1
        if not ctx.msg.callid or not from_tag:
            return -1
        reply = self.send(ctx, cmd_delete(callid, from_tag, to_tag))
        if reply is None:
            return -1
        try:
            check_ok(reply)
        except RtppError as exc:
            log.debug("rtpproxy: D: %s", exc)     # E8: session already gone
            return -1
        return 1

    def record(self, ctx: RouteCtx) -> int:
        try:
            callid = ctx.msg.callid
            from_tag, to_tag = _tags(ctx)
        except ParseError:
            return -1
        reply = self.send(ctx, cmd_record(callid, from_tag, to_tag))
        if reply is None:
            return -1
        try:
            check_ok(reply)
        except RtppError as exc:
            log.error("rtpproxy: R: %s", exc)
            return -1
        return 1

    # ---- rtpproxy_manage ------------------------------------------------------------------
    def _offer_key(self, ctx: RouteCtx) -> bytes:
        msg = ctx.msg
        return f"{msg.callid}\x00{msg.cseq.num}".encode("utf-8", "surrogateescape")

    def manage(self, ctx: RouteCtx, flags: Flags, new_ip: str | None) -> int:
        """Offer, answer or delete depending on the message (Kamailio rtpproxy_manage)."""
        msg = ctx.msg
        if ctx.route_type & RouteType.FAILURE:
            return self.destroy(ctx, flags.via)
        try:
            method = msg.method if msg.is_request else msg.cseq.method
        except ParseError:
            return -1
        if msg.is_request:
            if method in ("BYE", "CANCEL"):
                return self.destroy(ctx, flags.via)
            if not _has_sdp(ctx):
                return -1
            if method == "ACK":
                return self.force(ctx, flags, False, new_ip)
            if method in ("INVITE", "UPDATE", "PRACK"):
                rc = self.force(ctx, flags, True, new_ip)
                if rc > 0 and self.offers is not None:
                    self.offers.set(self._offer_key(ctx), b"1", ttl=OFFER_TTL_S)
                return rc
            return -1
        if method == "INVITE" and msg.status >= 300:
            return self.destroy(ctx, flags.via)
        if not _has_sdp(ctx):
            return -1
        if method not in ("INVITE", "UPDATE", "PRACK"):
            return -1
        offered = self.offers is not None and self.offers.get(self._offer_key(ctx)) is not None
        # the request carried the offer: this SDP is the answer; else a late offer
        return self.force(ctx, flags, not offered, new_ip)

    def expire_offers(self) -> None:
        if self.offers is not None:
            self.offers.expire()
