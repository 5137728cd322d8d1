"""pytest plugin (loaded by tests/conftest.py): at the end of a run, the skipped tests grouped by
what was missing, one line per group, e.g.

    skipped groups: postgresql (14 tests): PostgreSQL not reachable at postgres://...: ...

A skip reason "GROUP: detail" (tests/services.py) counts in GROUP; any other reason is listed
under "ungrouped" with its text, so no skip goes unexplained. Without skips it prints
"skipped groups: none".

Runs in: pytest only.
"""
from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.services import GROUPS

MAX_DETAILS = 3                         # distinct reasons shown per group


def skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    """The reason text of a skipped report ("Skipped: " removed)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr)
    return text.removeprefix("Skipped: ").strip()


def group_of(reason: str) -> tuple[str, str]:
    """(group, detail) of a skip reason; ("ungrouped", reason) if it names no known group."""
    head, sep, rest = reason.partition(": ")
    if sep and head in GROUPS:
        return head, rest
    return "ungrouped", reason


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def summarize(reports: list) -> list[str]:
    """One line per skip group, the most skipped first: "group (N tests): detail; detail".
    A module skipped whole at collection counts as a module (its tests were never collected)."""
    groups: dict[str, dict[str, int]] = {}
    counts: dict[str, list[int]] = {}
    for rep in reports:
        group, detail = group_of(skip_reason(rep))
        details = groups.setdefault(group, {})
        details[detail] = details.get(detail, 0) + 1
        counts.setdefault(group, [0, 0])[isinstance(rep, pytest.CollectReport)] += 1
    lines = []
    for group, details in sorted(groups.items(), key=lambda g: (-sum(g[1].values()), g[0])):
        n_tests, n_modules = counts[group]
        what = ", ".join([_count(n_tests, "test")] * bool(n_tests)
                         + [_count(n_modules, "module")] * bool(n_modules))
        shown = sorted(details, key=lambda d: -details[d])[:MAX_DETAILS]
        more = len(details) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more (pytest -rs lists them)" if more else "")
        lines.append(f"{group} ({what}): {text}")
    return lines


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: after the -r summaries
def pytest_terminal_summary(terminalreporter) -> Generator[None, None, None]:
    yield
    if terminalreporter.config.option.collectonly:
        return
    lines = summarize(terminalreporter.stats.get("skipped", []))
    if not lines:
        terminalreporter.write_line("skipped groups: none")
        return
    terminalreporter.write_line("skipped groups:")
    for line in lines:
        terminalreporter.write_line(f"  {line}")
