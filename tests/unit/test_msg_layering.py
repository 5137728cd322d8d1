"""sipcore.msg imports only the stdlib, sipcore.errors and its own extension (STYLE 3.2), and
loads no I/O machinery. Checked in a fresh interpreter. Runs in: pytest only."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

PROBE = """
import json, sys
before = set(sys.modules)
import sipcore.msg
new = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('sipcore', 'modules'))
print(json.dumps(new))
print(json.dumps(sorted(m for m in ('socket', 'posix_ipc', 'sqlalchemy', 'lupa', 'click')
                        if m in sys.modules)))
"""


def test_msg_imports_only_errors_and_itself() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    ours = json.loads(out[0])
    allowed = {"sipcore", "sipcore.errors"}
    assert [m for m in ours if m not in allowed and not m.startswith(("sipcore.msg", "sipcore._csipparse"))] == []
    assert json.loads(out[1]) == []
