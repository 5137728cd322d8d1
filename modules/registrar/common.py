"""Helpers shared by save() and lookup(): AoR extraction, reply sending, the usrloc binding.

Runs in: SIP workers. Shared state: none here (usrloc owns the contacts).
"""
from __future__ import annotations

from typing import Any

from sipcore import log as klog
from sipcore import stats
from sipcore.errors import ModuleError, ParseError
from sipcore.msg import parse_uri
from sipcore.route.ctx import RouteCtx

# tables named in save()/lookup()... at config compile time: registered (and preloaded) in
# mod_init, before fork, like Kamailio's fixup calling ul.register_udomain()
TABLES_SEEN: set[str] = set()


def table_fixup(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValueError("empty usrloc table name")
    TABLES_SEEN.add(name)
    return name


class AorError(Exception):
    """The AoR cannot be extracted (Kamailio extract_aor() failure)."""


def extract_aor(uri: str, *, use_domain: bool, case_sensitive: bool,
                realm_prefix: str | None) -> str:
    """user[@domain] of a SIP URI, as usrloc keys it (Kamailio extract_aor)."""
    try:
        u = parse_uri(uri.strip())
    except ParseError as exc:
        raise AorError(f"bad URI \"{uri}\": {exc}") from None
    if u.scheme not in ("sip", "sips", "tel", "tels"):
        raise AorError(f"unsupported URI scheme in \"{uri}\"")
    user = u.user or ""
    if u.scheme in ("tel", "tels"):
        user = getattr(u, "opaque", "") or user
    if not user and not use_domain:
        raise AorError(f"no username in \"{uri}\"")
    if not case_sensitive:
        user = user.lower()
    if not use_domain:
        return user
    host = (u.host or "").lower()
    if realm_prefix and host.startswith(realm_prefix.lower()):
        host = host[len(realm_prefix):]
    return f"{user}@{host}" if user else host


def usrloc_api() -> Any:
    """bind_api("usrloc") through the running config's module registry."""
    from sipcore.mod import bind_api
    from sipcore.runtime import current_config

    cfg = current_config()
    if cfg is None:
        raise ModuleError("registrar: no running configuration")
    return bind_api(cfg.modules, "usrloc", "registrar")


def send_reply(ctx: RouteCtx, code: int, reason: str, headers: list[str]) -> bool:
    """Through sl when loaded (its statistics count the reply), else the core's stateless
    reply."""
    from sipcore.runtime import current_config

    cfg = current_config()
    sl = cfg.modules.get("sl") if cfg is not None else None
    if sl is not None and sl.api is not None:
        # SlApi.freply (send_reply: statefully when tm has a transaction for the request)
        # sends ctx.reply_lumps with the reply, as Kamailio's registrar adds its headers
        saved = list(ctx.reply_lumps)
        ctx.reply_lumps.extend(headers)
        try:
            return sl.api.freply(ctx, code, reason) == 1
        finally:
            ctx.reply_lumps[:] = saved
    from sipcore.route.reply import send_stateless_reply

    return send_stateless_reply(ctx, code, reason, extra_headers=headers)


def count(name: str) -> None:
    stats.inc(f"registrar:{name}")


def log_err(text: str, ctx: RouteCtx | None = None) -> None:
    klog.err(f"registrar: {text}", ctx)
