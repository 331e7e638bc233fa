"""Common questions asked of the store, for the CLI, the site and notebooks."""

from __future__ import annotations

from collections.abc import Iterable

import peewee as pw

from iopreport.store.models import AstroSource, Epoch, PhotoPolResult, RawFit, ReducedFit

#: Columns of :func:`results_table`, in order.
RESULT_COLUMNS = (
    "source",
    "telescope",
    "night",
    "instrument",
    "band",
    "mode",
    "method",
    "juliandate",
    "exptime",
    "mag",
    "mag_err",
    "p",
    "p_err",
    "p_debiased",
    "chi",
    "chi_err",
    "q",
    "q_err",
    "u",
    "u_err",
    "flags",
    "manual_flags",
    "members",
)


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


def results_table(results: Iterable[PhotoPolResult]):
    """Results as an :class:`astropy.table.Table` (one row each, :data:`RESULT_COLUMNS`).

    ``members`` holds the member raw files joined by ``;``. Missing values are
    NaN in float columns.
    """
    from astropy.table import Table

    rows = []
    for result in results:
        rows.append(
            (
                result.astrosource.name,
                result.epoch.telescope,
                result.epoch.night.isoformat(),
                result.instrument,
                result.band,
                result.mode,
                result.method,
                result.juliandate,
                *(_nan(getattr(result, name)) for name in RESULT_COLUMNS[8:20]),
                result.flags,
                result.manual_flags,
                result.members_key.replace("\n", ";"),
            )
        )
    dtypes = [
        "U64",
        "U16",
        "U10",
        "U16",
        "U4",
        "U12",
        "U16",
        "f8",
        *["f8"] * 12,
        "i8",
        "i8",
        "U4096",
    ]
    if not rows:
        return Table(names=RESULT_COLUMNS, dtype=dtypes)
    return Table(
        rows=rows, names=RESULT_COLUMNS, dtype=[d if d != "U4096" else "U" for d in dtypes]
    )


def _nan(value):
    return float("nan") if value is None else value


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
