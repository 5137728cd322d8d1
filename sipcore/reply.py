"""Stateless local replies (what sl_send_reply and the core's 400s send), and where a reply to
a received request goes.

Runs in: SIP workers. Builds the reply from the request with sipcore.msg.builder, adds the
headers queued by append_to_reply(), the Server header (server_signature/server_header) and
sends it where RFC 3261 18.2.2 / RFC 3581 say (reply_dest).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional

from sipcore import stats
from sipcore.msg.builder import build_reply, gen_to_tag
from sipcore.net.addr import RELIABLE_PROTOS, Dest, RecvInfo, default_port
from sipcore.route.ctx import RouteCtx

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg import SipMsg

DEFAULT_SERVER_HEADER = "Server: pykam (0.1.0 (python))"


def reply_dest(msg: "SipMsg", rcv: RecvInfo, force_rport: bool = False) -> Dest:
    """Destination of a reply to request MSG received as RCV.

    Reliable transports answer on the same connection (RFC 3261 18.2.2). Over UDP the reply
    goes to the source IP (the `received` address of RFC 3261 18.2.2: a Via whose sent-by
    equals the source IP has no received= and the two are the same), and to the source port
    when the top Via carries `;rport` (RFC 3581 section 4) or `force_rport()` was called, else
    to the sent-by port (default 5060, 5061 for TLS). Like Kamailio with reply_to_via=0, a
    `maddr` in the top Via is not honoured for replies to received requests.
    """
    proto = rcv.proto
    if proto in RELIABLE_PROTOS:
        return Dest(proto, rcv.src_ip, rcv.src_port, rcv.sock, rcv.conn_id)
    via = msg.via1
    if via is None:
        port = rcv.src_port
    elif force_rport or via.rport is not None:
        port = rcv.src_port
    else:
        port = via.port or default_port(proto)
    return Dest(proto, rcv.src_ip, port, rcv.sock, rcv.conn_id)


def server_header(ctx: RouteCtx) -> Optional[str]:
    g = ctx.core.globals
    if not g.get("server_signature", 1):
        return None
    return g.get("server_header") or DEFAULT_SERVER_HEADER


def send_stateless_reply(ctx: RouteCtx, code: int, reason: str, *,
                         extra_headers: Iterable[str] = (), body: bytes = b"",
                         content_type: Optional[str] = None) -> bool:
    """Build and send a reply to ctx.msg; False when it cannot be sent (or MSG is an ACK)."""
    msg = ctx.msg
    if not msg.is_request or msg.method == "ACK":
        return False
    to_tag = None
    if code > 100 and not msg.to_tag:
        to_tag = gen_to_tag(msg)
    headers = list(extra_headers) + list(ctx.reply_lumps)
    if ctx.core.globals.get("sip_warning"):
        headers.append(warning_header(ctx))
    rcv = ctx.rcv
    via = msg.via1
    received = rcv.src_ip if via is not None and _needs_received(via.host, rcv.src_ip) else None
    rport = rcv.src_port if via is not None and (via.rport is not None or ctx.force_rport) \
        else None
    buf = build_reply(msg, code, reason, to_tag=to_tag, extra_headers=headers, body=body,
                      content_type=content_type, server_header=server_header(ctx),
                      via_received=received, via_rport=rport)
    dest = reply_dest(msg, rcv, ctx.force_rport)
    dest.no_connect = ctx.reply_no_connect      # set_reply_no_connect(): TCP/TLS only
    dest.close_after = ctx.reply_close      # set_reply_close()
    ok = ctx.core.send(dest, buf)
    if ok:
        ctx.replied = True
        stats.inc("core:fwd_replies")
    else:
        stats.inc("core:err_replies")
    return ok


def warning_header(ctx: RouteCtx) -> str:
    """`sip_warning=1`: Kamailio's debugging Warning header on local replies."""
    import os

    rcv = ctx.rcv
    host = f"[{rcv.dst_ip}]" if ":" in rcv.dst_ip else rcv.dst_ip
    msg = ctx.msg
    return (f'Warning: 392 {host}:{rcv.dst_port} "Noisy feedback tells: pid={os.getpid()} '
            f'req_src_ip={rcv.src_ip} req_src_port={rcv.src_port} in_uri={msg.orig_ruri} '
            f'out_uri={msg.ruri} via_cnt=={len(msg.vias)}"')


def _needs_received(via_host: str, src_ip: str) -> bool:
    """RFC 3261 18.2.1: add received= when the sent-by host differs from the source IP."""
    h = via_host[1:-1] if via_host.startswith("[") else via_host
    return h.lower() != src_ip.lower()
