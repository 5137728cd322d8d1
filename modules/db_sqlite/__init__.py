"""db_sqlite: the SQLite connector, as Kamailio configs load it.

Runs in: nowhere per message. In PyKam every module with a `db_url` reaches its database
through sipcore.db (SQLAlchemy Core, one engine per process after fork); `sqlite:///path` uses
Python's sqlite3. Loading this module keeps Kamailio configs valid.
"""
from sipcore.mod import Module

mod = Module("db_sqlite", summary="SQLite connector (sqlite:/// db_url through sqlite3)")
mod.param("db_set", str, None, multi=True, doc="Accepted for compatibility: per-database "
          "PRAGMA settings are not applied yet.")
