"""The bottom of tm: what a locked update leaves to do (`Out`), carrying it out, sending, and
the requests tm builds itself (CANCEL, the ACK of a non-2xx reply).

Runs in: SIP workers and the timer process. No shared state of its own: `flush` schedules
timer jobs (sipcore.timer, through a ring in shm) and sends through the node.

Every cell update is a locked read-modify-write (TmTable.update) whose callback only computes
and fills an Out; sends, timer requests and the final-reply callbacks happen in flush(), after
the lock is released (STYLE rule 4).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from sipcore import stats, timer
from sipcore.msg import HdrType, parse_msg
from sipcore.msg.spans import via1_value_span
from sipcore.net.addr import Dest

from .config import CFG
from .h_table import Cell
from .jobs import Request
from .state import STATE

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg import SipMsg

log = logging.getLogger(__name__)

REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 408: "Request Timeout",
           487: "Request Terminated", 500: "Server Internal Error",
           503: "Service Unavailable"}


class Out:
    """What to do once the cell lock is released (a plain slotted class: one per message)."""

    __slots__ = ("sends", "timers", "failure", "absorb", "ok", "finals")

    def __init__(self) -> None:
        self.sends: list[tuple[Dest, bytes]] = []
        self.timers: list[Request] = []
        self.failure: Optional[tuple[str, int, str, int]] = None  # route, code, reason, branch
        self.absorb = False
        self.ok = True
        self.finals: list[tuple[Cell, int, bytes]] = []     # final replies sent


def flush(core: Any, out: Out) -> None:
    """Carry out what a locked update collected: timer requests, then sends (a send may hand
    the CPU to the receiving process), then the final-reply callbacks."""
    if out.timers:
        timer.schedule_many(out.timers)
    for dest, buf in out.sends:
        send(core, dest, buf)
    for cell, code, buf in out.finals:
        for cb in STATE.final_callbacks:
            try:
                cb(cell, code, buf, core)
            except Exception as exc:  # noqa: BLE001 - a module callback must not break tm
                log.error("tm: final reply callback %s: %s: %s", cb.__qualname__,
                          type(exc).__name__, exc)


def send(core: Any, dest: Dest, buf: bytes) -> bool:
    ok = core.send(dest, buf)
    if not ok:
        log.error("tm: send to %s:%s:%s failed", dest.proto, dest.ip, dest.port)
    return ok


def dest(core: Any, proto: str, ip: str, port: int, sock: str, conn_id: int = 0) -> Dest:
    """Where a stored address goes out: its socket ("proto:ip:port" as cells keep it), else
    the one the node picks for the destination."""
    return Dest(proto, ip, port, core.socket_by_text(sock) or core.choose_socket(proto, ip),
                conn_id)


def branch_dest(core: Any, cell: Cell, idx: int) -> Dest:
    br = cell.branches[idx]
    return dest(core, br.proto, br.ip, br.port, br.sock, br.conn_id)


def uas_dest(core: Any, cell: Cell) -> Dest:
    """Upstream: where the transaction's replies go."""
    return dest(core, cell.uas_proto, cell.uas_ip, cell.uas_port, cell.uas_sock)


def stat_send(core: Any, d: Dest, buf: bytes) -> bool:
    """A request branch going out, counted as Kamailio's core counts forwarded requests."""
    if send(core, d, buf):
        stats.inc("core:fwd_requests")
        return True
    stats.inc("core:err_requests")
    return False


# ---- requests tm builds itself -----------------------------------------------------------

def header_lines(m: "SipMsg", name: str) -> list[str]:
    return [m.buf[h.start:h.end].decode("utf-8", "surrogateescape").rstrip("\r\n")
            for h in m.header_all(name)]


def _via1_line(m: "SipMsg") -> str:
    span = via1_value_span(m)
    if span is None:
        raise ValueError("the request has no Via")
    _h, s, e = span
    return "Via: " + m.buf[s:e].decode("utf-8", "surrogateescape")


def build_local_request(sent: bytes, method: str, to_line: Optional[str] = None,
                        reason: str = "") -> bytes:
    """CANCEL (RFC 3261 9.1) or ACK for a non-2xx reply (17.1.1.3) of the request SENT:
    same R-URI, our top Via only, Route set, From, Call-ID, CSeq number; To from the reply
    for ACK. Headers of unknown type whose name starts with ac_extra_hdrs are copied."""
    m = parse_msg(sent)
    lines = [f"{method} {m.ruri} SIP/2.0", _via1_line(m)]
    lines += header_lines(m, "Route")
    lines += header_lines(m, "From")
    lines.append(to_line if to_line else header_lines(m, "To")[0])
    lines += header_lines(m, "Call-ID")
    lines.append(f"CSeq: {m.cseq.num} {method}")
    if CFG.ac_extra_hdrs:
        prefix = CFG.ac_extra_hdrs.lower()
        lines += [m.buf[h.start:h.end].decode("utf-8", "surrogateescape").rstrip("\r\n")
                  for h in m.headers
                  if not int(h.type) and h.name.lower().startswith(prefix)]   # unknown types
    lines.append("Max-Forwards: 70")
    if reason:
        lines.append(reason)
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def build_cancel(sent: bytes, reason: str = "") -> bytes:
    return build_local_request(sent, "CANCEL", reason=reason)


def build_ack(sent: bytes, reply: "SipMsg") -> bytes:
    """The hop-by-hop ACK of the non-2xx final REPLY to the request SENT."""
    h = reply.header(HdrType.TO)
    to_line = reply.buf[h.start:h.end].decode("utf-8", "surrogateescape").rstrip("\r\n") \
        if h is not None else None
    return build_local_request(sent, "ACK", to_line=to_line)
