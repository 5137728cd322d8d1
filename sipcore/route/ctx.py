"""Per-message routing state: what the compiled routes, PVs and module functions work on.

Runs in: SIP workers (and the timer process for failure routes later). One RouteCtx per
received message and route run; it never lives in shm (tm copies what it needs).

Kamailio keeps most of this on `struct sip_msg` (flags, new_uri, dst_uri, force_send_socket);
we keep the parsed message immutable-plus-edit-list (`SipMsg`) and the routing state here.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from enum import IntFlag
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, TypeVar

from sipcore.net.addr import RecvInfo

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg.msg import SipMsg
    from sipcore.net.node import CoreApi


class RouteType(IntFlag):
    """Route block kinds where a function may be called (Kamailio *_ROUTE flags)."""

    REQUEST = 1        # request_route and route[] called from it
    FAILURE = 2        # failure_route[]
    ONREPLY = 4        # onreply_route[] (tm) and reply_route (core)
    BRANCH = 8         # branch_route[]
    ONSEND = 16        # onsend_route
    ERROR = 32         # error_route (legacy)
    LOCAL = 64         # event_route[tm:local-request]
    EVENT = 128        # event_route[...] and rtimer routes
    BRANCH_FAILURE = 256  # event_route[tm:branch-failure:NAME]


ANY_ROUTE = RouteType(0x1FF)
REQUEST_ROUTE = RouteType.REQUEST
FAILURE_ROUTE = RouteType.FAILURE
ONREPLY_ROUTE = RouteType.ONREPLY
BRANCH_ROUTE = RouteType.BRANCH
ONSEND_ROUTE = RouteType.ONSEND
EVENT_ROUTE = RouteType.EVENT
LOCAL_ROUTE = RouteType.LOCAL


@dataclass(slots=True)
class Branch:
    """One destination of the request (Kamailio's dset entry): the R-URI with its attributes
    (branch 0, `RouteCtx.branch0()`) or an additional branch (append_branch, lookup). t_relay
    sends to these; $branch() reads them."""

    uri: str = ""
    dst_uri: Optional[str] = None       # $du / the branch's destination
    path: Optional[str] = None          # Path vector (Route headers for this destination)
    q: int = -1                 # -1 = Q_UNSPECIFIED, else 0..1000
    bflags: int = 0             # branch flags ($bf for branch 0)
    force_socket: Any = None    # SocketInfo to send from ($fs)
    instance: Optional[str] = None      # +sip.instance of the contact (outbound flows)
    ruid: Optional[str] = None          # usrloc record id ($ruid)
    location_ua: Optional[str] = None   # User-Agent of the registration ($location_ua)
    otcpid: int = 0             # TCP/TLS connection to send on (lookup), 0 by address

    def copy(self) -> "Branch":
        return _copy_branch(self)


def _copy_branch(b: Branch) -> Branch:
    return Branch(*_branch_values(b))


_branch_values = operator.attrgetter(*(f.name for f in fields(Branch)))


S = TypeVar("S")


class MsgSlot(Generic[S]):
    """A module's typed state for one message, kept on the RouteCtx (created on first use,
    copied with the ctx: tm's per-branch copies get their own). The state class has a
    `copy()` method. Declared once per module: `TM = MsgSlot("tm", TmMsg)`."""

    __slots__ = ("key", "factory")

    def __init__(self, key: str, factory: Callable[[], S]) -> None:
        self.key = key
        self.factory = factory

    def of(self, ctx: "RouteCtx") -> S:
        states = ctx.modstate
        if states is None:
            states = ctx.modstate = {}
        st = states.get(self.key)
        if st is None:
            st = states[self.key] = self.factory()
        return st  # type: ignore[return-value]

    def peek(self, ctx: "RouteCtx") -> Optional[S]:
        states = ctx.modstate
        return states.get(self.key) if states else None  # type: ignore[return-value]

    def drop(self, ctx: "RouteCtx") -> None:
        if ctx.modstate:
            ctx.modstate.pop(self.key, None)


# RouteCtx.via_ctl: corex's via_add_srvid(), via_add_xavp_params(), via_use_xavp_fields()
VIA_SRVID = 1
VIA_XAVP_PARAMS = 2
VIA_XAVP_FIELDS = 4


class ScriptExit(Exception):
    """Raised by `exit`, `drop` and `return(0)` to stop the script (caught by the runner)."""

    __slots__ = ("drop",)

    def __init__(self, drop: bool = False) -> None:
        self.drop = drop


class RouteCtx:
    """State of one message going through the routing script.

    A plain class: the defaults below are class attributes, so a new context (one per
    received message, and one per branch in tm) sets only what it is given plus its own
    lists; an attribute written later shadows its default in the instance."""

    __hash__ = object.__hash__

    msg: "SipMsg"
    rcv: RecvInfo
    core: "CoreApi"
    branches: list[Branch]              # the other destinations (per instance)
    reply_lumps: list[str]              # append_to_reply(): header lines (per instance)
    route_type: RouteType = RouteType.REQUEST
    flags: int = 0              # message flags ($mf), 0..31
    sflags: int = 0             # script flags ($sf)
    xflags: int = 0             # corex extended flags, 0..63
    # branch 0: the R-URI's destination attributes, named as Kamailio's sip_msg fields
    # (branch0() gives them as a Branch, the shape of every other destination)
    dst_uri: Optional[str] = None       # $du
    path_vec: Optional[str] = None      # Path vector (Route headers for the R-URI's hop)
    ruri_q: int = -1                    # q of the R-URI (-1: unspecified)
    bflags: int = 0                     # $bf: branch flags of branch 0
    force_socket: Any = None            # $fs / force_send_socket()
    instance: Optional[str] = None      # +sip.instance of the contact lookup() chose
    ruid: Optional[str] = None          # $ruid: usrloc record id of that contact
    location_ua: Optional[str] = None   # $location_ua: its User-Agent
    # Kamailio msg->otcpid: the TCP/TLS connection the request goes out on when it is still
    # open (lookup() sets the one the contact registered over); 0: by address only
    otcpid: int = 0
    # Kamailio's ruri_is_new: False once the R-URI was moved into a branch (append_branch()
    # without argument, t_next_contacts); in tm:branch-failure the (R-URI, $du) pair it was
    # consumed with: it is new again when the script changes either
    ruri_consumed: Any = False
    advertised_address: Optional[str] = None
    advertised_port: Optional[int] = None
    force_rport: bool = False           # force_rport(): add rport/received to Via on reply
    local_rport: bool = False           # add_local_rport(): ;rport in our Via
    reply_no_connect: bool = False
    forward_no_connect: bool = False
    reply_close: bool = False           # set_reply_close(): close the connection once sent
    forward_close: bool = False         # set_forward_close()
    udp_mtu_try_proto: Optional[str] = None     # udp_mtu_try_proto(): overrides the global
    # set_reply_body(): (body, content type) of the next local reply
    reply_body: Optional[tuple[bytes, Optional[str]]] = None
    # the last error a function recorded for sl_reply_error(): a Kamailio E_* code or a
    # (code, reason) pair
    last_error: Any = None
    err_info: Any = None                # $err.*: sipcore.pv.miscpv.ErrInfo, when recorded
    msg_iflags: Optional[set[str]] = None       # corex's internal message flags
    # onsend_route: where the message is going and its bytes (snd_ip, $snd(...))
    send_dest: Any = None
    send_buf: Optional[bytes] = None
    # send-time header lines (record_route()): sipcore.route.sendlumps.SendLump, in order
    send_lumps: Optional[list[Any]] = None
    via_ctl: int = 0                    # VIA_* bits: how our Via is built (corex via_add_*)
    cfg_select: Optional[dict[str, int]] = None     # cfg_select(): group -> instance
    body_ctype: Optional[str] = None    # Content-Type of a body set by the script (set_body)
    avps: Any = None                    # sipcore.pv.vars.AvpList, created on first use
    xavps: Any = None                   # sipcore.pv.vars.XavpStore, created on first use
    rc: int = 1                         # $rc / $retcode: last function or route return
    dropped: bool = False
    faked: bool = False                 # a faked request (event routes, is_faked_msg())
    # received=/rport= were added to the request's top Via already (forwarding it twice,
    # or a request rebuilt from a transaction that had them)
    via1_rcv_params_added: bool = False
    replied: bool = False               # a stateless reply was sent for this request
    route_name: str = ""                # name of the current route block (for logs, $cfg(route))
    cfg_line: int = 0                   # line of the statement being run ($cfg(line))
    level: int = 0                      # route() recursion depth
    branch_index: int = 0               # $T_branch_idx / branch_route
    modstate: Optional[dict[str, Any]] = None   # MsgSlot states by module, on first use

    def __init__(self, msg: "SipMsg", rcv: RecvInfo, core: "CoreApi",
                 route_type: RouteType = RouteType.REQUEST, flags: int = 0) -> None:
        self.msg = msg
        self.rcv = rcv
        self.core = core
        if route_type is not REQUEST_ROUTE:
            self.route_type = route_type
        if flags:
            self.flags = flags
        self.branches = []
        self.reply_lumps = []

    # ---- branch 0 ------------------------------------------------------------------------
    def branch0(self) -> Branch:
        """The R-URI and its attributes as a Branch (a copy)."""
        return Branch(self.msg.ruri, self.dst_uri, self.path_vec, self.ruri_q, self.bflags,
                      self.force_socket, self.instance, self.ruid, self.location_ua,
                      self.otcpid)

    def set_branch0(self, b: Branch, ruri: bool = True) -> None:
        """Make B the R-URI's destination: its URI (unless RURI is False) and attributes."""
        if ruri:
            self.msg.set_ruri(b.uri)
        self.dst_uri, self.path_vec, self.ruri_q, self.bflags = \
            b.dst_uri, b.path, b.q, b.bflags
        self.force_socket, self.instance, self.ruid, self.location_ua, self.otcpid = \
            b.force_socket, b.instance, b.ruid, b.location_ua, b.otcpid

    def ruri_is_new(self) -> bool:
        """Kamailio's ruri_is_new: the R-URI is a destination of its own (not moved into a
        branch; in tm:branch-failure: changed since, with its $du)."""
        consumed = self.ruri_consumed
        if consumed.__class__ is tuple:
            return consumed != (self.msg.ruri, self.dst_uri)
        return not consumed

    def destinations(self) -> list[Branch]:
        """Where the request goes: the R-URI (branch 0, when new) then the other branches."""
        if self.ruri_is_new():
            return [self.branch0(), *self.branches]
        return list(self.branches)

    def copy(self, **changes: Any) -> "RouteCtx":
        """A copy with CHANGES applied (tm makes one per branch). The module states are
        copied, the rest is shared."""
        new = object.__new__(RouteCtx)
        new.__dict__ = self.__dict__.copy()
        if self.modstate:
            new.modstate = {k: v.copy() for k, v in self.modstate.items()}
        for name, value in changes.items():
            setattr(new, name, value)
        return new

    def isflagset(self, f: int) -> bool:
        return bool(self.flags & (1 << f))
