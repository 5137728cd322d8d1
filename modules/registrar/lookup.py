"""lookup(), lookup_to_dset(), lookup_branches(), registered(), unregister() and the
reg_fetch_contacts() profiles behind $ulc.

Runs in: SIP workers (any process running routes). Shared state: the usrloc domain through
the usrloc API; $ulc profiles are per process (Kamailio keeps them in pkg memory).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sipcore.core.sockets import find_socket, parse_socket_spec
from sipcore.db import DbError
from sipcore.errors import ParseError
from sipcore.route.ctx import Branch, RouteCtx

from . import common

LOOKUP_OK, LOOKUP_NOT_FOUND, LOOKUP_METHOD, LOOKUP_ERROR = 1, -1, -2, -3


def _aor(ctx: RouteCtx, p: Any, uri: str | None) -> str | None:
    ul = common.usrloc_api()
    try:
        text = uri if uri else ctx.msg.ruri
        return common.extract_aor(text, use_domain=ul.use_domain,
                                  case_sensitive=bool(p.case_sensitive),
                                  realm_prefix=p.realm_prefix)
    except (common.AorError, ParseError) as exc:
        common.log_err(f"cannot extract the AoR: {exc}", ctx)
        return None


def _contacts(ctx: RouteCtx, table: str, aor: str) -> list[Any] | None:
    try:
        return common.usrloc_api().register_udomain(table).get(aor)
    except DbError:
        return None


def _filtered(ctx: RouteCtx, p: Any, cts: list[Any]) -> list[Any]:
    if not p.method_filtering:
        return cts
    mid = ctx.msg.method_id
    return [c for c in cts if c.methods == -1 or c.methods & mid]


def _dst_of(c: Any) -> str | None:
    """Where to send: the first Path hop (loose routing), else the received address."""
    if c.path:
        first = c.path.split(",")[0].strip()
        return first[1:first.index(">")] if first.startswith("<") and ">" in first else first
    return c.received or None


def _socket_of(ctx: RouteCtx, c: Any) -> Any:
    """The local socket the REGISTER came in on, if it is still one of ours (multihoming:
    requests to the contact leave from where the UA registered)."""
    if not c.socket:
        return None
    try:
        return find_socket(ctx.core, parse_socket_spec(c.socket))
    except ValueError:
        return None


def _branch(ctx: RouteCtx, c: Any) -> Branch:
    return Branch(uri=c.c, dst_uri=_dst_of(c), path=c.path or None, q=c.q, bflags=c.cflags,
                  force_socket=_socket_of(ctx, c), instance=c.instance or None, ruid=c.ruid,
                  location_ua=c.user_agent or None)


def lookup(ctx: RouteCtx, p: Any, table: str, uri: str | None, *, to_dset: bool = False
           ) -> int:
    """R-URI = best contact (dst from Path/received, bflags restored), the rest as branches
    (append_branches); to_dset: every contact as a branch, R-URI unchanged."""
    aor = _aor(ctx, p, uri)
    if aor is None:
        return LOOKUP_ERROR
    cts = _contacts(ctx, table, aor)
    if cts is None:
        return LOOKUP_ERROR
    if not cts:
        return LOOKUP_NOT_FOUND
    cts = _filtered(ctx, p, cts)
    if not cts:
        return LOOKUP_METHOD
    if to_dset:
        ctx.branches.extend(_branch(ctx, c) for c in cts)
        return LOOKUP_OK
    first, rest = cts[0], cts[1:]
    ctx.msg.set_ruri(first.c)
    ctx.dst_uri = _dst_of(first)
    ctx.extra["path_vec"] = first.path or None
    ctx.extra["ruri_q"] = first.q
    ctx.bflags = first.cflags
    sock = _socket_of(ctx, first)
    if sock is not None:
        ctx.force_socket = sock
    ctx.extra["ruri_ruid"] = first.ruid
    if p.append_branches:
        ctx.branches.extend(_branch(ctx, c) for c in rest)
    return LOOKUP_OK


def lookup_branches(ctx: RouteCtx, p: Any, table: str) -> int:
    """lookup() on the R-URI, then every plain branch (no $du) is replaced by its AoR's
    contacts; a branch without registered contacts is kept as it is."""
    original = list(ctx.branches)
    ctx.branches = []
    found = lookup(ctx, p, table, None) == LOOKUP_OK
    for b in original:
        if b.dst_uri:
            ctx.branches.append(b)
            continue
        aor = _aor(ctx, p, b.uri)
        cts = _contacts(ctx, table, aor) if aor is not None else None
        cts = _filtered(ctx, p, cts) if cts else cts
        if cts:
            ctx.branches.extend(_branch(ctx, c) for c in cts)
            found = True
        else:
            ctx.branches.append(b)
    return LOOKUP_OK if found else LOOKUP_NOT_FOUND


def registered(ctx: RouteCtx, p: Any, table: str, uri: str | None, match_option: int,
               match_action: int) -> int:
    """1 when the AoR has a live contact (matching Call-ID / received / Contact URI of this
    message when match_option bits 1 / 2 / 4 are set), else -1."""
    aor = _aor(ctx, p, uri)
    if aor is None:
        return -1
    cts = _contacts(ctx, table, aor)
    if not cts:
        return -1
    msg = ctx.msg
    for c in cts:
        if match_option & 1 and c.callid != msg.callid:
            continue
        if match_option & 2 and c.received != f"sip:{ctx.rcv.src_ip}:{ctx.rcv.src_port}":
            continue
        if match_option & 4 and c.c != (msg.contact_uri or ""):
            continue
        return 1
    return -1


def unregister(ctx: RouteCtx, p: Any, table: str, uri: str, ruid: str | None) -> int:
    """Remove every contact of URI's AoR (or the one with RUID): 1 done, -1 bad AoR, -2
    usrloc error, -3 nothing to remove."""
    aor = _aor(ctx, p, uri)
    if aor is None:
        return -1
    removed: list[Any] = []

    def drop(cts: list[Any]) -> list[Any]:
        keep = [c for c in cts if ruid and c.ruid != ruid]
        removed.extend(c for c in cts if c not in keep)
        return keep

    try:
        common.usrloc_api().register_udomain(table).update(aor, drop)
    except DbError:
        return -2
    return 1 if removed else -3


# ---- $ulc profiles -----------------------------------------------------------------------

@dataclass
class Profile:
    aor: str
    table: str
    contacts: list[Any] = field(default_factory=list)


PROFILES: dict[str, Profile] = {}


def fetch_contacts(ctx: RouteCtx, p: Any, table: str, uri: str, profile: str) -> int:
    aor = _aor(ctx, p, uri)
    if aor is None:
        return -1
    cts = _contacts(ctx, table, aor)
    if cts is None:
        return -1
    PROFILES[profile] = Profile(aor, table, cts)
    return 1


def free_contacts(profile: str) -> int:
    PROFILES.pop(profile, None)
    return 1


ULC_ATTRS = ("aor", "domain", "aorhash", "addr", "path", "received", "expires", "callid", "q",
             "cseq", "flags", "cflags", "user_agent", "socket", "modified", "methods", "count",
             "ruid", "regid", "instance", "conid", "server_id")


def ulc_value(profile: str, attr: str, idx: int) -> Any:
    """$ulc(profile=>attr)[idx]: None ($null) when the profile or contact is missing."""
    pr = PROFILES.get(profile)
    if pr is None:
        return None
    if attr == "aor":
        return pr.aor
    if attr == "domain":
        return pr.table
    if attr == "aorhash":
        return int(common.usrloc_api().aor_hash(pr.aor))
    if attr == "count":
        return len(pr.contacts)
    n = len(pr.contacts)
    if idx < 0:
        idx += n
    if not 0 <= idx < n:
        return None
    c = pr.contacts[idx]
    return {
        "addr": c.c, "path": c.path or None, "received": c.received or None,
        "expires": c.expires, "callid": c.callid, "q": c.q, "cseq": c.cseq, "flags": c.flags,
        "cflags": c.cflags, "user_agent": c.user_agent, "socket": c.socket or None,
        "modified": c.last_modified, "methods": c.methods, "ruid": c.ruid,
        "regid": c.reg_id, "instance": c.instance or None, "conid": c.conn_id,
        "server_id": 0,
    }[attr]
