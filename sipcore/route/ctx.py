"""Per-message routing state: what the compiled routes, PVs and module functions work on.

Runs in: SIP workers (and the timer process for failure routes later). One RouteCtx per
received message and route run; it never lives in shm (tm copies what it needs).

Kamailio keeps most of this on `struct sip_msg` (flags, new_uri, dst_uri, force_send_socket);
we keep the parsed message immutable-plus-edit-list (`SipMsg`) and the routing state here.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from enum import IntFlag
from typing import TYPE_CHECKING, Any, Optional

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
    """An additional destination (dset): append_branch / lookup add these."""

    uri: str
    dst_uri: Optional[str] = None
    path: Optional[str] = None
    q: int = -1                 # -1 = Q_UNSPECIFIED, else 0..1000
    bflags: int = 0
    force_socket: Any = None
    instance: Optional[str] = None
    ruid: Optional[str] = None
    location_ua: Optional[str] = None
    otcpid: int = 0             # TCP/TLS connection to send on (registrar lookup), 0 none


class ScriptExit(Exception):
    """Raised by `exit`, `drop` and `return(0)` to stop the script (caught by the runner)."""

    __slots__ = ("drop",)

    def __init__(self, drop: bool = False) -> None:
        self.drop = drop


@dataclass(slots=True, eq=False)
class RouteCtx:
    """State of one message going through the routing script."""

    msg: "SipMsg"
    rcv: RecvInfo
    core: "CoreApi"
    route_type: RouteType = RouteType.REQUEST
    flags: int = 0              # message flags ($mf), 0..31
    sflags: int = 0             # script flags ($sf)
    bflags: int = 0             # branch flags of branch 0 ($bf)
    xflags: int = 0             # corex extended flags, 0..63
    dst_uri: Optional[str] = None       # $du
    branches: list[Branch] = field(default_factory=list)
    force_socket: Any = None            # $fs / force_send_socket()
    # Kamailio msg->otcpid: the TCP/TLS connection the request goes out on when it is still
    # open (lookup() sets the one the contact registered over); 0: by address only
    otcpid: int = 0
    advertised_address: Optional[str] = None
    advertised_port: Optional[int] = None
    force_rport: bool = False           # force_rport(): add rport/received to Via on reply
    local_rport: bool = False           # add_local_rport(): ;rport in our Via
    reply_no_connect: bool = False
    forward_no_connect: bool = False
    reply_lumps: list[str] = field(default_factory=list)  # append_to_reply(): header lines
    avps: Any = None                    # sipcore.pv.vars.AvpList, created on first use
    xavps: Any = None                   # sipcore.pv.vars.XavpStore, created on first use
    rc: int = 1                         # $rc / $retcode: last function or route return
    dropped: bool = False
    faked: bool = False                 # a faked request (event routes, is_faked_msg())
    replied: bool = False               # a stateless reply was sent for this request
    route_name: str = ""                # name of the current route block (for logs, $cfg(route))
    cfg_line: int = 0                   # line of the statement being run ($cfg(line))
    level: int = 0                      # route() recursion depth
    branch_index: int = 0               # $T_branch_idx / branch_route
    extra: dict[str, Any] = field(default_factory=dict)  # per-message data modules need

    def copy(self, **changes: Any) -> "RouteCtx":
        """A shallow copy with CHANGES applied (dataclasses.replace without its per-call
        field introspection: tm makes one per branch)."""
        new = object.__new__(RouteCtx)
        for name, value in zip(_CTX_SLOTS, _ctx_values(self)):
            setattr(new, name, value)
        for name, value in changes.items():
            setattr(new, name, value)
        return new

    def isflagset(self, f: int) -> bool:
        return bool(self.flags & (1 << f))


_CTX_SLOTS = tuple(f.name for f in fields(RouteCtx))
_ctx_values = operator.attrgetter(*_CTX_SLOTS)
