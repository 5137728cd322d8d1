"""TCP worker mailboxes: command encoding, delivery from another process, a full mailbox
fails the sender after the send timeout instead of blocking it."""
from __future__ import annotations

import os
import select
import time

from sipcore.net import mailbox
from sipcore.net.mailbox import F_NO_CONNECT, OP_SEND, Command, Mailboxes


def test_command_roundtrip():
    c = Command(OP_SEND, "tls", F_NO_CONNECT, "2001:db8::1", 5061, 42, b"INVITE ...")
    assert Command.unpack(c.pack()) == c


def test_post_from_a_child_process_reaches_the_reader():
    mb = Mailboxes(2)
    try:
        pid = os.fork()
        if pid == 0:
            err = mb.post(1, Command(OP_SEND, "tcp", 0, "127.0.0.1", 5060, 7, b"x" * 60000))
            os._exit(0 if err is None else 1)
        assert os.waitpid(pid, 0)[1] == 0
        r, _, _ = select.select([mb.reader(1)], [], [], 2)
        assert r
        got = Command.unpack(mb.reader(1).recv(1 << 20))
        assert got.conn_id == 7 and got.data == b"x" * 60000
        assert select.select([mb.reader(0)], [], [], 0)[0] == []   # nothing for worker 0
    finally:
        mb.close()


def test_full_mailbox_fails_after_timeout(monkeypatch):
    monkeypatch.setattr(mailbox, "SEND_TIMEOUT", 0.2)
    mb = Mailboxes(1)
    try:
        big = Command(OP_SEND, "tcp", 0, "127.0.0.1", 5060, 1, b"y" * 60000)
        t0 = time.monotonic()
        err = None
        for _ in range(10000):              # nobody reads: the queue fills up
            err = mb.post(0, big)
            if err is not None:
                break
        assert err is not None
        assert time.monotonic() - t0 < 30
    finally:
        mb.close()
