"""Every module declaration is consistent, and its doc page stays true to it."""
import inspect
from pathlib import Path

import pytest

from sipcore.mod import Module
from sipcore.mod.loader import available_modules, import_module_decl

DOCS = Path(__file__).resolve().parents[2] / "docs" / "modules"
MODULES = available_modules()


@pytest.mark.parametrize("name", MODULES)
def test_declaration_is_consistent(name):
    mod = import_module_decl(name)
    assert isinstance(mod, Module) and mod.name == name
    for fname, overloads in mod.functions.items():
        for fe in overloads:
            sig = inspect.signature(fe.impl)
            params = list(sig.parameters.values())
            variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
            required = [p for p in params if p.default is p.empty
                        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            positional = [p for p in params
                          if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            # impl(ctx, *args): ctx plus one parameter per declared cfg argument
            assert variadic or len(required) <= 1 + len(fe.args) <= len(positional), \
                f"{name}.{fname}/{len(fe.args)}: impl signature {sig}"
    for pname, pe in mod.params.items():
        assert pe.type in (int, str), f"{name}: param {pname} has type {pe.type}"


@pytest.mark.parametrize("name", MODULES)
def test_doc_page_names_every_export(name):
    mod = import_module_decl(name)
    page = DOCS / f"{name}.md"
    assert page.exists(), f"docs/modules/{name}.md is missing"
    text = page.read_text()
    missing = [n for n in [*mod.functions, *mod.params, *mod.rpcs] if n not in text]
    assert not missing, f"docs/modules/{name}.md does not mention {missing}"
