"""Database URLs and engines: one SQLAlchemy engine per process and URL, created after fork.

Runs in: every process that touches a database (SIP workers, the timer process for usrloc
write-back and expiry, the ctl process for RPCs, the master only briefly in mod_init for
preloading, disposing the engine before it forks). Shared state: none; engines are private to
the process that created them (`get_engine` checks the pid, so an engine inherited through
fork is dropped without closing the parent's connections).

URLs (Kamailio's forms are mapped, SQLAlchemy's pass through):
  mysql://user:pass@host[:port]/db     -> mysql+pymysql://...     (PyMySQL: pure Python)
  postgres://... | postgresql://...    -> postgresql+psycopg://... (psycopg 3, binary wheels)
  sqlite:///path | sqlite:////abs      -> sqlite:///path          (stdlib, embedded default)
PyMySQL and psycopg are chosen because they install from wheels with no client library and
both support SQLAlchemy 2's pool_pre_ping, which is how a restarted server is survived: a
dead pooled connection is detected on checkout and replaced.
"""
from __future__ import annotations

import logging
import os
import threading

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///pykam.sqlite"

_SCHEMES = {
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "pgsql": "postgresql+psycopg",
}

_engines: dict[str, Engine] = {}
_owner_pid = os.getpid()
_lock = threading.Lock()


class DbUrlError(ValueError):
    """A db_url that cannot be used (unknown scheme, syntax)."""


def sqlalchemy_url(url: str) -> URL:
    """Map a Kamailio db_url to a SQLAlchemy URL (see the module docstring)."""
    text = url.strip()
    scheme, sep, _rest = text.partition("://")
    if not sep:
        raise DbUrlError(f"bad db_url \"{url}\": expected scheme://...")
    low = scheme.lower()
    if low in _SCHEMES:
        text = _SCHEMES[low] + text[len(scheme):]
    elif low == "text" or low == "db_text":
        raise DbUrlError(f"db_url \"{url}\": text databases are not supported")
    try:
        return make_url(text)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError and ValueError from the parser
        raise DbUrlError(f"bad db_url \"{url}\": {exc}") from None


def display_url(url: str) -> str:
    """The URL without its password, for logs."""
    try:
        return sqlalchemy_url(url).render_as_string(hide_password=True)
    except DbUrlError:
        return "<bad db_url>"


def _make_engine(url: str) -> Engine:
    sa_url = sqlalchemy_url(url)
    kwargs: dict = {"pool_pre_ping": True}
    if sa_url.get_backend_name() == "sqlite":
        # file databases shared by several processes: no pooling across fork, wait on locks
        kwargs = {"poolclass": NullPool, "connect_args": {"timeout": 10}}
    else:
        kwargs.update(pool_size=2, max_overflow=2, pool_recycle=3600,
                      connect_args={"connect_timeout": 5})
    engine = create_engine(sa_url, **kwargs)
    if sa_url.get_backend_name() == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
    return engine


def get_engine(url: str) -> Engine:
    """This process's engine for URL (created on first use: call it after fork)."""
    global _owner_pid
    pid = os.getpid()
    with _lock:
        if pid != _owner_pid:
            # inherited from the parent: forget without closing the parent's sockets
            for inherited in _engines.values():
                inherited.dispose(close=False)
            _engines.clear()
            _owner_pid = pid
        eng = _engines.get(url)
        if eng is None:
            eng = _engines[url] = _make_engine(url)
            log.debug("db: engine for %s in pid %s", display_url(url), pid)
        return eng


def dispose_engine(url: str | None = None) -> None:
    """Close this process's pooled connections (all URLs, or one). The master calls it after
    loading data in mod_init so no connection crosses fork."""
    with _lock:
        if os.getpid() != _owner_pid:
            return
        for key in [url] if url is not None else list(_engines):
            old = _engines.pop(key, None)
            if old is not None:
                old.dispose()


__all__ = ["DEFAULT_URL", "DbUrlError", "display_url", "dispose_engine", "get_engine",
           "sqlalchemy_url"]
