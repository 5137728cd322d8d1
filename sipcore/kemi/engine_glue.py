"""What app_lua and app_python3 share around their engines: the script-path check of the
`load` parameter, child_init, and the reload RPC.

Runs in: the master (modparam check), every routing process (child_init), the ctl process
(reload). Shared state: none here; the engines publish reloads through shm themselves.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from sipcore.errors import ModuleError, RpcFault
from sipcore.proc import ranks

log = logging.getLogger(__name__)

_MASTER_RANKS = (ranks.PROC_INIT, ranks.PROC_MAIN, ranks.PROC_POSTCHILDINIT)


def script_path_validator(lang: str, check_syntax: Callable[[str], Any],
                          load_error: type[Exception]) -> Callable[[Any], str]:
    """modparam validator: the script exists and compiles; returns its absolute path."""

    def validate(value: Any) -> str:
        path = str(value)
        if not os.path.isfile(path):
            raise ValueError(f"{lang} script \"{path}\" not found")
        try:
            check_syntax(path)
        except load_error as e:
            raise ValueError(f"{lang} script does not compile: {e}") from None
        except OSError as e:
            raise ValueError(f"cannot read {lang} script \"{path}\": {e.strerror or e}") from None
        return os.path.abspath(path)

    return validate


def engine_child_init(module: str, engine: Any, rank: int, load_error: type[Exception]) -> None:
    """Every process but the master creates its own interpreter with the script loaded."""
    if engine is None or rank in _MASTER_RANKS:
        return
    try:
        engine.child_init(rank)
    except load_error as e:
        raise ModuleError(f"{module}: {e}") from None


def engine_reload(module: str, engine: Any, cfgengine: str, load_error: type[Exception],
                  allowed: bool = True) -> dict[str, Any]:
    """The reload RPC: check the script, then every process loads it at its next message."""
    if engine is None:
        raise RpcFault(500, f"{module} is not the configuration engine (cfgengine "
                       f"\"{cfgengine}\")")
    if not allowed:
        raise RpcFault(500, "reload is disabled (modparam reload=0)")
    try:
        res: dict[str, Any] = engine.request_reload()
    except load_error as e:
        log.error("%s.reload refused: %s", module, e)
        raise RpcFault(500, f"script not reloaded: {e}") from None
    log.info("%s.reload: generation %s", module, res['new'])
    return res
