"""The tls.cfg file format (Kamailio tls module): profiles per role and address.

Runs in: the master (mod_init) and whichever process reloads (ctl for tls.reload, TCP workers
when they adopt a new generation). Shared state: none; pure parsing into TlsProfile values.

    [server:default]            profile for every TLS listen socket without its own section
    [client:default]            profile for outbound TLS connections
    [server:10.0.0.10:5061]     a listen address;  [server:[::1]:5061] for IPv6
    [client:10.0.0.20:5061]     a destination address
    [server:any] / [client:any] with server_name: matched by SNI / used for that server name

Keys: method, certificate, private_key, ca_list, ca_path, crl, verify_certificate,
verify_depth, require_certificate, cipher_list, server_name, server_name_mode, server_id,
verify_client. Booleans accept yes/no, on/off, true/false, 1/0. Relative file names are taken
relative to the tls.cfg directory.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field

from sipcore.errors import PykamError

KEYS = ("method", "certificate", "private_key", "ca_list", "ca_path", "crl",
        "verify_certificate", "verify_depth", "require_certificate", "cipher_list",
        "server_name", "server_name_mode", "server_id", "verify_client")
_BOOL_KEYS = ("verify_certificate", "require_certificate")
_INT_KEYS = ("verify_depth", "server_name_mode")
_SECTION = re.compile(r"^\[\s*(server|client)\s*:\s*(default|any|\[[0-9a-fA-F:.]+\]:\d+|"
                      r"[^:\]\s]+:\d+)\s*\]$", re.IGNORECASE)


class TlsCfgError(PykamError):
    """A tls.cfg problem, with file:line."""


@dataclass(frozen=True)
class TlsProfile:
    """One [role:address] section (module parameters fill what the file leaves out)."""

    role: str = "server"                    # server | client
    address: str = "default"                # default | any | ip:port
    method: str = "TLSv1.2+"
    certificate: str | None = None
    private_key: str | None = None
    ca_list: str | None = None
    ca_path: str | None = None
    crl: str | None = None
    verify_certificate: bool = False
    verify_depth: int = 9
    require_certificate: bool = False
    cipher_list: str | None = None
    server_name: str | None = None
    server_name_mode: int = 0
    server_id: str | None = None
    verify_client: str | None = None

    @property
    def name(self) -> str:
        return f"{self.role}:{self.address}"


@dataclass
class TlsConfig:
    profiles: dict[str, TlsProfile] = field(default_factory=dict)   # "server:default" -> ...

    def server(self, ip: str, port: int) -> TlsProfile:
        return self.profiles.get(f"server:{_addr(ip, port)}") or self.profiles["server:default"]

    def client(self, ip: str, port: int) -> TlsProfile:
        return self.profiles.get(f"client:{_addr(ip, port)}") or self.profiles["client:default"]


def _addr(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _bool(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in ("yes", "on", "true", "1"):
        return True
    if v in ("no", "off", "false", "0"):
        return False
    raise TlsCfgError(f"{where}: expected yes or no, got \"{value}\"")


def parse_tls_cfg(text: str, defaults: TlsProfile, path: str = "tls.cfg") -> TlsConfig:
    """Parse TEXT; DEFAULTS (from modparams) seed every profile. server:default and
    client:default always exist (from DEFAULTS when the file has no such section)."""
    base_dir = os.path.dirname(os.path.abspath(path))
    out = TlsConfig()
    cur: dict | None = None
    cur_name = ""
    sections: list[tuple[str, dict]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{lineno}"
        if line.startswith("["):
            m = _SECTION.match(line)
            if not m:
                raise TlsCfgError(f"{where}: bad section \"{line}\" (expected "
                                  "[server|client:default|any|ip:port])")
            cur_name = f"{m.group(1).lower()}:{m.group(2).lower()}"
            cur = {"role": m.group(1).lower(), "address": m.group(2).lower()}
            sections.append((cur_name, cur))
            continue
        if cur is None:
            raise TlsCfgError(f"{where}: \"{line}\" before any [section]")
        key, eq, value = line.partition("=")
        key = key.strip().lower()
        if not eq or key not in KEYS:
            raise TlsCfgError(f"{where}: unknown setting \"{line}\" in [{cur_name}]")
        value = value.strip().strip('"')
        if key in _BOOL_KEYS:
            cur[key] = _bool(value, where)
        elif key in _INT_KEYS:
            try:
                cur[key] = int(value)
            except ValueError:
                raise TlsCfgError(f"{where}: {key} expects an integer") from None
        elif key in ("certificate", "private_key", "ca_list", "ca_path", "crl") and value:
            cur[key] = value if os.path.isabs(value) else os.path.join(base_dir, value)
        else:
            cur[key] = value
    for name, values in sections:
        if name in out.profiles:
            raise TlsCfgError(f"{path}: section [{name}] defined twice")
        out.profiles[name] = dataclasses.replace(defaults, **values)
    for role in ("server", "client"):
        out.profiles.setdefault(f"{role}:default",
                                dataclasses.replace(defaults, role=role, address="default"))
    return out
