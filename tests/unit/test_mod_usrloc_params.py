"""usrloc parameters against the database they act on (SQLite files here; the same SQL runs
on PostgreSQL and MariaDB in test_mod_usrloc.py): version_table, db_timer_clean,
rm_expired_delay, db_clean_tcp."""
from __future__ import annotations

import pytest
from sqlalchemy import update

import modules.usrloc as ul
from modules.usrloc.ul_db import LocationDb
from sipcore import db
from sipcore.db import schema
from sipcore.errors import ModuleError

from .test_db_engine import temp_db
from .test_mod_usrloc import contact, harness


def rows(url: str) -> list[tuple[str, str]]:
    return sorted((c.c, aor) for aor, c in LocationDb(url, "location", False).load_all())


def put(url: str, aor: str, uri: str, ttl: int, socket: str = "") -> None:
    """A row written by someone else (another instance sharing the table)."""
    LocationDb(url, "location", False).insert(aor, contact(uri, ttl=ttl, socket=socket))


def test_version_table_checks_the_location_version(tmp_path):
    with temp_db("sqlite", tmp_path) as url:
        db.create_all(url, ["location"])
        params = f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 1)\n' \
                 'modparam("usrloc", "preload", "location")'
        harness(params)                                   # version 9: starts
        ver = schema.TABLES["version"]
        with db.get_engine(url).begin() as conn:
            conn.execute(update(ver).where(ver.c.table_name == "location")
                         .values(table_version=8))
        db.dispose_engine(url)
        with pytest.raises(ModuleError, match="version 8 .* expected 9"):
            harness(params)
        harness(params + '\nmodparam("usrloc", "version_table", 0)')   # not checked
        with pytest.raises(ModuleError, match="expected 9"):
            harness(params.replace('"db_mode", 1', '"db_mode", 3'))


def test_db_timer_clean_deletes_expired_rows_of_other_instances(tmp_path):
    with temp_db("sqlite", tmp_path) as url:
        db.create_all(url, ["location"])
        base = f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 1)\n' \
               'modparam("usrloc", "db_load", 0)'
        harness(base)
        put(url, "zed", "sip:zed@192.0.2.9", ttl=-5)       # expired, not in our shm
        put(url, "amy", "sip:amy@192.0.2.8", ttl=600)
        ul.get_domain("location").timer()
        assert rows(url) == [("sip:amy@192.0.2.8", "amy"), ("sip:zed@192.0.2.9", "zed")]
        harness(base + '\nmodparam("usrloc", "db_timer_clean", 1)')
        ul.get_domain("location").timer()
        assert rows(url) == [("sip:amy@192.0.2.8", "amy")]


def test_rm_expired_delay_in_db_only_mode(tmp_path):
    with temp_db("sqlite", tmp_path) as url:
        db.create_all(url, ["location"])
        base = f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 3)'
        put(url, "zed", "sip:zed@192.0.2.9", ttl=-5)       # expired 5 s ago
        harness(base + '\nmodparam("usrloc", "rm_expired_delay", 60)')
        ul.get_domain("location").timer()
        assert rows(url) == [("sip:zed@192.0.2.9", "zed")]   # kept for 60 s after expiry
        harness(base)
        ul.get_domain("location").timer()
        assert rows(url) == []


def test_db_clean_tcp_drops_stream_contacts_at_startup(tmp_path):
    with temp_db("sqlite", tmp_path) as url:
        db.create_all(url, ["location"])
        put(url, "amy", "sip:amy@192.0.2.8;transport=tcp", 600, socket="tcp:127.0.0.1:5060")
        put(url, "amy", "sip:amy@192.0.2.8", 600, socket="udp:127.0.0.1:5060")
        put(url, "bob", "sip:bob@192.0.2.7;transport=tls", 600, socket="tls:127.0.0.1:5061")
        params = f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 2)\n' \
                 'modparam("usrloc", "preload", "location")'
        harness(params)
        assert sorted(ul.get_domain("location").dump()) == ["amy", "bob"]
        assert len(rows(url)) == 3
        harness(params + '\nmodparam("usrloc", "db_clean_tcp", 1)')
        dom = ul.get_domain("location")
        assert {a: [c.c for c in cts] for a, cts in dom.dump().items()} == {
            "amy": ["sip:amy@192.0.2.8"]}
        assert rows(url) == [("sip:amy@192.0.2.8", "amy")]


def test_skip_remote_socket_loads_only_our_sockets(tmp_path):
    with temp_db("sqlite", tmp_path) as url:
        db.create_all(url, ["location"])
        put(url, "amy", "sip:amy@192.0.2.8", 600, socket="udp:127.0.0.1:5060")   # ours
        put(url, "bob", "sip:bob@192.0.2.7", 600, socket="udp:10.1.1.1:5060")    # another node
        put(url, "cat", "sip:cat@192.0.2.6", 600)                                # no socket
        params = f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 1)\n' \
                 'modparam("usrloc", "preload", "location")'
        harness(params)
        assert sorted(ul.get_domain("location").dump()) == ["amy", "bob", "cat"]
        harness(params + '\nmodparam("usrloc", "skip_remote_socket", 1)')
        assert sorted(ul.get_domain("location").dump()) == ["amy", "cat"]
        assert len(rows(url)) == 3                           # the other node's row is kept


def test_column_name_params_read_and_write_the_operators_columns(tmp_path):
    from sqlalchemy import text

    from modules.usrloc.ul_db import renamed_table

    with temp_db("sqlite", tmp_path) as url:
        db.create_all(url, ["version"])
        names = {"username": "uname", "contact": "uri", "expires": "exp_time"}
        with db.get_engine(url).begin() as conn:
            renamed_table(schema.location, names).create(conn)
            conn.execute(text("INSERT INTO version (table_name, table_version) "
                              "VALUES ('location', 9)"))
        params = (f'modparam("usrloc", "db_url", "{url}")\nmodparam("usrloc", "db_mode", 1)\n'
                  'modparam("usrloc", "preload", "location")\n'
                  'modparam("usrloc", "user_column", "uname")\n'
                  'modparam("usrloc", "contact_column", "uri")\n'
                  'modparam("usrloc", "expires_column", "exp_time")')
        harness(params)
        ul.get_domain("location").update("amy", lambda cur: cur + [contact("sip:amy@192.0.2.8")])
        with db.get_engine(url).connect() as conn:
            assert conn.execute(text("SELECT uname, uri FROM location")).all() == [
                ("amy", "sip:amy@192.0.2.8")]
        db.dispose_engine(url)
        harness(params)                                  # restart: preloaded from those columns
        (c,) = ul.get_domain("location").get("amy")
        assert c.c == "sip:amy@192.0.2.8" and 3590 <= c.expires_in() <= 3600
