"""sipcore.db: URL mapping, per-process engines, schema creation with Kamailio's names and
version rows, reconnection after the server drops the connection, errors as DbError - on
SQLite and, when their servers answer, PostgreSQL and MariaDB (on 127.0.0.1 unless
PYKAM_TEST_POSTGRES / PYKAM_TEST_MYSQL say otherwise: tests/services.py).

Each test works in its own database (MariaDB) or schema (PostgreSQL) or file (SQLite) with a
unique name and drops it afterwards. `temp_db(kind)` is shared with the usrloc/registrar tests.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, inspect, select, text
from sqlalchemy.engine import make_url

from sipcore import db
from sipcore.db import schema
from tests.services import DB_URLS, admin_url, require_db

KINDS = ("sqlite", "postgres", "mysql")


@contextlib.contextmanager
def temp_db(kind: str, tmp_path: Path) -> Iterator[str]:
    """A Kamailio-style db_url to a fresh, uniquely named database/schema, dropped after.
    Skips (group postgresql / mariadb) when that server does not answer."""
    require_db(kind)
    name = f"pykam_t_{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / (name + '.sqlite')}"
        db.dispose_engine()
        return
    admin = create_engine(admin_url(kind), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if kind == "postgres":
                conn.execute(text(f'CREATE SCHEMA "{name}"'))
            else:
                conn.execute(text(f"CREATE DATABASE `{name}`"))
        base = make_url(DB_URLS[kind])
        if kind == "postgres":
            url = base.update_query_dict({"options": f"-csearch_path={name}"})
        else:
            url = base.set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        db.dispose_engine()
        with admin.connect() as conn:
            if kind == "postgres":
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(params=KINDS)
def db_url(request, tmp_path) -> Iterator[str]:
    with temp_db(request.param, tmp_path) as url:
        yield url


# ---- URL mapping -------------------------------------------------------------------------------

@pytest.mark.parametrize("url,want", [
    ("mysql://kamailio:kamailiorw@localhost/kamailio",
     "mysql+pymysql://kamailio:kamailiorw@localhost/kamailio"),
    ("postgres://u:p@db.example:5433/k", "postgresql+psycopg://u:p@db.example:5433/k"),
    ("postgresql://u@h/k", "postgresql+psycopg://u@h/k"),
    ("sqlite:///var/lib/pykam.db", "sqlite:///var/lib/pykam.db"),
    ("sqlite:////abs/pykam.db", "sqlite:////abs/pykam.db"),
    ("mysql+mysqldb://u@h/k", "mysql+mysqldb://u@h/k"),        # SQLAlchemy URLs pass through
])
def test_url_mapping(url, want):
    assert db.sqlalchemy_url(url).render_as_string(hide_password=False) == want


@pytest.mark.parametrize("url", ["nonsense", "text:///etc/kamailio/dbtext", ""])
def test_bad_urls(url):
    with pytest.raises(db.DbUrlError):
        db.sqlalchemy_url(url)


def test_display_url_hides_password():
    assert "secret" not in db.display_url("mysql://u:secret@h/k")


# ---- engines are per process --------------------------------------------------------------------

def test_engine_cached_per_process_and_replaced_after_fork(tmp_path):
    url = f"sqlite:///{tmp_path / 'e.sqlite'}"
    e1 = db.get_engine(url)
    assert db.get_engine(url) is e1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            e2 = db.get_engine(url)
            ok = e2 is not e1
            with e2.connect() as conn:
                ok = ok and conn.execute(text("SELECT 1")).scalar() == 1
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"
    os.close(r)
    assert db.get_engine(url) is e1
    db.dispose_engine(url)


# ---- schema on every backend -------------------------------------------------------------------

REQUIRED = ("version", "subscriber", "location", "location_attrs", "aliases", "dbaliases",
            "domain", "address", "trusted", "dispatcher", "htable", "dialog", "dialog_vars",
            "acc", "missed_calls", "dialplan", "speed_dial", "uacreg")


def test_create_all_tables_columns_and_versions(db_url):
    created = db.create_all(db_url)
    assert set(REQUIRED) <= set(created)
    insp = inspect(db.get_engine(db_url))
    names = set(insp.get_table_names())
    assert set(REQUIRED) <= names
    loc_cols = {c["name"] for c in insp.get_columns("location")}
    assert {"ruid", "username", "domain", "contact", "received", "path", "expires", "q",
            "callid", "cseq", "last_modified", "flags", "cflags", "user_agent", "socket",
            "methods", "instance", "reg_id", "server_id", "connection_id", "keepalive",
            "partition"} == loc_cols - {"id"}
    sub_cols = {c["name"] for c in insp.get_columns("subscriber")}
    assert {"id", "username", "domain", "password", "ha1", "ha1b"} == sub_cols
    assert any(ix["unique"] and ix["column_names"] == ["ruid"]
               for ix in insp.get_indexes("location"))
    for table, version in (("location", 9), ("subscriber", 7), ("version", 1),
                           ("dispatcher", 4), ("dialog", 7), ("acc", 5), ("uacreg", 5)):
        assert db.table_version(db_url, table) == version
        assert schema.VERSIONS[table] == version
    db.check_version(db_url, "location")
    # idempotent: a second create keeps one version row per table
    db.create_all(db_url)
    with db.get_engine(db_url).connect() as conn:
        n = conn.execute(select(schema.version.c.id)
                         .where(schema.version.c.table_name == "location")).all()
    assert len(n) == 1
    db.drop_all(db_url)
    assert not set(REQUIRED) & set(inspect(db.get_engine(db_url)).get_table_names())


def test_subscriber_defaults_and_bound_parameters(db_url):
    db.create_all(db_url, ["subscriber"])
    sub = schema.subscriber
    evil = "alice'; DROP TABLE subscriber; --"
    with db.get_engine(db_url).begin() as conn:
        conn.execute(insert(sub).values(username=evil, domain="example.com"))
    with db.get_engine(db_url).connect() as conn:
        row = conn.execute(select(sub).where(sub.c.username == evil)).one()
    assert row.domain == "example.com" and row.ha1 == "" and row.password == ""


def test_check_version_mismatch_is_an_error(db_url):
    db.create_all(db_url, ["location"])
    ver = schema.version
    with db.get_engine(db_url).begin() as conn:
        conn.execute(ver.update().where(ver.c.table_name == "location").values(table_version=8))
    with pytest.raises(db.DbError, match="expected 9"):
        db.check_version(db_url, "location")


def test_failures_become_dberror_not_exceptions_of_the_driver(db_url):
    # no tables were created: a query fails, is logged and raised as DbError
    with pytest.raises(db.DbError):
        db.table_version(db_url, "location")


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_reconnects_after_the_server_drops_the_connection(kind, tmp_path):
    """What a server restart does to a pooled connection: the server ends it. pool_pre_ping
    notices on the next checkout and opens a new one (the shared servers are never stopped)."""
    with temp_db(kind, tmp_path) as url:
        db.create_all(url, ["location"])
        eng = db.get_engine(url)
        with eng.connect() as conn:
            if kind == "postgres":
                pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            else:
                pid = conn.execute(text("SELECT CONNECTION_ID()")).scalar()
        admin = create_engine(admin_url(kind), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if kind == "postgres":
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            else:
                conn.execute(text(f"KILL {int(pid)}"))
        admin.dispose()
        assert db.table_version(url, "location") == 9       # same engine, new connection


def test_unreachable_server_is_a_dberror(tmp_path):
    url = "postgres://postgres@127.0.0.1:1/none"               # nothing listens on port 1
    with pytest.raises(db.DbError):
        db.table_version(url, "location")
    db.dispose_engine(url)
