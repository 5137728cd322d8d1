"""Schema management and the error boundary for database calls.

Runs in: pykamctl (create/drop), the master (version checks in mod_init), any process that
queries (guarded()). Every statement is SQLAlchemy Core with bound parameters (STYLE rule 8).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from sqlalchemy import Engine, MetaData, Table, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from sipcore.db.engine import DbUrlError, display_url, get_engine
from sipcore.db.schema import TABLES, VERSIONS, tables_for

log = logging.getLogger(__name__)

T = TypeVar("T")


class DbError(Exception):
    """A database operation failed (already logged by guarded())."""


def guarded(what: str, fn: Callable[[], T]) -> T:
    """Run fn(); a database failure is logged (naming WHAT) and raised as DbError, which
    callers turn into their failure return (-1, a 500 reply, an RPC fault). Never lets a
    driver exception reach the worker loop."""
    try:
        return fn()
    except (SQLAlchemyError, DbUrlError, OSError, ImportError) as exc:   # ImportError: no driver
        log.error("db: %s failed: %s: %s", what, type(exc).__name__, _short(exc))
        raise DbError(f"{what}: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _select_tables(tables: dict[str, Table], names: Iterable[str] | None) -> list[Table]:
    if names is None:
        return list(tables.values())
    out = []
    for n in names:
        if n not in tables:
            raise KeyError(f"unknown table {n}")
        out.append(tables[n])
    if "version" not in [t for t in names]:
        out.insert(0, tables["version"])
    return out


def create_all(url: str, names: Iterable[str] | None = None, *, prefix: str = "",
               engine: Engine | None = None) -> list[str]:
    """Create Kamailio's tables (all, or NAMES plus `version`) if missing, and set their
    `version` rows to the 5.6 numbers. Returns the created/checked table names."""
    eng = engine or get_engine(url)
    tables = TABLES if not prefix else tables_for(MetaData(), prefix)
    chosen = _select_tables(tables, list(names) if names is not None else None)
    md_tables = [t for t in chosen]
    ver = tables["version"]

    def run() -> list[str]:
        with eng.begin() as conn:
            for t in md_tables:
                t.create(conn, checkfirst=True)
            for t in md_tables:
                base = t.name[len(prefix):]
                if base not in VERSIONS:
                    continue
                conn.execute(delete(ver).where(ver.c.table_name == base))
                conn.execute(insert(ver).values(table_name=base, table_version=VERSIONS[base]))
        return [t.name for t in md_tables]

    names_done = guarded(f"create tables on {display_url(url)}", run)
    log.info("db: tables ready on %s: %s", display_url(url), ', '.join(names_done))
    return names_done


def drop_all(url: str, names: Iterable[str] | None = None, *, prefix: str = "",
             engine: Engine | None = None) -> None:
    """Drop Kamailio's tables (all, or NAMES) if present."""
    eng = engine or get_engine(url)
    tables = TABLES if not prefix else tables_for(MetaData(), prefix)
    chosen = list(tables.values()) if names is None else [tables[n] for n in names]

    def run() -> None:
        with eng.begin() as conn:
            for t in reversed(chosen):
                t.drop(conn, checkfirst=True)

    guarded(f"drop tables on {display_url(url)}", run)


def table_version(url: str, table: str, *, version_table: Table | None = None) -> int | None:
    """The `version` row of TABLE, or None when absent."""
    ver = version_table if version_table is not None else TABLES["version"]

    def run() -> int | None:
        with get_engine(url).connect() as conn:
            return conn.execute(select(ver.c.table_version)
                                .where(ver.c.table_name == table)).scalar()

    return guarded(f"read version of {table}", run)


def check_version(url: str, table: str, expected: int | None = None) -> None:
    """Kamailio's startup check: the `version` row must equal the 5.6 number (DbError else)."""
    want = VERSIONS[table] if expected is None else expected
    got = table_version(url, table)
    if got != want:
        msg = (f"table {table} has version {got} in {display_url(url)}, expected {want} "
               f"(create it with `pykamctl db create`)")
        log.error("db: %s", msg)
        raise DbError(msg)


__all__ = ["DbError", "check_version", "create_all", "drop_all", "guarded", "table_version"]
