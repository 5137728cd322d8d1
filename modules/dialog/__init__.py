"""dialog: INVITE dialog tracking in shared memory, with flags, timeouts and profiles for
concurrent-call limiting.

Runs in: the master (mod_init: shm tables, tm binding, timer), SIP workers (dlg_manage and the
other functions; tm's final-reply callback confirms or ends dialogs; a pre-script hook ends a
dialog on its BYE and marks in-dialog requests; dlg_bye), the timer process (timeouts:
expired dialogs are removed, their profiles released and, with send_bye, both sides get a
BYE), the ctl process (dlg.* RPCs; dlg.end_dlg sends BYEs).
Shared state: "dialog:dlgs" and "dialog:profiles" (see dlg_hash.py for layout and lock order).

Scope: dialogs are created by dlg_manage() (or, with dlg_flag, by the final reply of an
INVITE relayed with that flag set), confirmed by a 2xx (which stores the leg data: contacts,
route sets, CSeqs, sockets) and ended by a >=300 final reply, by a BYE from either side, by
their timeout (with send_bye: BYEs to both sides), by dlg_bye() or by dlg.end_dlg /
dlg.terminate_dlg (BYEs built from the leg data, see dlg_req_within.py, sent through tm's
API). Not implemented: early state from provisional replies, dlg_get_var/dlg_set_var,
db_mode persistence.
Kamailio equivalent: modules/dialog.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Optional

from modules.dialog import dlg_req_within as within
from modules.dialog.dlg_hash import (
    CONFIRMED,
    DELETED,
    STATE_NAMES,
    UNCONFIRMED,
    Dialog,
    DialogTable,
    dlg_key,
)
from sipcore import stats
from sipcore.errors import ModuleError, RpcFault
from sipcore.mod import ANY_ROUTE, REQUEST_ROUTE, Custom, Fx, ModContext, Module
from sipcore.msg import ParseError, parse_msg
from sipcore.pv import PvError, PvSpec, parse_pv
from sipcore.pv.spec import to_str
from sipcore.route.ctx import MsgSlot, RouteCtx
from sipcore.shm import ShmHashTable

log = logging.getLogger(__name__)

mod = Module("dialog", summary="Dialog tracking in shared memory: states, flags, timeouts, "
             "profiles.", depends=("tm",))


def _names(text: str) -> str:
    for n in text.split(";"):
        if n.strip() and not n.strip().replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"invalid profile name \"{n.strip()}\"")
    return text


mod.param("hash_size", int, 4096, doc="Buckets of the dialog table.")
mod.param("default_timeout", int, 43200, doc="Seconds a confirmed dialog lives without BYE.")
mod.param("dlg_flag", int, -1, doc="Message flag: an INVITE relayed with it set is tracked.")
mod.param("profiles_with_value", str, "", validator=_names,
          doc="\";\"-separated names of profiles with values.")
mod.param("profiles_no_value", str, "", validator=_names,
          doc="\";\"-separated names of profiles without value.")
mod.param("enable_stats", int, 1, doc="1: dialog:* statistics.")
mod.param("send_bye", int, 0, doc="1: when a dialog times out, send a BYE to both sides.")
mod.param("timeout_avp", str, "", doc="AVP (\"$avp(name)\") holding the timeout (s) of the "
          "dialog of the INVITE, read when the 2xx confirms it.")
mod.param("dlg_extra_hdrs", str, "", doc="Header lines added to the BYEs the module sends.")
mod.param("unconfirmed_lifetime", int, 300, doc="Seconds an unconfirmed dialog is kept when "
          "no final reply comes (PyKam safety net).")

STATS = ("active_dialogs", "early_dialogs", "processed_dialogs", "expired_dialogs",
         "failed_dialogs")
_state: dict[str, Any] = {"table": None, "tm": None, "timeout_avp": None}


@dataclass(slots=True)
class DlgMsg:
    """dialog's part of one message."""

    key: Optional[str] = None           # key of the dialog of the current message
    ended: Any = None                   # the Dialog this BYE ended (state DELETED)

    def copy(self) -> "DlgMsg":
        return DlgMsg(self.key, self.ended)


DLG: MsgSlot[DlgMsg] = MsgSlot("dialog", DlgMsg)


def _key_of(ctx: RouteCtx) -> Optional[str]:
    st = DLG.peek(ctx)
    return st.key if st is not None else None


def _ended_of(ctx: RouteCtx) -> Any:
    st = DLG.peek(ctx)
    return st.ended if st is not None else None


def _table() -> DialogTable:
    t = _state["table"]
    if t is None:
        raise ModuleError("dialog: not initialised")
    return t


def _profiles(param: str) -> set[str]:
    return {n.strip() for n in str(mod.get_param(param) or "").split(";") if n.strip()}


@mod.on_init
def _mod_init(ctx: ModContext) -> None:
    """Master, pre-fork: shm tables, tm final-reply callback, timeout timer, statistics."""
    shm = ctx.require_shm()
    size = max(16, int(mod.p.hash_size))
    dlgs = shm.named("dialog:dlgs", lambda a: ShmHashTable.create(a, size),
                     ShmHashTable.attach)
    profs = shm.named("dialog:profiles", lambda a: ShmHashTable.create(a, 256),
                      ShmHashTable.attach)
    dlgs.clear()
    profs.clear()
    _state["table"] = DialogTable(dlgs, profs, float(max(1, int(mod.p.unconfirmed_lifetime))))
    both = _profiles("profiles_with_value") & _profiles("profiles_no_value")
    if both:
        raise ModuleError(f"dialog: profile {min(both)} declared with and without value")
    tm = ctx.bind_api("tm")
    tm.register_final_callback(_on_final)
    _state["tm"] = tm
    _state["timeout_avp"] = None
    if str(mod.p.timeout_avp or "").strip():
        try:
            _state["timeout_avp"] = parse_pv(str(mod.p.timeout_avp).strip())
        except PvError as exc:
            raise ModuleError(f"dialog: timeout_avp: {exc}") from None
    ctx.timers.register_timer("dialog:timeout", _on_timer, 1000)
    if int(mod.p.enable_stats):
        for name in STATS:
            stats.register(f"dialog:{name}", no_reset=name in ("active_dialogs",
                                                               "early_dialogs"))


def _stat(name: str, n: int = 1) -> None:
    if int(mod.p.enable_stats):
        stats.inc(f"dialog:{name}", n)


def _timeout_for(d: Dialog) -> int:
    return d.timeout or int(mod.p.default_timeout)


def _on_final(cell: Any, code: int, reply: bytes, core: Any) -> None:
    """tm, after a final reply went upstream: confirm (2xx) or end (>=300) the INVITE's
    dialog; with dlg_flag, create it first if the INVITE was relayed with the flag."""
    if cell.method != "INVITE":
        return
    try:
        req = parse_msg(cell.request)
        callid, ftag = req.callid, req.from_tag or ""
        if req.to_tag:                          # re-INVITE: nothing to track
            return
    except ParseError:
        return
    t = _table()
    key = dlg_key(callid, ftag)
    flag = int(mod.p.dlg_flag)
    if t.get(callid, ftag) is None:
        if flag < 0 or not cell.flags & (1 << flag) or code >= 300:
            return
        t.create(_new_dialog(req))
        _stat("processed_dialogs")
    if code < 300:
        try:
            rpl = parse_msg(reply)
            legs = _leg_data(cell, req, rpl, core)
            to_tag = rpl.to_tag or ""
        except ParseError:
            legs, to_tag = {}, ""
        avp_timeout = _avp_timeout(cell, core)

        def confirm(d: Dialog) -> Dialog:
            return replace(d, state=CONFIRMED, to_tag=to_tag or d.to_tag,
                           timeout=d.timeout or avp_timeout or _timeout_for(d), **legs)

        d = t.update(key, confirm)
        if d is not None:
            _stat("active_dialogs")
    else:
        if t.update(key, lambda d: None) is not None:
            _stat("failed_dialogs")


def _leg_data(cell: Any, req: Any, rpl: Any, core: Any) -> dict[str, Any]:
    """What a BYE generated here needs, from the INVITE as received and its relayed 2xx
    (Kamailio populate_leg_info)."""
    invite_rr = req.record_routes
    branch = next((b for b in cell.branches if 200 <= b.code < 300), None)
    is_myself = getattr(core, "is_myself", lambda _h, _p: False)
    return {"caller_cseq": req.cseq.num, "caller_contact": req.contact_uri or "",
            "caller_route_set": within.caller_route_set(invite_rr),
            "caller_sock": cell.uas_sock,
            "callee_contact": rpl.contact_uri or "",
            "callee_route_set": within.callee_route_set(rpl.record_routes, len(invite_rr),
                                                        is_myself),
            "callee_sock": branch.sock if branch is not None else ""}


def _avp_timeout(cell: Any, core: Any) -> int:
    """timeout_avp: its value (seconds) as the INVITE's transaction carries it, 0 unset."""
    spec = _state["timeout_avp"]
    if spec is None or _state["tm"] is None:
        return 0
    try:
        v = spec.get(_state["tm"].request_ctx(cell, core))
        return max(0, int(v)) if v is not None else 0
    except (PvError, ParseError, ValueError, TypeError):
        return 0


def _on_timer() -> None:
    """Timer process: dialogs past their timeout end and release their profiles; with
    send_bye, both sides get a BYE."""
    t = _state["table"]
    if t is None:
        return
    for d in t.expire():
        if d.state == CONFIRMED:
            _stat("active_dialogs", -1)
            _stat("expired_dialogs")
            log.info("dialog: %s timed out after %s s", d.callid, d.timeout)
            if int(mod.p.send_bye) and _state["tm"] is not None:
                within.send_bye(_state["tm"], d, within.SIDES["all"],
                                str(mod.p.dlg_extra_hdrs or ""))


def end_dialog(d: Dialog, sides: tuple[int, ...], extra_hdrs: str = "") -> Dialog | None:
    """End confirmed dialog D now and send its BYEs to SIDES (dlg_bye, dlg.end_dlg): the
    ended record (state DELETED), None when D was gone already or is not confirmed."""
    if d.state != CONFIRMED:
        return None
    ended = _table().update(d.key, lambda _d: None)
    if ended is None:
        return None
    _stat("active_dialogs", -1)
    hdrs = "\n".join(x for x in (str(mod.p.dlg_extra_hdrs or ""), extra_hdrs) if x)
    n = within.send_bye(_state["tm"], d, sides, hdrs)
    log.info("dialog: %s ended here, %s BYE(s) sent", d.callid, n)
    return ended


def _new_dialog(msg: Any) -> Dialog:
    return Dialog(callid=msg.callid, from_tag=msg.from_tag or "", from_uri=msg.from_.uri,
                  to_uri=msg.to.uri, req_uri=msg.ruri)


@mod.pre_script
def _in_dialog(ctx: RouteCtx) -> bool:
    """Mark requests of a known dialog; a BYE ends the dialog (both directions)."""
    msg = ctx.msg
    if not msg.to_tag or _state["table"] is None:
        return True
    d = _table().find(msg.callid, msg.from_tag, msg.to_tag)
    if d is None:
        return True
    DLG.of(ctx).key = d.key
    if d.state == CONFIRMED and msg.method not in ("ACK", "CANCEL"):
        _track_cseq(d, msg)
    if msg.method == "BYE":
        ended = _table().update(d.key, lambda _d: None)
        if ended is not None:
            DLG.of(ctx).ended = ended           # still known while the BYE is routed
            if d.state == CONFIRMED:
                _stat("active_dialogs", -1)
    return True


def _track_cseq(d: Dialog, msg: Any) -> None:
    """Keep the last CSeq number of each side (the BYEs generated here continue it)."""
    try:
        num = msg.cseq.num
    except (ParseError, AttributeError):
        return
    if msg.from_tag == d.from_tag:
        if num > d.caller_cseq:
            _table().update(d.key, lambda x: replace(x, caller_cseq=max(x.caller_cseq, num)))
    elif num > d.callee_cseq:
        _table().update(d.key, lambda x: replace(x, callee_cseq=max(x.callee_cseq, num)))


def _current(ctx: RouteCtx) -> Dialog | None:
    key = _key_of(ctx)
    if key is None:
        return None
    ended = _ended_of(ctx)
    if ended is not None:
        return ended
    raw = _table().dlgs.get(key)
    return None if raw is None else Dialog.unpack(raw)


# ---- functions -----------------------------------------------------------------------------------

@mod.function("dlg_manage", args=(), routes=REQUEST_ROUTE)
def ki_dlg_manage(ctx: RouteCtx) -> int:
    """Track the dialog of this initial INVITE (in-dialog requests: just bind to it)."""
    msg = ctx.msg
    if msg.to_tag:
        return 1 if _key_of(ctx) is not None else -1
    if msg.method != "INVITE":
        return -1
    try:
        d = _table().create(_new_dialog(msg))
    except ParseError:
        return -1
    if _key_of(ctx) != d.key:
        DLG.of(ctx).key = d.key
        _stat("processed_dialogs")
    return 1


@mod.function("is_known_dlg", args=())
def ki_is_known_dlg(ctx: RouteCtx) -> int:
    """1 if the message belongs to a tracked dialog."""
    return 1 if _current(ctx) is not None else -1


def _flag_op(ctx: RouteCtx, flag: int, op: str) -> int:
    key = _key_of(ctx)
    if key is None or not 0 <= flag <= 31:
        return -1
    bit = 1 << flag
    if op == "is":
        d = _current(ctx)
        return 1 if d is not None and d.flags & bit else -1
    fn = (lambda d: replace(d, flags=d.flags | bit)) if op == "set" else \
        (lambda d: replace(d, flags=d.flags & ~bit))
    return 1 if _table().update(key, fn) is not None else -1


@mod.function("dlg_setflag", args=(Fx.IGP,))
def ki_dlg_setflag(ctx: RouteCtx, flag: int) -> int:
    """Set dialog flag FLAG (0..31) of the current dialog."""
    return _flag_op(ctx, flag, "set")


@mod.function("dlg_resetflag", args=(Fx.IGP,))
def ki_dlg_resetflag(ctx: RouteCtx, flag: int) -> int:
    """Reset dialog flag FLAG."""
    return _flag_op(ctx, flag, "reset")


@mod.function("dlg_isflagset", args=(Fx.IGP,))
def ki_dlg_isflagset(ctx: RouteCtx, flag: int) -> int:
    """1 if dialog flag FLAG is set."""
    return _flag_op(ctx, flag, "is")


@mod.function("dlg_set_timeout", args=(Fx.IGP,))
def ki_dlg_set_timeout(ctx: RouteCtx, seconds: int) -> int:
    """Timeout (seconds) of the current dialog, counted from its confirmation (or from now
    when it is already confirmed)."""
    key = _key_of(ctx)
    if key is None or seconds <= 0:
        return -1
    return 1 if _table().update(key, lambda d: replace(d, timeout=seconds)) else -1


def _check_profile(profile: str, value: str | None) -> bool:
    if value is None and profile in _profiles("profiles_no_value"):
        return True
    if value is not None and profile in _profiles("profiles_with_value"):
        return True
    log.error('dialog: profile "%s" is not declared %s value',
              profile, 'with' if value is not None else 'without')
    return False


def _set_profile(ctx: RouteCtx, profile: str, value: str | None, add: bool) -> int:
    key = _key_of(ctx)
    if key is None or not _check_profile(profile, value):
        return -1
    member = (profile, value or "")

    def fn(d: Dialog) -> Dialog:
        if add:
            return d if member in d.profiles else replace(d, profiles=d.profiles + (member,))
        return replace(d, profiles=tuple(p for p in d.profiles if p != member))

    return 1 if _table().update(key, fn) is not None else -1


@mod.function("set_dlg_profile", args=(Fx.SPVE,))
def ki_set_dlg_profile(ctx: RouteCtx, profile: str) -> int:
    """Add the current dialog to PROFILE (declared in profiles_no_value)."""
    return _set_profile(ctx, profile, None, True)


@mod.function("set_dlg_profile", args=(Fx.SPVE, Fx.SPVE))
def ki_set_dlg_profile_value(ctx: RouteCtx, profile: str, value: str) -> int:
    """Add the current dialog to PROFILE with VALUE (profiles_with_value)."""
    return _set_profile(ctx, profile, value, True)


@mod.function("unset_dlg_profile", args=(Fx.SPVE,))
def ki_unset_dlg_profile(ctx: RouteCtx, profile: str) -> int:
    """Remove the current dialog from PROFILE."""
    return _set_profile(ctx, profile, None, False)


@mod.function("unset_dlg_profile", args=(Fx.SPVE, Fx.SPVE))
def ki_unset_dlg_profile_value(ctx: RouteCtx, profile: str, value: str) -> int:
    """Remove the current dialog from PROFILE with VALUE."""
    return _set_profile(ctx, profile, value, False)


def _in_profile(ctx: RouteCtx, profile: str, value: str | None) -> int:
    d = _current(ctx)
    if d is None:
        return -1
    if value is None:
        return 1 if any(p == profile for p, _ in d.profiles) else -1
    return 1 if (profile, value) in d.profiles else -1


@mod.function("is_in_profile", args=(Fx.SPVE,))
def ki_is_in_profile(ctx: RouteCtx, profile: str) -> int:
    """1 if the current dialog is in PROFILE (with any value)."""
    return _in_profile(ctx, profile, None)


@mod.function("is_in_profile", args=(Fx.SPVE, Fx.SPVE))
def ki_is_in_profile_value(ctx: RouteCtx, profile: str, value: str) -> int:
    """1 if the current dialog is in PROFILE with VALUE."""
    return _in_profile(ctx, profile, value)


@mod.function("get_profile_size", args=(Fx.SPVE, Fx.PVAR), routes=ANY_ROUTE)
def ki_get_profile_size(ctx: RouteCtx, profile: str, pv: PvSpec) -> int:
    """Store the number of dialogs in PROFILE (all values) into PV."""
    pv.set(ctx, _table().profile_size(profile))
    return 1


@mod.function("get_profile_size", args=(Fx.SPVE, Fx.SPVE, Fx.PVAR), routes=ANY_ROUTE)
def ki_get_profile_size_value(ctx: RouteCtx, profile: str, value: str, pv: PvSpec) -> int:
    """Store the number of dialogs in PROFILE with VALUE into PV."""
    pv.set(ctx, _table().profile_size(profile, value))
    return 1


def _side(text: str) -> tuple[int, ...]:
    sides = within.SIDES.get(text.strip().lower())
    if sides is None:
        raise ValueError("dlg_bye: side is \"all\", \"caller\" or \"callee\"")
    return sides


@mod.function("dlg_bye", args=(Custom(_side, dynamic=True, name="side"),))
def ki_dlg_bye(ctx: RouteCtx, sides: tuple[int, ...]) -> int:
    """Send a BYE to the "caller", the "callee" or "all" (both) of the current confirmed
    dialog and end it; 1 sent, -1 no such dialog (or not confirmed)."""
    d = _current(ctx)
    if d is None or _ended_of(ctx) is not None:
        return -1
    ended = end_dialog(d, sides)
    if ended is None:
        return -1
    DLG.of(ctx).ended = ended
    return 1


# ---- pseudo-variables ----------------------------------------------------------------------------

_DLG_ATTRS = ("h_id", "h_entry", "state", "callid", "from_uri", "from_tag", "to_uri", "to_tag",
              "ruri", "start_ts", "timeout", "dflags", "from_cseq", "to_cseq", "from_contact",
              "to_contact", "from_rs", "to_rs", "from_bindaddr", "to_bindaddr")


class DlgPv(PvSpec):
    """$dlg(attr): attribute of the current dialog ($null outside a dialog)."""

    def __init__(self, attr: str) -> None:
        self.attr = attr
        self.text = f"$dlg({attr})"

    def get(self, ctx: RouteCtx) -> Any:
        d = _current(ctx)
        if d is None:
            return None
        return {"h_id": d.h_id, "h_entry": d.h_entry, "state": d.state, "callid": d.callid,
                "from_uri": d.from_uri, "from_tag": d.from_tag, "to_uri": d.to_uri,
                "to_tag": d.to_tag, "ruri": d.req_uri, "start_ts": d.start_ts,
                "timeout": _timeout_for(d), "dflags": d.flags,
                "from_cseq": d.caller_cseq, "to_cseq": d.callee_cseq,
                "from_contact": d.caller_contact, "to_contact": d.callee_contact,
                "from_rs": d.caller_route_set, "to_rs": d.callee_route_set,
                "from_bindaddr": d.caller_sock, "to_bindaddr": d.callee_sock}[self.attr]


def _dlg_pv(inner: str | None) -> PvSpec:
    if inner not in _DLG_ATTRS:
        raise ValueError(f"$dlg(attr): attr is one of {', '.join(_DLG_ATTRS)}")
    return DlgPv(inner)


class DlgCountPv(PvSpec):
    """$DLG_count: the number of confirmed dialogs."""

    text = "$DLG_count"

    def get(self, ctx: RouteCtx) -> Any:
        return sum(1 for d in _table().all() if d.state == CONFIRMED)


def _count_pv(inner: str | None) -> PvSpec:
    if inner:
        raise ValueError("$DLG_count takes no name")
    return DlgCountPv()


class DlgVarPv(PvSpec):
    """$dlg_var(name): a variable stored with the current dialog (seen by every process and
    by later requests of the dialog); assigning $null deletes it."""

    writable = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.text = f"$dlg_var({name})"

    def get(self, ctx: RouteCtx) -> Any:
        d = _current(ctx)
        if d is None:
            return None
        return next((v for k, v in d.vars if k == self.name), None)

    def set(self, ctx: RouteCtx, value: Any) -> None:
        key = _key_of(ctx)
        if key is None or _ended_of(ctx) is not None:
            log.error("%s: no active dialog for this message", self.text)
            return
        name = self.name
        extra = () if value is None else ((name, to_str(value)),)

        def fn(d: Dialog) -> Dialog:          # under the dialog's bucket lock
            return replace(d, vars=tuple(kv for kv in d.vars if kv[0] != name) + extra)

        _table().update(key, fn)


def _dlg_var_pv(inner: str | None) -> PvSpec:
    if not inner or not inner.strip():
        raise ValueError("$dlg_var(name) expected")
    return DlgVarPv(inner.strip())


mod.pv("dlg_var", _dlg_var_pv, doc="$dlg_var(name): read/write a variable of the current "
       "dialog.")
mod.pv("dlg", _dlg_pv, doc="$dlg(attr): h_id, h_entry, state, callid, from_uri, from_tag, "
       "to_uri, to_tag, ruri, start_ts, timeout, dflags, from_cseq, to_cseq, from_contact, "
       "to_contact, from_rs, to_rs, from_bindaddr, to_bindaddr of the current dialog.")
mod.pv("DLG_count", _count_pv, doc="Number of confirmed dialogs.")


# ---- RPC -----------------------------------------------------------------------------------------

def _info(d: Dialog, now_mono: float) -> dict[str, Any]:
    cell = _table().cell(d)
    left = int(cell.expires - now_mono) if cell is not None and cell.expires else 0
    return {"h_entry": d.h_entry, "h_id": d.h_id, "call-id": d.callid,
            "from_uri": d.from_uri, "from_tag": d.from_tag, "to_uri": d.to_uri,
            "to_tag": d.to_tag, "request_uri": d.req_uri, "state": d.state,
            "state_name": STATE_NAMES.get(d.state, "?"), "start_ts": d.start_ts,
            "timeout": int(time.time()) + left if d.state == CONFIRMED else 0,
            "sflags": d.flags,
            "caller": {"tag": d.from_tag, "contact": d.caller_contact,
                       "cseq": str(d.caller_cseq), "route_set": d.caller_route_set,
                       "socket": d.caller_sock},
            "callee": {"tag": d.to_tag, "contact": d.callee_contact,
                       "cseq": str(d.callee_cseq), "route_set": d.callee_route_set,
                       "socket": d.callee_sock},
            "profiles": [{p: v} if v else p for p, v in d.profiles]}


def rpc_list() -> list[dict[str, Any]]:
    """dlg.list: every tracked dialog."""
    now = time.monotonic()
    return [_info(d, now) for d in sorted(_table().all(), key=lambda d: d.h_id)]


def rpc_stats_active() -> dict[str, int]:
    """dlg.stats_active: dialogs per state."""
    counts = {n: 0 for n in ("starting", "connecting", "answering", "ongoing")}
    for d in _table().all():
        if d.state == UNCONFIRMED:
            counts["starting"] += 1
        elif d.state == CONFIRMED:
            counts["ongoing"] += 1
        elif d.state != DELETED:
            counts["connecting"] += 1
    counts["all"] = sum(counts.values())
    return counts


def _declared(profile: str) -> None:
    if profile not in _profiles("profiles_with_value") | _profiles("profiles_no_value"):
        raise RpcFault(404, "Profile not found")


def rpc_profile_get_size(profile: str, value: str | None = None) -> dict[str, Any]:
    """dlg.profile_get_size profile [value]."""
    _declared(str(profile))
    v = "" if value is None else str(value)
    return {"profile": str(profile), "value": v,
            "count": _table().profile_size(str(profile), v)}


def rpc_profile_list(profile: str, value: str | None = None) -> list[dict[str, Any]]:
    """dlg.profile_list profile [value]: the dialogs in the profile."""
    _declared(str(profile))
    now = time.monotonic()
    out = []
    for d in _table().all():
        if any(p == profile and (value is None or v == str(value)) for p, v in d.profiles):
            out.append(_info(d, now))
    return out


def _rpc_end(d: Dialog | None, extra_hdrs: Any) -> str:
    if d is None:
        raise RpcFault(404, "Dialog not found")
    hdrs = "" if extra_hdrs is None else str(extra_hdrs)
    if end_dialog(d, within.SIDES["all"], hdrs) is None:
        raise RpcFault(500, "Dialog is not confirmed")
    return "ok"


def rpc_end_dlg(h_entry: Any, h_id: Any, extra_hdrs: Any = None) -> str:
    """dlg.end_dlg h_entry h_id [extra_hdrs]: BYE both sides and end the dialog."""
    try:
        he, hi = int(h_entry), int(h_id)
    except (TypeError, ValueError):
        raise RpcFault(400, "h_entry and h_id are integers") from None
    d = next((x for x in _table().all() if x.h_entry == he and x.h_id == hi), None)
    return _rpc_end(d, extra_hdrs)


def rpc_terminate_dlg(callid: Any, from_tag: Any, to_tag: Any = None) -> str:
    """dlg.terminate_dlg callid from_tag [to_tag]: same, the dialog found by its ids."""
    d = _table().get(str(callid), str(from_tag))
    if d is not None and to_tag is not None and str(to_tag) and d.to_tag != str(to_tag):
        d = None
    return _rpc_end(d, None)


mod.rpc("dlg.list", rpc_list, doc="List the dialogs.")
mod.rpc("dlg.end_dlg", rpc_end_dlg, doc="Send BYE to both sides of a dialog and end it.",
        params="h_entry h_id [extra_hdrs]")
mod.rpc("dlg.terminate_dlg", rpc_terminate_dlg, doc="Same as dlg.end_dlg, the dialog "
        "given by its Call-ID and tags.", params="callid from_tag [to_tag]")
mod.rpc("dlg.stats_active", rpc_stats_active, doc="Dialogs per state.")
mod.rpc("dlg.profile_get_size", rpc_profile_get_size, doc="Size of a profile.",
        params="profile [value]")
mod.rpc("dlg.profile_list", rpc_profile_list, doc="Dialogs of a profile.",
        params="profile [value]")

__all__ = ["mod"]
