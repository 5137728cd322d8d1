"""usrloc: user location storage (declared only).

No script functions (registrar uses the API). Complete parameter table of Kamailio 5.6 and the
ul.* RPC names, so configs check. The contact store (shm hash table, DB modes, timer) is not
built yet: the server refuses to start with this module; the RPCs answer with a fault.
"""
from __future__ import annotations

from sipcore.core.declared import declare_params, declare_rpcs
from sipcore.mod import Module

mod = Module("usrloc", summary="User location (AoR -> contacts) storage.",
             implemented=False,
             pending_note="the contact store needs shm and the timer process: runtime issue "
                          "(usrloc/registrar)")

declare_params(mod, [
    ("db_url", str, "mysql://kamailio:kamailiorw@localhost/kamailio", "Database URL."),
    ("db_mode", int, 0, "0 memory, 1 write-through, 2 write-back, 3 DB only, 4 load only."),
    ("db_load", int, 1, "Load records at startup."),
    ("db_insert_update", int, 0, "INSERT ... ON DUPLICATE KEY UPDATE."),
    ("timer_interval", int, 60, "Expiry / sync / keepalive timer (s)."),
    ("hash_size", int, 10, "Slots = 2^hash_size."),
    ("use_domain", int, 0, "AoR = user@domain."),
    ("desc_time_order", int, 0, "Order contacts by time instead of q."),
    ("matching_mode", int, 0, "0 contact, 1 contact+Call-ID, 2 contact+Path, 3 Call-ID."),
    ("cseq_delay", int, 20, "Same Call-ID+CSeq within this delay is a retransmission (s)."),
    ("nat_bflag", int, -1, "Branch flag saved/restored to mark NATed contacts."),
    ("fetch_rows", int, 2000, "Rows per fetch when loading."),
    ("preload", str, None, "Table to preload (repeatable).", True),
    ("db_update_as_insert", int, 0, "Always INSERT instead of UPDATE."),
    ("db_check_update", int, 0, "INSERT if UPDATE changed no row."),
    ("timer_procs", int, 0, "Dedicated timer processes."),
    ("xavp_contact", str, None, "XAVP saved with the contact and restored on lookup."),
    ("db_ops_ruid", int, 1, "DB update/delete by ruid."),
    ("handle_lost_tcp", int, 0, "Remove TCP/TLS/WS contacts when the connection closes."),
    ("close_expired_tcp", int, 0, "Close the TCP connection when its contact expires."),
    ("expires_type", int, 0, "1: BIGINT epoch columns instead of DATETIME."),
    ("db_raw_fetch_type", int, 0, "DB-only raw query variant."),
    ("db_insert_null", int, 0, "Include NULL fields in INSERT."),
    ("skip_remote_socket", int, 0, "Skip DB records with a non-local socket on load."),
    ("db_timer_clean", int, 0, "Timer cleanup of expired DB rows in modes 1/2."),
    ("rm_expired_delay", int, 0, "Delay removal of expired contacts (db_mode 3)."),
    ("server_id_filter", int, 0, "Only load/clean rows with our server_id."),
    ("version_table", int, 1, "Check the table version."),
    ("ka_mode", int, 0, "Keepalives: 1 all, 2 NATed only, 4 UDP only (bits)."),
    ("ka_filter", int, 0, "1: only records matching server_id."),
    ("ka_timeout", int, 0, "Remove a contact without keepalive reply for N s."),
    ("ka_loglevel", int, 255, "Log keepalive replies at this level (255: off)."),
    ("ka_logmsg", str, " to-uri: [$tu] remote-addr: [$sas]", "Keepalive log message."),
    ("ka_from", str, "sip:server@kamailio.org", "From URI of keepalives."),
    ("ka_domain", str, "kamailio.org", "Domain of keepalives."),
    ("ka_method", str, "OPTIONS", "Method of keepalives."),
    ("load_rank", int, 1, "Worker rank that loads the records."),
    ("db_clean_tcp", int, 0, "Drop TCP/TLS/WS contacts at startup."),
    ("user_column", str, "username", "Column name."),
    ("domain_column", str, "domain", "Column name."),
    ("contact_column", str, "contact", "Column name."),
    ("expires_column", str, "expires", "Column name."),
    ("q_column", str, "q", "Column name."),
    ("callid_column", str, "callid", "Column name."),
    ("cseq_column", str, "cseq", "Column name."),
    ("methods_column", str, "methods", "Column name."),
    ("flags_column", str, "flags", "Column name."),
    ("cflags_column", str, "cflags", "Column name."),
    ("user_agent_column", str, "user_agent", "Column name."),
    ("received_column", str, "received", "Column name."),
    ("socket_column", str, "socket", "Column name."),
    ("path_column", str, "path", "Column name."),
    ("ruid_column", str, "ruid", "Column name."),
    ("instance_column", str, "instance", "Column name."),
    ("reg_id_column", str, "reg_id", "Column name."),
    ("server_id_column", str, "server_id", "Column name."),
    ("connection_id_column", str, "connection_id", "Column name."),
    ("keepalive_column", str, "keepalive", "Column name."),
    ("partition_column", str, "partition", "Column name."),
    ("last_mod_column", str, "last_modified", "Column name."),
])

declare_rpcs(mod, [
    ("ul.dump", "All records."),
    ("ul.lookup", "table aor: contacts of an AoR."),
    ("ul.rm", "table aor: remove an AoR."),
    ("ul.rm_contact", "table aor contact: remove one contact."),
    ("ul.flush", "Write dirty records to the DB."),
    ("ul.add", "table aor contact expires q path flags cflags methods [received [socket]]."),
    ("ul.db_users", "table: number of users in the DB."),
    ("ul.db_contacts", "table: number of contacts in the DB."),
    ("ul.db_expired_contacts", "table: number of expired contacts in the DB."),
])

mod.event_routes.append("usrloc:contact-expired")
