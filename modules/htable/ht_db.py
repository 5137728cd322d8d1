"""htable database load (mod_init, htable.reload) and write-back (dbmode=1, at shutdown).

Runs in: the master (load in mod_init before fork, store in destroy after the children are
gone) and the ctl process (htable.reload/htable.store). Every call opens the engine, works,
and disposes it, so no connection crosses a fork. Shared state: the table's shm cells.

Row layout (Kamailio's `htable` table): key_name, key_type (0 simple, 1 array: `name[i]` plus
`name::size`), value_type (0 string, 1 integer), key_value, expires (absolute unix time, with
db_expires=1). With `cols=` the first column is the key and the others are joined with ",".
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import column, delete, insert, select, table

from modules.htable.ht_api import HTable
from sipcore import db


def _t(name: str, cols: list[str]) -> Any:
    return table(name, *[column(c) for c in cols])


def load(ht: HTable, url: str, p: Any) -> int:
    """Add the rows of ht's dbtable to the table; returns the number of items added."""
    spec = ht.spec
    now = time.time()

    def run() -> int:
        n = 0
        eng = db.get_engine(url)
        with eng.connect() as conn:
            if spec.cols:
                t = _t(spec.dbtable, list(spec.cols))
                for row in conn.execute(select(t)).all():
                    key = str(row[0])
                    ht.set(key, ",".join("" if v is None else str(v) for v in row[1:]))
                    n += 1
                return n
            names = [p.key_name_column, p.key_type_column, p.value_type_column,
                     p.key_value_column] + ([p.expires_column] if p.db_expires else [])
            t = _t(spec.dbtable, names)
            sizes: dict[str, int] = {}
            for row in conn.execute(select(t)).all():
                key, ktype, vtype, val = str(row[0]), int(row[1] or 0), int(row[2] or 0), row[3]
                value: int | str = int(val or 0) if vtype == 1 else ("" if val is None
                                                                     else str(val))
                if ktype == 1:
                    idx = sizes.get(key, 0)
                    sizes[key] = idx + 1
                    key = f"{key}[{idx}]"
                exp = int(row[4] or 0) if p.db_expires else 0
                if exp and exp <= now:
                    continue
                if exp:
                    ht.set_ex(key, value, int(exp - now) or 1)
                else:
                    ht.set(key, value)
                n += 1
            for key, size in sizes.items():
                ht.set(f"{key}{p.array_size_suffix}", size)
        return n

    try:
        return db.guarded(f"htable: load of {spec.name} from {spec.dbtable}", run)
    finally:
        db.dispose_engine(url)


def store(ht: HTable, url: str, p: Any) -> int:
    """Replace the rows of ht's dbtable with the table content (dbmode=1, htable.store)."""
    spec = ht.spec
    names = [p.key_name_column, p.key_type_column, p.value_type_column, p.key_value_column]
    if p.db_expires:
        names.append(p.expires_column)
    now = time.time()
    rows = []
    for it in ht.items():
        row = {names[0]: it.key, names[1]: 0, names[2]: 1 if isinstance(it.value, int) else 0,
               names[3]: str(it.value)}
        if p.db_expires:
            row[names[4]] = int(now + it.expires) if it.expires is not None else 0
        rows.append(row)

    def run() -> int:
        t = _t(spec.dbtable, names)
        with db.get_engine(url).begin() as conn:
            conn.execute(delete(t))
            if rows:
                conn.execute(insert(t), rows)
        return len(rows)

    try:
        return db.guarded(f"htable: store of {spec.name} into {spec.dbtable}", run)
    finally:
        db.dispose_engine(url)
