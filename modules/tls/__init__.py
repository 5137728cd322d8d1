"""tls: TLS for the stream transports, with Python's ssl (Kamailio modules/tls).

Runs in: the master (mod_init: reads tls.cfg and the module parameters, builds and checks
every SSLContext, registers the provider with sipcore.net.tcp), the TCP workers (wrap accepted
and outbound sockets with the contexts of the matching profile), the ctl process (tls.*
RPCs). Shared state: a small shm table `tls:state` holding the configuration generation.
tls.reload (ctl process) re-reads tls.cfg, builds the new contexts to check them, and bumps
the generation; each TCP worker notices the new generation at its next accept or housekeeping
tick (<= 0.25 s) and rebuilds its contexts: new connections get the new certificates, open
connections keep theirs (nothing is cut). A tls.cfg that fails to load is reported by the RPC
and the running configuration stays.
"""
from __future__ import annotations

import dataclasses
import logging
import ssl
import time
from typing import Any

from sipcore.errors import ModuleError, RpcFault
from sipcore.mod import ModContext, Module
from sipcore.net.addr import SocketInfo

from . import tls_pv
from .tls_cfg import TlsCfgError, TlsConfig, TlsProfile, parse_tls_cfg

log = logging.getLogger(__name__)

mod = Module("tls", summary="TLS transport (Python ssl): tls.cfg profiles, reload.")

_PARAMS: list[tuple[str, type, Any, str]] = [
    ("config", str, "", "Path of tls.cfg (profiles per role and address)."),
    ("tls_method", str, "TLSv1.2+", ("Default method: TLSv1.2+, TLSv1.3, TLSv1.2, TLSv1+, "
                                     "SSLv23 (any supported).")),
    ("certificate", str, "", "Default certificate file (PEM)."),
    ("private_key", str, "", "Default private key file (PEM)."),
    ("ca_list", str, "", "Default CA list file (PEM)."),
    ("ca_path", str, "", "Default CA directory."),
    ("crl", str, "", "Default certificate revocation list file."),
    ("verify_certificate", int, 0, "Verify the peer's certificate (0/1)."),
    ("verify_depth", int, 9, "Maximum certificate chain depth."),
    ("require_certificate", int, 0, "Server side: refuse clients without a certificate."),
    ("cipher_list", str, "", "OpenSSL cipher list (empty: the library default)."),
    ("server_name", str, "", "SNI server name sent by clients."),
    ("connection_timeout", int, 600, ("Idle TLS connection lifetime (s); the core "
                                      "tcp_connection_lifetime applies.")),
]
for _n, _t, _d, _doc in _PARAMS:
    mod.param(_n, _t, _d, doc=_doc)

_METHODS = {
    "tlsv1.3": (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3),
    "tlsv1.3+": (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.MAXIMUM_SUPPORTED),
    "tlsv1.2": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2),
    "tlsv1.2+": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.MAXIMUM_SUPPORTED),
    "tlsv1.1+": (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.MAXIMUM_SUPPORTED),
    "tlsv1+": (ssl.TLSVersion.TLSv1, ssl.TLSVersion.MAXIMUM_SUPPORTED),
    "sslv23": (ssl.TLSVersion.MINIMUM_SUPPORTED, ssl.TLSVersion.MAXIMUM_SUPPORTED),
    "any": (ssl.TLSVersion.MINIMUM_SUPPORTED, ssl.TLSVersion.MAXIMUM_SUPPORTED),
}


def build_context(p: TlsProfile) -> ssl.SSLContext:
    """An SSLContext for profile P; raises TlsCfgError naming the profile and the file."""
    server = p.role == "server"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    versions = _METHODS.get(p.method.strip().lower())
    if versions is None:
        raise TlsCfgError(f"[{p.name}]: unknown method \"{p.method}\"")
    try:
        ctx.minimum_version, ctx.maximum_version = versions
        if p.cipher_list:
            ctx.set_ciphers(p.cipher_list)
        if p.certificate:
            ctx.load_cert_chain(p.certificate, p.private_key or p.certificate)
        elif server:
            raise TlsCfgError(f"[{p.name}]: a server profile needs a certificate")
        if p.ca_list or p.ca_path:
            ctx.load_verify_locations(cafile=p.ca_list or None, capath=p.ca_path or None)
        if p.crl:
            ctx.load_verify_locations(cafile=p.crl)
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise TlsCfgError(f"[{p.name}]: {exc}") from None
    if server:
        if p.require_certificate:
            ctx.verify_mode = ssl.CERT_REQUIRED
        elif p.verify_certificate:
            ctx.verify_mode = ssl.CERT_OPTIONAL
        else:
            ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = bool(p.verify_certificate and p.server_name)
        ctx.verify_mode = ssl.CERT_REQUIRED if p.verify_certificate else ssl.CERT_NONE
    return ctx


class TlsState:
    """This process's view: the parsed config, its contexts, the generation it was built at."""

    def __init__(self) -> None:
        self.config: TlsConfig | None = None
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.generation = 0
        self.loaded_at = 0.0
        self.shared: Any = None         # ShmHashTable with b"gen" (None without shm)
        self.local_gen = 0              # without shm (tests, harness)
        self.provider: Any = None       # the Provider the TCP workers ask (set by mod_init)

    def shared_generation(self) -> int:
        if self.shared is None:
            return self.local_gen
        raw = self.shared.get(b"gen")
        return 0 if raw is None else int.from_bytes(raw[:8], "little", signed=True)


_st = TlsState()


def _defaults() -> TlsProfile:
    p = mod.p
    return TlsProfile(method=p.tls_method or "TLSv1.2+", certificate=p.certificate or None,
                      private_key=p.private_key or None, ca_list=p.ca_list or None,
                      ca_path=p.ca_path or None, crl=p.crl or None,
                      verify_certificate=bool(p.verify_certificate),
                      verify_depth=int(p.verify_depth),
                      require_certificate=bool(p.require_certificate),
                      cipher_list=p.cipher_list or None, server_name=p.server_name or None)


def load() -> tuple[TlsConfig, dict[str, ssl.SSLContext]]:
    """Read tls.cfg (or the parameters alone) and build every context; raises TlsCfgError."""
    path = mod.p.config
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise TlsCfgError(f"cannot read {path}: {exc.strerror}") from None
        conf = parse_tls_cfg(text, _defaults(), path)
    else:
        conf = parse_tls_cfg("", _defaults())
    contexts = {}
    for name, prof in conf.profiles.items():
        if (prof.role == "server" and not prof.certificate and name == "server:default"
                and not _needs_server()):
            continue            # no TLS listener: an unconfigured server side is fine
        contexts[name] = build_context(prof)
    _sni_dispatch(conf, contexts)
    return conf, contexts


def _sni_dispatch(conf: TlsConfig, contexts: dict[str, ssl.SSLContext]) -> None:
    """Server profiles with a server_name ([server:any] or an address) are chosen by the
    client's SNI: every server context switches to the matching one during the handshake."""
    by_name = {p.server_name.lower(): contexts[n] for n, p in conf.profiles.items()
               if p.role == "server" and p.server_name and n in contexts}
    if not by_name:
        return

    def pick(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        chosen = by_name.get((name or "").lower())
        if chosen is not None:
            sock.context = chosen

    for n, ctx in contexts.items():
        if n.startswith("server:"):
            ctx.sni_callback = pick


def _stream() -> Any:
    """The server's StreamNet (TCP/TLS runtime), None without TCP workers."""
    mc = mod.context
    return getattr(mc.core, "stream", None) if mc is not None else None


def _needs_server() -> bool:
    net = _stream()
    return net is not None and any(si.proto == "tls" for _, si in net.listeners)


def _install(conf: TlsConfig, contexts: dict[str, ssl.SSLContext], gen: int) -> None:
    _st.config, _st.contexts, _st.generation = conf, contexts, gen
    _st.loaded_at = time.time()


class Provider:
    """sipcore.net.tcp.TlsProvider backed by this module's state."""

    def server_context(self, si: SocketInfo) -> ssl.SSLContext:
        assert _st.config is not None
        prof = _st.config.server(si.ip, si.port)
        ctx = _st.contexts.get(prof.name)
        if ctx is None:
            raise ValueError(f"no TLS server profile with a certificate for {si}")
        return ctx

    def client_context(self, ip: str, port: int) -> tuple[ssl.SSLContext, str | None]:
        assert _st.config is not None
        prof = _st.config.client(ip, port)
        return _st.contexts[prof.name], prof.server_name

    def refresh(self) -> None:
        """Adopt a configuration reloaded by another process (cheap when nothing changed)."""
        gen = _st.shared_generation()
        if gen == _st.generation:
            return
        try:
            conf, contexts = load()
        except TlsCfgError as exc:
            log.error("tls: cannot adopt reloaded configuration: %s", exc)
            _st.generation = gen        # do not retry on every tick; keep the old contexts
            return
        _install(conf, contexts, gen)
        log.info("tls: configuration generation %s adopted", gen)

    def connection_limit(self) -> int:
        net = _stream()
        return net.opts.tls_max_connections if net is not None else 2048


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    from sipcore.shm import ShmHashTable

    try:
        conf, contexts = load()
    except TlsCfgError as exc:
        raise ModuleError(f"tls: {exc}") from None
    _st.shared = None
    if ctx.shm is not None:
        _st.shared = ctx.shm.named("tls:state", lambda a: ShmHashTable.create(a, 4),
                                   ShmHashTable.attach)
    _install(conf, contexts, _st.shared_generation())
    _st.provider = Provider()
    net = _stream()
    if net is not None:             # the TCP workers ask it for their SSL contexts
        net.tls = _st.provider


# ---- RPC ------------------------------------------------------------------------------------

def rpc_reload() -> str:
    """Re-read tls.cfg; new TLS connections use the new certificates, open ones are kept."""
    try:
        conf, contexts = load()
    except TlsCfgError as exc:
        raise RpcFault(500, f"tls.reload failed, configuration unchanged: {exc}") from None
    if _st.shared is not None:
        gen = _st.shared.incr(b"gen")
    else:
        _st.local_gen += 1
        gen = _st.local_gen
    _install(conf, contexts, gen)
    return "Ok. TLS configuration reloaded."


def rpc_info() -> dict[str, int]:
    """Maximum and open TLS connections."""
    net = _stream()
    return {"max_connections": net.opts.tls_max_connections if net else 0,
            "opened_connections": net.table.count("tls") if net else 0,
            "clear_text_write_queued_bytes": 0}


def rpc_list() -> list[dict[str, Any]]:
    """Open TLS connections."""
    net = _stream()
    if net is None:
        return []
    return [{"id": c["id"], "timeout": 0, "src_ip": c["src_ip"], "src_port": c["src_port"],
             "dst_ip": c["dst_ip"], "dst_port": c["dst_port"],
             "outbound": c["outbound"], "state": "established"}
            for c in net.list() if c["type"] == "TLS"]


def rpc_options() -> dict[str, Any]:
    """The module parameters and the loaded profiles."""
    out: dict[str, Any] = {name: mod.get_param(name) for name, *_ in _PARAMS}
    out["generation"] = _st.generation
    out["loaded"] = time.ctime(_st.loaded_at) if _st.loaded_at else ""
    if _st.config is not None:
        out["profiles"] = [
            {k: v for k, v in dataclasses.asdict(p).items() if v not in (None, "")}
            for p in _st.config.profiles.values()]
    return out


mod.rpc("tls.reload", rpc_reload, doc="Re-read tls.cfg for new connections.")
mod.rpc("tls.info", rpc_info, doc="Maximum and open TLS connections.")
mod.rpc("tls.list", rpc_list, doc="Open TLS connections.")
mod.rpc("tls.options", rpc_options, doc="Module parameters and loaded profiles.")


def ki_is_peer_verified(ctx: Any) -> int:
    """1 when the message came over TLS with a verified peer certificate, else -1."""
    return 1 if tls_pv.GETTERS["tls_peer_verified"][0](ctx) == 1 else -1


mod.function("is_peer_verified", args=())(ki_is_peer_verified)

for _pv_name, (_getter, _pv_doc) in tls_pv.GETTERS.items():
    mod.pv(_pv_name, tls_pv.factory(_pv_name), doc=_pv_doc)

__all__ = ["build_context", "mod", "parse_tls_cfg", "rpc_reload"]

