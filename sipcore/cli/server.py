"""`pykam`: the server command line, with Kamailio's options.

Runs in: the master process (before anything is forked).
`pykam -c -f FILE [-A DEF[=VAL]]...` checks a configuration and exits 0 (valid) or 1 (errors
printed as `file:line:col: message` with the offending line). With `--print-routes` it also
prints the Python the route blocks compile to (sipcore/cfg/codegen.py) on stdout.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Optional

import click

from sipcore import KAMAILIO_COMPAT, __version__
from sipcore import log as klog
from sipcore.errors import ConfigError, ConfigErrors, ModuleError

log = logging.getLogger(__name__)


def parse_defines(items: tuple[str, ...]) -> dict[str, Optional[str]]:
    """-A NAME, -A NAME=VALUE, -A 'NAME="str"' -> {NAME: VALUE or None}."""
    out: dict[str, Optional[str]] = {}
    for it in items:
        name, eq, value = it.partition("=")
        name = name.strip()
        if not name:
            raise click.BadParameter(f"bad define \"{it}\"", param_hint="-A")
        out[name] = value if eq else None
    return out


def _load(cfg_file: str, defines: dict[str, Optional[str]]):
    from sipcore.cfg import load_config

    return load_config(cfg_file, defines=defines)


def _print_errors(exc: Exception) -> None:
    if isinstance(exc, (ConfigError, ConfigErrors)):
        click.echo(exc.render(), err=True)
    else:
        click.echo(f"error: {exc}", err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "cfg_file", default="etc/pykam.cfg", show_default=True,
              help="Configuration file.")
@click.option("-c", "check_only", is_flag=True, help="Check the configuration file and exit.")
@click.option("--print-routes", "print_routes", is_flag=True,
              help="With -c (implied): print the generated Python of every route block.")
@click.option("-A", "defines", multiple=True, metavar="DEF[=VAL]",
              help="Add a #!define (repeatable).")
@click.option("-D", "no_daemon", count=True,
              help="Do not daemonize (-DD also keeps the master in the foreground).")
@click.option("-E", "log_stderr", is_flag=True, help="Log to stderr.")
@click.option("-e", "log_color", is_flag=True, help="Colour the stderr log.")
@click.option("-l", "listen", multiple=True, metavar="ADDRESS",
              help="Listen on ADDRESS, e.g. udp:127.0.0.1:5060 (repeatable; replaces listen=).")
@click.option("-n", "children", type=int, default=None, help="Number of children per socket.")
@click.option("-N", "tcp_children", type=int, default=None,
              help="Number of TCP worker processes (default: -n).")
@click.option("-T", "disable_tcp", is_flag=True, help="Disable TCP (and TLS).")
@click.option("-m", "shm_mb", type=int, default=None, help="Shared memory size in MB.")
@click.option("-P", "pidfile", default=None, help="Write the master PID to this file.")
@click.option("-Y", "rundir", default=None, help="Runtime directory.")
@click.option("-d", "debug_inc", count=True, help="Increase the debug level.")
@click.option("-V", "show_version", is_flag=True, help="Print the version and exit.")
@click.option("-v", "show_version2", is_flag=True, hidden=True)
def main(cfg_file: str, check_only: bool, print_routes: bool, defines: tuple[str, ...],
         no_daemon: int, log_stderr: bool, log_color: bool, listen: tuple[str, ...],
         children: Optional[int],
         tcp_children: Optional[int], disable_tcp: bool, shm_mb: Optional[int], pidfile: Optional[str], rundir: Optional[str], debug_inc: int,
         show_version: bool, show_version2: bool) -> None:
    """PyKam SIP server (Kamailio-compatible)."""
    if show_version or show_version2:
        click.echo(f"version: pykam {__version__} (kamailio {KAMAILIO_COMPAT} compatible)")
        return
    check_only = check_only or print_routes
    klog.configure(to_stderr=True, color=log_color)
    try:
        cfg = _load(cfg_file, parse_defines(defines))
    except (ConfigError, ConfigErrors, ModuleError) as exc:
        _print_errors(exc)
        if check_only:
            click.echo(f"config file {cfg_file}: check failed", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"error: cannot read {cfg_file}: {exc.strerror}", err=True)
        sys.exit(1)
    if check_only:
        if print_routes:
            if cfg.engine != "native":
                click.echo(f'# cfgengine "{cfg.engine}": the KEMI script routes the messages')
            click.echo(cfg.generated_python(), nl=False)
        for w in cfg.warnings:
            click.echo(w.pos.render("warning: " + w.message) if w.pos
                       else "warning: " + w.message, err=True)
        click.echo(f"config file {cfg_file} ok, exiting...", err=True)
        return
    sys.exit(run_server(cfg, RunOptions(listen=listen, log_stderr=log_stderr,
                                        log_color=log_color, debug_inc=debug_inc,
                                        pidfile=pidfile, rundir=rundir, children=children,
                                        shm_mb=shm_mb, no_daemon=no_daemon,
                                        tcp_children=tcp_children,
                                        disable_tcp=disable_tcp)))


@dataclass
class RunOptions:
    listen: tuple[str, ...] = ()
    log_stderr: bool = False
    log_color: bool = False
    debug_inc: int = 0
    pidfile: Optional[str] = None
    rundir: Optional[str] = None
    children: Optional[int] = None
    shm_mb: Optional[int] = None
    no_daemon: int = 0
    tcp_children: Optional[int] = None
    disable_tcp: bool = False


def run_server(cfg, opts: RunOptions) -> int:
    """Start the server. -D: one process, no fork (debugging); -DD: prefork with the master in
    the foreground; neither: daemonize, then prefork (Kamailio's -D semantics).

    The start-up order: bind the listen sockets, daemonize, create the shared memory (sized by
    -m), the TCP runtime, every module's mod_init (with the CoreContext: config, node, shm,
    timers), preload the code, then fork (sipcore.proc.master) or run in this process."""
    from sipcore import stats, timer
    from sipcore.mod.context import CoreContext
    from sipcore.net.listen import core_from_config
    from sipcore.net.node import NetCore
    from sipcore.proc.preload import preload
    from sipcore.shm import ShmContext, ShmError

    pending = [m for m in cfg.modules if not m.implemented]
    if pending:
        for m in pending:
            click.echo(f"error: module {m.name} is declared (its config surface checks) but not "
                       f"implemented yet{': ' + m.pending_note if m.pending_note else ''}",
                       err=True)
        click.echo("the server cannot run this configuration; `pykam -c` checks it", err=True)
        return 1
    g = cfg.globals
    to_stderr = bool(opts.log_stderr or g.get("log_stderror"))
    klog.configure(debug=int(g.get("debug", 0) or 0) + opts.debug_inc, to_stderr=to_stderr,
                   color=opts.log_color, facility=g.get("log_facility") or "LOG_DAEMON",
                   name=g.get("log_name") or "pykam")
    for w in cfg.warnings:
        log.warning("%s", str(w))
    pidfile = os.path.abspath(opts.pidfile) if opts.pidfile else None
    rundir = os.path.abspath(opts.rundir or g.get("rundir") or "/run/pykam")
    fork = g.get("fork", 1) not in (0, False, "no") and opts.no_daemon != 1
    children = opts.children if opts.children is not None else int(g.get("children", 8) or 8)
    core = core_from_config(cfg, NetCore, opts.listen, resolve_aliases=True)
    if opts.disable_tcp:
        core.globals["disable_tcp"] = True
    if opts.tcp_children is not None:
        core.globals["tcp_children"] = opts.tcp_children
    try:
        core.bind(int(g.get("maxbuffer", 262144) or 262144))
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    daemon_fd = None
    if fork and opts.no_daemon == 0:
        from sipcore.proc.master import daemonize

        daemon_fd = daemonize(keep_stderr=to_stderr)
    shm_mb = opts.shm_mb or int(g.get("shm_mem_size", 64) or 64)
    n_udp = len(core.udp_endpoints)
    from sipcore.net.options import TcpOptions

    tcp_opts = TcpOptions.from_globals(core.globals, children)
    n_tcp = tcp_opts.children if core.stream_listeners and fork else 0
    try:
        shm = ShmContext.create(shm_mb, str(os.getpid()),
                                max_procs=max(1 + (children if fork else 1) * n_udp + n_tcp + 16,
                                              8))
    except ShmError as exc:
        click.echo(f"error: shared memory: {exc}", err=True)
        return 1
    owner = os.getpid()
    stats.attach(shm)
    stats.set_process_slot(0)
    try:
        if n_tcp:
            from sipcore.net import tcp as net_tcp

            net = net_tcp.StreamNet.create(shm.arena, tcp_opts, core.stream_listeners,
                                           core.sockets)
            core.stream = net
        elif core.stream_listeners:
            log.warning("TCP/TLS listen sockets are served by TCP workers only: not in the "
                        "no-fork mode (-D); skipped")
            core.drop_stream_listeners()
        from sipcore.rpc.env import RpcEnv
        from sipcore.rpc.runtime_cfg import RuntimeCfg

        env = RpcEnv(rundir=rundir, cfg=cfg, sockets=core.sockets, aliases=core.aliases,
                     argv=sys.argv, master_pid=os.getpid(), stream=core.stream)
        timer.init(shm)
        cfg.setup_process()
        cfg.modules.init_all(CoreContext(cfg, core, shm, timer, env))
        if fork:        # after mod_init: the modules' cfg groups are declared there (tm)
            env.runtime_cfg = RuntimeCfg.from_config(cfg.globals, cfg.cfg_vars,
                                                     modules=cfg.modules)
        preload(cfg)
        for s in core.sockets:
            log.log(klog.NOTICE, "listening on %s", s)
        if not fork:
            return _run_single(cfg, core, pidfile)
        from sipcore.proc import ranks
        from sipcore.proc.master import Master
        from sipcore.rpc.server import ctl_child_body

        os.makedirs(rundir, exist_ok=True)
        master = Master(cfg, core, children=children, shm=shm, runtime_cfg=env.runtime_cfg,
                        daemon_fd=daemon_fd, pidfile=pidfile, rundir=rundir,
                        extra_children=[(ranks.PROC_RPC, "ctl handler", ctl_child_body(env))])
        return master.run()
    finally:
        if os.getpid() == owner:
            stats.detach()
            shm.destroy()


def _run_single(cfg, core, pidfile: Optional[str]) -> int:
    """-D: this process is the only receiver and also runs the timers between messages."""
    from sipcore import timer
    from sipcore.net.udp import UdpReceiver
    from sipcore.proc.ranks import PROC_SIPINIT
    from sipcore.receive import receiver

    cfg.modules.child_init_all(PROC_SIPINIT)
    if pidfile:
        with open(pidfile, "w") as fh:
            fh.write(f"{os.getpid()}\n")
    stopping = {"v": False}

    def _stop(signo, frame):  # only flags; the loop notices within 0.5 s
        stopping["v"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    loop = timer.local_loop()
    try:
        UdpReceiver(core.udp_endpoints, receiver(cfg, core)).run(
            lambda: not stopping["v"], timers=loop)
    finally:
        core.close()
        cfg.modules.destroy_all()
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass
    log.log(klog.NOTICE, "pykam stopped")
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
