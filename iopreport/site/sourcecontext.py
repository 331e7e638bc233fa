"""What a source's page shows, read from the store as plain dataclasses and dicts.

The catalog sources and which of them get a page, their results as points (and
another pipeline's imported results), the frame their finding chart is drawn
from. Every function here only reads. Which pages changed is told by the change
counters SQLite keeps (:mod:`iopreport.store.changes`), not by reading the rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from iopreport import urls
from iopreport.site.storerows import sql_rows
from iopreport.store.bits import ReducedFitFlags
from iopreport.store.columns import COLUMN_NAMES, MJD_OFFSET, result_records
from iopreport.store.models import AstroSource, Calibrator, StandardPolarization

#: Sources of these types get a page even before they have results.
PAGE_TYPES_WITHOUT_RESULTS = ("blazar", "star", "polarization_standard")


@dataclass(frozen=True)
class SourceInfo:
    """A catalog source, with what its page shows besides the results."""

    id: int
    name: str
    other_names: list[str]
    srctype: str
    ra_deg: float
    dec_deg: float
    redshift: float | None
    comment: str
    in_catalog: bool
    literature_mags: dict[str, tuple[float, float | None]]
    standard_pol: list[dict]
    calibrators: list[str]
    page: str


def load_sources() -> dict[int, SourceInfo]:
    """Every source of the store, by id, with literature values and calibrators."""
    standards: dict[int, list[dict]] = defaultdict(list)
    for row in StandardPolarization.select().order_by(StandardPolarization.band).dicts():
        standards[row["source"]].append(
            {
                "band": row["band"],
                "p": row["p"],
                "p_err": row["p_err"],
                "chi": row["chi"],
                "chi_err": row["chi_err"],
            }
        )
    names = dict(AstroSource.select(AstroSource.id, AstroSource.name).tuples())
    calibrators: dict[int, list[str]] = defaultdict(list)
    for target, calibrator in Calibrator.select(Calibrator.target, Calibrator.calibrator).tuples():
        calibrators[target].append(names[calibrator])
    sources = {}
    for row in AstroSource.select().order_by(AstroSource.name).dicts():
        mags = {}
        for band in "UBVRI":
            value = row[f"mag_{band}"]
            if value is not None:
                mags[band] = (value, row[f"mag_{band}_err"])
        sources[row["id"]] = SourceInfo(
            id=row["id"],
            name=row["name"],
            other_names=list(row["other_names"] or []),
            srctype=row["srctype"],
            ra_deg=row["ra_deg"],
            dec_deg=row["dec_deg"],
            redshift=row["redshift"],
            comment=row["comment"] or "",
            in_catalog=bool(row["in_catalog"]),
            literature_mags=mags,
            standard_pol=standards.get(row["id"], []),
            calibrators=sorted(calibrators.get(row["id"], [])),
            page=urls.source_page(row["name"]),
        )
    return sources


def source_counts(source_ids: Sequence[int] | None = None) -> dict[int, int]:
    """Number of results per source id (all sources, or those of ``source_ids``).

    Read from the index on ``astrosource_id``; sources without results are left out.
    """
    if source_ids is None:
        rows = sql_rows(
            "SELECT astrosource_id, count(*) FROM photo_pol_result GROUP BY astrosource_id"
        )
        return dict(rows)
    found: dict[int, int] = {}
    ids = list(source_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(
            sql_rows(
                f"SELECT astrosource_id, count(*) FROM photo_pol_result"
                f" WHERE astrosource_id IN ({marks}) GROUP BY astrosource_id",
                chunk,
            )
        )
    return found


def epoch_sources(epoch_ids: Sequence[int]) -> dict[int, list[int]]:
    """Ids of the sources with results in each epoch of ``epoch_ids``."""
    found: dict[int, list[int]] = {eid: [] for eid in epoch_ids}
    for start in range(0, len(epoch_ids), 500):
        chunk = list(epoch_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for eid, source_id in sql_rows(
            f"SELECT DISTINCT epoch_id, astrosource_id FROM photo_pol_result"
            f" WHERE epoch_id IN ({marks}) ORDER BY epoch_id, astrosource_id",
            chunk,
        ):
            found[eid].append(source_id)
    return found


def sources_with_pages(sources: dict[int, SourceInfo], counts: dict[int, tuple]) -> list:
    """Sources that get a page: those with results and every non-calibrator of the catalog."""
    return [
        source
        for source in sources.values()
        if source.id in counts
        or (source.in_catalog and source.srctype in PAGE_TYPES_WITHOUT_RESULTS)
    ]


#: Columns of a source's data (page, table, CSV and JSON downloads), in order: the
#: result columns every table shares (:mod:`iopreport.store.columns`), then the site's own.
POINT_COLUMNS = (*COLUMN_NAMES, "night_page", "n_binned")
#: Columns of the CSV and JSON downloads: the shared ones, and how many results a bin holds.
DOWNLOAD_COLUMNS = (*COLUMN_NAMES, "n_binned")


def source_points(source_id: int) -> list[dict]:
    """Every result of a source as a point dict (keys :data:`POINT_COLUMNS`), oldest first.

    Values come rounded as each column's definition says (magnitudes to 0.1 mmag,
    p, q, u to 0.001 %, angles to 0.01 deg); missing values are None.
    """
    points = result_records("r.astrosource_id = ?", (source_id,), rounded=True)
    night_pages: dict[tuple, str] = {}
    for point in points:
        key = (point["night"], point["telescope"])
        page = night_pages.get(key)
        if page is None:
            page = urls.night_page(dt.date.fromisoformat(str(key[0])), key[1])
            night_pages[key] = page
        point["night_page"] = page
        point["n_binned"] = 1
    return points


def imported_counts() -> dict[int, int]:
    """Number of imported results (another pipeline's, ``imported_result``) per source id."""
    return dict(
        sql_rows("SELECT astrosource_id, count(*) FROM imported_result GROUP BY astrosource_id")
    )


def imported_points(source_id: int) -> list[dict]:
    """A source's imported results, oldest first, as point dicts with the keys of
    :data:`POINT_COLUMNS` that apply (p and chi in % and degrees; ``flagged`` from the
    origin's quality bits), so that :func:`iopreport.site.plots.bin_points` can bin them."""
    rows = sql_rows(
        "SELECT strftime('%Y-%m-%dT%H:%M:%S', juliandate),"
        f" round(juliandate - {MJD_OFFSET}, 5), night, telescope, instrument, band,"
        " mode, method, n_frames, round(mag, 4), round(mag_err, 4), round(p * 100, 3),"
        " round(p_err * 100, 3), round(chi, 2), round(chi_err, 2), flags"
        " FROM imported_result WHERE astrosource_id = ? ORDER BY juliandate, id",
        (source_id,),
    )
    names = (
        "date",
        "mjd",
        "night",
        "telescope",
        "instrument",
        "band",
        "mode",
        "method",
        "n_frames",
        "mag",
        "mag_err",
        "p_pct",
        "p_pct_err",
        "chi_deg",
        "chi_deg_err",
    )
    points = []
    for row in rows:
        point = dict(zip(names, row[:-1], strict=True))
        point["night"] = str(point["night"])
        point["flagged"] = bool(row[-1])
        # the keys iopreport.site.plots.bin_points reads (imported results have no q, u)
        for key in ("q_pct", "q_pct_err", "u_pct", "u_pct_err"):
            point[key] = None
        for key in ("auto_flags", "manual_flags", "flag_reasons", "members"):
            point[key] = ""
        point["n_binned"] = 1
        points.append(point)
    return points


@dataclass(frozen=True)
class ChartFrame:
    """A reduced frame to draw a source's finding chart from."""

    reducedfit_id: int
    path: Path
    modified: str
    fileloc: str
    target_xy: tuple[float, float]
    calibrators: list[tuple[str, float, float]]


def chart_frame(source: SourceInfo, datadir: Path) -> ChartFrame | None:
    """The latest plate-solved reduced frame holding the source, whose file exists."""
    rows = sql_rows(
        "SELECT f.id, f.filename, f.modified, e.telescope, e.night, r.filename, s.x_px, s.y_px"
        " FROM source_in_field s JOIN reduced_fit f ON s.reducedfit_id = f.id"
        " JOIN raw_fit r ON f.rawfit_id = r.id JOIN epoch e ON r.epoch_id = e.id"
        " WHERE s.astrosource_id = ? AND (f.flags & ?) != 0"
        " ORDER BY r.juliandate DESC LIMIT 10",
        (source.id, int(ReducedFitFlags.ASTROMETRY_OK)),
    )
    for fid, filename, modified, telescope, night, rawname, x, y in rows:
        path = datadir / filename
        if not filename or not path.is_file():
            continue
        calibrators = sql_rows(
            "SELECT a.name, s.x_px, s.y_px FROM source_in_field s"
            " JOIN astro_source a ON s.astrosource_id = a.id"
            " JOIN calibrator c ON c.calibrator_id = a.id AND c.target_id = ?"
            " WHERE s.reducedfit_id = ? ORDER BY a.name",
            (source.id, fid),
        )
        return ChartFrame(
            reducedfit_id=fid,
            path=path,
            modified=str(modified),
            fileloc=f"{telescope}/{night}/{rawname}",
            target_xy=(x, y),
            calibrators=[(name, cx, cy) for name, cx, cy in calibrators],
        )
    return None
