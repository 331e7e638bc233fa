"""Imported and own results side by side, per source, night, band and mode.

``iopreport import compare`` prints, for every (source, night, telescope,
band, mode) that has results of both kinds, the count and inverse-variance
weighted mean magnitude (and p, chi for polarimetry) of iopreport's own
results and of the imported ones, and their difference. Flagged results of
either kind are left out of the means (counted apart).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

#: Own results' bad bits are in ``flags``/``manual_flags``; imported ones keep IOP4's bits.
_OWN_SQL = (
    "SELECT s.name, e.night, e.telescope, r.band, r.mode, r.mag, r.mag_err, r.p, r.p_err,"
    " r.chi, r.chi_err, (r.flags != 0 OR r.manual_flags != 0)"
    " FROM photo_pol_result r JOIN epoch e ON e.id = r.epoch_id"
    " JOIN astro_source s ON s.id = r.astrosource_id"
)
_IMPORTED_SQL = (
    "SELECT s.name, r.night, r.telescope, r.band, r.mode, r.mag, r.mag_err, r.p, r.p_err,"
    " r.chi, r.chi_err, r.flags != 0"
    " FROM imported_result r JOIN astro_source s ON s.id = r.astrosource_id"
    " WHERE r.method = ?"
)


@dataclass
class Side:
    """One pipeline's results of a group: counts and weighted means."""

    n: int = 0
    n_flagged: int = 0
    mag: float | None = None
    mag_err: float | None = None
    p: float | None = None
    chi: float | None = None


def weighted_mean(pairs: Iterable[tuple[float, float | None]]) -> tuple[float | None, float | None]:
    """Inverse-variance weighted mean and its error; the plain mean where errors are missing."""
    pairs = [(v, e) for v, e in pairs if v is not None]
    if not pairs:
        return None, None
    if all(e is not None and e > 0 for _, e in pairs):
        weights = [1 / e**2 for _, e in pairs]
        total = sum(weights)
        return sum(w * v for w, (v, _) in zip(weights, pairs, strict=True)) / total, total**-0.5
    return sum(v for v, _ in pairs) / len(pairs), None


def _side(rows: list[tuple]) -> Side:
    good = [r for r in rows if not r[11]]
    side = Side(n=len(good), n_flagged=len(rows) - len(good))
    side.mag, side.mag_err = weighted_mean((r[5], r[6]) for r in good)
    side.p, _ = weighted_mean((r[7], r[8]) for r in good)
    side.chi, _ = weighted_mean((r[9], r[10]) for r in good)  # no wrap at 0/180 (close angles)
    return side


def compare_rows(
    method: str = "iop4-import", *, night: dt.date | None = None, source: str | None = None
) -> list[tuple[tuple, Side, Side]]:
    """(source, night, telescope, band, mode) -> own and imported sides, groups with both."""
    from iopreport.store.models import database_proxy

    groups: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    for index, (sql, params) in enumerate(((_OWN_SQL, ()), (_IMPORTED_SQL, (method,)))):
        for row in database_proxy.execute_sql(sql, params).fetchall():
            key = (row[0], str(row[1]), row[2], row[3], row[4])
            if night is not None and key[1] != night.isoformat():
                continue
            if source is not None and key[0].casefold() != source.casefold():
                continue
            groups[key][index].append(row)
    return [
        (key, _side(own), _side(imported))
        for key, (own, imported) in sorted(groups.items())
        if own and imported
    ]


def _fmt(value: float | None, digits: int, scale: float = 1.0) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value * scale:.{digits}f}"


def _diff(a: float | None, b: float | None, digits: int, scale: float = 1.0) -> str:
    return "—" if a is None or b is None else f"{(a - b) * scale:+.{digits}f}"


def compare_text(rows: list[tuple[tuple, Side, Side]], label: str = "IOP4") -> str:
    """A fixed-width table: one line per source, night, telescope, band and mode."""
    header = (
        f"{'source':<16} {'night':<10} {'telescope':<9} {'band':<4} {'mode':<11} "
        f"{'n':>3} {'mag':>8} {'n ' + label:>7} {'mag ' + label:>9} {'Δmag':>7} "
        f"{'p%':>6} {'p% ' + label:>8} {'Δp%':>6} {'χ':>6} {'χ ' + label:>7} {'Δχ':>6}"
    )
    lines = [header]
    for (name, night, telescope, band, mode), own, imported in rows:
        lines.append(
            f"{name:<16} {night:<10} {telescope:<9} {band:<4} {mode:<11} "
            f"{own.n:>3} {_fmt(own.mag, 3):>8} {imported.n:>7} {_fmt(imported.mag, 3):>9} "
            f"{_diff(own.mag, imported.mag, 3):>7} "
            f"{_fmt(own.p, 2, 100):>6} {_fmt(imported.p, 2, 100):>8} "
            f"{_diff(own.p, imported.p, 2, 100):>6} "
            f"{_fmt(own.chi, 1):>6} {_fmt(imported.chi, 1):>7} {_diff(own.chi, imported.chi, 1):>6}"
        )
    if not rows:
        lines.append("(no source and night has results of both pipelines)")
    return "\n".join(lines)
