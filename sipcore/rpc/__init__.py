"""Control interface, server side: JSON-RPC codec, method registry, core methods, ctl loop.

Files: jsonrpc.py (sans-I/O codec), registry.py (name -> handler), core_cmds.py (core.*,
stats.*, cfg.*), env.py (RpcEnv: runtime facts the master fills before fork),
runtime_cfg.py (cfg values shared by every process), server.py (the ctl process loop).
Importing this package is cheap: no sockets, no shm.
"""
