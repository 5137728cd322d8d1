"""`pykamcmd`: call an RPC method of a running pykam (kamcmd style).

Runs in: its own short-lived process. `pykamcmd [-s SOCKET] METHOD [ARGS...]`; `i:`/`s:`
prefixes force JSON types; `--json` prints the raw result.
"""
from __future__ import annotations

import json
import sys

import click

from sipcore.cli.rpcclient import DEFAULT_SOCKET, RpcError, call, typed_param


def _print(value, indent: int = 0) -> None:
    pad = "\t" * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                click.echo(f"{pad}{k}:")
                _print(v, indent + 1)
            else:
                click.echo(f"{pad}{k}: {v}")
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                click.echo(f"{pad}{{")
                _print(v, indent + 1)
                click.echo(f"{pad}}}")
            else:
                click.echo(f"{pad}{v}")
    elif value is not None:
        click.echo(f"{pad}{value}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "socket_path", default=DEFAULT_SOCKET, show_default=True,
              help="Control socket: a unix socket path, unix:PATH, tcp:HOST:PORT or udp:HOST:PORT.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-t", "timeout", type=float, default=5.0, show_default=True)
@click.argument("method")
@click.argument("args", nargs=-1)
def main(socket_path: str, as_json: bool, timeout: float, method: str, args: tuple[str, ...]
         ) -> None:
    """Call METHOD with ARGS on a running pykam."""
    try:
        result = call(socket_path, method, [typed_param(a) for a in args], timeout)
    except RpcError as exc:
        click.echo(f"error: {exc.code} - {exc.message}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"error: cannot talk to pykam at {socket_path}: {exc.strerror or exc}",
                   err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        _print(result)


if __name__ == "__main__":  # pragma: no cover
    main()
