"""The entry of a reduction: one or more nights at one or more telescopes, in one worker pool.

Registers and classifies the nights' files (:mod:`.register`), decides the
frames flags.toml excludes once for the run, then lets the scheduler
(:mod:`.schedule`) run every master and frame as soon as what it needs is
stored, with the planner (:mod:`.plan`) and the writer (:mod:`.persist`)
passed in; then each night's polarimetry and host correction. Work already
done for the same inputs is skipped, so a rerun after a crash picks up where
it stopped. See docs/architecture.md (reduction).
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import datetime as dt
import functools
import logging
import time
from dataclasses import dataclass, field

from iopreport.catalog import Catalog
from iopreport.config import Config
from iopreport.errors import IopreportError
from iopreport.reduce.executor import Executor, make_executor
from iopreport.reduce.frame import reduce_frame
from iopreport.reduce.frametask import FrameOutcome
from iopreport.reduce.hostnight import correct_host_galaxies
from iopreport.reduce.masterjob import MasterJobResult, make_master
from iopreport.reduce.persist import check_transparency, store_frame, store_master
from iopreport.reduce.plan import job_of, master_work, science_tasks
from iopreport.reduce.polnight import compute_night_polarimetry
from iopreport.reduce.register import register
from iopreport.reduce.schedule import NightWork, Scheduler
from iopreport.reduce.state import (
    NO_EXCLUSIONS,
    Exclusions,
    NightReport,
    NightState,
    raw_night_dir,
)
from iopreport.store import Epoch, RawFit, RawFitFlags, ReducedFit

log = logging.getLogger(__name__)

__all__ = [
    "NightReport",
    "ReductionRun",
    "raw_night_dir",
    "reduce_night",
    "reduce_nights",
]


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
        state = NightState(epoch, [], report)
        folder = folders[report.telescope, report.night]
        state.rawfits = register(epoch, folder, force, report, state.infos, config.registry)
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

    exclusions = NO_EXCLUSIONS
    if kinds & {"frames", "subframes"}:
        exclusions = decide_exclusions(config, catalog, states)

    started = time.perf_counter()
    pool = executor if executor is not None else make_executor(config, workers)
    try:
        scheduler = Scheduler(
            config, catalog, states, force, pool, progress, kinds, work=night_work(exclusions)
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


def decide_exclusions(config: Config, catalog: Catalog, states: list[NightState]) -> Exclusions:
    """The frames flags.toml's frame flags exclude (docs/flags.md), decided once for the run.

    Reads flags.toml (``config.paths.flags``; a missing file means no flags) and
    marks ``RawFitFlags.EXCLUDED`` in the store, only when a night of the run
    has light frames; what an excluded frame of these nights produced before is
    forgotten, so that its sequence is recomputed without it.

    Raises
    ------
    InputError
        flags.toml has a mistake (the reduction stops).
    """
    lights = [
        (state.epoch, rawfit)
        for state in states
        for rawfit in state.rawfits
        if rawfit.imgtype == "light" and rawfit.flags & RawFitFlags.CLASSIFIED
    ]
    if not lights:
        return NO_EXCLUSIONS
    from iopreport.flags.frames import drop_frame_products, excluded_frames
    from iopreport.flags.model import FlagSet
    from iopreport.flags.parse import load_flags

    path = config.paths.flags
    if path.exists():
        telescopes = sorted({i.telescope for i in config.instruments.values()})
        flagset = load_flags(path, catalog, telescopes=telescopes)
    else:
        flagset = FlagSet(path=path, catalog=catalog)
    exclusions = Exclusions(frozenset(excluded_frames(flagset)))
    for epoch, rawfit in lights:
        if exclusions.excludes(epoch, rawfit.filename):
            drop_frame_products(rawfit)
    return exclusions


def remeasure_off_trend(catalog, state: NightState, pool: Executor) -> list[str]:
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


def night_work(exclusions: Exclusions = NO_EXCLUSIONS) -> NightWork:
    """The planner and the writer, as the scheduler asks for them."""
    return NightWork(
        job_of=job_of,
        master_work=master_work,
        make_master=make_master,
        science_tasks=functools.partial(science_tasks, exclusions=exclusions),
        store_master=store_master,
        store_frame=store_frame,
        failed_master=lambda reason: MasterJobResult([], {}, None, None, reason),
    )
