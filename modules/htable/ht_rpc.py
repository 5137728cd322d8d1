"""htable.* RPC commands (Kamailio's names and result shapes).

Runs in: the ctl process. Shared state: the htable shm tables (read and written through
ht_api, each operation under its bucket lock); htable.reload/store open the DB for the call.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modules.htable import ht_api, ht_db
from modules.htable.ht_api import HTable, HtValue
from sipcore import db
from sipcore.errors import RpcFault

Params = Callable[[], Any]


def _table(name: str) -> HTable:
    t = ht_api.get_table(str(name))
    if t is None:
        raise RpcFault(500, "No such htable")
    return t


def _int(v: Any, what: str) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        raise RpcFault(500, f"Invalid {what} (integer expected)") from None


def _type(v: HtValue) -> str:
    return "int" if isinstance(v, int) else "str"


def get(table: str, key: str) -> dict[str, Any]:
    """htable.get table key: {"item": {"name", "value"}}."""
    v = _table(table).get(str(key))
    if v is None:
        raise RpcFault(500, "Key name doesn't exist in htable.")
    return {"item": {"name": str(key), "value": v}}


def delete(table: str, key: str) -> dict[str, Any]:
    """htable.delete table key."""
    if not _table(table).delete(str(key)):
        raise RpcFault(500, "Key name doesn't exist in htable.")
    return {}


def sets(table: str, key: str, value: Any) -> dict[str, Any]:
    """htable.sets table key value: store a string."""
    _table(table).set(str(key), str(value))
    return {}


def seti(table: str, key: str, value: Any) -> dict[str, Any]:
    """htable.seti table key value: store an integer."""
    _table(table).set(str(key), _int(value, "value"))
    return {}


def setex(table: str, key: str, expire: Any) -> dict[str, Any]:
    """htable.setex table key expire: new expire (seconds) of an existing item."""
    if not _table(table).set_expire(str(key), _int(expire, "expire")):
        raise RpcFault(500, "Key name doesn't exist in htable.")
    return {}


def setxs(table: str, key: str, value: Any, expire: Any) -> dict[str, Any]:
    """htable.setxs table key value expire."""
    _table(table).set_ex(str(key), str(value), _int(expire, "expire"))
    return {}


def setxi(table: str, key: str, value: Any, expire: Any) -> dict[str, Any]:
    """htable.setxi table key value expire."""
    _table(table).set_ex(str(key), _int(value, "value"), _int(expire, "expire"))
    return {}


def dump(table: str) -> list[dict[str, Any]]:
    """htable.dump table: the non-empty slots, [{"entry", "size", "slot": [{name, value,
    type}]}], as Kamailio."""
    t = _table(table)
    out: list[dict[str, Any]] = []
    for b in range(t.table.nbuckets):
        cells = t.table.bucket_items(b)
        if not cells:
            continue
        slot = []
        for c in cells:
            v = ht_api.decode(c.value)
            slot.append({"name": c.key.decode("utf-8", "surrogateescape"), "value": v,
                         "type": _type(v)})
        out.append({"entry": b, "size": len(slot), "slot": slot})
    return out


def flush(table: str) -> dict[str, Any]:
    """htable.flush table: delete every item."""
    _table(table).reset()
    return {}


def list_tables() -> list[dict[str, Any]]:
    """htable.listTables: the table definitions."""
    return [{"name": t.name, "dbtable": t.spec.dbtable, "dbmode": t.spec.dbmode,
             "expire": t.spec.autoexpire, "updateexpire": t.spec.updateexpire,
             "size": t.table.nbuckets, "dmqreplicate": t.spec.dmqreplicate}
            for t in ht_api.TABLES.values()]


def stats() -> list[dict[str, Any]]:
    """htable.stats: per table slots, items and the min/max items per slot."""
    out = []
    for t in ht_api.TABLES.values():
        sizes = t.bucket_sizes()
        out.append({"name": t.name, "slots": len(sizes), "all": sum(sizes),
                    "min": min(sizes, default=0), "max": max(sizes, default=0)})
    return out


def make_db_rpcs(params: Any) -> tuple[Callable[[str], dict[str, Any]],
                                       Callable[[str], dict[str, Any]]]:
    """htable.reload / htable.store, bound to the module's parameters."""

    def _db_table(table: str) -> HTable:
        t = _table(table)
        if not t.spec.dbtable or not params.db_url:
            raise RpcFault(500, "Htable has no database table")
        return t

    def reload(table: str) -> dict[str, Any]:
        """htable.reload table: empty the table and load it again from its dbtable."""
        t = _db_table(table)
        before = {it.key: it for it in t.items()}
        t.reset()
        try:
            ht_db.load(t, params.db_url, params)
        except db.DbError as exc:
            for it in before.values():          # put the old content back
                t.set_ex(it.key, it.value, int(it.expires or 0))
            raise RpcFault(500, f"Htable reload failed: {exc}") from None
        return {}

    def store(table: str) -> dict[str, Any]:
        """htable.store table: write the table to its dbtable."""
        t = _db_table(table)
        try:
            ht_db.store(t, params.db_url, params)
        except db.DbError as exc:
            raise RpcFault(500, f"Htable store failed: {exc}") from None
        return {}

    return reload, store
