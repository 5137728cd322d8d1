"""Edit list ("lumps") on a SipMsg: recorded edits applied once when the message is built.

Runs in: workers (route scripts and modules edit the request/reply: append_hf, remove_hf,
subst, record_route, set_body...), tests. Touches no shared state.

Model (after Kamailio data_lump.c, simplified to one flat list): every edit is an `Edit` on the
ORIGINAL buffer: (pos, band, seq, end, data) = "at pos, skip original bytes up to end (end == pos
for an insertion) and emit data". Sorting by (pos, band, seq) gives the output order: at one
offset the bands come out in their numeric order (below), and within a band the older edit
first. Overlapping deletions are merged; an insertion inside an already deleted range is still
emitted where the deletion happened. Untouched bytes are copied, never re-serialized.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple

# ---- ordering bands ------------------------------------------------------------------------
# Every edit at one offset belongs to a band; lower bands come out first. Scripts and modules
# only use BAND_BEFORE / BAND_REPLACE / BAND_AFTER (insert_before, delete/replace,
# insert_after). The others are the places where the core must come out ahead of, or behind,
# whatever the script recorded at the same offset.

# Insertions (nothing of the original is skipped):
BAND_SEND_LINES = 0      # header lines rendered per outgoing socket at send time (Record-Route)
                         # at the first header, above our Via (forward.build_forwarded inserts
                         # them and our Via as one edit here, lines first)
BAND_OUR_VIA = 1         # this hop's Via (build_request): on top of the received headers
                         # (RFC 3261 16.6 step 8), above script insertions at the first header
BAND_BEFORE = 2          # insert_before() by scripts and modules (add_header(first=True) and
                         # append_hf land here: after our Via, before what the core appends)
BAND_MAXFWD_ADDED = 3    # "Max-Forwards: 70" added by forwarding when absent (RFC 3261 16.6
                         # step 3): after the headers the script appended
BAND_EXTRA_HEADERS = 4   # build_request(extra_headers=...): after the script's headers and an
                         # added Max-Forwards, in the order given
BAND_CONTENT_TYPE = 5    # the Content-Type line build() adds for set_body(ctype) when the
                         # message had none
BAND_CONTENT_LENGTH = 6  # the Content-Length line build() adds when the body changed and there
                         # was none: the last header line
# Deletions/replacements (the original bytes [pos, end) are skipped):
BAND_REPLACE_FIRST = 7   # core rewrites ahead of script edits at the same offset: the new
                         # Request-URI, the decremented Max-Forwards value
BAND_REPLACE = 8         # delete/replace by scripts and modules
BAND_REPLACE_LAST = 9    # what build() rewrites after everything else: the Content-Length value,
                         # the replaced Content-Type line
# Insertions after a deletion starting at the same offset:
BAND_AFTER = 10          # insert_after() by scripts and modules


class Edit(NamedTuple):
    """One recorded edit. A plain tuple underneath: lists of edits sort as tuples do."""

    pos: int        # offset in the original buffer
    band: int       # BAND_*: order among the edits at one offset
    seq: int        # order within the band (LumpList counts up; the core numbers its lines)
    end: int        # end of the original bytes skipped (== pos: nothing skipped)
    data: bytes     # emitted at pos


_new_edit = tuple.__new__      # Edit(...) without the Python-level __new__ (hot path)


def make_edit(pos: int, band: int, seq: int, end: int, data: bytes) -> Edit:
    return _new_edit(Edit, (pos, band, seq, end, data))


class LumpList:
    """The pending edits of one message (append-only; cleared by the owner)."""

    __slots__ = ("ops", "_seq")

    def __init__(self) -> None:
        self.ops: list[Edit] = []
        self._seq = 0

    # each method appends its Edit itself (no shared helper): one Python call less per edit,
    # and every forwarded request records a few
    def insert_before(self, pos: int, data: bytes) -> None:
        self._seq = seq = self._seq + 1
        self.ops.append(_new_edit(Edit, (pos, BAND_BEFORE, seq, pos, data)))

    def insert_after(self, pos: int, data: bytes) -> None:
        self._seq = seq = self._seq + 1
        self.ops.append(_new_edit(Edit, (pos, BAND_AFTER, seq, pos, data)))

    def replace(self, start: int, end: int, data: bytes) -> None:
        if end < start:
            raise ValueError(f"bad range [{start}, {end})")
        self._seq = seq = self._seq + 1
        self.ops.append(_new_edit(Edit, (start, BAND_REPLACE, seq, end, data)))

    def delete(self, start: int, end: int) -> None:
        if end < start:
            raise ValueError(f"bad range [{start}, {end})")
        self._seq = seq = self._seq + 1
        self.ops.append(_new_edit(Edit, (start, BAND_REPLACE, seq, end, b"")))

    def discard(self, edits: Iterable[Edit]) -> None:
        """Forget EDITS (a module replacing its own earlier edit of the same bytes)."""
        drop = set(edits)
        if drop:
            self.ops[:] = [e for e in self.ops if e not in drop]

    def touches(self, start: int, end: int) -> bool:
        """True if a deletion/replacement overlaps [start, end)."""
        return any(e.end > e.pos and e.pos < end and e.end > start for e in self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def __bool__(self) -> bool:
        return bool(self.ops)


def apply_ops(buf: bytes, ops: list[Edit], start: int, end: int) -> bytes:
    """buf[start:end] with ops (all positions within [start, end]) applied."""
    if not ops:
        return buf[start:end]
    out: list[bytes] = []
    cur = start
    for pos, _band, _seq, oend, data in sorted(ops):
        if pos > cur:
            out.append(buf[cur:pos])
            cur = pos
        if data:
            out.append(data)
        if oend > cur:
            cur = oend
    if cur < end:
        out.append(buf[cur:end])
    return b"".join(out)
