"""Core global parameters (config-language.md §4): name, aliases, type, default, doc.

Runs in: the master at configuration load (the checker types `name = value` lines with this
table); the runtime reads the typed values from `CompiledConfig.globals`. One table, so the
checker, the docs and the runtime agree on every name and default.

Types: "int", "bool", "str", "listen" (repeatable socket), "alias" (repeatable), "proto",
"ip". Values of bool params are Python bools; ints accept yes/no words like Kamailio.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from sipcore.cfg.lexer import parse_int
from sipcore.net.listen import alias_addr, listen_addr


@dataclass(frozen=True)
class CoreParam:
    name: str
    type: str
    default: Any
    doc: str
    aliases: tuple[str, ...] = ()
    runtime: bool = False     # changeable at run time through the cfg framework ("rt")


def _p(name: str, type_: str, default: Any, doc: str, *aliases: str, rt: bool = False
       ) -> CoreParam:
    return CoreParam(name, type_, default, doc, tuple(aliases), rt)


_UA = "kamailio (5.6.3 (x86_64/linux))"

CORE_PARAMS: tuple[CoreParam, ...] = (
    # ---- logging / process control (§4.1)
    _p("debug", "int", 0, "Log level: -5 alert .. 0 warn, 1 notice, 2 info, 3 dbg.", rt=True),
    _p("log_stderror", "bool", False, "Log to stderr instead of syslog (same as -E)."),
    _p("log_facility", "str", "LOG_DAEMON", "Syslog facility name, e.g. LOG_LOCAL0.", rt=True),
    _p("log_name", "str", None, "Syslog ident (default argv[0])."),
    _p("log_prefix", "str", None, "Format string with PVs prepended to message log lines."),
    _p("log_prefix_mode", "int", 0, "1 = re-evaluate log_prefix for every message."),
    _p("log_color", "bool", False, "Colored stderr logs."),
    _p("log_engine_type", "str", None, "Alternate logging engine."),
    _p("log_engine_data", "str", None, "Data for the alternate logging engine."),
    _p("corelog", "int", -1, "Level for core internal messages.", "core_log", rt=True),
    _p("memlog", "int", 4, "Level for memory status dumps.", "mem_log", rt=True),
    _p("memdbg", "int", 4, "Level for memory debug messages.", "mem_dbg", rt=True),
    _p("mem_summary", "int", 12, "Bitmask of memory info dumped at exit/SIGUSR1.", rt=True),
    _p("mem_safety", "int", 1, "Allocator safety checks.", rt=True),
    _p("mem_join", "int", 1, "Join free memory fragments.", rt=True),
    _p("latency_log", "int", -1, "Log level for latency reports.", rt=True),
    _p("latency_cfg_log", "int", 3, "Log level for cfg action latency.", rt=True),
    _p("latency_limit_action", "int", 0, "Action latency limit (ms) to log.", rt=True),
    _p("latency_limit_db", "int", 0, "DB query latency limit (ms) to log.", rt=True),
    _p("latency_limit_cfg", "int", 0, "Cfg run latency limit (ms) to log.", rt=True),
    _p("fork", "bool", True, "no = stay in foreground (-D)."),
    _p("children", "int", 8, "UDP workers per UDP socket (default for TCP/SCTP too)."),
    _p("socket_workers", "int", 0, "Workers for the next listen socket only."),
    _p("tcp_children", "int", None, "TCP reader processes (default: children)."),
    _p("sctp_children", "int", None, "SCTP workers (default: children)."),
    _p("async_workers", "int", 0, "Core async task worker processes."),
    _p("user", "str", None, "Drop privileges to this user.", "uid"),
    _p("group", "str", None, "Drop privileges to this group.", "gid"),
    _p("chroot", "str", None, "chroot directory."),
    _p("workdir", "str", "/", "Working directory.", "wdir"),
    _p("rundir", "str", "/run/pykam", "Runtime files directory.", "run_dir"),
    _p("exit_timeout", "int", 60, "Seconds to wait for children at shutdown.",
       "ser_kill_timeout"),
    _p("shm_mem_size", "int", 64, "Shared memory size in MB (same as -m).", "shm", "shm_mem"),
    _p("shm_force_alloc", "bool", False, "Touch all shm pages at start."),
    _p("mlock_pages", "bool", False, "Lock shm pages in memory."),
    _p("open_files_limit", "int", -1, "Raise RLIMIT_NOFILE (-1 = leave)."),
    _p("disable_core_dump", "bool", False, "Do not enable core dumps."),
    _p("real_time", "int", 0, "Real-time scheduling mode."),
    _p("rt_prio", "int", 0, "Real-time priority."),
    _p("rt_policy", "int", 0, "Real-time policy."),
    _p("rt_timer1_prio", "int", 0, "Fast timer RT priority."),
    _p("rt_timer1_policy", "int", 0, "Fast timer RT policy."),
    _p("rt_timer2_prio", "int", 0, "Slow timer RT priority."),
    _p("rt_timer2_policy", "int", 0, "Slow timer RT policy."),
    _p("max_while_loops", "int", 100, "A while loop stops with an error after this many "
       "iterations (0 = unlimited).", rt=True),
    _p("max_recursive_level", "int", 256, "Maximum nesting of route() calls."),
    _p("max_branches", "int", 12, "Maximum destinations per transaction (<= 32)."),
    _p("pv_buffer_size", "int", 8192, "Size of PV printing buffers."),
    _p("pv_buffer_slots", "int", 40, "Number of PV printing buffers."),
    _p("pv_cache_limit", "int", 2048, "PV spec cache size."),
    _p("pv_cache_action", "int", 0, "What to do when the PV cache is full."),
    _p("server_id", "int", 0, "Instance id ($sid)."),
    _p("modinit_delay", "int", 0, "Microseconds to sleep after each mod_init."),
    _p("fork_delay", "int", 0, "Microseconds to sleep between forks."),
    _p("wait_worker1_mode", "int", 0, "Wait for rank-1 worker init."),
    _p("wait_worker1_time", "int", 4000000, "Max wait for rank-1 worker (us)."),
    _p("wait_worker1_usleep", "int", 100000, "Poll step waiting for rank-1 worker (us)."),
    _p("verbose_startup", "bool", False, "Verbose startup messages."),
    _p("route_locks_size", "int", 0, "Locks for event_route concurrency control."),
    _p("version_table", "str", "version", "DB version table name."),
    _p("sql_buffer_size", "int", 65535, "SQL query buffer size."),
    _p("msg_time", "bool", True, "Set message receive time."),
    _p("statistics", "str", None, "Statistics settings."),
    _p("stats_name_separator", "str", "_", "Separator in statistic names."),
    # ---- network / SIP behaviour (§4.2)
    _p("listen", "listen", (), "Listening socket; repeatable.", "socket"),
    _p("port", "int", 5060, "Default port for listen entries without one."),
    _p("alias", "alias", (), "Local host alias matched by myself; repeatable."),
    _p("auto_aliases", "bool", True, "Add reverse-DNS names of listen IPs as aliases."),
    _p("advertised_address", "str", None, "Global Via/RR address override."),
    _p("advertised_port", "int", None, "Global Via/RR port override."),
    _p("mhomed", "bool", False, "Choose outgoing socket by routing table lookup."),
    _p("dns", "bool", False, "Add received= if the Via host does not resolve to the source."),
    _p("rev_dns", "bool", False, "Same as dns with reverse DNS."),
    _p("dns_try_ipv6", "bool", True, "Resolve AAAA records.", rt=True),
    _p("dns_try_naptr", "bool", False, "Use NAPTR lookups.", rt=True),
    _p("dns_udp_pref", "int", 30, "NAPTR preference for UDP.", rt=True),
    _p("dns_tcp_pref", "int", 20, "NAPTR preference for TCP.", rt=True),
    _p("dns_tls_pref", "int", 10, "NAPTR preference for TLS.", rt=True),
    _p("dns_sctp_pref", "int", 20, "NAPTR preference for SCTP.", rt=True),
    _p("dns_retr_time", "int", -1, "Resolver retry time.", rt=True),
    _p("dns_retr_no", "int", -1, "Resolver retries.", rt=True),
    _p("dns_servers_no", "int", -1, "Resolver servers used.", rt=True),
    _p("dns_use_search_list", "bool", True, "Use the resolv.conf search list.", rt=True),
    _p("dns_search_full_match", "bool", True, "Full match with search list.", rt=True),
    _p("use_dns_cache", "bool", True, "Use the internal DNS cache.", rt=True),
    _p("dns_cache_init", "bool", True, "Initialise the DNS cache."),
    _p("use_dns_failover", "bool", False, "Try next DNS target on failure.", rt=True),
    _p("dns_srv_lb", "bool", False, "Weighted SRV load balancing.", "dns_srv_loadbalancing",
       rt=True),
    _p("dns_cache_flags", "int", 0, "DNS cache flags.", rt=True),
    _p("dns_cache_negative_ttl", "int", 60, "TTL of negative DNS answers.", rt=True),
    _p("dns_cache_min_ttl", "int", 0, "Minimum DNS cache TTL.", rt=True),
    _p("dns_cache_max_ttl", "int", -1, "Maximum DNS cache TTL.", rt=True),
    _p("dns_cache_mem", "int", 500, "DNS cache memory (KB).", rt=True),
    _p("dns_cache_gc_interval", "int", 120, "DNS cache GC interval (s).", rt=True),
    _p("use_dst_blocklist", "bool", False, "Use the destination blocklist.",
       "use_dst_blacklist", rt=True),
    _p("dst_blocklist_init", "bool", True, "Initialise the destination blocklist.",
       "dst_blacklist_init"),
    _p("dst_blocklist_expire", "int", 60, "Blocklist entry lifetime (s).",
       "dst_blacklist_expire", rt=True),
    _p("dst_blocklist_mem", "int", 250, "Blocklist memory (KB).", "dst_blacklist_mem",
       rt=True),
    _p("dst_blocklist_udp_imask", "int", 0, "Ignore mask for UDP.", rt=True),
    _p("dst_blocklist_tcp_imask", "int", 0, "Ignore mask for TCP.", rt=True),
    _p("dst_blocklist_tls_imask", "int", 0, "Ignore mask for TLS.", rt=True),
    _p("dst_blocklist_sctp_imask", "int", 0, "Ignore mask for SCTP.", rt=True),
    _p("maxbuffer", "int", 262144, "Max UDP receive buffer probing."),
    _p("udp_mtu", "int", 0, "Switch to udp_mtu_try_proto above this size (0 = off).", rt=True),
    _p("udp_mtu_try_proto", "proto", "udp", "Fallback transport above udp_mtu.", rt=True),
    _p("udp4_raw", "int", 0, "Send UDP over raw sockets.", rt=True),
    _p("udp4_raw_mtu", "int", 1500, "MTU for raw UDP sending.", rt=True),
    _p("udp4_raw_ttl", "int", -1, "TTL for raw UDP sending.", rt=True),
    _p("force_rport", "bool", False, "Behave as if force_rport() ran for every request.",
       rt=True),
    _p("sip_warning", "bool", False, "Add a Warning header to replies."),
    _p("server_signature", "bool", True, "Add a Server header to local replies."),
    _p("server_header", "str", f"Server: {_UA}", "Server header line (no CRLF)."),
    _p("user_agent_header", "str", f"User-Agent: {_UA}", "User-Agent for local requests."),
    _p("reply_to_via", "bool", False, "Send replies to the Via address."),
    _p("check_via", "bool", False, "Check the Via host when forwarding replies."),
    _p("phone2tel", "bool", True, "Treat user=phone URIs as tel."),
    _p("tos", "int", 0x10, "IP TOS of outgoing packets."),
    _p("pmtu_discovery", "bool", False, "Path MTU discovery."),
    _p("mcast", "str", None, "Multicast interface."),
    _p("mcast_loopback", "bool", False, "Multicast loopback."),
    _p("mcast_ttl", "int", -1, "Multicast TTL."),
    _p("auto_bind_ipv6", "bool", False, "Bind IPv6 addresses automatically."),
    _p("bind_ipv6_link_local", "bool", False, "Bind link-local IPv6 addresses."),
    _p("ip_free_bind", "bool", False, "Allow binding non-local addresses.", "ipfreebind"),
    _p("ipv6_hex_style", "str", "c", "Hex style of printed IPv6 addresses."),
    _p("onsend_route_reply", "bool", False, "Also run onsend_route for replies."),
    _p("http_reply_parse", "bool", False, "Parse HTTP replies.", "http_reply_hack"),
    _p("received_route_mode", "int", 0, "event_route[core:msg-received] mode."),
    _p("sip_parser_log", "int", 0, "Parser error log level."),
    _p("sip_parser_log_oneline", "int", 0, "Log parse errors on one line."),
    _p("sip_parser_mode", "int", 1, "SIP parser mode."),
    _p("xavp_via_params", "str", None, "xavp with Via params to add."),
    _p("xavp_via_fields", "str", None, "xavp with Via fields to set."),
    _p("uri_host_extra_chars", "str", None, "Extra characters allowed in URI hosts."),
    _p("hdr_name_extra_chars", "str", None, "Extra characters allowed in header names."),
    # ---- TCP / TLS / SCTP (§4.3)
    _p("disable_tcp", "bool", False, "Disable TCP."),
    _p("enable_tls", "bool", False, "Enable TLS (needs the tls module).", "tls_enable"),
    _p("disable_tls", "bool", True, "Disable TLS."),
    _p("enable_sctp", "int", 2, "SCTP: 0 off, 1 on, 2 auto."),
    _p("disable_sctp", "bool", False, "Disable SCTP."),
    _p("tcp_connection_lifetime", "int", 120, "Idle TCP connection lifetime (s)."),
    _p("tcp_connect_timeout", "int", 10, "TCP connect timeout (s)."),
    _p("tcp_send_timeout", "int", 10, "TCP send timeout (s)."),
    _p("tcp_max_connections", "int", 2048, "Maximum TCP connections."),
    _p("tls_max_connections", "int", 2048, "Maximum TLS connections."),
    _p("tcp_accept_aliases", "bool", False, "Honour ;alias in Via."),
    _p("tcp_accept_no_cl", "bool", False, "Accept TCP messages without Content-Length."),
    _p("tcp_accept_haproxy", "bool", False, "Accept the HAProxy PROXY protocol."),
    _p("tcp_accept_hep3", "bool", False, "Accept HEP3 on TCP."),
    _p("tcp_async", "bool", True, "Non-blocking queued TCP writes.", "tcp_buf_write"),
    _p("tcp_conn_wq_max", "int", 32768, "Per-connection write queue limit."),
    _p("tcp_wq_max", "int", 10485760, "Total write queue limit."),
    _p("tcp_fd_cache", "bool", True, "Cache TCP fds in workers."),
    _p("tcp_rd_buf_size", "int", 16384, "TCP read buffer size."),
    _p("tcp_wq_blk_size", "int", 2100, "Write queue block size."),
    _p("tcp_keepalive", "bool", True, "OS TCP keepalive."),
    _p("tcp_keepidle", "int", 0, "TCP_KEEPIDLE."),
    _p("tcp_keepintvl", "int", 0, "TCP_KEEPINTVL."),
    _p("tcp_keepcnt", "int", 0, "TCP_KEEPCNT."),
    _p("tcp_crlf_ping", "bool", True, "Answer CRLFCRLF pings."),
    _p("tcp_defer_accept", "int", 0, "TCP_DEFER_ACCEPT."),
    _p("tcp_delayed_ack", "int", 1, "TCP delayed ACK."),
    _p("tcp_syncnt", "int", 0, "TCP_SYNCNT."),
    _p("tcp_linger2", "int", 0, "TCP_LINGER2."),
    _p("tcp_no_connect", "bool", False, "Never open outbound TCP connections."),
    _p("tcp_connection_match", "int", 0, "1 = match the local socket too."),
    _p("tcp_reuse_port", "bool", False, "SO_REUSEPORT."),
    _p("tcp_poll_method", "str", "epoll_lt", "I/O polling method."),
    _p("tcp_source_ipv4", "ip", None, "Source IPv4 for outbound TCP."),
    _p("tcp_source_ipv6", "ip", None, "Source IPv6 for outbound TCP."),
    _p("tcp_wait_data", "int", 5000, "Wait for data on new connections (ms)."),
    _p("tcp_script_mode", "int", 0, "TCP script mode."),
    _p("tcp_clone_rcvbuf", "int", 0, "Clone the TCP receive buffer."),
    _p("tcp_accept_unique", "int", 0, "Unique TCP connection per peer."),
    # ---- KEMI hooks (§4.4)
    _p("kemi.onsend_route_callback", "str", "ksr_onsend_route", "KEMI onsend callback."),
    _p("kemi.reply_route_callback", "str", "ksr_reply_route", "KEMI reply callback."),
    _p("kemi.event_route_callback", "str", "", "KEMI event route callback."),
    _p("kemi.received_route_callback", "str", "", "KEMI received-message callback."),
    _p("kemi.pre_routing_callback", "str", "", "KEMI pre-routing callback."),
)

BY_NAME: dict[str, CoreParam] = {}
for _cp in CORE_PARAMS:
    BY_NAME[_cp.name] = _cp
    for _a in _cp.aliases:
        BY_NAME[_a] = _cp

_TRUE = {"yes", "true", "on", "enable", "1"}
_FALSE = {"no", "false", "off", "disable", "0"}
_PROTOS = {"udp", "tcp", "tls", "sctp", "ws", "wss"}


def lookup(name: str) -> Optional[CoreParam]:
    return BY_NAME.get(name)


def defaults() -> dict[str, Any]:
    """Every core parameter at its default (lists for repeatable ones)."""
    out: dict[str, Any] = {}
    for cp in CORE_PARAMS:
        out[cp.name] = list(cp.default) if cp.type in ("listen", "alias") else cp.default
    return out


def coerce(cp: CoreParam, value: Union[int, str], is_string: bool) -> Any:
    """Type a written value for CP; raises ValueError with a user message."""
    t = cp.type
    if t == "int":
        if isinstance(value, int):
            return value
        v = value.strip().lower()
        if not is_string and v in _TRUE:
            return 1
        if not is_string and v in _FALSE:
            return 0
        try:
            return parse_int(v)
        except ValueError:
            raise ValueError(f"{cp.name} expects an integer, got \"{value}\"") from None
    if t == "bool":
        if isinstance(value, int):
            return value != 0
        v = value.strip().lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
        raise ValueError(f"{cp.name} expects a boolean (yes/no), got \"{value}\"")
    if t == "proto":
        v = str(value).strip().lower()
        if v not in _PROTOS:
            raise ValueError(f"{cp.name} expects a protocol (UDP/TCP/TLS/SCTP), got \"{value}\"")
        return v
    if t == "ip":
        import ipaddress

        try:
            return str(ipaddress.ip_address(str(value).strip("[] ")))
        except ValueError:
            raise ValueError(f"{cp.name} expects an IP address, got \"{value}\"") from None
    return str(value)


@dataclass
class GlobalsBuilder:
    """Accumulates `name = value` lines into the typed globals dict."""

    values: dict[str, Any] = field(default_factory=defaults)
    _pending_workers: int = 0

    def set(self, cp: CoreParam, value: Union[int, str], is_string: bool,
            extra: tuple[tuple[str, Any], ...] = ()) -> None:
        if cp.type == "listen":
            self.values["listen"].append(listen_addr(str(value), extra, self._pending_workers))
            self._pending_workers = 0
            return
        if cp.type == "alias":
            self.values["alias"].append(alias_addr(str(value)))
            return
        typed = coerce(cp, value, is_string)
        if cp.name == "socket_workers":
            self._pending_workers = typed
        self.values[cp.name] = typed
