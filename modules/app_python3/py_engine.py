"""The Python KEMI engine (Kamailio app_python3's model): the script defines mod_init()
returning an object whose methods ksr_request_route(self, msg) etc. are the routes; `import
KSR` gives the KSR API generated from the export tables.

Runs in: every routing process (the script is executed per process in child_init, never
before fork), the ctl process (reload checks) and the master (modparam: compile only).
The `msg` argument handed to the methods is the RouteCtx (ctx.msg is the SIP message).
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

from sipcore.kemi.engine import KemiEngine, ScriptLoadError
from sipcore.kemi.registry import KsrTree
from sipcore.route.ctx import RouteCtx, ScriptExit


def check_syntax(path: str) -> None:
    """Compile (do not run) the script at PATH; raise ScriptLoadError/OSError on problems."""
    with open(path, encoding="utf-8") as fh:
        src = fh.read()
    try:
        compile(src, path, "exec")
    except SyntaxError as e:
        raise ScriptLoadError(f"{path}:{e.lineno}: {e.msg}") from None


def ksr_module(tree: KsrTree) -> types.ModuleType:
    """The `KSR` module object: core functions as attributes, KSR.pv/hdr/x and one
    submodule per loaded module; registered in sys.modules ("KSR", "KSR.sl", ...)."""
    ksr = types.ModuleType("KSR", "PyKam KEMI API (generated from the export tables).")
    ksr.__path__ = []  # a package, so `import KSR.pv` works too
    for name, fn in tree.core.items():
        setattr(ksr, name, fn)
    groups = {"pv": tree.pv, "hdr": tree.hdr, "x": tree.x, **tree.modules}
    for gname, funcs in groups.items():
        sub = types.ModuleType(f"KSR.{gname}")
        for name, fn in funcs.items():
            setattr(sub, name, fn)
        setattr(ksr, gname, sub)
        sys.modules[f"KSR.{gname}"] = sub
    sys.modules["KSR"] = ksr
    return ksr


@dataclass
class PyState:
    obj: Any
    namespace: dict[str, Any]
    methods: dict[str, Any] = field(default_factory=dict)


class PythonEngine(KemiEngine):
    lang = "Python"
    module = "app_python3"

    def __init__(self, cfg: Any, paths: list[str], mod_init_function: str = "mod_init",
                 child_init_method: str = "child_init", shm: Any = None) -> None:
        super().__init__(cfg, paths, shm)
        self.mod_init_function = mod_init_function
        self.child_init_method = child_init_method
        self._loads = 0

    def new_state(self, sources: list[str] | None = None) -> PyState:
        assert self.tree is not None
        ksr_module(self.tree)
        path = self.paths[0]
        src = (sources or self.read_sources())[0]
        self._loads += 1
        ns: dict[str, Any] = {"__name__": f"pykam_kemi_{self._loads}", "__file__": path,
                              "__builtins__": __builtins__}
        try:
            exec(compile(src, path, "exec"), ns)  # noqa: S102 - the operator's routing script
            init = ns.get(self.mod_init_function)
            if not callable(init):
                raise ScriptLoadError(f"{path}: no function {self.mod_init_function}()")
            obj = init()
            if obj is None:
                raise ScriptLoadError(f"{path}: {self.mod_init_function}() returned None")
            cinit = getattr(obj, self.child_init_method, None)
            if callable(cinit):
                rc = cinit(self.rank)
                if isinstance(rc, int) and rc < 0:
                    raise ScriptLoadError(f"{path}: {self.child_init_method}() returned {rc}")
        except ScriptLoadError:
            raise
        except SyntaxError as e:
            raise ScriptLoadError(f"{path}:{e.lineno}: {e.msg}") from None
        except BaseException as e:  # noqa: BLE001 - any failure of the script refuses it
            raise ScriptLoadError(self._where(e) + f"{type(e).__name__}: {e}") from None
        if not callable(getattr(obj, "ksr_request_route", None)):
            raise ScriptLoadError(f"{path}: the object from {self.mod_init_function}() has no "
                                  "ksr_request_route(self, msg) method")
        return PyState(obj, ns)

    def has_function(self, name: str) -> bool:
        st = self.state
        if name in st.methods:
            return st.methods[name] is not None
        m = getattr(st.obj, name, None)
        st.methods[name] = m if callable(m) else None
        return st.methods[name] is not None

    def invoke(self, name: str, ctx: RouteCtx, args: tuple[Any, ...]) -> int:
        try:
            m = self.state.methods.get(name)
            if m is None:
                self.has_function(name)
                m = self.state.methods[name]
            return m(ctx, *args)
        except SystemExit:            # sys.exit() in a route: Kamailio treats it as exit
            raise ScriptExit() from None

    def _where(self, exc: BaseException) -> str:
        tb = exc.__traceback__
        where = ""
        while tb is not None:
            if tb.tb_frame.f_code.co_filename in self.paths:
                where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}: "
            tb = tb.tb_next
        return where

    def describe_error(self, exc: BaseException) -> str:
        return self._where(exc) + f"{type(exc).__name__}: {exc}"
