"""Runtime-changeable configuration values shared by every process (Kamailio's cfg framework).

Runs in: created in the master before fork (so every child maps the same pages); written by
the process that answers cfg.seti / cfg.sets (the ctl process, or a worker running
jsonrpc_exec); read by every process through `refresh()`.
Shared state: one MAP_SHARED region (anonymous mmap by default, or a buffer the runtime hands
in, e.g. carved from the shm segment). Layout, all little-endian:

    offset 0   uint64  generation (seqlock: odd while a write is in progress)
    then one slot per variable, in declaration order:
        int  slot: int64 value
        str  slot: uint16 length + STR_MAX bytes of UTF-8

Invariant: only whole-slot writes happen under the writer lock with the generation odd; a
reader copies the values it needs, and retries when the generation moved or was odd.

Kamailio applies a changed cfg value in a process at its next `cfg_update()` (start of each
message). Here every process calls `refresh()` at the top of its loop (one 8-byte read when
nothing changed); refresh() runs the on-change hooks, e.g. `core.debug` -> log level.
"""
from __future__ import annotations

import logging
import mmap
import multiprocessing
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sipcore import log as klog

log = logging.getLogger(__name__)

STR_MAX = 254                 # bytes of a string slot (Kamailio cfg strings are short too)
_GEN = struct.Struct("<Q")
_INT = struct.Struct("<q")
_LEN = struct.Struct("<H")
_STR_SLOT = _LEN.size + STR_MAX

Value = int | str


class CfgError(ValueError):
    """A cfg.* request names an unknown variable or gives an unusable value."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CfgVar:
    """One runtime variable: `group.name`, int or str, its default and its description."""

    group: str
    name: str
    type: str                 # "int" or "str"
    default: Value
    doc: str = ""
    validator: Callable[[Value], Value] | None = None

    @property
    def key(self) -> str:
        return f"{self.group}.{self.name}"


def _facility(value: Value) -> Value:
    klog.facility_from_name(str(value))       # raises ValueError on an unknown name
    return str(value)


def core_vars(globals_: dict[str, Any] | None = None) -> list[CfgVar]:
    """The `rt` core params of sipcore.cfg.globals as group `core`, with the values of the
    loaded configuration (GLOBALS) as defaults."""
    from sipcore.cfg.globals import CORE_PARAMS

    g = globals_ or {}
    out: list[CfgVar] = []
    for p in CORE_PARAMS:
        if not p.runtime:
            continue
        value = g.get(p.name, p.default)
        default: Value
        if p.type in ("int", "bool"):
            typ, default = "int", int(value or 0)
        else:
            typ, default = "str", "" if value is None else str(value)
        validator = _facility if p.name == "log_facility" else None
        out.append(CfgVar("core", p.name, typ, default, p.doc, validator))
    return out


def module_vars(modules: Iterable[Any]) -> list[CfgVar]:
    """The cfg groups of loaded modules (Module.runtime_cfg): group = module name, start
    values = the modparam values of the loaded configuration."""
    out: list[CfgVar] = []
    for m in modules:
        for name in getattr(m, "cfg_group", ()):
            pe = m.params[name]
            value = getattr(m.p, name)
            if pe.type is int:
                out.append(CfgVar(m.name, name, "int", int(value or 0), pe.doc))
            else:
                out.append(CfgVar(m.name, name, "str", "" if value is None else str(value),
                                  pe.doc))
    return out


def script_vars(cfg_vars: dict[str, tuple[Any, str]] | None) -> list[CfgVar]:
    """Variables declared in the cfg file (`group.var = value desc "text"`)."""
    out: list[CfgVar] = []
    for full, (value, desc) in (cfg_vars or {}).items():
        group, _, name = full.partition(".")
        if isinstance(value, (bool, int)):
            out.append(CfgVar(group, name, "int", int(value), desc or ""))
        else:
            out.append(CfgVar(group, name, "str", "" if value is None else str(value),
                              desc or ""))
    return out


class RuntimeCfg:
    """The shared table of runtime variables (see the module docstring for the layout)."""

    def __init__(self, variables: Iterable[CfgVar], buf: Any | None = None) -> None:
        self.vars: dict[str, CfgVar] = {}
        self._offsets: dict[str, int] = {}
        off = _GEN.size
        for v in variables:
            if v.key in self.vars:
                continue
            self.vars[v.key] = v
            self._offsets[v.key] = off
            off += _INT.size if v.type == "int" else _STR_SLOT
        self.size = off
        if buf is None:
            buf = mmap.mmap(-1, self.size, flags=mmap.MAP_SHARED)
        elif len(buf) < self.size:
            raise ValueError(f"runtime cfg needs {self.size} bytes, got {len(buf)}")
        self._buf = buf
        # fork-inherited POSIX semaphore: serialises writers (ctl process, jsonrpc_exec)
        self._wlock = multiprocessing.Lock()
        self._seen = -1
        self._snapshot_gen = 0
        self._values: dict[str, Value] = {}
        self._hooks: dict[str, list[Callable[[Value], None]]] = {}
        self._publishers: dict[str, list[Callable[[Value], None]]] = {}
        for v in self.vars.values():
            self._write_slot(v, v.default)
        _GEN.pack_into(self._buf, 0, 0)
        self.refresh()

    @classmethod
    def from_config(cls, globals_: dict[str, Any] | None = None,
                    cfg_vars: dict[str, tuple[Any, str]] | None = None,
                    buf: Any | None = None, modules: Iterable[Any] = ()) -> RuntimeCfg:
        """Core `rt` params, the script's cfg variables and the cfg groups of MODULES (e.g.
        `tm.fr_inv_timer`); `core.debug` drives the log level of the process that
        refreshes, `core.log_facility` its syslog facility, a module variable its module."""
        modules = list(modules)
        rc = cls(core_vars(globals_) + script_vars(cfg_vars) + module_vars(modules), buf)
        rc.on_change("core", "debug", lambda v: klog.set_debug(int(v)))
        rc.on_change("core", "log_facility", lambda v: klog.configure(facility=str(v)))
        for m in modules:
            for name in m.cfg_group:
                rc.on_change(m.name, name,
                             lambda v, m=m, name=name: m.cfg_apply(name, v))
        return rc

    @staticmethod
    def size_for(variables: Iterable[CfgVar]) -> int:
        """Bytes a caller-provided buffer must have for VARIABLES."""
        return _GEN.size + sum(_INT.size if v.type == "int" else _STR_SLOT for v in variables)

    # ---- hooks -----------------------------------------------------------------------------
    def on_change(self, group: str, name: str, fn: Callable[[Value], None]) -> None:
        """Call FN(value) in each process when the value is seen to change in refresh()."""
        self._hooks.setdefault(f"{group}.{name}", []).append(fn)

    def on_set(self, group: str, name: str, fn: Callable[[Value], None]) -> None:
        """Call FN(value) in the writing process right after a set() stored the value: to
        mirror it into another shared place (e.g. the process table's debug word that the
        children poll)."""
        self._publishers.setdefault(f"{group}.{name}", []).append(fn)

    def seed(self, group: str, name: str, value: Value) -> None:
        """Set the start value without running publishers (master, pre-fork)."""
        v = self.var(group, name)
        self._write_slot(v, value)
        self._values[v.key] = value

    # ---- reading ---------------------------------------------------------------------------
    def generation(self) -> int:
        return _GEN.unpack_from(self._buf, 0)[0]

    def refresh(self) -> bool:
        """Adopt the shared values if they changed since the last call in this process;
        run the hooks of the changed variables. Returns True if anything changed."""
        gen = self.generation()
        if gen == self._seen:
            return False
        snap = self._snapshot()
        changed = [k for k, v in snap.items() if self._values.get(k) != v]
        self._values = snap
        self._seen = self._snapshot_gen
        for key in changed:
            for fn in self._hooks.get(key, ()):
                try:
                    fn(snap[key])
                except (ValueError, TypeError) as exc:
                    log.error("cfg: applying %s=%r failed: %s", key, snap[key], exc)
        return bool(changed)

    def _snapshot(self) -> dict[str, Value]:
        for _ in range(1000):
            g1 = self.generation()
            if g1 & 1:
                time.sleep(0)
                continue
            snap = {k: self._read_slot(v) for k, v in self.vars.items()}
            if self.generation() == g1:
                self._snapshot_gen = g1
                return snap
        # a writer died mid-write: take what is there (every slot write is self-contained)
        self._snapshot_gen = self.generation()
        return {k: self._read_slot(v) for k, v in self.vars.items()}

    def _read_slot(self, v: CfgVar) -> Value:
        off = self._offsets[v.key]
        if v.type == "int":
            return _INT.unpack_from(self._buf, off)[0]
        n = min(_LEN.unpack_from(self._buf, off)[0], STR_MAX)
        return bytes(self._buf[off + _LEN.size:off + _LEN.size + n]).decode("utf-8", "replace")

    def var(self, group: str, name: str) -> CfgVar:
        v = self.vars.get(f"{group}.{name}")
        if v is None:
            raise CfgError(404, f"variable {group}.{name} not found")
        return v

    def get(self, group: str, name: str) -> Value:
        """The current shared value (read now, not the process's last refreshed copy)."""
        v = self.var(group, name)
        return self._snapshot()[v.key]

    def groups(self) -> list[str]:
        return sorted({v.group for v in self.vars.values()})

    def list(self, group: str | None = None) -> list[CfgVar]:
        return [v for v in self.vars.values() if group is None or v.group == group]

    # ---- writing ---------------------------------------------------------------------------
    def set(self, group: str, name: str, value: Value) -> None:
        """Type-check, validate and store VALUE; visible to every process at its next
        refresh() (this process refreshes at once)."""
        v = self.var(group, name)
        if v.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                try:
                    value = int(str(value).strip(), 0)
                except ValueError:
                    raise CfgError(400, f"{v.key} is an integer variable") from None
        else:
            value = str(value)
            if len(value.encode("utf-8")) > STR_MAX:
                raise CfgError(400, f"{v.key}: value longer than {STR_MAX} bytes")
        if v.validator is not None:
            try:
                value = v.validator(value)
            except ValueError as exc:
                raise CfgError(400, f"{v.key}: {exc}") from None
        if not self._wlock.acquire(timeout=1.0):
            log.warning("cfg: writer lock busy for 1 s, setting %s anyway", v.key)
            self._store(v, value)
        else:
            try:
                self._store(v, value)
            finally:
                self._wlock.release()
        for fn in self._publishers.get(v.key, ()):
            fn(value)
        self.refresh()

    def _store(self, v: CfgVar, value: Value) -> None:
        gen = self.generation()
        start = gen + 1 if gen % 2 == 0 else gen     # odd: writes in progress
        _GEN.pack_into(self._buf, 0, start)
        self._write_slot(v, value)
        _GEN.pack_into(self._buf, 0, start + 1)

    def _write_slot(self, v: CfgVar, value: Value) -> None:
        off = self._offsets[v.key]
        if v.type == "int":
            _INT.pack_into(self._buf, off, int(value))
        else:
            data = str(value).encode("utf-8")[:STR_MAX]
            _LEN.pack_into(self._buf, off, len(data))
            self._buf[off + _LEN.size:off + _LEN.size + len(data)] = data
