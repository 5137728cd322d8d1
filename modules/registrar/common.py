"""Helpers shared by save() and lookup(): AoR extraction, reply sending, the usrloc binding.

Runs in: SIP workers. Shared state: none here (usrloc owns the contacts).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

from sipcore import stats
from sipcore.errors import ModuleError, ParseError
from sipcore.msg import parse_uri
from sipcore.route.ctx import MsgSlot, RouteCtx

log = logging.getLogger(__name__)

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


@dataclass(slots=True)
class RegMsg:
    """registrar's part of one message: the reply save(..., 0x02) held back for
    reg_send_reply()."""

    held_reply: Optional[tuple[int, str, list[str]]] = None

    def copy(self) -> "RegMsg":
        return RegMsg(self.held_reply)


REG: MsgSlot[RegMsg] = MsgSlot("registrar", RegMsg)


class Bound:
    """The APIs registrar binds in mod_init: usrloc (required) and sl (when loaded)."""

    ul: Any = None
    sl: Any = None


BOUND = Bound()


def usrloc_api() -> Any:
    """usrloc's API, bound in mod_init."""
    if BOUND.ul is None:
        raise ModuleError("registrar: usrloc is not bound (mod_init did not run)")
    return BOUND.ul


def send_reply(ctx: RouteCtx, code: int, reason: str, headers: list[str]) -> bool:
    """Through sl when loaded (its statistics count the reply), else the core's stateless
    reply."""
    sl = BOUND.sl
    if sl is not None:
        # SlApi.freply (send_reply: statefully when tm has a transaction for the request)
        # sends ctx.reply_lumps with the reply, as Kamailio's registrar adds its headers
        saved = list(ctx.reply_lumps)
        ctx.reply_lumps.extend(headers)
        try:
            return sl.freply(ctx, code, reason) == 1
        finally:
            ctx.reply_lumps[:] = saved
    from sipcore.reply import send_stateless_reply

    return send_stateless_reply(ctx, code, reason, extra_headers=headers)


def count(name: str) -> None:
    stats.inc(f"registrar:{name}")


def log_err(text: str, ctx: RouteCtx | None = None) -> None:
    log.error("registrar: %s", text)
