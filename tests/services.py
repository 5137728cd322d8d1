"""What some tests need from outside the repository, and how they skip without it.

Every skip of the suite goes through this module, with a reason "GROUP: what is missing" (GROUP
one of GROUPS): tests/skipsummary.py groups the skipped tests by it at the end of a run, so a
run on a machine without, say, PostgreSQL says so in one line.

The database servers are found through two Kamailio-style db_urls to an existing database the
tests may create schemas (PostgreSQL) or databases (MariaDB) in:

    PYKAM_TEST_POSTGRES   default postgres://postgres@127.0.0.1:5432/test
    PYKAM_TEST_MYSQL      default mysql://root:@127.0.0.1:3306/test

Runs in: pytest only.
"""
from __future__ import annotations

import importlib
import os
import shutil
import socket
from types import ModuleType
from typing import NoReturn, Optional

import pytest

GROUPS = {
    "postgresql": "a PostgreSQL server (PYKAM_TEST_POSTGRES)",
    "mariadb": "a MariaDB/MySQL server (PYKAM_TEST_MYSQL)",
    "sipp": "the sipp binary (Debian/Ubuntu package sip-tester)",
    "ipv6": "an IPv6 loopback address (::1)",
    "cryptography": "the Python package cryptography (setup.py's test extra)",
    "lupa": "the Python package lupa (Lua/LuaJIT for KEMI scripts)",
    "c-extension": "the cffi extension sipcore._csipparse (built by pip install -e .)",
    "c-sanitizers": "a C compiler with AddressSanitizer and UBSan",
    "ports": "a fixed 127.0.0.1 port that a stock configuration uses",
}

DB_URLS = {
    "postgres": os.environ.get("PYKAM_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("PYKAM_TEST_MYSQL", "mysql://root:@127.0.0.1:3306/test"),
}
DB_GROUPS = {"postgres": "postgresql", "mysql": "mariadb"}
_DB_ENV = {"postgres": "PYKAM_TEST_POSTGRES", "mysql": "PYKAM_TEST_MYSQL"}
_DB_NAMES = {"postgres": "PostgreSQL", "mysql": "MariaDB/MySQL"}


def reason(group: str, detail: str) -> str:
    """The skip reason of GROUP: "group: detail"."""
    assert group in GROUPS, f"unknown skip group {group!r}"
    return f"{group}: {detail}"


def skip(group: str, detail: str, module: bool = False) -> NoReturn:
    """Skip the running test (or, with MODULE, the module being imported) in GROUP."""
    pytest.skip(reason(group, detail), allow_module_level=module)


# ---- SIPp -------------------------------------------------------------------------------------

SIPP_MISSING = "sipp not on PATH (Debian/Ubuntu: apt-get install sip-tester)"


def has_sipp() -> bool:
    return shutil.which("sipp") is not None


needs_sipp = pytest.mark.skipif(not has_sipp(), reason=reason("sipp", SIPP_MISSING))


def require_sipp() -> None:
    if not has_sipp():
        skip("sipp", SIPP_MISSING)


# ---- IPv6 -------------------------------------------------------------------------------------

def has_ipv6() -> bool:
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not has_ipv6(),
                                reason=reason("ipv6", "cannot bind ::1 (IPv6 loopback disabled)"))


# ---- Python packages --------------------------------------------------------------------------

def import_or_skip(name: str) -> ModuleType:
    """Import the Python package NAME (its own skip group), or skip naming it."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        skip(name, f"cannot import {name} ({e}); bin/setup-env --test installs it into .venv",
             module=True)


# ---- database servers -------------------------------------------------------------------------

_db_error: dict[str, Optional[str]] = {}


def admin_url(kind: str) -> str:
    """SQLAlchemy URL of the configured PostgreSQL ("postgres") or MariaDB ("mysql") database."""
    from sipcore import db

    return db.sqlalchemy_url(DB_URLS[kind]).render_as_string(hide_password=False)


def db_unreachable(kind: str) -> Optional[str]:
    """None when the KIND server answers SELECT 1, else why not (asked once per process)."""
    if kind not in _db_error:
        from sqlalchemy import create_engine, text

        from sipcore import db

        shown = db.display_url(DB_URLS[kind])
        try:
            eng = create_engine(admin_url(kind), connect_args={"connect_timeout": 3})
            try:
                with eng.connect() as conn:
                    conn.execute(text("SELECT 1"))
            finally:
                eng.dispose()
            _db_error[kind] = None
        except Exception as e:  # driver missing, server down, auth refused: the tests skip
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            _db_error[kind] = (f"{_DB_NAMES[kind]} not reachable at {shown} "
                               f"(set {_DB_ENV[kind]}): {first}")
    return _db_error[kind]


def require_db(kind: str) -> None:
    """Skip unless the KIND ("postgres" or "mysql") server answers; "sqlite" always does."""
    if kind == "sqlite":
        return
    why = db_unreachable(kind)
    if why is not None:
        skip(DB_GROUPS[kind], why)


# ---- the C scanner ----------------------------------------------------------------------------

C_SCANNER_MISSING = reason("c-extension", "sipcore._csipparse is not built (pip install -e . "
                                          "builds it; bin/setup-env logs to .venv/pip.log)")
