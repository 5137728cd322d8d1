"""Credentials from the subscriber table: the HA1 lookup behind www_authorize & co and
is_subscriber (Kamailio auth_db authorize.c, aaa_avps.h).

Runs in: SIP workers (queries, through this process's engine), the master (version check in
mod_init; its engine is disposed before fork). Shared state: none (the database).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, column, select, table

from sipcore import db
from sipcore.pv.vars import avps, parse_avp_name
from sipcore.route.ctx import RouteCtx

log = logging.getLogger(__name__)

SUBSCRIBER_VERSION = 7


@dataclass(frozen=True)
class CredSpec:
    """One load_credentials entry: COLUMN loaded into $avp(AVP)."""

    column: str
    avp: str | int


def parse_load_credentials(text: str) -> list[CredSpec]:
    """`$avp(name)=column;column2` -> [(column, name), (column2, "column2")] (Kamailio
    parse_aaa_avps: a bare column becomes an AVP of the same name)."""
    out: list[CredSpec] = []
    for item in (text or "").split(";"):
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            lhs, _, col = item.partition("=")
            lhs, col = lhs.strip(), col.strip()
            if not (lhs.startswith("$avp(") and lhs.endswith(")")):
                raise ValueError(f"load_credentials: \"{lhs}\" is not an $avp(name)")
            name = parse_avp_name(lhs[len("$avp("):-1])
        else:
            col = item
            name = item
        if not col.replace("_", "").isalnum():
            raise ValueError(f"load_credentials: bad column name \"{col}\"")
        out.append(CredSpec(col, name))
    return out


def table_name(name: str) -> str:
    n = name.strip()
    if not n or not n.replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"bad subscriber table name \"{name}\"")
    return n


@dataclass
class Columns:
    """The configured column names (user_column, domain_column, ...)."""

    user: str = "username"
    domain: str = "domain"
    password: str = "ha1"
    password_2: str = "ha1b"


class Lookup:
    """One query against a subscriber-like table."""

    def __init__(self, url: str, cols: Columns, creds: list[CredSpec], use_domain: bool
                 ) -> None:
        self.url = url
        self.cols = cols
        self.creds = creds
        self.use_domain = use_domain
        self._stmts: dict[tuple[str, str | None], Select] = {}

    def _statement(self, tname: str, password_col: str | None) -> Select:
        """SELECT password_col, credential columns ... WHERE user = :u [AND domain = :d],
        built once per table and password column (then only parameters change)."""
        key = (tname, password_col)
        stmt = self._stmts.get(key)
        if stmt is not None:
            return stmt
        names = [c.column for c in self.creds]
        if password_col is not None:
            names.insert(0, password_col)
        if not names:
            names = [self.cols.user]
        wanted = list(dict.fromkeys(names))             # unique, in order
        t = table(tname, *[column(n) for n in {*wanted, self.cols.user, self.cols.domain}])
        stmt = select(*[t.c[n] for n in wanted]).where(t.c[self.cols.user] == bindparam("u"))
        if self.use_domain:
            stmt = stmt.where(t.c[self.cols.domain] == bindparam("d"))
        stmt = stmt.limit(2)
        self._stmts[key] = stmt
        return stmt

    def fetch(self, tname: str, user: str, domain: str, password_col: str | None
              ) -> dict[str, Any] | None:
        """The row of USER[@DOMAIN] with PASSWORD_COL and the credential columns, or None.
        Raises db.DbError (logged) on a database failure."""
        stmt = self._statement(tname, password_col)
        params = {"u": user, "d": domain} if self.use_domain else {"u": user}

        def run() -> list[dict[str, Any]]:
            with db.get_engine(self.url).connect() as conn:
                return [dict(r) for r in conn.execute(stmt, params).mappings().all()]

        rows = db.guarded(f"auth_db query on {tname}", run)
        if not rows:
            return None
        if len(rows) > 1:
            log.warning("auth_db: %s rows for %s@%s in %s, using one",
                        len(rows), user, domain, tname)
        return rows[0]

    def load_avps(self, ctx: RouteCtx, row: dict[str, Any]) -> None:
        lst = avps(ctx)
        for spec in self.creds:
            value = row.get(spec.column)
            if value is None:
                continue
            lst.add(spec.avp, value if isinstance(value, int) else str(value))


__all__ = [
    "SUBSCRIBER_VERSION",
    "Columns",
    "CredSpec",
    "Lookup",
    "parse_load_credentials",
    "table_name",
]
