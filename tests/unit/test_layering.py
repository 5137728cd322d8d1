"""The dependency direction of the code (../STYLE section 3.2, issue 13 item 7).

Rules, checked statically over every file (imports that run, i.e. not under
`if TYPE_CHECKING:`; function-level imports count) and dynamically in a fresh interpreter:

1. No package-level import cycle inside sipcore/: the packages (sipcore.msg, sipcore.net,
   sipcore.route, ...; a top-level module such as sipcore.forward counts as one) form a DAG.
2. Nothing under sipcore/ imports modules/, except the loader (sipcore/mod/loader.py), by
   name, from loadmodule.
3. A module (modules/X) imports no other module's code: modules talk through bind_api().
4. Nobody imports a private name (`_name`) of another package, nor reads one as an attribute of
   a module imported from another package.
5. Modules import no process-global room of the core (the server's start-up, the prefork
   master, the transports' loops, the test harness): they get what they need from the
   ModContext they are handed. Importing every module package in a fresh interpreter pulls
   none of them in.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: the core's rooms that start and run the server (its process-wide state: the running
#: config, the node, shm, the process table, the control server, the receive loops) and the
#: test harness; modules get what they need of these through their ModContext
PROCESS_GLOBAL = ("sipcore.runtime", "sipcore.cli", "sipcore.proc.master",
                  "sipcore.proc.table", "sipcore.proc.preload", "sipcore.testing",
                  "sipcore.receive", "sipcore.rpc.server", "sipcore.net.tcp_worker")


def _files() -> list[Path]:
    return sorted(p for d in ("sipcore", "modules") for p in (ROOT / d).rglob("*.py")
                  if ".venv" not in p.parts)


def _modname(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(mod: str) -> str:
    """The unit of the layering rules: sipcore.<sub> or modules.<name>."""
    parts = mod.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (type-only imports do not run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        yield node
        yield from _runtime_nodes(node)


class _Imports:
    """(target module, imported names, line) of each runtime import of one file, plus the
    names bound to imported modules (for the private-attribute rule)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mod = _modname(path)
        self.is_pkg = path.name == "__init__.py"
        self.edges: list[tuple[str, list[str], int]] = []
        self.module_aliases: dict[str, str] = {}
        tree = ast.parse(path.read_text(), str(path))
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.edges.append((a.name, [], node.lineno))
                    self.module_aliases[a.asname or a.name.split(".")[0]] = \
                        a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                target = self._absolute(node)
                names = [a.name for a in node.names]
                self.edges.append((target, names, node.lineno))
                for a in node.names:
                    # `from sipcore import log as klog`: klog names a module
                    self.module_aliases[a.asname or a.name] = f"{target}.{a.name}"
        self.tree = tree

    def _absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = self.mod.split(".")
        if not self.is_pkg:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))


@pytest.fixture(scope="module")
def imports() -> list[_Imports]:
    return [_Imports(p) for p in _files()]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_package_cycle_in_sipcore(imports):
    edges: dict[str, set[str]] = {}
    for f in imports:
        src = _package(f.mod)
        if not src.startswith("sipcore"):
            continue
        for target, names, _line in f.edges:
            targets = [target]
            if target == "sipcore":         # `from sipcore import stats, timer`
                targets = [f"sipcore.{n}" for n in names]
            for t in targets:
                dst = _package(t)
                path = ROOT / dst.replace(".", "/")
                if dst.startswith("sipcore.") and dst != src and \
                        (path.is_dir() or path.with_suffix(".py").exists()):
                    edges.setdefault(src, set()).add(dst)
    # Tarjan: every strongly connected component must be a single package
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    detail = [(a, b, f.mod) for f in imports for c in cycles for a in c for b in c
              if _package(f.mod) == a and any(_package(t) == b for t, _n, _l in f.edges)]
    assert not cycles, f"package-level import cycles in sipcore: {cycles}; edges: {detail}"


def test_sipcore_imports_modules_only_in_the_loader(imports):
    bad = [(f.mod, t, line) for f in imports if f.mod.startswith("sipcore")
           for t, _n, line in f.edges if t == "modules" or t.startswith("modules.")]
    allowed = [b for b in bad if b[0] == "sipcore.mod.loader"]
    assert bad == allowed, f"sipcore imports modules/ outside the loader: {bad}"


def test_modules_import_no_other_module(imports):
    bad = []
    for f in imports:
        if not f.mod.startswith("modules."):
            continue
        own = _package(f.mod)
        for t, names, line in f.edges:
            if t == "modules":
                targets = [f"modules.{n}" for n in names]
            else:
                targets = [t]
            for tt in targets:
                if tt.startswith("modules.") and _package(tt) != own:
                    bad.append(f"{f.path.relative_to(ROOT)}:{line}: imports {tt}")
    assert not bad, "modules talk through bind_api(), not imports:\n" + "\n".join(bad)


def test_no_private_name_of_another_package(imports):
    bad = []
    for f in imports:
        own = _package(f.mod)
        for t, names, line in f.edges:
            if not (t.startswith("sipcore") or t.startswith("modules")):
                continue
            if _package(t) == own:
                continue
            for n in names:
                if _is_private(n):
                    bad.append(f"{f.path.relative_to(ROOT)}:{line}: from {t} import {n}")
        # attribute reads of another package's privates through an imported module name
        for node in _runtime_nodes(f.tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    _is_private(node.attr):
                target = f.module_aliases.get(node.value.id)
                if target and (target.startswith("sipcore") or target.startswith("modules")) \
                        and _package(target) != own:
                    bad.append(f"{f.path.relative_to(ROOT)}:{node.lineno}: "
                               f"{node.value.id}.{node.attr} ({target})")
    assert not bad, "private names of another package:\n" + "\n".join(bad)


def test_modules_import_no_process_global(imports):
    bad = []
    for f in imports:
        if not f.mod.startswith("modules."):
            continue
        for t, names, line in f.edges:
            full = [t] + [f"{t}.{n}" for n in names]
            for name in full:
                if any(name == g or name.startswith(g + ".") for g in PROCESS_GLOBAL):
                    bad.append(f"{f.path.relative_to(ROOT)}:{line}: {name}")
                    break
    assert not bad, "modules reach process-global core rooms:\n" + "\n".join(bad)


def test_importing_every_module_pulls_in_no_process_global():
    """In a fresh interpreter: import every module package (as loadmodule would), then none
    of the process-global rooms may be loaded."""
    code = (
        "import json, sys\n"
        "from sipcore.mod.loader import available_modules, import_module_decl\n"
        "for name in available_modules():\n"
        "    import_module_decl(name)\n"
        f"globals_ = {PROCESS_GLOBAL!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "                        if any(m == g or m.startswith(g + '.') for g in globals_))))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing the modules loaded process-global rooms: {loaded}"


def test_the_rules_catch_a_violation(tmp_path):
    """The checks are not vacuous: a file breaking each rule is reported."""
    sample = tmp_path / "modules" / "demo" / "__init__.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("from modules.tm.t_fwd import t_relay\n"
                      "from sipcore.msg.msg import _cscan\n"
                      "from sipcore.proc.master import Master\n")
    global ROOT
    saved = ROOT
    ROOT = tmp_path
    try:
        f = _Imports(sample)
        assert f.mod == "modules.demo"
        with pytest.raises(AssertionError, match="bind_api"):
            test_modules_import_no_other_module([f])
        with pytest.raises(AssertionError, match="_cscan"):
            test_no_private_name_of_another_package([f])
        with pytest.raises(AssertionError, match="sipcore.proc.master"):
            test_modules_import_no_process_global([f])
        for a, b in (("alpha", "beta"), ("beta", "alpha")):      # a package-level cycle
            pkg = tmp_path / "sipcore" / a
            pkg.mkdir(parents=True)
            (pkg / "__init__.py").write_text(f"from sipcore.{b} import thing\n")
        files = [_Imports(tmp_path / "sipcore" / n / "__init__.py") for n in ("alpha", "beta")]
        with pytest.raises(AssertionError, match="cycles"):
            test_no_package_cycle_in_sipcore(files)
    finally:
        ROOT = saved
