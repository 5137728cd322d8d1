"""htable table definitions: `modparam("htable", "htable", "name=>size=8;autoexpire=300;")`.

Runs in: the master, at modparam time (pure parsing, no shared state).
"""
from __future__ import annotations

from dataclasses import dataclass, field

_INT_ATTRS = ("size", "autoexpire", "updateexpire", "initval", "dbmode", "dmqreplicate")


@dataclass(frozen=True)
class TableSpec:
    """One table definition with Kamailio's defaults (ht_api.c ht_table_spec)."""

    name: str
    size: int = 4                       # slots = 2**size, clamped into 3..14 like Kamailio
    autoexpire: int = 0                 # seconds; 0 = items never expire on their own
    updateexpire: int = 1               # 1: an update restarts the expiry
    initval: int | None = None       # returned by $sht for a missing key instead of $null
    dbtable: str = ""
    cols: tuple[str, ...] = field(default=())
    dbmode: int = 0                     # 1: write the table back to dbtable at shutdown
    dmqreplicate: int = 0

    @property
    def slots(self) -> int:
        return 1 << min(14, max(3, self.size))


def parse_table_spec(text: str) -> TableSpec:
    """`"name=>size=4;autoexpire=7200;dbtable=htable_a;"` -> TableSpec; ValueError on bad input."""
    name, sep, attrs = text.partition("=>")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"invalid htable definition \"{text}\" (expected name=>attrs)")
    if not all(c.isalnum() or c in "_-." for c in name):
        raise ValueError(f"invalid htable name \"{name}\"")
    kw: dict[str, object] = {}
    for part in attrs.split(";"):
        part = part.strip()
        if not part:
            continue
        key, eq, val = part.partition("=")
        key, val = key.strip(), val.strip()
        if not eq:
            raise ValueError(f"htable {name}: attribute \"{part}\" has no value")
        if key in _INT_ATTRS:
            try:
                kw[key] = int(val, 0)
            except ValueError:
                raise ValueError(f"htable {name}: {key} expects an integer, got \"{val}\"") \
                    from None
        elif key == "dbtable":
            kw[key] = val
        elif key == "cols":
            cols = tuple(c.strip() for c in val.strip("'\"").split(",") if c.strip())
            if len(cols) < 2:
                raise ValueError(f"htable {name}: cols needs a key column and at least one "
                                 f"value column")
            kw[key] = cols
        else:
            raise ValueError(f"htable {name}: unknown attribute \"{key}\"")
    size = int(kw.get("size", 4))  # type: ignore[arg-type]
    if not 2 <= size <= 31:
        raise ValueError(f"htable {name}: size {size} out of range 2..31")
    if int(kw.get("autoexpire", 0)) < 0:  # type: ignore[arg-type]
        raise ValueError(f"htable {name}: negative autoexpire")
    return TableSpec(name=name, **kw)  # type: ignore[arg-type]
