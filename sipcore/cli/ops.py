"""`pykamctl`: operations in the manner of kamctl/kamcli.

Runs in: its own short-lived process. Command groups mirror RPC names (`pykamctl rpc core.ps`
== `pykamcmd core.ps`); database groups (db, subscriber, ul, dispatcher...) arrive with the
modules that own those tables.
"""
from __future__ import annotations

import sys

import click

from sipcore import KAMAILIO_COMPAT, __version__
from sipcore.cli.rpcclient import DEFAULT_SOCKET, RpcError, call, typed_param


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
