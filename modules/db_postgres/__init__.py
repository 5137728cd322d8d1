"""db_postgres: the PostgreSQL connector, as Kamailio configs load it.

Runs in: nowhere per message. In PyKam every module with a `db_url` reaches its database
through sipcore.db (SQLAlchemy Core, one engine per process after fork); `postgres://` and
`postgresql://` URLs use psycopg 3. Loading this module keeps Kamailio configs valid and carries
its connection parameters.
"""
from sipcore.mod import Module

mod = Module("db_postgres", summary="PostgreSQL connector (postgres:// db_url through psycopg)")
mod.param("retries", int, 2, doc="Times a failed query is retried after reconnecting.")
mod.param("timeout", int, 0, doc="Connect timeout in seconds (0: the driver's default).")
mod.param("bytea_output_escape", int, 1, doc="Accepted for compatibility.")
