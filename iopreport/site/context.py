"""What the site shows, read from the store as plain dataclasses and dicts.

Every function here only reads. Which pages changed is told by the change
counters SQLite keeps (:mod:`iopreport.store.changes`), not by reading the rows.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import math
import operator
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from iopreport import urls
from iopreport.store.bits import (
    EpochFlags,
    ManualFlags,
    MasterFlags,
    RawFitFlags,
    ReducedFitFlags,
    ResultFlags,
)
from iopreport.store.columns import COLUMN_NAMES, MJD_OFFSET, jd_to_datetime, result_records
from iopreport.store.models import (
    AstroSource,
    Calibrator,
    Heartbeat,
    RunLog,
    StandardPolarization,
    database_proxy,
)

#: Sources of these types get a page even before they have results.
PAGE_TYPES_WITHOUT_RESULTS = ("blazar", "star", "polarization_standard")
#: Epochs read per query when building night pages (bounded memory).
NIGHT_CHUNK = 200
#: Points drawn in the index page's trend line (the last ones, in the main band).
TREND_POINTS = 40
#: Nights the status page looks through for failed frames (the most recent ones).
RECENT_NIGHTS = 60
#: Band preferred for the index's "last magnitude" and trend (the monitoring band).
MAIN_BAND = "R"

#: Automatic and manual flag bits that concern a magnitude. A flag acts on what it
#: concerns: FEW_CALIBRATORS (a magnitude-calibration flag) leaves p and chi standing.
MAG_RESULT_FLAGS = int(
    ResultFlags.BAD_PHOTOMETRY
    | ResultFlags.LARGE_MAG_ERROR
    | ResultFlags.FEW_CALIBRATORS
    | ResultFlags.ASTROMETRY_FAILED
    | ResultFlags.TARGET_SATURATED
    | ResultFlags.HOST_NOT_CORRECTED
    | ResultFlags.LOW_TRANSPARENCY
)
MAG_MANUAL_FLAGS = int(ManualFlags.BAD_PHOTOMETRY | ManualFlags.BAD_FRAME)
#: Flag bits that concern the polarization (p, chi, q, u).
POL_RESULT_FLAGS = int(
    ResultFlags.BAD_POLARIMETRY
    | ResultFlags.P_OUT_OF_RANGE
    | ResultFlags.LARGE_POL_ERROR
    | ResultFlags.ASTROMETRY_FAILED
    | ResultFlags.TARGET_SATURATED
    | ResultFlags.HOST_NOT_CORRECTED
)
POL_MANUAL_FLAGS = int(ManualFlags.BAD_POLARIMETRY | ManualFlags.BAD_FRAME)


def flags_concern(quantity: str, auto_labels: str, manual_labels: str) -> bool:
    """Whether a result's flags (bit names joined by ``|``) concern ``quantity``.

    ``quantity`` is ``"mag"`` or one of the polarization panels (p, chi, q, u).
    """
    auto_mask, manual_mask = (
        (MAG_RESULT_FLAGS, MAG_MANUAL_FLAGS)
        if quantity == "mag"
        else (POL_RESULT_FLAGS, POL_MANUAL_FLAGS)
    )
    auto = _bits(ResultFlags, auto_labels)
    manual = _bits(ManualFlags, manual_labels)
    return bool(auto & auto_mask or manual & manual_mask)


@functools.lru_cache(maxsize=1024)
def _bits(enum, labels: str) -> int:
    """Integer of flag bit names joined by ``|`` or ``, `` (unknown names ignored)."""
    value = 0
    for name in labels.replace(",", "|").split("|"):
        member = enum.__members__.get(name.strip())
        if member is not None:
            value |= int(member)
    return value


def _sql(query: str, params: Sequence = ()) -> list[tuple]:
    return database_proxy.execute_sql(query, params).fetchall()


def _clean(value):
    """None for NaN and infinities (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _round(value, digits: int):
    value = _clean(value)
    return None if value is None else round(value, digits)


def _scaled(value, factor: float, digits: int):
    value = _clean(value)
    return None if value is None else round(value * factor, digits)


# --------------------------------------------------------------------------- sources


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
        rows = _sql("SELECT astrosource_id, count(*) FROM photo_pol_result GROUP BY astrosource_id")
        return dict(rows)
    found: dict[int, int] = {}
    ids = list(source_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(
            _sql(
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
        for eid, source_id in _sql(
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
        _sql("SELECT astrosource_id, count(*) FROM imported_result GROUP BY astrosource_id")
    )


def imported_points(source_id: int) -> list[dict]:
    """A source's imported results, oldest first, as point dicts with the keys of
    :data:`POINT_COLUMNS` that apply (p and chi in % and degrees; ``flagged`` from the
    origin's quality bits), so that :func:`iopreport.site.plots.bin_points` can bin them."""
    rows = _sql(
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
    rows = _sql(
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
        calibrators = _sql(
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
        last = _sql(
            "SELECT r.juliandate, e.night, e.telescope FROM photo_pol_result r"
            " JOIN epoch e ON r.epoch_id = e.id WHERE r.astrosource_id = ?"
            " ORDER BY r.juliandate DESC LIMIT 1",
            (source.id,),
        )
        if last:
            jd, night, telescope = last[0]
            summary.last_date = jd_to_datetime(jd).strftime("%Y-%m-%d %H:%M")
            summary.last_night_page = urls.night_page(dt.date.fromisoformat(str(night)), telescope)
        bands = _sql(
            "SELECT band FROM photo_pol_result WHERE astrosource_id = ? AND band = ?"
            " AND mag IS NOT NULL LIMIT 1",
            (source.id, MAIN_BAND),
        ) or _sql(
            "SELECT band FROM photo_pol_result WHERE astrosource_id = ? AND mag IS NOT NULL"
            " GROUP BY band ORDER BY count(*) DESC LIMIT 1",
            (source.id,),
        )
        if bands:
            band = bands[0][0]
            mags = _sql(
                "SELECT mag, mag_err FROM photo_pol_result WHERE astrosource_id = ?"
                " AND band = ? AND mag IS NOT NULL AND (flags & ?) = 0 AND (manual_flags & ?) = 0"
                " ORDER BY juliandate DESC LIMIT ?",
                (source.id, band, MAG_RESULT_FLAGS, MAG_MANUAL_FLAGS, TREND_POINTS),
            )
            if mags:
                summary.last_mag_band = band
                summary.last_mag, summary.last_mag_err = mags[0]
                summary.trend = [m for m, _ in reversed(mags)]
        pol = _sql(
            "SELECT p, chi FROM photo_pol_result WHERE astrosource_id = ? AND p IS NOT NULL"
            " AND (flags & ?) = 0 AND (manual_flags & ?) = 0 ORDER BY juliandate DESC LIMIT 1",
            (source.id, POL_RESULT_FLAGS, POL_MANUAL_FLAGS),
        )
        if pol:
            summary.last_p_pct = _scaled(pol[0][0], 100.0, 2)
            summary.last_chi = _round(pol[0][1], 1)
    observed = sorted((s for s in summaries if s.n_results), key=lambda s: s.source.name)
    observed.sort(key=lambda s: s.last_date, reverse=True)
    never = [s for s in summaries if not s.n_results]
    return observed + never


# --------------------------------------------------------------------------- nights


@dataclass(frozen=True)
class EpochInfo:
    """A night at a telescope, as the site names it."""

    id: int
    telescope: str
    night: dt.date
    flags: int
    error: str
    page: str


def load_epochs() -> dict[int, EpochInfo]:
    """Every epoch, by id, ordered by night then telescope."""
    epochs = {}
    for eid, telescope, night, flags, error in _sql(
        "SELECT id, telescope, night, flags, error FROM epoch ORDER BY night, telescope"
    ):
        night = dt.date.fromisoformat(str(night)[:10])
        page = urls.night_page(night, telescope)
        epochs[eid] = EpochInfo(eid, telescope, night, flags, error or "", page)
    return epochs


def neighbours(epochs: dict[int, EpochInfo]) -> dict[int, tuple[int | None, int | None]]:
    """Previous and next epoch id at the same telescope, by epoch id."""
    by_telescope: dict[str, list[EpochInfo]] = defaultdict(list)
    for epoch in epochs.values():
        by_telescope[epoch.telescope].append(epoch)
    result = {}
    for items in by_telescope.values():
        items.sort(key=lambda e: e.night)
        for i, epoch in enumerate(items):
            before = items[i - 1].id if i > 0 else None
            after = items[i + 1].id if i + 1 < len(items) else None
            result[epoch.id] = (before, after)
    return result


@functools.lru_cache(maxsize=4096)
def _labels(enum, value, separator: str = ", ") -> str:
    """Names of the bits set, joined (cached: a few distinct values recur a lot)."""
    return separator.join(enum.labels(value or 0))


@functools.lru_cache(maxsize=4096)
def _reasons(text: str | None) -> str:
    """Flag reasons (a JSON list in the store) as one text."""
    if not text or text == "[]":
        return ""
    return "; ".join(json.loads(text))


def nights_context(epoch_ids: Sequence[int], sources: dict[int, SourceInfo]) -> dict[int, dict]:
    """Frames, masters, failures and results of each epoch in ``epoch_ids``."""
    contexts: dict[int, dict] = {}
    for start in range(0, len(epoch_ids), NIGHT_CHUNK):
        chunk = list(epoch_ids[start : start + NIGHT_CHUNK])
        contexts.update(_nights_chunk(chunk, sources))
    return contexts


#: Columns of a night's frame rows (night pages draw the tables from these, static/night.js).
#: ``flags`` and ``reduced_flags`` are the integer bits; the page names them (FLAG_NAMES).
FRAME_COLUMNS = (
    "type",
    "filename",
    "time",
    "object",
    "instrument",
    "mode",
    "band",
    "angle",
    "exptime",
    "binning",
    "size",
    "flags",
    "reduced_flags",
    "seeing",
    "error",
    "astrometry",
)
#: Columns of a night's result rows.
RESULT_COLUMNS = (
    "source",
    "source_page",
    "time",
    "mode",
    "method",
    "instrument",
    "band",
    "n_frames",
    "mag",
    "mag_err",
    "p_pct",
    "p_pct_err",
    "chi",
    "chi_err",
    "auto_flags",
    "manual_flags",
    "flag_reasons",
    "flagged",
)


def flag_names(enum) -> list[tuple[int, str]]:
    """(bit value, name) of every bit of a flag enum, for the pages' scripts."""
    return [(int(member.value), member.name) for member in enum]


def _nights_chunk(chunk: list[int], sources: dict[int, SourceInfo]) -> dict[int, dict]:
    """Night contexts of a few epochs, read with a few queries for all of them.

    Frames are tuples in the order of :data:`FRAME_COLUMNS` exactly as SQLite returns
    them (no per-frame work in Python: a night page of ten years holds a million
    frames), results lists in the order of :data:`RESULT_COLUMNS`.
    """
    marks = ",".join("?" * len(chunk))
    contexts = {
        eid: {
            "frames": [],
            "frame_counts": defaultdict(int),
            "reduced_files": [],
            "masters": [],
            "failures": [],
            "results": [],
            "header_wcs": 0,  # frames placed by their header's WCS (checked, not solved)
            "conditions": [],
        }
        for eid in chunk
    }
    rows = _sql(
        "SELECT r.epoch_id, coalesce(r.imgtype, 'unclassified'), r.filename,"
        " strftime('%H:%M:%S', r.juliandate), r.object_name, r.instrument, r.obsmode, r.band,"
        " r.angle, r.exptime, r.binning, r.imgsize, r.flags, f.flags,"
        " round(f.seeing_fwhm_arcsec, 2), r.error || coalesce(f.error, ''),"
        " coalesce(f.astrometry_method, '')"
        " FROM raw_fit r LEFT JOIN reduced_fit f ON f.rawfit_id = r.id"
        f" WHERE r.epoch_id IN ({marks}) ORDER BY r.epoch_id, r.juliandate, r.filename",
        chunk,
    )
    for eid, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        frames = [row[1:] for row in group]
        contexts[eid]["frames"] = frames
        counts = contexts[eid]["frame_counts"]
        for row in frames:
            counts[row[0]] += 1
        contexts[eid]["header_wcs"] = sum(1 for row in frames if row[-1].startswith("header"))
    for eid, raw_name, reduced_name in _sql(
        "SELECT r.epoch_id, r.filename, f.filename FROM reduced_fit f"
        f" JOIN raw_fit r ON f.rawfit_id = r.id WHERE r.epoch_id IN ({marks})"
        " AND f.filename != '' ORDER BY r.juliandate, r.filename",
        chunk,
    ):
        contexts[eid]["reduced_files"].append((raw_name, reduced_name))
    for eid, filename, error, rerror in _sql(
        "SELECT r.epoch_id, r.filename, r.error, coalesce(f.error, '')"
        " FROM raw_fit r LEFT JOIN reduced_fit f ON f.rawfit_id = r.id"
        f" WHERE r.epoch_id IN ({marks}) AND (r.error != '' OR coalesce(f.error, '') != '')"
        " ORDER BY r.juliandate, r.filename",
        chunk,
    ):
        if error:
            contexts[eid]["failures"].append({"what": f"raw {filename}", "reason": error})
        if rerror:
            contexts[eid]["failures"].append({"what": f"reduced {filename}", "reason": rerror})
    used: dict[tuple[str, int], set[int]] = defaultdict(set)  # (kind, master id) -> epochs
    for eid, *masters in _sql(
        "SELECT DISTINCT r.epoch_id, f.masterbias_id, f.masterdark_id, f.masterflat_id"
        f" FROM reduced_fit f JOIN raw_fit r ON f.rawfit_id = r.id WHERE r.epoch_id IN ({marks})",
        chunk,
    ):
        for kind, master_id in zip(("bias", "dark", "flat"), masters, strict=True):
            if master_id is not None:
                used[(kind, master_id)].add(eid)
    for kind in ("bias", "dark", "flat"):
        extra = "band, obsmode, angle" if kind == "flat" else "'', '', NULL"
        ids = sorted(mid for k, mid in used if k == kind)
        id_marks = ",".join("?" * len(ids)) or "NULL"
        rows = _sql(
            f"SELECT id, epoch_id, filename, instrument, n_frames, level, noise, flags, error,"
            f" {extra} FROM master_{kind} WHERE epoch_id IN ({marks}) OR id IN ({id_marks})"
            " ORDER BY filename",  # not id: masters are stored in the order they finish
            [*chunk, *ids],
        )
        for mid, eid, filename, instrument, n_frames, level, noise, flags, error, *rest in rows:
            band, mode, angle = rest
            master = {
                "kind": kind,
                "filename": filename,
                "instrument": instrument,
                "n_frames": n_frames,
                "level": level,
                "noise": noise,
                "band": band or "",
                "obsmode": mode or "",
                "angle": angle,
                "flags": _labels(MasterFlags, flags),
                "error": error or "",
                "epoch_id": eid,
            }
            users = used.get((kind, mid), set())
            for target in {eid, *users} & set(contexts):
                own = eid == target
                contexts[target]["masters"].append({**master, "own": own, "used": target in users})
                if own and error:
                    contexts[target]["failures"].append(
                        {"what": f"master {kind} {filename}", "reason": error}
                    )
    for (
        eid,
        source_id,
        clock,
        mode,
        method,
        instrument,
        band,
        n_frames,
        mag,
        mag_err,
        p,
        p_err,
        chi,
        chi_err,
        flags,
        manual,
        reasons,
        error,
    ) in _sql(
        "SELECT epoch_id, astrosource_id, strftime('%H:%M:%S', juliandate), mode, method,"
        " instrument, band, n_frames, round(mag, 4), round(mag_err, 4), round(p * 100, 3),"
        " round(p_err * 100, 3), round(chi, 2), round(chi_err, 2), flags, manual_flags,"
        " flag_reasons, error"
        f" FROM photo_pol_result WHERE epoch_id IN ({marks}) ORDER BY juliandate",
        chunk,
    ):
        source = sources.get(source_id)
        contexts[eid]["results"].append(
            [
                source.name if source else str(source_id),
                source.page if source else "",
                clock,
                mode,
                method,
                instrument,
                band,
                n_frames,
                mag,
                mag_err,
                p,
                p_err,
                chi,
                chi_err,
                _labels(ResultFlags, flags),
                _labels(ManualFlags, manual),
                _reasons(reasons),
                bool(flags or manual),
            ]
        )
        if error:
            name = source.name if source else source_id
            contexts[eid]["failures"].append({"what": f"result of {name}", "reason": error})
    _conditions_chunk(chunk, contexts)
    return contexts


#: Columns of a night's observing-conditions rows (one per reduced light frame).
CONDITION_COLUMNS = (
    "date",
    "instrument",
    "band",
    "filename",
    "seeing",
    "zero_point",
    "sky",
    "flagged",
    "why",
)
#: Frame flags that mark a frame on the conditions plots (its values are suspect).
RAW_BAD_FLAGS = int(RawFitFlags.SATURATED | RawFitFlags.EXCLUDED | RawFitFlags.ERROR_CLASSIFY)
REDUCED_BAD_FLAGS = int(
    ReducedFitFlags.ERROR_CALIBRATION
    | ReducedFitFlags.ERROR_ASTROMETRY
    | ReducedFitFlags.ERROR_PHOTOMETRY
    | ReducedFitFlags.LOW_TRANSPARENCY
)


def _conditions_chunk(chunk: list[int], contexts: dict[int, dict]) -> None:
    """Seeing, zero point and sky level of every reduced light frame of the epochs.

    The zero point is per second of exposure, ``mag_zp - 2.5 log10(exptime)``
    (magnitude giving 1 ADU/s, from the frame's relative-photometry result, as the
    transparency check uses it); the sky level is the mean background per pixel
    per second in the frame's apertures (ADU s⁻¹ px⁻¹).
    """
    marks = ",".join("?" * len(chunk))
    rows = _sql(
        "SELECT r.epoch_id, strftime('%Y-%m-%dT%H:%M:%S', r.juliandate), r.instrument, r.band,"
        " r.filename, r.exptime, f.seeing_fwhm_arcsec, r.flags, f.flags, f.error,"
        " (SELECT min(p.mag_zp) FROM photo_pol_member m"
        "  JOIN photo_pol_result p ON m.result_id = p.id WHERE m.rawfit_id = r.id"
        "  AND p.method = 'relphot' AND p.mag_zp IS NOT NULL),"
        " (SELECT avg(a.bkg_counts / (3.141592653589793 * a.aperture_px * a.aperture_px))"
        "  FROM aper_phot_result a WHERE a.reducedfit_id = f.id AND a.bkg_counts IS NOT NULL"
        "  AND a.aperture_px > 0)"
        " FROM raw_fit r JOIN reduced_fit f ON f.rawfit_id = r.id"
        f" WHERE r.epoch_id IN ({marks}) AND r.imgtype = 'light'"
        " ORDER BY r.epoch_id, r.juliandate, r.filename",
        chunk,
    )
    for row in rows:
        eid, date, instrument, band, filename, exptime, seeing, raw_flags, flags, error = row[:10]
        zp, sky = row[10:]
        exposed = exptime is not None and exptime > 0
        zp_per_s = zp - 2.5 * math.log10(exptime) if zp is not None and exposed else None
        sky_per_s = sky / exptime if sky is not None and exposed else None
        bad_raw = (raw_flags or 0) & RAW_BAD_FLAGS
        bad = (flags or 0) & REDUCED_BAD_FLAGS
        why = ", ".join(RawFitFlags.labels(bad_raw) + ReducedFitFlags.labels(bad))
        if error and bad:
            why += f": {error}"
        contexts[eid].setdefault("conditions", []).append(
            [
                date,
                instrument,
                band,
                filename,
                _round(seeing, 2),
                _round(zp_per_s, 3),
                _round(sky_per_s, 3),
                bool(bad_raw or bad),
                why,
            ]
        )


def epoch_flag_labels(flags: int) -> str:
    """Names of the epoch's flag bits."""
    return _labels(EpochFlags, flags)


# --------------------------------------------------------------------------- status


def status_context(limit: int = 40) -> dict:
    """Last runs, recent failures and daemon heartbeats."""
    runs = list(
        RunLog.select().order_by(RunLog.started_at.desc(), RunLog.id.desc()).limit(limit).dicts()
    )
    failures = _sql(
        "SELECT e.night, e.telescope, r.filename, r.error FROM raw_fit r"
        " JOIN epoch e ON r.epoch_id = e.id WHERE r.error != '' AND e.id IN"
        " (SELECT id FROM epoch ORDER BY night DESC LIMIT ?)"
        " UNION ALL SELECT e.night, e.telescope, r.filename, f.error FROM reduced_fit f"
        " JOIN raw_fit r ON f.rawfit_id = r.id JOIN epoch e ON r.epoch_id = e.id"
        " WHERE f.error != '' AND e.id IN (SELECT id FROM epoch ORDER BY night DESC LIMIT ?)"
        " ORDER BY 1 DESC LIMIT ?",
        (RECENT_NIGHTS, RECENT_NIGHTS, limit),
    )
    heartbeats = list(Heartbeat.select().order_by(Heartbeat.name).dicts())
    return {
        "runs": runs,
        "failures": [
            {
                "night": str(night),
                "telescope": telescope,
                "filename": filename,
                "reason": error,
                "page": urls.night_page(dt.date.fromisoformat(str(night)), telescope),
            }
            for night, telescope, filename, error in failures
        ],
        "heartbeats": heartbeats,
    }
