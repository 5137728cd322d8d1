"""UsrlocApi: what registrar (and later nathelper) bind with bind_api("usrloc").

Runs in: every process. Shared state: the usrloc domains in shm (udomain.py).
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sipcore.errors import ModuleError

from .ucontact import Contact, RecordTooLarge, q_text
from .udomain import EXPIRED_CBS, DomainCfg, ExpiredCb, UDomain, new_ruid


def aor_hash(aor: str) -> int:
    """A hash of the AoR that is the same in every process (Python's hash() is salted per
    process): ul.dump's HashID and $ulc(p=>aorhash)."""
    return zlib.crc32(aor.encode("utf-8", "surrogateescape"))


# matching_mode values (Kamailio CONTACT_ONLY, CONTACT_CALLID, CONTACT_PATH, CONTACT_CALLID_ONLY)
CONTACT_ONLY, CONTACT_CALLID, CONTACT_PATH, CONTACT_CALLID_ONLY = 0, 1, 2, 3


def _uri_eq(a: str, b: str) -> bool:
    """Contact URI comparison as usrloc does it: byte-exact, scheme/host case-insensitive
    (Kamailio compares the strings; we accept case differences in scheme and host part)."""
    if a == b:
        return True
    return a.lower() == b.lower()


@dataclass
class UsrlocApi:
    """Kamailio usrloc_api_t, the part registrar needs.

    Errors of UDomain.update()/get(): sipcore.db.DbError (database), sipcore.shm.ShmError
    (shared memory full), RecordTooLarge (a field over 64 KiB) - all mean "reply 500"."""

    RecordTooLarge = RecordTooLarge

    get_domain: Callable[[str], UDomain]
    settings: Callable[[], DomainCfg]
    params: Callable[[str], Any]
    known: dict[str, UDomain] = field(default_factory=dict)

    def register_udomain(self, name: str) -> UDomain:
        """The domain (table) NAME, created in shm on first use (preloaded from the DB when
        created in the master)."""
        if not name:
            raise ModuleError("usrloc: empty domain (table) name")
        return self.get_domain(name)

    @property
    def use_domain(self) -> bool:
        return bool(self.params("use_domain"))

    @property
    def nat_bflag(self) -> int:
        return int(self.params("nat_bflag"))

    @property
    def xavp_contact(self) -> str:
        """Name of the XAVP saved with each contact and restored by lookup ("" = off)."""
        return str(self.params("xavp_contact") or "")

    @property
    def cseq_delay(self) -> int:
        return int(self.params("cseq_delay"))

    @property
    def db_mode(self) -> int:
        return int(self.params("db_mode"))

    def register_expired_cb(self, fn: ExpiredCb) -> None:
        """fn(domain, aor, contact) after a contact expired (timer process; Kamailio
        register_ulcb(UL_CONTACT_EXPIRE)). Registering the same function twice is a no-op."""
        if fn not in EXPIRED_CBS:
            EXPIRED_CBS.append(fn)

    def new_ruid(self) -> str:
        return new_ruid()

    def new_contact(self, **fields: Any) -> Contact:
        """A binding to insert (registrar's save): a fresh ruid unless given."""
        fields.setdefault("ruid", new_ruid())
        return Contact(**fields)

    @staticmethod
    def q_text(q: int) -> str:
        return q_text(q)

    @staticmethod
    def aor_hash(aor: str) -> int:
        return aor_hash(aor)

    def match_contact(self, contacts: list[Contact], uri: str, callid: str, path: str,
                      instance: str = "", reg_id: int = 0) -> Contact | None:
        """Kamailio get_ucontact(): the existing binding a REGISTER Contact refers to, by
        +sip.instance (and reg-id) when present (RFC 5626), else by matching_mode."""
        if instance:
            for c in contacts:
                if c.instance == instance and c.reg_id == reg_id:
                    return c
        mode = int(self.params("matching_mode"))
        for c in contacts:
            if mode == CONTACT_CALLID_ONLY:
                if c.callid == callid:
                    return c
            elif _uri_eq(c.c, uri):
                if mode == CONTACT_ONLY:
                    return c
                if mode == CONTACT_CALLID and c.callid == callid:
                    return c
                if mode == CONTACT_PATH and (not path or c.path == path):
                    return c
        return None
