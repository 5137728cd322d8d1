"""rtpproxy: media relaying through rtpproxy instances (SDP offer/answer rewriting).

Runs in: SIP workers (functions talk to rtpproxy over UDP and rewrite the SDP), the ctl
process (rtpproxy.list / rtpproxy.enable), the timer process (expiring offer marks), the
master (mod_init: parses rtpproxy_sock, creates the shm tables; no sockets before fork).
Shared state: shm tables "rtpproxy:nodes" (node enable state) and "rtpproxy:offers".

Kamailio equivalent: modules/rtpproxy. Only UDP control sockets (udp:, udp6:) are supported.
"""
from __future__ import annotations

import logging
from typing import Any

from sipcore.errors import ModuleError, RpcFault
from sipcore.mod import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    Fx,
    ModContext,
    Module,
)
from sipcore.route.ctx import RouteCtx
from sipcore.shm import ShmHashTable

from . import rtpp_funcs as rf
from .rtpp_nodes import NodeTable, parse_sock_param
from .rtpp_proto import RtppClient

log = logging.getLogger(__name__)

mod = Module("rtpproxy", summary="Media relay control through rtpproxy (SDP rewriting).")

RFOB = REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE | BRANCH_ROUTE


def _check_sock(value: Any) -> str:
    parse_sock_param(str(value))        # ValueError with the reason -> config error
    return str(value)


mod.param("rtpproxy_sock", str, None, multi=True, validator=_check_sock,
          doc="Control socket(s): \"[set ==] udp:host:port[=weight] ...\"; repeatable.")
mod.param("rtpproxy_disable_tout", int, 60,
          doc="Seconds a node that did not answer stays disabled before it is re-tested.")
mod.param("rtpproxy_tout", int, 1000, doc="Milliseconds to wait for a reply, per try.")
mod.param("rtpproxy_retr", int, 5, doc="Tries per command before the node is disabled.")
mod.param("nortpproxy_str", str, "a=nortpproxy:yes\r\n",
          doc="SDP line marking relayed SDP (added after rewriting; SDP with it is left "
              "alone unless flag f).")

_engine: dict[str, rf.Engine | None] = {"e": None}


def _build_engine(shm: Any) -> rf.Engine:
    p = mod.p
    nodes = [n for value in p.rtpproxy_sock for n in parse_sock_param(value)]
    node_tbl = shm.named("rtpproxy:nodes", lambda a: ShmHashTable.create(a, 16),
                         ShmHashTable.attach) if shm is not None else None
    offers = shm.named("rtpproxy:offers", lambda a: ShmHashTable.create(a, 1024),
                       ShmHashTable.attach) if shm is not None else None
    table = NodeTable(nodes, node_tbl, int(p.rtpproxy_disable_tout))
    client = RtppClient(int(p.rtpproxy_tout), int(p.rtpproxy_retr))
    return rf.Engine(table, client, str(p.nortpproxy_str or ""), offers)


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Parse the sockets and create the shared tables (master, before fork)."""
    if not mod.p.rtpproxy_sock:
        # as Kamailio: the module loads, its functions fail (return -1) with an error log
        log.warning("rtpproxy: no rtpproxy_sock configured, relaying is disabled")
    if int(mod.p.rtpproxy_tout) <= 0 or int(mod.p.rtpproxy_retr) <= 0:
        raise ModuleError("rtpproxy: rtpproxy_tout and rtpproxy_retr must be positive")
    _engine["e"] = _build_engine(ctx.shm)
    ctx.timers.register_timer("rtpproxy:offers", _expire_offers, 60_000)


def _expire_offers() -> None:
    e = _engine["e"]
    if e is not None:
        e.expire_offers()


def engine() -> rf.Engine:
    e = _engine["e"]
    if e is None:
        raise ModuleError("rtpproxy: module not initialised")
    return e


def _flags(ctx: RouteCtx, text: str) -> rf.Flags | None:
    try:
        return rf.parse_flags(text)
    except rf.FlagError as exc:
        log.error("rtpproxy: %s", exc)
        return None


# ---- functions -------------------------------------------------------------------------------

@mod.function("set_rtp_proxy_set", args=(Fx.IGP,), routes=RFOB)
def ki_set_rtp_proxy_set(ctx: RouteCtx, set_id: int) -> int:
    """Use rtpproxy set SET_ID for the next commands of this message. -1 unknown set."""
    if set_id not in engine().nodes.sets():
        return -1
    rf.RTPP.of(ctx).set_id = set_id
    return 1


def _force(ctx: RouteCtx, flags: str, offer: bool, ip: str | None) -> int:
    f = _flags(ctx, flags)
    return -1 if f is None else engine().force(ctx, f, offer, ip or None)


@mod.function("rtpproxy_offer", args=(), routes=RFOB)
def ki_rtpproxy_offer(ctx: RouteCtx) -> int:
    """Relay the media of the SDP offer (U command); rewrites c=/m=. 1 done, -1 failed."""
    return _force(ctx, "", True, None)


@mod.function("rtpproxy_offer", args=(Fx.SPVE,), routes=RFOB)
def ki_rtpproxy_offer_flags(ctx: RouteCtx, flags: str) -> int:
    """Same with FLAGS (a l r o c f i e w zNN 1 2 3)."""
    return _force(ctx, flags, True, None)


@mod.function("rtpproxy_offer", args=(Fx.SPVE, Fx.SPVE), routes=RFOB)
def ki_rtpproxy_offer_ip(ctx: RouteCtx, flags: str, ip: str) -> int:
    """Same, writing IP into the SDP instead of the relay's address."""
    return _force(ctx, flags, True, ip)


@mod.function("rtpproxy_answer", args=(), routes=RFOB)
def ki_rtpproxy_answer(ctx: RouteCtx) -> int:
    """Relay the media of the SDP answer (L command); rewrites c=/m=. 1 done, -1 failed."""
    return _force(ctx, "", False, None)


@mod.function("rtpproxy_answer", args=(Fx.SPVE,), routes=RFOB)
def ki_rtpproxy_answer_flags(ctx: RouteCtx, flags: str) -> int:
    """Same with FLAGS."""
    return _force(ctx, flags, False, None)


@mod.function("rtpproxy_answer", args=(Fx.SPVE, Fx.SPVE), routes=RFOB)
def ki_rtpproxy_answer_ip(ctx: RouteCtx, flags: str, ip: str) -> int:
    """Same, writing IP into the SDP."""
    return _force(ctx, flags, False, ip)


@mod.function("rtpproxy_manage", args=(), routes=RFOB)
def ki_rtpproxy_manage(ctx: RouteCtx) -> int:
    """Offer, answer or delete as the message requires: INVITE/UPDATE with SDP offer, reply
    with SDP answer (or late offer), ACK with SDP answer, BYE/CANCEL, >=300 replies and
    failure_route delete."""
    return engine().manage(ctx, rf.Flags(), None)


@mod.function("rtpproxy_manage", args=(Fx.SPVE,), routes=RFOB)
def ki_rtpproxy_manage_flags(ctx: RouteCtx, flags: str) -> int:
    """Same with FLAGS."""
    f = _flags(ctx, flags)
    return -1 if f is None else engine().manage(ctx, f, None)


@mod.function("rtpproxy_manage", args=(Fx.SPVE, Fx.SPVE), routes=RFOB)
def ki_rtpproxy_manage_ip(ctx: RouteCtx, flags: str, ip: str) -> int:
    """Same, writing IP into the SDP."""
    f = _flags(ctx, flags)
    return -1 if f is None else engine().manage(ctx, f, ip or None)


@mod.function("rtpproxy_destroy", args=(), routes=RFOB)
def ki_rtpproxy_destroy(ctx: RouteCtx) -> int:
    """Delete the call's relay session (D command). 1 deleted, -1 failed/unknown."""
    return engine().destroy(ctx)


@mod.function("rtpproxy_destroy", args=(Fx.SPVE,), routes=RFOB)
def ki_rtpproxy_destroy_flags(ctx: RouteCtx, flags: str) -> int:
    """Same; FLAGS 1/2/3 delete the per-branch session (Via branch after the Call-ID)."""
    f = _flags(ctx, flags)
    return -1 if f is None else engine().destroy(ctx, f.via)


@mod.function("unforce_rtp_proxy", args=(), routes=RFOB)
def ki_unforce_rtp_proxy(ctx: RouteCtx) -> int:
    """Old name of rtpproxy_destroy()."""
    return engine().destroy(ctx)


@mod.function("start_recording", args=(), routes=REQUEST_ROUTE | ONREPLY_ROUTE)
def ki_start_recording(ctx: RouteCtx) -> int:
    """Ask rtpproxy to record the call's media (R command)."""
    return engine().record(ctx)


# ---- RPC -------------------------------------------------------------------------------------

def rpc_list() -> list[dict[str, Any]]:
    """rtpproxy.list: every node with set, weight and state."""
    e = engine()
    out = []
    for n in e.nodes.nodes:
        st, _ = e.nodes.state(n)
        out.append({"url": n.url, "set": n.set_id, "index": e.nodes.nodes.index(n),
                    "weight": n.weight, "disabled": 1 if st else 0,
                    "permanent": 1 if st == 2 else 0})
    return out


def rpc_enable(url: str, value: int) -> dict[str, Any]:
    """rtpproxy.enable url 0|1: disable (permanently, until enabled) or enable a node; url
    "all" for every node. Enabling tests the node with a V command first."""
    e = engine()
    nodes = e.nodes.nodes if url == "all" else e.nodes.find(url)
    if not nodes:
        raise RpcFault(404, f"rtpproxy: no node {url}")
    for n in nodes:
        if value:
            if not e.ping(n):
                raise RpcFault(503, f"rtpproxy: {n.url} does not answer")
            e.nodes.enable(n)
        else:
            e.nodes.disable(n, permanent=True)
    return {"changed": len(nodes)}


mod.rpc("rtpproxy.list", rpc_list, doc="List the rtpproxy nodes and their state.")
mod.rpc("rtpproxy.enable", rpc_enable, params="url:str value:int",
        doc="Enable (1) or disable (0) a node by url, or \"all\".")

__all__ = ["mod"]
