"""Serial forking by q value and RFC 5626 flows: t_load_contacts() / t_next_contacts() /
t_next_contact_flow() (Kamailio t_serial.c semantics).

Runs in: SIP workers (request_route), whichever process runs the failure_route or the
tm:branch-failure event route (a worker or the timer process). Shared state: the pending
contacts travel with the transaction (the cell's `contacts` field, JSON text) so that a
failure_route in another process continues the sequence; the pending flows (contact_flows_avp)
are an ordinary xavp, kept with the transaction's other xavps (`t_ctx.dump_avps`).

Inside a route both are xavps with Kamailio's field names: `uri`, `dst_uri`, `path`, `sock`,
`flags`, `q_flag` (contacts_avp only), `instance`, `ruid`, `ua`. As in Kamailio:

* t_load_contacts() sorts the destination set by increasing q (an unspecified q is -1, the
  lowest; among equal q a contact without Path goes after the ones already placed, one with
  Path before them) and pushes each onto the head of contacts_avp, so the head is the last
  contact of the highest q. `q_flag` (4) marks the contact that ends its q group.
* t_next_contacts() takes the head group: the first becomes the R-URI, the others branches;
  a contact whose +sip.instance was already used in this group goes to contact_flows_avp.
* t_next_contact_flow() (tm:branch-failure) appends the first pending flow whose instance is
  the failed branch's.
"""
from __future__ import annotations

import logging

import json
import random
from dataclasses import dataclass
from typing import Any, Optional

from sipcore.mod import Fx
from sipcore.mod.exports import RouteType
from sipcore.pv.vars import Xavp, xavp_rm, xavps
from sipcore.route.ctx import Branch, RouteCtx

from . import EVENT_ROUTE, REQ, RF, mod
from .config import CFG
from .state import TM

log = logging.getLogger(__name__)


Q_FLAG = 1 << 2                 # the contact ends its q group (Kamailio's Q_FLAG)
Q_UNSPECIFIED = -1
T_LOAD_STANDARD, T_LOAD_PROPORTIONAL = 0, 1


@dataclass
class _Contact:
    uri: str
    dst_uri: str = ""
    path: str = ""
    sock: str = ""              # "proto:ip:port" of a forced send socket
    flags: int = 0
    q: int = Q_UNSPECIFIED
    instance: str = ""
    ruid: str = ""
    ua: str = ""
    q_flag: int = 0
    q_index: int = 0


def _xavp_name(value: Optional[str]) -> Optional[str]:
    return value.strip() or None if value else None


def contacts_avp_name() -> Optional[str]:
    """The contacts_avp name (None: feature disabled)."""
    return _xavp_name(CFG.contacts_avp)


def _flows_name() -> Optional[str]:
    return _xavp_name(CFG.contact_flows_avp)


def _roots(ctx: RouteCtx) -> list[Any]:
    return xavps(ctx).xavp


def _record(name: str, c: _Contact, with_q_flag: bool) -> Any:
    """One contacts_avp / contact_flows_avp entry (optional fields only when set)."""
    kids = [Xavp("uri", c.uri)]
    for key in ("dst_uri", "path", "sock"):
        if getattr(c, key):
            kids.append(Xavp(key, getattr(c, key)))
    kids.append(Xavp("flags", int(c.flags)))
    if with_q_flag:
        kids.append(Xavp("q_flag", int(c.q_flag)))
    for key in ("instance", "ruid", "ua"):
        if getattr(c, key):
            kids.append(Xavp(key, getattr(c, key)))
    return Xavp(name, list(reversed(kids)))      # Kamailio adds each field at the head


def _fields(x: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(x.value, list):
        for c in x.value:
            out.setdefault(c.name, c.value)
    return out


def _contact_of(f: dict[str, Any]) -> _Contact:
    def s(key: str) -> str:
        v = f.get(key)
        return "" if v is None else str(v)

    def i(key: str) -> int:
        try:
            return int(f.get(key) or 0)
        except (TypeError, ValueError):
            return 0

    return _Contact(uri=s("uri"), dst_uri=s("dst_uri"), path=s("path"), sock=s("sock"),
                    flags=i("flags"), instance=s("instance"), ruid=s("ruid"), ua=s("ua"),
                    q_flag=i("q_flag"))


def _sock_text(sock: Any) -> str:
    return str(sock) if sock is not None else ""


def _find_socket(ctx: RouteCtx, text: str) -> tuple[bool, Any]:
    """(ok, socket) for a stored `sock` field; ok False when it names no socket of ours."""
    if not text:
        return True, None
    for s in ctx.core.sockets:
        if str(s) == text:
            return True, s
    log.error("tm: contact socket \"%s\" is not one of ours", text)
    return False, None


# ---- t_load_contacts -----------------------------------------------------------------------

def _dset(ctx: RouteCtx, ruri_new: bool) -> list[_Contact]:
    items: list[_Contact] = []
    if ruri_new:
        items.append(_Contact(uri=ctx.msg.ruri, dst_uri=ctx.dst_uri or "",
                              path=ctx.path_vec or "", sock=_sock_text(ctx.force_socket),
                              flags=ctx.bflags, q=ctx.ruri_q, instance=ctx.instance or "",
                              ruid=ctx.ruid or "", ua=ctx.location_ua or ""))
    for b in ctx.branches:
        items.append(_Contact(uri=b.uri, dst_uri=b.dst_uri or "", path=b.path or "",
                              sock=_sock_text(b.force_socket), flags=b.bflags,
                              q=Q_UNSPECIFIED if b.q is None else int(b.q),
                              instance=b.instance or "", ruid=b.ruid or "",
                              ua=b.location_ua or ""))
    return items


def _ordered(items: list[_Contact], proportional: bool) -> tuple[list[_Contact], int, int]:
    """Kamailio's contact list: by increasing q_index (q, or the running q total in
    proportional mode); an equal one without Path goes after, with Path before."""
    total = count = 0
    out: list[_Contact] = []
    for c in items:
        c.q_index = c.q
        if proportional:
            if c.q > 0:
                total += c.q
                count += 1
            c.q_index = total
        pos = 0
        while pos < len(out) and (out[pos].q_index < c.q_index
                                  or (out[pos].q_index == c.q_index and not c.path)):
            pos += 1
        out.insert(pos, c)
    return out, total, count


def load_contacts(ctx: RouteCtx, mode: int = T_LOAD_STANDARD) -> int:
    """Destination set -> contacts_avp; 1 also when there is nothing to do, -1 on error."""
    name = contacts_avp_name()
    if name is None:
        log.error("t_load_contacts: feature has been disabled - to enable define contacts_avp "
                  "module parameter")
        return -1
    ruri_new = not ctx.ruri_consumed
    if not ctx.branches or (len(ctx.branches) == 1 and not ruri_new):
        return 1                 # only one contact: nothing to serialise
    contacts, q_total, n = _ordered(_dset(ctx, ruri_new), mode == T_LOAD_PROPORTIONAL)
    roots = _roots(ctx)
    if mode == T_LOAD_PROPORTIONAL:
        # one contact per step; a random order weighted by q, then the q <= 0 ones as backup
        pool = [c for c in contacts if c.q > 0]
        picked: list[_Contact] = []
        for _ in range(n):
            r = random.randrange(q_total)
            acc = k = 0
            for k, cand in enumerate(pool):
                acc += cand.q
                if acc > r:
                    break
            picked.append(pool.pop(k))
            q_total -= picked[-1].q
        picked += [c for c in contacts if c.q <= 0]
        for c in picked:
            c.q_flag = Q_FLAG
        # Kamailio adds each after the previous one, from the head of the list
        roots[0:0] = [_record(name, c, True) for c in picked]
    else:
        for i, c in enumerate(contacts):
            c.q_flag = Q_FLAG if i and contacts[i - 1].q < c.q else 0
        for c in contacts:       # each onto the head: the head ends up the highest q
            roots.insert(0, _record(name, c, True))
    ctx.branches.clear()
    return 1


# ---- t_next_contacts ------------------------------------------------------------------------

def _append_branch(ctx: RouteCtx, c: _Contact, sock: Any) -> int:
    limit = int(ctx.core.get_global("max_branches", 12) or 12)
    if len(ctx.branches) + 1 >= limit:
        log.error("tm: appending branch failed (max_branches)")
        return -1
    ctx.branches.append(Branch(uri=c.uri, dst_uri=c.dst_uri or None, path=c.path or None,
                               q=0, bflags=c.flags, force_socket=sock,
                               instance=c.instance or None, ruid=c.ruid or None,
                               location_ua=c.ua or None))
    return 1


def next_contacts(ctx: RouteCtx) -> int:
    """The head q group of contacts_avp becomes the destination set: 1 done, -2 nothing
    left, -1 error."""
    name = contacts_avp_name()
    if name is None:
        log.error("t_next_contacts: feature has been disabled - to enable define contacts_avp "
                  "module parameter")
        return -1
    roots = _roots(ctx)
    mine = [x for x in roots if x.name == name]
    if not mine:
        return -2
    head = _contact_of(_fields(mine[0]))
    ok, sock = _find_socket(ctx, head.sock)
    if not ok:
        roots.remove(mine[0])
        return -1
    used: list[str] = []
    if head.instance and not head.q_flag:
        used.append(head.instance)
    ctx.set_branch0(Branch(uri=head.uri, dst_uri=head.dst_uri or None, path=head.path or None,
                           q=ctx.ruri_q, bflags=head.flags, force_socket=sock,
                           instance=head.instance if head.instance and not head.q_flag
                           else None, ruid=head.ruid or None, location_ua=head.ua or None,
                           otcpid=ctx.otcpid))
    ctx.ruri_consumed = False
    roots.remove(mine[0])
    if head.q_flag:
        return 1                # alone in its q group
    flows = _flows_name()
    if flows is not None:
        xavp_rm(roots, flows)
    for x in mine[1:]:
        c = _contact_of(_fields(x))
        ok, sock = _find_socket(ctx, c.sock)
        if not ok:
            return -1
        roots.remove(x)
        if c.instance and c.instance in used:
            # another flow of an instance already in the set: for t_next_contact_flow()
            if flows is not None:
                roots.insert(0, _record(flows, c, False))
        else:
            if c.instance and not c.q_flag:
                used.append(c.instance)
            if _append_branch(ctx, c, sock) != 1:
                return -1
        if c.q_flag:
            break
    return 1


# ---- t_next_contact_flow --------------------------------------------------------------------

def next_contact_flow(ctx: RouteCtx) -> int:
    """In tm:branch-failure: the first pending flow with the failed branch's +sip.instance
    becomes a new branch. 1 done, -2 nothing to do (no instance, no flows), -1 error or no
    flow of that instance."""
    flows = _flows_name()
    if flows is None:
        log.error("t_next_contact_flow: feature has been disabled - to enable define "
                  "contact_flows_avp module parameter")
        return -1
    this = TM.of(ctx).branch_instance if ctx.route_type == RouteType.BRANCH_FAILURE else None
    if not this:
        log.debug("t_next_contact_flow: no instance on this branch")
        return -2
    roots = _roots(ctx)
    pending = [x for x in roots if x.name == flows]
    if not pending:
        return -2
    for x in pending:
        c = _contact_of(_fields(x))
        if c.instance != this or not c.uri:
            continue
        ok, sock = _find_socket(ctx, c.sock)
        if not ok:
            roots.remove(x)
            return -1
        if _append_branch(ctx, c, sock) != 1:
            return -1
        roots.remove(x)
        return 1
    return -1


# ---- with the transaction ---------------------------------------------------------------

def dump(ctx: RouteCtx) -> str:
    """The pending contacts as JSON text for the transaction ("" when none)."""
    if ctx.xavps is None:
        return ""
    name = contacts_avp_name()
    if name is None:
        return ""
    items = [[[c.name, c.value] for c in x.value] for x in ctx.xavps.xavp
             if x.name == name and isinstance(x.value, list)]
    return json.dumps(items) if items else ""


def restore(ctx: RouteCtx, text: str) -> None:
    """Put the transaction's pending contacts back into ctx's xavps (failure_route)."""
    name = contacts_avp_name()
    if not text or name is None:
        return
    roots = _roots(ctx)
    roots[:0] = [Xavp(name, [Xavp(k, v) for k, v in item]) for item in json.loads(text)]


# ---- script functions -----------------------------------------------------------------------

@mod.function("t_load_contacts", args=(), routes=RF)
def ki_t_load_contacts(ctx: RouteCtx) -> int:
    """Load the destination set into contacts_avp (q order)."""
    return load_contacts(ctx, T_LOAD_STANDARD)


@mod.function("t_load_contacts", args=(Fx.IGP,), routes=RF)
def ki_t_load_contacts_mode(ctx: RouteCtx, mode: int) -> int:
    """Same; mode 0 q order, 1 proportional by q."""
    if mode not in (T_LOAD_STANDARD, T_LOAD_PROPORTIONAL):
        log.error("t_load_contacts: unknown mode %s", mode)
        return -1
    return load_contacts(ctx, mode)


@mod.function("t_next_contacts", args=(), routes=RF)
def ki_t_next_contacts(ctx: RouteCtx) -> int:
    """Pop the next q group into the destination set."""
    return next_contacts(ctx)


@mod.function("t_next_contact_flow", args=(), routes=REQ | EVENT_ROUTE | RouteType.BRANCH_FAILURE)
def ki_t_next_contact_flow(ctx: RouteCtx) -> int:
    """Append the next flow of the failed branch's +sip.instance; 1, -2 none, -1 error."""
    return next_contact_flow(ctx)
