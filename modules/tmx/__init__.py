"""tmx: tm extensions: transaction helpers, the $T_* pseudo-variables, tmx statistics.

Runs in: SIP workers and the timer process (functions and PVs, inside routes), the master
(declarations). Shared state: tm's transaction table in shm (through modules.tm.t_funcs) and
the precheck entries t_precheck_trans() adds to it; the `tmx:*` counters (registered by tm).
Kamailio 5.6's complete export table; t_suspend/t_continue, t_reuse_branch, t_flush_xflags
are still declared only and raise ModuleError when called.
"""
from __future__ import annotations

from typing import Optional

from sipcore.core.declared import declare_functions, declare_params
from sipcore.mod import (
    ANY_ROUTE,
    EVENT_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    Custom,
    Fx,
    Module,
    RouteType,
)

mod = Module("tmx", summary="tm extensions: transaction helpers, $T_* variables, statistics.",
             depends=("tm",),
             pending_note="not implemented yet in PyKam's tmx (see docs/modules/tmx.md)")


def _which(text: str) -> str:
    t = text.strip()
    if t not in ("all", "others", "this"):
        raise ValueError(f"t_cancel_branches: \"{text}\" (all, others or this expected)")
    return t


declare_functions(mod, [
    ("t_cancel_branches", (Custom(_which, name="which"),), ONREPLY_ROUTE,
     "CANCEL branches: all, others or this."),
    ("t_cancel_callid", (Fx.SPVE, Fx.SPVE, Fx.IGP), ANY_ROUTE,
     "CANCEL the INVITE transaction with Call-ID and CSeq; set flag."),
    ("t_cancel_callid", (Fx.SPVE, Fx.SPVE, Fx.IGP, Fx.IGP), ANY_ROUTE,
     "Same with the Reason cause code."),
    ("t_reply_callid", (Fx.SPVE, Fx.SPVE, Fx.IGP, Fx.SPVE), ANY_ROUTE,
     "Reply to the transaction found by Call-ID and CSeq."),
    ("t_flush_flags", (), ANY_ROUTE, "Copy the message flags into the transaction."),
    ("t_flush_xflags", (), ANY_ROUTE, "Copy the extended flags into the transaction."),
    ("t_is_failure_route", (), ANY_ROUTE, "True in a failure_route."),
    ("t_is_branch_route", (), ANY_ROUTE, "True in a branch_route."),
    ("t_is_reply_route", (), ANY_ROUTE, "True in an onreply_route."),
    ("t_is_request_route", (), ANY_ROUTE, "True in the request route."),
    ("t_suspend", (), ANY_ROUTE, "Suspend processing ($T(id_index), $T(id_label))."),
    ("t_continue", (Fx.IGP, Fx.IGP, Fx.ROUTE), ANY_ROUTE,
     "Resume a suspended transaction with route[NAME]."),
    ("t_drop", (), ANY_ROUTE, "Drop the transaction (status 500)."),
    ("t_drop", (Fx.IGP,), ANY_ROUTE, "Drop the transaction with status CODE."),
    ("t_reuse_branch", (), EVENT_ROUTE | RouteType.BRANCH_FAILURE,
     "New main branch copied from the failed branch."),
    ("t_precheck_trans", (), REQUEST_ROUTE,
     "True if the same request is being processed by another process."),
])

declare_params(mod, [
    ("precheck_trans", int, 1, "Enable t_precheck_trans() (0: always false)."),
])


def _t_inner(inner: Optional[str]) -> None:
    names = ("id_index", "id_label", "reply_code", "reply_reason", "reply_last",
             "branch_index", "ruid", "reply_type")
    if inner is None or inner.strip() not in names:
        raise ValueError(f"$T(name): name is one of {', '.join(names)}")


def _any_inner(inner: Optional[str]) -> None:
    if not inner:
        raise ValueError("an inner name is required")


def _no_inner(inner: Optional[str]) -> None:
    if inner:
        raise ValueError("no inner name allowed")



from . import tmx_impl  # noqa: E402  (PVs and function implementations)

for _pv, _check, _doc in tmx_impl.PVS:
    mod.pv(_pv, tmx_impl.pv_factory(_pv, _check), doc=_doc)

# Statistics (group tmx), registered by tm's mod_init:
STATISTICS = ("UAS_transactions", "UAC_transactions", "2xx_transactions", "3xx_transactions",
              "4xx_transactions", "5xx_transactions", "6xx_transactions",
              "inuse_transactions", "active_transactions", "rpl_received", "rpl_absorbed",
              "rpl_relayed", "rpl_generated", "rpl_sent")
