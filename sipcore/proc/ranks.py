"""Process ranks passed to module `child_init(rank)`, with Kamailio's values (sr_module.h).

Positive ranks are SIP workers (1 = PROC_SIPINIT, the first worker, which does once-only work
such as running event_route[core:worker-one-init]); negative ranks are helper processes.
"""
PROC_MAIN = 0               # master, after the core children are forked
PROC_TIMER = -1             # timer process
PROC_RPC = -2               # ctl / RPC process
PROC_FIFO = PROC_RPC
PROC_TCP_MAIN = -4
PROC_UNIXSOCK = -5
PROC_ATTENDANT = -10
PROC_POSTCHILDINIT = -126   # master, after every child_init
PROC_INIT = -127            # master, before any fork
PROC_NOCHLDINIT = -128
PROC_SIPINIT = 1
PROC_SIPROUTER = 2
PROC_SIPRPC = 127
PROC_XWORKER = PROC_SIPRPC
