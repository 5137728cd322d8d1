"""tm: transaction management (stateful forwarding), Kamailio's tm.

Runs in: the master (declarations, mod_init: the shm transaction table, timer handlers, the sl
binding), SIP workers (the cfg functions, the reply hook), the timer process (retransmissions,
timeouts, failure_route after a timeout) and the ctl process (tm.* RPCs). Shared state: the
tm table in shm (h_table.py) and the tm/tmx counters.

The export table is Kamailio 5.6's complete one; every function is bound in `t_script.py`
(serial forking and flows in `t_serial.py`, t_write_req/t_write_unix in `t_fifo.py`).
"""
from __future__ import annotations

from sipcore.core.declared import declare_functions, declare_params, declare_rpcs
from sipcore.mod import (
    ANY_ROUTE,
    BRANCH_ROUTE,
    EVENT_ROUTE,
    FAILURE_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    Custom,
    Fx,
    Module,
    RouteType,
)

mod = Module("tm", summary="Transaction management (stateful forwarding).",
             pending_note="not implemented yet in PyKam's tm (see docs/modules/tm.md)")

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


def _tw_info(text: str) -> str:
    """t_write_req/t_write_unix info "action[/append_name]" (the append must be a tw_append)."""
    from .t_fifo import _appends, parse_info

    _action, append = parse_info(text.strip())
    if append and append.lower() not in _appends():
        raise ValueError(f"unknown append name <{append}> (no such tw_append)")
    return text.strip()


IS_SET = Custom(_is_set_target, name="t_is_set-target")
TW_INFO = Custom(_tw_info, name="tw-info")
DROP_MODE = Custom(_drop_mode, name="drop-mode")
PROTO = Custom(_proto, dynamic=True, name="proto")
HOST, PORT = Fx.SPVE, Fx.SPVE

declare_functions(mod, [
    ("t_newtran", (), REQ, "Create the transaction atomically; negative on error."),
    ("t_lookup_request", (), REQ, "True if the request matches an existing transaction."),
    ("t_lookup_cancel", (), REQ, "True if the INVITE transaction of this CANCEL exists."),
    ("t_lookup_cancel", (Fx.INT,), REQ, "Same; with 1 copy the INVITE's flags."),
    ("t_reply", (Fx.IGP, Fx.SPVE), REQUEST_ROUTE | ONREPLY_ROUTE | FAILURE_ROUTE,
     "Stateful reply CODE REASON."),
    ("t_send_reply", (Fx.IGP, Fx.SPVE), REQUEST_ROUTE | ONREPLY_ROUTE | FAILURE_ROUTE,
     "Create the transaction if needed, then t_reply."),
    ("t_retransmit_reply", (), REQ, "Resend the last reply of the UAS transaction."),
    ("t_release", (), REQ, "Put the transaction on the wait timer."),
    ("t_relay", (), RFB, "Forward statefully to $du / R-URI."),
    ("t_relay", (HOST, PORT), RFB, "Forward statefully to HOST:PORT (incoming protocol)."),
    ("t_relay_to_udp", (), RFB, "t_relay over UDP to $du / R-URI."),
    ("t_relay_to_udp", (HOST, PORT), RFB, "t_relay over UDP to HOST:PORT."),
    ("t_relay_to_tcp", (), RFB, "t_relay over TCP to $du / R-URI."),
    ("t_relay_to_tcp", (HOST, PORT), RFB, "t_relay over TCP to HOST:PORT."),
    ("t_relay_to_tls", (), RFB, "t_relay over TLS to $du / R-URI."),
    ("t_relay_to_tls", (HOST, PORT), RFB, "t_relay over TLS to HOST:PORT."),
    ("t_relay_to_sctp", (), RFB, "t_relay over SCTP to $du / R-URI."),
    ("t_relay_to_sctp", (HOST, PORT), RFB, "t_relay over SCTP to HOST:PORT."),
    ("t_relay_to", (), RFB, "t_relay with default flags."),
    ("t_relay_to", (Fx.ANY,), RFB, "t_relay_to(proxy) or t_relay_to(flags)."),
    ("t_relay_to", (Fx.SPVE, Fx.IGP), RFB, "proxy \"proto:host:port\" and flags bitmask."),
    ("t_relay_to_avp", (PROTO, Fx.SPVE), REQ, "Legacy: relay to proto and host:port."),
    ("t_replicate", (), REQ, "Send a stateful copy to $du / R-URI."),
    ("t_replicate", (Fx.SPVE,), REQ, "Send a stateful copy to URI."),
    ("t_replicate", (HOST, PORT), REQ, "Send a stateful copy to HOST:PORT."),
    ("t_replicate_udp", (HOST, PORT), REQ, "Stateful copy over UDP."),
    ("t_replicate_tcp", (HOST, PORT), REQ, "Stateful copy over TCP."),
    ("t_replicate_tls", (HOST, PORT), REQ, "Stateful copy over TLS."),
    ("t_replicate_sctp", (HOST, PORT), REQ, "Stateful copy over SCTP."),
    ("t_replicate_to", (PROTO, Fx.SPVE), REQ, "Stateful copy to proto and host:port."),
    ("t_forward_nonack", (HOST, PORT), REQ, "Low-level stateful forward of a non-ACK."),
    ("t_forward_nonack_uri", (), REQ, "Low-level stateful forward to the R-URI."),
    ("t_forward_nonack_udp", (HOST, PORT), REQ, "Low-level stateful forward over UDP."),
    ("t_forward_nonack_tcp", (HOST, PORT), REQ, "Low-level stateful forward over TCP."),
    ("t_forward_nonack_tls", (HOST, PORT), REQ, "Low-level stateful forward over TLS."),
    ("t_forward_nonack_sctp", (HOST, PORT), REQ, "Low-level stateful forward over SCTP."),
    ("t_forward_nonack_to", (PROTO, Fx.SPVE), REQ, "Low-level stateful forward to proto, hp."),
    ("t_relay_cancel", (), REQ, "CANCEL the pending branches of the INVITE (0 stops)."),
    ("t_on_failure", (Fx.ROUTE,), RFOB, "Arm failure_route[NAME]."),
    ("t_on_branch_failure", (Fx.ROUTE,), RFOB, "Arm event_route[tm:branch-failure:NAME]."),
    ("t_on_reply", (Fx.ROUTE,), RFOB, "Arm onreply_route[NAME]."),
    ("t_on_branch", (Fx.ROUTE,), RF, "Arm branch_route[NAME]."),
    ("t_check_status", (Fx.SPVE,), RFB | ONREPLY_ROUTE,
     "Regex against the relevant status code."),
    ("t_write_req", (Fx.STR, TW_INFO), RF,
     "Write the transaction's request to FIFO for an application (legacy); 1 / -1."),
    ("t_write_unix", (Fx.STR, TW_INFO), RF,
     "Same to a unix datagram socket (legacy); 1 / -1."),
    ("t_set_fr", (Fx.IGP,), RFOB, "Set fr_inv_timer (ms) for this transaction."),
    ("t_set_fr", (Fx.IGP, Fx.IGP), RFOB, "Set fr_inv_timer and fr_timer (ms)."),
    ("t_reset_fr", (), RFOB, "Back to the module's fr timers."),
    ("t_set_retr", (Fx.IGP, Fx.IGP), RFOB, "Set T1 and T2 (ms) for this transaction."),
    ("t_reset_retr", (), RFOB, "Back to the module's retransmission timers."),
    ("t_set_max_lifetime", (Fx.IGP, Fx.IGP), RFOB, "Max lifetime INVITE / non-INVITE (ms)."),
    ("t_reset_max_lifetime", (), RFOB, "Back to the module's max lifetimes."),
    ("t_set_auto_inv_100", (Fx.IGP,), REQ, "Per-transaction auto_inv_100."),
    ("t_set_disable_6xx", (Fx.IGP,), RFOB, "Per-transaction disable_6xx_block."),
    ("t_set_disable_failover", (Fx.IGP,), RFOB, "Per-transaction DNS failover off/on."),
    ("t_set_no_e2e_cancel_reason", (Fx.IGP,), RFOB, "1: don't copy Reason from CANCEL."),
    ("t_disable_e2e_cancel_reason", (Fx.IGP,), RFOB, "Alias of t_set_no_e2e_cancel_reason."),
    ("t_set_disable_internal_reply", (Fx.IGP,), ANY_ROUTE,
     "Disable the internal reply on relay error."),
    ("t_branch_timeout", (), BF, "True if the failed branch timed out."),
    ("t_branch_replied", (), BF, "True if the failed branch had received a reply."),
    ("t_any_timeout", (), RFOB, "True if any branch timed out."),
    ("t_any_replied", (), RFOB, "True if any branch got a reply."),
    ("t_is_canceled", (), RFOB, "True if the transaction was CANCELed."),
    ("t_is_expired", (), RFOB, "True if the max lifetime elapsed."),
    ("t_is_retr_async_reply", (), ONREPLY_ROUTE, "True if a reply is suspended."),
    ("t_grep_status", (Fx.IGP,), RFOB, "True if some branch's final reply had CODE."),
    ("t_drop_replies", (), FAILURE_ROUTE, "Drop all received replies (mode a)."),
    ("t_drop_replies", (DROP_MODE,), FAILURE_ROUTE, "Drop replies: a all, l last leg, n none."),
    ("t_save_lumps", (), REQ, "Store the message changes into the transaction."),
    ("t_check_trans", (), REQUEST_ROUTE | ONREPLY_ROUTE | BRANCH_ROUTE,
     "Transaction check (retransmissions are absorbed and the script stops)."),
    ("t_is_set", (IS_SET,), ANY_ROUTE, "True if branch_route/failure_route/onreply_route is "
     "armed."),
    ("t_use_uac_headers", (), ANY_ROUTE, "Build local ACK/CANCEL from the UAC-side headers."),
    ("t_uac_send", (Fx.SPVE,) * 6, ANY_ROUTE,
     "Send a local request: method, ruri, nexthop, socket, headers, body."),
    ("t_load_contacts", (), RF, "Load the destination set into contacts_avp (q order)."),
    ("t_load_contacts", (Fx.IGP,), RF, "Same; mode 0 q order, 1 proportional by q."),
    ("t_next_contacts", (), RF, "Pop the next q group into the destination set."),
    ("t_next_contact_flow", (), REQ | EVENT_ROUTE | RouteType.BRANCH_FAILURE,
     "Append the next flow of the failed branch's +sip.instance; 1, -2 none, -1 error."),
    ("t_get_status_code", (), ANY_ROUTE, "The most relevant status code, -1 if none."),
    ("t_clean", (), ANY_ROUTE, "Clean very old active transactions."),
])

declare_params(mod, [
    ("fr_timer", int, 30000, "Final response timeout (ms) when no reply at all."),
    ("fr_inv_timer", int, 120000, "INVITE final response timeout (ms) after a provisional."),
    ("max_inv_lifetime", int, 180000, "Lifetime cap of an INVITE transaction (ms)."),
    ("max_noninv_lifetime", int, 32000, "Lifetime cap of a non-INVITE transaction (ms)."),
    ("wt_timer", int, 5000, "Wait state after completion (ms)."),
    ("retr_timer1", int, 500, "T1 (ms)."),
    ("retr_timer2", int, 4000, "T2 (ms)."),
    ("noisy_ctimer", int, 1, "On INVITE timeout always send 408 upstream."),
    ("restart_fr_on_each_reply", int, 1, "Restart fr_inv_timer on every provisional reply."),
    ("auto_inv_100", int, 1, "Send 100 Trying for INVITE automatically."),
    ("auto_inv_100_reason", str, "trying -- your call is important to us",
     "Reason text of the automatic 100."),
    ("unix_tx_timeout", int, 500, "Send timeout on unix sockets (ms)."),
    ("aggregate_challenges", int, 1, "Merge WWW-/Proxy-Authenticate of 401/407 branches."),
    ("reparse_invite", int, 1, "Build CANCEL / negative ACK from the sent INVITE."),
    ("ac_extra_hdrs", str, "", "Header prefix copied from INVITE into CANCEL/ACK."),
    ("blst_503", int, 0, "Add 503 sources to the blocklist."),
    ("blst_503_def_timeout", int, 0, "Blocklist time for 503 without Retry-After (s)."),
    ("blst_503_min_timeout", int, 0, "Minimum blocklist time from Retry-After (s)."),
    ("blst_503_max_timeout", int, 3600, "Maximum blocklist time from Retry-After (s)."),
    ("blst_methods_add", int, 1, "Methods whose timeouts blocklist the hop (bitmask)."),
    ("blst_methods_lookup", int, 4294967287, "Methods checked against the blocklist."),
    ("cancel_b_method", int, 1, "CANCEL of never-replied branches: 0, 1 or 2."),
    ("reparse_on_dns_failover", int, 1, "Build the DNS-failover branch from the failed one."),
    ("on_sl_reply", str, None, "Reply route for replies without a transaction."),
    ("contacts_avp", str, None, "XAVP for t_load_contacts / t_next_contacts."),
    ("contact_flows_avp", str, None, "XAVP for contacts with the same +sip.instance."),
    ("fr_timer_avp", str, None, "AVP with a per-transaction fr_timer (s, legacy)."),
    ("fr_inv_timer_avp", str, None, "AVP with a per-transaction fr_inv_timer (s, legacy)."),
    ("tw_append", str, None, "Extra fields for t_write_* (legacy).", True),
    ("unmatched_cancel", int, 0, "CANCEL without transaction: 0 stateful, 1 stateless, "
     "2 drop."),
    ("ruri_matching", int, 1, "Match the R-URI for pre-RFC 3261 transactions."),
    ("via1_matching", int, 1, "Match the top Via for pre-RFC 3261 transactions."),
    ("callid_matching", int, 0, "Also require the Call-ID to match."),
    ("callid_cseq_matching", int, 0, "Match on Call-ID + CSeq instead of the branch."),
    ("pass_provisional_replies", int, 0, "Local-response callbacks also for 1xx."),
    ("default_code", int, 500, "t_reply code when its params can't be evaluated."),
    ("default_reason", str, "Server Internal Error", "t_reply reason in that case."),
    ("disable_6xx_block", int, 0, "Treat 6xx like other replies."),
    ("local_ack_mode", int, 0, "Where the ACK to a local 2xx goes: 0, 1 or 2."),
    ("failure_reply_mode", int, 3, "Replies of old branches considered in failure_route."),
    ("faked_reply_prio", int, 0, "Priority penalty of faked replies."),
    ("local_cancel_reason", int, 1, "Add Reason to CANCELs caused by a final reply."),
    ("e2e_cancel_reason", int, 1, "Copy Reason from the received CANCEL."),
    ("remap_503_500", int, 1, "Relay a 503 final reply as 500."),
    ("failure_exec_mode", int, 0, "1: local send failures still run failure_route."),
    ("dns_reuse_rcv_socket", int, 0, "DNS-failover branches use the receiving socket."),
    ("xavp_contact", str, None, "XAVP with per-contact attributes."),
    ("event_callback", str, None, "KEMI function for tm:local-request."),
    ("event_callback_lres_sent", str, None, "KEMI function for tm:local-response."),
    ("relay_100", int, 0, "Relay 100 Trying upstream."),
    ("rich_redirect", int, 0, "Add branch info to 3xx Contacts."),
    ("exec_time_check", int, 5000, "Re-check the transaction after long failure routes (ms)."),
    ("reply_relay_mode", int, 1, "Drop a suspended 200 if another final went out."),
    ("enable_uac_fr", int, 0, "Allow failure_route for local transactions."),
])

declare_rpcs(mod, [
    ("tm.list", "List the transactions."),
    ("tm.t_uac_start", "method ruri nexthop socket headers [body]: send a local request."),
    ("tm.t_uac_wait", "Same, waiting for the final reply (async)."),
    ("tm.t_uac_wait_block", "Same, blocking up to 80 s."),
    ("tm.cancel", "callid cseq: CANCEL a transaction."),
    ("tm.hash_stats", "Transaction hash table statistics."),
    ("tm.reply", "code reason trans_id to_tag hdrs [body]: reply to a transaction."),
    ("tm.reply_callid", "code reason callid cseq to_tag hdrs [body]."),
    ("tm.clean", "Clean old active transactions."),
    ("tm.stats", "Transaction statistics."),
])

def _tw_append_validator() -> None:
    from .t_fifo import validate_tw_append

    mod.params["tw_append"].validator = validate_tw_append


_tw_append_validator()

mod.event_routes.extend(["tm:local-request", "tm:local-response", "tm:branch-failure"])

from . import t_script  # noqa: E402,F401  (binds the implementations and mod_init)
