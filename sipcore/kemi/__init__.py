"""KEMI: routing scripts in Lua or Python with a `KSR` API generated from the export tables.

Runs in: every process that routes (SIP workers, timer, ctl for reload checks). The KSR tree
is built per process after fork, from the same FuncExport tables the cfg compiler uses:

    from sipcore.kemi import build_ksr, CURRENT
    tree = build_ksr(cfg.modules)      # KsrTree: core functions, pv, hdr, x, one dict per module
    tree.modules["sl"]["sl_send_reply"](404, "Not Found")   # acts on CURRENT.ctx

Engines (modules/app_lua, modules/app_python3) subclass sipcore.kemi.engine.KemiEngine and are
installed on the CompiledConfig (`cfg.kemi`); CompiledConfig.run() then delegates every route
run to the engine, so receive.py, tm and the master need no KEMI knowledge.
"""
from __future__ import annotations

from sipcore.kemi.registry import CURRENT, KsrTree, build_ksr, call_native

__all__ = ["CURRENT", "KsrTree", "build_ksr", "call_native"]
