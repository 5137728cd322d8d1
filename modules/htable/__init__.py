"""htable: named hash tables in shared memory, with expiry, DB load/save, RPC and event routes.

Runs in: the master (modparam parsing, mod_init: tables created in shm and loaded from the DB,
event_route[htable:mod-init] at PROC_INIT; destroy: dbmode=1 write-back), every SIP worker
($sht & co, sht_* functions), the timer process (expiry sweep every timer_interval, running
event_route[htable:expired:NAME] for each expired item after the bucket locks are released),
the ctl process (htable.* RPCs).
Shared state: per table one ShmHashTable "htable:NAME" and one LockSet "htable:NAME:locks"
(see ht_api for the record layout and the lock order).
Kamailio equivalent: modules/htable (htable.c, ht_api.c, ht_var.c, ht_db.c).
"""
from __future__ import annotations

import logging
import re
from typing import Any

from modules.htable import ht_api, ht_db, ht_rpc, ht_var
from modules.htable.ht_api import HTable
from modules.htable.ht_spec import TableSpec, parse_table_spec
from sipcore import db
from sipcore.mod import Fx, ModContext, Module
from sipcore.route.ctx import RouteCtx

log = logging.getLogger(__name__)

mod = Module("htable", summary="Shared-memory hash tables with expiry, DB persistence and RPC.")

# ---- parameters -------------------------------------------------------------------------------
mod.param("htable", str, (), multi=True, validator=parse_table_spec,
          doc="Table definition \"name=>size=4;autoexpire=0;updateexpire=1;initval=N;"
              "dbtable=T;cols='k,v';dbmode=0\"; one per table.")
mod.param("db_url", str, None, doc="Database used by tables with dbtable (load at start, "
          "write back at shutdown with dbmode=1).")
mod.param("key_name_column", str, "key_name", doc="Column with the item name.")
mod.param("key_type_column", str, "key_type", doc="Column with the key type (0 simple, 1 array).")
mod.param("value_type_column", str, "value_type", doc="Column with the value type (0 str, 1 int).")
mod.param("key_value_column", str, "key_value", doc="Column with the value.")
mod.param("expires_column", str, "expires", doc="Column with the expiry (unix time).")
mod.param("array_size_suffix", str, "::size", doc="Suffix of the item holding an array's size.")
mod.param("fetch_rows", int, 100, doc="Rows per DB fetch (accepted; rows are streamed).")
mod.param("timer_interval", int, 20, doc="Seconds between expiry sweeps (timer process).")
mod.param("db_expires", int, 0, doc="1: load and save the expires column.")
mod.param("enable_dmq", int, 0, doc="DMQ replication (not supported: must stay 0).")
mod.param("dmq_init_sync", int, 0, doc="DMQ initial sync (not supported: must stay 0).")
mod.param("timer_procs", int, 0, doc="Own expiry processes (accepted; the timer process "
          "does the sweeps).")
mod.param("event_callback", str, "", doc="KEMI function for the events (accepted, unused).")
mod.param("event_callback_mode", int, 0, doc="0: htable:mod-init runs in the master after "
          "module init; 1: in the first SIP worker.")

mod.event_routes.extend(["htable:mod-init", "htable:expired"])


def _specs() -> list[TableSpec]:
    return list(mod.p.htable)


def _known(name: str) -> bool:
    return any(s.name == name for s in _specs())


for _name, (_factory, _doc) in ht_var.factories(_known).items():
    mod.pv(_name, _factory, doc=_doc)


# ---- lifecycle ----------------------------------------------------------------------------------
_state: dict[str, Any] = {"modinit_done": False}


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: tables in shm, DB load, expiry timer."""
    from sipcore.errors import ModuleError

    specs = _specs()
    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ModuleError(f"htable: table {min(dup)} defined twice")
    if int(mod.p.enable_dmq):
        raise ModuleError("htable: enable_dmq is not supported")
    ht_api.create_tables(ctx.require_shm(), specs)
    ht_api.ITERATORS.clear()
    _state["modinit_done"] = False
    for spec in specs:
        if spec.dbtable and mod.p.db_url:
            try:
                n = ht_db.load(ht_api.TABLES[spec.name], mod.p.db_url, mod.p)
                log.info("htable: loaded %s items into %s from %s", n, spec.name, spec.dbtable)
            except db.DbError as exc:
                raise ModuleError(f"htable: cannot load table {spec.name}: {exc}") from None
    if specs:
        ctx.timers.register_timer("htable:expire", sweep_expired,
                             max(1, int(mod.p.timer_interval)) * 1000)


@mod.on_child_init
def _child_init(ctx: ModContext, rank: int) -> None:
    """event_route[htable:mod-init]: once, in the master (PROC_INIT, mode 0) or the first SIP
    worker (mode 1, and the single-process harness)."""
    from sipcore.proc.ranks import PROC_INIT, PROC_SIPINIT

    mode = int(mod.p.event_callback_mode)
    if _state["modinit_done"]:
        return
    if (rank == PROC_INIT and mode == 0) or rank == PROC_SIPINIT:
        _state["modinit_done"] = True
        ctx.run_event_route("htable:mod-init")


@mod.on_destroy
def _destroy(ctx: ModContext) -> None:
    """Master, after the children are reaped: dbmode=1 write-back."""
    for t in ht_api.TABLES.values():
        if t.spec.dbmode == 1 and t.spec.dbtable and not t.spec.cols and mod.p.db_url:
            try:
                ht_db.store(t, mod.p.db_url, mod.p)
            except db.DbError:
                pass                                    # logged by db.guarded


def sweep_expired() -> int:
    """Timer process: remove expired items of every table, then (no lock held) run
    event_route[htable:expired:NAME] for each. Returns the number of expired items."""
    mc = mod.context
    total = 0
    for t in list(ht_api.TABLES.values()):
        expired = t.expire()
        total += len(expired)
        route = f"htable:expired:{t.name}"
        if not expired or mc is None or not mc.has_route("event", route):
            continue
        for it in expired:
            ht_api.EXPIRED_RECORD.append(it)
            try:
                mc.run_event_route(route)
            finally:
                ht_api.EXPIRED_RECORD.pop()
    return total


# ---- functions ---------------------------------------------------------------------------------

def _table(name: str) -> HTable | None:
    t = ht_api.get_table(name)
    if t is None:
        log.error("htable: table %s not found", name)
    return t


def _split(arg: str, fn: str) -> tuple[HTable, str] | None:
    """"table=>rest" arguments of sht_rm_name_re, sht_lock..."""
    name, sep, rest = arg.partition("=>")
    if not sep:
        log.error('htable: %s: "table=>..." expected, got "%s"', fn, arg)
        return None
    t = _table(name.strip())
    return None if t is None else (t, rest)


def _pattern(op: str, val: str, fn: str) -> re.Pattern[str] | str | None:
    if op == "re":
        try:
            return re.compile(val)
        except re.error as exc:
            log.error('htable: %s: bad regular expression "%s": %s', fn, val, exc)
            return None
    if op in ("sw", "eq", "ne"):
        return val
    log.error('htable: %s: unknown operator "%s"', fn, op)
    return None


@mod.function("sht_print", args=())
def ki_sht_print(ctx: RouteCtx) -> int:
    """Log every item of every table (debugging)."""
    for t in ht_api.TABLES.values():
        for it in t.items():
            log.info("htable [%s]: %s = %r", t.name, it.key, it.value)
    return 1


@mod.function("sht_rm", args=(Fx.SPVE, Fx.SPVE))
def ki_sht_rm(ctx: RouteCtx, table: str, key: str) -> int:
    """Delete KEY from TABLE (like assigning $null); 1, or -1 when the table is unknown."""
    t = _table(table)
    if t is None:
        return -1
    t.delete(key)
    return 1


def _rm_re(arg: str, on_values: bool, fn: str) -> int:
    sp = _split(arg, fn)
    if sp is None:
        return -1
    pat = _pattern("re", sp[1], fn)
    if pat is None:
        return -1
    sp[0].remove_where(None if on_values else pat, pat if on_values else None, "re")
    return 1


@mod.function("sht_rm_name_re", args=(Fx.SPVE,))
def ki_sht_rm_name_re(ctx: RouteCtx, arg: str) -> int:
    """"table=>regexp": delete the items whose name matches."""
    return _rm_re(arg, False, "sht_rm_name_re")


@mod.function("sht_rm_value_re", args=(Fx.SPVE,))
def ki_sht_rm_value_re(ctx: RouteCtx, arg: str) -> int:
    """"table=>regexp": delete the items whose string value matches."""
    return _rm_re(arg, True, "sht_rm_value_re")


def _rm_op(table: str, op: str, val: str, on_values: bool, fn: str) -> int:
    t = _table(table)
    if t is None or op not in ("re", "sw"):
        if t is not None:
            log.error('htable: %s: operator must be re or sw, got "%s"', fn, op)
        return -1
    pat = _pattern(op, val, fn)
    if pat is None:
        return -1
    t.remove_where(None if on_values else pat, pat if on_values else None, op)
    return 1


@mod.function("sht_rm_name", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE))
def ki_sht_rm_name(ctx: RouteCtx, table: str, op: str, val: str) -> int:
    """Delete items whose name matches VAL with OP "re" (regex) or "sw" (starts with)."""
    return _rm_op(table, op, val, False, "sht_rm_name")


@mod.function("sht_rm_value", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE))
def ki_sht_rm_value(ctx: RouteCtx, table: str, op: str, val: str) -> int:
    """Delete items whose string value matches VAL with OP "re" or "sw"."""
    return _rm_op(table, op, val, True, "sht_rm_value")


def _match(table: str, op: str, val: str, on_values: bool, fn: str) -> int:
    t = _table(table)
    if t is None:
        return -1
    pat = _pattern(op, val, fn)
    if pat is None:
        return -1
    for it in t.items():
        target = it.value if on_values else it.key
        if isinstance(target, str) and ht_api.match_op(op, pat, target):
            return 1
    return -1


@mod.function("sht_match_name", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE))
def ki_sht_match_name(ctx: RouteCtx, table: str, op: str, val: str) -> int:
    """1 if some item name matches VAL with OP eq, ne, re or sw; -1 otherwise."""
    return _match(table, op, val, False, "sht_match_name")


@mod.function("sht_has_name", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE))
def ki_sht_has_name(ctx: RouteCtx, table: str, op: str, val: str) -> int:
    """Alias of sht_match_name."""
    return _match(table, op, val, False, "sht_has_name")


@mod.function("sht_match_str_value", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE))
def ki_sht_match_str_value(ctx: RouteCtx, table: str, op: str, val: str) -> int:
    """1 if some string value matches VAL with OP eq, ne, re or sw; -1 otherwise."""
    return _match(table, op, val, True, "sht_match_str_value")


@mod.function("sht_has_str_value", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE))
def ki_sht_has_str_value(ctx: RouteCtx, table: str, op: str, val: str) -> int:
    """Alias of sht_match_str_value."""
    return _match(table, op, val, True, "sht_has_str_value")


@mod.function("sht_setxs", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE, Fx.IGP))
def ki_sht_setxs(ctx: RouteCtx, table: str, key: str, sval: str, expire: int) -> int:
    """Set a string item with its own expire (seconds, 0 = never)."""
    t = _table(table)
    if t is None:
        return -1
    t.set_ex(key, sval, expire)
    return 1


@mod.function("sht_setxi", args=(Fx.SPVE, Fx.SPVE, Fx.IGP, Fx.IGP))
def ki_sht_setxi(ctx: RouteCtx, table: str, key: str, ival: int, expire: int) -> int:
    """Set an integer item with its own expire (seconds, 0 = never)."""
    t = _table(table)
    if t is None:
        return -1
    t.set_ex(key, ival, expire)
    return 1


@mod.function("sht_reset", args=(Fx.SPVE,))
def ki_sht_reset(ctx: RouteCtx, table: str) -> int:
    """Delete every item of TABLE."""
    t = _table(table)
    if t is None:
        return -1
    t.reset()
    return 1


@mod.function("sht_lock", args=(Fx.SPVE,))
def ki_sht_lock(ctx: RouteCtx, arg: str) -> int:
    """"table=>key": lock the slot of key (robust; re-entrant within this process)."""
    sp = _split(arg, "sht_lock")
    if sp is None:
        return -1
    sp[0].script_lock(sp[1])
    return 1


@mod.function("sht_unlock", args=(Fx.SPVE,))
def ki_sht_unlock(ctx: RouteCtx, arg: str) -> int:
    """"table=>key": release a lock taken by sht_lock; -1 when this process does not hold it."""
    sp = _split(arg, "sht_unlock")
    if sp is None:
        return -1
    return 1 if sp[0].script_unlock(sp[1]) else -1


# ---- iterators ----------------------------------------------------------------------------------

@mod.function("sht_iterator_start", args=(Fx.SPVE, Fx.SPVE))
def ki_sht_iterator_start(ctx: RouteCtx, iname: str, table: str) -> int:
    """Start iterator INAME over a snapshot of TABLE (at most 4 at a time per process)."""
    t = _table(table)
    if t is None:
        return -1
    if iname not in ht_api.ITERATORS and len(ht_api.ITERATORS) >= ht_api.MAX_ITERATORS:
        log.error("htable: too many iterators (max %s)", ht_api.MAX_ITERATORS)
        return -1
    ht_api.ITERATORS[iname] = ht_api.IterState(t, list(t.items()))
    return 1


def _iter(iname: str) -> ht_api.IterState | None:
    st = ht_api.ITERATORS.get(iname)
    if st is None:
        log.error("htable: iterator %s not started", iname)
    return st


@mod.function("sht_iterator_next", args=(Fx.SPVE,))
def ki_sht_iterator_next(ctx: RouteCtx, iname: str) -> int:
    """Move to the next item that still exists; -1 at the end."""
    st = _iter(iname)
    if st is None:
        return -1
    while st.pos + 1 < len(st.items):
        st.pos += 1
        cur = st.items[st.pos]
        if st.table.get(cur.key) is not None:
            return 1
    st.pos = len(st.items)
    return -1


@mod.function("sht_iterator_end", args=(Fx.SPVE,))
def ki_sht_iterator_end(ctx: RouteCtx, iname: str) -> int:
    """Release iterator INAME."""
    return 1 if ht_api.ITERATORS.pop(iname, None) is not None else -1


@mod.function("sht_iterator_rm", args=(Fx.SPVE,))
def ki_sht_iterator_rm(ctx: RouteCtx, iname: str) -> int:
    """Delete the current item."""
    st = _iter(iname)
    cur = st.current if st is not None else None
    if st is None or cur is None:
        return -1
    st.table.delete(cur.key)
    return 1


def _iter_set(iname: str, value: int | str) -> int:
    st = _iter(iname)
    cur = st.current if st is not None else None
    if st is None or cur is None:
        return -1
    st.table.set(cur.key, value)
    st.items[st.pos] = ht_api.Item(cur.key, value, cur.expires)
    return 1


@mod.function("sht_iterator_sets", args=(Fx.SPVE, Fx.SPVE))
def ki_sht_iterator_sets(ctx: RouteCtx, iname: str, sval: str) -> int:
    """Set the current item to a string."""
    return _iter_set(iname, sval)


@mod.function("sht_iterator_seti", args=(Fx.SPVE, Fx.IGP))
def ki_sht_iterator_seti(ctx: RouteCtx, iname: str, ival: int) -> int:
    """Set the current item to an integer."""
    return _iter_set(iname, ival)


@mod.function("sht_iterator_setex", args=(Fx.SPVE, Fx.IGP))
def ki_sht_iterator_setex(ctx: RouteCtx, iname: str, expire: int) -> int:
    """Set the expire (seconds) of the current item."""
    st = _iter(iname)
    cur = st.current if st is not None else None
    if st is None or cur is None:
        return -1
    return 1 if st.table.set_expire(cur.key, expire) else -1


# ---- RPC -----------------------------------------------------------------------------------------
mod.rpc("htable.get", ht_rpc.get, doc="Get one item.", params="table key")
mod.rpc("htable.delete", ht_rpc.delete, doc="Delete one item.", params="table key")
mod.rpc("htable.sets", ht_rpc.sets, doc="Set a string item.", params="table key value")
mod.rpc("htable.seti", ht_rpc.seti, doc="Set an integer item.", params="table key value")
mod.rpc("htable.setex", ht_rpc.setex, doc="Set the expire of an item.", params="table key expire")
mod.rpc("htable.setxs", ht_rpc.setxs, doc="Set a string item with expire.",
        params="table key value expire")
mod.rpc("htable.setxi", ht_rpc.setxi, doc="Set an integer item with expire.",
        params="table key value expire")
mod.rpc("htable.dump", ht_rpc.dump, doc="Dump the items of a table, slot by slot.",
        params="table")
mod.rpc("htable.flush", ht_rpc.flush, doc="Delete every item of a table.", params="table")
mod.rpc("htable.listTables", ht_rpc.list_tables, doc="List the table definitions.")
mod.rpc("htable.stats", ht_rpc.stats, doc="Items per table and per slot.")
_reload, _store = ht_rpc.make_db_rpcs(mod.p)
mod.rpc("htable.reload", _reload, doc="Reload a table from its dbtable.", params="table")
mod.rpc("htable.store", _store, doc="Write a table to its dbtable.", params="table")

__all__ = ["mod", "sweep_expired"]
