"""Every stored value of the open store, independent of row ids and timestamps.

Two stores made by the same work in a different order (a Dask cluster finishes
frames in another order than the local pool; a resumed campaign) give rows
with other ids and times; the snapshot names each row by what it is (a source
by name, a frame by night and file name, a master by file name) and keeps every
other value, so equal snapshots mean every stored value is equal.
"""

from __future__ import annotations

import math

import peewee as pw

from iopreport.store.models import (
    ALL_MODELS,
    AstroSource,
    Epoch,
    Heartbeat,
    MasterBias,
    MasterDark,
    MasterFlat,
    PhotoPolResult,
    RawFit,
    ReducedFit,
    RunLog,
    SentSummary,
)

#: Fields that name a row of a table other rows point at.
NATURAL = {
    AstroSource: ("name",),
    Epoch: ("telescope", "night"),
    RawFit: ("epoch", "filename"),
    ReducedFit: ("rawfit",),
    MasterBias: ("filename",),
    MasterDark: ("filename",),
    MasterFlat: ("filename",),
    PhotoPolResult: ("astrosource", "members_key", "method"),
}
#: Columns that depend on where and when the project's files were written: the hash of a
#: reduced frame's inputs includes the masters' absolute paths and modification times; a
#: raw file's stamp, its times and inode.
PLACE_AND_TIME = ("inputs_key", "file_stamp")
#: Tables of what ran when, not of results.
SKIPPED = (RunLog, SentSummary, Heartbeat)


def _value(value):
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def snapshot(rounding: int | None = None) -> dict[str, list[tuple]]:
    """Rows of every result table of the open store, sorted, ids resolved to names."""
    cache: dict[tuple, tuple] = {}

    def natural(model, row_id):
        if row_id is None:
            return None
        key = (model, row_id)
        if key not in cache:
            row = model.get_by_id(row_id)
            cache[key] = tuple(resolve(model, row, name) for name in NATURAL[model])
        return cache[key]

    def resolve(model, row, name):
        field = model._meta.fields[name]
        raw = row.__data__.get(name)
        if isinstance(field, pw.ForeignKeyField):
            return natural(field.rel_model, raw)
        value = _value(raw)
        if rounding is not None and isinstance(value, float):
            value = round(value, rounding)
        return str(value) if hasattr(value, "isoformat") else value

    found = {}
    for model in ALL_MODELS:
        if model in SKIPPED:
            continue
        names = [
            f.name
            for f in model._meta.sorted_fields
            if not isinstance(f, (pw.AutoField, pw.DateTimeField)) and f.name not in PLACE_AND_TIME
        ]
        rows = [tuple(resolve(model, row, n) for n in names) for row in model.select()]
        found[model._meta.table_name] = sorted(rows, key=repr)
    return found


def differences(one: dict, other: dict, limit: int = 5) -> list[str]:
    """Where two snapshots differ (empty when equal)."""
    found = []
    for table in sorted((set(one) | set(other)) - {"pages"}):
        a, b = one.get(table, []), other.get(table, [])
        if a == b:
            continue
        only_a = [r for r in a if r not in b][:limit]
        only_b = [r for r in b if r not in a][:limit]
        columns = [
            f"column {i}: {x!r} vs {y!r}"
            for ra, rb in zip(only_a, only_b, strict=False)
            for i, (x, y) in enumerate(zip(ra, rb, strict=True))
            if x != y
        ]
        found.append(f"{table}: {len(a)} vs {len(b)} rows; differing {columns[:limit]}")
    return found
