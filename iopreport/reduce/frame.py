"""The work on one science frame, as a worker process does it.

A task carries everything needed (paths, classification, masters, catalog
sources); the worker calibrates, writes the reduced FITS file (raw header kept,
provenance and WCS added), detects, plate-solves through its long-lived
solver, measures and returns a plain :class:`FrameOutcome`. It never touches
the database: the parent writes the outcome in one transaction.
"""

from __future__ import annotations

import functools
import math
import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from iopreport.instruments import InstrumentSpec
from iopreport.reduce.astrometry import PlateSolver, find_pairs, index_files_in, pair_wcs
from iopreport.reduce.calibrate import calibrate, usable_flat
from iopreport.reduce.classify import FrameInfo
from iopreport.reduce.detect import detect
from iopreport.reduce.headerwcs import strip_wcs
from iopreport.reduce.measure import SkySource, measure_frame
from iopreport.reduce.photometry import Measurement
from iopreport.reduce.rawframe import read_raw

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

_solver: PlateSolver | None = None
_solver_key: tuple[str, ...] = ()
_solver_error = ""


@dataclass(frozen=True)
class ReferenceFrame:
    """A solved full-frame DIPOL photometry image of the same field (for sub-frame astrometry)."""

    path: Path
    flipped: bool
    binning: int


@dataclass(frozen=True)
class FrameTask:
    """Inputs of one science frame's reduction (all picklable)."""

    raw_path: Path
    reduced_path: Path
    info: FrameInfo
    bias_path: Path | None
    dark_path: Path | None
    flat_path: Path | None
    sources: tuple[SkySource, ...]
    position_hint: tuple[float, float] | None
    index_dir: Path
    budget_s: float
    spec: InstrumentSpec  # carried along: workers may not know config-defined instruments
    target_radec: tuple[float, float] | None = None  # the identified target's catalog position
    reference: ReferenceFrame | None = None  # DIPOL polarimetry sub-frames only
    #: (rotation, flip) of a solved DIPOL frame of the night with the same flip state
    #: (sub-frames without a reference: the central-pair fallback's orientation)
    orientation: tuple[float, bool] | None = None
    index_state: str = ""  # fingerprint of the index folder (reduce.night.index_folder_state)
    field_radec: tuple[tuple[float, float], ...] = ()  # the target's calibrators (sub-frames)
    #: the night's seeing trend around this frame (px), when a first measurement disagreed
    seeing_hint_px: float | None = None


@dataclass
class FrameOutcome:
    """What became of a frame."""

    raw_path: Path
    reduced_path: Path | None = None
    error: str = ""
    stage: str = ""  # where it failed: read, calibrate, astrometry, photometry
    #: how the WCS was found: solved, quads, central-pair, header, header+shift
    astrometry_method: str = ""
    astrometry_detail: str = ""  # which attempt, and what it matched
    #: the WCS comes from a header's (this frame's, or its sub-frame reference's)
    header_wcs: bool = False
    wcs_header: dict = field(default_factory=dict)
    center: tuple[float, float] | None = None
    pixscale_arcsec: float | None = None
    seeing_fwhm_px: float | None = None
    aperture_px: tuple[float, float, float] | None = None
    n_detected: int = 0
    n_cosmic_pixels: int = 0
    measurements: list[Measurement] = field(default_factory=list)
    in_field: dict[str, tuple[float, float]] = field(default_factory=dict)
    field_stars: list[tuple[float, float, Measurement]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    saturated: bool = False  # too many saturated pixels to measure (RawFitFlags.SATURATED)
    cpu_s: float = 0.0  # processor time the worker spent on the frame
    peak_rss_mb: float = 0.0  # the worker's peak resident memory so far
    pid: int = 0

    @property
    def ok(self) -> bool:
        return not self.error


def init_worker(index_dir: str, owner_pid: int | None = None) -> None:
    """Pool initializer: load the astrometry.net index once for this process.

    With ``owner_pid``, a watchdog thread ends this worker when that process
    (the reduction that started the pool) is gone, e.g. killed with SIGKILL:
    otherwise the idle worker would outlive it. The worker keeps the memory it
    frees for its next frames (:func:`iopreport.reduce.memory.keep_freed_memory`).
    """
    from iopreport.reduce.memory import keep_freed_memory

    one_thread_per_worker()
    keep_freed_memory()
    _get_solver(Path(index_dir))
    if owner_pid:
        watch_owner(owner_pid)


#: Thread-count variables of the OpenMP and BLAS runtimes.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_thread_per_worker() -> None:
    """Keep a worker's numeric libraries to one thread (unless the user set a count).

    The pool already runs one worker per core; threads on top of that fight
    over the cores, and each small parallel region then waits for a
    descheduled thread (L.A.Cosmic's OpenMP loops, used before, took 0.66 s
    per DIPOL sub-frame with two threads on a busy 2-core machine and 0.05 s
    with one). Must run before the libraries load (the pool initializer).
    """
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")


def watch_owner(owner_pid: int) -> None:
    """End this worker when ``owner_pid`` is gone (killed with SIGKILL); a pool initializer.

    Also keeps the worker's numeric libraries to one thread (:func:`one_thread_per_worker`).
    """
    one_thread_per_worker()
    threading.Thread(target=_watch_owner, args=(owner_pid,), daemon=True).start()


def _watch_owner(pid: int, interval_s: float = 2.0) -> None:
    while True:
        time.sleep(interval_s)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass


def _get_solver(index_dir: Path) -> PlateSolver | None:
    """This process's solver (None, with ``_solver_error`` saying why, if it cannot load)."""
    global _solver, _solver_key, _solver_error
    files = index_files_in(index_dir)
    key = tuple(str(f) for f in files)
    if key != _solver_key or (_solver is None and not _solver_error):
        _solver_key = key
        _solver = None
        _solver_error = "" if files else f"no astrometry.net index files in {index_dir}"
        if files:
            try:
                _solver = PlateSolver(files)
            except Exception as exc:  # a damaged index file must not kill the worker
                _solver_error = f"cannot load the index files in {index_dir}: {exc}"
    return _solver


def _read(path: Path | None, flat: bool = False):
    """A master frame, cached in this worker (a night uses few masters for many frames);
    flats with their untrusted pixels set to NaN once (:func:`usable_flat`)."""
    if path is None:
        return None
    return _read_cached(str(path), path.stat().st_mtime_ns, flat)


@functools.lru_cache(maxsize=6)
def _read_cached(path: str, mtime_ns: int, flat: bool) -> np.ndarray:
    data = fits.getdata(path).astype(np.float32)
    if flat:
        data = usable_flat(data)
    data.setflags(write=False)
    return data


def reduce_frame(task: FrameTask) -> FrameOutcome:
    """Calibrate, solve and measure one frame; never raises for a bad frame."""
    cpu = time.process_time()
    outcome = FrameOutcome(raw_path=task.raw_path, pid=os.getpid())
    _reduce_frame(task, outcome)
    outcome.cpu_s = time.process_time() - cpu
    outcome.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return outcome


def _reduce_frame(task: FrameTask, outcome: FrameOutcome) -> FrameOutcome:
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        outcome.seconds[stage] = outcome.seconds.get(stage, 0.0) + now - clock
        clock = now

    info = task.info
    spec = task.spec
    try:
        prepared = read_raw(task.raw_path, spec)
    except Exception as exc:
        return _fail(outcome, "read", f"cannot read the raw data: {exc}")
    raw, raw_header = prepared.data, prepared.header
    if not np.isfinite(raw).any():
        return _fail(outcome, "read", "every pixel is NaN")
    saturated_fraction = prepared.saturated_fraction
    lap("read")
    try:
        image = calibrate(
            raw,
            exptime=info.exptime,
            bias=_read(task.bias_path),
            dark_rate=_read(task.dark_path),
            flat=_read(task.flat_path, flat=True),
            origin=info.subframe_origin,
        )
    except Exception as exc:
        return _fail(outcome, "calibrate", f"calibration failed: {exc}")
    lap("calibrate")

    solver = _get_solver(task.index_dir)
    offset = spec.oe_offset_at(info.binning[0])
    has_pairs = offset is not None and spec.has_pairs(info.obsmode)
    if has_pairs and info.flipped:
        offset = (offset[0], -offset[1])
    solution = None
    pair_offset = None
    detections = None
    attempts = []
    wcs = None
    if spec.solves_by_quads(info.subframe_origin) and offset is not None:
        # too few stars for a blind solve: quads against a solved photometry frame
        wcs, pair_offset, detections, method, error = _solve_subframe(task, image, offset)
        lap("astrometry")
        outcome.n_detected = len(detections)
        if wcs is None:
            _write_reduced(task, image, raw_header, None, None, outcome)
            return _fail(outcome, "astrometry", error)
        outcome.astrometry_method = "quads" if method.startswith("quads") else "central-pair"
        outcome.astrometry_detail = method
        outcome.header_wcs = "placed by its header" in method
    first_detections = None  # the ladder's first (5 sigma): the header-WCS check's
    for threshold in DETECTION_LADDER if wcs is None else ():
        detections = detect(image, threshold_sigma=threshold)
        lap("detect")
        if first_detections is None:
            first_detections = detections
        xy = np.column_stack([detections.x, detections.y])
        label = f"sep {threshold:g} sigma"
        if has_pairs:
            pairs = find_pairs(detections.x, detections.y, offset, _pair_tolerance(spec, info))
            if pairs is None:
                attempts.append(f"{label}: no O/E pairs")
                continue
            xy = xy[pairs.o_index]
            pair_offset = pairs.offset
            label += f", {len(pairs.o_index)} O/E pairs"
        if solver is None:
            attempts.append(_solver_error)
            break  # no index: the header's WCS, if it passes its check, is all there is
        result = solver.solve(
            xy,
            scale_arcsec=spec.pixscale_at(info.binning[0]),
            position=task.position_hint,
            budget_s=task.budget_s,
        )
        lap("astrometry")
        if result.ok:
            solution = result
            outcome.astrometry_method = "solved"
            outcome.astrometry_detail = (
                f"{label}; {result.n_stars} stars; logodds {result.logodds:.0f}"
            )
            break
        attempts.append(f"{label}: {result.error}")
    if solution is None and wcs is None and first_detections is not None:
        # no plate solution: the header's own WCS, if the frame confirms it
        check = _header_fallback(task, raw_header, first_detections, image.shape, has_pairs, offset)
        lap("astrometry")
        if check.ok:
            detections = first_detections
            wcs = check.wcs
            outcome.astrometry_method = check.method
            outcome.header_wcs = True
            outcome.astrometry_detail = (
                check.detail + " (plate solving failed: " + "; ".join(attempts) + ")"
            )
            if has_pairs:
                pair_offset = check.pair_offset
        else:
            attempts.append(check.error)
    outcome.n_detected = len(detections) if detections is not None else 0
    if solution is None and wcs is None:
        _write_reduced(task, image, raw_header, None, None, outcome)  # calibrated, unsolved
        return _fail(outcome, "astrometry", "plate solving failed (" + "; ".join(attempts) + ")")
    if wcs is None:
        wcs = solution.wcs
    ny, nx = image.shape
    centre = wcs.all_pix2world([[nx / 2 - 0.5, ny / 2 - 0.5]], 0)[0]
    outcome.center = (float(centre[0]), float(centre[1]))
    scales = np.sqrt(np.sum(wcs.pixel_scale_matrix**2, axis=0)) * 3600
    outcome.pixscale_arcsec = float(np.mean(scales))
    outcome.wcs_header = {k: v for k, v in wcs.to_header(relax=True).items()}
    elongation = (
        detections.median_elongation(saturation=spec.saturation_adu)
        if detections is not None
        else float("nan")
    )
    if elongation > MAX_ELONGATION:
        _write_reduced(task, image, raw_header, wcs, pair_offset, outcome)
        return _fail(
            outcome,
            "photometry",
            f"stars trailed or elongated (median a/b {elongation:.2f} > {MAX_ELONGATION:.2f}): "
            "circular apertures and the seeing would be wrong",
        )
    if saturated_fraction > MAX_SATURATED_FRACTION:
        outcome.saturated = True
        _write_reduced(task, image, raw_header, wcs, pair_offset, outcome)
        return _fail(outcome, "photometry", f"{saturated_fraction:.1%} of pixels saturated")
    photometry = measure_frame(
        image,
        raw,
        wcs,
        list(task.sources),
        spec,
        pair_offset=pair_offset if has_pairs else None,
        detections=detections,
        field_stars=FIELD_STARS if info.obsmode == "polarimetry" and not has_pairs else 0,
        seeing_hint_px=task.seeing_hint_px,
    )
    lap("photometry")
    outcome.seeing_fwhm_px = None if math.isnan(photometry.fwhm_px) else photometry.fwhm_px
    outcome.n_cosmic_pixels = photometry.n_cosmic_pixels
    outcome.in_field = photometry.in_field
    outcome.field_stars = photometry.field_stars
    if photometry.apertures is not None:
        a = photometry.apertures
        outcome.aperture_px = (a.radius, a.annulus_in, a.annulus_out)
    outcome.measurements = list(photometry.measurements)
    _write_reduced(task, image, raw_header, wcs, pair_offset, outcome)
    lap("write")
    if photometry.error:
        return _fail(outcome, "photometry", photometry.error)
    return outcome


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


#: Detection threshold on DIPOL polarimetry sub-frames (sigma above the background).
SUBFRAME_THRESHOLD = 3.0
#: Margin around the sub-frame's nominal place in the reference frame, px at 2x2
#: (pointing differences between the exposures; DIPOL pointing is good to ~6").
SUBFRAME_WINDOW_MARGIN_2X2 = 300.0


def _solve_subframe(task: FrameTask, image: np.ndarray, offset: tuple[float, float]):
    """WCS of a DIPOL polarimetry sub-frame: quads, else the central O/E pair.

    Returns (wcs, pair_offset, detections, method, error).
    """
    from iopreport.reduce import quads

    info = task.info
    spec = task.spec
    detections = detect(image, threshold_sigma=SUBFRAME_THRESHOLD)
    sub_xy = np.column_stack([detections.x, detections.y])
    scatter = quads.default_scatter(offset, task.spec.name)
    pairs = find_pairs(detections.x, detections.y, offset, scatter) if len(detections) else None
    pair_offset = pairs.offset if pairs is not None else offset
    rotation, flip = spec.sky_rotation_deg, info.flipped
    if task.orientation is not None and task.orientation[1] == info.flipped:
        rotation = task.orientation[0]  # measured tonight, on another target's frame
    reasons = []
    if task.reference is None:
        reasons.append("no solved DIPOL photometry frame of this target to match quads against")
    else:
        try:
            ref_wcs, ref_xy, ref_flux, ref_shape, ref_method = _reference_detections(
                task.reference.path
            )
        except Exception as exc:
            ref_wcs = None
            reasons.append(f"reference {task.reference.path.name} unreadable: {exc}")
        if ref_wcs is not None:
            rotation, flip = quads.rotation_from_wcs(ref_wcs)
            ratio = info.binning[0] / task.reference.binning
            x0, y0 = info.subframe_origin
            ny, nx = image.shape
            margin = SUBFRAME_WINDOW_MARGIN_2X2 * 2 / task.reference.binning
            window = (
                x0 * ratio - margin,
                y0 * ratio - margin,
                (x0 + nx) * ratio + margin,
                (y0 + ny) * ratio + margin,
            )
            match = quads.match_to_reference(
                sub_xy,
                detections.flux,
                ref_xy,
                ref_flux,
                flip=info.flipped != task.reference.flipped,
                scale_ratio=ratio,
                oe_offset=offset,
                ref_window=window,
                ref_shape=ref_shape,
            )
            if match is not None:
                wcs = quads.wcs_from_reference(ref_wcs, match.transform, image.shape)
                method = (
                    f"quads against {task.reference.path.name}: {match.n_matched} sources "
                    f"matched, rms {match.rms_px:.2f} px"
                )
                if ref_method.startswith("header"):
                    method += f" (the reference placed by its header WCS: {ref_method})"
                return wcs, pair_offset, detections, method, ""
            reasons.append(f"no quad match against {task.reference.path.name}")
    if task.target_radec is not None and len(detections):
        wcs = quads.central_pair_wcs(
            detections,
            image.shape,
            task.target_radec,
            offset,
            rotation,
            flip,
            spec.pixscale_at(info.binning[0]),
            scatter_px=scatter,
            field_radec=np.array(task.field_radec) if task.field_radec else None,
        )
        if wcs is not None:
            method = "central O/E pair at the target's catalog position ({})".format(
                "; ".join(reasons)
            )
            return wcs, pair_offset, detections, method, ""
        reasons.append("no single O/E pair near the centre")
    return None, None, detections, "", "sub-frame astrometry failed (" + "; ".join(reasons) + ")"


@functools.lru_cache(maxsize=4)
def _reference_detections(path: Path):
    """WCS (O beam), detections, shape and astrometry method (``IOPASTRO``) of a solved
    reference frame, cached per worker."""
    from astropy.wcs import WCS

    with fits.open(path, memmap=False) as hdul:
        data = np.asarray(hdul[0].data, dtype=np.float32)
        header = hdul[0].header
    wcs = WCS(header)
    if not wcs.has_celestial:
        raise ValueError("it has no WCS")
    method = str(header.get("IOPASTRO", ""))
    found = detect(data, threshold_sigma=SUBFRAME_THRESHOLD)
    return wcs, np.column_stack([found.x, found.y]), found.flux, data.shape, method


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
