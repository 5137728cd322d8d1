"""save(): REGISTER processing (RFC 3261 section 10.3, RFC 3327 Path, RFC 5626 instance/reg-id).

Runs in: SIP workers. Shared state: the usrloc domain (through the usrloc API); nothing is
kept here between messages.

Order of work: everything that can fail on the request (Contact/Expires syntax, AoR, Path
support) is checked before usrloc is touched; the binding update is one usrloc.update() call
(the AoR's lock is held only inside it); the reply is sent after.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

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

# outbound_mode (Kamailio REG_OUTBOUND_NONE / _SUPPORTED / _REQUIRE); regid_mode 0 = only with
# outbound through an edge proxy that supports it (REG_REGID_OUTBOUND), 1 = always
OUTBOUND_NONE, OUTBOUND_SUPPORTED, OUTBOUND_REQUIRE = 0, 1, 2
REGID_OUTBOUND = 0

# reply reasons by code (Kamailio reply.c MSG_*); the detail goes into P-Registrar-Error
REASONS = {200: "OK", 400: "Bad Request", 420: "Bad Extension", 421: "Extension Required",
           423: "Interval Too Brief", 439: "First Hop Lacks Outbound Support",
           500: "Server Internal Error", 503: "Service Unavailable"}


class RegError(Exception):
    """A REGISTER that gets an error reply (Kamailio rerrno): CODE with its standard reason
    and `P-Registrar-Error: INFO` (Kamailio's error_info text for the rerrno)."""

    def __init__(self, code: int, info: str, rc: int = -1,
                 headers: tuple[str, ...] = ()) -> None:
        super().__init__(f"{code} {info}")
        self.code = code
        self.reason = REASONS.get(code, "Bad Request")
        self.info = info
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
    return tag in _option_tags(msg, HdrType.SUPPORTED)


def _option_tags(msg: Any, hdr: int) -> set[str]:
    """The option tags of every Supported (or Require) header, lowercase."""
    return {v.strip().lower() for v in msg.header_values(hdr)}


def first_path_uri(path: str) -> Any:
    """The parsed URI of the first hop of a Path vector; None when empty or unparsable."""
    from sipcore.msg import parse_nameaddr_list

    try:
        hops = parse_nameaddr_list(path) if path else []
        return hops[0].parsed_uri if hops else None
    except ParseError:
        return None


def randomize_expires(expires: int, range_pct: int) -> int:
    """Kamailio randomize_expires(): a value in [expires - range% of it, expires], in steps of
    1 % of the span."""
    if not range_pct or expires <= 0:
        return expires
    lo = expires - int(range_pct / 100 * expires)
    return lo + int(random.randrange(100) / 100 * (expires - lo))


def xavp_cfg_value(ctx: RouteCtx, p: Any, name: str) -> Any:
    """$xavp(<xavp_cfg>=>NAME) (runtime override of a parameter), None when unset."""
    if not p.xavp_cfg:
        return None
    from sipcore.pv.vars import xavp_get

    store = ctx.xavps
    root = xavp_get(store.xavp, p.xavp_cfg) if store is not None else None
    if root is None or not isinstance(root.value, list):
        return None
    child = xavp_get(root.value, name)
    return None if child is None else child.value


def xavp_contact_pack(ctx: RouteCtx, name: str) -> str:
    """usrloc's xavp_contact: the simple children of $xavp(NAME) as JSON [[name, value], ...]
    (newest first, as the xavp list keeps them) for the binding; "" when unset."""
    if not name or ctx.xavps is None:
        return ""
    import json

    from sipcore.pv.vars import xavp_get

    root = xavp_get(ctx.xavps.xavp, name)
    if root is None or not isinstance(root.value, list):
        return ""
    items = [[x.name, x.value] for x in root.value
             if x.value is None or isinstance(x.value, (str, int))]
    return json.dumps(items) if items else ""


def xavp_contact_restore(ctx: RouteCtx, name: str, packed: str) -> None:
    """lookup(): the contact's saved attributes become $xavp(NAME) again."""
    if not name or not packed:
        return
    import json

    from sipcore.pv.vars import Xavp, xavp_add, xavps

    try:
        items = json.loads(packed)
    except ValueError:
        return
    xavp_add(xavps(ctx).xavp, name, [Xavp(str(n), v) for n, v in items])


XAVP_RCD_RUID, XAVP_RCD_CONTACT, XAVP_RCD_EXPIRES, XAVP_RCD_RECEIVED, XAVP_RCD_PATH = \
    1, 2, 4, 8, 16


def xavp_rcd_add(ctx: RouteCtx, p: Any, c: Any, now: float) -> None:
    """Kamailio xavp_rcd_helper(): the record's details as children of $xavp(<xavp_rcd>),
    fields in xavp_rcd_mask left out (1 ruid, 2 contact, 4 expires, 8 received, 16 path)."""
    if not p.xavp_rcd:
        return
    from sipcore.pv.vars import xavp_add, xavp_get, xavps

    roots = xavps(ctx).xavp
    root = xavp_get(roots, p.xavp_rcd)
    if root is None or not isinstance(root.value, list):
        root = xavp_add(roots, p.xavp_rcd, [])
    kids: list[Any] = root.value
    mask = int(p.xavp_rcd_mask)
    if not mask & XAVP_RCD_RUID:
        xavp_add(kids, "ruid", c.ruid)
    if c.received and not mask & XAVP_RCD_RECEIVED:
        xavp_add(kids, "received", c.received)
    if not mask & XAVP_RCD_CONTACT:
        xavp_add(kids, "contact", c.c)
    if not mask & XAVP_RCD_EXPIRES:
        xavp_add(kids, "expires", int(c.expires - now) if c.expires else 0)
    if c.path and not mask & XAVP_RCD_PATH:
        xavp_add(kids, "path", c.path)


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
        self.path_received = ""
        self.use_regid = True
        self.ob_tags: tuple[set[str], set[str]] = (set(), set())   # Supported, Require

    # ---- request checks ---------------------------------------------------------------
    def expires_of(self, value: str | None, hdr: int | None) -> int:
        """Kamailio calc_contact_expires(): the Contact's expires param, else the Expires
        header, else default_expires; randomised below by expires_range (default_expires_range
        for the default) unless flag 0x08; then min_expires / max_expires."""
        p = self.p
        if value is not None:
            try:
                e = int(value.strip())
                if e < 0:
                    raise ValueError
            except ValueError:
                raise RegError(400, "Invalid expires param in contact") from None
            rng = int(p.expires_range)
        elif hdr is not None:
            e = hdr
            rng = int(p.expires_range)
        else:
            e = int(p.default_expires)
            rng = int(p.default_expires_range)
        if e == 0:
            return 0
        if not self.flags & SAVE_NO_EXP_RANGE:
            e = randomize_expires(e, rng)
        if p.min_expires and e < p.min_expires:
            if p.min_expires_mode:
                raise RegError(423, "Interval too brief", headers=(
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
            raise RegError(400, "Contact parse error") from None
        try:
            hdr_exp = msg.expires
        except ParseError:
            raise RegError(400, "Expires parse error") from None
        if cl.star:
            if hdr_exp != 0:
                raise RegError(400, "* used in contact and expires is not zero")
            if len(cl.contacts) > 0:
                raise RegError(400, "* used in contact and more than 1 contact")
            return True, []
        allow = msg.header_values(HdrType.ALLOW)
        hdr_methods = methods_mask(allow) if allow else -1
        out = []
        default_q = int(self.p.default_q) or -1
        q_override = xavp_cfg_value(self.ctx, self.p, "q")
        for na in cl.contacts:
            if len(na.uri) > int(self.p.contact_max_size):
                raise RegError(400, "Contact/received too long")
            try:
                if not na.parsed_uri.scheme:
                    raise ParseError("no scheme", -1)
            except ParseError:
                raise RegError(400, "Contact parse error") from None
            q = default_q
            if isinstance(q_override, int) and 0 <= q_override <= 1000:
                q = q_override                  # $xavp(<xavp_cfg>=>q)
            elif na.q is not None:
                try:
                    q = parse_q(na.q)
                except ValueError:
                    raise RegError(400, "Invalid q param in contact") from None
            instance = na.param("+sip.instance") or ""
            reg_id = 0
            rid = na.param("reg-id")
            # reg-id counts only beside +sip.instance (RFC 5626 4.2), and only when outbound
            # (or regid_mode=1) allows it; 0 or garbage is an error (Kamailio pack_ci)
            if rid is not None and instance and self.use_regid:
                try:
                    reg_id = int(rid)
                    if reg_id <= 0:
                        raise ValueError
                except ValueError:
                    raise RegError(400, "Invalid Reg-Id number") from None
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
            raise RegError(420, "No support for found Path indicated",
                           headers=("Unsupported: path",))
        self.path = ",".join(v.strip() for v in values)
        self.path_in_reply = mode == 2 or (mode == 1 and supported)
        first = first_path_uri(self.path)
        if first is None or first.param("lr") is None:
            raise RegError(400, "Path parse error")   # first hop must be a loose router
        if self.p.path_use_received:
            rcv = first.param("received")
            if rcv:
                # RFC 3327 edge proxy behind NAT: the UA's address the edge saw, escaped
                self.path_received = unquote(rcv.strip('"'))

    def check_outbound(self) -> None:
        """RFC 5626 as Kamailio's save(): 421 when outbound_mode=2 and the UA's Supported
        lacks it, 420 when the UA requires it and outbound_mode=0; beyond the first hop the
        reg-id is ignored unless the top Path URI carries ;ob (or regid_mode=1), and a UA
        supporting outbound with a reg-id there gets 439."""
        msg = self.ctx.msg
        mode = int(self.p.outbound_mode)
        sup = _option_tags(msg, HdrType.SUPPORTED)
        req = _option_tags(msg, HdrType.REQUIRE)
        self.ob_tags = (sup, req)
        # Kamailio checks only a present header (parse_supported()/parse_require() fail
        # without one): no Supported at all is not refused even with outbound_mode=2
        if sup and "outbound" not in sup and mode == OUTBOUND_REQUIRE:
            raise RegError(421, "No support for Outbound indicated",
                           headers=("Require: outbound", "Supported: outbound"))
        if "outbound" in req and mode == OUTBOUND_NONE:
            raise RegError(420, "No support for Outbound on server",
                           headers=("Unsupported: outbound",))
        try:
            if mode == OUTBOUND_NONE or len(msg.vias) < 2:
                return                          # the UA's first hop is this registrar
            contacts = msg.contacts.contacts
        except ParseError:
            return                              # reported by request_contacts()
        first = first_path_uri(",".join(v.strip() for v in msg.header_values(HdrType.PATH)))
        use_ob = first is not None and first.param("ob") is not None
        if not use_ob and int(self.p.regid_mode) == REGID_OUTBOUND:
            if "outbound" in sup and contacts and contacts[0].param("reg-id") is not None:
                raise RegError(439, "No support for Outbound on edge proxy")
            self.use_regid = False

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
        if self.path_received:
            return self.path_received
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
        self.check_outbound()
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
            raise RegError(500, "usrloc_contact_insert failed") from None
        self.reply(200, "OK", self.contact_headers(aor, bindings) + self.outbound_headers())
        common.count("accepted_regs")
        return result

    def binding_fields(self) -> dict[str, Any]:
        """What every binding of this REGISTER stores, computed before usrloc's lock is taken
        (message parsing and PV evaluation never run under it)."""
        msg = self.ctx.msg
        rcv = self.ctx.rcv
        cflags = self.ctx.bflags
        if self.path_received and self.ul.nat_bflag >= 0:
            cflags |= 1 << self.ul.nat_bflag        # behind NAT, as the edge proxy found
        try:
            return {"callid": msg.callid, "cseq": msg.cseq.num, "user_agent": msg.user_agent or "",
                    "socket": self.socket(), "received": self.received(), "cflags": cflags,
                    "path": self.path, "conn_id": rcv.conn_id,
                    "xavp": xavp_contact_pack(self.ctx, self.ul.xavp_contact)}
        except ParseError:
            raise RegError(400, "Message parse error") from None

    def socket(self) -> str:
        """Kamailio pack_ci(): with message flag sock_flag set, the local socket named in the
        sock_hdr_name header (or $xavp(<xavp_cfg>=>socket) without sock_hdr_name) - when it
        is one of ours; else the receiving socket, as advertised with sock_mode=1."""
        from sipcore.net.sockspec import SocketSpec, find_socket, parse_socket_spec

        ctx, p = self.ctx, self.p
        rcv = ctx.rcv
        if int(p.sock_flag) >= 0 and ctx.isflagset(int(p.sock_flag)):
            if p.sock_hdr_name:
                h = ctx.msg.header(p.sock_hdr_name)
                text = h.value.strip() if h is not None else ""
            else:
                v = xavp_cfg_value(ctx, p, "socket")
                text = str(v).strip() if v else ""
            if text:
                try:
                    sock = find_socket(ctx.core, parse_socket_spec(text))
                except ValueError:
                    sock = None
                if sock is not None:
                    return _sock_str(sock.proto, sock.ip, sock.port)
                common.log_err(f"non-local socket <{text}>", ctx)
        if int(p.sock_mode) & 1:
            sock = rcv.sock if getattr(rcv.sock, "advertise_host", None) else find_socket(
                ctx.core, SocketSpec(rcv.proto, rcv.dst_ip, rcv.dst_port))
            if sock is not None and sock.advertise_host:
                return _sock_str(sock.proto, sock.advertise_host,
                                 sock.advertise_port or sock.port)
        return _sock_str(rcv.proto, rcv.dst_ip, rcv.dst_port)

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
        override = xavp_cfg_value(self.ctx, self.p, "max_contacts")
        limit = override if isinstance(override, int) else int(self.p.max_contacts)
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
        for c in bindings:
            xavp_rcd_add(self.ctx, self.p, c, now)
        return hdrs

    def outbound_headers(self) -> list[str]:
        """200 OK headers of RFC 5626 (Kamailio reg_reply_helper())."""
        mode = int(self.p.outbound_mode)
        if mode == OUTBOUND_NONE:
            return []
        sup, req = self.ob_tags
        flow = [f"Flow-Timer: {int(self.p.flow_timer)}"] if int(self.p.flow_timer) > 0 else []
        if mode == OUTBOUND_REQUIRE:
            return ["Require: outbound", "Supported: outbound", *flow]
        if "outbound" in sup or "outbound" in req:
            return ["Supported: outbound", "Require: outbound", *flow]
        return ["Supported: outbound"]

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
            common.REG.of(self.ctx).held_reply = (code, reason, headers)
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
        headers = [*exc.headers, f"P-Registrar-Error: {exc.info}"]
        if exc.code >= 500 and p.retry_after:
            headers.append(f"Retry-After: {p.retry_after}")
        s.reply(exc.code, exc.reason, headers)
        return exc.rc


def _sock_str(proto: str, host: str, port: int) -> str:
    """proto:host:port as usrloc stores a socket (IPv6 in brackets, like Kamailio's sock_str)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{proto}:{host}:{port}"
