"""A usrloc domain (Kamailio udomain_t): the AoR -> contacts table named like its DB table.

Runs in: SIP workers (get/update from registrar), the timer process (timer(): expiry and the
db_mode 2 write-back), the ctl process (RPCs), the master (preload pre-fork, flush at stop).
Shared state: the shm hash table "usrloc:<domain>" (key: AoR bytes, value: packed contacts,
see ucontact.py) and the usrloc:* counters. db_mode 3 keeps nothing in shm.

Invariants:
- Readers see only live contacts: not expired and not CS_DELETED (a write-back tombstone).
- A record changes only through update(), which holds the AoR's bucket lock for the
  read-modify-write and does every DB write after releasing it (STYLE rule 4).
- Statistics count live contacts: each update/expiry adds (live after - live before).
"""
from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sipcore import stats
from sipcore.db import DbError
from sipcore.shm import ShmHashTable

from .ucontact import CS_DELETED, CS_DIRTY, CS_NEW, CS_SYNC, Contact, pack_record, unpack_record
from .ul_db import LocationDb

log = logging.getLogger(__name__)

NO_DB, WRITE_THROUGH, WRITE_BACK, DB_ONLY, DB_READONLY = 0, 1, 2, 3, 4

_ruid_seq = itertools.count(1)


def new_ruid() -> str:
    """A record-unique id (Kamailio sruid "uloc-<time>-<pid>-<n>")."""
    return f"uloc-{int(time.time()):x}-{os.getpid():x}-{next(_ruid_seq)}"


@dataclass
class DomainCfg:
    db_mode: int = NO_DB
    db_url: str = ""
    use_domain: bool = False
    hash_size: int = 10
    desc_time_order: bool = False
    fetch_rows: int = 2000
    db_timer_clean: bool = False        # db_mode 1/2: the timer also deletes expired rows
    rm_expired_delay: int = 0           # db_mode 3: expired rows deleted N s after expiry
    db_clean_tcp: bool = False          # startup: delete rows of TCP/TLS/WS/WSS contacts
    skip_remote_socket: bool = False    # startup: rows whose socket is not ours not loaded
    node: Any = None                    # the CoreApi (listen sockets for skip_remote_socket)
    # location column (key) -> the name the operator's table uses (usrloc *_column params)
    columns: dict[str, str] = field(default_factory=dict)


Updater = Callable[[list[Contact]], list[Contact]]

# Kamailio UL_CONTACT_EXPIRE callbacks: fn(domain, aor, contact), run by the timer process after
# the contact left shm (no lock held). Registered before fork (registrar's mod_init).
ExpiredCb = Callable[[str, str, Contact], None]
EXPIRED_CBS: list[ExpiredCb] = []


def sort_contacts(contacts: list[Contact], desc_time_order: bool) -> list[Contact]:
    """Kamailio order: q descending (unspecified = 1.0), newest first among equals; or by
    time only with desc_time_order."""
    if desc_time_order:
        return sorted(contacts, key=lambda c: -c.last_modified)
    return sorted(contacts, key=lambda c: (-(1000 if c.q < 0 else c.q), -c.last_modified))


class UDomain:
    def __init__(self, name: str, cfg: DomainCfg, table: ShmHashTable | None) -> None:
        self.name = name
        self.cfg = cfg
        self.table = table
        self.db = LocationDb(cfg.db_url, name, cfg.use_domain, cfg.columns) \
            if cfg.db_mode != NO_DB else None
        self.st_users = f"usrloc:{name}-users"
        self.st_contacts = f"usrloc:{name}-contacts"
        self.st_expires = f"usrloc:{name}-expires"

    # ---- statistics ---------------------------------------------------------------------
    def register_stats(self) -> None:
        if self.cfg.db_mode == DB_ONLY:
            return                              # Kamailio: no usrloc stats in DB-only mode
        for n in (self.st_users, self.st_contacts):
            stats.register(n, no_reset=True)
        stats.register(self.st_expires)

    def _count(self, before: list[Contact], after: list[Contact]) -> None:
        """Counters follow the stored contacts (an expired one counts until the timer
        removes it; a write-back tombstone does not count)."""
        if self.cfg.db_mode == DB_ONLY:
            return
        b = sum(1 for c in before if c.state != CS_DELETED)
        a = sum(1 for c in after if c.state != CS_DELETED)
        if a != b:
            stats.inc(self.st_contacts, a - b)
            stats.inc("usrloc:registered_users", (a > 0) - (b > 0))
            if (a > 0) != (b > 0):
                stats.inc(self.st_users, (a > 0) - (b > 0))

    # ---- reads --------------------------------------------------------------------------
    def get(self, aor: str, *, include_expired: bool = False) -> list[Contact]:
        """Live contacts of AOR, best first; include_expired: also the expired ones the timer
        has not removed yet (registrar's use_expired_contacts). Raises DbError in db_mode 3
        when the DB fails."""
        now = time.time()
        if self.table is None:
            assert self.db is not None
            raw = self.db.get_aor(aor)
        else:
            val = self.table.get(aor.encode())
            raw = unpack_record(val) if val is not None else []
        if include_expired:
            keep = [c for c in raw if c.state != CS_DELETED]
        else:
            keep = [c for c in raw if c.live(now)]
        return sort_contacts(keep, self.cfg.desc_time_order)

    def aors(self) -> list[str]:
        if self.table is None:
            assert self.db is not None
            return self.db.aors()
        now = time.time()
        return sorted(c.key.decode() for c in self.table.items()
                      if any(x.live(now) for x in unpack_record(c.value)))

    def dump(self) -> dict[str, list[Contact]]:
        now = time.time()
        if self.table is None:
            return {aor: self.get(aor) for aor in self.aors()}
        out = {}
        for cell in self.table.items():
            live = [c for c in unpack_record(cell.value) if c.live(now)]
            if live:
                out[cell.key.decode()] = sort_contacts(live, self.cfg.desc_time_order)
        return dict(sorted(out.items()))

    # ---- the one write path -------------------------------------------------------------
    def update(self, aor: str, fn: Updater, *, mem_only: bool = False) -> list[Contact]:
        """Replace AOR's live contacts with fn(live contacts) atomically; returns the new live
        list (best first). Contacts are told apart by ruid: a new ruid is an insert, a missing
        one a delete, a changed one an update. mem_only: no DB write (save flag 0x01).
        Raises DbError when the DB write fails (db_mode 1 and 3: nothing was changed in
        db_mode 3; in db_mode 1 memory keeps the change, as Kamailio does)."""
        now = time.time()
        if self.table is None:
            return self._update_db_only(aor, fn, now)
        key = aor.encode()
        wb = self.cfg.db_mode == WRITE_BACK and not mem_only
        with self.table.locked(key) as b:
            val = b.get(key)
            stored = unpack_record(val) if val is not None else []
            live = [c for c in stored if c.live(now)]
            rest = [c for c in stored if not c.live(now)]
            new_live = fn(list(live))
            ins, upd, dels = _diff(live, new_live)
            old_by_ruid = {c.ruid: c for c in live}
            for c in new_live:
                if c.ruid in ins:
                    c.state = CS_NEW if wb else CS_SYNC
                elif c.ruid in upd:
                    old = old_by_ruid[c.ruid]
                    c.state = (CS_DIRTY if old.state == CS_SYNC else old.state) if wb \
                        else CS_SYNC
            if wb:
                for r in dels:
                    old = old_by_ruid[r]
                    if old.state != CS_NEW:          # a row exists: timer deletes it
                        rest.append(old.copy(state=CS_DELETED))
            keep = new_live + rest
            if keep:
                b.set(key, pack_record(keep))
            elif val is not None:
                b.delete(key)
        self._count(stored, keep)
        if self.cfg.db_mode == WRITE_THROUGH and not mem_only and self.db is not None:
            by_ruid = {c.ruid: c for c in new_live}
            self.db.write_batch([(aor, by_ruid[r]) for r in ins],
                                [(aor, by_ruid[r]) for r in upd], sorted(dels))
        return sort_contacts(new_live, self.cfg.desc_time_order)

    def _update_db_only(self, aor: str, fn: Updater, now: float) -> list[Contact]:
        assert self.db is not None
        live = [c for c in self.db.get_aor(aor) if c.live(now)]
        new_live = fn(list(live))
        ins, upd, dels = _diff(live, new_live)
        by_ruid = {c.ruid: c for c in new_live}
        self.db.write_batch([(aor, by_ruid[r]) for r in ins], [(aor, by_ruid[r]) for r in upd],
                            sorted(dels))
        return sort_contacts(new_live, self.cfg.desc_time_order)

    def delete_aor(self, aor: str) -> bool:
        """Remove every contact of AOR; False when it had none."""
        had: list[Contact] = []

        def drop(cts: list[Contact]) -> list[Contact]:
            had.extend(cts)
            return []

        if self.table is None:
            assert self.db is not None
            return self.db.delete_aor(aor) > 0
        self.update(aor, drop)
        return bool(had)

    # ---- startup ------------------------------------------------------------------------
    def preload(self) -> int:
        """Master, pre-fork: load every row into shm (db_mode 1, 2, 4)."""
        if self.table is None or self.db is None:
            return 0
        n = 0
        recs: dict[str, list[Contact]] = {}
        if self.cfg.db_clean_tcp:
            gone = self.db.delete_stream_contacts()
            log.info("usrloc: %s: %s TCP/TLS/WS contacts removed at startup", self.name, gone)
        skipped = 0
        for aor, ct in self.db.load_all(self.cfg.fetch_rows):
            if self.cfg.skip_remote_socket and ct.socket and \
                    not _local_socket(self.cfg.node, ct.socket):
                skipped += 1                # another node's registration (shared table)
                continue
            recs.setdefault(aor, []).append(ct)
        if skipped:
            log.info("usrloc: %s: %s contacts with a remote socket skipped", self.name, skipped)
        for aor, cts in recs.items():
            self.table.set(aor.encode(), pack_record(cts))
            self._count([], cts)
            n += len(cts)
        log.info("usrloc: %s: %s contacts of %s AoRs loaded", self.name, n, len(recs))
        return n

    # ---- timer ----------------------------------------------------------------------------
    def timer(self, now: float | None = None, *, sync: bool = True) -> int:
        """Expiry (and in db_mode 2 the write-back of changed contacts): remove expired
        contacts and tombstones from shm and their rows from the DB. Returns the number of
        contacts that expired. Timer process (and ul.flush / shutdown with sync=True)."""
        now = time.time() if now is None else now
        if self.table is None:
            if self.db is None:
                return 0
            try:
                return self.db.delete_expired(now - max(0, self.cfg.rm_expired_delay))
            except DbError:
                return 0                    # logged; retried next round
        mode = self.cfg.db_mode
        writes_db = self.db is not None and mode in (WRITE_THROUGH, WRITE_BACK)
        if writes_db and self.cfg.db_timer_clean:
            # rows other instances sharing the table left behind (ours are deleted by ruid)
            assert self.db is not None
            try:
                self.db.delete_expired(now)
            except DbError:
                pass                        # logged; retried next round
        # phase 1: a consistent copy of the work, bucket by bucket (no lock held after)
        work: dict[str, list[Contact]] = {}
        for cell in self.table.items():
            cts = unpack_record(cell.value)
            todo = [c for c in cts if c.is_expired(now) or c.state == CS_DELETED
                    or (mode == WRITE_BACK and sync and c.state in (CS_NEW, CS_DIRTY))]
            if todo:
                work[cell.key.decode()] = todo
        if not work:
            return 0
        # phase 2: the database, in one transaction, no shm lock held
        written: set[str] = set()
        if writes_db:
            assert self.db is not None
            ins, upd, dels = [], [], []
            for aor, cts in work.items():
                for c in cts:
                    if c.is_expired(now) or c.state == CS_DELETED:
                        if c.state != CS_NEW or mode == WRITE_THROUGH:
                            dels.append(c.ruid)
                    elif c.state == CS_NEW:
                        ins.append((aor, c))
                    else:
                        upd.append((aor, c))
            try:
                self.db.write_batch(ins, upd, dels)
            except DbError:
                return 0                    # logged; everything is retried next round
            written = {c.ruid for _, c in ins + upd}
        # phase 3: apply to shm under each AoR's lock, unless a worker changed it meanwhile
        expired = 0
        orphans: list[str] = []
        for aor, cts in work.items():
            key = aor.encode()
            done = {c.ruid: c for c in cts}
            with self.table.locked(key) as b:
                val = b.get(key)
                stored = unpack_record(val) if val is not None else []
                keep: list[Contact] = []
                removed: list[Contact] = []
                for c in stored:
                    seen = done.get(c.ruid)
                    if seen is not None and c == seen and (c.is_expired(now)
                                                           or c.state == CS_DELETED):
                        removed.append(c)
                        continue
                    if c.ruid in written:
                        if c == seen:
                            c.state = CS_SYNC
                        elif c.state == CS_NEW:     # changed while its row was inserted
                            c.state = CS_DIRTY
                    keep.append(c)
                if keep:
                    b.set(key, pack_record(keep))
                elif val is not None:
                    b.delete(key)
            # inserted while a worker removed it (it was NEW, so no tombstone was left)
            present = {c.ruid for c in stored}
            orphans.extend(r for r in done if r in written and r not in present)
            gone = [c for c in removed if c.state != CS_DELETED]
            if gone:
                expired += len(gone)
                if mode != DB_ONLY:
                    stats.inc(self.st_expires, len(gone))
            self._count(stored, keep)
            for c in gone:
                self._run_expired_cbs(aor, c)
        if orphans and self.db is not None:
            try:
                self.db.delete_ruids(orphans)
            except DbError:
                pass                        # logged; the rows expire with their contacts
        return expired

    def _run_expired_cbs(self, aor: str, c: Contact) -> None:
        for cb in EXPIRED_CBS:
            try:
                cb(self.name, aor, c)
            except Exception as exc:  # a callback (event route) must not stop the expiry
                log.error("usrloc: contact-expired callback failed: %s: %s",
                          type(exc).__name__, exc)

    def flush(self) -> None:
        """db_mode 2: write every pending change now (ul.flush, shutdown)."""
        self.timer(sync=True)


def _local_socket(core: Any, text: str) -> bool:
    """SOCKET (proto:host:port) is one of the listen sockets of the node CORE (True when
    unknown: no running core to ask)."""
    from sipcore.net.sockspec import find_socket, parse_socket_spec

    if core is None:
        return True
    try:
        return find_socket(core, parse_socket_spec(text)) is not None
    except ValueError:
        return False


def _diff(old: list[Contact], new: list[Contact]) -> tuple[set[str], set[str], set[str]]:
    o = {c.ruid: c for c in old}
    n = {c.ruid: c for c in new}
    ins = {r for r in n if r not in o}
    dels = {r for r in o if r not in n}
    upd = {r for r in n if r in o and n[r].copy(state=0) != o[r].copy(state=0)}
    return ins, upd, dels
