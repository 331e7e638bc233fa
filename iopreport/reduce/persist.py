"""The writer of a reduction run: every row a master, a frame or its photometry produces.

Workers compute; this process writes, one transaction per master and per
frame (the single-writer rule of docs/architecture.md). Relative photometry
is computed by :func:`iopreport.reduce.relphot.relative_photometry` and
written here; so are the transparency check's flags and a night's
polarimetric results (:func:`store_sequences`, computed by
:mod:`iopreport.reduce.polnight`).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from iopreport.catalog import Catalog
from iopreport.config import Config
from iopreport.reduce.frametask import FrameOutcome, FrameTask
from iopreport.reduce.masterjob import MasterJobResult
from iopreport.reduce.masters import RECOMMENDED_FRAMES
from iopreport.reduce.plan import MASTER_MODELS, MasterWork, inputs_key
from iopreport.reduce.polresult import SequenceResult
from iopreport.reduce.relphot import relative_photometry
from iopreport.reduce.state import NightReport, NightState
from iopreport.store import (
    AperPhotResult,
    AstroSource,
    Epoch,
    FieldStarFlux,
    MasterBias,
    MasterDark,
    MasterFlags,
    MasterFlat,
    PhotoPolMember,
    PhotoPolResult,
    RawFit,
    RawFitFlags,
    ReducedFit,
    ReducedFitFlags,
    ResultFlags,
    SourceInField,
)
from iopreport.store.models import database_proxy, utcnow

log = logging.getLogger(__name__)


def store_frame(catalog, state: NightState, task: FrameTask, outcome: FrameOutcome) -> None:
    """Store one frame's outcome, in its own transaction, and count it in the night's report."""
    for stage, seconds in outcome.seconds.items():
        state.worker_seconds[stage] += seconds
    state.worker_seconds["science cpu"] += outcome.cpu_s
    state.report.worker_peak_rss_mb = max(state.report.worker_peak_rss_mb, outcome.peak_rss_mb)
    rawfit = state.by_name[task.raw_path.name]
    with database_proxy.atomic():
        depends_on_index = outcome.header_wcs or outcome.stage == "astrometry"
        key = inputs_key(task, rawfit.sha256, index_state=depends_on_index)
        state.report.results += _store_outcome(state, rawfit, task, outcome, catalog, key)
        if outcome.saturated:
            mark_saturated([rawfit])
    state.report.stored.add(task.raw_path.name)
    state.tasks[task.raw_path.name] = task
    if outcome.ok:
        state.report.frames_reduced += 1
    else:
        state.report.frames_failed[task.raw_path.name] = outcome.error


def _store_outcome(state: NightState, rawfit, task, outcome, catalog, inputs_key) -> int:
    """Write one frame's outcome: ReducedFit, sources in field, apertures, results."""
    flags = ReducedFitFlags(0)
    if task.bias_path is None:
        flags |= ReducedFitFlags.NO_MASTER_BIAS
    if task.flat_path is None:
        flags |= ReducedFitFlags.NO_MASTER_FLAT
    if task.spec.needs_darks and task.dark_path is None:
        flags |= ReducedFitFlags.NO_MASTER_DARK
    if outcome.stage not in ("read", "calibrate"):
        flags |= ReducedFitFlags.CALIBRATED
    if outcome.wcs_header:
        flags |= ReducedFitFlags.ASTROMETRY_OK
    if outcome.stage == "astrometry":
        flags |= ReducedFitFlags.ERROR_ASTROMETRY
    if outcome.stage in ("read", "calibrate"):
        flags |= ReducedFitFlags.ERROR_CALIBRATION
    if outcome.stage == "photometry":
        flags |= ReducedFitFlags.ERROR_PHOTOMETRY
    if outcome.measurements:
        flags |= ReducedFitFlags.PHOTOMETRY_DONE
    if outcome.n_cosmic_pixels:
        flags |= ReducedFitFlags.COSMIC_RAYS_MASKED
    if outcome.header_wcs:
        flags |= ReducedFitFlags.HEADER_WCS
    datadir = Path(task.reduced_path).parents[5]
    values = {
        "filename": str(task.reduced_path.relative_to(datadir)) if outcome.reduced_path else "",
        "masterbias": _master_id(state, MasterBias, task.bias_path, datadir),
        "masterdark": _master_id(state, MasterDark, task.dark_path, datadir),
        "masterflat": _master_id(state, MasterFlat, task.flat_path, datadir),
        "flags": int(flags),
        "error": outcome.error,
        "astrometry_method": outcome.astrometry_method,
        "astrometry_detail": outcome.astrometry_detail,
        "center_ra_deg": outcome.center[0] if outcome.center else None,
        "center_dec_deg": outcome.center[1] if outcome.center else None,
        "pixscale_arcsec": outcome.pixscale_arcsec,
        "seeing_fwhm_arcsec": (
            outcome.seeing_fwhm_px * outcome.pixscale_arcsec
            if outcome.seeing_fwhm_px and outcome.pixscale_arcsec
            else None
        ),
        "n_detected": outcome.n_detected,
        "n_cosmic_pixels": outcome.n_cosmic_pixels,
        "inputs_key": inputs_key,
        "modified": utcnow(),
    }
    reduced_id = _reduced_ids(state).get(rawfit.id)
    if reduced_id is None:
        # a new row has no dependent rows (they cascade with a deleted ReducedFit)
        reduced_id = ReducedFit.insert(rawfit=rawfit.id, **values).execute()
        state.reduced_ids[rawfit.id] = reduced_id
    else:
        ReducedFit.update(**values).where(ReducedFit.id == reduced_id).execute()
        for model in (SourceInField, AperPhotResult, FieldStarFlux):
            model.delete().where(model.reducedfit == reduced_id).execute()
    if outcome.field_stars:
        FieldStarFlux.insert_many(
            [
                {
                    "reducedfit": reduced_id,
                    "ra_deg": ra,
                    "dec_deg": dec,
                    "flux_counts": _finite(m.flux),
                    "flux_counts_err": _finite(m.flux_err),
                    "flags": m.flags,
                }
                for ra, dec, m in outcome.field_stars
            ]
        ).execute()
    members_key = PhotoPolResult.make_members_key([rawfit.fileloc])
    PhotoPolResult.delete().where(
        (PhotoPolResult.members_key == members_key) & (PhotoPolResult.method == "relphot")
    ).execute()
    if not outcome.in_field:
        return 0
    sources = _source_ids(state, outcome.in_field)
    SourceInField.insert_many(
        [
            {"reducedfit": reduced_id, "astrosource": sources[name], "x_px": x, "y_px": y}
            for name, (x, y) in outcome.in_field.items()
            if name in sources
        ]
    ).execute()
    radius, r_in, r_out = outcome.aperture_px or (math.nan, math.nan, math.nan)
    rows = [
        {
            "reducedfit": reduced_id,
            "astrosource": sources[m.name],
            "pair": m.pair,
            "aperture_px": radius,
            "annulus_in_px": r_in,
            "annulus_out_px": r_out,
            "x_px": m.x,
            "y_px": m.y,
            "flux_counts": _finite(m.flux),
            "flux_counts_err": _finite(m.flux_err),
            "bkg_counts": _finite(m.background),
            "bkg_counts_err": _finite(m.background_err),
            "fwhm_px": outcome.seeing_fwhm_px,
            "flags": m.flags,
        }
        for m in outcome.measurements
        if m.name in sources
    ]
    if rows:
        AperPhotResult.insert_many(rows).execute()
    if task.info.obsmode != "photometry" or not outcome.ok:
        return 0
    return _photometry_results(rawfit, task, outcome, catalog, sources, members_key, radius)


def _photometry_results(rawfit, task, outcome, catalog, sources, members_key, radius) -> int:
    """One relative-photometry result per target in the field that has calibrators."""
    totals: dict[str, tuple[float, float, int]] = {}
    for m in outcome.measurements:
        flux, variance, flags = totals.get(m.name, (0.0, 0.0, 0))
        totals[m.name] = (flux + m.flux, variance + m.flux_err**2, flags | m.flags)
    return store_relphot(rawfit, catalog, sources, totals, radius)


def store_relphot(rawfit, catalog: Catalog, sources, totals, radius) -> int:
    """Write the relphot results of one frame from its summed beam fluxes.

    ``totals`` maps source name to (flux, variance, PhotometryFlags) summed
    over its beams; ``sources`` maps names to AstroSource rows or row ids. Also used by
    ``iopreport build`` to recompute magnitudes from the stored fluxes after a
    catalog edit (:mod:`iopreport.reduce.recompute`).
    """
    members_key = PhotoPolResult.make_members_key([rawfit.fileloc])
    count = 0
    for found in relative_photometry(totals, catalog, rawfit.band, sources):
        zp = found.zp
        result = PhotoPolResult.create(
            astrosource=sources[found.name],
            epoch=rawfit.epoch,
            members_key=members_key,
            mode="photometry",
            method="relphot",
            instrument=rawfit.instrument,
            band=rawfit.band,
            exptime=rawfit.exptime,
            juliandate=rawfit.juliandate,
            juliandate_min=rawfit.juliandate,
            juliandate_max=rawfit.juliandate,
            n_frames=1,
            aperture_px=radius,
            flux_counts=found.flux,
            flux_counts_err=found.flux_err,
            mag_inst=found.mag_inst,
            mag_inst_err=found.mag_inst_err,
            mag_zp=zp.value if zp else None,
            mag_zp_err=zp.error if zp else None,
            mag=found.mag,
            mag_err=found.mag_err,
            mag_sys_err=zp.sys_error if zp else None,
            n_calibrators=zp.n_used if zp else 0,
            flags=int(found.flags),
        )
        PhotoPolMember.create(result=result, rawfit=rawfit)
        count += 1
    return count


def _master_id(state: NightState, model, path, datadir) -> int | None:
    """The row id of the master at ``path`` (None for none), looked up once per night."""
    if path is None:
        return None
    if path not in state.master_ids:
        row = model.get_or_none(model.filename == str(Path(path).relative_to(datadir)))
        if row is None:
            return None
        state.master_ids[path] = row.id
    return state.master_ids[path]


def _reduced_ids(state: NightState) -> dict[int, int]:
    """RawFit id -> ReducedFit id for the night's frames, read at the first stored frame."""
    if state.reduced_ids is None:
        ids = [rawfit.id for rawfit in state.rawfits]
        query = ReducedFit.select(ReducedFit.id, ReducedFit.rawfit).where(
            ReducedFit.rawfit.in_(ids)
        )
        state.reduced_ids = {row.rawfit_id: row.id for row in query}
    return state.reduced_ids


def _source_ids(state: NightState, names) -> dict[str, int]:
    """AstroSource name -> row id for ``names``, read from the store once per night."""
    missing = [name for name in names if name not in state.source_ids]
    if missing:
        query = AstroSource.select(AstroSource.id, AstroSource.name)
        for row in query.where(AstroSource.name.in_(missing)):
            state.source_ids[row.name] = row.id
    return {name: state.source_ids[name] for name in names if name in state.source_ids}


def _finite(value):
    return value if value is not None and math.isfinite(value) else None


def mark_saturated(rawfits: list[RawFit]) -> None:
    """Set RawFitFlags.SATURATED on frames left out for their saturated pixels."""
    for rawfit in rawfits:
        rawfit.flags = int(RawFitFlags(rawfit.flags) | RawFitFlags.SATURATED)
    if rawfits:
        RawFit.update(flags=RawFit.flags.bin_or(int(RawFitFlags.SATURATED))).where(
            RawFit.id.in_([rawfit.id for rawfit in rawfits])
        ).execute()


def store_master(config: Config, item: MasterWork, result: MasterJobResult) -> None:
    """The master's row and its inputs, in one transaction (nothing when it failed)."""
    job, epoch, report = item.job, item.state.epoch, item.state.report
    kind = job.kind
    model, input_model = MASTER_MODELS[kind]
    for name, reason in result.rejected.items():
        log.info("%s %s: not used in %s: %s", epoch.epochname, name, job.label, reason)
    by_name = {m.filename: m for m in item.members}
    if result.saturated:  # remembered on the raw frame, shown by status and the site
        mark_saturated([by_name[name] for name in result.saturated if name in by_name])
    if result.error:
        report.masters_failed[job.label] = result.error
        log.warning("%s: master%s %s: %s", epoch.epochname, kind, job.label, result.error)
        return
    few = MasterFlags.FEW_FRAMES if len(result.inputs) < RECOMMENDED_FRAMES else MasterFlags(0)
    kept = MasterFlags(item.existing.flags) & MasterFlags.BAD if item.existing else MasterFlags(0)
    values = {
        "epoch": epoch,
        "flags": int(kept | few),
        **item.values,
        "n_frames": len(result.inputs),
        "level": result.level,
        "noise": result.noise,
        "created": utcnow(),
    }
    if kind == "flat":
        values["masterdark"] = item.master_dark
    if kind in ("dark", "flat"):
        values["masterbias"] = item.master_bias
    relative = str(job.path.relative_to(config.paths.datadir))
    existing = item.existing
    with database_proxy.atomic():
        if existing is None:
            existing = model.create(filename=relative, **values)
        else:
            model.update(**values).where(model.id == existing.id).execute()
            input_model.delete().where(input_model.master == existing).execute()
        input_model.insert_many(
            [{"master": existing.id, "rawfit": by_name[name].id} for name in result.inputs]
        ).execute()
    report.masters_built += 1


#: A photometry frame whose zero point (per second of exposure) lies this far below
#: the median of the night's frames of the same instrument and band lost most of its
#: light to clouds (1 mag: less than 40% of the night's typical throughput).
MAX_EXTINCTION_MAG = 1.0
#: Fewest photometry frames of an instrument and band to judge a night's typical zero point.
MIN_FRAMES_FOR_TRANSPARENCY = 3


def check_transparency(epoch: Epoch, report: NightReport | None = None) -> list[str]:
    """Fail the photometry frames of ``epoch`` that lost most of their light to clouds.

    A frame's zero point per second, mag_zp - 2.5 log10(exptime), compared with
    the median of the night's frames of the same instrument and band: more than
    :data:`MAX_EXTINCTION_MAG` below it and the frame gets
    ``ReducedFitFlags.LOW_TRANSPARENCY`` and ``ERROR_PHOTOMETRY`` with the reason,
    its results ``LOW_TRANSPARENCY`` and ``BAD_PHOTOMETRY`` (kept, shown flagged).
    Relative photometry through thin, even cloud is sound, and is kept; through
    thick cloud the calibrators' light is mostly gone and patchy cloud is not even
    across the field. Returns the names of the frames failed.
    """
    rows = (
        PhotoPolResult.select(PhotoPolResult, PhotoPolMember.rawfit)
        .join(PhotoPolMember, on=(PhotoPolMember.result == PhotoPolResult.id))
        .where(
            (PhotoPolResult.epoch == epoch)
            & (PhotoPolResult.method == "relphot")
            & PhotoPolResult.mag_zp.is_null(False)
            & (PhotoPolResult.exptime > 0)
        )
    )
    per_frame: dict[int, tuple[str, str, float, list[int]]] = {}
    for result in rows:
        rawfit_id = result.photopolmember.rawfit_id
        zp_per_s = result.mag_zp - 2.5 * math.log10(result.exptime)
        if rawfit_id not in per_frame:
            per_frame[rawfit_id] = (result.instrument, result.band, zp_per_s, [])
        per_frame[rawfit_id][3].append(result.id)
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for instrument_name, band, zp_per_s, _ in per_frame.values():
        groups[instrument_name, band].append(zp_per_s)
    failed = []
    for rawfit_id, (instrument_name, band, zp_per_s, result_ids) in per_frame.items():
        values = groups[instrument_name, band]
        if len(values) < MIN_FRAMES_FOR_TRANSPARENCY:
            continue
        deficit = float(np.median(values)) - zp_per_s
        if deficit <= MAX_EXTINCTION_MAG:
            continue
        reason = (
            f"photometry: transparency {100 * 10 ** (-0.4 * deficit):.0f}% of the night's "
            f"typical for {instrument_name} {band} (zero point {deficit:.2f} mag low, "
            f"more than {MAX_EXTINCTION_MAG:.2f}): clouds"
        )
        reduced = ReducedFit.get_or_none(ReducedFit.rawfit == rawfit_id)
        if reduced is None or reduced.flags & ReducedFitFlags.LOW_TRANSPARENCY:
            continue  # failed before (a rerun reports it with the other unchanged frames)
        with database_proxy.atomic():
            flags = ReducedFitFlags(reduced.flags)
            flags |= ReducedFitFlags.LOW_TRANSPARENCY | ReducedFitFlags.ERROR_PHOTOMETRY
            ReducedFit.update(flags=int(flags), error=reason).where(
                ReducedFit.id == reduced.id
            ).execute()
            bad = int(ResultFlags.LOW_TRANSPARENCY | ResultFlags.BAD_PHOTOMETRY)
            PhotoPolResult.update(flags=PhotoPolResult.flags.bin_or(bad)).where(
                PhotoPolResult.id.in_(result_ids)
            ).execute()
        name = RawFit.get_by_id(rawfit_id).filename
        failed.append(name)
        log.warning("%s %s: %s", epoch.epochname, name, reason)
        if report is not None:
            if name in report.stored and name not in report.frames_failed:
                report.frames_reduced -= 1  # counted as reduced when it was stored
            report.frames_failed[name] = reason
    return failed


def store_sequences(epoch: Epoch, results: list[SequenceResult]) -> None:
    """Replace ``epoch``'s polarimetric results by ``results``, in one transaction.

    Every ``mode="polarimetry"`` row of the night is deleted, then each
    result is written as one ``PhotoPolResult`` with its ``PhotoPolMember``
    rows (:func:`iopreport.reduce.polnight.compute_night_polarimetry`).
    """
    with database_proxy.atomic():
        PhotoPolResult.delete().where(
            (PhotoPolResult.epoch == epoch) & (PhotoPolResult.mode == "polarimetry")
        ).execute()
        for result in results:
            _store_sequence(epoch, result)


def _store_sequence(epoch: Epoch, result: SequenceResult) -> None:
    members = result.members
    first = members[0].frame
    jds = [m.frame.juliandate for m in members]
    exptime = first.exptime
    half = exptime / 2.0 / 86400.0  # JDs are mid-exposure
    values = dict(
        astrosource=AstroSource.get(AstroSource.name == result.target),
        epoch=epoch,
        members_key=PhotoPolResult.make_members_key(m.frame.fileloc for m in members),
        mode="polarimetry",
        method=result.method or "none",
        instrument=first.instrument,
        band=first.band,
        exptime=exptime,
        juliandate=(min(jds) + max(jds)) / 2.0,
        juliandate_min=min(jds) - half,
        juliandate_max=max(jds) + half,
        n_frames=len(members),
        aperture_px=next((m.aperture_px for m in members if m.aperture_px), None),
        flags=int(result.flags),
        error=result.error,
        flag_reasons=list(result.notes),
    )
    if result.flux:
        values.update(flux_counts=result.flux[0], flux_counts_err=result.flux[1])
    if result.mag:
        mag_inst, mag_inst_err, zp = result.mag
        values.update(mag_inst=mag_inst, mag_inst_err=mag_inst_err, n_calibrators=0)
        if zp is not None:
            values.update(
                n_calibrators=zp.n_used,
                mag_zp=zp.value,
                mag_zp_err=zp.error,
                mag=mag_inst + zp.value,
                mag_err=math.hypot(mag_inst_err, zp.error),
                mag_sys_err=zp.sys_error,
            )
    if result.raw is not None:
        values.update(
            q_raw=result.raw.q,
            q_raw_err=result.raw.q_err,
            u_raw=result.raw.u,
            u_raw_err=result.raw.u_err,
        )
    if result.sky is not None:
        sky = result.sky
        values.update(
            q=sky.q,
            q_err=sky.q_err,
            u=sky.u,
            u_err=sky.u_err,
            p=sky.p,
            p_err=sky.p_err,
            p_debiased=sky.p_debiased,
            chi=sky.chi,
            chi_err=sky.chi_err,
            p_sys_err=result.p_sys_err,
            chi_sys_err=result.chi_sys_err,
        )
    row = PhotoPolResult.create(**values)
    PhotoPolMember.insert_many(
        [{"result": row.id, "rawfit": m.rawfit.id} for m in members]
    ).execute()
