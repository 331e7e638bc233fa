"""Polarimetric results of one night at one telescope, from the stored beam fluxes.

Reads what the frame reduction stored (``AperPhotResult`` per source, beam and
frame), builds sequences (:mod:`iopreport.reduce.sequences`), computes each
with its instrument's method (:mod:`iopreport.reduce.polarimetry`,
:mod:`iopreport.reduce.hwpfit`, :mod:`iopreport.reduce.cycleaverage`), corrects
for the instrumental polarization in force (config.toml
``[[polarimetry.instrumental]]``), calibrates the sequence's total flux
against the target's comparison stars, and has
:func:`iopreport.reduce.persist.store_sequences` write one ``PhotoPolResult``
(``mode="polarimetry"``) per sequence in one transaction (the values in
:mod:`iopreport.reduce.polresult`). A sequence that cannot be computed gets a
result row too, with ``error`` saying why and ``BAD_POLARIMETRY`` set, so the
night page and the e-mail can show it.

It needs no pixels, so ``iopreport build`` can rerun it after a catalog edit.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict

import numpy as np
from astropy.time import Time

from iopreport.catalog import Catalog
from iopreport.config import Config
from iopreport.identify import identify_target
from iopreport.instruments.polarization import InstrumentalPolarization, configured_instrumental
from iopreport.reduce import persist
from iopreport.reduce.cycleaverage import hwp_cycle_average
from iopreport.reduce.hwpfit import FitResult, hwp_least_squares, hwp_ratio, one_beam_fit
from iopreport.reduce.photometry import zero_point
from iopreport.reduce.polarimetry import (
    MINUS_BEAM,
    PLUS_BEAM,
    PolarimetryError,
    beam_difference,
    correct_instrumental,
    transparency_factors,
    wheel_modulation,
    wheel_stokes,
)
from iopreport.reduce.polresult import UNUSABLE, BeamFlux, FrameFluxes, SequenceResult
from iopreport.reduce.sequences import PolFrame, build_sequences
from iopreport.store import (
    AperPhotResult,
    AstroSource,
    Epoch,
    FieldStarFlux,
    RawFit,
    ReducedFit,
)
from iopreport.store.bits import PhotometryFlags, RawFitFlags, ReducedFitFlags, ResultFlags

log = logging.getLogger(__name__)

#: p errors above this (fraction) flag a result LARGE_POL_ERROR.
LARGE_P_ERROR = 0.05
#: Calibrators needed for a calibrated magnitude of a sequence (as for photometry).
MIN_CALIBRATORS = 2


def compute_night_polarimetry(config: Config, catalog: Catalog, epoch: Epoch) -> int:
    """Recompute every polarimetric result of ``epoch``; returns how many were stored."""
    frames = _polarimetric_frames(catalog, epoch)
    sequences = build_sequences(
        [f.frame for f in frames.values()], config.polarimetry.sequence_gap_minutes
    )
    results = []
    for sequence in sequences:
        members = [frames[f.fileloc] for f in sequence]
        result = compute_sequence(config, catalog, members)
        results.append(result)
    persist.store_sequences(epoch, results)
    ok = sum(1 for r in results if not r.error)
    log.info("%s: %d polarimetric sequences, %d computed", epoch.epochname, len(results), ok)
    return len(results)


def _polarimetric_frames(catalog: Catalog, epoch: Epoch) -> dict[str, FrameFluxes]:
    rawfits = list(
        RawFit.select().where(
            (RawFit.epoch == epoch)
            & (RawFit.imgtype == "light")
            & (RawFit.obsmode == "polarimetry")
        )
    )
    # the night's reduced frames, their beam fluxes and field stars: three queries in all
    reduced_of = {
        row.rawfit_id: row
        for row in ReducedFit.select().where(ReducedFit.rawfit.in_([r.id for r in rawfits]))
    }
    reduced_ids = [row.id for row in reduced_of.values()]
    beams = defaultdict(list)
    query = (
        AperPhotResult.select(AperPhotResult, AstroSource.name)
        .join(AstroSource)
        .where(AperPhotResult.reducedfit.in_(reduced_ids))
        .order_by(AperPhotResult.id)
    )
    for row in query:
        beams[row.reducedfit_id].append(row)
    stars = defaultdict(list)
    query = FieldStarFlux.select().where(FieldStarFlux.reducedfit.in_(reduced_ids))
    for star in query.order_by(FieldStarFlux.id):
        stars[star.reducedfit_id].append(star)
    frames: dict[str, FrameFluxes] = {}
    for rawfit in rawfits:
        if rawfit.flags & RawFitFlags.EXCLUDED or not rawfit.flags & RawFitFlags.CLASSIFIED:
            continue
        target = identify_target(rawfit.object_name or "", catalog.sources)
        if target is None or rawfit.angle is None or rawfit.juliandate is None:
            continue
        frame = PolFrame(
            fileloc=f"{epoch.epochname}/{rawfit.filename}",
            target=target,
            instrument=rawfit.instrument,
            band=rawfit.band or "",
            exptime=rawfit.exptime or 0.0,
            angle=rawfit.angle,
            juliandate=rawfit.juliandate,
        )
        reduced = reduced_of.get(rawfit.id)
        solved = bool(reduced and reduced.flags & ReducedFitFlags.ASTROMETRY_OK)
        fluxes = FrameFluxes(frame, rawfit, solved)
        if reduced is not None:
            fluxes.pixscale = reduced.pixscale_arcsec
            for row in beams[reduced.id]:
                fluxes.beams[(row.astrosource.name, row.pair)] = BeamFlux(
                    row.flux_counts if row.flux_counts is not None else math.nan,
                    row.flux_counts_err if row.flux_counts_err is not None else math.nan,
                    row.flags,
                )
                fluxes.aperture_px = row.aperture_px
                fluxes.fwhm_px = row.fwhm_px
            fluxes.field_stars = [
                (
                    star.ra_deg,
                    star.dec_deg,
                    BeamFlux(
                        star.flux_counts if star.flux_counts is not None else math.nan,
                        star.flux_counts_err if star.flux_counts_err is not None else math.nan,
                        star.flags,
                    ),
                )
                for star in stars[reduced.id]
            ]
        frames[frame.fileloc] = fluxes
    return frames


#: Field stars of two frames are the same star within this distance.
FIELD_STAR_MATCH_ARCSEC = 2.0


def field_star_matrix(frames: list[FrameFluxes]) -> tuple[np.ndarray, np.ndarray]:
    """Fluxes (stars x frames) of the field stars found in every frame, matched by position."""
    if not frames or not frames[0].field_stars:
        return np.zeros((0, len(frames))), np.zeros((0, len(frames)))
    reference = frames[0].field_stars
    flux = np.full((len(reference), len(frames)), np.nan)
    err = np.full_like(flux, np.nan)
    tolerance = FIELD_STAR_MATCH_ARCSEC / 3600.0
    for k, frame in enumerate(frames):
        if not frame.field_stars:
            continue
        ra = np.array([s[0] for s in frame.field_stars])
        dec = np.array([s[1] for s in frame.field_stars])
        for i, (ra0, dec0, _) in enumerate(reference):
            distance = np.hypot((ra - ra0) * math.cos(math.radians(dec0)), dec - dec0)
            j = int(np.argmin(distance))
            value = frame.field_stars[j][2]
            if distance[j] < tolerance and not value.flags & UNUSABLE and value.flux > 0:
                flux[i, k], err[i, k] = value.flux, value.err
    return flux, err


def robust_transparency(star_flux, star_err, modulation, max_chi2: float = 9.0):
    """:func:`transparency_factors`, dropping stars that do not follow the others (variables)."""
    norm = transparency_factors(star_flux, star_err, modulation)
    if norm.n_stars < 3:
        return norm
    usable = np.all(np.isfinite(star_flux) & (star_flux > 0) & np.isfinite(star_err), axis=1)
    flux, err = star_flux[usable], star_err[usable]
    corrected = flux / modulation
    ratio = corrected / corrected.mean(axis=1, keepdims=True)
    ratio_err = err / modulation / corrected.mean(axis=1, keepdims=True)
    chi2 = np.mean(((ratio - norm.factor) / ratio_err) ** 2, axis=1)
    keep = chi2 <= max(max_chi2, np.median(chi2) * 3)
    if keep.all() or keep.sum() < 2:
        return norm
    return transparency_factors(flux[keep], err[keep], modulation)


def instrumental_for(config: Config, members: list[FrameFluxes]) -> InstrumentalPolarization:
    """The instrumental polarization in force at the sequence's first frame."""
    first = members[0].frame
    when = Time(first.juliandate, format="jd", scale="utc").to_datetime()
    return configured_instrumental(
        config.polarimetry.instrumental, first.instrument, when, first.band
    )


def compute_sequence(
    config: Config, catalog: Catalog, members: list[FrameFluxes]
) -> SequenceResult:
    """The polarimetric result of one sequence (never raises for bad data)."""
    first = members[0].frame
    result = SequenceResult(first.target, members)
    spec = config.registry.get(first.instrument)
    inst = instrumental_for(config, members)
    entry = catalog.get(first.target)
    calibrators = [c for c in (entry.calibrators if entry else ()) if catalog.get(c)]
    if any(not m.solved for m in members):
        result.flags |= ResultFlags.ASTROMETRY_FAILED
    try:
        if spec.polarimetry == "wheel":
            _wheel(config, result, members, calibrators, inst)
        else:
            _half_wave_plate(config, result, members, calibrators, inst, spec)
    except PolarimetryError as exc:
        result.error = str(exc)
        result.flags |= ResultFlags.BAD_POLARIMETRY
        return result
    corrected = correct_instrumental(result.raw, inst)
    sky = result.sky = corrected.stokes
    result.p_sys_err, result.chi_sys_err = corrected.p_sys_err, corrected.chi_sys_err
    if sky.p > 1.0:
        result.flags |= ResultFlags.P_OUT_OF_RANGE | ResultFlags.BAD_POLARIMETRY
    if sky.p_err > LARGE_P_ERROR:
        result.flags |= ResultFlags.LARGE_POL_ERROR | ResultFlags.BAD_POLARIMETRY
    _magnitude(result, catalog, first.band, calibrators)
    return result


def _wheel(config, result, members, calibrators, inst) -> None:
    """OSN polarizer wheel: the IOP4 paper Eqs. 1-3 on transparency-normalised fluxes."""
    target = result.target
    usable = [m for m in members if m.get(target, "") is not None]
    missing = [m.frame.fileloc.rsplit("/", 1)[-1] for m in members if m not in usable]
    if missing:
        reasons = []
        for m in members:
            if m in usable:
                continue
            why = m.rawfit.reduced[0].error if m.rawfit.reduced.count() else "not reduced"
            reasons.append(f"{m.frame.fileloc.rsplit('/', 1)[-1]} ({why or 'target not measured'})")
        raise PolarimetryError("no target flux in " + "; ".join(reasons))
    angles = np.array([m.frame.angle for m in usable])
    flux = np.array([m.get(target, "").flux for m in usable])
    err = np.array([m.get(target, "").err for m in usable])
    factor = np.ones(len(usable))
    factor_err = np.zeros(len(usable))
    if config.polarimetry.normalise_by_comparison_stars:
        modulation = wheel_modulation(inst.q_inst, inst.u_inst, angles)
        cal_flux, cal_err = _star_matrix(usable, calibrators, "")
        field_flux, field_err = field_star_matrix(usable)
        star_flux = np.vstack([cal_flux, field_flux])
        star_err = np.vstack([cal_err, field_err])
        norm = robust_transparency(star_flux, star_err, modulation)
        if norm.n_stars:
            factor, factor_err = norm.factor, norm.factor_err
            result.notes.append(f"normalised by {norm.n_stars} comparison star(s)")
    if not factor_err.any():
        result.notes.append("not normalised (no comparison star in every frame)")
    normalised = flux / factor
    normalised_err = normalised * np.sqrt((err / flux) ** 2 + (factor_err / factor) ** 2)
    result.raw = wheel_stokes(angles, normalised, normalised_err)
    result.method = "osn-wheel"
    # total flux (Eq. 1): the four angles' normalised fluxes sum to 2 I for any polarization
    result.flux = (float(normalised.sum()), float(math.sqrt(np.sum(normalised_err**2))))
    result.used, result.factor = usable, factor


def _star_matrix(frames, names, beam):
    if not names:
        return np.zeros((0, len(frames))), np.zeros((0, len(frames)))
    flux = np.full((len(names), len(frames)), np.nan)
    err = np.full_like(flux, np.nan)
    for i, name in enumerate(names):
        for k, frame in enumerate(frames):
            value = frame.get(name, beam)
            if value is not None:
                flux[i, k], err[i, k] = value.flux, value.err
    return flux, err


def _half_wave_plate(config, result, members, calibrators, inst, spec) -> None:
    """CAFOS and DIPOL: both beams when measured (Eqs. 10-20), else one beam."""
    target = result.target
    both = [m for m in members if m.get(target, PLUS_BEAM) and m.get(target, MINUS_BEAM)]
    minimum = spec.min_pol_angles
    angles = np.array([m.frame.angle for m in both])
    if len({round(a % 90.0, 2) for a in angles}) >= min(minimum, 4) and len(both) >= minimum:
        plus = np.array([m.get(target, PLUS_BEAM).flux for m in both])
        plus_err = np.array([m.get(target, PLUS_BEAM).err for m in both])
        minus = np.array([m.get(target, MINUS_BEAM).flux for m in both])
        minus_err = np.array([m.get(target, MINUS_BEAM).err for m in both])
        if config.polarimetry.hwp_method == "ratio" and len(spec.pol_angles) == 4:
            result.raw = hwp_ratio(angles, plus, plus_err, minus, minus_err)
            result.method = "hwp-ratio"
        else:
            value, error = beam_difference(plus, plus_err, minus, minus_err)
            average = config.polarimetry.hwp_average
            if average == "instrument":
                average = spec.hwp_average
            fit = None
            if average == "cycles":
                try:
                    fit = hwp_cycle_average(angles, value, error)
                    result.method = "hwp-cycles"
                except PolarimetryError as error_cycles:
                    result.notes.append(f"{error_cycles}: one fit over all angles instead")
            if fit is None:
                fit = hwp_least_squares(
                    angles,
                    value,
                    error,
                    clip_sigma=config.polarimetry.clip_sigma if len(both) >= 8 else None,
                    min_points=minimum,
                )
                result.method = spec.hwp_fit_method
            _note_fit(result, fit)
            result.raw = fit.stokes
        total = plus + minus
        result.flux = (
            float(total.mean()),
            float(np.sqrt(np.sum(plus_err**2 + minus_err**2)) / len(total)),
        )
        result.used, result.factor = both, np.ones(len(both))
        return
    # one-beam fallback: the beam measured in the most frames
    best = None
    for beam, sign in ((PLUS_BEAM, 1.0), (MINUS_BEAM, -1.0)):
        frames = [m for m in members if m.get(target, beam)]
        if best is None or len(frames) > len(best[2]):
            best = (beam, sign, frames)
    beam, sign, frames = best
    if len(frames) < minimum:
        saturated = sum(
            1
            for m in members
            if any(
                (b := m.beams.get((target, beam))) is not None
                and b.flags & PhotometryFlags.SATURATED
                for beam in (PLUS_BEAM, MINUS_BEAM)
            )
        )
        why = f" (the target saturates on {saturated})" if saturated else ""
        raise PolarimetryError(
            f"target measured in both beams on {len(both)} and in one beam on at most "
            f"{len(frames)} of {len(members)} frames{why}; {minimum} angles needed"
        )
    angles = np.array([m.frame.angle for m in frames])
    flux = np.array([m.get(target, beam).flux for m in frames])
    err = np.array([m.get(target, beam).err for m in frames])
    if calibrators:
        t = np.radians(4.0 * angles)
        modulation = 1.0 + sign * (inst.q_inst * np.cos(t) + inst.u_inst * np.sin(t))
        star_flux, star_err = _star_matrix(frames, calibrators, beam)
        norm = robust_transparency(star_flux, star_err, modulation)
        if norm.n_stars:
            flux, err = (
                flux / norm.factor,
                np.hypot(err / norm.factor, flux * norm.factor_err / norm.factor**2),
            )
            result.notes.append(f"one beam normalised by {norm.n_stars} comparison star(s)")
    fit = one_beam_fit(angles, flux, err, sign=sign, min_points=minimum)
    result.raw = fit.stokes
    result.method = "one-beam"
    result.notes.append(f"only the {beam} beam was measurable")
    result.flux = (float(2 * flux.mean()), float(2 * np.sqrt(np.sum(err**2)) / len(err)))


def _note_fit(result: SequenceResult, fit: FitResult) -> None:
    if fit.rejected_angles:
        what = "cycle(s) starting at" if result.method == "hwp-cycles" else "angle(s)"
        result.notes.append(f"rejected {what} " + ", ".join(f"{a:g}" for a in fit.rejected_angles))


def _magnitude(result: SequenceResult, catalog: Catalog, band: str, calibrators) -> None:
    """Calibrated magnitude of the sequence's total flux against its comparison stars.

    Wheel: sums over the four angles of the normalised fluxes (each star's
    modulation averages out over a complete set); half-wave plate: the sum of
    both beams, frame by frame, which is the total flux at any angle.
    """
    target = result.target
    frames, factor = result.used, result.factor
    if result.method == "osn-wheel":
        beams = ("",)
    elif result.method in ("hwp-lsq", "hwp-ratio", "dipol-16", "hwp-cycles"):
        beams = (PLUS_BEAM, MINUS_BEAM)
    else:
        return

    def total(name):
        values = []
        for frame, f in zip(frames, factor, strict=True):
            parts = [frame.get(name, beam) for beam in beams]
            if any(p is None for p in parts):
                return None
            values.append((sum(p.flux for p in parts) / f, sum(p.err**2 for p in parts) / f**2))
        flux = sum(v for v, _ in values)
        return flux, math.sqrt(sum(e for _, e in values))

    mine = total(target)
    if mine is None or not mine[0] > 0:
        return
    mag_inst = -2.5 * math.log10(mine[0])
    mag_inst_err = 2.5 / math.log(10) * mine[1] / mine[0]
    rows = []
    for name in calibrators:
        entry = catalog.get(name)
        if band not in entry.mags:
            continue
        theirs = total(name)
        if theirs is None or not theirs[0] > 0:
            continue
        rows.append(
            (
                -2.5 * math.log10(theirs[0]),
                2.5 / math.log(10) * theirs[1] / theirs[0],
                entry.mags[band].value,
                entry.mags[band].err,
            )
        )
    zp = zero_point(rows)
    if zp is None or zp.n_used < MIN_CALIBRATORS:
        result.flags |= ResultFlags.FEW_CALIBRATORS
        result.mag = (mag_inst, mag_inst_err, None)
        return
    result.mag = (mag_inst, mag_inst_err, zp)
