"""Paths of the repository and of the test data in it (tests/data/, see its README.md).

Tests and tools read their data through these names only, so a clone of the repository alone
has everything the suite needs.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"

# RFC 4475 / RFC 5118 torture messages: manifest.json lists each message (file, class, sha256)
TORTURE = DATA / "torture"
TORTURE_MANIFEST = TORTURE / "manifest.json"

# Kamailio 5.6's stock etc/kamailio.cfg, unmodified
STOCK_CFG = DATA / "compat" / "kamailio-5.6-default.cfg"
