"""Requests generated inside a tracked dialog: the BYEs of `dlg_bye()`, `dlg.end_dlg` and of a
timeout with `send_bye`, built from the leg data stored when the dialog was confirmed.

Runs in: SIP workers (dlg_bye), the timer process (timeouts), the ctl process (dlg.end_dlg).
Shared state: none here; the requests go out as tm UAC transactions (tm's API), so tm
retransmits them and absorbs their replies.
Kamailio equivalent: modules/dialog/dlg_req_within.c (build_dlg_t, send_bye) and the leg
data of dlg_handlers.c (populate_leg_info).

Leg data (see `Dialog`): towards the callee the remote target is the 2xx's Contact and the
route set the 2xx's Record-Route reversed, without the entries of the proxies before us and
our own; towards the caller the remote target is the INVITE's Contact and the route set the
INVITE's Record-Route as received (only the proxies between the caller and us). A BYE to one
side takes the other side's identity: From is that side's URI and tag, CSeq is the other
side's last CSeq number plus one (RFC 3261 12.2.1.1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from sipcore.errors import ParseError
from sipcore.msg.nameaddr import NameAddr, parse_nameaddr_list

from .dlg_hash import Dialog

CALLER, CALLEE = 0, 1
SIDES = {"caller": (CALLER,), "callee": (CALLEE,), "all": (CALLER, CALLEE)}


@dataclass(frozen=True)
class LocalRequest:
    """What tm needs to send one in-dialog request."""

    method: str
    ruri: str
    nexthop: str        # "" = resolve the R-URI
    socket: str         # our socket for that side ("udp:ip:port"), "" = tm chooses
    headers: str        # header lines, "\r\n"-separated (no Via, no Content-Length)


def route_set_text(entries: list[NameAddr]) -> str:
    return ",".join(f"<{e.uri}>" for e in entries)


def caller_route_set(invite_rr: list[NameAddr]) -> str:
    """Route set towards the caller: the INVITE's Record-Route as received, in order."""
    return route_set_text(invite_rr)


def callee_route_set(reply_rr: list[NameAddr], n_upstream: int, is_myself: Any) -> str:
    """Route set towards the callee: the 2xx's Record-Route reversed, minus the N_UPSTREAM
    entries the INVITE already had (proxies before us) and our own one or two entries."""
    rev = list(reversed(reply_rr))[n_upstream:]
    for _ in range(2):
        if rev and _ours(rev[0], is_myself):
            rev.pop(0)
    return route_set_text(rev)


def _ours(na: NameAddr, is_myself: Any) -> bool:
    try:
        u = na.parsed_uri
    except (ParseError, ValueError):
        return False
    return bool(is_myself(u.host, u.port))


def build_bye(d: Dialog, side: int, extra_hdrs: str = "") -> Optional[LocalRequest]:
    """The BYE towards SIDE (CALLER or CALLEE) of dialog D; None when the dialog has no
    remote target for that side (it was never confirmed)."""
    if side == CALLEE:
        target, rs, sock = d.callee_contact, d.callee_route_set, d.callee_sock
        frm, to = (d.from_uri, d.from_tag), (d.to_uri, d.to_tag)
        cseq = d.caller_cseq + 1
    else:
        target, rs, sock = d.caller_contact, d.caller_route_set, d.caller_sock
        frm, to = (d.to_uri, d.to_tag), (d.from_uri, d.from_tag)
        cseq = d.callee_cseq + 1
    if not target:
        return None
    try:
        entries = parse_nameaddr_list(rs) if rs else []
        strict = bool(entries) and entries[0].parsed_uri.param("lr") is None
    except (ParseError, ValueError):
        return None
    routes = [e.uri for e in entries]
    ruri, nexthop = target, ""
    if routes and strict:               # RFC 3261 12.2.1.1: strict router in front
        ruri, routes = routes[0], routes[1:] + [target]
    elif routes:
        nexthop = routes[0]
    lines = [f"Route: <{r}>" for r in routes]
    lines += [f"From: <{frm[0]}>;tag={frm[1]}", f"To: <{to[0]}>;tag={to[1]}",
              f"Call-ID: {d.callid}", f"CSeq: {cseq} BYE", "Max-Forwards: 70"]
    lines += [h.strip() for h in extra_hdrs.replace("\r\n", "\n").split("\n") if h.strip()]
    return LocalRequest("BYE", ruri, nexthop, sock, "\r\n".join(lines))


def send_bye(tm: Any, d: Dialog, sides: tuple[int, ...], extra_hdrs: str = "") -> int:
    """Send the BYE of D to each of SIDES through tm's API; the number sent."""
    sent = 0
    for side in sides:
        req = build_bye(d, side, extra_hdrs)
        if req is None:
            continue
        tid = tm.t_request(req.method, req.ruri, req.headers, nexthop=req.nexthop,
                           socket=req.socket)
        if tid is not None:
            sent += 1
    return sent
