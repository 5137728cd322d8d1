"""Preloading the code a child may run, so a respawned child never imports newer files.

Runs in: the master, before fork.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import sipcore


def preload(cfg: Any) -> int:
    """Import every not yet imported submodule of the packages the server already uses
    (sipcore and the loaded modules, recursively; packages nobody imported, such as an unused
    engine, are left alone), so a child (also one respawned much later, after the files on disk
    changed) never imports code the master did not run with. Returns the number of modules
    imported."""

    def walk(pkg: Any) -> int:
        n = 0
        for info in pkgutil.iter_modules(pkg.__path__):
            full = f"{pkg.__name__}.{info.name}"
            if info.ispkg:
                if full in sys.modules:
                    n += walk(sys.modules[full])
            elif full not in sys.modules and info.name != "__main__":
                importlib.import_module(full)
                n += 1
        return n

    roots = [sipcore] + [sys.modules[f"modules.{m.name}"] for m in cfg.modules
                         if f"modules.{m.name}" in sys.modules]
    return sum(walk(r) for r in roots if hasattr(r, "__path__"))
