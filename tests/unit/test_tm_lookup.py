"""tm matching keys (RFC 3261 17.2.3 and the RFC 2543 fallback), reply branches, cell records
and the shm table."""
from __future__ import annotations

from modules.tm.h_table import Branch, Cell, TmTable, new_tid, parse_branch_id
from modules.tm.t_lookup import invite_key_of, reply_branch, request_key
from sipcore.msg import parse_msg
from sipcore.shm import ShmContext
from sipcore.shm import ShmHashTable
from sipcore.testing import to_wire


def req(method: str, branch: str = "z9hG4bKabc", cseq_method: str | None = None,
        ruri: str = "sip:bob@b.example", to_tag: str = "", via_host: str = "10.0.0.1:5070"
        ) -> object:
    to = "<sip:bob@b.example>" + (f";tag={to_tag}" if to_tag else "")
    return parse_msg(to_wire(
        f"{method} {ruri} SIP/2.0\n"
        f"Via: SIP/2.0/UDP {via_host};branch={branch}\n"
        "From: <sip:alice@a.example>;tag=f1\n"
        f"To: {to}\nCall-ID: cid1\nCSeq: 7 {cseq_method or method}\n"
        "Content-Length: 0\n\n"))


def test_rfc3261_keys():
    inv = req("INVITE")
    assert request_key(inv) == request_key(req("INVITE"))           # retransmission
    assert request_key(req("ACK", to_tag="x")) == request_key(inv)  # ACK for non-2xx
    assert request_key(req("CANCEL")) != request_key(inv)           # own transaction
    assert invite_key_of(req("CANCEL")) == request_key(inv)         # ... finds its INVITE
    assert request_key(req("INVITE", branch="z9hG4bKother")) != request_key(inv)
    assert request_key(req("INVITE", via_host="10.0.0.2:5070")) != request_key(inv)


def test_rfc2543_fallback_keys():
    old = req("INVITE", branch="1234")
    assert request_key(old).startswith("2|")
    assert request_key(req("INVITE", branch="1234")) == request_key(old)
    assert request_key(req("ACK", branch="1234", to_tag="x")) == request_key(old)
    assert request_key(req("INVITE", branch="1234", ruri="sip:carol@c")) != request_key(old)
    assert request_key(req("INVITE", branch="1234", ruri="sip:carol@c"),
                       ruri_matching=False) == request_key(old, ruri_matching=False)


def test_reply_branch():
    tid = new_tid()
    assert parse_branch_id(f"z9hG4bK.t{tid}.3") == (tid, 3)
    assert parse_branch_id("z9hG4bKabc") is None
    assert parse_branch_id(f"z9hG4bK.t{tid}.x") is None
    rpl = parse_msg(to_wire(f"SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 127.0.0.1;branch="
                            f"z9hG4bK.t{tid}.1\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\n"
                            "From: <sip:a@a>;tag=1\nTo: <sip:b@b>;tag=2\nCall-ID: c\n"
                            "CSeq: 1 INVITE\nContent-Length: 0\n\n"))
    assert reply_branch(rpl) == (tid, 1)


def test_cell_roundtrip_and_table():
    cell = Cell(tid=new_tid(), tflags=1, method="INVITE", request=b"INVITE x\r\n\r\n",
                on_failure="FAIL", ruri="sip:bob@b", flags=5,
                branches=[Branch(state=1, uri="sip:a", buf=b"xyz", port=5090),
                          Branch(state=4, code=486, reply=b"SIP/2.0 486")])
    again = Cell.unpack(cell.pack())
    assert again == cell
    shm = ShmContext.private(4)
    tbl = TmTable(ShmHashTable.create(shm.arena, 64))
    tbl.insert(cell, 10)
    assert tbl.index_add("k1", cell.tid, 10) is None
    assert tbl.index_add("k1", "other", 10) == cell.tid          # atomic: first one wins

    def upd(c: Cell) -> int:
        c.branches[0].code = 180
        return 7

    _stored, res = tbl.update(cell.tid, upd)
    assert res == 7 and tbl.get(cell.tid).branches[0].code == 180
    assert [c.tid for c in tbl.cells()] == [cell.tid]
    assert tbl.delete(cell.tid) and tbl.get(cell.tid) is None


def test_branch_states_read_without_decoding_the_cell():
    """The record prefix the timer process reads for a retransmission job: each branch's
    state and flags, kept in step with the cell by every write; records whose values do not
    fit say so, and the cell still decodes."""
    shm = ShmContext.private(4)
    tbl = TmTable(ShmHashTable.create(shm.arena, 64))
    cell = Cell(tid=new_tid(), branches=[Branch(state=1), Branch(state=3, flags=0x1A2)])
    tbl.insert(cell, 10)
    assert tbl.branch_state(cell.tid, 0) == (1, 0)
    assert tbl.branch_state(cell.tid, 1) == (3, 0x1A2)
    assert tbl.branch_state(cell.tid, 2) is None                 # no such branch
    assert tbl.branch_state(new_tid(), 0) is None                # no such cell

    def answer(c: Cell) -> None:
        c.branches[0].state, c.branches[0].flags = 4, 2
    tbl.update(cell.tid, answer)
    assert tbl.branch_state(cell.tid, 0) == (4, 2)
    big = Cell(tid=new_tid(), branches=[Branch(state=1, flags=1 << 20)])
    tbl.insert(big, 10)
    assert tbl.branch_state(big.tid, 0) == (-1, 0)               # decode the cell instead
    assert tbl.get(big.tid).branches[0].flags == 1 << 20
    many = Cell(tid=new_tid(), branches=[Branch(state=2) for _ in range(300)])
    assert Cell.unpack(many.pack()) == many


def test_shm_exhaustion_is_an_error_not_a_crash():
    """A full segment: t_relay fails with E_OUT_OF_MEM and sl_reply_error() answers 500."""
    import modules.tm as tm
    from modules.tm.state import set_table
    from sipcore.shm import ShmOutOfMemory
    from sipcore.testing import Harness

    tm.mod.reset_params()
    h = Harness.from_text('loadmodule "sl"\nloadmodule "tm"\n'
                          'request_route { if (!t_relay()) { sl_reply_error(); } }\n')
    shm = ShmContext.private(1)
    small = TmTable(ShmHashTable.create(shm.arena, 16))
    for size in (65536, 4096, 256, 16):       # use up the segment
        while True:
            try:
                shm.arena.alloc(size)
            except ShmOutOfMemory:
                break
    set_table(small)
    inv = ("INVITE sip:b@127.0.0.1:5090 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5080;"
           "branch=z9hG4bKoom\nFrom: <sip:a@a>;tag=1\nTo: <sip:b@b>\nCall-ID: oom\n"
           "CSeq: 1 INVITE\nContent-Length: 0\n\n")
    res = h.request(inv)
    assert [m.status for m in res.replies] == [500]
    assert not [d for d, _b in res.sent if d.port == 5090]
