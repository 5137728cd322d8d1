"""save(): REGISTER processing (RFC 3261 section 10.3, RFC 3327 Path, RFC 5626 instance/reg-id).

Runs in: SIP workers. Shared state: the usrloc domain (through the usrloc API); nothing is
kept here between messages.

Order of work: everything that can fail on the request (Contact/Expires syntax, AoR, Path
support) is checked before usrloc is touched; the binding update is one usrloc.update() call
(the AoR's lock is held only inside it); the reply is sent after.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sipcore.db import DbError
from sipcore.errors import ParseError
from sipcore.msg import HdrType
from sipcore.msg.msg import METHOD_IDS
from sipcore.route.ctx import RouteCtx
from sipcore.shm import ShmError

from . import common

SAVE_MEMORY_ONLY = 0x01
SAVE_NO_REPLY = 0x02
SAVE_SINGLE = 0x04
SAVE_NO_EXP_RANGE = 0x08
SAVE_PREP_REPLY = 0x10

# save() return codes (Kamailio registrar)
RC_INSERTED, RC_UPDATED, RC_DELETED, RC_QUERY = 1, 2, 3, 4


class RegError(Exception):
    """A REGISTER that gets an error reply (Kamailio rerrno -> code/reason)."""

    def __init__(self, code: int, reason: str, rc: int = -1,
                 headers: tuple[str, ...] = ()) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason
        self.rc = rc
        self.headers = headers


@dataclass
class ReqContact:
    """One Contact of the REGISTER with its computed values."""

    uri: str
    expires: int                    # seconds (0 = remove)
    q: int
    instance: str = ""
    reg_id: int = 0
    methods: int = -1
    params: list[tuple[str, str | None]] = field(default_factory=list)


def parse_q(text: str) -> int:
    t = text.strip()
    whole, dot, frac = t.partition(".")
    if not whole.isdigit() or (dot and frac and not frac.isdigit()) or len(frac) > 3:
        raise ValueError(text)
    q = int(whole) * 1000 + int((frac or "0").ljust(3, "0"))
    if q > 1000:
        raise ValueError(text)
    return q


def methods_mask(values: list[str]) -> int:
    mask = 0
    for v in values:
        for m in v.split(","):
            m = m.strip().upper()
            if m:
                mask |= METHOD_IDS.get(m, METHOD_IDS.get("OTHER", 0))
    return mask


def _supported(msg: Any, tag: str) -> bool:
    for v in msg.header_values(HdrType.SUPPORTED):
        if v.strip().lower() == tag:
            return True
    return False


class Saver:
    """One save() call."""

    def __init__(self, ctx: RouteCtx, p: Any, table: str, flags: int,
                 uri: str | None) -> None:
        self.ctx = ctx
        self.p = p
        self.table = table
        self.flags = flags
        self.uri = uri
        self.ul = common.usrloc_api()
        self.path = ""
        self.path_in_reply = False

    # ---- request checks ---------------------------------------------------------------
    def expires_of(self, value: str | None, hdr: int | None) -> int:
        p = self.p
        if value is not None:
            try:
                e = int(value.strip())
                if e < 0:
                    raise ValueError
            except ValueError:
                raise RegError(400, "Invalid expires param in contact") from None
        elif hdr is not None:
            e = hdr
        else:
            e = int(p.default_expires)
        if e == 0:
            return 0
        if p.min_expires and e < p.min_expires:
            if p.min_expires_mode:
                raise RegError(423, "Interval Too Brief", headers=(
                    f"Min-Expires: {p.min_expires}",))
            e = int(p.min_expires)
        if p.max_expires and e > p.max_expires:
            e = int(p.max_expires)
        return e

    def request_contacts(self) -> tuple[bool, list[ReqContact]]:
        msg = self.ctx.msg
        try:
            cl = msg.contacts
        except ParseError:
            raise RegError(400, "Bad Contact header") from None
        try:
            hdr_exp = msg.expires
        except ParseError:
            raise RegError(400, "Invalid Expires header") from None
        if cl.star:
            if hdr_exp != 0:
                raise RegError(400, "Expires must be 0 for star contact")
            if len(cl.contacts) > 0:
                raise RegError(400, "Star contact and other contacts")
            return True, []
        allow = msg.header_values(HdrType.ALLOW)
        hdr_methods = methods_mask(allow) if allow else -1
        out = []
        default_q = int(self.p.default_q) or -1
        for na in cl.contacts:
            if len(na.uri) > int(self.p.contact_max_size):
                raise RegError(400, "Contact/received too long")
            try:
                if not na.parsed_uri.scheme:
                    raise ParseError("no scheme", -1)
            except ParseError:
                raise RegError(400, "Bad Contact URI") from None
            q = default_q
            if na.q is not None:
                try:
                    q = parse_q(na.q)
                except ValueError:
                    raise RegError(400, "Invalid q param in contact") from None
            instance = na.param("+sip.instance") or ""
            reg_id = 0
            rid = na.param("reg-id")
            if rid is not None:
                try:
                    reg_id = int(rid)
                except ValueError:
                    raise RegError(400, "Invalid reg-id param in contact") from None
            methods = hdr_methods
            mp = na.param("methods")
            if mp is not None:
                methods = methods_mask([mp.strip('"')])
            out.append(ReqContact(na.uri, self.expires_of(na.expires, hdr_exp), q, instance,
                                  reg_id, methods, list(na.params)))
        return False, out

    def check_path(self) -> None:
        if not self.p.use_path:
            return
        msg = self.ctx.msg
        values = msg.header_values(HdrType.PATH)
        if not values:
            return
        supported = _supported(msg, "path")
        mode = int(self.p.path_mode)
        if mode == 2 and not supported:
            raise RegError(420, "Bad Extension", headers=("Unsupported: path",))
        self.path = ",".join(v.strip() for v in values)
        self.path_in_reply = mode == 2 or (mode == 1 and supported)

    def aor(self) -> str:
        msg = self.ctx.msg
        try:
            uri = self.uri if self.uri else msg.to.uri
        except ParseError:
            raise RegError(400, "Bad To header") from None
        try:
            return common.extract_aor(uri, use_domain=self.ul.use_domain,
                                      case_sensitive=bool(self.p.case_sensitive),
                                      realm_prefix=self.p.realm_prefix)
        except common.AorError:
            raise RegError(400, "No username in To URI") from None

    def received(self) -> str:
        spec = self.p.received_avp
        if not spec:
            return ""
        from sipcore.pv import cached_pv

        v = cached_pv(spec).get(self.ctx)
        return "" if v is None else str(v)

    # ---- the update -------------------------------------------------------------------
    def run(self) -> int:
        ctx = self.ctx
        msg = ctx.msg
        if not msg.is_request:
            common.log_err("save() works on REGISTER requests", ctx)
            return -1
        star, reqs = self.request_contacts()
        self.check_path()
        aor = self.aor()
        dom = self.ul.register_udomain(self.table)
        mem_only = bool(self.flags & SAVE_MEMORY_ONLY)
        try:
            if star:
                dom.update(aor, lambda cts: [], mem_only=mem_only)
                result = RC_DELETED
                bindings: list[Any] = []
            elif not reqs:
                bindings = dom.get(aor)
                result = RC_QUERY
            else:
                outcome: list[int] = []
                base = self.binding_fields()
                bindings = dom.update(aor, lambda cts: self.merge(cts, reqs, base, outcome),
                                      mem_only=mem_only)
                result = outcome[0]
        except (DbError, ShmError, self.ul.RecordTooLarge) as exc:
            common.log_err(f"usrloc update of {aor} failed: {exc}", ctx)
            raise RegError(500, "Server Internal Error") from None
        self.reply(200, "OK", self.contact_headers(aor, bindings))
        common.count("accepted_regs")
        return result

    def binding_fields(self) -> dict[str, Any]:
        """What every binding of this REGISTER stores, computed before usrloc's lock is taken
        (message parsing and PV evaluation never run under it)."""
        msg = self.ctx.msg
        rcv = self.ctx.rcv
        try:
            return {"callid": msg.callid, "cseq": msg.cseq.num, "user_agent": msg.user_agent or "",
                    "socket": f"{rcv.proto}:{rcv.dst_ip}:{rcv.dst_port}",
                    "received": self.received(), "cflags": self.ctx.bflags,
                    "path": self.path, "conn_id": rcv.conn_id}
        except ParseError:
            raise RegError(400, "Message parse error") from None

    def merge(self, cts: list[Any], reqs: list[ReqContact], base: dict[str, Any],
              outcome: list[int]) -> list[Any]:
        """Under the AoR lock (pure, no I/O): apply the REGISTER's contacts to the bindings."""
        callid = base["callid"]
        cseq = base["cseq"]
        now = int(time.time())
        cur = list(cts)
        inserted = updated = deleted = 0
        if self.flags & SAVE_SINGLE:
            keep_uris = {r.uri for r in reqs if r.expires > 0}
            before = len(cur)
            cur = [c for c in cur if c.c in keep_uris]
            deleted += before - len(cur)
        for r in reqs:
            old = self.ul.match_contact(cur, r.uri, callid, self.path, r.instance, r.reg_id)
            if old is not None and old.callid == callid:
                if cseq < old.cseq:
                    raise RegError(400, "Invalid CSeq number")
                if cseq == old.cseq and now - old.last_modified < self.ul.cseq_delay:
                    continue                    # retransmission (cseq_delay)
            if r.expires == 0:
                if old is not None:
                    cur.remove(old)
                    deleted += 1
                continue
            fields = {**base, "c": r.uri, "expires": now + r.expires, "q": r.q,
                      "methods": r.methods, "instance": r.instance, "reg_id": r.reg_id,
                      "last_modified": now}
            if old is not None:
                cur[cur.index(old)] = old.copy(**fields)
                updated += 1
            else:
                cur.append(self.ul.new_contact(**fields))
                inserted += 1
        limit = int(self.p.max_contacts)
        if limit and len(cur) > limit:
            raise RegError(503, "Too many registered contacts", rc=-2)
        outcome.append(RC_INSERTED if inserted else RC_UPDATED if updated
                       else RC_DELETED if deleted else RC_UPDATED)
        return cur

    # ---- the reply --------------------------------------------------------------------
    def contact_headers(self, aor: str, bindings: list[Any]) -> list[str]:
        q_text = self.ul.q_text
        now = time.time()
        hdrs = []
        gruu = bool(self.p.gruu_enabled) and _supported(self.ctx.msg, "gruu")
        for c in bindings:
            item = f"<{c.c}>;expires={c.expires_in(now) if c.expires else 0}"
            if c.q >= 0:
                item += f";q={q_text(c.q)}"
            if c.received:
                item += f';{self.p.received_param}="{c.received}"'
            if c.instance:
                item += f";+sip.instance={c.instance}"
                if gruu:
                    urn = c.instance.strip('"').strip("<>")
                    item += f';pub-gruu="{self.aor_uri(aor)};gr={urn}"'
            if c.reg_id:
                item += f";reg-id={c.reg_id}"
            hdrs.append(f"Contact: {item}")
        if self.path and self.path_in_reply:
            hdrs.append(f"Path: {self.path}")
            hdrs.append("Supported: path")
        if gruu and any(c.instance for c in bindings):
            hdrs.append("Require: gruu")
        return hdrs

    def aor_uri(self, aor: str) -> str:
        if "@" in aor:
            return f"sip:{aor}"
        try:
            host = self.ctx.msg.to.parsed_uri.host
        except ParseError:
            host = self.ctx.rcv.dst_ip
        return f"sip:{aor}@{host}"

    def reply(self, code: int, reason: str, headers: list[str]) -> None:
        if self.flags & SAVE_NO_REPLY:
            self.ctx.extra["registrar_reply"] = (code, reason, headers)
            return
        if not common.send_reply(self.ctx, code, reason, headers):
            common.log_err(f"failed to send the {code} reply", self.ctx)


def save(ctx: RouteCtx, p: Any, table: str, flags: int, uri: str | None) -> int:
    """The save() entry: 1..4 on success (see RC_*), -1 error, -2 too many contacts; an error
    reply is sent unless flag 0x02 holds it back for reg_send_reply()."""
    s = Saver(ctx, p, table, flags, uri)
    try:
        return s.run()
    except RegError as exc:
        common.count("rejected_regs")
        common.log_err(f"save({table}): {exc}", ctx)
        headers = list(exc.headers)
        if exc.code >= 500 and p.retry_after:
            headers.append(f"Retry-After: {p.retry_after}")
        s.reply(exc.code, exc.reason, headers)
        return exc.rc
