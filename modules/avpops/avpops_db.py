"""avpops: AVPs loaded from, stored to and deleted from the preferences table
(`usr_preferences` layout: uuid, username, domain, attribute, type, value).

Runs in: SIP workers (avp_db_load/avp_db_store/avp_db_delete; one engine per process, opened
in child_init) and the master (the table's version check in mod_init).
Shared state: none (the database).
`type` column (Kamailio): bit 1 = integer value, bit 2 = integer attribute name; so 0 string
name and value, 1 string name and integer value, 2 integer name and string value, 3 both
integers.
Kamailio equivalent: modules/avpops/avpops_db.c.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import and_, column, delete, insert, select, table
from sqlalchemy.sql.elements import ColumnElement

from sipcore import db
from sipcore.pv.vars import AvpName

T_INT_VALUE, T_INT_NAME = 1, 2


@dataclass(frozen=True)
class Columns:
    uuid: str = "uuid"
    username: str = "username"
    domain: str = "domain"
    attribute: str = "attribute"
    type: str = "type"
    value: str = "value"


@dataclass(frozen=True)
class Owner:
    """Whose rows: the column/value pairs a row must match (the source of the call)."""

    match: tuple[tuple[str, str], ...]


def _table(name: str, cols: Columns) -> Any:
    return table(name, column(cols.uuid), column(cols.username), column(cols.domain),
                 column(cols.attribute), column(cols.type), column(cols.value),
                 column("last_modified"))


def _where(t: Any, cols: Columns, owner: Owner, name: Optional[AvpName],
           kind: str) -> ColumnElement[bool]:
    conds = [t.c[c] == v for c, v in owner.match]
    if name is not None:
        conds.append(t.c[cols.attribute] == str(name))
    if kind == "i":
        conds.append(t.c[cols.type].in_((T_INT_NAME, T_INT_NAME | T_INT_VALUE)))
    elif kind == "s":
        conds.append(t.c[cols.type].in_((0, T_INT_VALUE)))
    return and_(*conds)


def load(url: str, tname: str, cols: Columns, owner: Owner, name: Optional[AvpName],
         kind: str) -> list[tuple[AvpName, Any]]:
    """The (name, value) pairs of OWNER's rows, NAME only (or every name of KIND), typed by
    the type column. Raises db.DbError (logged)."""
    t = _table(tname, cols)
    stmt = select(t.c[cols.attribute], t.c[cols.type], t.c[cols.value]) \
        .where(_where(t, cols, owner, name, kind))

    def run() -> list[Any]:
        with db.get_engine(url).connect() as conn:
            return list(conn.execute(stmt).all())

    out: list[tuple[AvpName, Any]] = []
    for attr, typ, value in db.guarded(f"avpops load from {tname}", run):
        typ = int(typ or 0)
        aname: AvpName = str(attr)
        if typ & T_INT_NAME:
            try:
                aname = int(attr)
            except ValueError:
                continue                    # a broken row is skipped, as Kamailio does
        val: Any = "" if value is None else str(value)
        if typ & T_INT_VALUE:
            try:
                val = int(val)
            except ValueError:
                continue
        out.append((aname, val))
    return out


def store(url: str, tname: str, cols: Columns, owner: Owner,
          items: list[tuple[AvpName, Any]]) -> int:
    """Insert one row per (name, value) for OWNER; the number of rows written."""
    if not items:
        return 0
    t = _table(tname, cols)
    base = {cols.uuid: "", cols.username: "", cols.domain: "", **dict(owner.match)}
    now = _dt.datetime.now().replace(microsecond=0)
    rows = []
    for name, value in items:
        typ = (T_INT_NAME if isinstance(name, int) else 0) | \
            (T_INT_VALUE if isinstance(value, int) else 0)
        rows.append({**base, cols.attribute: str(name), cols.type: typ,
                     cols.value: str(value), "last_modified": now})

    def run() -> int:
        with db.get_engine(url).begin() as conn:
            conn.execute(insert(t), rows)
        return len(rows)

    return db.guarded(f"avpops store into {tname}", run)


def remove(url: str, tname: str, cols: Columns, owner: Owner, name: Optional[AvpName],
           kind: str) -> int:
    """Delete OWNER's rows for NAME (or every name of KIND); the number deleted."""
    t = _table(tname, cols)
    stmt = delete(t).where(_where(t, cols, owner, name, kind))

    def run() -> int:
        with db.get_engine(url).begin() as conn:
            return int(conn.execute(stmt).rowcount or 0)

    return db.guarded(f"avpops delete from {tname}", run)
