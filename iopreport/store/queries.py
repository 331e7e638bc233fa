"""Common questions asked of the store, for the CLI, the site and notebooks."""

from __future__ import annotations

from collections.abc import Iterable

import peewee as pw

from iopreport.store.columns import COLUMN_NAMES, records_table, result_records
from iopreport.store.models import AstroSource, Epoch, PhotoPolResult, RawFit, ReducedFit

#: Columns of :func:`results_table`, in order (the one definition: :mod:`iopreport.store.columns`).
RESULT_COLUMNS = COLUMN_NAMES


def last_epoch(telescope: str | None = None) -> Epoch | None:
    """The most recent night in the store (optionally at one telescope)."""
    query = Epoch.select().order_by(Epoch.night.desc(), Epoch.telescope)
    if telescope:
        query = query.where(Epoch.telescope == telescope)
    return query.first()


def source_by_name(name: str) -> AstroSource:
    """A source by its name or any of its other names (case-insensitive)."""
    wanted = name.casefold()
    candidates = list(AstroSource.select().order_by(AstroSource.in_catalog.desc(), AstroSource.id))
    for candidate in candidates:
        if candidate.name.casefold() == wanted:
            return candidate
    for candidate in candidates:
        if any(other.casefold() == wanted for other in candidate.other_names):
            return candidate
    raise LookupError(f"no source named {name!r} in the store")


def source_results(source: AstroSource | str, *, band: str | None = None):
    """Every result of a source, oldest first, as a Peewee query."""
    if isinstance(source, str):
        source = source_by_name(source)
    query = (
        PhotoPolResult.select(PhotoPolResult, Epoch, AstroSource)
        .join(Epoch)
        .switch(PhotoPolResult)
        .join(AstroSource)
        .where(PhotoPolResult.astrosource == source)
        .order_by(PhotoPolResult.juliandate)
    )
    if band:
        query = query.where(PhotoPolResult.band == band)
    return query


def results_table(results: Iterable[PhotoPolResult], meta: dict | None = None):
    """Results as an :class:`astropy.table.Table`, oldest first, with units and descriptions.

    One row per result, the columns of :data:`iopreport.store.columns.RESULT_COLUMNS`
    (the same as ``iopreport export`` and the site's downloads): p, q, u in percent,
    angles in degrees, JD and MJD, airmass, seeing, zero point, systematic errors,
    flags with their reasons. Missing values are NaN in float columns.
    """
    ids = sorted({result.id for result in results})
    records = []
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        marks = ",".join("?" * len(chunk))
        records += result_records(f"r.id IN ({marks})", chunk)
    records.sort(key=lambda record: record["jd"])
    return records_table(records, meta)


#: Result ids per query (SQLite's default limit of host parameters is 999 in old builds).
_ID_CHUNK = 900


def epoch_counts(epoch: Epoch) -> dict[str, int]:
    """Frames of a night by type, plus reduced and failed counts."""
    counts: dict[str, int] = {}
    query = (
        RawFit.select(RawFit.imgtype, pw.fn.COUNT(RawFit.id).alias("n"))
        .where(RawFit.epoch == epoch)
        .group_by(RawFit.imgtype)
    )
    for row in query:
        counts[row.imgtype or "unclassified"] = row.n
    reduced = ReducedFit.select().join(RawFit).where(RawFit.epoch == epoch)
    counts["reduced"] = reduced.count()
    counts["failed"] = reduced.where(ReducedFit.error != "").count()
    return counts
