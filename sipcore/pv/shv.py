"""$shv(name): shared variables, visible to every process.

Runs in: the master (initial values from modparam("pv", "shvset", ...)) and every process that
reads or writes $shv. Shared state: the active ShvBackend.

For now the backend is a per-process dictionary (`LocalShvBackend`): correct for a single
process and for tests. The runtime moves it into shared memory by implementing ShvBackend over
shm and calling `set_backend()` in the master before fork; nothing else changes. Values are
`int | str`; a name that was never set reads as $null. Each write is atomic on its own
(Kamailio gives no multi-operation locking either).
"""
from __future__ import annotations

import threading
from typing import Iterator, Optional, Protocol, Union

ShvValue = Union[int, str]


class ShvBackend(Protocol):
    def get(self, name: str) -> Optional[ShvValue]: ...
    def set(self, name: str, value: Optional[ShvValue]) -> None: ...   # None resets to 0
    def items(self) -> Iterator[tuple[str, ShvValue]]: ...


class LocalShvBackend:
    """Process-local store (pre-shm). The lock keeps it safe for threaded KEMI callers."""

    def __init__(self) -> None:
        self._vals: dict[str, ShvValue] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Optional[ShvValue]:
        return self._vals.get(name)

    def set(self, name: str, value: Optional[ShvValue]) -> None:
        # Kamailio: assigning $null to a $shv sets it to int 0 (the variable stays declared).
        with self._lock:
            self._vals[name] = 0 if value is None else value

    def items(self) -> Iterator[tuple[str, ShvValue]]:
        with self._lock:
            snapshot = list(self._vals.items())
        return iter(snapshot)


_backend: ShvBackend = LocalShvBackend()


def backend() -> ShvBackend:
    return _backend


def set_backend(b: ShvBackend) -> None:
    """Swap the store (the master does this once, before fork, when shm exists)."""
    global _backend
    _backend = b


def get(name: str) -> Optional[ShvValue]:
    return _backend.get(name)


def set(name: str, value: Optional[ShvValue]) -> None:  # noqa: A001 - mirrors Kamailio shv API
    _backend.set(name, value)
