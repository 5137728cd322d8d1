"""tmx: tm extensions: transaction helpers, the $T_* pseudo-variables, tmx statistics.

Runs in: SIP workers and the timer process (functions and PVs, inside routes), the master
(declarations, mod_init binds tm). Shared state: tm's transaction table in shm (through tm's
API) and the precheck entries t_precheck_trans() adds to it; the `tmx:*` counters (registered
by tm). Kamailio 5.6's complete export table; each function is declared with its
implementation in tmx_impl.py.
"""
from __future__ import annotations

from typing import Optional

from sipcore.mod import ModContext, Module

mod = Module("tmx", summary="tm extensions: transaction helpers, $T_* variables, statistics.",
             depends=("tm",))


mod.param("precheck_trans", int, 1, doc="Enable t_precheck_trans() (0: always false).")


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


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Master: bind tm (loaded, as `depends` makes sure)."""
    tmx_impl.TM.tm = ctx.bind_api("tm")


for _pv, _check, _doc in tmx_impl.PVS:
    mod.pv(_pv, tmx_impl.pv_factory(_pv, _check), doc=_doc)

# Statistics (group tmx), registered by tm's mod_init:
STATISTICS = ("UAS_transactions", "UAC_transactions", "2xx_transactions", "3xx_transactions",
              "4xx_transactions", "5xx_transactions", "6xx_transactions",
              "inuse_transactions", "active_transactions", "rpl_received", "rpl_absorbed",
              "rpl_relayed", "rpl_generated", "rpl_sent")
