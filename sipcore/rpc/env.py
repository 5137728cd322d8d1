"""RpcEnv: the runtime facts RPC handlers read, filled by the master before it forks.

Runs in: built in the master (pre-fork) and inherited by every child; read by the ctl process
(core.*, stats.*, cfg.* handlers) and by workers running jsonrpc_exec().
Shared state: through the objects it holds (process table and shm stats in shm, RuntimeCfg in
a shared mapping); the RpcEnv object itself is a plain per-process copy.

The master does, before forking:

    from sipcore.rpc.env import RpcEnv, set_env
    from sipcore.rpc.runtime_cfg import RuntimeCfg
    set_env(RpcEnv(start_time=time.time(), rundir=rundir, cfg=compiled_cfg,
                   proc_table=table, shm_stats=shm.stats, sockets=core.sockets,
                   aliases=core.aliases,
                   runtime_cfg=RuntimeCfg.from_config(cfg.globals, cfg.cfg_vars),
                   master_pid=os.getpid(), argv=sys.argv))

and the ctl process calls `sipcore.rpc.server.run_ctl(get_env(), should_stop)`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterable, NamedTuple, Optional, Protocol

from sipcore import stats as _stats
from sipcore.rpc.runtime_cfg import RuntimeCfg


class ProcEntry(NamedTuple):
    """One row of the process table (Kamailio `pt[]`): index, pid, rank, description."""

    idx: int
    pid: int
    rank: int
    desc: str


class ProcTable(Protocol):
    """What core.ps / core.psx need from the process table (in shm, owned by the master)."""

    def entries(self) -> list[tuple[int, int, int, str]]:
        """Live rows as (idx, pid, rank, desc), master first."""
        ...


class StatsStore(Protocol):
    """What stats.* need: the `sipcore.stats` module satisfies it."""

    def snapshot(self, prefix: str = "") -> dict[str, int]: ...

    def reset(self, name: str) -> None: ...


class SingleProcessTable:
    """A process table of one process (tests, `pykam -DD` before the prefork runtime)."""

    def __init__(self, desc: str = "main process - attendant") -> None:
        self.desc = desc

    def entries(self) -> list[tuple[int, int, int, str]]:
        return [(0, os.getpid(), 0, self.desc)]


def no_shm_stats() -> dict[str, int]:
    """shm_stats of a process without a shm segment: all zero."""
    return {"total": 0, "free": 0, "used": 0, "real_used": 0, "max_used": 0, "fragments": 0}


@dataclass
class RpcEnv:
    """Runtime facts for RPC handlers. Every field has a usable default, so tests and
    partial runtimes fill only what they have."""

    start_time: float = field(default_factory=time.time)          # wall clock, epoch s
    rundir: str = "/run/pykam"                                     # -Y / rundir=
    cfg: Any = None                        # sipcore.cfg.compiler.CompiledConfig (or None)
    proc_table: ProcTable = field(default_factory=SingleProcessTable)
    shm_stats: Callable[[], dict[str, int]] = no_shm_stats          # keys: see no_shm_stats
    sockets: list[Any] = field(default_factory=list)               # route.core_api.SocketInfo
    aliases: list[tuple[str, Optional[int], Optional[str]]] = field(default_factory=list)
    runtime_cfg: Optional[RuntimeCfg] = None                       # cfg.* (shared mapping)
    stats: StatsStore | ModuleType = _stats                        # stats.* counters
    master_pid: int = field(default_factory=os.getpid)
    argv: list[str] = field(default_factory=list)                  # core.arg
    extra_modules: list[Any] = field(default_factory=list)         # tests: Modules w/o cfg

    @property
    def modules(self) -> Iterable[Any]:
        """The loaded modules (sipcore.mod.Module), in load order."""
        mods = list(getattr(self.cfg, "modules", None) or ())
        return mods + [m for m in self.extra_modules if m not in mods]

    @property
    def globals(self) -> dict[str, Any]:
        return dict(getattr(self.cfg, "globals", None) or {})

    @property
    def defines(self) -> dict[str, Optional[str]]:
        return dict(getattr(self.cfg, "defines", None) or {})

    def module(self, name: str) -> Any:
        """The loaded module NAME, or None."""
        for m in self.modules:
            if m.name == name:
                return m
        return None

    def get_runtime_cfg(self) -> RuntimeCfg:
        """The shared runtime cfg; created from the config on first use when the master did
        not provide one (then changes stay in this process and its future children)."""
        if self.runtime_cfg is None:
            self.runtime_cfg = RuntimeCfg.from_config(self.globals,
                                                      getattr(self.cfg, "cfg_vars", None))
        return self.runtime_cfg


_current: Optional[RpcEnv] = None


def set_env(env: RpcEnv) -> None:
    """Install ENV as this process's environment (the master, before fork)."""
    global _current
    _current = env


def get_env() -> RpcEnv:
    """The installed environment; a default one (single process) when none was set."""
    global _current
    if _current is None:
        _current = RpcEnv()
    return _current
