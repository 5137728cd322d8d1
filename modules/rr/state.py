"""rr's part of one message (a typed slot on the RouteCtx).

Runs in: SIP workers, per message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sipcore.route.ctx import MsgSlot


@dataclass(slots=True)
class RrMsg:
    param_buf: list[str] = field(default_factory=list)  # add_rr_param(): for later RRs too
    # loose_route(): ";lr;ftag=..." of our Route URI (check_route_param, is_direction)
    routed_params: Optional[str] = None
    next_hop_route: Optional[bool] = None   # loose_route(): a Route remains for the next hop

    def copy(self) -> "RrMsg":
        return RrMsg(list(self.param_buf), self.routed_params, self.next_hop_route)


RR: MsgSlot[RrMsg] = MsgSlot("rr", RrMsg)
