"""Kamailio 5.6 tables as SQLAlchemy Core `Table` objects (names, columns, defaults, indexes).

Runs in: any process (pure declarations, no I/O). Source: `reference/db-schema.md` (the MySQL
flavour of kamdbctl's create scripts); SQLAlchemy renders the portable types per backend
(INTEGER, VARCHAR, TIMESTAMP for DATETIME, REAL for FLOAT...).

`tables_for(metadata)` builds a fresh set on any MetaData (tests use their own names through
`prefix`); `METADATA`/`TABLES` are the default set; `VERSIONS` are the rows of `version`.
"""
from __future__ import annotations

import datetime as _dt

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
)

# table_name -> table_version (Kamailio 5.6)
VERSIONS: dict[str, int] = {
    "version": 1, "subscriber": 7, "aliases": 8, "location": 9, "location_attrs": 1,
    "dbaliases": 1, "domain": 2, "domain_attrs": 1, "trusted": 6, "address": 6,
    "dispatcher": 4, "dialplan": 2, "dialog": 7, "dialog_vars": 1, "htable": 2, "acc": 5,
    "acc_cdrs": 2, "missed_calls": 4, "speed_dial": 2, "uacreg": 5, "usr_preferences": 2,
}

DT_DEFAULT = _dt.datetime(2000, 1, 1, 0, 0, 1)        # '2000-01-01 00:00:01'
EXPIRES_DEFAULT = _dt.datetime(2030, 5, 28, 21, 32, 15)


def _id() -> Column:
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _s(name: str, n: int, default: str | None = "", nullable: bool = False) -> Column:
    return Column(name, String(n), nullable=nullable,
                  server_default=None if default is None else default,
                  default=default)


def _i(name: str, default: int | None = 0, nullable: bool = False) -> Column:
    return Column(name, Integer, nullable=nullable, default=default,
                  server_default=None if default is None else str(default))


def _dt_col(name: str, default: _dt.datetime | None = DT_DEFAULT) -> Column:
    return Column(name, DateTime, nullable=False, default=default)


def _location_like(md: MetaData, name: str, contact_len: int, received_len: int,
                   p: str) -> Table:
    return Table(
        name, md, _id(),
        _s("ruid", 64), _s("username", 64), _s("domain", 64, None, True),
        _s("contact", contact_len), _s("received", received_len, None, True),
        _s("path", 512, None, True), _dt_col("expires", EXPIRES_DEFAULT),
        Column("q", Float, nullable=False, default=1.0, server_default="1.0"),
        _s("callid", 255, "Default-Call-ID"), _i("cseq", 1), _dt_col("last_modified"),
        _i("flags"), _i("cflags"), _s("user_agent", 255), _s("socket", 64, None, True),
        _i("methods", None, True), _s("instance", 255, None, True), _i("reg_id"),
        _i("server_id"), _i("connection_id"), _i("keepalive"), _i("partition"),
        Index(f"{p}{name}_ruid_idx", "ruid", unique=True),
        Index(f"{p}{name}_account_contact_idx", "username", "domain", "contact"),
        Index(f"{p}{name}_expires_idx", "expires"),
    )


def tables_for(md: MetaData, prefix: str = "") -> dict[str, Table]:
    """Kamailio's tables on MD; PREFIX is put before every table and index name (tests)."""
    p = prefix
    t: dict[str, Table] = {}

    def add(tab: Table) -> None:
        t[tab.name[len(p):]] = tab

    add(Table(f"{p}version", md, _id(), _s("table_name", 32, None),
              Column("table_version", Integer, nullable=False, default=0, server_default="0"),
              Index(f"{p}version_table_name_idx", "table_name", unique=True)))
    add(Table(f"{p}subscriber", md, _id(), _s("username", 64), _s("domain", 64),
              _s("password", 64), _s("ha1", 128), _s("ha1b", 128),
              Index(f"{p}subscriber_account_idx", "username", "domain", unique=True),
              Index(f"{p}subscriber_username_idx", "username")))
    add(_location_like(md, f"{p}aliases", 255, 255, ""))
    loc = _location_like(md, f"{p}location", 512, 128, "")
    Index(f"{p}location_tcpcon_idx", loc.c.connection_id)
    Index(f"{p}location_connection_idx", loc.c.server_id, loc.c.connection_id)
    add(loc)
    add(Table(f"{p}location_attrs", md, _id(), _s("ruid", 64), _s("username", 64),
              _s("domain", 64, None, True), _s("aname", 64), _i("atype"), _s("avalue", 512),
              _dt_col("last_modified"),
              Index(f"{p}location_attrs_account_record_idx", "username", "domain", "ruid"),
              Index(f"{p}location_attrs_last_modified_idx", "last_modified")))
    add(Table(f"{p}dbaliases", md, _id(), _s("alias_username", 64), _s("alias_domain", 64),
              _s("username", 64), _s("domain", 64),
              Index(f"{p}dbaliases_alias_user_idx", "alias_username"),
              Index(f"{p}dbaliases_alias_idx", "alias_username", "alias_domain"),
              Index(f"{p}dbaliases_target_idx", "username", "domain")))
    add(Table(f"{p}domain", md, _id(), _s("domain", 64, None), _s("did", 64, None, True),
              _dt_col("last_modified"),
              Index(f"{p}domain_domain_idx", "domain", unique=True)))
    add(Table(f"{p}domain_attrs", md, _id(), _s("did", 64, None), _s("name", 32, None),
              _i("type", None), _s("value", 255, None), _dt_col("last_modified"),
              Index(f"{p}domain_attrs_domain_attrs_idx", "did", "name")))
    add(Table(f"{p}trusted", md, _id(), _s("src_ip", 50, None), _s("proto", 4, None),
              _s("from_pattern", 64, None, True), _s("ruri_pattern", 64, None, True),
              _s("tag", 64, None, True), _i("priority"),
              Index(f"{p}trusted_peer_idx", "src_ip")))
    add(Table(f"{p}address", md, _id(), _i("grp", 1), _s("ip_addr", 50, None), _i("mask", 32),
              Column("port", SmallInteger, nullable=False, default=0, server_default="0"),
              _s("tag", 64, None, True)))
    add(Table(f"{p}dispatcher", md, _id(), _i("setid"), _s("destination", 192), _i("flags"),
              _i("priority"), _s("attrs", 128), _s("description", 64)))
    add(Table(f"{p}dialplan", md, _id(), _i("dpid", None), _i("pr", None),
              _i("match_op", None), _s("match_exp", 64, None), _i("match_len", None),
              _s("subst_exp", 64, None), _s("repl_exp", 256, None), _s("attrs", 64, None)))
    add(Table(f"{p}dialog", md, _id(), _i("hash_entry", None), _i("hash_id", None),
              _s("callid", 255, None), _s("from_uri", 255, None), _s("from_tag", 128, None),
              _s("to_uri", 255, None), _s("to_tag", 128, None), _s("caller_cseq", 20, None),
              _s("callee_cseq", 20, None), _s("caller_route_set", 512, None, True),
              _s("callee_route_set", 512, None, True), _s("caller_contact", 255, None),
              _s("callee_contact", 255, None), _s("caller_sock", 64, None),
              _s("callee_sock", 64, None), _i("state", None), _i("start_time", None),
              _i("timeout"), _i("sflags"), _i("iflags"), _s("toroute_name", 32, None, True),
              _s("req_uri", 255, None), _s("xdata", 512, None, True),
              Index(f"{p}dialog_hash_idx", "hash_entry", "hash_id")))
    add(Table(f"{p}dialog_vars", md, _id(), _i("hash_entry", None), _i("hash_id", None),
              _s("dialog_key", 128, None), _s("dialog_value", 512, None),
              Index(f"{p}dialog_vars_hash_idx", "hash_entry", "hash_id")))
    add(Table(f"{p}htable", md, _id(), _s("key_name", 64), _i("key_type"), _i("value_type"),
              _s("key_value", 128), _i("expires")))
    for name in ("acc", "missed_calls"):
        add(Table(f"{p}{name}", md, _id(), _s("method", 16), _s("from_tag", 128),
                  _s("to_tag", 128), _s("callid", 255), _s("sip_code", 3),
                  _s("sip_reason", 128), _dt_col("time", None),
                  Index(f"{p}{name}_callid_idx", "callid")))
    add(Table(f"{p}acc_cdrs", md, _id(),
              _dt_col("start_time", _dt.datetime(2000, 1, 1)),
              _dt_col("end_time", _dt.datetime(2000, 1, 1)),
              Column("duration", Float, nullable=False, default=0, server_default="0"),
              Index(f"{p}acc_cdrs_start_time_idx", "start_time")))
    add(Table(f"{p}speed_dial", md, _id(), _s("username", 64), _s("domain", 64),
              _s("sd_username", 64), _s("sd_domain", 64), _s("new_uri", 255),
              _s("fname", 64), _s("lname", 64), _s("description", 64),
              Index(f"{p}speed_dial_speed_dial_idx", "username", "domain", "sd_domain",
                    "sd_username", unique=True)))
    add(Table(f"{p}uacreg", md, _id(), _s("l_uuid", 64), _s("l_username", 64),
              _s("l_domain", 64), _s("r_username", 64), _s("r_domain", 64), _s("realm", 64),
              _s("auth_username", 64), _s("auth_password", 64), _s("auth_ha1", 128),
              _s("auth_proxy", 255), _i("expires"), _i("flags"), _i("reg_delay"),
              _s("contact_addr", 255), _s("socket", 128),
              Index(f"{p}uacreg_l_uuid_idx", "l_uuid", unique=True)))
    add(Table(f"{p}usr_preferences", md, _id(), _s("uuid", 64), _s("username", 255, "0"),
              _s("domain", 64), _s("attribute", 32), _i("type"), _s("value", 128),
              _dt_col("last_modified"),
              Index(f"{p}usr_preferences_ua_idx", "uuid", "attribute"),
              Index(f"{p}usr_preferences_uda_idx", "username", "domain", "attribute")))
    return t


METADATA = MetaData()
TABLES: dict[str, Table] = tables_for(METADATA)
version = TABLES["version"]
subscriber = TABLES["subscriber"]
location = TABLES["location"]



def location_table(name: str, md: MetaData | None = None) -> Table:
    """A usrloc table with the `location` layout under another name (usrloc "domains" are
    table names: save("location"), save("location_pbx")...)."""
    if name == "location" and md is None:
        return location
    md = md if md is not None else MetaData()
    tab = _location_like(md, name, 512, 128, "")
    Index(f"{name}_tcpcon_idx", tab.c.connection_id)
    Index(f"{name}_connection_idx", tab.c.server_id, tab.c.connection_id)
    return tab


__all__ = ["METADATA", "TABLES", "VERSIONS", "location", "location_table", "subscriber",
           "tables_for", "version"]
