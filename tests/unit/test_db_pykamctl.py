"""pykamctl db create / subscriber add|passwd|show|rm on SQLite, PostgreSQL and MariaDB."""
from __future__ import annotations

import hashlib

from click.testing import CliRunner
from sqlalchemy import select

from sipcore import db
from sipcore.cli.ops import main
from sipcore.db import schema

from .test_db_engine import db_url  # noqa: F401  (fixture over every backend)


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.output


def test_db_create_and_subscriber_lifecycle(db_url):  # noqa: F811
    code, out = run("db", "create", "--db-url", db_url)
    assert code == 0 and "created/checked" in out
    assert db.table_version(db_url, "subscriber") == 7
    code, out = run("subscriber", "add", "alice@127.0.0.1", "secret", "--db-url", db_url)
    assert code == 0, out
    t = schema.subscriber
    with db.get_engine(db_url).connect() as conn:
        row = conn.execute(select(t).where(t.c.username == "alice")).one()
    assert row.domain == "127.0.0.1" and row.password == "secret"
    assert row.ha1 == hashlib.md5(b"alice:127.0.0.1:secret").hexdigest()
    assert row.ha1b == hashlib.md5(b"alice@127.0.0.1:127.0.0.1:secret").hexdigest()
    code, out = run("subscriber", "add", "alice@127.0.0.1", "x", "--db-url", db_url)
    assert code == 1 and "already exists" in out
    assert run("subscriber", "passwd", "alice@127.0.0.1", "new", "--db-url", db_url)[0] == 0
    code, out = run("subscriber", "show", "--db-url", db_url)
    assert out.strip() == "alice@127.0.0.1\t" + hashlib.md5(b"alice:127.0.0.1:new").hexdigest()
    assert run("subscriber", "rm", "alice@127.0.0.1", "--db-url", db_url)[0] == 0
    code, out = run("subscriber", "rm", "alice@127.0.0.1", "--db-url", db_url)
    assert code == 1 and "no subscriber" in out
    code, out = run("subscriber", "add", "nodomain", "pw", "--db-url", db_url)
    assert code != 0
    assert run("db", "drop", "-y", "--db-url", db_url)[0] == 0
