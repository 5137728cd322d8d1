"""registrar: REGISTER processing (save) and location lookup, on top of usrloc.

Runs in: SIP workers (functions), the master (mod_init: binds usrloc, registers the tables
named in the config so they are created and preloaded before fork). Shared state: usrloc's
domains in shm through its API; `$ulc` profiles are per process.

Kamailio equivalent: modules/registrar (save.c, lookup.c, reply.c, reg_mod.c). Return codes,
flags and reply texts follow it; see docs/modules/registrar.md.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sipcore import stats
from sipcore.core.declared import declare_params
from sipcore.mod import (
    ANY_ROUTE,
    FAILURE_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    Custom,
    Fx,
    ModContext,
    Module,
)
from sipcore.pv import PvError, PvSpec
from sipcore.route.ctx import RouteCtx
from sipcore.route.event import faked_ctx

from . import common
from . import lookup as lk
from . import save as sv

mod = Module("registrar", summary="REGISTER processing (save) and location lookup.",
             depends=("usrloc",))

RF = REQUEST_ROUTE | FAILURE_ROUTE
RFO = REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE
TABLE = Custom(common.table_fixup, name="usrloc table")   # static, as Kamailio's fixup

declare_params(mod, [
    ("default_expires", int, 3600, "Expires when the REGISTER has none."),
    ("default_expires_range", int, 0, "% randomisation below default_expires."),
    ("expires_range", int, 0, "% randomisation of the requested expires."),
    ("min_expires", int, 60, "Lower bound (0: off)."),
    ("min_expires_mode", int, 0, "0 raise to min_expires, 1 reply 423."),
    ("max_expires", int, 0, "Upper bound (0: off)."),
    ("default_q", int, 0, "q x 1000 for contacts without q."),
    ("realm_prefix", str, None, "Prefix stripped from the domain."),
    ("append_branches", int, 1, "lookup(): extra contacts as branches."),
    ("case_sensitive", int, 0, "Case-sensitive AoR."),
    ("received_avp", str, None, "AVP stored as the contact's received address."),
    ("received_param", str, "received", "Contact param carrying the received URI."),
    ("max_contacts", int, 0, "Max contacts per AoR (0: unlimited)."),
    ("retry_after", int, 0, "Retry-After on 5xx replies (0: none)."),
    ("sock_flag", int, -1, "Flag: take the socket from sock_hdr_name."),
    ("sock_hdr_name", str, None, "Header carrying the socket."),
    ("sock_mode", int, 0, "1: store the advertised address as socket."),
    ("method_filtering", int, 0, "lookup() returns only contacts allowing the method."),
    ("use_path", int, 0, "Handle the Path header."),
    ("path_mode", int, 2, "0 store, 1 store + reply if supported, 2 require support."),
    ("path_use_received", int, 0, "Use the received param of the first Path URI."),
    ("path_check_local", int, 0, "lookup: drop the first Path hop if local."),
    ("xavp_cfg", str, None, "XAVP with runtime overrides."),
    ("xavp_rcd", str, None, "XAVP filled with record details."),
    ("xavp_rcd_mask", int, 0, "Fields skipped in xavp_rcd."),
    ("gruu_enabled", int, 1, "GRUU when +sip.instance is present."),
    ("outbound_mode", int, 0, "0 no outbound, 1 supported, 2 required."),
    ("regid_mode", int, 0, "1: always use reg-id."),
    ("flow_timer", int, 0, "Flow-Timer header value (outbound)."),
    ("contact_max_size", int, 512, "Max Contact URI length."),
    ("event_callback", str, None, "KEMI function for usrloc:contact-expired."),
    ("lookup_filter_mode", int, 0, "1 filter by rlf_bflags, 2 only active TCP."),
    ("use_expired_contacts", int, 0, "Allow expired contacts in lookup."),
    ("tcp_persistent_flag", int, -1, "Flag keeping the TCP connection for the contact.", False,
     "TCP connections keep tcp_connection_lifetime; a registration does not extend it"),
])


@mod.on_init
def mod_init(ctx: ModContext) -> None:
    """Bind usrloc and create (and preload) every table the config names, before fork."""
    ul = common.BOUND.ul = ctx.bind_api("usrloc")
    common.BOUND.sl = ctx.api_or_none("sl")
    for name in sorted(common.TABLES_SEEN):
        ul.register_udomain(name)
    ul.register_expired_cb(_contact_expired)
    for name in ("accepted_regs", "rejected_regs"):
        stats.register(f"registrar:{name}")
    for name in ("max_expires", "max_contacts", "default_expires"):
        stats.register_func(f"registrar:{name}", _param_stat(name))


def _param_stat(name: str) -> Callable[[], int]:
    """A statistic showing the value of parameter NAME (Kamailio registrar's param stats)."""
    return lambda: int(mod.get_param(name))


EXPIRED_EVENT = "usrloc:contact-expired"


def _contact_expired(domain: str, aor: str, contact: Any) -> None:
    """Timer process: run event_route[usrloc:contact-expired] - or, with a KEMI cfgengine,
    the script function named by event_callback, called with the event name - with
    $ulc(exp=>...) filled."""
    mc = mod.context
    cfg = mc.cfg if mc is not None else None
    if cfg is None:
        return
    kemi = getattr(cfg, "kemi", None)
    cb = str(mod.p.event_callback or "")
    if kemi is not None and cb:
        kemi.ensure_state()
        if not kemi.has_function(cb):
            common.log_err(f"event_callback: no function {cb}() in the KEMI script")
            return

        def run(ctx: RouteCtx) -> None:
            kemi.call_function(cb, ctx, (EXPIRED_EVENT,), "event")
    elif cfg.has_route("event", EXPIRED_EVENT):
        def run(ctx: RouteCtx) -> None:
            cfg.run("event", EXPIRED_EVENT, ctx)
    else:
        return
    lk.PROFILES["exp"] = lk.Profile(aor, domain, [contact])
    try:
        run(faked_ctx(mc.core))
    finally:
        lk.PROFILES.pop("exp", None)


# ---- save -----------------------------------------------------------------------------------

@mod.function("save", args=(TABLE,), routes=RFO)
def ki_save(ctx: RouteCtx, table: str) -> int:
    """Process the REGISTER: update the bindings of the To AoR and reply 200 with them."""
    return sv.save(ctx, mod.p, table, 0, None)


@mod.function("save", args=(TABLE, Fx.IGP), routes=RFO)
def ki_save_flags(ctx: RouteCtx, table: str, flags: int) -> int:
    """Same with flags: 0x01 memory only, 0x02 no reply, 0x04 single contact, 0x08 no
    expires ranges, 0x10 prepare reply headers."""
    return sv.save(ctx, mod.p, table, flags, None)


@mod.function("save", args=(TABLE, Fx.IGP, Fx.SPVE), routes=RFO)
def ki_save_uri(ctx: RouteCtx, table: str, flags: int, uri: str) -> int:
    """Same for AoR URI instead of the To URI."""
    return sv.save(ctx, mod.p, table, flags, uri)


@mod.function("reg_send_reply", args=(), routes=RF)
def ki_reg_send_reply(ctx: RouteCtx) -> int:
    """Send the reply that save(..., 0x02) held back: 1 sent, -1 nothing to send."""
    st = common.REG.peek(ctx)
    held = st.held_reply if st is not None else None
    if held is None:
        return -1
    st.held_reply = None
    code, reason, headers = held
    return 1 if common.send_reply(ctx, code, reason, headers) else -1


# ---- lookup ---------------------------------------------------------------------------------

@mod.function("lookup", args=(TABLE,), routes=RF)
def ki_lookup(ctx: RouteCtx, table: str) -> int:
    """R-URI = best contact of the R-URI AoR, others as branches: 1 found, -1 not found,
    -2 found but the method is not allowed, -3 error."""
    return lk.lookup(ctx, mod.p, table, None)


@mod.function("lookup", args=(TABLE, Fx.SPVE), routes=RF)
def ki_lookup_uri(ctx: RouteCtx, table: str, uri: str) -> int:
    """Same for AoR URI."""
    return lk.lookup(ctx, mod.p, table, uri)


@mod.function("lookup_to_dset", args=(TABLE,), routes=RF)
def ki_lookup_to_dset(ctx: RouteCtx, table: str) -> int:
    """Add all contacts as branches, R-URI unchanged."""
    return lk.lookup(ctx, mod.p, table, None, to_dset=True)


@mod.function("lookup_to_dset", args=(TABLE, Fx.SPVE), routes=RF)
def ki_lookup_to_dset_uri(ctx: RouteCtx, table: str, uri: str) -> int:
    """Same for AoR URI."""
    return lk.lookup(ctx, mod.p, table, uri, to_dset=True)


@mod.function("lookup_branches", args=(TABLE,), routes=RF)
def ki_lookup_branches(ctx: RouteCtx, table: str) -> int:
    """lookup on the R-URI and every plain branch."""
    return lk.lookup_branches(ctx, mod.p, table)


@mod.function("registered", args=(TABLE,), routes=ANY_ROUTE)
def ki_registered(ctx: RouteCtx, table: str) -> int:
    """True if the R-URI AoR has contacts."""
    return lk.registered(ctx, mod.p, table, None, 0, 0)


@mod.function("registered", args=(TABLE, Fx.SPVE), routes=ANY_ROUTE)
def ki_registered_uri(ctx: RouteCtx, table: str, uri: str) -> int:
    """True if AoR URI has contacts."""
    return lk.registered(ctx, mod.p, table, uri, 0, 0)


@mod.function("registered", args=(TABLE, Fx.SPVE, Fx.IGP), routes=ANY_ROUTE)
def ki_registered_match(ctx: RouteCtx, table: str, uri: str, match_option: int) -> int:
    """Same with match_option bits (1 Call-ID, 2 received, 4 Contact URI)."""
    return lk.registered(ctx, mod.p, table, uri, match_option, 0)


@mod.function("registered", args=(TABLE, Fx.SPVE, Fx.IGP, Fx.IGP), routes=ANY_ROUTE)
def ki_registered_action(ctx: RouteCtx, table: str, uri: str, match_option: int,
                         match_action: int) -> int:
    """Same with match_option and match_action."""
    return lk.registered(ctx, mod.p, table, uri, match_option, match_action)


@mod.function("unregister", args=(TABLE, Fx.SPVE), routes=ANY_ROUTE)
def ki_unregister(ctx: RouteCtx, table: str, uri: str) -> int:
    """Remove all contacts of AoR URI: 1 done, -1 bad AoR, -2 error, -3 no contacts."""
    return lk.unregister(ctx, mod.p, table, uri, None)


@mod.function("unregister", args=(TABLE, Fx.SPVE, Fx.SPVE), routes=ANY_ROUTE)
def ki_unregister_ruid(ctx: RouteCtx, table: str, uri: str, ruid: str) -> int:
    """Remove the contact with RUID."""
    return lk.unregister(ctx, mod.p, table, uri, ruid or None)


@mod.function("reg_fetch_contacts", args=(TABLE, Fx.SPVE, Fx.STR), routes=ANY_ROUTE)
def ki_reg_fetch_contacts(ctx: RouteCtx, table: str, uri: str, profile: str) -> int:
    """Load the contacts of AoR URI into $ulc(PROFILE=>...): 1 found, -1 none or error."""
    return lk.fetch_contacts(ctx, mod.p, table, uri, profile)


@mod.function("reg_free_contacts", args=(Fx.STR,), routes=ANY_ROUTE)
def ki_reg_free_contacts(ctx: RouteCtx, profile: str) -> int:
    """Free $ulc profile PROFILE."""
    return lk.free_contacts(profile)


@mod.function("add_sock_hdr", args=(Fx.STR,), routes=REQUEST_ROUTE)
def ki_add_sock_hdr(ctx: RouteCtx, hdr_name: str) -> int:
    """Add a header HDR_NAME with the receiving socket proto:ip:port."""
    rcv = ctx.rcv
    host = f"[{rcv.dst_ip}]" if ":" in rcv.dst_ip else rcv.dst_ip
    ctx.msg.add_header(f"{hdr_name}: {rcv.proto}:{host}:{rcv.dst_port}")
    return 1


# ---- $ulc -----------------------------------------------------------------------------------

class UlcPv(PvSpec):
    """$ulc(profile=>attr), with $(ulc(profile=>attr)[i]) for the i-th contact."""

    def __init__(self, profile: str, attr: str, idx: int = 0, text: str = "") -> None:
        self.profile = profile
        self.attr = attr
        self.idx = idx
        self.text = text

    def get(self, ctx: RouteCtx) -> Any:
        return lk.ulc_value(self.profile, self.attr, self.idx)

    def with_index(self, idx: Any) -> PvSpec:
        if idx.dyn is not None or not isinstance(idx.static, int):
            raise PvError(f"$ulc index must be an integer in {self.text}")
        return UlcPv(self.profile, self.attr, idx.static, self.text)


def _ulc_factory(inner: str | None) -> PvSpec:
    if not inner or "=>" not in inner:
        raise ValueError("$ulc(profile=>attr) expected")
    profile, _, attr = inner.partition("=>")
    profile, attr = profile.strip(), attr.strip()
    if not profile or attr not in lk.ULC_ATTRS:
        raise ValueError(f"$ulc: unknown attribute \"{attr}\" (one of {', '.join(lk.ULC_ATTRS)})")
    return UlcPv(profile, attr, 0, f"$ulc({inner})")


mod.pv("ulc", _ulc_factory, doc="$ulc(profile=>attr): contacts fetched by reg_fetch_contacts().")

__all__ = ["mod"]
