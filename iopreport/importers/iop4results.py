"""IOP4's results as ``imported_result`` rows (method ``iop4-import``).

Kept apart from iopreport's own results by being in their own table: no
nightly mean, alert, night summary, recomputation or flag reads them. A
result is identified by its source, member files and mode; importing it again
with the same values changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from iopreport.catalog import Catalog
from iopreport.importers.iop4db import RESULT_VALUES, Iop4Database, Iop4Result
from iopreport.importers.report import ImportReport

#: ``ImportedResult.method`` of IOP4's results.
METHOD = "iop4-import"
#: Rows per INSERT (38 columns each, below SQLite's 32,766 bound variables).
INSERT_BATCH = 500


def result_row(result: Iop4Result) -> dict[str, Any]:
    """``ImportedResult`` columns of an IOP4 result (without its source)."""
    from iopreport.store.models import PhotoPolResult

    row = {
        "method": METHOD,
        "origin_id": result.id,
        "members_key": PhotoPolResult.make_members_key(result.files),
        "telescope": result.telescope,
        "night": result.night,
        "mode": result.mode,
        "reduction": result.reduction,
        "instrument": result.instrument,
        "band": result.band,
        "exptime": result.exptime,
        "juliandate": result.juliandate,
        "juliandate_min": result.juliandate_min,
        "juliandate_max": result.juliandate_max,
        "n_frames": len(result.files),
        "flags": result.flags,
    }
    for column, name in RESULT_VALUES.items():
        row[name] = result.values[column]
    return row


def _existing_results() -> dict[tuple[str, str, str], dict[str, Any]]:
    from iopreport.store.models import AstroSource, ImportedResult

    rows = (
        ImportedResult.select(ImportedResult, AstroSource.name.alias("source_name"))
        .join(AstroSource)
        .where(ImportedResult.method == METHOD)
        .dicts()
    )
    return {(r["source_name"].casefold(), r["members_key"], r["mode"]): r for r in rows}


def _same(row: dict[str, Any], current: dict[str, Any]) -> bool:
    for key, value in row.items():
        have = current.get(key)
        if isinstance(value, dt.date) and not isinstance(have, dt.date):
            have = dt.date.fromisoformat(str(have)[:10]) if have else None
        if have != value:
            return False
    return True


def plan_results(
    db: Iop4Database,
    names: dict[int, str],
    catalog: Catalog,
    report: ImportReport,
    *,
    update: bool,
    store: bool,
) -> list[tuple[str, dict[str, Any], int | None]]:
    """Rows to write: (source name, columns, id of the row to overwrite or None).

    Sources are compared by their main name in the merged ``catalog`` (a name
    found under ``other_names`` is the same source: the store renames its row).
    """
    main = {n.casefold(): entry.name for entry in catalog.sources for n in entry.all_names}

    def canonical(name: str) -> str:
        return main.get(name.casefold(), name)

    current = {}
    if store:
        for (name, members_key, mode), row in _existing_results().items():
            current[(canonical(name).casefold(), members_key, mode)] = row
    seen: dict[tuple[str, str, str], int] = {}
    todo = []
    for note in db.skipped_results:
        report.notes.append(note + "; not imported")
        report.count("results", "incomplete")
    for result in db.results:
        if result.source_id not in names:
            report.conflicts.append(f"IOP4 result {result.id}: its source was not imported")
            report.count("results", "conflicts")
            continue
        name = canonical(names[result.source_id])
        row = result_row(result)
        key = (name.casefold(), row["members_key"], row["mode"])
        if key in seen:
            report.conflicts.append(
                f"IOP4 result {result.id}: same source, files and mode as IOP4 result "
                f"{seen[key]}; not imported"
            )
            report.count("results", "conflicts")
            continue
        seen[key] = result.id
        have = current.get(key)
        if have is None:
            todo.append((name, row, None))
            report.count("results", "new")
        elif _same(row, have):
            report.count("results", "unchanged")
        elif update:
            todo.append((name, row, have["id"]))
            report.count("results", "updated")
        else:
            report.conflicts.append(
                f"IOP4 result {result.id} ({name}, {result.night}): imported before with other "
                "values; kept (--update overwrites it)"
            )
            report.count("results", "conflicts")
    return todo


def write_results(todo: list[tuple[str, dict[str, Any], int | None]]) -> None:
    """Insert or overwrite imported results, in one transaction."""
    from iopreport.store.models import AstroSource, ImportedResult, database_proxy, utcnow

    ids = {s.name.casefold(): s.id for s in AstroSource.select(AstroSource.id, AstroSource.name)}
    now = utcnow()
    new = []
    with database_proxy.atomic():
        for name, row, row_id in todo:
            values = {**row, "astrosource": ids[name.casefold()], "modified": now}
            if row_id is None:
                new.append(values)
            else:
                ImportedResult.update(values).where(ImportedResult.id == row_id).execute()
        for start in range(0, len(new), INSERT_BATCH):
            ImportedResult.insert_many(new[start : start + INSERT_BATCH]).execute()
