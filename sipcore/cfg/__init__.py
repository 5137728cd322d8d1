"""The kamailio.cfg language: preprocessor -> lexer -> parser -> checker -> compiled routes.

Runs in: the master (and `pykam -c`), once at startup; workers inherit the CompiledConfig.

    from sipcore.cfg import load_config, compile_text
    cfg = load_config("/etc/pykam/pykam.cfg", defines={"WITH_AUTH": None})
    cfg.run("request", None, ctx)

Both entry points raise sipcore.errors.ConfigErrors listing every problem found, each with
file:line:col.
"""
from __future__ import annotations

import os
from typing import Any, Optional

from sipcore.cfg.ast import Config
from sipcore.cfg.compiler import CompiledConfig, Compiler, raise_errors
from sipcore.cfg.lexer import Lexer
from sipcore.cfg.parser import Parser
from sipcore.cfg.pos import Pos
from sipcore.cfg.preproc import Preprocessor
from sipcore.errors import ConfigError, ConfigErrors

__all__ = ["load_config", "compile_text", "CompiledConfig", "parse_text"]


def _preprocessor(defines: Optional[dict[str, Optional[str]]]) -> Preprocessor:
    pp = Preprocessor()
    for name, value in (defines or {}).items():
        pp.define(name, value)
    return pp


def parse_text(text: str, filename: str = "<string>",
               defines: Optional[dict[str, Optional[str]]] = None
               ) -> tuple[Config, list[ConfigError], Preprocessor]:
    """Preprocess, lex and parse only: (ast.Config, errors, preprocessor)."""
    pp = _preprocessor(defines)
    lexer = Lexer(text, filename, pp)
    tokens = lexer.tokens()
    parser = Parser(tokens)
    cfg = parser.parse()
    return cfg, list(pp.errors) + parser.errors, pp


def compile_text(text: str, filename: str = "<string>",
                 defines: Optional[dict[str, Optional[str]]] = None,
                 modules: Any = None) -> CompiledConfig:
    """Check and compile configuration TEXT (FILENAME is used for positions and includes).

    `modules`: a ModuleRegistry to load into (a fresh one by default)."""
    cfg, errors, pp = parse_text(text, filename, defines)
    if modules is None:
        from sipcore.core.funcs import core_module
        from sipcore.mod.loader import ModuleRegistry

        modules = ModuleRegistry(core_module)
    compiler = Compiler(cfg, modules, errors, pp.defines)
    try:
        return compiler.compile()
    except ConfigErrors:
        raise
    except ConfigError as e:  # pragma: no cover - defensive: every error is collected
        raise_errors(errors + [e])
        raise


def load_config(path: str, defines: Optional[dict[str, Optional[str]]] = None,
                modules: Any = None) -> CompiledConfig:
    """Read, check and compile the configuration file PATH."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        raise ConfigErrors([ConfigError(f"cannot read configuration file: {e.strerror or e}",
                                        Pos(path, 1, 1))]) from None
    return compile_text(text, os.path.abspath(path) if not os.path.isabs(path) else path,
                        defines, modules)
