"""Database layer (SQLAlchemy Core, 2.0 style): Kamailio's tables, db_url mapping, engines.

Runs in: any process; engines are per process and created after fork (see engine.py).

    from sipcore import db
    eng = db.get_engine(url)                 # child_init / first use, never before fork
    db.create_all(url)                       # pykamctl db create
    db.guarded("what", fn)                   # log + DbError instead of a driver exception
    db.schema.location / db.schema.location_table("location_pbx")
"""
from __future__ import annotations

from sipcore.db import schema
from sipcore.db.engine import (
                               DEFAULT_URL,
                               DbUrlError,
                               display_url,
                               dispose_engine,
                               get_engine,
                               sqlalchemy_url,
)
from sipcore.db.ops import DbError, check_version, create_all, drop_all, guarded, table_version

__all__ = ["DEFAULT_URL", "DbError", "DbUrlError", "check_version", "create_all",
           "display_url", "dispose_engine", "drop_all", "get_engine", "guarded", "schema",
           "sqlalchemy_url", "table_version"]
