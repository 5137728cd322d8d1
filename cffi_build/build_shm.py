"""cffi builder (API mode) for sipcore._cshm, the shared-memory library in csrc/shm_*.c.

Runs in: the build only (setup.py `cffi_modules=[..., "cffi_build/build_shm.py:ffibuilder"]`,
or `python3 cffi_build/build_shm.py` to compile in place into sipcore/ for development).
Never imported at runtime; only sipcore/shm/_ffi.py imports the built extension.

What is compiled: the arena allocator (shm_arena.c), robust process-shared mutexes
(shm_lock.c), the generic hash table (shm_htable.c), the statistics counters
(shm_counters.c) and the record ring of the timer queue (shm_ring.c). The cdef is
cdefs/shm.h; constants there are `...` so their values come from the C headers.

Switches (environment):
  PYKAM_CFLAGS     extra compiler flags, split on spaces (default "-O2"),
                   e.g. "-O0 -g -fsanitize=address"
  PYKAM_DEBUG_SHM  if set (non-empty, not "0"), compile with -DPYKAM_DEBUG_SHM -O0 -g
"""
from __future__ import annotations

import glob
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_SOURCES = ["shm_arena.c", "shm_lock.c", "shm_htable.c", "shm_counters.c", "shm_ring.c"]
_HEADERS = ["shm_api.h", "shm_common.h", "shm_arena.h", "shm_lock.h", "shm_htable.h",
            "shm_counters.h", "shm_ring.h"]


def _cflags() -> list[str]:
    flags = os.environ.get("PYKAM_CFLAGS", "-O2").split()
    if os.environ.get("PYKAM_DEBUG_SHM", "0") not in ("", "0"):
        flags += ["-DPYKAM_DEBUG_SHM", "-O0", "-g"]
    return flags + ["-std=gnu11"]


def make_builder(prefix: str = "") -> FFI:
    """The FFI builder. Paths are relative to the project root (setup.py runs there); the
    development build passes the absolute root as prefix because cffi compiles in a tmpdir."""
    builder = FFI()
    with open(os.path.join(HERE, "cdefs", "shm.h"), encoding="utf-8") as f:
        builder.cdef(f.read())
    csrc = prefix + "cffi_build/csrc/"
    builder.set_source(
        "sipcore._cshm",
        '#include "shm_api.h"',
        sources=[csrc + s for s in _SOURCES],
        include_dirs=[prefix + "cffi_build/csrc"],
        depends=[csrc + h for h in _HEADERS],
        libraries=["pthread"],
        extra_compile_args=_cflags(),
    )
    return builder


ffibuilder = make_builder()

if __name__ == "__main__":
    # development build: compile in place so `import sipcore._cshm` works from the checkout
    import shutil

    os.chdir(ROOT)
    sys.path.insert(0, ROOT)
    built = make_builder(ROOT + os.sep).compile(tmpdir=os.path.join(ROOT, "build", "cffi"),
                                                verbose=True)
    dest = os.path.join("sipcore", os.path.basename(built))
    # an older build under another ABI tag (e.g. _cshm.abi3.so from `pip install -e .`)
    # would be imported instead of, or beside, this one: remove it
    for old in glob.glob(os.path.join("sipcore", "_cshm.*")):
        if old.endswith((".so", ".pyd")) and os.path.basename(old) != os.path.basename(built):
            os.remove(old)
            print("removed stale", old)
    shutil.copy2(built, dest)
    print("installed", dest)
