"""The prefork master (Kamailio main.c main_loop + gunicorn's arbiter ideas).

Runs in: the master process only. It binds the sockets, runs mod_init and child_init(PROC_INIT),
forks the UDP workers (`children` per UDP socket), the TCP workers (`tcp_children`, when there is
a TCP/TLS listen socket; bodies from sipcore.net), the timer process and the ctl process, then
only supervises: signal handlers only queue (a self-pipe wakes the loop), the loop reaps and
respawns dead children with the same slot and rank (counted in the process table and in
`core:child_restarts`), and stops everything on SIGTERM/SIGINT: children get SIGTERM, then
SIGKILL after a grace period, then module destroy hooks run and shm is unlinked.

Children notice a dead master within a second (they compare getppid() with the master pid
whenever they wake up) and exit, so a SIGKILLed master leaves no workers behind.
"""
from __future__ import annotations

import collections
import gc
import logging
import os
import random
import select
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from sipcore import log as klog
from sipcore import stats, timer
from sipcore.net.tcp_worker import TcpWorker
from sipcore.net.udp import UdpReceiver
from sipcore.proc import ranks
from sipcore.proc.table import STATUS_EXITED, STATUS_READY, ProcTable
from sipcore.receive import receiver
from sipcore.route.event import run_route

log = logging.getLogger(__name__)

CHILD_INIT_FAILED = 3           # exit code of a child whose child_init failed: halt, no respawn
STOP_GRACE = 1.5                # seconds children get to exit after SIGTERM before SIGKILL
STORM_DEATHS, STORM_WINDOW = 20, 10.0   # more deaths than this in the window: fail-stop


@dataclass
class ChildSpec:
    idx: int                    # process table slot
    rank: int
    desc: str
    run: Callable[["ChildEnv"], None]
    pid: int = 0
    ready_once: bool = False
    started: float = 0.0


@dataclass
class ChildEnv:
    """What a child's body needs: whether to keep running, and the idle hook."""

    master_pid: int
    table: ProcTable
    idx: int
    stop: list = field(default_factory=lambda: [False])
    debug_gen: int = -1
    next_check: float = 0.0
    runtime_cfg: Any = None     # the shared cfg framework values (cfg.seti): adopted on idle

    def keep_running(self) -> bool:
        """Called once per message: the stop flag every time, whether the master is still
        there (a system call) at most every 0.25 s."""
        if self.stop[0]:
            return False
        now = time.monotonic()
        if now < self.next_check:
            return True
        self.next_check = now + 0.25
        return os.getppid() == self.master_pid

    def on_idle(self) -> None:
        if self.runtime_cfg is not None:
            self.runtime_cfg.refresh()      # one 8-byte read when nothing changed
        gen = self.table.generation
        if gen != self.debug_gen:
            self.debug_gen = gen
            klog.set_debug(self.table.debug)


def _run_profiled(spec: ChildSpec, env: ChildEnv, prof_dir: str) -> None:
    """Run a child's body under cProfile and write PROF_DIR/<desc>-<pid>.prof when it ends."""
    import cProfile

    prof = cProfile.Profile()
    try:
        prof.runcall(spec.run, env)
    finally:
        name = "".join(c if c.isalnum() else "_" for c in spec.desc)
        prof.dump_stats(os.path.join(prof_dir, f"{name}-{os.getpid()}.prof"))


class Master:
    def __init__(self, cfg: Any, core: Any, *, children: int, shm: Any = None,
                 runtime_cfg: Any = None, daemon_fd: Optional[int] = None,
                 pidfile: Optional[str] = None, rundir: Optional[str] = None,
                 extra_children: Optional[list[tuple[int, str, Callable[[ChildEnv], None]]]]
                 = None, on_stop: Optional[Callable[[], None]] = None) -> None:
        """CFG the compiled config, CORE the node (sipcore.net.node.NetCore, with its bound
        UDP endpoints and, when TCP workers run, its `stream`), SHM the server's ShmContext,
        RUNTIME_CFG the cfg framework values every child adopts between messages."""
        self.cfg = cfg
        self.core = core
        self.shm = shm
        self.runtime_cfg = runtime_cfg
        self.children = children
        self.daemon_fd = daemon_fd
        self.pidfile = pidfile
        self.rundir = rundir
        self.extra = extra_children or []
        self.on_stop = on_stop
        self.specs: list[ChildSpec] = []
        self.by_pid: dict[int, ChildSpec] = {}
        self.deaths: collections.deque[float] = collections.deque()
        self.sigq: collections.deque[int] = collections.deque()
        self.pid = os.getpid()
        self.table: Optional[ProcTable] = None
        self.stopping = False
        self.exit_code = 0

    # ---- setup ------------------------------------------------------------------------
    def plan(self) -> None:
        """Decide every child (slot, rank, description) before sizing the process table."""
        idx = 1
        rank = 0
        for s, si in self.core.udp_endpoints:
            for i in range(self.children):
                rank += 1
                adv = (f" ({si.advertise_host}:{si.advertise_port or si.port})"
                       if si.advertise_host else "")
                host = f"[{si.ip}]" if ":" in si.ip else si.ip
                desc = f"udp receiver child={i} sock={host}:{si.port}{adv}"
                self.specs.append(ChildSpec(idx, rank, desc, self._udp_body(s, si)))
                idx += 1
        stream = self.core.stream
        for i in range(stream.n_workers if stream is not None else 0):
            rank += 1                       # Kamailio: tcp receivers continue the SIP ranks
            self.specs.append(ChildSpec(idx, rank, f"tcp receiver (generic) child={i}",
                                        self._tcp_body(stream, i)))
            idx += 1
        self.specs.append(ChildSpec(idx, ranks.PROC_TIMER, "timer", self._timer_body))
        idx += 1
        for rank_, desc, body in self.extra:
            self.specs.append(ChildSpec(idx, rank_, desc, body))
            idx += 1
        self.table = ProcTable(idx, klog.get_debug())
        self.table.set(0, self.pid, ranks.PROC_MAIN, "main process - attendant", STATUS_READY)

    def _receive(self, env: ChildEnv) -> Callable[[bytes, Any], Any]:
        """What a SIP worker hands each message to: receive_msg, after adopting runtime cfg
        changes and the debug level (Kamailio's cfg_update before each message)."""
        return receiver(self.cfg, self.core, before=env.on_idle)

    def _udp_body(self, sock: Any, si: Any) -> Callable[[ChildEnv], None]:
        def body(env: ChildEnv) -> None:
            UdpReceiver([(sock, si)], self._receive(env)).run(env.keep_running, env.on_idle)

        return body

    def _tcp_body(self, stream: Any, index: int) -> Callable[[ChildEnv], None]:
        def body(env: ChildEnv) -> None:
            TcpWorker(stream, index, self._receive(env)).run(env.keep_running, env.on_idle)

        return body

    def _timer_body(self, env: ChildEnv) -> None:
        def alive() -> bool:
            env.on_idle()
            return os.getppid() == env.master_pid

        timer.run_timer_process(lambda: env.stop[0], alive)

    # ---- forking ----------------------------------------------------------------------
    def spawn(self, spec: ChildSpec) -> None:
        assert self.table is not None
        pid = os.fork()
        if pid == 0:
            self._child_main(spec)          # never returns
        spec.pid = pid
        spec.started = time.monotonic()
        self.by_pid[pid] = spec
        self.table.set(spec.idx, pid, spec.rank, spec.desc)

    def _child_main(self, spec: ChildSpec) -> None:
        code = 0
        try:
            env = ChildEnv(self.pid, self.table, spec.idx)  # type: ignore[arg-type]
            env.runtime_cfg = self.runtime_cfg

            def _term(signo: int, frame: Any) -> None:
                env.stop[0] = True
                raise SystemExit(0)

            for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C reaches the master
            signal.signal(signal.SIGTERM, _term)
            signal.set_wakeup_fd(-1)
            for fd in self._wake:
                os.close(fd)
            random.seed()
            klog.set_process(spec.desc)
            assert self.table is not None
            self.table.set(spec.idx, os.getpid(), spec.rank, spec.desc)
            set_slot = getattr(stats, "set_process_slot", None)
            if set_slot is not None:
                set_slot(spec.idx)
            try:
                self.cfg.modules.child_init_all(spec.rank)
                if spec.rank == ranks.PROC_SIPINIT:
                    run_route(self.cfg, self.core, "event", "core:worker-one-init")
            except Exception as exc:
                log.critical("child_init failed in %s: %s: %s", spec.desc, type(exc).__name__, exc)
                os._exit(CHILD_INIT_FAILED)
            self.table.set_status(spec.idx, STATUS_READY)
            env.on_idle()
            prof_dir = os.environ.get("PYKAM_PROFILE_DIR")
            if prof_dir:                # development: cProfile each child (benchmarks/README)
                _run_profiled(spec, env, prof_dir)
            else:
                spec.run(env)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        except BaseException as exc:  # anything else: log it and let the master respawn us
            log.critical("%s",
                         f"{spec.desc} died: {type(exc).__name__}: {exc}\n"
                      + traceback.format_exc())
            code = 1
        finally:
            try:
                if os.getppid() != self.pid:
                    _orphan_cleanup(self.shm)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    # ---- main loop --------------------------------------------------------------------
    def _on_signal(self, signo: int, frame: Any) -> None:
        self.sigq.append(signo)          # nothing else: the loop dispatches

    def run(self) -> int:
        """Fork everything and supervise until stopped; returns the exit code."""
        self._wake = os.pipe()
        for fd in self._wake:
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wake[1])
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD,
                    signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, self._on_signal)
        timer.init(self.shm)
        self.plan()
        # everything built so far (modules, compiled routes, tables) lives as long as the
        # process: keep it out of the cyclic GC's generations, so collections in the children
        # only walk per-message garbage, and pages stay shared copy-on-write
        gc.collect()
        gc.freeze()
        self.cfg.modules.child_init_all(ranks.PROC_INIT)
        for spec in self.specs:
            self.spawn(spec)
        self.cfg.modules.child_init_all(ranks.PROC_MAIN)
        klog.set_process("main")
        if self.pidfile:
            with open(self.pidfile, "w") as fh:
                fh.write(f"{self.pid}\n")
        if self.daemon_fd is not None:
            os.write(self.daemon_fd, b"\0")
            os.close(self.daemon_fd)
            self.daemon_fd = None
        log.log(klog.NOTICE, "pykam started: %s children", len(self.specs))
        try:
            while True:
                try:
                    select.select([self._wake[0]], [], [], 1.0)
                except InterruptedError:
                    pass
                try:
                    while os.read(self._wake[0], 512):
                        pass
                except (BlockingIOError, InterruptedError):
                    pass
                if self._dispatch():
                    break
                self._reap()
        finally:
            self.shutdown()
        return self.exit_code

    def _dispatch(self) -> bool:
        """Handle queued signals; True when the master must stop."""
        stop = False
        while self.sigq:
            sig = self.sigq.popleft()
            if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
                log.log(klog.NOTICE, "%s received, stopping", signal.Signals(sig).name)
                stop = True
            elif sig in (signal.SIGHUP, signal.SIGUSR1):
                log.info("%s received (ignored)", signal.Signals(sig).name)
        return stop or self.stopping

    def _reap(self) -> None:
        assert self.table is not None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            spec = self.by_pid.pop(pid, None)
            if spec is None:
                continue
            self.table.set_status(spec.idx, STATUS_EXITED)
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                how = f"killed by signal {signal.Signals(sig).name}" + (
                    " (perhaps out of memory?)" if sig == signal.SIGKILL else "")
            else:
                how = f"exited with status {os.WEXITSTATUS(status)}"
            log.error("child %s (pid %s) %s", spec.desc, pid, how)
            if self.stopping:
                continue
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == CHILD_INIT_FAILED:
                log.critical("child %s failed to initialise: stopping", spec.desc)
                self.exit_code = 1
                self.stopping = True
                continue
            now = time.monotonic()
            self.deaths.append(now)
            while self.deaths and now - self.deaths[0] > STORM_WINDOW:
                self.deaths.popleft()
            if len(self.deaths) > STORM_DEATHS:
                log.critical("%s children died within %.0fs: stopping",
                             len(self.deaths), STORM_WINDOW)
                self.exit_code = 1
                self.stopping = True
                continue
            n = self.table.add_restart(spec.idx)
            stats.inc("core:child_restarts")
            log.log(klog.NOTICE, "respawning %s (restart %s)", spec.desc, n)
            self.spawn(spec)

    def shutdown(self) -> None:
        """SIGTERM every child, SIGKILL the late ones, reap all, then destroy and clean up."""
        self.stopping = True
        for pid in list(self.by_pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE
        while self.by_pid and time.monotonic() < deadline:
            self._reap_quiet()
            if self.by_pid:
                time.sleep(0.02)
        for pid in list(self.by_pid):
            log.warning("child %s (pid %s) did not stop: SIGKILL", self.by_pid[pid].desc, pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 2.0
        while self.by_pid and time.monotonic() < deadline:
            self._reap_quiet()
            if self.by_pid:
                time.sleep(0.01)
        self.cfg.modules.destroy_all()
        if self.on_stop is not None:
            self.on_stop()
        if self.pidfile:
            try:
                os.unlink(self.pidfile)
            except OSError:
                pass
        log.log(klog.NOTICE, "pykam stopped")

    def _reap_quiet(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.by_pid.clear()
                return
            if pid == 0:
                return
            self.by_pid.pop(pid, None)


def _orphan_cleanup(ctx: Any) -> None:
    """The master is gone (SIGKILL): unlink the shm segment CTX it cannot unlink any more.
    Every orphaned child tries; the first succeeds, the mapping stays valid for the others."""
    if ctx is not None:
        try:
            ctx.unlink()
        except Exception as exc:  # already unlinked by a sibling: ShmError/OSError
            log.debug("orphan cleanup: %s", exc)


def daemonize(keep_stderr: bool) -> int:
    """Double fork + setsid. Returns, in the daemon, the fd on which to report startup success
    (one NUL byte); the original process waits for it and exits 0, or 1 if the daemon dies
    before reporting."""
    r, w = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(w)
        try:
            data = os.read(r, 1)
        except OSError:
            data = b""
        os._exit(0 if data == b"\0" else 1)
    os.close(r)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    if not keep_stderr:
        os.dup2(devnull, 2)
    os.close(devnull)
    return w
