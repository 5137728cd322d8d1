"""`pykamctl`: operations in the manner of kamctl/kamcli.

Runs in: its own short-lived process. Command groups mirror RPC names (`pykamctl rpc core.ps`
== `pykamcmd core.ps`); database groups (db, subscriber, ul, dispatcher...) arrive with the
modules that own those tables.
"""
from __future__ import annotations

import sys
from typing import Callable, NoReturn, TypeVar

import click

from sipcore import KAMAILIO_COMPAT, __version__
from sipcore.cli.rpcclient import DEFAULT_SOCKET, RpcError, call, typed_param

T = TypeVar("T")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "socket_path", default=DEFAULT_SOCKET, show_default=True,
              help="Control socket of the running pykam.")
@click.pass_context
def main(ctx: click.Context, socket_path: str) -> None:
    """PyKam operations tool."""
    ctx.obj = {"socket": socket_path}


@main.command()
def version() -> None:
    """Print the pykamctl version."""
    click.echo(f"pykamctl {__version__} (kamailio {KAMAILIO_COMPAT} compatible)")


@main.command()
@click.argument("cfg_file", default="etc/pykam.cfg")
@click.option("-A", "defines", multiple=True, metavar="DEF[=VAL]")
def check(cfg_file: str, defines: tuple[str, ...]) -> None:
    """Check a configuration file (same as pykam -c -f FILE)."""
    from sipcore.cli.server import _print_errors, parse_defines
    from sipcore.cfg import load_config
    from sipcore.errors import ConfigError, ConfigErrors, ModuleError

    try:
        load_config(cfg_file, defines=parse_defines(defines))
    except (ConfigError, ConfigErrors, ModuleError) as exc:
        _print_errors(exc)
        sys.exit(1)
    click.echo(f"{cfg_file}: ok")


@main.command("rpc")
@click.argument("method")
@click.argument("args", nargs=-1)
@click.pass_context
def rpc(ctx: click.Context, method: str, args: tuple[str, ...]) -> None:
    """Call an RPC method (i:/s: prefixes force types)."""
    import json

    try:
        click.echo(json.dumps(call(ctx.obj["socket"], method, [typed_param(a) for a in args]),
                              indent=2))
    except RpcError as exc:
        click.echo(f"error: {exc.code} - {exc.message}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"error: cannot talk to pykam at {ctx.obj['socket']}: {exc}", err=True)
        sys.exit(2)


# ---- database commands (db, subscriber) ----------------------------------------------------

DB_URL_OPTION = click.option(
    "--db-url", "db_url", envvar="PYKAM_DBURL", default="sqlite:///pykam.sqlite",
    show_default=True, help="Database URL (Kamailio form mysql://, postgres://, sqlite:///).")


def _db_fail(exc: Exception) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def _db_run(label: str, run: Callable[[], T]) -> T:
    """Run a database job for a command: a failure is one error line and exit status 1."""
    from sipcore import db

    try:
        return db.guarded(label, run)
    except (db.DbError, db.DbUrlError) as exc:
        _db_fail(exc)


@main.group("db")
def db_group() -> None:
    """Create, drop and show Kamailio's tables."""


@db_group.command("create")
@DB_URL_OPTION
@click.argument("tables", nargs=-1)
def db_create(db_url: str, tables: tuple[str, ...]) -> None:
    """Create every table (or TABLES) and their version rows."""
    from sipcore import db

    try:
        names = db.create_all(db_url, list(tables) if tables else None)
    except (db.DbError, db.DbUrlError, KeyError) as exc:
        _db_fail(exc)
    click.echo(f"created/checked {len(names)} tables in {db.display_url(db_url)}")


@db_group.command("drop")
@DB_URL_OPTION
@click.argument("tables", nargs=-1)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def db_drop(db_url: str, tables: tuple[str, ...], yes: bool) -> None:
    """Drop every table (or TABLES)."""
    from sipcore import db

    if not yes:
        click.confirm(f"drop tables in {db.display_url(db_url)}?", abort=True)
    try:
        db.drop_all(db_url, list(tables) if tables else None)
    except (db.DbError, db.DbUrlError, KeyError) as exc:
        _db_fail(exc)
    click.echo("dropped")


@db_group.command("show")
@DB_URL_OPTION
@click.argument("table")
def db_show(db_url: str, table: str) -> None:
    """Print the rows of TABLE as JSON lines."""
    import json

    from sqlalchemy import select

    from sipcore import db
    from sipcore.db import schema

    if table not in schema.TABLES:
        _db_fail(KeyError(f"unknown table {table}"))
    t = schema.TABLES[table]

    def run() -> list:
        with db.get_engine(db_url).connect() as conn:
            return [dict(r) for r in conn.execute(select(t)).mappings()]

    rows = _db_run(f"read {table}", run)
    for r in rows:
        click.echo(json.dumps(r, default=str))


def _user_domain(spec: str) -> tuple[str, str]:
    """`user@domain` (a `sip:` prefix is accepted)."""
    s = spec.strip()
    if s.lower().startswith("sip:"):
        s = s[4:]
    user, at, domain = s.partition("@")
    if not at or not user or not domain:
        raise click.UsageError(f"expected user@domain, got \"{spec}\"")
    return user, domain


def _ha1(user: str, domain: str, realm: str, password: str) -> tuple[str, str]:
    """kamctl's ha1 = MD5(user:realm:pw) and ha1b = MD5(user@domain:realm:pw)."""
    import hashlib

    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha1b = hashlib.md5(f"{user}@{domain}:{realm}:{password}".encode()).hexdigest()
    return ha1, ha1b


@main.group("subscriber")
def subscriber_group() -> None:
    """Manage the subscriber table (auth_db credentials)."""


@subscriber_group.command("add")
@DB_URL_OPTION
@click.argument("user_spec", metavar="USER@DOMAIN")
@click.argument("password")
@click.option("--realm", default=None, help="Digest realm (default: the domain).")
def subscriber_add(db_url: str, user_spec: str, password: str, realm: str | None) -> None:
    """Add a subscriber with its password, ha1 and ha1b."""
    from sqlalchemy import insert, select

    from sipcore import db
    from sipcore.db import schema

    user, domain = _user_domain(user_spec)
    ha1, ha1b = _ha1(user, domain, realm or domain, password)
    t = schema.subscriber

    def run() -> bool:
        with db.get_engine(db_url).begin() as conn:
            if conn.execute(select(t.c.id).where(t.c.username == user,
                                                 t.c.domain == domain)).first():
                return False
            conn.execute(insert(t).values(username=user, domain=domain, password=password,
                                          ha1=ha1, ha1b=ha1b))
            return True

    added = _db_run("subscriber add", run)
    if not added:
        _db_fail(ValueError(f"subscriber {user}@{domain} already exists"))
    click.echo(f"added {user}@{domain}")


@subscriber_group.command("passwd")
@DB_URL_OPTION
@click.argument("user_spec", metavar="USER@DOMAIN")
@click.argument("password")
@click.option("--realm", default=None, help="Digest realm (default: the domain).")
def subscriber_passwd(db_url: str, user_spec: str, password: str, realm: str | None) -> None:
    """Change the password (and ha1, ha1b) of a subscriber."""
    from sqlalchemy import update

    from sipcore import db
    from sipcore.db import schema

    user, domain = _user_domain(user_spec)
    ha1, ha1b = _ha1(user, domain, realm or domain, password)
    t = schema.subscriber

    def run() -> int:
        with db.get_engine(db_url).begin() as conn:
            return conn.execute(update(t).where(t.c.username == user, t.c.domain == domain)
                                .values(password=password, ha1=ha1, ha1b=ha1b)).rowcount

    n = _db_run("subscriber passwd", run)
    if not n:
        _db_fail(ValueError(f"no subscriber {user}@{domain}"))
    click.echo(f"password of {user}@{domain} changed")


@subscriber_group.command("rm")
@DB_URL_OPTION
@click.argument("user_spec", metavar="USER@DOMAIN")
def subscriber_rm(db_url: str, user_spec: str) -> None:
    """Remove a subscriber."""
    from sqlalchemy import delete

    from sipcore import db
    from sipcore.db import schema

    user, domain = _user_domain(user_spec)
    t = schema.subscriber

    def run() -> int:
        with db.get_engine(db_url).begin() as conn:
            return conn.execute(delete(t).where(t.c.username == user,
                                                t.c.domain == domain)).rowcount

    n = _db_run("subscriber rm", run)
    if not n:
        _db_fail(ValueError(f"no subscriber {user}@{domain}"))
    click.echo(f"removed {user}@{domain}")


@subscriber_group.command("show")
@DB_URL_OPTION
@click.argument("user_spec", metavar="[USER@DOMAIN]", required=False)
def subscriber_show(db_url: str, user_spec: str | None) -> None:
    """List subscribers (username, domain, ha1)."""
    from sqlalchemy import select

    from sipcore import db
    from sipcore.db import schema

    t = schema.subscriber
    q = select(t.c.username, t.c.domain, t.c.ha1).order_by(t.c.username, t.c.domain)
    if user_spec:
        user, domain = _user_domain(user_spec)
        q = q.where(t.c.username == user, t.c.domain == domain)

    def run() -> list:
        with db.get_engine(db_url).connect() as conn:
            return conn.execute(q).all()

    rows = _db_run("subscriber show", run)
    for r in rows:
        click.echo(f"{r.username}@{r.domain}\t{r.ha1}")


# ---- ul (RPC ul.*) ---------------------------------------------------------------------------

def _rpc_or_exit(ctx: click.Context, method: str, params: list) -> object:
    try:
        return call(ctx.obj["socket"], method, params)
    except RpcError as exc:
        click.echo(f"error: {exc.code} - {exc.message}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"error: cannot talk to pykam at {ctx.obj['socket']}: {exc}", err=True)
        sys.exit(2)


@main.group("ul")
def ul_group() -> None:
    """User location (RPC ul.*)."""


@ul_group.command("show")
@click.argument("aor", required=False)
@click.option("--table", default="location", show_default=True)
@click.option("--brief", is_flag=True, help="Only AoRs and contact addresses.")
@click.pass_context
def ul_show(ctx: click.Context, aor: str | None, table: str, brief: bool) -> None:
    """Show every registration (ul.dump) or the contacts of AOR (ul.lookup)."""
    import json

    if aor:
        click.echo(json.dumps(_rpc_or_exit(ctx, "ul.lookup", [table, aor]), indent=2))
        return
    out = _rpc_or_exit(ctx, "ul.dump", ["brief"] if brief else [])
    click.echo(json.dumps(out, indent=2))


@ul_group.command("rm")
@click.argument("aor")
@click.argument("contact", required=False)
@click.option("--table", default="location", show_default=True)
@click.pass_context
def ul_rm(ctx: click.Context, aor: str, contact: str | None, table: str) -> None:
    """Remove AOR (ul.rm) or one CONTACT of it (ul.rm_contact)."""
    if contact:
        _rpc_or_exit(ctx, "ul.rm_contact", [table, aor, contact])
    else:
        _rpc_or_exit(ctx, "ul.rm", [table, aor])
    click.echo("ok")


@ul_group.command("add")
@click.argument("aor")
@click.argument("contact")
@click.argument("expires", type=int, default=0)
@click.option("--table", default="location", show_default=True)
@click.option("--q", "q", type=float, default=1.0, show_default=True)
@click.option("--path", default="0", help="Path ('0' for none).")
@click.pass_context
def ul_add(ctx: click.Context, aor: str, contact: str, expires: int, table: str, q: float,
           path: str) -> None:
    """Add a contact (ul.add); EXPIRES 0 = permanent."""
    _rpc_or_exit(ctx, "ul.add", [table, aor, contact, expires, q, path, 0, 0, -1])
    click.echo("ok")


if __name__ == "__main__":  # pragma: no cover
    main()
