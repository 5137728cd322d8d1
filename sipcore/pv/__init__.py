"""Pseudo-variables (`$ru`, `$hdr(X)`, `$(avp(a)[*])`) and transformations (`{s.len}`).

Runs in: the master (parsing at cfg compile time) and every process that runs routes.

    from sipcore.pv import parse_pv, scan_pv, parse_format, PvSpec, Format, PvError
    spec = parse_pv("$(hdr(Via)[1]{s.tolower})", modreg)   # once, at compile time
    spec.get(ctx)          # str | int | None ($null)
    spec.set(ctx, value)   # writable PVs; None means $null (delete / reset)
    fmt = parse_format("sip:$rU@$rd", modreg); fmt.eval(ctx)
    cached_pv("$ru", modreg)  # run-time names (KEMI), parsed once per process
    set_defines_provider(defines.get)   # the cfg compiler: $def(NAME) / $defn(NAME)

Core classes register themselves from msgpv/netpv/miscpv/vars on import; modules add classes
with `Module.pv(name, factory)` and transformation classes with `Module.transform(name,
factory)`, looked up through the ModuleRegistry passed as `modreg`.
"""
from __future__ import annotations

from sipcore.pv import miscpv, msgpv, netpv, transforms, vars  # noqa: F401  (register classes)
from sipcore.pv.errors import PvError
from sipcore.pv.miscpv import set_defines_provider
from sipcore.pv.parser import NULL_TEXT, Format, cached_pv, parse_format, parse_pv, scan_pv
from sipcore.pv.spec import ALL, ConstPv, FuncPv, Index, PvSpec, PvValue

__all__ = [
    "ALL", "ConstPv", "Format", "FuncPv", "Index", "NULL_TEXT", "PvError", "PvSpec", "PvValue",
    "cached_pv", "parse_format", "parse_pv", "scan_pv", "set_defines_provider",
]
