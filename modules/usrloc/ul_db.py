"""usrloc <-> database: rows of the `location` layout for one usrloc domain (table).

Runs in: SIP workers (db_mode 1 and 3), the timer process (db_mode 2 write-back, expiry
deletes), the master pre-fork (preload, then the engine is disposed), the ctl process (RPCs).
Shared state: none (the database). Every call goes through sipcore.db.guarded(): a failure
is logged and raised as DbError, which callers turn into their failure return.
Updates and deletes are by `ruid` (Kamailio db_ops_ruid=1).
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    Column,
    MetaData,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from sipcore.db import get_engine, guarded, schema

from .ucontact import CS_SYNC, Contact, q_float, q_from_float

# DATETIME columns hold local wall time, as Kamailio writes them (db_time2str uses localtime)
PERMANENT_DT = dt.datetime(2030, 5, 28, 21, 32, 15)   # Kamailio's "never expires" (UL_EXPIRED)


def to_dt(epoch: int) -> dt.datetime:
    if epoch == 0:
        return PERMANENT_DT
    return dt.datetime.fromtimestamp(epoch).replace(microsecond=0)


def from_dt(value: dt.datetime | None) -> int:
    if value is None or value == PERMANENT_DT:
        return 0
    return int(time.mktime(value.timetuple()))


def split_aor(aor: str, use_domain: bool) -> tuple[str, str | None]:
    if use_domain and "@" in aor:
        user, _, domain = aor.rpartition("@")
        return user, domain
    return aor, None


def join_aor(user: str, domain: str | None, use_domain: bool) -> str:
    return f"{user}@{domain}" if use_domain and domain else user


def renamed_table(base: Table, columns: dict[str, str]) -> Table:
    """BASE with some columns under other names in the database (usrloc's *_column params):
    each column keeps its key (the `location` name the code uses) and gets the configured
    name, so every statement reads and writes the operator's column names."""
    cols = [Column(columns.get(c.key, c.name), c.type, key=c.key, primary_key=c.primary_key,
                   nullable=c.nullable, default=c.default, server_default=c.server_default,
                   autoincrement=c.autoincrement)
            for c in base.columns]
    return Table(base.name, MetaData(), *cols)


class LocationDb:
    """DB access for one usrloc domain (table name = domain name)."""

    def __init__(self, url: str, table: str | Table, use_domain: bool,
                 columns: dict[str, str] | None = None) -> None:
        self.url = url
        self.table = table if isinstance(table, Table) else schema.location_table(table)
        if columns:
            self.table = renamed_table(self.table, columns)
        self.use_domain = use_domain

    # ---- conversions --------------------------------------------------------------------
    def row(self, aor: str, ct: Contact) -> dict[str, Any]:
        user, domain = split_aor(aor, self.use_domain)
        return {
            "ruid": ct.ruid, "username": user, "domain": domain, "contact": ct.c,
            "received": ct.received or None, "path": ct.path or None,
            "expires": to_dt(ct.expires), "q": q_float(ct.q), "callid": ct.callid,
            "cseq": ct.cseq, "last_modified": to_dt(ct.last_modified or int(time.time())),
            "flags": ct.flags, "cflags": ct.cflags, "user_agent": ct.user_agent,
            "socket": ct.socket or None,
            "methods": None if ct.methods == -1 else ct.methods,
            "instance": ct.instance or None, "reg_id": ct.reg_id, "server_id": 0,
            "connection_id": ct.conn_id, "keepalive": 0, "partition": 0,
        }

    def contact_of(self, r: Any) -> tuple[str, Contact]:
        aor = join_aor(r.username, r.domain, self.use_domain)
        ct = Contact(
            c=r.contact, expires=from_dt(r.expires), q=q_from_float(r.q),
            callid=r.callid or "", cseq=int(r.cseq or 0), flags=int(r.flags or 0),
            cflags=int(r.cflags or 0), user_agent=r.user_agent or "",
            received=r.received or "", path=r.path or "", socket=r.socket or "",
            methods=-1 if r.methods is None else int(r.methods), instance=r.instance or "",
            reg_id=int(r.reg_id or 0), ruid=r.ruid or "",
            last_modified=from_dt(r.last_modified), conn_id=int(r.connection_id or 0),
            state=CS_SYNC)
        return aor, ct

    def _where_aor(self, aor: str) -> Any:
        t = self.table
        user, domain = split_aor(aor, self.use_domain)
        if self.use_domain:
            return and_(t.c.username == user, t.c.domain == domain)
        return t.c.username == user

    # ---- writes -------------------------------------------------------------------------
    def insert(self, aor: str, ct: Contact) -> None:
        self.write_batch([(aor, ct)], [], [])

    def update(self, aor: str, ct: Contact) -> None:
        self.write_batch([], [(aor, ct)], [])

    def delete_ruids(self, ruids: list[str]) -> None:
        self.write_batch([], [], ruids)

    def write_batch(self, inserts: list[tuple[str, Contact]], updates: list[tuple[str, Contact]],
                    deletes: list[str]) -> None:
        """One transaction: executemany INSERT, UPDATE by ruid (INSERT when no row changed,
        like db_check_update), DELETE by ruid."""
        t = self.table

        def run() -> None:
            with get_engine(self.url).begin() as conn:
                if deletes:
                    conn.execute(delete(t).where(t.c.ruid.in_(deletes)))
                if inserts:
                    conn.execute(insert(t), [self.row(a, c) for a, c in inserts])
                if updates:
                    rows = [self.row(a, c) for a, c in updates]
                    stmt = (update(t).where(t.c.ruid == bindparam("b_ruid"))
                            .values({k: bindparam(k) for k in rows[0] if k != "ruid"}))
                    missing = []
                    for r in rows:
                        res = conn.execute(stmt, {**r, "b_ruid": r["ruid"]})
                        if res.rowcount == 0:
                            missing.append(r)
                    if missing:
                        conn.execute(insert(t), missing)

        guarded(f"usrloc write to {t.name}", run)

    def delete_aor(self, aor: str) -> int:
        t = self.table

        def run() -> int:
            with get_engine(self.url).begin() as conn:
                return conn.execute(delete(t).where(self._where_aor(aor))).rowcount

        return guarded(f"usrloc delete from {t.name}", run)

    def delete_expired(self, now: float | None = None) -> int:
        """Rows whose expires passed (permanent rows carry PERMANENT_DT, never deleted)."""
        t = self.table
        limit = to_dt(int(now if now is not None else time.time()))

        def run() -> int:
            with get_engine(self.url).begin() as conn:
                return conn.execute(delete(t).where(t.c.expires <= limit,
                                                    t.c.expires != PERMANENT_DT)).rowcount

        return guarded(f"usrloc expiry in {t.name}", run)

    def delete_stream_contacts(self) -> int:
        """db_clean_tcp: rows whose socket is TCP, TLS, WS or WSS (their connections are gone
        after a restart)."""
        t = self.table
        cond = or_(*(t.c.socket.like(f"{proto}:%") for proto in ("tcp", "tls", "ws", "wss")))

        def run() -> int:
            with get_engine(self.url).begin() as conn:
                return conn.execute(delete(t).where(cond)).rowcount

        return guarded(f"usrloc TCP clean-up of {t.name}", run)

    # ---- reads --------------------------------------------------------------------------
    def load_all(self, fetch_rows: int = 2000) -> Iterable[tuple[str, Contact]]:
        """Every row (preload), in chunks of fetch_rows."""
        t = self.table

        def run() -> list[tuple[str, Contact]]:
            out = []
            with get_engine(self.url).connect() as conn:
                res = conn.execution_options(yield_per=fetch_rows).execute(
                    select(t).order_by(t.c.id))
                for r in res:
                    out.append(self.contact_of(r))
            return out

        return guarded(f"usrloc load of {t.name}", run)

    def get_aor(self, aor: str) -> list[Contact]:
        t = self.table

        def run() -> list[Contact]:
            with get_engine(self.url).connect() as conn:
                rows = conn.execute(select(t).where(self._where_aor(aor)).order_by(t.c.id))
                return [self.contact_of(r)[1] for r in rows]

        return guarded(f"usrloc query of {t.name}", run)

    def aors(self) -> list[str]:
        t = self.table

        def run() -> list[str]:
            with get_engine(self.url).connect() as conn:
                rows = conn.execute(select(t.c.username, t.c.domain).distinct())
                return [join_aor(r.username, r.domain, self.use_domain) for r in rows]

        return guarded(f"usrloc users of {t.name}", run)

    def count_users(self) -> int:
        t = self.table

        def run() -> int:
            cols = (t.c.username, t.c.domain) if self.use_domain else (t.c.username,)
            sub = select(*cols).distinct().subquery()
            with get_engine(self.url).connect() as conn:
                return int(conn.execute(select(func.count()).select_from(sub)).scalar() or 0)

        return guarded(f"usrloc count of {t.name}", run)

    def count_contacts(self, expired_only: bool = False) -> int:
        t = self.table

        def run() -> int:
            q = select(func.count()).select_from(t)
            if expired_only:
                q = q.where(t.c.expires <= to_dt(int(time.time())), t.c.expires != PERMANENT_DT)
            with get_engine(self.url).connect() as conn:
                return int(conn.execute(q).scalar() or 0)

        return guarded(f"usrloc count of {t.name}", run)

    def create_table(self) -> None:
        """Create this domain's table (tests and pykamctl; Kamailio leaves it to kamdbctl)."""
        def run() -> None:
            with get_engine(self.url).begin() as conn:
                self.table.create(conn, checkfirst=True)

        guarded(f"create {self.table.name}", run)
