"""Transaction matching (Kamailio t_lookup.c): requests, ACK, CANCEL and replies.

Runs in: SIP workers and the timer process. Pure functions over parsed messages; the table
lookups go through h_table.TmTable (shm).

* RFC 3261 17.2.3: a request whose top Via branch starts with the magic cookie "z9hG4bK"
  matches the server transaction with the same branch, the same sent-by and the same method,
  where an ACK matches its INVITE. A CANCEL has a transaction of its own (method CANCEL) and
  finds the INVITE it cancels with the INVITE key (RFC 3261 9.2).
* RFC 2543 fallback (no magic cookie): Call-ID, CSeq number and method (ACK -> INVITE),
  From tag, the top Via as written and, with ruri_matching, the R-URI.
* Replies (17.1.3) carry our own branch ``z9hG4bK.t<tid>.<idx>``: the tid names the cell.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from .h_table import parse_branch_id

if TYPE_CHECKING:  # pragma: no cover
    from sipcore.msg import SipMsg

MAGIC = "z9hG4bK"


class MatchOpts:
    """Matching parameters (set by tm's mod_init and runtime cfg; the keys must be the same
    in every process): via1_matching (RFC 2543 keys include the top Via), callid_matching
    (RFC 3261 keys include the Call-ID), callid_cseq_matching (Call-ID + CSeq instead of
    the branch, non-RFC)."""

    via1_matching = True
    callid_matching = False
    callid_cseq_matching = False


opts = MatchOpts()


def _sent_by(msg: "SipMsg") -> str:
    via = msg.via1
    assert via is not None
    return f"{via.host.lower()}:{via.port or ''}"


def request_key(msg: "SipMsg", method: Optional[str] = None, ruri_matching: bool = True
                ) -> str:
    """The server matching key of MSG, as METHOD (default: the request's, ACK -> INVITE)."""
    m = method or msg.method
    if m == "ACK":
        m = "INVITE"
    if opts.callid_cseq_matching:
        return f"c|{msg.callid}|{msg.cseq.num}|{m}"
    via = msg.via1
    assert via is not None
    branch = via.branch or ""
    if branch.startswith(MAGIC) and len(branch) > len(MAGIC):
        key3 = f"3|{branch}|{_sent_by(msg)}|{m}"
        return key3 + "|" + msg.callid if opts.callid_matching else key3
    # RFC 2543: Call-ID, CSeq, From tag, top Via, R-URI (17.2.3 last paragraphs)
    key = f"2|{msg.callid}|{msg.cseq.num}|{m}|{msg.from_tag or ''}"
    if opts.via1_matching:
        key += "|" + str(via)
    if ruri_matching:
        key += "|" + msg.orig_ruri
    return key


def invite_key_of(msg: "SipMsg", ruri_matching: bool = True) -> str:
    """The key of the INVITE transaction a CANCEL or ACK refers to."""
    return request_key(msg, "INVITE", ruri_matching)


def reply_branch(msg: "SipMsg") -> Optional[tuple[str, int]]:
    """(tid, branch index) when the reply's top Via is one of our tm branches (the branch
    as the C scanner found it: the Via is not parsed for this)."""
    return parse_branch_id(msg.via1_branch)
