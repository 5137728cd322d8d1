"""usrloc: user location storage - AoR -> contacts in shm, with Kamailio's db_mode 0..3(4).

Runs in: the master (mod_init: shm tables, preload, timer registration; destroy: write-back
flush), SIP workers (registrar through the API), the timer process (expiry, write-back), the
ctl process (ul.* RPCs). Shared state: one shm hash table per domain ("usrloc:<table>", see
udomain.py) and the usrloc:* counters.

No script functions (registrar uses the API, bind_api("usrloc")). Kamailio equivalent:
modules/usrloc (usrloc_mod.c, udomain.c, urecord.c, ucontact.c, ul_rpc.c).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any

from sipcore import db, stats
from sipcore.core.declared import declare_params
from sipcore.errors import ModuleError, RpcFault
from sipcore.mod import ModContext, Module
from sipcore.proc import ranks
from sipcore.shm import ShmError, ShmHashTable

from .api import UsrlocApi, aor_hash
from .ucontact import Contact, RecordTooLarge, q_text
from .udomain import DB_ONLY, DB_READONLY, NO_DB, WRITE_BACK, DomainCfg, UDomain, new_ruid

log = logging.getLogger(__name__)

mod = Module("usrloc", summary="User location (AoR -> contacts) storage.")

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


_domains: dict[str, UDomain] = {}
_state: dict[str, Any] = {"ctx": None, "cfg": None, "master_pid": 0}


# usrloc's column-name params -> the `location` column each one renames
COLUMN_PARAMS = {
    "user_column": "username", "domain_column": "domain", "contact_column": "contact",
    "expires_column": "expires", "q_column": "q", "callid_column": "callid",
    "cseq_column": "cseq", "methods_column": "methods", "flags_column": "flags",
    "cflags_column": "cflags", "user_agent_column": "user_agent",
    "received_column": "received", "socket_column": "socket", "path_column": "path",
    "ruid_column": "ruid", "instance_column": "instance", "reg_id_column": "reg_id",
    "server_id_column": "server_id", "connection_id_column": "connection_id",
    "keepalive_column": "keepalive", "partition_column": "partition",
    "last_mod_column": "last_modified",
}


def _columns() -> dict[str, str]:
    """The columns whose name the config changed (key -> database name)."""
    out = {}
    for param, key in COLUMN_PARAMS.items():
        name = str(mod.get_param(param) or key)
        if name != key:
            out[key] = name
    return out


def _settings() -> DomainCfg:
    p = mod.p
    return DomainCfg(db_mode=int(p.db_mode), db_url=str(p.db_url or db.DEFAULT_URL),
                     use_domain=bool(p.use_domain), hash_size=int(p.hash_size),
                     desc_time_order=bool(p.desc_time_order), fetch_rows=int(p.fetch_rows),
                     db_timer_clean=bool(p.db_timer_clean),
                     rm_expired_delay=int(p.rm_expired_delay), db_clean_tcp=bool(p.db_clean_tcp),
                     skip_remote_socket=bool(p.skip_remote_socket), columns=_columns(),
                     node=mod.context.core if mod.context is not None else None)


def get_domain(name: str) -> UDomain:
    """This process's object for domain NAME; the shm table is created by the first process
    asking (the master for tables known at startup, which then preloads it)."""
    d = _domains.get(name)
    if d is not None:
        return d
    cfg = _state["cfg"] or _settings()
    table = None
    if cfg.db_mode != DB_ONLY:
        ctx = _state["ctx"]
        if ctx is None and mod.context is not None:
            ctx = _state["ctx"] = mod.context.shm
        if ctx is None:
            raise ModuleError("usrloc: no shared memory (the server or the harness creates it)")
        created: list[bool] = []

        def create(arena: Any) -> ShmHashTable:
            created.append(True)
            return ShmHashTable.create(arena, 1 << max(1, min(cfg.hash_size, 20)))

        table = ctx.named(f"usrloc:{name}", create, ShmHashTable.attach)
    else:
        created = []
    d = UDomain(name, cfg, table)
    _domains[name] = d
    d.register_stats()
    if (cfg.db_mode != NO_DB and mod.p.version_table and os.getpid() == _state["master_pid"]
            and (created or cfg.db_mode == DB_ONLY)):
        _check_table_version(d, cfg.db_url)
    if created and cfg.db_mode in (1, WRITE_BACK, DB_READONLY) and mod.p.db_load:
        try:
            d.preload()
        except db.DbError as exc:
            raise ModuleError(f"usrloc: cannot preload {name}: {exc}") from None
        finally:
            db.dispose_engine(cfg.db_url)      # no connection may cross fork
    return d


def _check_table_version(d: UDomain, url: str) -> None:
    """version_table=1: the table's `version` row must be Kamailio 5.6's location version
    (checked once, in the master before fork). An unreachable database is only logged (queries
    fail and are retried at run time); a missing or different version stops the start."""
    try:
        got = db.table_version(url, d.name)
    except db.DbError as exc:
        log.warning("usrloc: cannot check the version of table %s: %s", d.name, exc)
        return
    finally:
        db.dispose_engine(url)              # no connection may cross fork
    want = db.schema.VERSIONS["location"]
    if got != want:
        raise ModuleError(f"usrloc: table {d.name} has version {got} in {db.display_url(url)}, "
                          f"expected {want} (create it with `pykamctl db create`)")


def _param(name: str) -> Any:
    return mod.get_param(name)


api = UsrlocApi(get_domain=get_domain, settings=_settings, params=_param, known=_domains)
mod.provides_api(api)


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    cfg = _settings()
    if cfg.db_mode not in (NO_DB, 1, WRITE_BACK, DB_ONLY, DB_READONLY):
        raise ModuleError(f"usrloc: invalid db_mode {cfg.db_mode}")
    if cfg.db_mode != NO_DB:
        try:
            db.sqlalchemy_url(cfg.db_url)
        except db.DbUrlError as exc:
            raise ModuleError(f"usrloc: {exc}") from None
    _domains.clear()
    _state["cfg"] = cfg
    _state["ctx"] = ctx.shm
    _state["master_pid"] = os.getpid()
    if cfg.db_mode != DB_ONLY:
        stats.register("usrloc:registered_users", no_reset=True)
    for name in mod.p.preload:
        get_domain(name)
    interval = max(1, int(mod.p.timer_interval)) * 1000
    ctx.timers.register_timer("usrloc:timer", _timer, interval)


@mod.on_child_init
def child_init(ctx: ModContext, rank: int) -> None:
    """Create (not connect) this process's engine: workers, timer and ctl use the DB."""
    cfg = _state["cfg"]
    if cfg is None or cfg.db_mode == NO_DB or rank in (ranks.PROC_INIT, ranks.PROC_MAIN):
        return
    db.get_engine(cfg.db_url)


@mod.on_destroy
def destroy(ctx: ModContext) -> None:
    """Master at stop (children are gone): write pending changes in db_mode 2."""
    cfg = _state["cfg"]
    if cfg is None or cfg.db_mode != WRITE_BACK:
        return
    for d in _all_domains():
        try:
            d.flush()
        except db.DbError as exc:
            log.error("usrloc: flush of %s at shutdown failed: %s", d.name, exc)
    db.dispose_engine(cfg.db_url)


def _all_domains() -> list[UDomain]:
    """Every domain of this instance, including those another process created after fork."""
    ctx = _state["ctx"]
    if ctx is not None:
        for name in ctx.named_offsets():
            if name.startswith("usrloc:") and name[7:] not in _domains:
                get_domain(name[7:])
    return [_domains[n] for n in sorted(_domains)]


def _timer() -> None:
    """Timer process, every timer_interval: expiry and db_mode 2 write-back."""
    for d in _all_domains():
        try:
            d.timer()
        except db.DbError:
            pass                                # logged by db.guarded; retried next round


# ---- RPC ------------------------------------------------------------------------------------

def _contact_info(c: Contact, now: float) -> dict[str, Any]:
    if c.expires == 0:
        exp: Any = "permanent"
    elif c.expires <= now:
        exp = "expired"
    else:
        exp = int(c.expires - now)
    return {"Contact": {
        "Address": c.c, "Expires": exp, "Q": float(q_text(c.q)), "Call-ID": c.callid,
        "CSeq": c.cseq, "User-Agent": c.user_agent, "Received": c.received or "[not set]",
        "Path": c.path or "[not set]", "State": ("CS_SYNC", "CS_NEW", "CS_DIRTY",
                                                  "CS_DELETED")[c.state],
        "Flags": c.flags, "CFlags": c.cflags, "Socket": c.socket or "[not set]",
        "Methods": c.methods & 0xFFFFFFFF if c.methods != -1 else 4294967295,
        "Ruid": c.ruid, "Instance": c.instance or "[not set]", "Reg-Id": c.reg_id,
        "Server-Id": 0, "Tcpconn-Id": c.conn_id or -1, "Keepalive": 0,
        "Last-Keepalive": c.last_modified, "KA-Roundtrip": 0,
        "Last-Modified": c.last_modified,
    }}


def _rpc_domain(name: str) -> UDomain:
    for d in _all_domains():
        if d.name == name:
            return d
    raise RpcFault(500, "Domain not found")


def _rpc_guard(what: str, fn: Any) -> Any:
    try:
        return fn()
    except db.DbError as exc:
        raise RpcFault(500, f"{what}: database error: {exc}") from None
    except (ShmError, RecordTooLarge) as exc:
        raise RpcFault(500, f"{what}: {exc}") from None


def rpc_dump(mode: str | None = None) -> dict[str, Any]:
    """ul.dump [brief]: every domain, AoR and contact."""
    now = time.time()
    brief = mode == "brief"
    domains = []
    for d in _all_domains():
        recs = _rpc_guard("ul.dump", d.dump)
        aors = []
        for aor, cts in recs.items():
            contacts = ([{"Contact": {"Address": c.c}} for c in cts] if brief
                        else [_contact_info(c, now) for c in cts])
            aors.append({"Info": {"AoR": aor, "HashID": aor_hash(aor),
                                  "Contacts": contacts}})
        size = d.table.nbuckets if d.table is not None else 0
        domains.append({"Domain": {"Domain": d.name, "Size": size, "AoRs": aors,
                                   "Stats": {"Records": len(aors), "Max-Slots": 1}}})
    return {"Domains": domains}


def rpc_lookup(table: str, aor: str) -> dict[str, Any]:
    """ul.lookup table aor: the contacts of one AoR."""
    d = _rpc_domain(table)
    cts = _rpc_guard("ul.lookup", lambda: d.get(_norm_aor(aor)))
    if not cts:
        raise RpcFault(404, "AOR not found in location table")
    now = time.time()
    return {"AoR": _norm_aor(aor), "Contacts": [_contact_info(c, now) for c in cts]}


def rpc_rm(table: str, aor: str) -> dict[str, Any]:
    """ul.rm table aor: delete an AoR with all its contacts."""
    d = _rpc_domain(table)
    if not _rpc_guard("ul.rm", lambda: d.delete_aor(_norm_aor(aor))):
        raise RpcFault(404, "AOR not found in location table")
    return {}


def rpc_rm_contact(table: str, aor: str, contact: str) -> dict[str, Any]:
    """ul.rm_contact table aor contact: delete one contact of an AoR."""
    d = _rpc_domain(table)
    found: list[Contact] = []

    def drop(cts: list[Contact]) -> list[Contact]:
        keep = [c for c in cts if c.c != contact]
        found.extend(c for c in cts if c.c == contact)
        return keep

    _rpc_guard("ul.rm_contact", lambda: d.update(_norm_aor(aor), drop))
    if not found:
        raise RpcFault(404, "Contact not found")
    return {}


def _dot(v: Any) -> str:
    s = "" if v is None else str(v)
    return "" if s in ("0", ".") else s


def rpc_add(table: str, aor: str, contact: str, expires: int, q: float, path: str,
            flags: int, cflags: int, methods: int, received: str | None = None,
            socket: str | None = None) -> dict[str, Any]:
    """ul.add table aor contact expires q path flags cflags methods [received [socket]]:
    add or replace a contact (expires 0 = permanent)."""
    d = _rpc_domain(table)
    now = int(time.time())
    qi = -1 if q < 0 else max(0, min(1000, int(round(q * 1000))))

    def add(cts: list[Contact]) -> list[Contact]:
        old = [c for c in cts if c.c == contact]
        keep = [c for c in cts if c.c != contact]
        ruid = old[0].ruid if old else new_ruid()
        keep.append(Contact(c=contact, expires=now + expires if expires > 0 else 0, q=qi,
                            callid="dfjrewr12386fd6-343@kamailio.mi", cseq=1, flags=flags,
                            cflags=cflags, user_agent="SIP Router MI Server",
                            received=_dot(received), path=_dot(path),
                            socket=_dot(socket), methods=methods, ruid=ruid,
                            last_modified=now))
        return keep

    _rpc_guard("ul.add", lambda: d.update(_norm_aor(aor), add))
    return {}


def rpc_flush() -> dict[str, Any]:
    """ul.flush: run the expiry / write-back now."""
    for d in _all_domains():
        _rpc_guard("ul.flush", d.flush)
    return {}


def _db_count(table: str, what: str) -> int:
    cfg = _state["cfg"] or _settings()
    if cfg.db_mode == NO_DB:
        raise RpcFault(500, "Command is not supported in db_mode=0")
    d = _rpc_domain(table)
    assert d.db is not None
    if what == "users":
        return int(_rpc_guard("ul.db_users", d.db.count_users))
    return int(_rpc_guard("ul.db_contacts", lambda: d.db.count_contacts(what == "expired")))


def rpc_db_users(table: str) -> int:
    """ul.db_users table: number of distinct AoRs in the table."""
    return _db_count(table, "users")


def rpc_db_contacts(table: str) -> int:
    """ul.db_contacts table: number of rows."""
    return _db_count(table, "contacts")


def rpc_db_expired_contacts(table: str) -> int:
    """ul.db_expired_contacts table: number of expired rows."""
    return _db_count(table, "expired")


def _norm_aor(aor: str) -> str:
    """RPC AoRs are written "user@domain"; without use_domain only the user part counts."""
    a = aor.strip()
    for scheme in ("sip:", "sips:"):
        if a.lower().startswith(scheme):
            a = a[len(scheme):]
    if not mod.p.use_domain and "@" in a:
        a = a.split("@", 1)[0]
    return a


mod.rpc("ul.dump", rpc_dump, doc="All records.", params="[brief]")
mod.rpc("ul.lookup", rpc_lookup, doc="table aor: contacts of an AoR.", params="table aor")
mod.rpc("ul.rm", rpc_rm, doc="table aor: remove an AoR.", params="table aor")
mod.rpc("ul.rm_contact", rpc_rm_contact, doc="table aor contact: remove one contact.",
        params="table aor contact")
mod.rpc("ul.flush", rpc_flush, doc="Write dirty records to the DB.")
mod.rpc("ul.add", rpc_add, doc="table aor contact expires q path flags cflags methods "
        "[received [socket]].",
        params="table aor contact expires q path flags cflags methods [received [socket]]")
mod.rpc("ul.db_users", rpc_db_users, doc="table: number of users in the DB.", params="table")
mod.rpc("ul.db_contacts", rpc_db_contacts, doc="table: number of contacts in the DB.",
        params="table")
mod.rpc("ul.db_expired_contacts", rpc_db_expired_contacts,
        doc="table: number of expired contacts in the DB.", params="table")

mod.event_routes.append("usrloc:contact-expired")

__all__ = ["Contact", "UDomain", "UsrlocApi", "api", "get_domain", "mod"]
