"""dialog records and profile counters in shared memory.

Runs in: SIP workers (create, confirm/end through tm's final-reply callback, BYE, profiles),
the timer process (expire(): timeouts), the ctl process (dlg.* RPCs).
Shared state:
  ShmHashTable "dialog:dlgs"      key = Call-ID "\\0" caller's from-tag, value = one _HDR
                                  record + length-prefixed strings (see Dialog.pack); the
                                  cell's expiry is the dialog timeout (confirmed) or a safety
                                  lifetime (unconfirmed), so the timer's expire() ends them.
  ShmHashTable "dialog:profiles"  b"c\\0profile\\0value" -> int64 member count ("" value =
                                  the profile total), b"id" -> the h_id sequence.
Lock order: a dialog bucket lock, then a profile bucket lock (never the reverse). Every
profile change happens under the dialog's bucket lock together with the record change, so
the counters always equal the memberships of live records; expired records are sliced off in
C and their counters released right after (the only window where a count is briefly high).
"""
from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sipcore.shm import Cell, ShmHashTable

UNCONFIRMED, EARLY, CONFIRMED_NA, CONFIRMED, DELETED = 1, 2, 3, 4, 5
STATE_NAMES = {1: "unconfirmed", 2: "early", 3: "confirmed_na", 4: "confirmed", 5: "deleted"}

# state, flags, start (unix s), h_entry, h_id, timeout (s), caller cseq, callee cseq
_HDR = struct.Struct("=BIqIIiII")
_LEN = struct.Struct("=H")
_SEP_P, _SEP_R = "\x1f", "\x1e"
_NSTR = 14                          # length-prefixed strings after the header


@dataclass(frozen=True)
class Dialog:
    callid: str
    from_tag: str
    from_uri: str = ""
    to_uri: str = ""
    to_tag: str = ""
    req_uri: str = ""
    state: int = UNCONFIRMED
    flags: int = 0
    start_ts: int = 0
    h_entry: int = 0
    h_id: int = 0
    timeout: int = 0                               # seconds once confirmed
    profiles: tuple[tuple[str, str], ...] = field(default=())
    vars: tuple[tuple[str, str], ...] = field(default=())      # $dlg_var(name)
    # leg data, stored when the dialog is confirmed (Kamailio dlg_cell legs): what a BYE
    # generated here (timeout with send_bye, dlg_bye, dlg.end_dlg) is built from
    caller_cseq: int = 0            # last CSeq number used by the caller
    callee_cseq: int = 0            # last CSeq number used by the callee (0: none yet)
    caller_contact: str = ""        # remote target towards the caller (INVITE Contact)
    callee_contact: str = ""        # remote target towards the callee (2xx Contact)
    caller_route_set: str = ""      # Route set towards the caller: "<uri>,<uri>"
    callee_route_set: str = ""      # Route set towards the callee
    caller_sock: str = ""           # our socket on the caller's side ("udp:ip:port")
    callee_sock: str = ""           # our socket on the callee's side

    @property
    def key(self) -> bytes:
        return dlg_key(self.callid, self.from_tag)

    def pack(self) -> bytes:
        prof = _SEP_R.join(p + _SEP_P + v for p, v in self.profiles)
        dvars = _SEP_R.join(k + _SEP_P + v for k, v in self.vars)
        out = [_HDR.pack(self.state, self.flags, self.start_ts, self.h_entry, self.h_id,
                         self.timeout, self.caller_cseq, self.callee_cseq)]
        for s in (self.callid, self.from_tag, self.from_uri, self.to_uri, self.to_tag,
                  self.req_uri, prof, dvars, self.caller_contact, self.callee_contact,
                  self.caller_route_set, self.callee_route_set, self.caller_sock,
                  self.callee_sock):
            b = s.encode("utf-8", "surrogateescape")[:65535]
            out += [_LEN.pack(len(b)), b]
        return b"".join(out)

    @classmethod
    def unpack(cls, raw: bytes) -> Dialog:
        state, flags, start, h_entry, h_id, timeout, cseq_a, cseq_b = _HDR.unpack_from(raw, 0)
        pos = _HDR.size
        strs = []
        for _ in range(_NSTR):
            (n,) = _LEN.unpack_from(raw, pos)
            pos += _LEN.size
            strs.append(raw[pos:pos + n].decode("utf-8", "surrogateescape"))
            pos += n
        profs = tuple(tuple(x.split(_SEP_P, 1)) for x in strs[6].split(_SEP_R) if x)
        dvars = tuple(tuple(x.split(_SEP_P, 1)) for x in strs[7].split(_SEP_R) if x)
        return cls(strs[0], strs[1], strs[2], strs[3], strs[4], strs[5], state, flags, start,
                   h_entry, h_id, timeout, profs, dvars,  # type: ignore[arg-type]
                   cseq_a, cseq_b, *strs[8:])


def dlg_key(callid: str, from_tag: str) -> bytes:
    return (callid + "\0" + from_tag).encode("utf-8", "surrogateescape")


def _ckey(profile: str, value: str) -> bytes:
    return ("c\0" + profile + "\0" + value).encode("utf-8", "surrogateescape")


class DialogTable:
    """Dialogs and profile counters over two shm hash tables."""

    def __init__(self, dlgs: ShmHashTable, profiles: ShmHashTable,
                 unconfirmed_lifetime: float) -> None:
        self.dlgs = dlgs
        self.profiles = profiles
        self.unconfirmed_lifetime = unconfirmed_lifetime

    # ---- records ------------------------------------------------------------------------
    def get(self, callid: str, tag: str) -> Dialog | None:
        raw = self.dlgs.get(dlg_key(callid, tag))
        return None if raw is None else Dialog.unpack(raw)

    def find(self, callid: str, from_tag: str | None, to_tag: str | None
             ) -> Dialog | None:
        """The dialog of an in-dialog request from either side."""
        for tag in (from_tag, to_tag):
            if tag:
                d = self.get(callid, tag)
                if d is not None:
                    return d
        return None

    def create(self, d: Dialog) -> Dialog:
        """Insert a new unconfirmed dialog (or return the existing one)."""
        h_id = self.profiles.incr(b"id")
        d = replace(d, h_entry=self.dlgs.bucket_of(d.key), h_id=h_id,
                    start_ts=int(time.time()))
        if not self.dlgs.add(d.key, d.pack(), self.unconfirmed_lifetime):
            existing = self.get(d.callid, d.from_tag)
            return existing if existing is not None else d
        return d

    def update(self, key: bytes, fn: Callable[[Dialog], Dialog | None]
               ) -> Dialog | None:
        """Read-modify-write of one record under its bucket lock. fn(d) returns the new
        Dialog (profiles adjusted accordingly), or None to end the dialog."""
        with self.dlgs.locked(key) as b:
            cell = b.get_cell(key)
            if cell is None:
                return None
            old = Dialog.unpack(cell.value)
            new = fn(old)
            if new is None:
                b.delete(key)
                self._adjust(old.profiles, -1)
                return replace(old, state=DELETED)
            added = [p for p in new.profiles if p not in old.profiles]
            removed = [p for p in old.profiles if p not in new.profiles]
            if new.state == CONFIRMED and new.timeout > 0 and (
                    old.state != CONFIRMED or new.timeout != old.timeout):
                b.set(key, new.pack(), float(new.timeout))
            else:
                b.set(key, new.pack(), expires=cell.expires)
            self._adjust(added, 1)
            self._adjust(removed, -1)
            return new

    def _adjust(self, members: list[tuple[str, str]] | tuple[tuple[str, str], ...],
                delta: int) -> None:
        for prof, value in members:
            self.profiles.incr(_ckey(prof, value), delta)
            if value:
                self.profiles.incr(_ckey(prof, ""), delta)

    def expire(self) -> list[Dialog]:
        """Timer process: remove timed-out dialogs, release their profiles, return them."""
        out = []
        for cell in self.dlgs.expire():
            d = Dialog.unpack(cell.value)
            self._adjust(d.profiles, -1)
            out.append(d)
        return out

    def all(self) -> list[Dialog]:
        return [Dialog.unpack(c.value) for c in self.dlgs.items()]

    def cell(self, d: Dialog) -> Cell | None:
        return self.dlgs.get_cell(d.key)

    # ---- profiles -----------------------------------------------------------------------
    def profile_size(self, profile: str, value: str = "") -> int:
        from sipcore.shm.hashtable import unpack_int

        raw = self.profiles.get(_ckey(profile, value))
        return max(0, unpack_int(raw)) if raw else 0

