"""One night at one telescope: register, classify, build masters, reduce frames in parallel.

Workers compute; this process writes the database, one transaction per frame
(the single-writer rule of docs/architecture.md). Work already done for the
same inputs is skipped, so a rerun after a crash picks up where it stopped.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import datetime as dt
import functools
import hashlib
import logging
import math
import os
import resource
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iopreport import __version__
from iopreport.catalog import Catalog
from iopreport.config import Config
from iopreport.errors import IopreportError
from iopreport.fileio import sha256_of
from iopreport.identify import identify_target
from iopreport.instruments import InstrumentSpec, instrument, quad_instruments
from iopreport.nightlayout import FITS_NAME
from iopreport.reduce.classify import (
    JD_PLAUSIBLE,
    ClassificationError,
    FrameInfo,
    classify_file,
)
from iopreport.reduce.executor import Executor, make_executor
from iopreport.reduce.frame import (
    FrameOutcome,
    FrameTask,
    ReferenceFrame,
    reduce_frame,
)
from iopreport.reduce.hostnight import correct_host_galaxies
from iopreport.reduce.masters import (
    RECOMMENDED_FRAMES,
    CalibrationFrame,
    build_master,
    master_header,
    write_master,
)
from iopreport.reduce.measure import SkySource
from iopreport.reduce.photometry import zero_point
from iopreport.reduce.polnight import compute_night_polarimetry
from iopreport.reduce.schedule import NightWork, Scheduler
from iopreport.store import (
    AperPhotResult,
    AstroSource,
    Epoch,
    FieldStarFlux,
    MasterBias,
    MasterBiasInput,
    MasterDark,
    MasterDarkInput,
    MasterFlags,
    MasterFlat,
    MasterFlatInput,
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

#: Magnitude error above which a result is flagged LARGE_MAG_ERROR (the reference's 0.3).
LARGE_MAG_ERROR = 0.3
#: Fewest calibrators for a trusted zero point.
MIN_CALIBRATORS = 2

_MASTER_MODELS = {
    "bias": (MasterBias, MasterBiasInput),
    "dark": (MasterDark, MasterDarkInput),
    "flat": (MasterFlat, MasterFlatInput),
}


@dataclass
class NightReport:
    """What :func:`reduce_night` did, for the terminal, the run log and the benchmark."""

    telescope: str
    night: dt.date
    files: int = 0
    unclassified: dict[str, str] = field(default_factory=dict)
    masters_built: int = 0
    masters_failed: dict[str, str] = field(default_factory=dict)
    frames_reduced: int = 0
    frames_skipped: int = 0
    frames_failed: dict[str, str] = field(default_factory=dict)
    results: int = 0
    sequences: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    worker_peak_rss_mb: float = 0.0  # the largest peak resident memory a worker reported
    stored: set[str] = field(default_factory=set)  # frames reduced and stored in this run
    #: frames in ``frames_failed`` that failed in an earlier run and were left unchanged
    failed_before: set[str] = field(default_factory=set)
    #: frames measured again against the night's seeing trend: name -> what happened
    seeing_remeasured: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Whether any frame of the night is failed or unclassified, or a master failed."""
        return bool(self.unclassified or self.frames_failed or self.masters_failed)

    @property
    def outcome(self) -> str:
        """``ok``, or ``failed`` with what failed (for the terminal and the run log)."""
        if not self.failed:
            return "ok"
        parts = []
        if self.frames_failed:
            unchanged = len(self.failed_before)
            parts.append(
                f"{len(self.frames_failed)} frames failed"
                + (f" ({unchanged} unchanged since an earlier run)" if unchanged else "")
            )
        if self.unclassified:
            parts.append(f"{len(self.unclassified)} unclassified")
        if self.masters_failed:
            parts.append(f"{len(self.masters_failed)} masters failed")
        return "failed: " + ", ".join(parts)

    def summary(self) -> str:
        return (
            f"{self.telescope} {self.night}: {self.outcome}; {self.files} files, "
            f"{len(self.unclassified)} unclassified, {self.masters_built} masters built "
            f"({len(self.masters_failed)} failed), {self.frames_reduced} frames reduced, "
            f"{self.frames_skipped} unchanged, {len(self.frames_failed)} failed, "
            f"{self.results} photometry results, {self.sequences} polarimetric sequences"
        )


def raw_night_dir(config: Config, telescope: str, night: dt.date) -> Path:
    return config.paths.data_subdir("raw") / telescope / night.isoformat()


def reduce_night(
    config: Config,
    catalog: Catalog,
    telescope: str,
    night: dt.date,
    *,
    workers: int | None = None,
    force: bool = False,
    progress: bool = False,
) -> NightReport:
    """Reduce every frame of ``telescope``'s ``night`` found under the raw data directory."""
    run = reduce_nights(
        config, catalog, [(telescope, night)], workers=workers, force=force, progress=progress
    )
    report = run.reports[0]
    report.seconds.update(run.seconds)
    return report


@dataclass
class ReductionRun:
    """What :func:`reduce_nights` did: a report per night and the wall time of each stage."""

    reports: list[NightReport]
    seconds: dict[str, float] = field(default_factory=dict)
    #: said once for the whole run (no usable index files), empty when all is well
    warnings: list[str] = field(default_factory=list)


def reduce_nights(
    config: Config,
    catalog: Catalog,
    nights: list[tuple[str, dt.date]],
    *,
    workers: int | None = None,
    force: bool = False,
    progress: bool = False,
    executor: Executor | None = None,
    stages: str = "all",
) -> ReductionRun:
    """Reduce several (telescope, night) pairs together in one worker pool.

    Files are registered and classified here; then every master and frame of
    every night runs in the pool as soon as what it needs is stored
    (:class:`iopreport.reduce.schedule.Scheduler`: masters first, a frame once
    its detector's masters exist, DIPOL sub-frames once the photometry frames
    they match against are solved); then each night's polarimetry and host
    correction run here. The pool is ``executor`` when given (left open, for
    the caller's next nights), else the one ``[cluster]`` asks for
    (:func:`iopreport.reduce.executor.make_executor`), closed at the end.
    ``stages="masters"`` builds only the nights' masters (a campaign builds
    every night's masters before any frame, so that a night may borrow a later
    night's); ``"frames"`` then reduces the frames with the stored masters.
    """
    kinds = {
        "all": frozenset(("bias", "dark", "flat", "frames", "subframes")),
        "masters": frozenset(("bias", "dark", "flat")),
        "frames": frozenset(("frames", "subframes")),
    }[stages]
    folders = {}
    for telescope, night in nights:
        folders[telescope, night] = folder = raw_night_dir(config, telescope, night)
        if not folder.is_dir():
            raise IopreportError(
                f"no raw data for {telescope} {night} in {folder}; run `iopreport fetch`"
            )
    run = ReductionRun([NightReport(telescope, night) for telescope, night in nights])
    started = time.perf_counter()
    states = []
    for report in run.reports:
        clock = time.perf_counter()
        epoch, _ = Epoch.get_or_create(telescope=report.telescope, night=report.night)
        state = _NightState(epoch, [], report)
        folder = folders[report.telescope, report.night]
        state.rawfits = _register(epoch, folder, force, report, state.infos)
        report.seconds["classify"] = time.perf_counter() - clock
        states.append(state)
    run.seconds["classify"] = time.perf_counter() - started
    if any(rawfit.imgtype == "light" for state in states for rawfit in state.rawfits):
        from iopreport.indexfiles.ready import NoIndexError, prepare_index

        try:
            prepare_index(config, catalog)
        except NoIndexError as exc:
            # one error now, not one per frame; frames whose header carries a WCS that
            # passes its check are still placed by it (reduce/headerwcs.py)
            run.warnings.append(f"{exc}; until then frames are placed by their header WCS")
            log.warning("%s", run.warnings[-1])

    started = time.perf_counter()
    pool = executor if executor is not None else make_executor(config, workers)
    try:
        scheduler = Scheduler(
            config, catalog, states, force, pool, progress, kinds, work=_night_work()
        )
        scheduler.run()
        if stages != "masters":
            for state in states:
                remeasure_off_trend(catalog, state, pool)
    finally:
        if executor is None:
            pool.close()
    run.seconds["masters and frames"] = time.perf_counter() - started
    if scheduler.masters_finished_s is not None:
        run.seconds["masters finished after"] = scheduler.masters_finished_s

    if stages == "masters":
        return run
    for state in states:
        check_transparency(state.epoch, state.report)
        report_still_failed(state.epoch, state.report)
    started = time.perf_counter()
    for state in states:
        clock = time.perf_counter()
        state.report.sequences = compute_night_polarimetry(config, catalog, state.epoch)
        correct_host_galaxies(catalog, state.epoch)
        state.report.seconds["polarimetry"] = time.perf_counter() - clock
    run.seconds["polarimetry"] = time.perf_counter() - started
    for state in states:
        state.report.seconds.update({f"worker:{k}": v for k, v in state.worker_seconds.items()})
        for stage, seconds in state.worker_seconds.items():
            run.seconds[f"worker:{stage}"] = run.seconds.get(f"worker:{stage}", 0.0) + seconds
    return run


@dataclass
class _NightState:
    """One night of a run: its epoch, raw frames, report and summed worker seconds."""

    epoch: Epoch
    rawfits: list[RawFit]
    report: NightReport
    worker_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    infos: dict[str, FrameInfo] = field(default_factory=dict)  # classified in this run
    tasks: dict[str, FrameTask] = field(default_factory=dict)  # frames stored in this run

    @functools.cached_property
    def by_name(self) -> dict[str, RawFit]:
        return {rawfit.filename: rawfit for rawfit in self.rawfits}


def store_frame(catalog, state: _NightState, task: FrameTask, outcome: FrameOutcome) -> None:
    """Store one frame's outcome, in its own transaction, and count it in the night's report."""
    for stage, seconds in outcome.seconds.items():
        state.worker_seconds[stage] += seconds
    state.worker_seconds["science cpu"] += outcome.cpu_s
    state.report.worker_peak_rss_mb = max(state.report.worker_peak_rss_mb, outcome.peak_rss_mb)
    rawfit = state.by_name[task.raw_path.name]
    with database_proxy.atomic():
        depends_on_index = outcome.header_wcs or outcome.stage == "astrometry"
        key = _inputs_key(task, rawfit.sha256, index_state=depends_on_index)
        state.report.results += _store_outcome(rawfit, task, outcome, catalog, key)
        if outcome.saturated:
            _mark_saturated([rawfit])
    state.report.stored.add(task.raw_path.name)
    state.tasks[task.raw_path.name] = task
    if outcome.ok:
        state.report.frames_reduced += 1
    else:
        state.report.frames_failed[task.raw_path.name] = outcome.error


def _register(
    epoch: Epoch, folder: Path, force: bool, report: NightReport, infos: dict[str, FrameInfo]
) -> list[RawFit]:
    """RawFit rows for every file, classified (again when the file changed); the
    classifications made are kept in ``infos`` by file name."""
    rawfits = []
    paths = [p for p in sorted(folder.iterdir()) if p.is_file() and FITS_NAME.match(p.name)]
    # hashing is most of this stage and hashlib releases the GIL: a thread per core
    with futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as threads:
        checksums = list(threads.map(sha256_of, paths))
    originals = _originals(epoch, [p.name for p in paths], checksums)
    for path, checksum in zip(paths, checksums, strict=True):
        report.files += 1
        rawfit, _created = RawFit.get_or_create(epoch=epoch, filename=path.name)
        if originals[checksum] != path.name:  # byte-identical to another file: reduced once
            reason = f"duplicate of {originals[checksum]} (same SHA-256)"
            if rawfit.sha256 != checksum or rawfit.error != reason:
                log.warning("%s: %s; not reduced again", path.name, reason)
            rawfit.sha256 = checksum
            rawfit.size_bytes = path.stat().st_size
            rawfit.flags = RawFitFlags.DOWNLOADED | RawFitFlags.DUPLICATE
            rawfit.error = reason
            rawfit.save()
            rawfits.append(rawfit)
            continue
        unchanged = (
            rawfit.sha256 == checksum
            and rawfit.flags & (RawFitFlags.CLASSIFIED | RawFitFlags.ERROR_CLASSIFY)
            and _plausible(rawfit)  # classified by an iopreport that checked less
        )
        if unchanged and not force:
            rawfits.append(rawfit)
            if rawfit.error:
                report.unclassified[path.name] = rawfit.error
            continue
        rawfit.sha256 = checksum
        rawfit.size_bytes = path.stat().st_size
        try:
            info = classify_file(path, epoch.telescope, epoch.night)
        except ClassificationError as exc:
            rawfit.flags = RawFitFlags.DOWNLOADED | RawFitFlags.ERROR_CLASSIFY
            rawfit.error = f"classify: {exc}"
            report.unclassified[path.name] = rawfit.error
            log.warning("%s: %s", path.name, rawfit.error)
        else:
            infos[path.name] = info
            rawfit.flags = RawFitFlags.DOWNLOADED | RawFitFlags.CLASSIFIED
            rawfit.error = ""
            rawfit.instrument = info.instrument
            rawfit.imgtype = info.imgtype
            rawfit.obsmode = info.obsmode
            rawfit.band = info.band
            rawfit.angle = info.angle
            rawfit.juliandate = info.juliandate
            rawfit.exptime = info.exptime
            rawfit.binning = info.binning_text
            rawfit.imgsize = info.imgsize
            rawfit.object_name = info.object_name
        rawfit.save()
        rawfits.append(rawfit)
    return rawfits


def _plausible(rawfit: RawFit) -> bool:
    """A stored classification within today's header ranges (else the file is classified again)."""
    if not rawfit.flags & RawFitFlags.CLASSIFIED:
        return True
    low, high = JD_PLAUSIBLE
    exptime = rawfit.exptime if rawfit.exptime is not None else 0.0
    return (
        rawfit.juliandate is not None
        and low <= rawfit.juliandate <= high
        and (exptime > 0 or (exptime == 0 and rawfit.imgtype == "bias"))
    )


def _originals(epoch: Epoch, names: list[str], checksums: list[str]) -> dict[str, str]:
    """For each checksum of a night, the file that stands for it (the others are duplicates).

    The file already classified under that checksum keeps its place (its results
    stay); otherwise the first name in sorted order.
    """
    stored = {
        rawfit.sha256: rawfit.filename
        for rawfit in RawFit.select(RawFit.filename, RawFit.sha256)
        .where(
            (RawFit.epoch == epoch)
            & (RawFit.flags.bin_and(int(RawFitFlags.CLASSIFIED)) != 0)
            & RawFit.filename.in_(names)
        )
        .order_by(RawFit.filename.desc())
    }
    originals: dict[str, str] = {}
    for name, checksum in zip(names, checksums, strict=True):
        originals.setdefault(checksum, stored.get(checksum, name))
    return originals


def _info(rawfit: RawFit, folder: Path) -> FrameInfo:
    return classify_file(folder / rawfit.filename, rawfit.epoch.telescope, rawfit.epoch.night)


def _master_keys(kind: str, rawfit: RawFit) -> tuple:
    keys = (rawfit.instrument, rawfit.imgsize, rawfit.binning)
    if kind == "flat":
        keys += (rawfit.band, rawfit.obsmode, rawfit.angle)
    return keys


@dataclass(frozen=True)
class MasterJob:
    """One master to build in a worker: its inputs, the masters it subtracts, its file."""

    kind: str
    label: str
    spec: InstrumentSpec
    frames: tuple[CalibrationFrame, ...]
    path: Path
    bias_path: Path | None
    dark_path: Path | None
    header_keys: tuple[tuple[str, object], ...]


@dataclass
class MasterJobResult:
    inputs: list[str]
    rejected: dict[str, str]
    level: float | None
    noise: float | None
    error: str
    saturated: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # processor time the worker spent on it
    peak_rss_mb: float = 0.0  # the worker's peak resident memory so far


def make_master(job: MasterJob) -> MasterJobResult:
    """Build and write one master (runs in a worker process)."""
    from astropy.io import fits

    cpu = time.process_time()
    spec = job.spec
    bias = fits.getdata(job.bias_path).astype("float32") if job.bias_path else None
    dark = fits.getdata(job.dark_path).astype("float32") if job.dark_path else None
    result = build_master(
        job.kind, list(job.frames), spec, bias=bias, dark_rate=dark, scratch_dir=job.path.parent
    )
    if result.ok:
        header = master_header(result, **dict(job.header_keys))
        if job.bias_path:
            header["IOPBIAS"] = job.bias_path.name
        if job.dark_path:
            header["IOPDARK"] = job.dark_path.name
        write_master(job.path, result, header)
    return MasterJobResult(
        inputs=[p.name for p in result.inputs],
        rejected=result.rejected,
        level=result.level,
        noise=result.noise,
        error=result.error,
        saturated=result.saturated,
        cpu_s=time.process_time() - cpu,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


@dataclass
class _MasterWork:
    """A master job with what is needed to write its row afterwards."""

    job: MasterJob
    keys: tuple
    members: list[RawFit]
    existing: object
    master_bias: object
    master_dark: object
    state: _NightState


def _master_work(config, state: _NightState, kind: str, force, detector=None) -> list[_MasterWork]:
    """Jobs of one kind of master for one night (those not already built from the same frames).

    ``detector`` (instrument, frame size, binning) keeps only that detector's.
    """
    epoch = state.epoch
    folder = raw_night_dir(config, epoch.telescope, epoch.night)
    groups: dict[tuple, list[RawFit]] = defaultdict(list)
    for rawfit in state.rawfits:
        if rawfit.imgtype == kind and rawfit.flags & RawFitFlags.CLASSIFIED:
            groups[_master_keys(kind, rawfit)].append(rawfit)
    model, _ = _MASTER_MODELS[kind]
    work = []
    for keys, members in sorted(groups.items(), key=lambda item: str(item[0])):
        instrument_name, imgsize, binning = keys[:3]
        spec = instrument(instrument_name)
        if detector is not None and tuple(keys[:3]) != tuple(detector):
            continue
        label = "_".join(str(k) for k in keys if k is not None).replace(" ", "")
        path = (
            config.paths.data_subdir(f"master{kind}")
            / epoch.telescope
            / epoch.night.isoformat()
            / f"master{kind}_{label}.fits"
        )
        existing = model.get_or_none(model.filename == str(path.relative_to(config.paths.datadir)))
        if existing is not None and not force and path.exists():
            used = {i.rawfit.filename for i in existing.inputs}
            if used <= {m.filename for m in members}:
                continue
        master_bias = master_dark = None
        if kind in ("dark", "flat"):
            master_bias = _match(MasterBias, epoch, instrument_name, imgsize, binning, config)
        if kind == "flat" and spec.needs_darks:
            master_dark = _match(MasterDark, epoch, instrument_name, imgsize, binning, config)
        path.parent.mkdir(parents=True, exist_ok=True)
        header_keys = {
            "instrume": instrument_name,
            "imgsize": imgsize,
            "binning": binning,
            "band": keys[3] if kind == "flat" else None,
            "obsmode": keys[4] if kind == "flat" else None,
            "angle": keys[5] if kind == "flat" else None,
            "night": epoch.night.isoformat(),
            "telescop": epoch.telescope,
            "iopvers": __version__,
        }
        job = MasterJob(
            kind=kind,
            label=label,
            spec=spec,
            frames=tuple(CalibrationFrame(folder / m.filename, m.exptime or 0.0) for m in members),
            path=path,
            bias_path=config.paths.datadir / master_bias.filename if master_bias else None,
            dark_path=config.paths.datadir / master_dark.filename if master_dark else None,
            header_keys=tuple(header_keys.items()),
        )
        work.append(_MasterWork(job, keys, members, existing, master_bias, master_dark, state))
    return work


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


def remeasure_off_trend(catalog, state: _NightState, pool: Executor) -> list[str]:
    """Reduce again, with the night's seeing trend as a hint, the frames stored in this run
    whose seeing is far from that of the frames taken around them
    (:func:`iopreport.reduce.seeingtrend.off_trend`). Returns their names."""
    from iopreport.reduce.seeingtrend import SeeingPoint, off_trend

    rows = (
        ReducedFit.select(
            RawFit.filename,
            RawFit.instrument,
            RawFit.binning,
            RawFit.juliandate,
            ReducedFit.seeing_fwhm_arcsec,
            ReducedFit.pixscale_arcsec,
        )
        .join(RawFit)
        .where(
            (RawFit.epoch == state.epoch)
            & ReducedFit.seeing_fwhm_arcsec.is_null(False)
            & ReducedFit.pixscale_arcsec.is_null(False)
            & (ReducedFit.error == "")
        )
        .tuples()
    )
    points, seeing, scales = [], {}, {}
    for name, instrument_name, binning, juliandate, fwhm, scale in rows:
        if juliandate is None:
            continue
        points.append(SeeingPoint(name, (instrument_name, binning), juliandate, fwhm))
        seeing[name], scales[name] = fwhm, scale
    outliers = {n: t for n, t in off_trend(points).items() if n in state.tasks}
    for name, trend in sorted(outliers.items()):
        task = dataclasses.replace(state.tasks[name], seeing_hint_px=trend / scales[name])
        if pool.worn_out:
            pool.recycle()
        try:
            outcome = pool.submit(reduce_frame, task).result()
        except Exception as exc:  # a crashed worker fails this frame, not the night
            outcome = FrameOutcome(raw_path=task.raw_path, error=f"worker: {exc}", stage="worker")
            if isinstance(exc, futures.BrokenExecutor):
                pool.broken()
        store_frame(catalog, state, task, outcome)
        state.report.frames_reduced -= 1  # it was counted when first stored
        after = (
            f'{outcome.seeing_fwhm_px * outcome.pixscale_arcsec:.2f}"'
            if outcome.seeing_fwhm_px and outcome.pixscale_arcsec
            else outcome.error
        )
        note = f'seeing {seeing[name]:.2f}" against the trend {trend:.2f}": now {after}'
        state.report.seeing_remeasured[name] = note
        log.warning("%s %s: %s", state.epoch.epochname, name, note)
    return sorted(outliers)


def report_still_failed(epoch: Epoch, report: NightReport) -> list[str]:
    """Add to ``report`` the frames of ``epoch`` that failed in an earlier run and were
    left unchanged by this one (a rerun must not report a failed night as clean).

    Returns their names (also kept in ``report.failed_before``).
    """
    rows = (
        ReducedFit.select(RawFit.filename, ReducedFit.error)
        .join(RawFit)
        .where((RawFit.epoch == epoch) & (ReducedFit.error != ""))
        .tuples()
    )
    found = []
    for name, error in rows:
        if name in report.frames_failed or name in report.stored:
            continue
        report.frames_failed[name] = error
        report.failed_before.add(name)
        found.append(name)
    return found


def _mark_saturated(rawfits: list[RawFit]) -> None:
    """Set RawFitFlags.SATURATED on frames left out for their saturated pixels."""
    for rawfit in rawfits:
        rawfit.flags = int(RawFitFlags(rawfit.flags) | RawFitFlags.SATURATED)
    if rawfits:
        RawFit.update(flags=RawFit.flags.bin_or(int(RawFitFlags.SATURATED))).where(
            RawFit.id.in_([rawfit.id for rawfit in rawfits])
        ).execute()


def _store_master(config, item: _MasterWork, result: MasterJobResult) -> None:
    """The master's row and its inputs, in one transaction (nothing when it failed)."""
    job, keys, epoch, report = item.job, item.keys, item.state.epoch, item.state.report
    kind = job.kind
    model, input_model = _MASTER_MODELS[kind]
    for name, reason in result.rejected.items():
        log.info("%s %s: not used in %s: %s", epoch.epochname, name, job.label, reason)
    by_name = {m.filename: m for m in item.members}
    if result.saturated:  # remembered on the raw frame, shown by status and the site
        _mark_saturated([by_name[name] for name in result.saturated if name in by_name])
    if result.error:
        report.masters_failed[job.label] = result.error
        log.warning("%s: master%s %s: %s", epoch.epochname, kind, job.label, result.error)
        return
    few = MasterFlags.FEW_FRAMES if len(result.inputs) < RECOMMENDED_FRAMES else MasterFlags(0)
    kept = MasterFlags(item.existing.flags) & MasterFlags.BAD if item.existing else MasterFlags(0)
    values = {
        "epoch": epoch,
        "flags": int(kept | few),
        "instrument": keys[0],
        "imgsize": keys[1],
        "binning": keys[2],
        "n_frames": len(result.inputs),
        "level": result.level,
        "noise": result.noise,
        "created": utcnow(),
    }
    if kind == "flat":
        values.update(band=keys[3], obsmode=keys[4], angle=keys[5], masterdark=item.master_dark)
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


def _match(model, epoch, instrument_name, imgsize, binning, config, **extra):
    """The master to use: same night first, otherwise the nearest night within the
    validity window; same instrument, size, binning (and band, mode, angle for
    flats); never one flagged bad (IOP4's master calibration, improved per §17.5)."""
    from iopreport.store import MasterFlags

    query = (
        model.select(model, Epoch)
        .join(Epoch)
        .where(
            (model.instrument == instrument_name)
            & (model.imgsize == imgsize)
            & (model.binning == binning)
            & (Epoch.telescope == epoch.telescope)
            & ((model.flags.bin_and(int(MasterFlags.BAD))) == 0)
        )
    )
    for name, value in extra.items():
        column = getattr(model, name)
        query = query.where(column.is_null() if value is None else column == value)
    window = dt.timedelta(days=config.processing.master_validity_days)
    best = None
    for master in query:
        distance = abs(master.epoch.night - epoch.night)
        if distance > window:
            continue
        if best is None or distance < abs(best.epoch.night - epoch.night):
            best = master
    return best


def _science_tasks(
    config, catalog, epoch, rawfits, force, report, subframes: bool = False, infos=None
) -> list[FrameTask]:
    """Tasks of the light frames that need (re)doing: DIPOL sub-frames only, or all others.

    ``infos`` maps file names to their classification when the caller has it.
    """
    folder = raw_night_dir(config, epoch.telescope, epoch.night)
    sources = tuple(SkySource(s.name, s.ra_deg, s.dec_deg) for s in catalog.sources)
    tasks = []
    # flags.toml frame flags (iopreport.flags, docs/flags.md): an excluded frame is not
    # reduced, and what it produced before is forgotten so its sequence is recomputed
    # without it. Marks RawFitFlags.EXCLUDED in the store; a broken flags.toml stops here.
    from iopreport.flags.apply import drop_frame_products, excluded_in_epoch

    excluded = excluded_in_epoch(config, catalog, epoch)
    solved = _SolvedDipolFrames(config, catalog) if subframes else None
    # frames placed by their header's WCS, or that failed plate solving, are tried again
    # when the index folder changes (their inputs key holds the folder's state)
    index_state = index_folder_state(config.paths.astrometry_index_dir)

    for rawfit in rawfits:
        if rawfit.imgtype != "light" or not rawfit.flags & RawFitFlags.CLASSIFIED:
            continue
        if rawfit.filename in excluded:
            drop_frame_products(rawfit)
            continue
        info = infos[rawfit.filename] if infos else _info(rawfit, folder)
        spec = instrument(info.instrument)
        is_subframe = spec.solves_by_quads(info.subframe_origin)
        if is_subframe != subframes:
            continue
        full = spec.shape_at(info.binning[0])
        size = info.imgsize if info.subframe_origin == (0, 0) else f"{full[0]}x{full[1]}"
        bias = _match(MasterBias, epoch, info.instrument, size, info.binning_text, config)
        dark = (
            _match(MasterDark, epoch, info.instrument, size, info.binning_text, config)
            if spec.needs_darks
            else None
        )
        flat_keys = {"band": info.band}
        if spec.flats_per_pol_setup:
            flat_keys.update(obsmode=info.obsmode, angle=info.angle)
        flat = _match(
            MasterFlat, epoch, info.instrument, size, info.binning_text, config, **flat_keys
        )
        target = identify_target(info.object_name, catalog.sources)
        hint = info.pointing
        target_radec = None
        field_radec: tuple[tuple[float, float], ...] = ()
        if target:
            entry = catalog.get(target)
            target_radec = (entry.ra_deg, entry.dec_deg)
            hint = hint or target_radec
            field_radec = tuple(
                (catalog.get(c).ra_deg, catalog.get(c).dec_deg)
                for c in entry.calibrators
                if catalog.get(c) is not None
            )
        reduced = (
            config.paths.data_subdir("calibration")
            / epoch.telescope
            / epoch.night.isoformat()
            / f"{rawfit.filename}.d"
            / "ReducedFit"
            / reduced_name(rawfit.filename)
        )
        task = FrameTask(
            raw_path=folder / rawfit.filename,
            reduced_path=reduced,
            info=info,
            bias_path=config.paths.datadir / bias.filename if bias else None,
            dark_path=config.paths.datadir / dark.filename if dark else None,
            flat_path=config.paths.datadir / flat.filename if flat else None,
            sources=sources,
            position_hint=hint,
            index_dir=config.paths.astrometry_index_dir,
            index_state=index_state,
            budget_s=config.processing.astrometry_timeout_s,
            spec=spec,
            target_radec=target_radec,
            field_radec=field_radec if is_subframe else (),
            reference=_subframe_reference(solved.references(target), epoch, rawfit)
            if is_subframe and target
            else None,
        )
        if is_subframe and task.reference is None:  # the fallback's orientation, to 0.1 deg
            found = solved.orientation(epoch, info.flipped)
            if found is not None:
                task = dataclasses.replace(task, orientation=(round(found[0], 1), found[1]))
        existing = ReducedFit.get_or_none(ReducedFit.rawfit == rawfit)
        if (
            existing is not None
            and not force
            and existing.inputs_key
            == _inputs_key(
                task,
                rawfit.sha256,
                index_state=bool(existing.flags & _INDEX_DEPENDENT),
            )
            and reduced.exists()
        ):
            report.frames_skipped += 1
            continue
        tasks.append(task)
    return tasks


#: Frames whose astrometry depended on what the index folder held (no index covered them).
_INDEX_DEPENDENT = ReducedFitFlags.HEADER_WCS | ReducedFitFlags.ERROR_ASTROMETRY


def index_folder_state(folder: Path) -> str:
    """A fingerprint of the FITS files in ``folder`` (names, sizes, times), '' when none."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return ""
    entries = sorted(
        (str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns)
        for path in folder.rglob("*.fits")
        if (stat := path.stat())
    )
    return hashlib.sha256(repr(entries).encode()).hexdigest()[:16] if entries else ""


def _subframe_reference(candidates, epoch, rawfit) -> ReferenceFrame | None:
    """The candidate nearest in time to ``rawfit``, this night first."""
    best = None
    for epoch_id, juliandate, reference in candidates:
        score = (epoch_id != epoch.id, abs(juliandate - rawfit.juliandate))
        if best is None or score < best[0]:
            best = (score, reference)
    return best[1] if best else None


class _SolvedDipolFrames:
    """The solved DIPOL photometry frames in the store (any night), queried once and each
    header read at most once: references for the polarimetry cuts of their target, and
    the night's orientation for cuts whose target has none.
    """

    def __init__(self, config: Config, catalog: Catalog) -> None:
        query = (
            ReducedFit.select(ReducedFit, RawFit)
            .join(RawFit)
            .where(
                RawFit.instrument.in_(quad_instruments())
                & (RawFit.obsmode == "photometry")
                & (RawFit.imgtype == "light")
                & (ReducedFit.flags.bin_and(int(ReducedFitFlags.ASTROMETRY_OK)) != 0)
            )
        )
        self.datadir = config.paths.datadir
        self.frames = [
            (reduced, identify_target(reduced.rawfit.object_name or "", catalog.sources))
            for reduced in query
            if (config.paths.datadir / reduced.filename).exists()
        ]
        self._headers: dict[int, object] = {}
        self._orientations: dict[tuple[int, bool], tuple[float, bool] | None] = {}

    def _header(self, reduced: ReducedFit):
        from astropy.io import fits

        if reduced.id not in self._headers:
            self._headers[reduced.id] = fits.getheader(self.datadir / reduced.filename)
        return self._headers[reduced.id]

    def references(self, target: str) -> list[tuple[int, float, ReferenceFrame]]:
        """(epoch id, JD, reference) of ``target``'s frames."""
        found = []
        for reduced, name in self.frames:
            if name != target:
                continue
            other = reduced.rawfit
            flipped = str(self._header(reduced).get("FLIPSTAT", "")).strip().lower() == "flip"
            binning = int((other.binning or "1x1").split("x")[0])
            path = self.datadir / reduced.filename
            found.append(
                (other.epoch_id, other.juliandate or 0.0, ReferenceFrame(path, flipped, binning))
            )
        return found

    def orientation(self, epoch: Epoch, flipped: bool) -> tuple[float, bool] | None:
        """Median (rotation, flip) of ``epoch``'s frames (any target) with that flip state.

        DIPOL's orientation on the sky is about the same for every target of a
        night with the same flip state: a cut without a reference frame of its
        own target takes this instead of the nominal 177.6 deg (on real nights
        the rotation moves with maintenance; on simulated ones each frame's
        scatters by a degree or more, so no single frame is taken).
        """
        from astropy.wcs import WCS

        from iopreport.reduce.quads import rotation_from_wcs

        key = (epoch.id, flipped)
        if key in self._orientations:
            return self._orientations[key]
        rotations = []
        for reduced, _ in self.frames:
            if reduced.rawfit.epoch_id != epoch.id:
                continue
            rotation, flip = rotation_from_wcs(WCS(self._header(reduced), relax=True))
            if flip == flipped:
                rotations.append(rotation)
        found = None
        if rotations:
            same = np.array(rotations)
            unwrapped = (same - same[0] + 180.0) % 360.0 - 180.0 + same[0]
            found = (float(np.median(unwrapped)) % 360.0, flipped)
        self._orientations[key] = found
        return found


def reduced_name(raw_name: str) -> str:
    """``x.fit``, ``x.fts``, ``x.fits.gz`` -> ``x.fits``."""
    stem = raw_name[: -len(".gz")] if raw_name.lower().endswith(".gz") else raw_name
    return Path(stem).with_suffix(".fits").name


def _inputs_key(task: FrameTask, sha256: str | None, *, index_state: bool = False) -> str:
    """What a reduced frame depends on: raw checksum, masters, index folder, code version.

    With ``index_state`` (frames placed by their header, or that failed plate
    solving) the key holds the index folder's content too, so such a frame is
    reduced again when index files are added, and no other frame is.
    """
    parts = [
        sha256 or "",
        str(task.bias_path or ""),
        str(task.dark_path or ""),
        str(task.flat_path or ""),
        str(task.index_dir),
        __version__,
        str(task.reference.path) if task.reference else "",
        str(task.orientation or ""),
        task.index_state if index_state else "",
    ]
    for path in (task.bias_path, task.dark_path, task.flat_path):
        parts.append(str(path.stat().st_mtime_ns) if path and path.exists() else "")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _store_outcome(rawfit, task, outcome, catalog, inputs_key) -> int:
    """Write one frame's outcome: ReducedFit, sources in field, apertures, results."""
    flags = ReducedFitFlags(0)
    if task.bias_path is None:
        flags |= ReducedFitFlags.NO_MASTER_BIAS
    if task.flat_path is None:
        flags |= ReducedFitFlags.NO_MASTER_FLAT
    if instrument(task.info.instrument).needs_darks and task.dark_path is None:
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
        "masterbias": _master_row(MasterBias, task.bias_path, datadir),
        "masterdark": _master_row(MasterDark, task.dark_path, datadir),
        "masterflat": _master_row(MasterFlat, task.flat_path, datadir),
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
    reduced = ReducedFit.get_or_none(ReducedFit.rawfit == rawfit)
    if reduced is None:
        reduced = ReducedFit.create(rawfit=rawfit, **values)
    else:
        ReducedFit.update(**values).where(ReducedFit.id == reduced.id).execute()
    SourceInField.delete().where(SourceInField.reducedfit == reduced).execute()
    AperPhotResult.delete().where(AperPhotResult.reducedfit == reduced).execute()
    FieldStarFlux.delete().where(FieldStarFlux.reducedfit == reduced).execute()
    if outcome.field_stars:
        FieldStarFlux.insert_many(
            [
                {
                    "reducedfit": reduced.id,
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
    sources = {
        s.name: s for s in AstroSource.select().where(AstroSource.name.in_(list(outcome.in_field)))
    }
    SourceInField.insert_many(
        [
            {"reducedfit": reduced.id, "astrosource": sources[name].id, "x_px": x, "y_px": y}
            for name, (x, y) in outcome.in_field.items()
            if name in sources
        ]
    ).execute()
    radius, r_in, r_out = outcome.aperture_px or (math.nan, math.nan, math.nan)
    rows = [
        {
            "reducedfit": reduced.id,
            "astrosource": sources[m.name].id,
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


def store_relphot(rawfit, catalog, sources, totals, radius) -> int:
    """Write the relphot results of one frame from its summed beam fluxes.

    ``totals`` maps source name to (flux, variance, PhotometryFlags) summed
    over its beams; ``sources`` maps names to AstroSource rows. Also used by
    ``iopreport build`` to recompute magnitudes from the stored fluxes after a
    catalog edit (:mod:`iopreport.reduce.recompute`).
    """
    from iopreport.store.bits import PhotometryFlags

    band = rawfit.band
    members_key = PhotoPolResult.make_members_key([rawfit.fileloc])
    count = 0
    for name, (flux, variance, mflags) in totals.items():
        entry = catalog.get(name)
        if entry is None or not entry.calibrators or not flux > 0 or name not in sources:
            continue
        mag_inst = -2.5 * math.log10(flux)
        mag_inst_err = 2.5 / math.log(10) * math.sqrt(variance) / flux
        calibrators = []
        for calibrator in entry.calibrators:
            other = catalog.get(calibrator)
            if calibrator not in totals or other is None or band not in other.mags:
                continue
            c_flux, c_variance, c_flags = totals[calibrator]
            if not c_flux > 0 or c_flags & PhotometryFlags.SATURATED:
                continue
            calibrators.append(
                (
                    -2.5 * math.log10(c_flux),
                    2.5 / math.log(10) * math.sqrt(c_variance) / c_flux,
                    other.mags[band].value,
                    other.mags[band].err,
                )
            )
        zp = zero_point(calibrators)
        flags = ResultFlags(0)
        mag = mag_err = None
        if zp is not None:
            mag = mag_inst + zp.value
            mag_err = math.hypot(mag_inst_err, zp.error)
        if zp is None or zp.n_used < MIN_CALIBRATORS:
            flags |= ResultFlags.FEW_CALIBRATORS | ResultFlags.BAD_PHOTOMETRY
        if mag_err is not None and mag_err > LARGE_MAG_ERROR:
            flags |= ResultFlags.LARGE_MAG_ERROR | ResultFlags.BAD_PHOTOMETRY
        if mflags & PhotometryFlags.SATURATED:
            flags |= ResultFlags.TARGET_SATURATED | ResultFlags.BAD_PHOTOMETRY
        result = PhotoPolResult.create(
            astrosource=sources[name],
            epoch=rawfit.epoch,
            members_key=members_key,
            mode="photometry",
            method="relphot",
            instrument=rawfit.instrument,
            band=band,
            exptime=rawfit.exptime,
            juliandate=rawfit.juliandate,
            juliandate_min=rawfit.juliandate,
            juliandate_max=rawfit.juliandate,
            n_frames=1,
            aperture_px=radius,
            flux_counts=flux,
            flux_counts_err=math.sqrt(variance),
            mag_inst=mag_inst,
            mag_inst_err=mag_inst_err,
            mag_zp=zp.value if zp else None,
            mag_zp_err=zp.error if zp else None,
            mag=mag,
            mag_err=mag_err,
            mag_sys_err=zp.sys_error if zp else None,
            n_calibrators=zp.n_used if zp else 0,
            flags=int(flags),
        )
        PhotoPolMember.create(result=result, rawfit=rawfit)
        count += 1
    return count


def _master_row(model, path, datadir):
    if path is None:
        return None
    return model.get_or_none(model.filename == str(Path(path).relative_to(datadir)))


def _finite(value):
    return value if value is not None and math.isfinite(value) else None


def _night_work() -> NightWork:
    """This module's planning and storing, as the scheduler asks for them."""
    return NightWork(
        night_folder=raw_night_dir,
        master_work=_master_work,
        make_master=make_master,
        science_tasks=_science_tasks,
        store_master=_store_master,
        store_frame=store_frame,
        failed_master=lambda reason: MasterJobResult([], {}, None, None, reason),
    )
