"""permissions data: the `address` and `trusted` tables, parsed, matched and kept in shm.

Runs in: the master (first load in mod_init), the ctl process (reloads), SIP workers
(matching). Shared state: the ShmHashTable "permissions:data": b"address"/b"trusted" -> the
rows as JSON text (plain data, never pickles), b"address:ver"/b"trusted:ver" -> int64 versions
bumped on every reload. A worker re-parses a table only when its version changed, so a reload
in the ctl process reaches every worker with one 8-byte read per check.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sipcore.shm import ShmHashTable
from sipcore.shm.hashtable import unpack_int

IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AddrRow:
    grp: int
    ip_addr: str
    mask: int
    port: int
    tag: str | None


@dataclass
class AddressTable:
    """Exact addresses (full-length masks), subnets and DNS names, each with group, port, tag."""
    exact: dict[str, list[AddrRow]] = field(default_factory=dict)
    subnets: list[tuple[IpNet, AddrRow]] = field(default_factory=list)
    names: dict[str, list[AddrRow]] = field(default_factory=dict)
    rows: list[AddrRow] = field(default_factory=list)

    @classmethod
    def build(cls, rows: list[AddrRow]) -> AddressTable:
        t = cls(rows=list(rows))
        for r in rows:
            try:
                ip = ipaddress.ip_address(r.ip_addr)
            except ValueError:
                t.names.setdefault(r.ip_addr.lower(), []).append(r)
                continue
            full = 32 if ip.version == 4 else 128
            mask = full if r.mask <= 0 or r.mask > full else r.mask
            if mask == full:
                t.exact.setdefault(str(ip), []).append(r)
            else:
                t.subnets.append((ipaddress.ip_network(f"{ip}/{mask}", strict=False), r))
        t.subnets.sort(key=lambda s: s[1].grp)
        return t

    def matches(self, addr: str, port: int) -> list[AddrRow]:
        """Every row matching ADDR:PORT: exact addresses, then subnets, then DNS names (by
        string, no lookup). A row with port 0 matches any port."""
        out: list[AddrRow] = []
        try:
            ip: Any = ipaddress.ip_address(addr.strip("[]"))
        except ValueError:
            ip = None
        if ip is not None:
            out += [r for r in self.exact.get(str(ip), ()) if r.port in (0, port)]
            out += [r for net, r in self.subnets
                    if ip.version == net.version and ip in net and r.port in (0, port)]
        else:
            out += [r for r in self.names.get(addr.lower(), ()) if r.port in (0, port)]
        return out


@dataclass(frozen=True)
class TrustedRow:
    src_ip: str
    proto: str
    from_pattern: str | None
    ruri_pattern: str | None
    tag: str | None
    priority: int


def _rx(p: str | None) -> re.Pattern[str] | None:
    if p is None or p == "":
        return None
    try:
        return re.compile(p)
    except re.error:
        return re.compile(r"(?!)")           # a broken pattern matches nothing


@dataclass
class TrustedTable:
    by_ip: dict[str, list[tuple[TrustedRow, re.Pattern[str] | None,
                                re.Pattern[str] | None]]] = field(default_factory=dict)
    rows: list[TrustedRow] = field(default_factory=list)

    @classmethod
    def build(cls, rows: list[TrustedRow]) -> TrustedTable:
        t = cls(rows=list(rows))
        for r in sorted(rows, key=lambda r: -r.priority):
            t.by_ip.setdefault(r.src_ip, []).append((r, _rx(r.from_pattern),
                                                     _rx(r.ruri_pattern)))
        return t

    def matches(self, src_ip: str, proto: str, from_uri: str, ruri: str) -> list[TrustedRow]:
        """Rows for SRC_IP (string compare) whose proto is `any` or PROTO and whose patterns
        (when set) match the From URI and the R-URI; highest priority first."""
        out = []
        for r, frx, rrx in self.by_ip.get(src_ip, ()):
            if r.proto.lower() not in ("any", proto.lower()):
                continue
            if frx is not None and not frx.search(from_uri):
                continue
            if rrx is not None and not rrx.search(ruri):
                continue
            out.append(r)
        return out


class SharedTables:
    """The tables in shm, with a per-process parsed cache checked by version."""

    def __init__(self, table: ShmHashTable) -> None:
        self.table = table
        self._cache: dict[str, tuple[int, Any]] = {}

    def store(self, name: str, rows: list[Any]) -> None:
        data = json.dumps([r.__dict__ for r in rows]).encode()
        self.table.set(name.encode(), data)
        self.table.incr(f"{name}:ver".encode())

    def version(self, name: str) -> int:
        raw = self.table.get(f"{name}:ver".encode())
        return unpack_int(raw) if raw else 0

    def _get(self, name: str, row_cls: Any, table_cls: Any) -> Any:
        ver = self.version(name)
        hit = self._cache.get(name)
        if hit is not None and hit[0] == ver:
            return hit[1]
        raw = self.table.get(name.encode()) or b"[]"
        parsed = table_cls.build([row_cls(**d) for d in json.loads(raw)])
        self._cache[name] = (ver, parsed)
        return parsed

    def address(self) -> AddressTable:
        return self._get("address", AddrRow, AddressTable)

    def trusted(self) -> TrustedTable:
        return self._get("trusted", TrustedRow, TrustedTable)


def parse_address_file(path: str) -> list[AddrRow]:
    """address_file: `grp ip_addr [mask [port [tag]]]` per line, `#` comments."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            try:
                grp = int(parts[0])
                ip = parts[1]
                mask = int(parts[2]) if len(parts) > 2 else 0
                port = int(parts[3]) if len(parts) > 3 else 0
            except (ValueError, IndexError):
                raise ValueError(f"{path}:{n}: bad address line \"{line}\"") from None
            rows.append(AddrRow(grp, ip, mask, port, parts[4] if len(parts) > 4 else None))
    return rows
