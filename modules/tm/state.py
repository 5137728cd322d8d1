"""tm's state: the transaction table of this server (set by mod_init), the node tm sends
through, the final-reply callbacks other modules registered, and tm's part of one message
(`TM`, a typed slot on the RouteCtx).

Runs in: every process (the table object is inherited by fork; the slot lives as long as one
message's routing).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional

from sipcore.route.ctx import MsgSlot

from .h_table import Cell, TmTable


@dataclass(slots=True)
class TmMsg:
    """What the script set for tm on this message (Kamailio keeps these on the message and in
    the T being built): the transaction it belongs to, armed routes, per-transaction timer
    values and switches. None: not set (the module's value applies)."""

    tid: Optional[str] = None           # the transaction of this message
    # failure_route / tm:branch-failure: (code, reason, index) of the reply that failed it
    best: Optional[tuple[int, str, int]] = None
    on_failure: Optional[str] = None    # t_on_failure()
    on_reply: Optional[str] = None      # t_on_reply()
    on_branch: Optional[str] = None     # t_on_branch()
    on_branch_failure: Optional[str] = None     # t_on_branch_failure()
    fr: int = 0                         # t_set_fr() (ms; 0: not set)
    fr_inv: int = 0
    t1: int = 0                         # t_set_retr()
    t2: int = 0
    max_inv_lifetime: int = 0           # t_set_max_lifetime()
    max_noninv_lifetime: int = 0
    no_100: bool = False                # t_set_auto_inv_100(0), t_relay_to flag 1
    replicate: bool = False             # t_replicate*(): replies absorbed
    disable_6xx: Optional[bool] = None  # t_set_disable_6xx()
    no_internal_reply: bool = False     # t_set_disable_internal_reply(), t_relay_to flag 2
    no_e2e_cancel_reason: bool = False  # t_set_no_e2e_cancel_reason()
    disable_failover: bool = False      # t_set_disable_failover()
    branch_instance: str = ""           # tm:branch-failure: +sip.instance of the failed branch

    def copy(self) -> "TmMsg":
        return TmMsg(*_values(self))


_values = operator.attrgetter(*(f.name for f in fields(TmMsg)))

TM: MsgSlot[TmMsg] = MsgSlot("tm", TmMsg)


def tid_of(ctx: Any) -> Optional[str]:
    """The transaction of the message CTX is routing, when it has one yet."""
    st = TM.peek(ctx)
    return st.tid if st is not None else None


class TmState:
    """This server's transaction table and the node tm sends through (mod_init)."""

    table: Optional[TmTable] = None
    core: Any = None
    sl: Any = None              # sl's API when sl is loaded (3xx Contact lists)
    #: fn(cell, code, reply_buf, core) for every final reply sent upstream (Kamailio
    #: TMCB_RESPONSE_OUT for finals): acc and dialog register through tm's API
    final_callbacks: list[Callable[[Cell, int, bytes, Any], None]] = []


STATE = TmState()


def table() -> TmTable:
    if STATE.table is None:
        raise RuntimeError("tm: the transaction table does not exist (mod_init not run)")
    return STATE.table


def set_table(t: Optional[TmTable]) -> None:
    STATE.table = t
