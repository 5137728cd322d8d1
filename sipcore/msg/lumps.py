"""Edit list ("lumps") on a SipMsg: recorded edits applied once when the message is built.

Runs in: workers (route scripts and modules edit the request/reply: append_hf, remove_hf,
subst, record_route, set_body...), tests. Touches no shared state.

Model (after Kamailio data_lump.c, simplified to one flat list): every edit is an operation
on the ORIGINAL buffer: (pos, prio, seq, end, data) = "at pos, skip original bytes up to end
(end == pos for an insertion) and emit data". Sorting by (pos, prio, seq) gives the output order:
at one offset, insert_before (prio 0) comes before a deletion/replacement starting there
(prio 1), which comes before insert_after (prio 2); among equal (pos, prio) the older edit
first. Overlapping deletions are merged; an insertion inside an already deleted range is
still emitted where the deletion happened. Untouched bytes are copied, never re-serialized.
"""
from __future__ import annotations

PRIO_BEFORE = 0
PRIO_REPLACE = 1
PRIO_AFTER = 2

Op = tuple[int, int, int, int, bytes]


class LumpList:
    """The pending edits of one message (append-only; cleared by the owner)."""

    __slots__ = ("ops", "_seq")

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._seq = 0

    def _add(self, pos: int, prio: int, end: int, data: bytes) -> None:
        self._seq += 1
        self.ops.append((pos, prio, self._seq, end, data))

    def insert_before(self, pos: int, data: bytes) -> None:
        self._add(pos, PRIO_BEFORE, pos, data)

    def insert_after(self, pos: int, data: bytes) -> None:
        self._add(pos, PRIO_AFTER, pos, data)

    def replace(self, start: int, end: int, data: bytes) -> None:
        if end < start:
            raise ValueError(f"bad range [{start}, {end})")
        self._add(start, PRIO_REPLACE, end, data)

    def delete(self, start: int, end: int) -> None:
        self.replace(start, end, b"")

    def touches(self, start: int, end: int) -> bool:
        """True if a deletion/replacement overlaps [start, end)."""
        return any(o[3] > o[0] and o[0] < end and o[3] > start for o in self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def __bool__(self) -> bool:
        return bool(self.ops)


def apply_ops(buf: bytes, ops: list[Op], start: int, end: int) -> bytes:
    """buf[start:end] with ops (all positions within [start, end]) applied."""
    if not ops:
        return buf[start:end]
    out: list[bytes] = []
    cur = start
    for pos, _prio, _seq, oend, data in sorted(ops):
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
