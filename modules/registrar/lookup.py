"""lookup(), lookup_to_dset(), lookup_branches(), registered(), unregister() and the
reg_fetch_contacts() profiles behind $ulc.

Runs in: SIP workers (any process running routes). Shared state: the usrloc domain through
the usrloc API; $ulc profiles are per process (Kamailio keeps them in pkg memory).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sipcore.db import DbError
from sipcore.errors import ParseError
from sipcore.msg import parse_nameaddr_list
from sipcore.net.sockspec import find_socket, parse_socket_spec
from sipcore.route.ctx import Branch, RouteCtx

from . import common
from .save import xavp_cfg_value, xavp_contact_restore, xavp_rcd_add

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


def _contacts(ctx: RouteCtx, table: str, aor: str, expired: bool = False
              ) -> list[Any] | None:
    """The AoR's contacts, best first; EXPIRED: also those expired but not yet removed by
    usrloc's timer (use_expired_contacts). None on a database error."""
    try:
        return common.usrloc_api().register_udomain(table).get(aor, include_expired=expired)
    except DbError:
        return None


def _bflags_filtered(ctx: RouteCtx, p: Any, cts: list[Any]) -> list[Any]:
    """lookup_filter_mode (Kamailio reg_lookup_filter_match): bit 1, only contacts with at
    least one branch flag of $xavp(<xavp_cfg>=>rlf_bflags) (when it is set and not 0); bit 2,
    only contacts whose TCP/TLS connection is still open (those registered over UDP stay)."""
    mode = int(p.lookup_filter_mode)
    if not mode & 3:
        return cts
    if mode & 1:
        want = xavp_cfg_value(ctx, p, "rlf_bflags")
        if isinstance(want, int) and want != 0:
            cts = [c for c in cts if c.cflags & want]
    if mode & 2:
        alive = ctx.core.tcp_conn_alive
        cts = [c for c in cts if not c.conn_id or c.conn_id <= 0 or alive(c.conn_id)]
    return cts


def _filtered(ctx: RouteCtx, p: Any, cts: list[Any]) -> list[Any]:
    if not p.method_filtering:
        return cts
    mid = ctx.msg.method_id
    return [c for c in cts if c.methods == -1 or c.methods & mid]


def _route_of(ctx: RouteCtx, p: Any, c: Any) -> tuple[str | None, str | None]:
    """(path vector, $du) for a contact: the first Path hop (loose routing), else the received
    address. path_check_local: a first hop that is this server is dropped (the next one, if
    any, becomes the destination), as Kamailio's lookup does for a registrar that is its own
    edge proxy."""
    if c.path:
        path = c.path
        try:
            hops = parse_nameaddr_list(path)
        except ParseError:
            hops = []
        if hops and p.path_check_local:
            try:
                local = ctx.core.is_myself(hops[0].parsed_uri.host)
            except ParseError:
                local = False
            if local:
                hops = hops[1:]
                path = ", ".join(f"<{h.uri}>" + "".join(
                    f";{k}" if v is None else f";{k}={v}" for k, v in h.params) for h in hops)
        if hops:
            return path, hops[0].uri
    return None, c.received or None


def _socket_of(ctx: RouteCtx, c: Any) -> Any:
    """The local socket the REGISTER came in on, if it is still one of ours (multihoming:
    requests to the contact leave from where the UA registered)."""
    if not c.socket:
        return None
    try:
        return find_socket(ctx.core, parse_socket_spec(c.socket))
    except ValueError:
        return None


def _branch(ctx: RouteCtx, p: Any, c: Any) -> Branch:
    path, dst = _route_of(ctx, p, c)
    return Branch(uri=c.c, dst_uri=dst, path=path, q=c.q, bflags=c.cflags,
                  force_socket=_socket_of(ctx, c), instance=c.instance or None, ruid=c.ruid,
                  location_ua=c.user_agent or None, otcpid=c.conn_id)


def lookup(ctx: RouteCtx, p: Any, table: str, uri: str | None, *, to_dset: bool = False
           ) -> int:
    """R-URI = best contact (dst from Path/received, bflags restored), the rest as branches
    (append_branches); to_dset: every contact as a branch, R-URI unchanged."""
    aor = _aor(ctx, p, uri)
    if aor is None:
        return LOOKUP_ERROR
    cts = _contacts(ctx, table, aor, bool(p.use_expired_contacts))
    if cts is None:
        return LOOKUP_ERROR
    cts = _bflags_filtered(ctx, p, cts)
    if not cts:
        return LOOKUP_NOT_FOUND
    cts = _filtered(ctx, p, cts)
    if not cts:
        return LOOKUP_METHOD
    if to_dset:
        ctx.branches.extend(_branch(ctx, p, c) for c in cts)
        return LOOKUP_OK
    first, rest = cts[0], cts[1:]
    ctx.msg.set_ruri(first.c)
    ctx.path_vec, ctx.dst_uri = _route_of(ctx, p, first)
    xavp_rcd_add(ctx, p, first, time.time())
    xavp_contact_restore(ctx, common.usrloc_api().xavp_contact, first.xavp)
    ctx.ruri_q = first.q
    ctx.bflags = first.cflags
    sock = _socket_of(ctx, first)
    if sock is not None:
        ctx.force_socket = sock
    # a contact registered over TCP/TLS is reached over that connection (by its id) while
    # it is open, whatever address its Contact claims (Kamailio tcpconn_id -> otcpid)
    ctx.otcpid = first.conn_id
    ctx.ruid = first.ruid                           # $ruid
    ctx.location_ua = first.user_agent or None      # $location_ua
    ctx.instance = first.instance or None           # tm's flows (t_load_contacts)
    if p.append_branches:
        ctx.branches.extend(_branch(ctx, p, c) for c in rest)
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
        cts = _contacts(ctx, table, aor, bool(p.use_expired_contacts)) \
            if aor is not None else None
        cts = _filtered(ctx, p, _bflags_filtered(ctx, p, cts)) if cts else cts
        if cts:
            ctx.branches.extend(_branch(ctx, p, c) for c in cts)
            found = True
        else:
            ctx.branches.append(b)
    return LOOKUP_OK if found else LOOKUP_NOT_FOUND


def registered(ctx: RouteCtx, p: Any, table: str, uri: str | None, match_option: int,
               match_action: int) -> int:
    """1 when the AoR has a live contact (matching Call-ID / received / Contact URI when
    match_option bits 1 / 2 / 4 are set: the values of $xavp(<xavp_cfg>=>match_callid /
    match_received / match_contact), else this message's), else -1. The matched contact
    fills $xavp(<xavp_rcd>) unless match_action bit 2 is set."""
    aor = _aor(ctx, p, uri)
    if aor is None:
        return -1
    cts = _contacts(ctx, table, aor)
    if not cts:
        return -1
    msg = ctx.msg

    def wanted(name: str, default: Any) -> str:
        v = xavp_cfg_value(ctx, p, name)
        return str(v) if v is not None else default()

    callid = wanted("match_callid", lambda: msg.callid) if match_option & 1 else ""
    received = wanted("match_received", lambda: f"sip:{ctx.rcv.src_ip}:{ctx.rcv.src_port}") \
        if match_option & 2 else ""
    contact = wanted("match_contact", lambda: msg.contact_uri or "") if match_option & 4 \
        else ""
    for c in cts:
        if match_option & 1 and c.callid != callid:
            continue
        if match_option & 2 and c.received != received:
            continue
        if match_option & 4 and c.c != contact:
            continue
        if not match_action & 2:
            xavp_rcd_add(ctx, p, c, time.time())
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
