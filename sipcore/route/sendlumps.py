"""Send-time header lines: edits whose text depends on the socket a request leaves by.

Runs in: SIP workers. Per-message state on the RouteCtx only (`send_lumps`).

Kamailio's record_route() inserts lumps whose content is substituted when the outgoing
socket is known (SUBST_SND_ALL / SUBST_RCV_ALL) or which only appear when the receiving and
sending sockets differ (COND_IF_DIFF_REALMS, double Record-Route). Here a module registers a
SendLump; whoever builds the outgoing request (sipcore.forward, tm per branch) calls
`render(ctx, sock)` and inserts the returned header lines at the top of the headers, above
the Via it adds (where Kamailio's Record-Route lumps end up). The message's own edit list is
not changed, so a request built for several destinations gets each its own lines.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.net.addr import SocketInfo
    from sipcore.route.ctx import RouteCtx

class SendLump(Protocol):
    """`kind` names the owner (e.g. "rr"); `lines` gives complete header lines (no CRLF)."""

    kind: str

    def lines(self, ctx: "RouteCtx", sock: "SocketInfo") -> list[str]: ...


def add(ctx: "RouteCtx", lump: SendLump) -> None:
    if ctx.send_lumps is None:
        ctx.send_lumps = []
    ctx.send_lumps.append(lump)


def all_of(ctx: "RouteCtx", kind: str | None = None) -> list[SendLump]:
    return [x for x in ctx.send_lumps or () if kind is None or x.kind == kind]


def remove(ctx: "RouteCtx", kind: str) -> int:
    """Drop every lump of KIND; returns how many were removed."""
    lumps = ctx.send_lumps or []
    keep = [x for x in lumps if x.kind != kind]
    ctx.send_lumps = keep
    return len(lumps) - len(keep)


def render(ctx: "RouteCtx", sock: "SocketInfo") -> list[str]:
    """Header lines for a request leaving by SOCK, in insertion order."""
    lumps = ctx.send_lumps
    if not lumps:
        return []
    out: list[str] = []
    for lump in lumps:
        out.extend(lump.lines(ctx, sock))
    return out
