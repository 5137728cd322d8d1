"""The pseudo-variables' part of one message (a typed slot on the RouteCtx): the message time
taken once, the message id, and the edits PV writes made (so a second write of the same
header or span supersedes the first).

Runs in: SIP workers, per message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from sipcore.route.ctx import MsgSlot


@dataclass(slots=True)
class PvMsg:
    tv: Optional[tuple[int, int]] = None        # (seconds, microseconds): $Ts, $TV...
    mid: Optional[int] = None                   # $mi when the message has no id of its own
    # header start offset -> (the edit, the value written): $fu, $tu, $fn... writes
    hdr_edits: dict[int, tuple[Any, str]] = field(default_factory=dict)
    # span key ("rs", "rr", "msgbuf:<offset>") -> the edit that replaced it: $rs, $rr,
    # $msg.buf writes
    span_edits: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> "PvMsg":
        return PvMsg(self.tv, self.mid, dict(self.hdr_edits), dict(self.span_edits))


PV: MsgSlot[PvMsg] = MsgSlot("pv", PvMsg)
