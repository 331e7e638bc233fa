"""What a night's page shows, read from the store as plain dataclasses and lists.

The epochs and their neighbours at the same telescope; each night's frames,
masters, failures, results and observing conditions, read for many nights with
a few queries. Every function here only reads.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import math
import operator
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from iopreport import urls
from iopreport.site.sourcecontext import SourceInfo
from iopreport.site.storerows import rounded, sql_rows
from iopreport.store.bits import (
    EpochFlags,
    ManualFlags,
    MasterFlags,
    RawFitFlags,
    ReducedFitFlags,
    ResultFlags,
)

#: Epochs read per query when building night pages (bounded memory).
NIGHT_CHUNK = 200


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
    for eid, telescope, night, flags, error in sql_rows(
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
    rows = sql_rows(
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
    for eid, raw_name, reduced_name in sql_rows(
        "SELECT r.epoch_id, r.filename, f.filename FROM reduced_fit f"
        f" JOIN raw_fit r ON f.rawfit_id = r.id WHERE r.epoch_id IN ({marks})"
        " AND f.filename != '' ORDER BY r.juliandate, r.filename",
        chunk,
    ):
        contexts[eid]["reduced_files"].append((raw_name, reduced_name))
    for eid, filename, error, rerror in sql_rows(
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
    for eid, *masters in sql_rows(
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
        rows = sql_rows(
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
    ) in sql_rows(
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
    rows = sql_rows(
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
                rounded(seeing, 2),
                rounded(zp_per_s, 3),
                rounded(sky_per_s, 3),
                bool(bad_raw or bad),
                why,
            ]
        )


def epoch_flag_labels(flags: int) -> str:
    """Names of the epoch's flag bits."""
    return _labels(EpochFlags, flags)
