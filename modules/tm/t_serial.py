"""Serial forking by q value: t_load_contacts() / t_next_contacts() (Kamailio t_serial.c).

Runs in: SIP workers (request_route) and whichever process runs the failure_route (a worker
or the timer process). Shared state: the pending contacts travel with the transaction (the
cell's `contacts` field, JSON text) so that a failure_route in another process continues the
sequence; inside a route they are the xavp named by the contacts_avp parameter.
"""
from __future__ import annotations

import json
import random
from typing import Any, Optional

from sipcore import log as klog
from sipcore.route.ctx import Branch, RouteCtx

FIELDS = ("uri", "dst_uri", "path", "flags", "q", "instance", "ruid")


def _name() -> Optional[str]:
    from . import mod

    name = mod.p.contacts_avp
    return name.strip() if name else None


def _roots(ctx: RouteCtx) -> list[Any]:
    from sipcore.pv.vars import xavps

    return xavps(ctx).xavp


def load_contacts(ctx: RouteCtx, mode: int = 0) -> int:
    """Destination set (R-URI + branches) -> contacts_avp, highest q first (mode 0), or in a
    random order weighted by q (mode 1, q <= 0 last). 1 also when there is nothing to do."""
    from sipcore.pv.vars import Xavp, xavp_rm

    name = _name()
    if name is None:
        klog.err("t_load_contacts: contacts_avp parameter is not set", ctx)
        return -1
    if not ctx.branches:
        return 1                 # one destination: nothing to serialise
    items = [{"uri": ctx.msg.ruri, "dst_uri": ctx.dst_uri or "",
              "path": ctx.extra.get("path_vec") or "", "flags": ctx.bflags,
              "q": ctx.extra.get("ruri_q", -1), "instance": "", "ruid": ""}]
    for b in ctx.branches:
        items.append({"uri": b.uri, "dst_uri": b.dst_uri or "", "path": b.path or "",
                      "flags": b.bflags, "q": b.q, "instance": b.instance or "",
                      "ruid": b.ruid or ""})
    for it in items:
        if it["q"] is None or it["q"] < 0:
            it["q"] = 1000          # unspecified q counts as 1.0
    if mode == 1:
        pos = [it for it in items if it["q"] > 0]
        rest = [it for it in items if it["q"] <= 0]
        ordered = []
        while pos:
            pick = random.choices(range(len(pos)), weights=[it["q"] for it in pos])[0]
            ordered.append(pos.pop(pick))
        # proportional mode: every contact is its own serial step
        for i, it in enumerate(ordered + rest):
            it["q"] = 100000 - i
        items = ordered + rest
    else:
        items.sort(key=lambda it: -it["q"])      # stable: equal q keeps the dset order
    roots = _roots(ctx)
    xavp_rm(roots, name)
    for it in reversed(items):                   # newest first: the head is the highest q
        roots.insert(0, Xavp(name, [Xavp(k, it[k]) for k in reversed(FIELDS)]))
    ctx.branches.clear()
    ctx.extra["ruri_consumed"] = False
    return 1


def _fields(x: Any) -> dict[str, Any]:
    return {c.name: c.value for c in x.value} if isinstance(x.value, list) else {}


def next_contacts(ctx: RouteCtx) -> int:
    """Pop the highest-q group into the destination set: 1 done, -2 none left, -1 error."""
    name = _name()
    if name is None:
        klog.err("t_next_contacts: contacts_avp parameter is not set", ctx)
        return -1
    roots = _roots(ctx)
    mine = [x for x in roots if x.name == name]
    if not mine:
        return -2
    q = _fields(mine[0]).get("q")
    group = [x for x in mine if _fields(x).get("q") == q]
    for x in group:
        roots.remove(x)
    first = _fields(group[0])
    ctx.msg.set_ruri(first["uri"])
    ctx.dst_uri = first["dst_uri"] or None
    ctx.bflags = int(first.get("flags") or 0)
    if first.get("path"):
        ctx.extra["path_vec"] = first["path"]
    ctx.extra["ruri_consumed"] = False
    ctx.branches.clear()
    for x in group[1:]:
        f = _fields(x)
        ctx.branches.append(Branch(uri=f["uri"], dst_uri=f["dst_uri"] or None,
                                   path=f.get("path") or None, q=int(f.get("q") or -1),
                                   bflags=int(f.get("flags") or 0),
                                   instance=f.get("instance") or None,
                                   ruid=f.get("ruid") or None))
    return 1


def dump(ctx: RouteCtx) -> str:
    """The pending contacts as JSON text for the transaction ("" when none)."""
    name = _name()
    if name is None or ctx.xavps is None:
        return ""
    items = [_fields(x) for x in ctx.xavps.xavp if x.name == name]
    return json.dumps(items) if items else ""


def restore(ctx: RouteCtx, text: str) -> None:
    """Put the transaction's pending contacts back into ctx's xavps (failure_route)."""
    from sipcore.pv.vars import Xavp

    name = _name()
    if not text or name is None:
        return
    roots = _roots(ctx)
    for it in reversed(json.loads(text)):
        roots.insert(0, Xavp(name, [Xavp(k, it.get(k)) for k in reversed(FIELDS)]))
