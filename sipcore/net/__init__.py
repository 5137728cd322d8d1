"""Stream transports (TCP, TLS) of the runtime.

Runs in: the master (binds listen sockets, creates the shared connection table and the
mailboxes before fork), the TCP worker processes (own the connections) and every process that
sends (hands bytes to the owner). See docs/transports.md and sipcore.net.tcp for the
ownership mechanism.

  conntable.py   the connection table in shm: id -> record, proto:ip:port (aliases) -> id
  mailbox.py     one unix datagram socketpair per TCP worker: (conn id or address, bytes)
  options.py     TcpOptions from the tcp_* globals
  tcp.py         listen sockets, StreamNet (send path of any process, RPC views), TLS hooks
  tcp_worker.py  the TCP worker event loop: accept, connect, framing, writes, timeouts
"""
