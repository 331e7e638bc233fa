"""The index page's rows, read from the store: per source its last observation,
last magnitude, p and chi, and the trend of its last magnitudes.

Only reads; each value skips the results whose flags concern it (:mod:`.flagmasks`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from iopreport import urls
from iopreport.site.flagmasks import (
    MAG_MANUAL_FLAGS,
    MAG_RESULT_FLAGS,
    POL_MANUAL_FLAGS,
    POL_RESULT_FLAGS,
)
from iopreport.site.sourcecontext import SourceInfo
from iopreport.site.storerows import rounded, scaled, sql_rows
from iopreport.store.columns import jd_to_datetime

#: Points drawn in the index page's trend line (the last ones, in the main band).
TREND_POINTS = 40
#: Band preferred for the index's "last magnitude" and trend (the monitoring band).
MAIN_BAND = "R"


@dataclass
class SourceSummary:
    """One row of the index page."""

    source: SourceInfo
    n_results: int = 0
    n_nights: int = 0
    last_date: str = ""
    last_night_page: str = ""
    last_mag: float | None = None
    last_mag_err: float | None = None
    last_mag_band: str = ""
    last_p_pct: float | None = None
    last_chi: float | None = None
    trend: list[float] = field(default_factory=list)


def source_summaries(pages: Iterable[SourceInfo], stats: dict[int, tuple[int, int]]) -> list:
    """The index rows: last observation, last magnitude (R preferred), last p and chi, trend.

    ``stats`` gives (number of results, number of nights) by source id. Observed
    sources come first (most recently observed first), then the never-observed ones
    by name. Each value skips only the results whose flags concern it
    (:data:`MAG_RESULT_FLAGS`, :data:`POL_RESULT_FLAGS`).
    """
    summaries = []
    for source in pages:
        summary = SourceSummary(source)
        summaries.append(summary)
        if not stats.get(source.id):
            continue
        summary.n_results, summary.n_nights = stats[source.id]
        last = sql_rows(
            "SELECT r.juliandate, e.night, e.telescope FROM photo_pol_result r"
            " JOIN epoch e ON r.epoch_id = e.id WHERE r.astrosource_id = ?"
            " ORDER BY r.juliandate DESC LIMIT 1",
            (source.id,),
        )
        if last:
            jd, night, telescope = last[0]
            summary.last_date = jd_to_datetime(jd).strftime("%Y-%m-%d %H:%M")
            summary.last_night_page = urls.night_page(dt.date.fromisoformat(str(night)), telescope)
        bands = sql_rows(
            "SELECT band FROM photo_pol_result WHERE astrosource_id = ? AND band = ?"
            " AND mag IS NOT NULL LIMIT 1",
            (source.id, MAIN_BAND),
        ) or sql_rows(
            "SELECT band FROM photo_pol_result WHERE astrosource_id = ? AND mag IS NOT NULL"
            " GROUP BY band ORDER BY count(*) DESC LIMIT 1",
            (source.id,),
        )
        if bands:
            band = bands[0][0]
            mags = sql_rows(
                "SELECT mag, mag_err FROM photo_pol_result WHERE astrosource_id = ?"
                " AND band = ? AND mag IS NOT NULL AND (flags & ?) = 0 AND (manual_flags & ?) = 0"
                " ORDER BY juliandate DESC LIMIT ?",
                (source.id, band, MAG_RESULT_FLAGS, MAG_MANUAL_FLAGS, TREND_POINTS),
            )
            if mags:
                summary.last_mag_band = band
                summary.last_mag, summary.last_mag_err = mags[0]
                summary.trend = [m for m, _ in reversed(mags)]
        pol = sql_rows(
            "SELECT p, chi FROM photo_pol_result WHERE astrosource_id = ? AND p IS NOT NULL"
            " AND (flags & ?) = 0 AND (manual_flags & ?) = 0 ORDER BY juliandate DESC LIMIT 1",
            (source.id, POL_RESULT_FLAGS, POL_MANUAL_FLAGS),
        )
        if pol:
            summary.last_p_pct = scaled(pol[0][0], 100.0, 2)
            summary.last_chi = rounded(pol[0][1], 1)
    observed = sorted((s for s in summaries if s.n_results), key=lambda s: s.source.name)
    observed.sort(key=lambda s: s.last_date, reverse=True)
    never = [s for s in summaries if not s.n_results]
    return observed + never
