"""Which results an export holds: filters turned into one SQL condition."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from iopreport.errors import UsageError


@dataclass(frozen=True)
class ExportFilter:
    """The command line's filters; an empty tuple accepts every value.

    ``date_from``/``date_to`` bound the night (inclusive). Flagged results are left
    out unless ``include_flagged``.
    """

    sources: tuple[str, ...] = ()
    nights: tuple[dt.date, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    telescopes: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    include_flagged: bool = False

    def describe(self) -> str:
        """The filters as one line (written into the files' metadata)."""
        parts = []
        for name in ("sources", "nights", "telescopes", "instruments", "bands", "modes"):
            values = getattr(self, name)
            if values:
                parts.append(f"{name}=" + ",".join(str(v) for v in values))
        if self.date_from:
            parts.append(f"from={self.date_from}")
        if self.date_to:
            parts.append(f"to={self.date_to}")
        parts.append("flagged included" if self.include_flagged else "flagged left out")
        return "; ".join(parts)


def _in(column: str, values, params: list) -> str:
    params.extend(values)
    return f"{column} IN ({','.join('?' * len(values))})"


def condition(selection: ExportFilter) -> tuple[str, list]:
    """SQL condition and parameters for :func:`iopreport.store.columns.result_records`.

    Raises
    ------
    UsageError
        A source name that is not in the store.
    """
    from iopreport.store.queries import source_by_name

    clauses: list[str] = []
    params: list = []
    if selection.sources:
        ids = []
        for name in selection.sources:
            try:
                ids.append(source_by_name(name).id)
            except LookupError as exc:
                raise UsageError(str(exc)) from None
        clauses.append(_in("r.astrosource_id", ids, params))
    if selection.nights:
        clauses.append(_in("e.night", [n.isoformat() for n in selection.nights], params))
    if selection.date_from:
        clauses.append("e.night >= ?")
        params.append(selection.date_from.isoformat())
    if selection.date_to:
        clauses.append("e.night <= ?")
        params.append(selection.date_to.isoformat())
    for column, values in (
        ("e.telescope", selection.telescopes),
        ("r.instrument", selection.instruments),
        ("r.band", selection.bands),
        ("r.mode", selection.modes),
    ):
        if values:
            clauses.append(_in(column, list(values), params))
    if not selection.include_flagged:
        clauses.append("r.flags = 0 AND r.manual_flags = 0")
    return " AND ".join(clauses), params


def select_records(selection: ExportFilter) -> list[dict]:
    """The selected results as records (:data:`iopreport.store.columns.RESULT_COLUMNS`)."""
    from iopreport.store.columns import result_records

    where, params = condition(selection)
    return result_records(where, params)
