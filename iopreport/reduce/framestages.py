"""The stages of one science frame's reduction, in a worker, and their helpers.

:data:`STAGES` lists them in order (read, calibrate, sub-frame quads, plate
solve, header WCS, place, quality, photometry); each takes the frame's
:class:`FrameWork` and fails the frame or lets the next one run. The reduced
FITS file is written here (raw header kept, provenance and WCS added).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits

from iopreport.instruments import InstrumentSpec
from iopreport.reduce.astrometry import find_pairs, pair_wcs
from iopreport.reduce.calibrate import calibrate
from iopreport.reduce.classify import FrameInfo
from iopreport.reduce.detect import detect
from iopreport.reduce.frametask import FrameOutcome, FrameTask
from iopreport.reduce.headerwcs import strip_wcs
from iopreport.reduce.measure import measure_frame
from iopreport.reduce.rawframe import read_raw
from iopreport.reduce.subframe import solve_subframe
from iopreport.reduce.workercache import get_solver, read_master, solver_error

#: Detection thresholds tried in order until a solve succeeds (the retry
#: ladder; fixed order, so a rerun does the same thing).
DETECTION_LADDER = (5.0, 3.0, 10.0)
#: Field stars measured on single-beam polarimetric frames for transparency normalisation.
FIELD_STARS = 15
#: Fraction of saturated pixels above which a frame is not measured (BANZAI: 5%).
MAX_SATURATED_FRACTION = 0.05
#: Median a/b of the bright stars above which a frame is trailed and not measured
#: (round stars on the simulated and real frames give 1.05-1.2; a 20-px trail, 3-4).
MAX_ELONGATION = 1.6


@dataclass
class FrameWork:
    """What the stages of one frame's reduction pass to each other (in one worker)."""

    task: FrameTask
    outcome: FrameOutcome
    clock: float = field(default_factory=time.perf_counter)
    raw: np.ndarray | None = None
    raw_header: fits.Header | None = None
    saturated_fraction: float = 0.0
    image: np.ndarray | None = None
    offset: tuple[float, float] | None = None  # the instrument's O/E offset at this binning
    has_pairs: bool = False  # O/E pairs in this frame
    pair_offset: tuple[float, float] | None = None  # the O/E offset measured
    detections: object = None
    first_detections: object = None  # the ladder's first (5 sigma): the header-WCS check's
    solution: object = None  # a plate solution
    wcs: object = None
    attempts: list[str] = field(default_factory=list)

    def lap(self, stage: str) -> None:
        """Add the time since the last lap to ``stage``'s seconds."""
        now = time.perf_counter()
        seconds = self.outcome.seconds
        seconds[stage] = seconds.get(stage, 0.0) + now - self.clock
        self.clock = now


def read_stage(work: FrameWork) -> FrameOutcome | None:
    """Read the raw pixels through the instrument's sections (:func:`.rawframe.read_raw`)."""
    try:
        prepared = read_raw(work.task.raw_path, work.task.spec)
    except Exception as exc:
        return _fail(work.outcome, "read", f"cannot read the raw data: {exc}")
    work.raw, work.raw_header = prepared.data, prepared.header
    if not np.isfinite(work.raw).any():
        return _fail(work.outcome, "read", "every pixel is NaN")
    work.saturated_fraction = prepared.saturated_fraction
    if prepared.spec is not None and prepared.spec != work.task.spec:
        # gain, read noise and saturation read from this frame's header keywords
        work.task = dataclasses.replace(work.task, spec=prepared.spec)
    work.lap("read")
    return None


def calibrate_stage(work: FrameWork) -> FrameOutcome | None:
    """Subtract the bias and dark, divide by the flat (:func:`.calibrate.calibrate`)."""
    task, info = work.task, work.task.info
    try:
        work.image = calibrate(
            work.raw,
            exptime=info.exptime,
            bias=read_master(task.bias_path),
            dark_rate=read_master(task.dark_path),
            flat=read_master(task.flat_path, flat=True),
            origin=info.subframe_origin,
        )
    except Exception as exc:
        return _fail(work.outcome, "calibrate", f"calibration failed: {exc}")
    work.lap("calibrate")
    spec = task.spec
    offset = spec.oe_offset_at(info.binning[0])
    work.has_pairs = offset is not None and spec.has_pairs(info.obsmode)
    if work.has_pairs and info.flipped:
        offset = (offset[0], -offset[1])
    work.offset = offset
    return None


def subframe_stage(work: FrameWork) -> FrameOutcome | None:
    """Sub-frames with too few stars for a blind solve: quads against a solved
    photometry frame (:func:`.subframe.solve_subframe`)."""
    task, outcome = work.task, work.outcome
    if not task.spec.solves_by_quads(task.info.subframe_origin) or work.offset is None:
        return None
    wcs, work.pair_offset, work.detections, method, error = solve_subframe(
        task, work.image, work.offset
    )
    work.lap("astrometry")
    outcome.n_detected = len(work.detections)
    if wcs is None:
        _write_reduced(task, work.image, work.raw_header, None, None, outcome)
        return _fail(outcome, "astrometry", error)
    work.wcs = wcs
    outcome.astrometry_method = "quads" if method.startswith("quads") else "central-pair"
    outcome.astrometry_detail = method
    outcome.header_wcs = "placed by its header" in method
    return None


def plate_solve_stage(work: FrameWork) -> FrameOutcome | None:
    """Detect and plate-solve, down the :data:`DETECTION_LADDER` until a solve succeeds."""
    task, info, spec, outcome = work.task, work.task.info, work.task.spec, work.outcome
    solver = get_solver(task.index_dir)
    for threshold in DETECTION_LADDER if work.wcs is None else ():
        detections = work.detections = detect(work.image, threshold_sigma=threshold)
        work.lap("detect")
        if work.first_detections is None:
            work.first_detections = detections
        xy = np.column_stack([detections.x, detections.y])
        label = f"sep {threshold:g} sigma"
        if work.has_pairs:
            pairs = find_pairs(detections.x, detections.y, work.offset, _pair_tolerance(spec, info))
            if pairs is None:
                work.attempts.append(f"{label}: no O/E pairs")
                continue
            xy = xy[pairs.o_index]
            work.pair_offset = pairs.offset
            label += f", {len(pairs.o_index)} O/E pairs"
        if solver is None:
            work.attempts.append(solver_error())
            break  # no index: the header's WCS, if it passes its check, is all there is
        result = solver.solve(
            xy,
            scale_arcsec=spec.pixscale_at(info.binning[0]),
            position=task.position_hint,
            budget_s=task.budget_s,
        )
        work.lap("astrometry")
        if result.ok:
            work.solution = result
            outcome.astrometry_method = "solved"
            outcome.astrometry_detail = (
                f"{label}; {result.n_stars} stars; logodds {result.logodds:.0f}"
            )
            break
        work.attempts.append(f"{label}: {result.error}")
    return None


def header_wcs_stage(work: FrameWork) -> FrameOutcome | None:
    """No plate solution: the header's own WCS, if the frame confirms it."""
    outcome = work.outcome
    if work.solution is not None or work.wcs is not None or work.first_detections is None:
        return None
    check = _header_fallback(
        work.task,
        work.raw_header,
        work.first_detections,
        work.image.shape,
        work.has_pairs,
        work.offset,
    )
    work.lap("astrometry")
    if check.ok:
        work.detections = work.first_detections
        work.wcs = check.wcs
        outcome.astrometry_method = check.method
        outcome.header_wcs = True
        outcome.astrometry_detail = (
            check.detail + " (plate solving failed: " + "; ".join(work.attempts) + ")"
        )
        if work.has_pairs:
            work.pair_offset = check.pair_offset
    else:
        work.attempts.append(check.error)
    return None


def place_stage(work: FrameWork) -> FrameOutcome | None:
    """The frame's centre, scale and WCS keywords; fails when no WCS was found."""
    outcome = work.outcome
    outcome.n_detected = len(work.detections) if work.detections is not None else 0
    if work.solution is None and work.wcs is None:
        _write_reduced(work.task, work.image, work.raw_header, None, None, outcome)
        reasons = "; ".join(work.attempts)
        return _fail(outcome, "astrometry", "plate solving failed (" + reasons + ")")
    if work.wcs is None:
        work.wcs = work.solution.wcs
    wcs = work.wcs
    ny, nx = work.image.shape
    centre = wcs.all_pix2world([[nx / 2 - 0.5, ny / 2 - 0.5]], 0)[0]
    outcome.center = (float(centre[0]), float(centre[1]))
    scales = np.sqrt(np.sum(wcs.pixel_scale_matrix**2, axis=0)) * 3600
    outcome.pixscale_arcsec = float(np.mean(scales))
    outcome.wcs_header = {k: v for k, v in wcs.to_header(relax=True).items()}
    return None


def quality_stage(work: FrameWork) -> FrameOutcome | None:
    """Fail trailed frames (:data:`MAX_ELONGATION`) and saturated ones
    (:data:`MAX_SATURATED_FRACTION`), written but not measured."""
    task, outcome = work.task, work.outcome
    elongation = (
        work.detections.median_elongation(saturation=task.spec.saturation_adu)
        if work.detections is not None
        else float("nan")
    )
    if elongation > MAX_ELONGATION:
        _write_reduced(task, work.image, work.raw_header, work.wcs, work.pair_offset, outcome)
        return _fail(
            outcome,
            "photometry",
            f"stars trailed or elongated (median a/b {elongation:.2f} > {MAX_ELONGATION:.2f}): "
            "circular apertures and the seeing would be wrong",
        )
    if work.saturated_fraction > MAX_SATURATED_FRACTION:
        outcome.saturated = True
        _write_reduced(task, work.image, work.raw_header, work.wcs, work.pair_offset, outcome)
        return _fail(outcome, "photometry", f"{work.saturated_fraction:.1%} of pixels saturated")
    return None


def photometry_stage(work: FrameWork) -> FrameOutcome | None:
    """Aperture photometry of the catalog sources in the field (:func:`.measure.measure_frame`)."""
    task, info, outcome = work.task, work.task.info, work.outcome
    photometry = measure_frame(
        work.image,
        work.raw,
        work.wcs,
        list(task.sources),
        task.spec,
        pair_offset=work.pair_offset if work.has_pairs else None,
        detections=work.detections,
        field_stars=FIELD_STARS if info.obsmode == "polarimetry" and not work.has_pairs else 0,
        seeing_hint_px=task.seeing_hint_px,
    )
    work.lap("photometry")
    outcome.seeing_fwhm_px = None if math.isnan(photometry.fwhm_px) else photometry.fwhm_px
    outcome.n_cosmic_pixels = photometry.n_cosmic_pixels
    outcome.in_field = photometry.in_field
    outcome.field_stars = photometry.field_stars
    if photometry.apertures is not None:
        a = photometry.apertures
        outcome.aperture_px = (a.radius, a.annulus_in, a.annulus_out)
    outcome.measurements = list(photometry.measurements)
    _write_reduced(task, work.image, work.raw_header, work.wcs, work.pair_offset, outcome)
    work.lap("write")
    if photometry.error:
        return _fail(outcome, "photometry", photometry.error)
    return None


#: The stages of a science frame, in order (as BANZAI's ordered stage list, McCully et
#: al. 2018): each takes the frame's :class:`FrameWork` and returns the outcome when the
#: frame fails there (the later stages do not run), None to go on.
STAGES = (
    read_stage,
    calibrate_stage,
    subframe_stage,
    plate_solve_stage,
    header_wcs_stage,
    place_stage,
    quality_stage,
    photometry_stage,
)


def _pair_tolerance(spec: InstrumentSpec, info: FrameInfo) -> tuple[float, float]:
    """Search tolerance of the O/E offset: 5 standard deviations, scaled to the binning."""
    std = spec.oe_offset_std_px
    factor = spec.reference_binning / info.binning[0]
    return (5 * std[0] * factor, 5 * std[1] * factor)


def _header_fallback(task: FrameTask, raw_header, detections, shape, has_pairs, offset):
    """The raw header's WCS (its WCS keywords, else its pointing keywords with the
    instrument's scale and rotation), checked against the catalog sources in the field
    (:func:`iopreport.reduce.headerwcs.check_header_wcs`)."""
    from iopreport.reduce import headerwcs

    info, spec = task.info, task.spec
    scale = spec.pixscale_at(info.binning[0])
    wcs = headerwcs.header_celestial_wcs(raw_header)
    kind = "WCS keywords"
    if wcs is None and info.pointing is not None:
        wcs = headerwcs.pointing_wcs(
            info.pointing,
            spec.shape_at(info.binning[0]),
            info.subframe_origin,
            spec.sky_rotation_deg,
            info.flipped,
            scale,
        )
        kind = "pointing keywords"
    if wcs is None:
        return headerwcs.HeaderCheck(None, error="no WCS or pointing keywords in the header")
    radec = np.array([(s.ra_deg, s.dec_deg) for s in task.sources]).reshape(-1, 2)
    xy = np.column_stack([detections.x, detections.y])
    pair = None
    if has_pairs:
        pairs = find_pairs(detections.x, detections.y, offset, _pair_tolerance(spec, info))
        pair = pairs.offset if pairs is not None else offset
    check = headerwcs.check_header_wcs(
        wcs, xy, shape, radec, scale, pair_offset=pair, target_radec=task.target_radec
    )
    check.pair_offset = pair
    if check.ok:
        check.detail = f"{kind}: {check.detail}"
    else:
        check.error = f"{kind}: {check.error}"
    return check


def _write_reduced(task, image, raw_header, wcs, pair_offset, outcome) -> None:
    """Reduced FITS: the raw header, provenance keys, WCS (key A; key B for the E beam)."""
    header = raw_header.copy()
    for key in ("BZERO", "BSCALE", "BITPIX"):
        header.remove(key, ignore_missing=True)
    header["IOPRAW"] = task.raw_path.name
    header["IOPBIAS"] = task.bias_path.name if task.bias_path else "none"
    header["IOPDARK"] = task.dark_path.name if task.dark_path else "none"
    header["IOPFLAT"] = task.flat_path.name if task.flat_path else "none"
    header.add_comment("IOPRAW, IOPBIAS, IOPDARK, IOPFLAT: raw file and masters used (iopreport)")
    header["BUNIT"] = ("adu", "calibrated counts")
    # the raw header's own WCS, if any, gives way to the one found (or to none: unchecked)
    strip_wcs(header)
    if wcs is not None:
        header.update(wcs.to_header(relax=True))
        header["IOPASTRO"] = (outcome.astrometry_method, "how the WCS was found (iopreport)")
    if wcs is not None and pair_offset is not None:
        header.update(pair_wcs(wcs, pair_offset).to_header(relax=True, key="B"))
        header["IOPPAIRX"] = (pair_offset[0], "E - O displacement x, px")
        header["IOPPAIRY"] = (pair_offset[1], "E - O displacement y, px")
    task.reduced_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = task.reduced_path.with_name(f".{task.reduced_path.name}.tmp")
    # big-endian already, as FITS stores it: astropy would swap the bytes in place and back
    fits.PrimaryHDU(data=np.asarray(image, dtype=">f4"), header=header).writeto(
        temporary, overwrite=True, output_verify="silentfix"
    )
    temporary.replace(task.reduced_path)
    outcome.reduced_path = task.reduced_path


def _fail(outcome: FrameOutcome, stage: str, message: str) -> FrameOutcome:
    outcome.stage = stage
    outcome.error = f"{stage}: {message}"
    return outcome
