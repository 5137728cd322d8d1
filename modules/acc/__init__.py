"""acc: accounting of transactions to the log (Kamailio acc, syslog back end).

Runs in: the master (declarations, mod_init: parses log_extra, registers with tm), SIP workers
and the timer process (tm's final-reply callback, acc_log_request). Shared state: none of its
own; it reads tm's transaction (flags, request) when a final reply goes upstream.

Log accounting is implemented: log_flag, log_missed_flag, failed_transaction_flag, log_extra,
log_level/log_facility, acc_log_request(). The DB back end (acc_db_request, acc_request,
db_*), CDRs and multi-leg info need the database layer and dialog: those functions still
raise ModuleError (docs/modules/acc.md).
"""
from __future__ import annotations

from sipcore.core.declared import declare_functions, declare_params
from sipcore.mod import FAILURE_ROUTE, REQUEST_ROUTE, Fx, Module

mod = Module("acc", summary="Accounting of transactions (syslog, DB, CDRs).",
             depends=("tm",),
             pending_note="the DB back end needs the database layer (see docs/modules/acc.md)")

RF = REQUEST_ROUTE | FAILURE_ROUTE

declare_functions(mod, [
    ("acc_log_request", (Fx.SPVE,), RF, "Log an accounting record with COMMENT (code text)."),
    ("acc_db_request", (Fx.SPVE, Fx.SPVE), RF, "Store a record with COMMENT into TABLE."),
    ("acc_request", (Fx.SPVE, Fx.SPVE), RF, "Account with COMMENT to TABLE (log and DB)."),
])

declare_params(mod, [
    ("early_media", int, 0, "Account 183 replies too."),
    ("failed_transaction_flag", int, -1, "Flag: account failed transactions."),
    ("report_ack", int, 0, "Account ACKs."),
    ("report_cancels", int, 0, "Account CANCELs."),
    ("multi_leg_info", str, None, "Multi-leg call info definition."),
    ("detect_direction", int, 0, "Swap From/To for upstream requests."),
    ("acc_prepare_flag", int, -1, "Flag: prepare accounting (for later decisions)."),
    ("acc_prepare_always", int, 0, "Always prepare accounting."),
    ("acc_extra_nullable", int, 0, "NULL for missing extra values."),
    ("reason_from_hf", int, 0, "Take the reason from the Reason header."),
    ("clone_msg", int, 1, "Clone the request for accounting."),
    ("log_flag", int, -1, "Flag: account to syslog."),
    ("log_missed_flag", int, -1, "Flag: missed calls to syslog."),
    ("log_level", int, 1, "Syslog level of records."),
    ("log_facility", str, "LOG_DAEMON", "Syslog facility of records."),
    ("log_extra", str, None, "Extra attributes \"name=$pv;...\" for syslog."),
    ("db_flag", int, -1, "Flag: account to the DB."),
    ("db_missed_flag", int, -1, "Flag: missed calls to the DB."),
    ("db_table_acc", str, "acc", "Accounting table."),
    ("db_table_missed_calls", str, "missed_calls", "Missed calls table."),
    ("db_url", str, None, "Database URL."),
    ("db_extra", str, None, "Extra attributes \"column=$pv;...\" for the DB."),
    ("db_insert_mode", int, 0, "1 INSERT DELAYED, 2 async."),
    ("acc_method_column", str, "method", "Column name."),
    ("acc_from_tag_column", str, "from_tag", "Column name."),
    ("acc_to_tag_column", str, "to_tag", "Column name."),
    ("acc_callid_column", str, "callid", "Column name."),
    ("acc_sip_code_column", str, "sip_code", "Column name."),
    ("acc_sip_reason_column", str, "sip_reason", "Column name."),
    ("acc_time_column", str, "time", "Column name."),
    ("time_mode", int, 0, "Time columns: 0 time, 1 +ms, 2 +us, 3 formatted, 4 float."),
    ("time_attr", str, "time_attr", "Name of the extra time attribute."),
    ("time_exten", str, "time_exten", "Name of the extra time extension attribute."),
    ("time_format", str, "%Y-%m-%d %H:%M:%S", "strftime format for time_mode 3."),
    ("cdr_enable", int, 0, "Write CDRs (needs dialog)."),
    ("cdr_extra", str, None, "Extra CDR attributes."),
    ("cdr_start_id", str, "start_time", "CDR start time attribute."),
    ("cdr_end_id", str, "end_time", "CDR end time attribute."),
    ("cdr_duration_id", str, "duration", "CDR duration attribute."),
    ("cdr_expired_dlg_enable", int, 0, "CDRs for expired dialogs."),
    ("cdr_on_failed", int, 0, "CDRs for failed dialogs."),
    ("cdr_facility", str, "LOG_DAEMON", "Syslog facility of CDRs."),
    ("cdr_log_enable", int, 1, "Log CDRs to syslog."),
    ("cdrs_table", str, "", "CDR table (empty: no DB CDRs)."),
    ("cdr_extra_nullable", int, 0, "NULL for missing CDR extra values."),
])

from . import acc_log  # noqa: E402,F401  (log accounting: mod_init and acc_log_request)
