"""Core RPC methods with Kamailio's names and result shapes: core.*, stats.*, cfg.*.

Runs in: the ctl process (and workers running jsonrpc_exec()). Shared state, read through the
RpcEnv: the process table and shm statistics (shm), the statistic counters, the runtime cfg
mapping (cfg.seti/cfg.sets write it; every process adopts it at its next refresh()).

Kamailio references: src/core/core_cmd.c (core.*), modules/kex/core_stats.c (stats.*),
modules/cfg_rpc/cfg_rpc.c (cfg.*).
"""
from __future__ import annotations

import os
import platform
import signal
import sys
import time
from typing import Any

from sipcore import KAMAILIO_COMPAT, __version__
from sipcore.errors import RpcFault
from sipcore.mod.exports import RpcExport
from sipcore.rpc.jsonrpc import Pairs
from sipcore.rpc.runtime_cfg import CfgError, RuntimeCfg, Value

SHM_KEYS = ("total", "free", "used", "real_used", "max_used", "fragments")
# stats.get_statistics names of the shm figures (Kamailio's "shmem" group)
SHM_STATS = {"total_size": "total", "used_size": "used", "real_used_size": "real_used",
             "max_used_size": "max_used", "free_size": "free", "fragments": "fragments"}
_UNITS = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def version_string() -> str:
    """`core.version`: like "kamailio 5.6.3 (x86_64/linux) "."""
    return f"pykam {__version__} ({platform.machine()}/{sys.platform})"


class CoreCmds:
    """The core methods bound to one RpcEnv (see sipcore.rpc.env for its fields)."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self._delayed: dict[tuple[str, str], Value] = {}      # cfg.set_delayed_* (per ctl)

    # ---- core.* --------------------------------------------------------------------------
    def version(self) -> str:
        """Version of the running server."""
        return version_string()

    def info(self) -> dict[str, str]:
        """Version, id, compiler, compile date and flags."""
        build = platform.python_build()
        return {"version": f"pykam {__version__}",
                "id": f"kamailio-{KAMAILIO_COMPAT}-compatible",
                "compiler": f"{platform.python_implementation()} {platform.python_version()}",
                "compiled": build[1],
                "flags": self.flags()}

    def flags(self) -> str:
        """Build flags."""
        return f"PYKAM, KAMAILIO_COMPAT={KAMAILIO_COMPAT}, USE_CFFI, USE_POSIX_IPC"

    def uptime(self) -> dict[str, Any]:
        """Current time, start time and seconds since start."""
        now = time.time()
        start = float(self.env.start_time)
        return {"now": time.ctime(now), "up_since": time.ctime(start),
                "uptime": int(now - start)}

    def _procs(self) -> list[tuple[int, int, int, str]]:
        """Rows as (idx, pid, rank, desc): the table may give 4-tuples or objects with
        those attributes (sipcore.proc.table.ProcEntry)."""
        out = []
        for e in self.env.proc_table.entries():
            if hasattr(e, "pid"):
                out.append((int(e.idx), int(e.pid), int(e.rank), str(e.desc)))
            else:
                idx, pid, rank, desc = e
                out.append((int(idx), int(pid), int(rank), str(desc)))
        return out

    def psx(self) -> list[dict[str, Any]]:
        """Processes: an array of {IDX, PID, DSC}."""
        return [{"IDX": idx, "PID": pid, "DSC": desc} for idx, pid, _rank, desc in self._procs()]

    def ps(self) -> list[Any]:
        """Processes: pid and description, one after the other."""
        out: list[Any] = []
        for _idx, pid, _rank, desc in self._procs():
            out.extend((pid, desc))
        return out

    def psa(self) -> list[dict[str, Any]]:
        """Processes with their rank: an array of {IDX, PID, RANK, DSC}."""
        return [{"IDX": idx, "PID": pid, "RANK": rank, "DSC": desc}
                for idx, pid, rank, desc in self._procs()]

    def shmmem(self, unit: str | None = None) -> dict[str, int]:
        """Shared memory: total, free, used, real_used, max_used, fragments [b|k|m|g]."""
        div = 1
        if unit:
            div = _UNITS.get(unit.strip().lower()[:1], 0)
            if not div:
                raise RpcFault(400, f"bad unit \"{unit}\" (b, k, m or g)")
        raw = self.env.shm_stats()
        return {k: int(raw.get(k, 0)) // (1 if k == "fragments" else div) for k in SHM_KEYS}

    def sockets_list(self) -> Pairs:
        """Listening sockets: {socket: {proto, address, port, mcast, mhomed, virtual}, ...}."""
        mhomed = "yes" if self.env.globals.get("mhomed") else "no"
        out = Pairs()
        for si in self.env.sockets:
            item: dict[str, Any] = {"proto": si.proto, "address": si.ip, "port": str(si.port),
                                    "mcast": "no", "mhomed": mhomed,
                                    "virtual": "yes" if getattr(si, "virtual", False) else "no"}
            if getattr(si, "advertise_host", None):
                item["advertise"] = f"{si.advertise_host}:{si.advertise_port or si.port}"
            if getattr(si, "name", None):
                item["name"] = si.name
            out.append(("socket", item))
        return out

    def aliases_list(self) -> Pairs:
        """Host aliases matched by `myself`: {alias: {proto, address, port}, ...}."""
        out = Pairs()
        for host, port, proto in self.env.aliases:
            out.append(("alias", {"proto": proto or "*", "address": host,
                                  "port": str(port) if port else "*"}))
        return out

    def echo(self, *args: Any) -> list[Any]:
        """The parameters, echoed back."""
        return list(args)

    def prints(self, *args: str) -> list[str]:
        """The parameters as strings."""
        return list(args)

    def printi(self, *args: int) -> list[int]:
        """The parameters as integers."""
        return list(args)

    def pwd(self) -> list[str]:
        """Working directory of the server."""
        return [os.getcwd()]

    def arg(self) -> list[str]:
        """Command line of the server."""
        return list(self.env.argv)

    def modules(self) -> list[str]:
        """Loaded modules."""
        return [m.name for m in self.env.modules]

    def ppdefines(self) -> list[str]:
        """Preprocessor defines (#!define / -A) of the configuration."""
        return sorted(self.env.defines)

    def ppdefines_full(self) -> list[dict[str, Any]]:
        """Preprocessor defines with their values."""
        return [{"name": k, "value": v} for k, v in sorted(self.env.defines.items())]

    def kill(self, signo: int = signal.SIGTERM) -> None:
        """Send a signal (default 15: graceful stop) to the master."""
        if not 0 < signo < signal.NSIG:
            raise RpcFault(400, f"bad signal number {signo}")
        try:
            os.kill(int(self.env.master_pid), signo)
        except OSError as exc:
            raise RpcFault(500, f"kill {self.env.master_pid}: {exc.strerror}") from None

    # ---- core.tcp_* (sipcore.net; the connection table is in shm) --------------------------
    def _net(self) -> Any:
        net = self.env.stream
        if net is None:
            raise RpcFault(500, "tcp support disabled")
        return net

    def tcp_info(self) -> dict[str, int]:
        """TCP/TLS: readers, max_connections, max_tls_connections, opened_connections,
        opened_tls_connections, write_queued_bytes."""
        return self._net().info()

    def tcp_list(self) -> list[dict[str, Any]]:
        """Open TCP/TLS connections: id, type, state, owner, addresses, age, aliases."""
        return self._net().list()

    def tcp_options(self) -> dict[str, Any]:
        """TCP parameters in effect."""
        return self._net().opts.as_rpc()

    # ---- stats.* --------------------------------------------------------------------------
    def _all_stats(self) -> dict[str, int]:
        snap = dict(self.env.stats.snapshot())
        if not any(k.startswith("shmem:") for k in snap):    # stats not attached to shm
            shm = self.env.shm_stats()
            for name, key in SHM_STATS.items():
                snap[f"shmem:{name}"] = int(shm.get(key, 0))
        return snap

    def _select(self, args: tuple[str, ...]) -> list[tuple[str, int]]:
        """`all`, `group:` (whole group), `group:name`, or a bare `name` (any group)."""
        snap = self._all_stats()
        if not args or "all" in args:
            return sorted(snap.items())
        picked: dict[str, int] = {}
        for a in args:
            a = a.strip()
            if a.endswith(":"):
                picked.update((k, v) for k, v in snap.items() if k.startswith(a))
            elif ":" in a:
                if a in snap:
                    picked[a] = snap[a]
            else:
                picked.update((k, v) for k, v in snap.items() if k.split(":", 1)[-1] == a)
        return sorted(picked.items())

    def get_statistics(self, *args: str) -> list[str]:
        """Statistics as "group:name = value" lines: all | group: | name ..."""
        return [f"{k} = {v}" for k, v in self._select(args)]

    def fetch(self, *args: str) -> dict[str, str]:
        """Statistics as {"group.name": "value"}: all | group: | name ..."""
        return {k.replace(":", ".", 1): str(v) for k, v in self._select(args)}

    def fetchn(self, *args: str) -> dict[str, int]:
        """Statistics as {"group.name": value}: all | group: | name ..."""
        return {k.replace(":", ".", 1): v for k, v in self._select(args)}

    def _resettable(self, args: tuple[str, ...]) -> list[tuple[str, int]]:
        if not args:
            raise RpcFault(400, "statistic name expected (all, group: or name)")
        return [(k, v) for k, v in self._select(args) if not k.startswith("shmem:")]

    def reset_statistics(self, *args: str) -> None:
        """Reset statistics to 0: all | group: | name ..."""
        for k, _ in self._resettable(args):
            self.env.stats.reset(k)

    def clear_statistics(self, *args: str) -> list[str]:
        """Reset statistics and return their old values."""
        picked = self._resettable(args)
        for k, _ in picked:
            self.env.stats.reset(k)
        return [f"{k} = {v}" for k, v in picked]

    # ---- cfg.* ----------------------------------------------------------------------------
    def _rc(self) -> RuntimeCfg:
        return self.env.get_runtime_cfg()

    def _cfg(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except CfgError as exc:
            raise RpcFault(exc.code, exc.message) from None

    def cfg_get(self, group: str, var: str) -> Value:
        """Current value of a runtime variable: group var (cfg.get core debug)."""
        return self._cfg(self._rc().get, group, var)

    def cfg_seti(self, group: str, var: str, value: int) -> None:
        """Set an integer variable now, in every process: group var value."""
        if self._cfg(self._rc().var, group, var).type != "int":
            raise RpcFault(400, f"{group}.{var} is a string variable (use cfg.sets)")
        self._cfg(self._rc().set, group, var, value)

    def cfg_sets(self, group: str, var: str, value: str) -> None:
        """Set a string variable now, in every process: group var value."""
        if self._cfg(self._rc().var, group, var).type != "str":
            raise RpcFault(400, f"{group}.{var} is an integer variable (use cfg.seti)")
        self._cfg(self._rc().set, group, var, value)

    def cfg_set(self, group: str, var: str, value: Any) -> None:
        """Set a variable now (int or string, as the variable): group var value."""
        self._cfg(self._rc().set, group, var, value)

    def cfg_list(self, group: str | None = None) -> list[str]:
        """Runtime variables as "group: var" lines [group]."""
        rc = self._rc()
        if group is not None and group not in rc.groups():
            raise RpcFault(404, f"group {group} not found")
        return [f"{v.group}: {v.name}" for v in rc.list(group)]

    def cfg_help(self, group: str, var: str) -> str:
        """Description and type of a runtime variable: group var."""
        v = self._cfg(self._rc().var, group, var)
        return f"{v.doc} (type: {v.type}, default: {v.default})".strip()

    def cfg_set_delayed(self, group: str, var: str, value: Any) -> None:
        """Prepare a change (applied by cfg.commit): group var value."""
        rc = self._rc()
        v = self._cfg(rc.var, group, var)
        if v.type == "int" and not isinstance(value, int):
            try:
                value = int(str(value), 0)
            except ValueError:
                raise RpcFault(400, f"{v.key} is an integer variable") from None
        self._delayed[(group, var)] = value if v.type == "int" else str(value)

    def cfg_set_delayed_int(self, group: str, var: str, value: int) -> None:
        """Prepare an integer change: group var value."""
        self.cfg_set_delayed(group, var, value)

    def cfg_set_delayed_string(self, group: str, var: str, value: str) -> None:
        """Prepare a string change: group var value."""
        self.cfg_set_delayed(group, var, value)

    def cfg_commit(self) -> None:
        """Apply the prepared changes."""
        pending, self._delayed = self._delayed, {}
        for (group, var), value in pending.items():
            self._cfg(self._rc().set, group, var, value)

    def cfg_rollback(self) -> None:
        """Drop the prepared changes."""
        self._delayed.clear()

    def cfg_diff(self) -> list[dict[str, Any]]:
        """Prepared changes: [{group, variable, old, new}]."""
        rc = self._rc()
        return [{"group": g, "variable": v, "old": rc.get(g, v), "new": new}
                for (g, v), new in self._delayed.items()]

    def cfg_reset(self, group: str) -> None:
        """Reset every variable of a group to its start value."""
        rc = self._rc()
        if group not in rc.groups():
            raise RpcFault(404, f"group {group} not found")
        for v in rc.list(group):
            rc.set(v.group, v.name, v.default)


def core_exports(env: Any) -> list[RpcExport]:
    """The core method table bound to ENV (name, handler, doc from the docstring, params)."""
    c = CoreCmds(env)
    table: list[tuple[str, Any, str]] = [
        ("core.version", c.version, ""),
        ("core.info", c.info, ""),
        ("core.flags", c.flags, ""),
        ("core.uptime", c.uptime, ""),
        ("core.psx", c.psx, ""),
        ("core.ps", c.ps, ""),
        ("core.psa", c.psa, ""),
        ("core.shmmem", c.shmmem, "[b|k|m|g]"),
        ("core.sockets_list", c.sockets_list, ""),
        ("core.aliases_list", c.aliases_list, ""),
        ("core.echo", c.echo, "[value ...]"),
        ("core.prints", c.prints, "[string ...]"),
        ("core.printi", c.printi, "[int ...]"),
        ("core.pwd", c.pwd, ""),
        ("core.arg", c.arg, ""),
        ("core.modules", c.modules, ""),
        ("core.ppdefines", c.ppdefines, ""),
        ("core.ppdefines_full", c.ppdefines_full, ""),
        ("core.kill", c.kill, "[signal]"),
        ("core.tcp_info", c.tcp_info, ""),
        ("core.tcp_list", c.tcp_list, ""),
        ("core.tcp_options", c.tcp_options, ""),
        ("stats.get_statistics", c.get_statistics, "all | group: | name ..."),
        ("stats.fetch", c.fetch, "all | group: | name ..."),
        ("stats.fetchn", c.fetchn, "all | group: | name ..."),
        ("stats.reset_statistics", c.reset_statistics, "all | group: | name ..."),
        ("stats.clear_statistics", c.clear_statistics, "all | group: | name ..."),
        ("cfg.get", c.cfg_get, "group var"),
        ("cfg.seti", c.cfg_seti, "group var int"),
        ("cfg.set_now_int", c.cfg_seti, "group var int"),
        ("cfg.sets", c.cfg_sets, "group var string"),
        ("cfg.set_now_string", c.cfg_sets, "group var string"),
        ("cfg.set", c.cfg_set, "group var value"),
        ("cfg.list", c.cfg_list, "[group]"),
        ("cfg.help", c.cfg_help, "group var"),
        ("cfg.set_delayed", c.cfg_set_delayed, "group var value"),
        ("cfg.set_delayed_int", c.cfg_set_delayed_int, "group var int"),
        ("cfg.set_delayed_string", c.cfg_set_delayed_string, "group var string"),
        ("cfg.commit", c.cfg_commit, ""),
        ("cfg.rollback", c.cfg_rollback, ""),
        ("cfg.diff", c.cfg_diff, ""),
        ("cfg.reset", c.cfg_reset, "group"),
    ]
    return [RpcExport(name, fn, (fn.__doc__ or "").strip(), params)
            for name, fn, params in table]
