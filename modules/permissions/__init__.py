"""permissions: IP and URI access control - the `address` and `trusted` tables (DB or file)
and hosts.allow-like allow/deny files.

Runs in: the master (mod_init: address/trusted rows loaded from the DB or address_file into
shm, engine disposed before fork), SIP workers (allow_* functions; with db_mode=0 allow_trusted
queries the DB through this process's own engine), the ctl process (permissions.* RPCs:
reloads write the new rows to shm for every worker).
Shared state: the ShmHashTable "permissions:data" (see perm_data.py). The allow/deny files
are read once per process on first use.
Kamailio equivalent: modules/permissions.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any

from sqlalchemy import column, select, table

from modules.permissions import perm_files
from modules.permissions.perm_data import AddrRow, SharedTables, TrustedRow, parse_address_file
from sipcore import db
from sipcore.errors import ModuleError, RpcFault
from sipcore.mod import ANY_ROUTE, FAILURE_ROUTE, REQUEST_ROUTE, Fx, ModContext, Module
from sipcore.msg import ParseError
from sipcore.pv import PvError, parse_pv
from sipcore.pv.spec import to_str
from sipcore.route.ctx import RouteCtx
from sipcore.shm import ShmHashTable

log = logging.getLogger(__name__)

mod = Module("permissions", summary="IP and URI access control: address and trusted tables, "
             "allow/deny files.")

RF = REQUEST_ROUTE | FAILURE_ROUTE

mod.param("default_allow_file", str, "permissions.allow", doc="Allow file of allow_routing().")
mod.param("default_deny_file", str, "permissions.deny", doc="Deny file of allow_routing().")
mod.param("check_all_branches", int, 1, doc="1: allow_routing checks every branch, not "
          "only the R-URI.")
mod.param("allow_suffix", str, ".allow", doc="Suffix added to a basename for the allow file.")
mod.param("deny_suffix", str, ".deny", doc="Suffix added to a basename for the deny file.")
mod.param("address_file", str, None, doc="File with the address rows instead of the table.")
mod.param("db_url", str, None, doc="Database with the address and trusted tables.")
mod.param("address_table", str, "address", doc="Address table name.")
mod.param("grp_col", str, "grp", doc="Address table: group column.")
mod.param("ip_addr_col", str, "ip_addr", doc="Address table: IP/subnet/DNS name column.")
mod.param("mask_col", str, "mask", doc="Address table: mask column.")
mod.param("port_col", str, "port", doc="Address table: port column (0 = any).")
mod.param("db_mode", int, 0, doc="trusted table: 0 query the DB on each check, 1 cache in "
          "shm.")
mod.param("trusted_table", str, "trusted", doc="Trusted table name.")
mod.param("source_col", str, "src_ip", doc="Trusted table: source IP column.")
mod.param("proto_col", str, "proto", doc="Trusted table: protocol column (any, udp...).")
mod.param("from_col", str, "from_pattern", doc="Trusted table: From URI regex column.")
mod.param("ruri_col", str, "ruri_pattern", doc="Trusted table: R-URI regex column.")
mod.param("tag_col", str, "tag", doc="Tag column (address and trusted tables).")
mod.param("priority_col", str, "priority", doc="Trusted table: priority column.")
mod.param("peer_tag_avp", str, None, doc="PV (e.g. $avp(s:peer_tag)) set to the tag of the "
          "matched row.")
mod.param("peer_tag_mode", int, 0, doc="0: tag of the first match; 1: tags of all matches "
          "(the function then returns their count).")
mod.param("max_subnets", int, 512, doc="Maximum number of subnet rows.")
mod.param("load_backends", int, 0xFFFF, doc="Bits: 1 address, 2 trusted, 4 allow files, "
          "8 deny files.")
mod.param("reload_delta", int, 5, doc="Minimum seconds between two RPC reloads.")
mod.param("trusted_cleanup_interval", int, 60, doc="Accepted for compatibility (old trusted "
          "versions are replaced at once).")

ADDRESS, TRUSTED = 1, 2
_state: dict[str, Any] = {"shared": None, "peer_tag": None, "last_reload": 0.0,
                          "base_dir": os.getcwd()}
_files = perm_files.RuleFiles()


def _shared() -> SharedTables:
    s = _state["shared"]
    if s is None:
        raise ModuleError("permissions: not initialised")
    return s


def _backend(bit: int) -> bool:
    return bool(int(mod.p.load_backends) & bit)


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: address and trusted rows into shm; peer_tag_avp parsed."""
    t = ctx.require_shm().named("permissions:data", lambda a: ShmHashTable.create(a, 16),
                  ShmHashTable.attach)
    t.clear()
    _state["shared"] = SharedTables(t)
    _files.clear()
    _state["peer_tag"] = None
    if mod.p.peer_tag_avp:
        try:
            spec = parse_pv(str(mod.p.peer_tag_avp), ctx.cfg.modules)
        except PvError as exc:
            raise ModuleError(f"permissions: bad peer_tag_avp: {exc}") from None
        if not spec.writable:
            raise ModuleError("permissions: peer_tag_avp must be writable")
        _state["peer_tag"] = spec
    try:
        if _backend(ADDRESS) and (mod.p.address_file or mod.p.db_url):
            n = reload_address()
            log.info("permissions: %s address rows loaded", n)
        if _backend(TRUSTED) and mod.p.db_url and int(mod.p.db_mode) == 1:
            n = reload_trusted()
            log.info("permissions: %s trusted rows loaded", n)
    except (db.DbError, ValueError, OSError) as exc:
        raise ModuleError(f"permissions: {exc}") from None


# ---- loading -----------------------------------------------------------------------------------

def _rows(url: str, name: str, cols: list[str]) -> list[Any]:
    t = table(name, *[column(c) for c in cols])

    def run() -> list[Any]:
        with db.get_engine(url).connect() as conn:
            return list(conn.execute(select(t)).all())

    return db.guarded(f"permissions: load of {name}", run)


def reload_address() -> int:
    """Read the address rows (file or DB) and publish them in shm; the row count."""
    p = mod.p
    if p.address_file:
        rows = parse_address_file(perm_files.resolve(str(p.address_file), _state["base_dir"]))
    else:
        url = str(p.db_url)
        try:
            raw = _rows(url, p.address_table, [p.grp_col, p.ip_addr_col, p.mask_col,
                                               p.port_col, p.tag_col])
        finally:
            db.dispose_engine(url)
        rows = [AddrRow(int(g or 0), str(ip), int(m if m is not None else 32), int(pt or 0),
                        None if tag is None else str(tag)) for g, ip, m, pt, tag in raw]
    subnets = sum(1 for r in rows if 0 < r.mask < (128 if ":" in r.ip_addr else 32))
    if subnets > int(p.max_subnets):
        raise ValueError(f"{subnets} subnets in the address table (max_subnets "
                         f"{p.max_subnets})")
    _shared().store("address", rows)
    return len(rows)


def _trusted_rows() -> list[TrustedRow]:
    p = mod.p
    url = str(p.db_url)
    raw = _rows(url, p.trusted_table, [p.source_col, p.proto_col, p.from_col, p.ruri_col,
                                       p.tag_col, p.priority_col])
    return [TrustedRow(str(ip), str(proto or "any"), fp, rp, tag, int(prio or 0))
            for ip, proto, fp, rp, tag, prio in raw]


def reload_trusted() -> int:
    try:
        rows = _trusted_rows()
    finally:
        db.dispose_engine(str(mod.p.db_url))
    _shared().store("trusted", rows)
    return len(rows)


# ---- address functions -------------------------------------------------------------------------

def _set_tags(ctx: RouteCtx, rows: list[Any]) -> int:
    """Store the tag(s) in peer_tag_avp; the function's return value."""
    spec = _state["peer_tag"]
    tags = [r.tag for r in rows if r.tag]
    if spec is not None and tags:
        for tag in (tags if int(mod.p.peer_tag_mode) == 1 else tags[:1]):
            spec.set(ctx, tag)
    if int(mod.p.peer_tag_mode) == 1:
        return len(rows)
    return 1


def _allow_address(ctx: RouteCtx, group: int, addr: str, port: int) -> int:
    rows = [r for r in _shared().address().matches(addr, port) if r.grp == group]
    return _set_tags(ctx, rows) if rows else -1


@mod.function("allow_address", args=(Fx.IGP, Fx.SPVE, Fx.IGP), routes=ANY_ROUTE)
def ki_allow_address(ctx: RouteCtx, group: int, addr: str, port: int) -> int:
    """1 if ADDR:PORT matches an entry of GROUP (IP, subnet or DNS name by string; port 0 in
    the table matches any), else -1."""
    return _allow_address(ctx, group, addr, port)


@mod.function("allow_source_address", args=(), routes=ANY_ROUTE)
def ki_allow_source_address(ctx: RouteCtx) -> int:
    """allow_address(1, "$si", "$sp")."""
    return _allow_address(ctx, 1, ctx.rcv.src_ip, ctx.rcv.src_port)


@mod.function("allow_source_address", args=(Fx.IGP,), routes=ANY_ROUTE)
def ki_allow_source_address_grp(ctx: RouteCtx, group: int) -> int:
    """allow_address(GROUP, "$si", "$sp")."""
    return _allow_address(ctx, group, ctx.rcv.src_ip, ctx.rcv.src_port)


def _address_group(ctx: RouteCtx, addr: str, port: int) -> int:
    rows = _shared().address().matches(addr, port)
    if not rows:
        return -1
    _set_tags(ctx, rows[:1])
    return rows[0].grp


@mod.function("allow_source_address_group", args=(), routes=ANY_ROUTE)
def ki_allow_source_address_group(ctx: RouteCtx) -> int:
    """The group of the first entry matching the source address and port, or -1."""
    return _address_group(ctx, ctx.rcv.src_ip, ctx.rcv.src_port)


@mod.function("allow_address_group", args=(Fx.SPVE, Fx.IGP), routes=ANY_ROUTE)
def ki_allow_address_group(ctx: RouteCtx, addr: str, port: int) -> int:
    """The group of the first entry matching ADDR:PORT, or -1."""
    return _address_group(ctx, addr, port)


# ---- trusted -----------------------------------------------------------------------------------

def _allow_trusted(ctx: RouteCtx, src_ip: str, proto: str, from_uri: str | None) -> int:
    if from_uri is None:
        try:
            from_uri = ctx.msg.from_.uri
        except ParseError:
            log.error("allow_trusted: bad or missing From header")
            return -1
    if int(mod.p.db_mode) == 1 or not mod.p.db_url:
        tt = _shared().trusted()
    else:
        from modules.permissions.perm_data import TrustedTable
        try:
            tt = TrustedTable.build(_trusted_rows())
        except db.DbError:
            return -1
    rows = tt.matches(src_ip, proto, from_uri, ctx.msg.ruri if ctx.msg.is_request else "")
    return _set_tags(ctx, rows) if rows else -1


@mod.function("allow_trusted", args=(), routes=RF)
def ki_allow_trusted(ctx: RouteCtx) -> int:
    """1 if a trusted row matches the source IP, transport, From URI and R-URI, else -1."""
    return _allow_trusted(ctx, ctx.rcv.src_ip, ctx.rcv.proto, None)


@mod.function("allow_trusted", args=(Fx.SPVE, Fx.SPVE), routes=RF)
def ki_allow_trusted_src(ctx: RouteCtx, src_ip: str, proto: str) -> int:
    """Same for the given source IP and protocol."""
    return _allow_trusted(ctx, src_ip, proto, None)


@mod.function("allow_trusted", args=(Fx.SPVE, Fx.SPVE, Fx.SPVE), routes=RF)
def ki_allow_trusted_from(ctx: RouteCtx, src_ip: str, proto: str, from_uri: str) -> int:
    """Same for the given source IP, protocol and From URI."""
    return _allow_trusted(ctx, src_ip, proto, from_uri)


# ---- allow/deny files --------------------------------------------------------------------------

def _pair_files(allow: str, deny: str) -> tuple[str, str]:
    base = _state["base_dir"]
    return perm_files.resolve(allow, base), perm_files.resolve(deny, base)


def _basename_files(basename: str) -> tuple[str, str]:
    return _pair_files(basename + str(mod.p.allow_suffix), basename + str(mod.p.deny_suffix))


def _routing(ctx: RouteCtx, files: tuple[str, str]) -> int:
    try:
        frm = ctx.msg.from_.uri
    except ParseError:
        return -1
    targets = [ctx.msg.ruri]
    if int(mod.p.check_all_branches):
        targets += [b.uri for b in ctx.branches]
    try:
        return _files.check(files[0], files[1], [(frm, t) for t in targets])
    except ValueError as exc:
        log.error("allow_routing: %s", exc)
        return -1


@mod.function("allow_routing", args=(), routes=RF)
def ki_allow_routing(ctx: RouteCtx) -> int:
    """(From, R-URI/branch) pairs against default_allow_file/default_deny_file: 1 / -1."""
    return _routing(ctx, _pair_files(str(mod.p.default_allow_file),
                                     str(mod.p.default_deny_file)))


@mod.function("allow_routing", args=(Fx.STR,), routes=RF)
def ki_allow_routing_base(ctx: RouteCtx, basename: str) -> int:
    """Same with BASENAME.allow / BASENAME.deny."""
    return _routing(ctx, _basename_files(basename))


@mod.function("allow_routing", args=(Fx.STR, Fx.STR), routes=RF)
def ki_allow_routing_files(ctx: RouteCtx, allow_file: str, deny_file: str) -> int:
    """Same with the two files."""
    return _routing(ctx, _pair_files(allow_file, deny_file))


def _register(ctx: RouteCtx, files: tuple[str, str]) -> int:
    try:
        to = ctx.msg.to.uri
        contacts = [c.uri for c in ctx.msg.contacts.contacts]
    except ParseError:
        return -1
    try:
        return _files.check(files[0], files[1], [(to, c) for c in contacts])
    except ValueError as exc:
        log.error("allow_register: %s", exc)
        return -1


@mod.function("allow_register", args=(Fx.STR,), routes=RF)
def ki_allow_register(ctx: RouteCtx, basename: str) -> int:
    """(To, Contact) pairs of a REGISTER against BASENAME.allow/.deny: 1 / -1."""
    return _register(ctx, _basename_files(basename))


@mod.function("allow_register", args=(Fx.STR, Fx.STR), routes=RF)
def ki_allow_register_files(ctx: RouteCtx, allow_file: str, deny_file: str) -> int:
    """Same with the two files."""
    return _register(ctx, _pair_files(allow_file, deny_file))


@mod.function("allow_uri", args=(Fx.STR, Fx.PVAR), routes=RF)
def ki_allow_uri(ctx: RouteCtx, basename: str, pv: Any) -> int:
    """(From, URI in PV) against BASENAME.allow/.deny: 1 / -1."""
    try:
        frm = ctx.msg.from_.uri
    except ParseError:
        return -1
    allow, deny = _basename_files(basename)
    try:
        return _files.check(allow, deny, [(frm, to_str(pv.get(ctx)))])
    except ValueError as exc:
        log.error("allow_uri: %s", exc)
        return -1


# ---- RPC ---------------------------------------------------------------------------------------

def _throttle() -> None:
    now = time.monotonic()
    if now - _state["last_reload"] < int(mod.p.reload_delta):
        raise RpcFault(500, "ongoing reload")
    _state["last_reload"] = now


def rpc_address_reload() -> dict[str, Any]:
    """permissions.addressReload: read the address rows again."""
    if not (mod.p.address_file or mod.p.db_url):
        raise RpcFault(500, "no address source configured")
    _throttle()
    try:
        reload_address()
    except (db.DbError, ValueError, OSError) as exc:
        raise RpcFault(500, f"Reload failed: {exc}") from None
    return {}


def rpc_address_dump() -> list[dict[str, Any]]:
    """permissions.addressDump: the exact-address rows."""
    a = _shared().address()
    return [{"gid": r.grp, "ip": r.ip_addr, "port": r.port, "tag": r.tag or ""}
            for rows in a.exact.values() for r in rows]


def rpc_subnet_dump() -> list[dict[str, Any]]:
    """permissions.subnetDump: the subnet rows."""
    return [{"id": i, "gid": r.grp, "ip": str(net.network_address), "mask": net.prefixlen,
             "port": r.port, "tag": r.tag or ""}
            for i, (net, r) in enumerate(_shared().address().subnets)]


def rpc_domain_dump() -> list[dict[str, Any]]:
    """permissions.domainDump: the DNS-name rows."""
    return [{"id": i, "gid": r.grp, "domain": name, "port": r.port, "tag": r.tag or ""}
            for i, (name, r) in enumerate((n, r) for n, rows in _shared().address().names.items()
                                          for r in rows)]


def rpc_trusted_reload() -> dict[str, Any]:
    """permissions.trustedReload: read the trusted table again (db_mode 1)."""
    if not mod.p.db_url:
        raise RpcFault(500, "no database configured")
    _throttle()
    try:
        reload_trusted()
    except db.DbError as exc:
        raise RpcFault(500, f"Reload failed: {exc}") from None
    return {}


def rpc_trusted_dump() -> list[dict[str, Any]]:
    """permissions.trustedDump: the cached trusted rows."""
    return [{"src_ip": r.src_ip, "proto": r.proto, "pattern": r.from_pattern or "",
             "ruri_pattern": r.ruri_pattern or "", "tag": r.tag or "",
             "priority": r.priority} for r in _shared().trusted().rows]


def _uri_check(basename: str, uri: str, contact: str) -> int:
    allow, deny = _basename_files(str(basename))
    try:
        return _files.check(allow, deny, [(str(uri), str(contact))])
    except ValueError as exc:
        raise RpcFault(500, str(exc)) from None


def rpc_test_uri(basename: str, uri: str, contact: str) -> str:
    """permissions.testUri basename uri contact: "Allowed" or "Denied"."""
    return "Allowed" if _uri_check(basename, uri, contact) > 0 else "Denied"


def rpc_allow_uri(basename: str, uri: str, contact: str) -> str:
    """permissions.allowUri basename uri contact: "Allowed" or "Denied"."""
    return rpc_test_uri(basename, uri, contact)


mod.rpc("permissions.addressReload", rpc_address_reload, doc="Reload the address rows.")
mod.rpc("permissions.addressDump", rpc_address_dump, doc="Dump the address rows.")
mod.rpc("permissions.subnetDump", rpc_subnet_dump, doc="Dump the subnet rows.")
mod.rpc("permissions.domainDump", rpc_domain_dump, doc="Dump the DNS-name rows.")
mod.rpc("permissions.trustedReload", rpc_trusted_reload, doc="Reload the trusted rows.")
mod.rpc("permissions.trustedDump", rpc_trusted_dump, doc="Dump the trusted rows.")
mod.rpc("permissions.testUri", rpc_test_uri, doc="Test a (uri, contact) pair against "
        "basename's files.", params="basename uri contact")
mod.rpc("permissions.allowUri", rpc_allow_uri, doc="Same as permissions.testUri.",
        params="basename uri contact")

__all__ = ["mod", "reload_address", "reload_trusted"]
