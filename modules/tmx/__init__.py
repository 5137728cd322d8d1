"""tmx: tm extensions (declared only).

Complete Kamailio 5.6 export table (functions, the precheck_trans parameter, the $T_* PVs,
statistics names) so configs check; the functions need tm, which is not built yet: the server
refuses to start with this module and every function/PV raises ModuleError.
"""
from __future__ import annotations

from typing import Optional

from sipcore.core.declared import declare_functions, declare_params, pending_pv
from sipcore.mod import (ANY_ROUTE, EVENT_ROUTE, ONREPLY_ROUTE, REQUEST_ROUTE, Custom, Fx,
                         Module, RouteType)

mod = Module("tmx", summary="tm extensions: transaction helpers, $T_* variables, statistics.",
             depends=("tm",), implemented=False,
             pending_note="needs the tm module: runtime issue (tm)")


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


for _pv, _check, _doc in (
        ("T_branch_idx", _no_inner, "Index of the branch being processed."),
        ("T_reply_code", _no_inner, "Status of the reply that completed the transaction."),
        ("T_reply_reason", _no_inner, "Reason phrase of that reply."),
        ("T_reply_last", _no_inner, "Last received reply status."),
        ("T_reply_ruid", _no_inner, "ruid of the contact of the winning branch."),
        ("T_req", _any_inner, "$T_req(pv): PV evaluated on the transaction's request."),
        ("T_rpl", _any_inner, "$T_rpl(pv): PV evaluated on the reply."),
        ("T_inv", _any_inner, "$T_inv(pv): PV evaluated on the INVITE of a CANCEL."),
        ("T_branch", _any_inner, "$T_branch(name): attribute of the current branch."),
        ("T", _t_inner, "$T(name): transaction attribute.")):
    pending_pv(mod, _pv, _doc, _check)

# Statistics (group tmx) the module registers when implemented:
STATISTICS = ("UAS_transactions", "UAC_transactions", "2xx_transactions", "3xx_transactions",
              "4xx_transactions", "5xx_transactions", "6xx_transactions",
              "inuse_transactions", "active_transactions", "rpl_received", "rpl_absorbed",
              "rpl_relayed", "rpl_generated", "rpl_sent")
