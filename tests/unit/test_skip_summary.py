"""The skip summary at the end of a run (tests/skipsummary.py): every skipped group is named with
its count and what was missing, and every skip of the suite goes through tests/services.py.

The runs here are separate pytest processes, on small generated test files or on the suite's
own database and SIPp tests with those services made unreachable (database URLs at a closed
port, a PATH without sipp).
Runs in: pytest only.
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT
from tests.services import GROUPS


def _pytest(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def _groups(out: str) -> dict[str, str]:
    """{group: "(counts): reasons"} from the lines under "skipped groups:"."""
    lines = out.splitlines()
    start = lines.index("skipped groups:")
    found = {}
    for line in lines[start + 1:]:
        m = re.match(r"  (\S+) (\(.*)$", line)
        if m is None:
            break
        found[m.group(1)] = m.group(2)
    return found


def test_every_group_named_with_count_and_reason(tmp_path: Path) -> None:
    body = ["import pytest", "from tests.services import skip", ""]
    for i, group in enumerate(GROUPS):
        for j in range(i % 3 + 1):                     # 1, 2 or 3 tests per group
            body += [f"def test_{i}_{j}():", f"    skip({group!r}, 'no {group} here')", ""]
    body += ["def test_ungrouped():", "    pytest.skip('some other reason')", "",
             "def test_passes():", "    assert True", ""]
    (tmp_path / "test_many.py").write_text("\n".join(body))
    (tmp_path / "test_whole_module.py").write_text(
        "from tests.services import skip\nskip('sipp', 'no sipp here', module=True)\n"
        "def test_never_collected():\n    pass\n")
    (tmp_path / "conftest.py").write_text("from tests.skipsummary import pytest_terminal_summary"
                                          "  # noqa: F401\n")
    run = _pytest(["-rs"], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    found = _groups(run.stdout)
    for i, group in enumerate(GROUPS):
        n = i % 3 + 1
        counts = f"{n} test{'s' if n > 1 else ''}" + (", 1 module" if group == "sipp" else "")
        assert found[group] == f"({counts}): no {group} here", run.stdout
    assert found["ungrouped"] == "(1 test): some other reason"
    assert set(found) == set(GROUPS) | {"ungrouped"}
    # printed last, after pytest's own -rs lines, right above the totals
    tail = run.stdout.rstrip().splitlines()
    assert tail[-1].startswith("1 passed, ") and tail[-2].startswith("  ")


def test_no_skips_says_none(tmp_path: Path) -> None:
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    (tmp_path / "conftest.py").write_text("from tests.skipsummary import pytest_terminal_summary"
                                          "  # noqa: F401\n")
    run = _pytest([], tmp_path)
    assert run.returncode == 0 and "skipped groups: none" in run.stdout, run.stdout


def test_suite_without_databases_and_sipp_names_those_groups(tmp_path: Path) -> None:
    """The suite's own tests, with PostgreSQL and MariaDB at a closed port and no sipp on PATH:
    they skip, and the summary names postgresql, mariadb and sipp with the address tried."""
    empty = tmp_path / "bin"
    empty.mkdir()
    run = _pytest(["tests/unit/test_db_engine.py", "tests/integration/test_sipp.py",
                   "-k", "reconnects or sipp"], ROOT, PATH=str(empty),
                  PYKAM_TEST_POSTGRES="postgres://postgres@127.0.0.1:1/test",
                  PYKAM_TEST_MYSQL="mysql://root:@127.0.0.1:1/test")
    assert run.returncode == 0, run.stdout + run.stderr
    found = _groups(run.stdout)
    assert set(found) == {"postgresql", "mariadb", "sipp"}, run.stdout
    assert found["postgresql"].startswith("(1 test): PostgreSQL not reachable at ")
    assert "127.0.0.1:1/test (set PYKAM_TEST_POSTGRES)" in found["postgresql"]
    assert found["mariadb"].startswith("(1 test): MariaDB/MySQL not reachable at ")
    assert "127.0.0.1:1/test (set PYKAM_TEST_MYSQL)" in found["mariadb"]
    assert re.match(r"\(\d+ tests\): sipp not on PATH", found["sipp"])


def test_every_skip_goes_through_services() -> None:
    """No test skips with a reason of its own (it would land in "ungrouped"): pytest.skip,
    importorskip and mark.skip are called only in tests/services.py, and every mark.skipif
    takes its reason from there."""
    own = {ROOT / "tests" / "services.py", Path(__file__).resolve()}
    bad = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path in own:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name in ("skip", "importorskip") and ast.unparse(node.func.value) == "pytest":
                bad.append(f"{where}: pytest.{name}")
            elif name in ("skip", "skipif") and ast.unparse(node.func.value) == "pytest.mark":
                why = next((k.value for k in node.keywords if k.arg == "reason"), None)
                if name == "skip" or not isinstance(why, ast.Name):
                    bad.append(f"{where}: pytest.mark.{name} without a tests.services reason")
    assert not bad, bad
