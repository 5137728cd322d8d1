"""tm: transaction management (stateful forwarding), Kamailio's tm.

Runs in: the master (declarations, mod_init: the shm transaction table, timer handlers, the sl
binding), SIP workers (the cfg functions, the reply hook), the timer process (retransmissions,
timeouts, failure_route after a timeout) and the ctl process (tm.* RPCs). Shared state: the
tm table in shm (h_table.py) and the tm/tmx counters.

The rooms, bottom up (each imports only those above it in this list):

| file | owns |
|---|---|
| config.py | the parameters: one `TmCfg` field each (modparam, cfg group, values in effect) |
| state.py | the table, the node, final-reply callbacks; the message's tm state (`TM` slot) |
| fsm.py, jobs.py, h_table.py | RFC 3261 state machines; timer-job codec; cells in shm |
| t_out.py | the out-queue of a locked update, sending, CANCEL/ACK builders |
| t_fsm.py | the one interpreter of the state machines' actions (timers, ACK, resends) |
| t_serial.py, t_ctx.py | serial forking; what travels with a transaction between routes |
| t_lookup.py | matching (RFC 3261 17.2.3, RFC 2543), lookups |
| t_cancel.py | CANCEL of branches and its retransmission |
| t_reply.py | replies going upstream: local, relayed, the best final reply, t_reply() |
| t_failure.py | failure_route, tm:branch-failure |
| t_recv.py | replies from downstream |
| t_create.py | new server transactions (t_newtran, t_check_trans), ACK absorption |
| t_fwd.py | t_relay and its family, e2e CANCEL, blind branches |
| t_timer.py | the timer jobs as the timer process runs them |
| t_uac.py, t_set.py, t_rpc.py, t_fifo.py | local requests; t_set_*/predicates; RPCs; t_write_* |
| api.py | TmApi for acc, dialog, tmx |

Every cfg function is declared once, with its implementation, in the file that owns it.
"""
from __future__ import annotations

from sipcore import stats
from sipcore.mod import (
    BRANCH_ROUTE,
    EVENT_ROUTE,
    FAILURE_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    Custom,
    Fx,
    ModContext,
    Module,
    RouteType,
)
from sipcore.shm import ShmHashTable

mod = Module("tm", summary="Transaction management (stateful forwarding).")

REQ = REQUEST_ROUTE
RF = REQUEST_ROUTE | FAILURE_ROUTE
# t_relay*() also in event_route[tm:branch-failure:*] (Kamailio: event_route is checked as
# REQUEST_ROUTE, and _w_t_relay_to runs t_forward_nonack there)
RFB = RF | RouteType.BRANCH_FAILURE
RFOB = REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE | BRANCH_ROUTE
BF = FAILURE_ROUTE | EVENT_ROUTE | RouteType.BRANCH_FAILURE


def _is_set_target(text: str) -> str:
    t = text.strip()
    if t not in ("branch_route", "failure_route", "onreply_route"):
        raise ValueError(f"t_is_set: unknown target \"{text}\" "
                         "(branch_route, failure_route or onreply_route)")
    return t


def _drop_mode(text: str) -> str:
    t = text.strip()
    if t not in ("a", "l", "n", "0", "1", ""):
        raise ValueError(f"t_drop_replies: unknown mode \"{text}\" (a, l or n)")
    return t


def _proto(text: str) -> str:
    t = text.strip().lower()
    if t not in ("udp", "tcp", "tls", "sctp", "ws", "wss"):
        raise ValueError(f"unknown protocol \"{text}\"")
    return t


IS_SET = Custom(_is_set_target, name="t_is_set-target")
DROP_MODE = Custom(_drop_mode, name="drop-mode")
PROTO = Custom(_proto, dynamic=True, name="proto")
HOST, PORT = Fx.SPVE, Fx.SPVE

STATS = ("UAS_transactions", "UAC_transactions", "2xx_transactions", "3xx_transactions",
         "4xx_transactions", "5xx_transactions", "6xx_transactions", "rpl_received",
         "rpl_absorbed", "rpl_relayed", "rpl_generated", "rpl_sent")

mod.event_routes.extend(["tm:local-request", "tm:local-response", "tm:branch-failure"])

# the parameters, then every room that declares functions, RPCs and the API
from . import config  # noqa: E402

config.declare(mod)

from . import (  # noqa: E402,F401  (each declares its cfg functions and RPCs)
    t_create,
    t_fifo,
    t_fwd,
    t_lookup,
    t_recv,
    t_reply,
    t_rpc,
    t_serial,
    t_set,
    t_timer,
    t_uac,
)
from .api import TmApi  # noqa: E402
from .state import STATE, set_table  # noqa: E402

mod.params["tw_append"].validator = t_fifo.validate_tw_append
mod.provides_api(TmApi())


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: the parameters in effect, the shm table, the timer jobs, the sl
    binding, the cfg group and the statistics."""
    cfg = config.load(mod)
    tbl = ctx.require_shm().named("tm:table", lambda a: ShmHashTable.create(a, 4096),
                                  ShmHashTable.attach)
    from .h_table import TmTable

    set_table(TmTable(tbl))
    STATE.core = ctx.core
    STATE.final_callbacks.clear()
    STATE.sl = ctx.api_or_none("sl")
    if STATE.sl is not None:
        STATE.sl.stateful_replier = t_reply.stateful_replier
    mod.runtime_cfg(config.apply_runtime, *config.CFG_GROUP)
    t_timer.register(ctx.timers)
    for name in STATS:
        stats.register("tmx:" + name, no_reset=True)
    _ = cfg


@mod.response
def _on_reply(ctx: object) -> bool:
    return t_recv.reply_received(ctx)  # type: ignore[arg-type]
