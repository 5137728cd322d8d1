"""cfg_rpc: the cfg.* RPCs over the runtime configuration (cfg.get, cfg.seti, cfg.sets,
cfg.list, cfg.help, delayed changes with cfg.commit / cfg.rollback / cfg.diff, cfg.reset).

Runs in: the master (loading). The methods themselves are served by the core RPC table
(sipcore/rpc/core_cmds.py) in the ctl process, whether or not this module is loaded, so one
implementation answers them; loading it keeps Kamailio configs valid. Shared state: the
runtime cfg mapping (sipcore/rpc/runtime_cfg.py), written by cfg.seti/cfg.sets and adopted
by every process at its next refresh().

Not supported: group instances (cfg.add_group_inst / cfg.del_group_inst).
"""
from __future__ import annotations

from sipcore.mod import Module

mod = Module("cfg_rpc", summary="RPC access to the runtime configuration (cfg.*, served by "
             "the core).")
