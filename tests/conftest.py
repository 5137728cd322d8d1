"""Fixtures and hooks for the whole suite: the skip summary (tests/skipsummary.py) prints, at
the end of every run, which groups of tests were skipped and what was missing."""
from tests.skipsummary import pytest_terminal_summary  # noqa: F401  (a pytest hook)
