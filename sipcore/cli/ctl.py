"""`pykamcmd`: call RPC methods of a running pykam (kamcmd style).

Runs in: its own short-lived process.

    pykamcmd [-s SOCKET] [--json] [-t SECONDS] METHOD [PARAMS...]
    pykamcmd [-s SOCKET]                      # interactive shell

PARAMS are typed like kamcmd: integers and decimals become numbers, `s:` forces a string,
`i:` an integer. The result is printed as a readable tree (structs in braces, one value per
line), or as JSON with --json. An RPC error prints `error: CODE - MESSAGE` and exits 1; a
server that cannot be reached prints one line and exits 1.
The shell keeps its history in ~/.pykamcmd_history and completes method names (fetched
with system.listMethods); `help`, `help METHOD`, `quit`.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from typing import Any

import click

from sipcore.cli.rpcclient import (
    DEFAULT_SOCKET,
    CtlConnectError,
    CtlProtocolError,
    RpcError,
    call,
    typed_param,
)
from sipcore.rpc.jsonrpc import Pairs, dumps, has_pairs

HISTORY_FILE = os.path.join(os.path.expanduser("~"), ".pykamcmd_history")


# ---- output ------------------------------------------------------------------------------------

def _scalar(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _items(v: Any) -> list[tuple[str, Any]]:
    return list(v) if isinstance(v, Pairs) else list(v.items())


def render(value: Any, indent: int = 0) -> list[str]:
    """The kamcmd-like tree of VALUE: a struct is `{`, `key: value` lines one tab deeper, `}`;
    a top-level array prints its elements one after the other."""
    pad = "\t" * indent
    if isinstance(value, (dict, Pairs)):
        lines = [pad + "{"]
        for k, v in _items(value):
            lines.extend(_member(k, v, indent + 1))
        lines.append(pad + "}")
        return lines
    if isinstance(value, list):
        out: list[str] = []
        for v in value:
            out.extend(render(v, indent))
        return out
    return [pad + _scalar(value)]


def _member(key: str, v: Any, indent: int) -> list[str]:
    pad = "\t" * indent
    if isinstance(v, (dict, Pairs)):
        inner = render(v, indent)
        return [f"{pad}{key}: {{"] + inner[1:]
    if isinstance(v, list):
        lines = [f"{pad}{key}: ["]
        for item in v:
            lines.extend(render(item, indent + 1))
        lines.append(pad + "]")
        return lines
    return [f"{pad}{key}: {_scalar(v)}"]


def print_result(result: Any, as_json: bool) -> None:
    if as_json:
        # repeated keys (core.sockets_list) need the Pairs-aware encoder
        click.echo(dumps(result) if has_pairs(result) else json.dumps(result, indent=2))
        return
    for line in render(result):
        click.echo(line)


# ---- one call ----------------------------------------------------------------------------------

def run_one(socket_path: str, method: str, args: list[str], as_json: bool, timeout: float
            ) -> int:
    """Call METHOD and print the result; returns the exit status."""
    try:
        params = [typed_param(a) for a in args]
    except ValueError as exc:
        click.echo(f"error: bad parameter: {exc}", err=True)
        return 1
    try:
        result = call(socket_path, method, params, timeout)
    except RpcError as exc:
        click.echo(f"error: {exc.code} - {exc.message}", err=True)
        return 1
    except CtlConnectError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except (TimeoutError, CtlProtocolError, OSError) as exc:
        click.echo(f"error: talking to pykam at {socket_path}: {exc}", err=True)
        return 1
    print_result(result, as_json)
    return 0


# ---- interactive shell -------------------------------------------------------------------------

class Shell:
    """Read-eval-print loop over the control socket, with readline history and completion."""

    def __init__(self, socket_path: str, as_json: bool, timeout: float,
                 history_file: str = HISTORY_FILE) -> None:
        self.socket_path = socket_path
        self.as_json = as_json
        self.timeout = timeout
        self.history_file = history_file
        self.methods: list[str] = []
        self._readline: Any = None

    def start(self) -> int:
        try:
            self.methods = list(call(self.socket_path, "system.listMethods", [], self.timeout))
        except (CtlConnectError, CtlProtocolError, RpcError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            return 1
        self._setup_readline()
        interactive = sys.stdin.isatty()
        if interactive:
            click.echo(f"pykamcmd shell on {self.socket_path}: {len(self.methods)} methods; "
                       "TAB completes, 'help [METHOD]', 'quit'")
        try:
            while True:
                try:
                    line = input("pykamcmd> " if interactive else "")
                except EOFError:
                    if interactive:
                        click.echo("")
                    return 0
                except KeyboardInterrupt:
                    click.echo("")
                    continue
                if not self.handle(line):
                    return 0
        finally:
            self._save_history()

    def handle(self, line: str) -> bool:
        """Run one shell line; False means quit."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            return True
        if not words:
            return True
        cmd, args = words[0], words[1:]
        if cmd in ("quit", "exit", "q"):
            return False
        if cmd in ("help", "?"):
            if args:
                run_one(self.socket_path, "system.methodHelp", [f"s:{args[0]}"], False,
                        self.timeout)
            else:
                for m in self.methods:
                    click.echo(m)
            return True
        run_one(self.socket_path, cmd, args, self.as_json, self.timeout)
        return True

    def complete(self, text: str, state: int) -> str | None:
        matches = [m for m in self.methods + ["help", "quit"] if m.startswith(text)]
        return matches[state] if state < len(matches) else None

    def _setup_readline(self) -> None:
        try:
            import readline
        except ImportError:           # pragma: no cover - readline exists on Linux
            return
        self._readline = readline
        readline.set_completer_delims(" \t\n")
        readline.set_completer(self.complete)
        readline.parse_and_bind("tab: complete")
        readline.set_history_length(1000)
        try:
            readline.read_history_file(self.history_file)
        except (FileNotFoundError, PermissionError):
            pass
        except OSError as exc:
            click.echo(f"warning: history {self.history_file}: {exc}", err=True)

    def _save_history(self) -> None:
        if self._readline is None:
            return
        try:
            self._readline.write_history_file(self.history_file)
        except OSError as exc:
            click.echo(f"warning: cannot save history to {self.history_file}: {exc}",
                       err=True)


# ---- command line ------------------------------------------------------------------------------

@click.command(context_settings={"help_option_names": ["-h", "--help"],
                                 "ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@click.option("-s", "socket_path", default=DEFAULT_SOCKET, show_default=True,
              help="Control socket: PATH or unix:PATH, tcp:HOST:PORT, udp:HOST:PORT, "
              "unixd:PATH (env PYKAM_CTL).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-t", "timeout", type=float, default=5.0, show_default=True,
              help="Seconds to wait for the reply.")
@click.argument("method", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def main(socket_path: str, as_json: bool, timeout: float, method: str | None,
         args: tuple[str, ...]) -> None:
    """Call METHOD with PARAMS on a running pykam; without METHOD, start a shell."""
    if method is None:
        sys.exit(Shell(socket_path, as_json, timeout).start())
    sys.exit(run_one(socket_path, method, list(args), as_json, timeout))


if __name__ == "__main__":  # pragma: no cover
    main()
