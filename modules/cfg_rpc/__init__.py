"""cfg_rpc: the cfg.* RPCs over the runtime configuration framework (cfg.get, cfg.seti,
cfg.sets, delayed changes, group instances).

Runs in: the RPC process. Shared state: the runtime cfg groups in shm (runtime issue).
The module has no parameters and no script functions. Pending (runtime issue): the cfg
framework itself; until then every cfg.* method answers with a 500 fault naming it.
"""
from __future__ import annotations

from typing import Any

from sipcore.errors import RpcFault
from sipcore.mod import Module

mod = Module("cfg_rpc", summary="RPC access to the runtime configuration (cfg.*).")

_METHODS = (
    ("cfg.set", "group var value: set a variable now (int or string)."),
    ("cfg.seti", "group var int: set an integer variable now."),
    ("cfg.sets", "group var string: set a string variable now."),
    ("cfg.set_now_int", "Alias of cfg.seti."),
    ("cfg.set_now_string", "Alias of cfg.sets."),
    ("cfg.set_delayed", "group var value: prepare a change (cfg.commit applies it)."),
    ("cfg.set_delayed_int", "group var int: prepare an integer change."),
    ("cfg.set_delayed_string", "group var string: prepare a string change."),
    ("cfg.commit", "Apply the prepared changes."),
    ("cfg.rollback", "Drop the prepared changes."),
    ("cfg.get", "group var: the current value."),
    ("cfg.help", "group var: description of a variable."),
    ("cfg.list", "[group]: the variables, one `group: var` per line."),
    ("cfg.diff", "The prepared changes, old and new values."),
    ("cfg.add_group_inst", "group[id]: add a group instance."),
    ("cfg.del_group_inst", "group[id]: delete a group instance."),
    ("cfg.reset", "group: reset a group to its defaults."),
)


def _pending(name: str):
    def handler(*_args: Any) -> Any:
        raise RpcFault(500, f"{name}: the runtime cfg framework arrives with the runtime issue")
    handler.__doc__ = f"{name}: wired by the runtime issue."
    return handler


for _name, _doc in _METHODS:
    mod.rpc(_name, _pending(_name), doc=_doc)
