"""Write flags into the store: manual ones from flags.toml, automatic ones from thresholds.

Both are recomputed from scratch on every build, so a flag removed from the
file, or a threshold changed in config.toml, takes effect at once. Each
function works in ONE transaction and writes only the rows that change.

``PhotoPolResult.flag_reasons`` is shared: manual texts start with
``manual:``, automatic ones with ``auto:``; each function replaces only its
own texts and keeps the others.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

import peewee as pw

from iopreport.flags import prefilter
from iopreport.flags.match import (
    FlagIndex,
    FrameView,
    ResultView,
    result_bits,
    selects_frame,
)
from iopreport.flags.model import Flag, FlagSet
from iopreport.store.bits import ManualFlags, PhotometryFlags, RawFitFlags, ReducedFitFlags
from iopreport.store.bits import ResultFlags as RF
from iopreport.store.models import (
    AperPhotResult,
    AstroSource,
    Epoch,
    PhotoPolMember,
    PhotoPolResult,
    RawFit,
    ReducedFit,
    database_proxy,
)

log = logging.getLogger(__name__)

MANUAL_PREFIX = "manual:"
AUTO_PREFIX = "auto:"


@dataclass(frozen=True)
class FlagMatches:
    """What one flag selects now."""

    flag: Flag
    results: tuple[tuple[str, str, str], ...] = ()  # (source, mode, members_key)
    frames: tuple[str, ...] = ()  # raw file locations excluded (frame flags)
    frame_results: tuple[tuple[str, str, str], ...] = ()  # results with an excluded frame

    @property
    def empty(self) -> bool:
        return not self.results and not self.frames


@dataclass
class Evaluation:
    """Manual flags of every result, computed from a flag set (nothing written)."""

    new: dict[int, tuple[int, list[str]]] = field(default_factory=dict)  # id -> bits, reasons
    old: dict[int, tuple[int, list[str]]] = field(default_factory=dict)
    matches: dict[str, FlagMatches] = field(default_factory=dict)
    frames: dict[str, list[Flag]] = field(default_factory=dict)  # fileloc -> frame flags
    frame_ids: dict[str, tuple[int, int]] = field(default_factory=dict)  # fileloc -> id, flags


@dataclass
class ApplyReport:
    """What :func:`apply_flags` did."""

    results: int = 0  # results examined
    changed: int = 0  # rows written
    flagged: int = 0  # results with a manual flag now
    frames_excluded: int = 0
    matches: dict[str, FlagMatches] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def unmatched(self) -> list[Flag]:
        """Flags that select nothing now (``flags check`` reports them)."""
        return [m.flag for m in self.matches.values() if m.empty]

    def summary(self) -> str:
        return (
            f"{len(self.matches)} manual flags: {self.flagged} of {self.results} results "
            f"flagged, {self.frames_excluded} frames excluded, {self.changed} rows changed"
        )


@dataclass
class AutoReport:
    """What :func:`apply_automatic_flags` did."""

    results: int = 0
    changed: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # bit name -> results with it
    seconds: float = 0.0

    def summary(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in sorted(self.counts.items())) or "none"
        return f"automatic flags on {self.results} results ({counts}), {self.changed} changed"


def _raw_rows(query):
    """Rows of ``query`` as plain tuples straight from SQLite (no per-field conversion)."""
    return database_proxy.execute(query)


def _dates():
    """``'YYYY-MM-DD'`` (as SQLite keeps dates) -> date, cached."""
    cache: dict[str, dt.date] = {}

    def convert(value):
        if isinstance(value, dt.date):
            return value
        if value not in cache:
            cache[value] = dt.date.fromisoformat(value)
        return cache[value]

    return convert


def _reasons(text) -> list[str]:
    if not text or text == "[]":
        return []
    return json.loads(text) if isinstance(text, str) else list(text)


# --------------------------------------------------------------------------- frames


def _identify(catalog, object_name: str | None, cache: dict) -> str | None:
    if catalog is None or not object_name:
        return None
    if object_name not in cache:
        from iopreport.identify import identify_target

        cache[object_name] = identify_target(object_name, catalog.sources)
    return cache[object_name]


def frame_views(catalog=None, *, need_target: bool = True, where=None):
    """``(rawfit id, flags, FrameView)`` of every classified LIGHT raw frame in the store.

    The frame's target is ``RawFit.target`` or, when unset, the catalog source
    its OBJECT keyword names (:func:`iopreport.identify.identify_target`).
    """
    query = (
        RawFit.select(
            RawFit.id,
            RawFit.filename,
            RawFit.flags,
            RawFit.instrument,
            RawFit.band,
            RawFit.obsmode,
            RawFit.juliandate,
            RawFit.object_name,
            Epoch.telescope,
            Epoch.night,
            AstroSource.name,
        )
        .join(Epoch)
        .switch(RawFit)
        .join(AstroSource, pw.JOIN.LEFT_OUTER, on=(RawFit.target == AstroSource.id))
        .where(RawFit.imgtype == "light")
    )
    if where is not None:
        query = query.where(where)
    cache: dict[str, str | None] = {}
    date = _dates()
    for rid, filename, flags, inst, band, mode, jd, obj, tel, night, target in _raw_rows(query):
        night = date(night)
        if target is None and need_target:
            target = _identify(catalog, obj, cache)
        view = FrameView(
            fileloc=f"{tel}/{night.isoformat()}/{filename}",
            telescope=tel,
            night=night,
            instrument=inst,
            band=band,
            mode=mode,
            jd=jd,
            target=target,
        )
        yield rid, flags, view


def _frame_hits(flagset: FlagSet) -> tuple[dict[str, list[Flag]], dict[str, tuple[int, int]]]:
    """Frames selected by frame flags: location -> flags; and location -> (id, flags)."""
    hits: dict[str, list[Flag]] = {}
    rows: dict[str, tuple[int, int]] = {}
    frame_flags = flagset.frame_flags
    if not frame_flags:
        return hits, rows
    need_target = any(f.source for f in frame_flags)
    index = FlagIndex(frame_flags)
    where = prefilter.frames_where(frame_flags)
    for rid, flags, view in frame_views(flagset.catalog, need_target=need_target, where=where):
        candidates = index.candidates(view.target, view.night, (view.fileloc,), view.jd, view.jd)
        selected = [f for f in candidates if selects_frame(f, view)]
        if selected:
            hits[view.fileloc] = selected
            rows[view.fileloc] = (rid, flags)
    return hits, rows


def _mark_excluded(hits: dict[str, tuple[int, int]]) -> int:
    """Set ``RawFitFlags.EXCLUDED`` on exactly the frames in ``hits``; return how many."""
    excluded = int(RawFitFlags.EXCLUDED)
    ids = {rid for rid, _ in hits.values()}
    with database_proxy.atomic():
        # only the frames whose bit changes are written: a frame that stays excluded is
        # not touched, so the site's change counters (store.changes) do not move for it
        query = RawFit.select(RawFit.id).where(RawFit.flags.bin_and(excluded) != 0)
        marked = {rid for (rid,) in query.tuples()}
        for chosen, value in (
            (sorted(marked - ids), RawFit.flags.bin_and(~excluded)),
            (sorted(ids - marked), RawFit.flags.bin_or(excluded)),
        ):
            for start in range(0, len(chosen), 500):
                RawFit.update(flags=value).where(
                    RawFit.id.in_(chosen[start : start + 500])
                ).execute()
    return len(ids)


def excluded_frames(flagset: FlagSet, *, mark: bool = True) -> set[str]:
    """Raw file locations (``TEL/YYYY-MM-DD/file``) that frame flags exclude.

    With ``mark`` (the default) the store agrees afterwards: exactly these
    frames carry ``RawFitFlags.EXCLUDED`` (a frame whose flag was removed
    loses it). The reduction skips them (``iopreport/reduce/night.py``).
    """
    hits, rows = _frame_hits(flagset)
    if mark:
        _mark_excluded(rows)
    return set(hits)


def drop_frame_products(rawfit: RawFit) -> int:
    """Forget what an excluded frame produced: its reduced frame and every result it is in.

    Called by the reduction for a frame excluded by flags.toml, so that its
    sequence (a polarimetric group) is recomputed without it and a database
    rebuilt from scratch holds the same results. Returns the results removed.
    """
    with database_proxy.atomic():
        result_ids = [
            m.result_id
            for m in PhotoPolMember.select(PhotoPolMember.result).where(
                PhotoPolMember.rawfit == rawfit
            )
        ]
        removed = 0
        if result_ids:
            removed = PhotoPolResult.delete().where(PhotoPolResult.id.in_(result_ids)).execute()
        ReducedFit.delete().where(ReducedFit.rawfit == rawfit).execute()
    return removed


# --------------------------------------------------------------------------- results


def result_views(where=None):
    """``(id, manual_flags, flags, flag_reasons, ResultView, members_key)`` of every result."""
    query = (
        PhotoPolResult.select(
            PhotoPolResult.id,
            PhotoPolResult.mode,
            PhotoPolResult.instrument,
            PhotoPolResult.band,
            PhotoPolResult.juliandate_min,
            PhotoPolResult.juliandate_max,
            PhotoPolResult.members_key,
            PhotoPolResult.manual_flags,
            PhotoPolResult.flags,
            PhotoPolResult.flag_reasons,
            AstroSource.name,
            Epoch.telescope,
            Epoch.night,
        )
        .join(AstroSource)
        .switch(PhotoPolResult)
        .join(Epoch)
    )
    if where is not None:
        query = query.where(where)
    date = _dates()
    for row in _raw_rows(query):
        rid, mode, inst, band, jmin, jmax, key, manual, auto, reasons, src, tel, night = row
        view = ResultView(
            source=src,
            mode=mode,
            instrument=inst,
            band=band,
            telescope=tel,
            night=date(night),
            jd_min=jmin,
            jd_max=jmax,
            members=ResultView.members_of(key),
        )
        yield rid, manual, auto, _reasons(reasons), view, key


def evaluate(flagset: FlagSet) -> Evaluation:
    """Compute the manual flags of every result now (reads the store, writes nothing)."""
    evaluation = Evaluation()
    hits, rows = _frame_hits(flagset)
    evaluation.frames = hits
    evaluation.frame_ids = rows
    result_flags = [f for f in flagset if {"photometry", "polarimetry"} & set(f.what)]
    index = FlagIndex(result_flags)
    result_hits: dict[str, list] = defaultdict(list)
    frame_hits: dict[str, set[str]] = defaultdict(set)
    frame_results: dict[str, dict[tuple, None]] = defaultdict(dict)
    excluded_ids = [rid for rid, _ in rows.values()]
    where = prefilter.results_where(result_flags, excluded_ids)
    for rid, manual, _auto, reasons, view, key in result_views(where):
        candidates = index.candidates(
            view.source, view.night, view.members, view.jd_min, view.jd_max
        )
        bits = ManualFlags(0)
        texts: list[str] = []
        for flag in candidates:
            flag_bits = result_bits(flag, view)
            if not flag_bits:
                continue
            bits |= flag_bits
            result_hits[flag.id].append((view.source, view.mode, key))
            for what in ("photometry", "polarimetry"):
                if flag_bits & _BIT[what]:
                    texts.append(flag.reason_text(what))
        if hits:
            for loc in view.members:
                for flag in hits.get(loc, ()):
                    bits |= ManualFlags.BAD_FRAME
                    texts.append(f"{flag.reason_text('frame')}: {loc}")
                    frame_hits[flag.id].add(loc)
                    frame_results[flag.id][(view.source, view.mode, key)] = None
        kept = [r for r in reasons if not r.startswith(MANUAL_PREFIX)]
        evaluation.old[rid] = (manual, reasons)
        evaluation.new[rid] = (int(bits), kept + texts)
    for loc, flags in hits.items():
        for flag in flags:
            frame_hits[flag.id].add(loc)
    for flag in flagset:
        evaluation.matches[flag.id] = FlagMatches(
            flag=flag,
            results=tuple(result_hits.get(flag.id, ())),
            frames=tuple(sorted(frame_hits.get(flag.id, ()))),
            frame_results=tuple(frame_results.get(flag.id, ())),
        )
    return evaluation


_BIT = {"photometry": ManualFlags.BAD_PHOTOMETRY, "polarimetry": ManualFlags.BAD_POLARIMETRY}


def _write(rows: list[tuple], columns: tuple[str, ...]) -> None:
    """``UPDATE photo_pol_result SET <columns> WHERE id = ?`` for every row (values..., id)."""
    if not rows:
        return
    meta = PhotoPolResult._meta
    mark = database_proxy.param  # the driver's placeholder: ? (SQLite) or %s (PostgreSQL)
    names = ", ".join(f'"{meta.fields[c].column_name}" = {mark}' for c in columns)
    sql = f'UPDATE "{meta.table_name}" SET {names} WHERE "id" = {mark}'
    reasons = meta.fields["flag_reasons"]
    prepared = []
    for *values, rid in rows:
        converted = (
            reasons.db_value(v) if c == "flag_reasons" else v
            for c, v in zip(columns, values, strict=True)
        )
        prepared.append((*converted, rid))
    cursor = database_proxy.cursor()
    cursor.executemany(sql, prepared)


def apply_flags(flagset: FlagSet) -> ApplyReport:
    """Write the manual flags of ``flagset`` into the store, in one transaction.

    Sets ``PhotoPolResult.manual_flags`` (:class:`~iopreport.store.bits.ManualFlags`)
    and the ``manual:`` texts of ``flag_reasons`` of every result, clearing
    those no flag selects any more, and ``RawFitFlags.EXCLUDED`` on exactly
    the frames that frame flags select.
    """
    started = time.perf_counter()
    report = ApplyReport()
    with database_proxy.atomic():
        evaluation = evaluate(flagset)
        report.frames_excluded = _mark_excluded(evaluation.frame_ids)
        changed = []
        for rid, (bits, reasons) in evaluation.new.items():
            if evaluation.old[rid] != (bits, reasons):
                changed.append((bits, reasons, rid))
            report.flagged += bool(bits)
        _write(changed, ("manual_flags", "flag_reasons"))
    report.results = PhotoPolResult.select().count()
    report.changed = len(changed)
    report.matches = evaluation.matches
    report.seconds = time.perf_counter() - started
    for flag in report.unmatched:
        log.warning("%s:%s: flag %s selects nothing", flagset.path, flag.line, flag.id)
    return report


# --------------------------------------------------------------------------- automatic

#: Bits :func:`apply_automatic_flags` computes; others (HOST_NOT_CORRECTED) are kept as found.
OWNED_BITS = (
    RF.BAD_PHOTOMETRY
    | RF.BAD_POLARIMETRY
    | RF.P_OUT_OF_RANGE
    | RF.LARGE_MAG_ERROR
    | RF.LARGE_POL_ERROR
    | RF.FEW_CALIBRATORS
    | RF.ASTROMETRY_FAILED
    | RF.TARGET_SATURATED
    | RF.LOW_TRANSPARENCY
    | RF.HEADER_WCS
)
_OWNED = int(OWNED_BITS)
_OWNED_PREFIXES = tuple(f"{AUTO_PREFIX} {bit.name}:" for bit in RF if bit & OWNED_BITS and bit.name)


def _failed_astrometry() -> set[int]:
    """Results with a member frame reduced without a WCS."""
    query = (
        PhotoPolMember.select(PhotoPolMember.result)
        .join(ReducedFit, on=(ReducedFit.rawfit == PhotoPolMember.rawfit))
        .where(ReducedFit.flags.bin_and(int(ReducedFitFlags.ASTROMETRY_OK)) == 0)
        .distinct()
        .tuples()
    )
    return {rid for (rid,) in query}


def _low_transparency() -> set[int]:
    """Results with a member frame that lost most of its light to clouds."""
    query = (
        PhotoPolMember.select(PhotoPolMember.result)
        .join(ReducedFit, on=(ReducedFit.rawfit == PhotoPolMember.rawfit))
        .where(ReducedFit.flags.bin_and(int(ReducedFitFlags.LOW_TRANSPARENCY)) != 0)
        .distinct()
        .tuples()
    )
    return {rid for (rid,) in query}


def _header_wcs() -> set[int]:
    """Results with a member frame whose WCS came from its header (checked, not solved)."""
    query = (
        PhotoPolMember.select(PhotoPolMember.result)
        .join(ReducedFit, on=(ReducedFit.rawfit == PhotoPolMember.rawfit))
        .where(ReducedFit.flags.bin_and(int(ReducedFitFlags.HEADER_WCS)) != 0)
        .distinct()
        .tuples()
    )
    return {rid for (rid,) in query}


def _saturated_target() -> set[int]:
    """Results whose own source has a saturated aperture on a member frame."""
    query = (
        PhotoPolMember.select(PhotoPolMember.result)
        .join(PhotoPolResult, on=(PhotoPolResult.id == PhotoPolMember.result))
        .join(ReducedFit, on=(ReducedFit.rawfit == PhotoPolMember.rawfit))
        .join(
            AperPhotResult,
            on=(
                (AperPhotResult.reducedfit == ReducedFit.id)
                & (AperPhotResult.astrosource == PhotoPolResult.astrosource)
            ),
        )
        .where(AperPhotResult.flags.bin_and(int(PhotometryFlags.SATURATED)) != 0)
        .distinct()
        .tuples()
    )
    return {rid for (rid,) in query}


_P_OUT_OF_RANGE = int(RF.P_OUT_OF_RANGE)
_LARGE_MAG_ERROR = int(RF.LARGE_MAG_ERROR)
_LARGE_POL_ERROR = int(RF.LARGE_POL_ERROR)
_FEW_CALIBRATORS = int(RF.FEW_CALIBRATORS)
_ASTROMETRY_FAILED = int(RF.ASTROMETRY_FAILED)
_TARGET_SATURATED = int(RF.TARGET_SATURATED)
_LOW_TRANSPARENCY = int(RF.LOW_TRANSPARENCY)
_PHOTOMETRY_TROUBLE = (
    _LARGE_MAG_ERROR | _FEW_CALIBRATORS | _ASTROMETRY_FAILED | _TARGET_SATURATED | _LOW_TRANSPARENCY
)
_POLARIMETRY_TROUBLE = _P_OUT_OF_RANGE | _LARGE_POL_ERROR | _ASTROMETRY_FAILED | _TARGET_SATURATED
_BIT_NAMES = tuple((bit.name, int(bit)) for bit in RF if bit.name)


def automatic_flags(
    values: dict, quality, *, no_wcs: bool, saturated: bool, cloudy=False, header_wcs=False
):
    """Automatic flags of one result (pure): ``(ResultFlags bits as int, reason texts)``.

    ``values`` holds the result's ``mode``, ``mag``, ``mag_err``,
    ``n_calibrators``, ``p``, ``p_err`` and ``chi_err``; ``quality`` is the
    ``[quality]`` section of config.toml.
    """
    bits = 0
    texts = []
    polarimetric = values["mode"] == "polarimetry"
    photometric = not polarimetric or values["mag"] is not None
    p = values["p"]
    if polarimetric and p is not None and not (math.isfinite(p) and 0.0 <= p <= 1.0):
        bits |= _P_OUT_OF_RANGE
        texts.append(f"{AUTO_PREFIX} P_OUT_OF_RANGE: p = {p:.4g} outside [0, 1]")
    mag_err = values["mag_err"]
    if mag_err is not None and mag_err > quality.max_mag_err:
        bits |= _LARGE_MAG_ERROR
        texts.append(
            f"{AUTO_PREFIX} LARGE_MAG_ERROR: magnitude error {mag_err:.3f} > "
            f"{quality.max_mag_err:g} (quality.max_mag_err)"
        )
    p_err, chi_err = values["p_err"], values["chi_err"]
    if polarimetric and p_err is not None and 100.0 * p_err > quality.max_p_err_percent:
        bits |= _LARGE_POL_ERROR
        texts.append(
            f"{AUTO_PREFIX} LARGE_POL_ERROR: p error {100.0 * p_err:.2f}% > "
            f"{quality.max_p_err_percent:g}% (quality.max_p_err_percent)"
        )
    elif polarimetric and chi_err is not None and chi_err > quality.max_chi_err_deg:
        bits |= _LARGE_POL_ERROR
        texts.append(
            f"{AUTO_PREFIX} LARGE_POL_ERROR: angle error {chi_err:.1f} deg > "
            f"{quality.max_chi_err_deg:g} deg (quality.max_chi_err_deg)"
        )
    n_cal = values["n_calibrators"]
    if n_cal is not None and n_cal < quality.min_calibrators:
        bits |= _FEW_CALIBRATORS
        texts.append(
            f"{AUTO_PREFIX} FEW_CALIBRATORS: {n_cal} calibrator(s) used < "
            f"{quality.min_calibrators} (quality.min_calibrators)"
        )
    if no_wcs:
        bits |= _ASTROMETRY_FAILED
        texts.append(f"{AUTO_PREFIX} ASTROMETRY_FAILED: a member frame has no astrometric solution")
    if cloudy:
        bits |= _LOW_TRANSPARENCY
        texts.append(
            f"{AUTO_PREFIX} LOW_TRANSPARENCY: a member frame lost most of its light to clouds"
        )
    if header_wcs:  # a note, not a fault: the WCS passed its check against the field
        bits |= int(RF.HEADER_WCS)
        texts.append(
            f"{AUTO_PREFIX} HEADER_WCS: a member frame's WCS is its header's "
            "(checked against the catalog sources, not plate-solved)"
        )
    if saturated:
        bits |= _TARGET_SATURATED
        texts.append(f"{AUTO_PREFIX} TARGET_SATURATED: the target is saturated in a member frame")
    if polarimetric and p is None:
        bits |= int(RF.BAD_POLARIMETRY)
        why = values.get("error") or "no polarization computed"
        texts.append(f"{AUTO_PREFIX} BAD_POLARIMETRY: {why}")
    if photometric and bits & _PHOTOMETRY_TROUBLE:
        bits |= int(RF.BAD_PHOTOMETRY)
    if polarimetric and bits & _POLARIMETRY_TROUBLE:
        bits |= int(RF.BAD_POLARIMETRY)
    return bits, texts


def apply_automatic_flags(config) -> AutoReport:
    """Recompute ``PhotoPolResult.flags`` of every result from ``config.quality``.

    One transaction. Bits other than :data:`OWNED_BITS` (set by other stages)
    are kept, and so are reason texts that are not this function's
    (``auto: <BIT>:`` for an owned bit).
    """
    started = time.perf_counter()
    quality = getattr(config, "quality", config)
    report = AutoReport()
    counts: dict[str, int] = defaultdict(int)
    with database_proxy.atomic():
        no_wcs = _failed_astrometry()
        saturated = _saturated_target()
        cloudy = _low_transparency()
        from_header = _header_wcs()
        query = PhotoPolResult.select(
            PhotoPolResult.id,
            PhotoPolResult.mode,
            PhotoPolResult.mag,
            PhotoPolResult.mag_err,
            PhotoPolResult.n_calibrators,
            PhotoPolResult.p,
            PhotoPolResult.p_err,
            PhotoPolResult.chi_err,
            PhotoPolResult.flags,
            PhotoPolResult.flag_reasons,
            PhotoPolResult.error,
        )
        names = ("id", "mode", "mag", "mag_err", "n_calibrators", "p", "p_err", "chi_err")
        names += ("flags", "flag_reasons", "error")
        changed = []
        for values in _raw_rows(query):
            row = dict(zip(names, values, strict=True))
            report.results += 1
            bits, texts = automatic_flags(
                row,
                quality,
                no_wcs=row["id"] in no_wcs,
                saturated=row["id"] in saturated,
                cloudy=row["id"] in cloudy,
                header_wcs=row["id"] in from_header,
            )
            new_flags = bits | (row["flags"] & ~_OWNED)
            old_reasons = _reasons(row["flag_reasons"])
            kept = [r for r in old_reasons if not r.startswith(_OWNED_PREFIXES)]
            new_reasons = texts + kept
            if new_flags:
                for name, value in _BIT_NAMES:
                    if new_flags & value:
                        counts[name] += 1
            if new_flags != row["flags"] or new_reasons != old_reasons:
                changed.append((new_flags, new_reasons, row["id"]))
        _write(changed, ("flags", "flag_reasons"))
    report.changed = len(changed)
    report.counts = dict(counts)
    report.seconds = time.perf_counter() - started
    return report


def excluded_in_epoch(config, catalog, epoch: Epoch) -> set[str]:
    """File names of ``epoch`` that frame flags exclude (for the reduction).

    Reads flags.toml (``config.paths.flags``; a missing file means no flags),
    marks ``RawFitFlags.EXCLUDED`` on the store, and returns the names.

    Raises
    ------
    InputError
        flags.toml has a mistake (the reduction of this night stops).
    """
    from iopreport.flags.parse import load_flags

    path = config.paths.flags
    if path.exists():
        telescopes = sorted({i.telescope for i in config.instruments.values()})
        flagset = load_flags(path, catalog, telescopes=telescopes, registry=config.registry)
    else:
        flagset = FlagSet(path=path, catalog=catalog)
    prefix = f"{epoch.epochname}/"
    return {loc[len(prefix) :] for loc in excluded_frames(flagset) if loc.startswith(prefix)}
