"""tm's parameters, declared once: each field of `TmCfg` is a modparam (name, type, default,
doc), says whether Kamailio's tm cfg group carries it (changeable at run time with
`cfg.seti tm NAME VALUE`) and, for the ones PyKam accepts without effect, why.

Runs in: the master (declaration, modparam values copied in by mod_init) and every process
(the code reads `CFG`, the one object holding the values in effect; a runtime cfg change
updates it between messages).
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Optional

from sipcore.mod import Module


def p(default: Any, doc: str, *, rt: bool = False, inert: str = "", multi: bool = False,
      type_: Optional[type] = None) -> Any:
    """One parameter: DEFAULT, DOC; RT in the cfg group; INERT why it has no effect."""
    return field(default=default, metadata={"doc": doc, "rt": rt, "inert": inert,
                                            "multi": multi, "type": type_})


_NO_BLST = "PyKam has no destination blocklist yet"
_NO_DNS = "no DNS failover yet"


@dataclass
class TmCfg:
    """The values tm runs with (Kamailio's default_tm_cfg plus the module-only params)."""

    fr_timer: int = p(30000, "Final response timeout (ms) when no reply at all.", rt=True)
    fr_inv_timer: int = p(120000, "INVITE final response timeout (ms) after a provisional.",
                          rt=True)
    max_inv_lifetime: int = p(180000, "Lifetime cap of an INVITE transaction (ms).", rt=True)
    max_noninv_lifetime: int = p(32000, "Lifetime cap of a non-INVITE transaction (ms).",
                                 rt=True)
    wt_timer: int = p(5000, "Wait state after completion (ms).", rt=True)
    retr_timer1: int = p(500, "T1 (ms).", rt=True)
    retr_timer2: int = p(4000, "T2 (ms).", rt=True)
    noisy_ctimer: int = p(1, "On INVITE timeout always send 408 upstream.", rt=True)
    restart_fr_on_each_reply: int = p(1, "Restart fr_inv_timer on every provisional reply.",
                                      rt=True)
    auto_inv_100: int = p(1, "Send 100 Trying for INVITE automatically.", rt=True)
    auto_inv_100_reason: str = p("trying -- your call is important to us",
                                 "Reason text of the automatic 100.", rt=True)
    unix_tx_timeout: int = p(500, "Send timeout on unix sockets (ms).")
    aggregate_challenges: int = p(1, "Merge WWW-/Proxy-Authenticate of 401/407 branches.",
                                  rt=True)
    reparse_invite: int = p(1, "Build CANCEL / negative ACK from the sent INVITE.",
                            inert="CANCEL and ACK are always built from the INVITE as sent "
                                  "(the value 1)")
    ac_extra_hdrs: str = p("", "Header prefix copied from INVITE into CANCEL/ACK.", rt=True)
    blst_503: int = p(0, "Add 503 sources to the blocklist.", inert=_NO_BLST)
    blst_503_def_timeout: int = p(0, "Blocklist time for 503 without Retry-After (s).",
                                  inert=_NO_BLST)
    blst_503_min_timeout: int = p(0, "Minimum blocklist time from Retry-After (s).",
                                  inert=_NO_BLST)
    blst_503_max_timeout: int = p(3600, "Maximum blocklist time from Retry-After (s).",
                                  inert=_NO_BLST)
    blst_methods_add: int = p(1, "Methods whose timeouts blocklist the hop (bitmask).",
                              inert=_NO_BLST)
    blst_methods_lookup: int = p(4294967287, "Methods checked against the blocklist.",
                                 inert=_NO_BLST)
    cancel_b_method: int = p(1, "CANCEL of never-replied branches: 0, 1 or 2.", rt=True)
    reparse_on_dns_failover: int = p(1, "Build the DNS-failover branch from the failed one.",
                                     inert=_NO_DNS)
    on_sl_reply: Optional[str] = p(None, "Reply route for replies without a transaction.",
                                   type_=str)
    contacts_avp: Optional[str] = p(None, "XAVP for t_load_contacts / t_next_contacts.",
                                    type_=str)
    contact_flows_avp: Optional[str] = p(None, "XAVP for contacts with the same +sip.instance.",
                                         type_=str)
    fr_timer_avp: Optional[str] = p(None, "AVP with a per-transaction fr_timer (s, legacy).",
                                    type_=str)
    fr_inv_timer_avp: Optional[str] = p(None, "AVP with a per-transaction fr_inv_timer (s, "
                                        "legacy).", type_=str)
    tw_append: list = p((), "Extra fields for t_write_* (legacy).", multi=True, type_=str)
    unmatched_cancel: int = p(0, "CANCEL without transaction: 0 stateful, 1 stateless, 2 drop.",
                              rt=True)
    ruri_matching: int = p(1, "Match the R-URI for pre-RFC 3261 transactions.", rt=True)
    via1_matching: int = p(1, "Match the top Via for pre-RFC 3261 transactions.", rt=True)
    callid_matching: int = p(0, "Also require the Call-ID to match.", rt=True)
    callid_cseq_matching: int = p(0, "Match on Call-ID + CSeq instead of the branch.",
                                  rt=True)
    pass_provisional_replies: int = p(0, "Local-response callbacks also for 1xx.",
                                      inert="tm's API has no local-response callback type "
                                            "besides finals")
    default_code: int = p(500, "t_reply code when its params can't be evaluated.")
    default_reason: str = p("Server Internal Error", "t_reply reason in that case.")
    disable_6xx_block: int = p(0, "Treat 6xx like other replies.", rt=True)
    local_ack_mode: int = p(0, "Where the ACK to a local 2xx goes: 0, 1 or 2.",
                            inert="tm does not ACK the 2xx of a local INVITE yet")
    failure_reply_mode: int = p(3, "Replies of old branches considered in failure_route.")
    faked_reply_prio: int = p(0, "Priority penalty of faked replies.")
    local_cancel_reason: int = p(1, "Add Reason to CANCELs caused by a final reply.", rt=True)
    e2e_cancel_reason: int = p(1, "Copy Reason from the received CANCEL.", rt=True)
    remap_503_500: int = p(1, "Relay a 503 final reply as 500.")
    failure_exec_mode: int = p(0, "1: local send failures still run failure_route.",
                               inert="a branch whose send fails stays on its timers and "
                                     "times out into failure_route (the value 1)")
    dns_reuse_rcv_socket: int = p(0, "DNS-failover branches use the receiving socket.",
                                  inert=_NO_DNS)
    xavp_contact: Optional[str] = p(None, "XAVP with per-contact attributes.", type_=str,
                                    inert="usrloc's per-contact attribute xavp is not "
                                          "carried by t_load_contacts")
    event_callback: Optional[str] = p(None, "KEMI function for tm:local-request.", type_=str,
                                      inert="KEMI engines run the event routes by name")
    event_callback_lres_sent: Optional[str] = p(None, "KEMI function for tm:local-response.",
                                                type_=str,
                                                inert="KEMI engines run the event routes "
                                                      "by name")
    relay_100: int = p(0, "Relay 100 Trying upstream.", rt=True)
    rich_redirect: int = p(0, "Add branch info to 3xx Contacts.",
                           inert="the 3xx Contact list is printed by sl's dset printer, "
                                 "without branch flags or Path")
    exec_time_check: int = p(5000, "Re-check the transaction after long failure routes (ms).",
                             inert="failure routes run without a re-check afterwards")
    reply_relay_mode: int = p(1, "Drop a suspended 200 if another final went out.",
                              inert="replies are never suspended")
    enable_uac_fr: int = p(0, "Allow failure_route for local transactions.",
                           inert="local transactions (t_uac_send) have no failure_route")


#: the values in effect in this process (modparams after mod_init; cfg.seti changes)
CFG = TmCfg()

PARAMS = tuple(fields(TmCfg))
#: Kamailio's tm cfg group as far as PyKam's tm uses the values
CFG_GROUP = tuple(f.name for f in PARAMS if f.metadata["rt"])


def declare(mod: Module) -> None:
    """The modparams of tm, from the fields (the one declaration)."""
    for f in PARAMS:
        md = f.metadata
        type_ = md["type"] or (int if isinstance(f.default, int) else str)
        default = f.default if f.default is not MISSING else None
        mod.param(f.name, type_, default, multi=md["multi"], doc=md["doc"],
                  inert=md["inert"])


def load(mod: Module) -> TmCfg:
    """mod_init: the modparam values become the values in effect."""
    for f in PARAMS:
        value = mod.get_param(f.name)
        setattr(CFG, f.name, (value or "") if f.name == "ac_extra_hdrs" else value)
    return CFG


def apply_runtime(name: str, value: Any) -> None:
    """A cfg group value changed at run time (cfg.seti/cfg.sets): new transactions use it."""
    setattr(CFG, name, value)
