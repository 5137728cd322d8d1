"""RpcEnv: the runtime facts RPC handlers read, filled by the master before it forks.

Runs in: built in the master (pre-fork) and inherited by every child; read by the ctl process
(core.*, stats.*, cfg.* handlers) and by workers running jsonrpc_exec().
Shared state: through the objects it holds (process table and shm stats in shm, RuntimeCfg in
a shared mapping); the RpcEnv object itself is a plain per-process copy.

The master builds one before forking and gives the ctl child `ctl_child_body(env)` (see
docs/rpc.md "What the master puts in the RpcEnv"); workers use the same env for
jsonrpc_exec(). Fields have working defaults, so tests fill only what they need.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

from sipcore import stats as _stats
from sipcore.rpc.runtime_cfg import RuntimeCfg


class ProcTable(Protocol):
    """What core.ps / core.psx need from the process table (in shm, owned by the master):
    live rows, master first, each a 4-tuple (idx, pid, rank, desc) or an object with those
    attributes (sipcore.proc.table.ProcEntry)."""

    def entries(self) -> list[Any]: ...


class StatsStore(Protocol):
    """What stats.* need: the `sipcore.stats` module satisfies it."""

    def snapshot(self, prefix: str = "") -> dict[str, int]: ...

    def reset(self, name: str) -> object: ...


class SingleProcessTable:
    """A process table of one process (tests, `pykam -DD` before the prefork runtime)."""

    def __init__(self, desc: str = "main process - attendant") -> None:
        self.desc = desc

    def entries(self) -> list[tuple[int, int, int, str]]:
        return [(0, os.getpid(), 0, self.desc)]


_SHMEM_STATS = {"total": "shmem:total_size", "free": "shmem:free_size",
                "used": "shmem:used_size", "real_used": "shmem:real_used_size",
                "max_used": "shmem:max_used_size", "fragments": "shmem:fragments"}


def shm_stats_from_counters() -> dict[str, int]:
    """core.shmmem figures from the computed `shmem:*` statistics that sipcore.stats
    registers when it is attached to the shm segment; all zero without shm."""
    return {key: _stats.get(name) for key, name in _SHMEM_STATS.items()}


@dataclass
class RpcEnv:
    """Runtime facts for RPC handlers. Every field has a usable default, so tests and
    partial runtimes fill only what they have."""

    start_time: float = field(default_factory=time.time)          # wall clock, epoch s
    rundir: str = "/run/pykam"                                     # -Y / rundir=
    cfg: Any = None                        # sipcore.cfg.compiler.CompiledConfig (or None)
    proc_table: ProcTable = field(default_factory=SingleProcessTable)
    shm_stats: Callable[[], dict[str, int]] = shm_stats_from_counters    # keys: _SHMEM_STATS
    sockets: list[Any] = field(default_factory=list)               # net.addr.SocketInfo
    aliases: list[tuple[str, int | None, str | None]] = field(default_factory=list)
    runtime_cfg: RuntimeCfg | None = None                       # cfg.* (shared mapping)
    stats: StatsStore | ModuleType = _stats                        # stats.* counters
    master_pid: int = field(default_factory=os.getpid)
    argv: list[str] = field(default_factory=list)                  # core.arg
    extra_modules: list[Any] = field(default_factory=list)         # tests: Modules w/o cfg
    stream: Any = None                     # sipcore.net.tcp.StreamNet (core.tcp_*), or None
    server: Any = None                     # the CtlServer, in the ctl process (ctl.listen)

    def __post_init__(self) -> None:
        if self.runtime_cfg is not None:
            link_table_debug(self.runtime_cfg, self.proc_table)

    @property
    def modules(self) -> Iterable[Any]:
        """The loaded modules (sipcore.mod.Module), in load order."""
        mods = list(getattr(self.cfg, "modules", None) or ())
        return mods + [m for m in self.extra_modules if m not in mods]

    @property
    def globals(self) -> dict[str, Any]:
        return dict(getattr(self.cfg, "globals", None) or {})

    @property
    def defines(self) -> dict[str, str | None]:
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
                                                      getattr(self.cfg, "cfg_vars", None),
                                                      modules=self.modules)
            link_table_debug(self.runtime_cfg, self.proc_table)
        return self.runtime_cfg


def link_table_debug(rc: RuntimeCfg, table: Any) -> None:
    """When the process table keeps the shared log level itself (sipcore.proc.table:
    a settable `debug` property that bumps the generation every child polls in on_idle),
    cfg.seti core debug writes it too, and core.debug starts from its value."""
    prop = getattr(type(table), "debug", None)
    if not isinstance(prop, property) or prop.fset is None:
        return
    rc.seed("core", "debug", int(table.debug))
    rc.on_set("core", "debug", lambda v: setattr(table, "debug", int(v)))
