"""The jobs of a reduction run and when each may start: masters and frames in one pool.

A night's work is a small dependency graph (IOP4's master calibration): a dark
needs the bias of its detector (instrument, frame size, binning), a flat
needs the bias and, for instruments that take them, the dark; a science frame
needs every master of its detector (it is matched to them when it starts);
a DIPOL polarimetry sub-frame also needs the night's solved DIPOL photometry
frames (its astrometry matches against them). :class:`Scheduler` starts each
job as soon as what it needs is stored, masters first, so that both workers
stay busy from the first bias to the last frame instead of idling at the end
of each stage (a stage-by-stage run spent half of its masters time with one
worker idle). Workers compute; this process writes each result to the store
as it arrives, in its own transaction.
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from iopreport.progress import Progress
from iopreport.reduce.executor import Executor
from iopreport.reduce.frame import reduce_frame
from iopreport.reduce.frametask import FrameOutcome, FrameTask

log = logging.getLogger(__name__)

#: Order of the kinds of job when several are ready (masters unblock frames).
PRIORITY = {"bias": 0, "dark": 1, "flat": 2, "frames": 3, "subframes": 4}
#: The kinds of job that build masters (the others reduce frames).
MASTER_KINDS = frozenset(("bias", "dark", "flat"))
#: Which kinds of job must all be stored before a job of a kind starts, and what the two
#: must share: the ``detector`` (instrument, frame size, binning) or the ``instrument``
#: (sub-frames wait for their instrument's full frames, their quad references). A frame
#: may use another night's master, so the needs of every night of the run count.
NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "bias": (),
    "dark": (("bias", "detector"),),
    "flat": (("bias", "detector"), ("dark", "detector")),
    "frames": (("bias", "detector"), ("dark", "detector"), ("flat", "detector")),
    "subframes": (
        ("bias", "detector"),
        ("dark", "detector"),
        ("flat", "detector"),
        ("frames", "instrument"),
    ),
}
#: Needs that apply only to instruments that take darks (``InstrumentSpec.needs_darks``):
#: other instruments' flats do not wait for darks they do not use.
NEEDS_IF_DARKS = frozenset({("flat", "dark")})


@dataclass
class Group:
    """Jobs of one kind for one night and detector, started together when ready."""

    kind: str  # bias, dark, flat, frames, subframes
    state: object  # iopreport.reduce.state.NightState
    detector: tuple[str, str, str]  # instrument, frame size (full frame), binning
    names: list[str] = field(default_factory=list)  # raw files of the group
    submitted: bool = False
    pending: int = 0  # jobs started and not yet stored

    @property
    def done(self) -> bool:
        return self.submitted and self.pending == 0

    @property
    def order(self) -> tuple:
        return (PRIORITY[self.kind], self.state.report.telescope, self.detector)


@dataclass(frozen=True)
class NightWork:
    """What the scheduler asks of its caller (:mod:`iopreport.reduce.run`): the planner
    (the kind of job of a raw frame, the jobs of a group) and the writer (how to store
    what a job returns).

    Passed in, so that this module imports neither.
    """

    job_of: Callable  # (config, state, rawfit) -> (kind, detector) or None
    master_work: Callable  # (config, state, kind, force, detector) -> [job item]
    make_master: Callable  # job item -> master result (runs in a worker)
    science_tasks: Callable  # (config, catalog, epoch, rawfits, force, report, ...) -> [task]
    store_master: Callable  # (config, item, result)
    store_frame: Callable  # (catalog, state, task, outcome)
    failed_master: Callable  # reason -> master result of a job whose worker crashed


class Scheduler:
    """Runs every master and frame of a run's nights as soon as its inputs are stored."""

    def __init__(
        self,
        config,
        catalog,
        states: list,
        force: bool,
        pool: Executor,
        progress,
        kinds: frozenset[str] = frozenset(PRIORITY),
        *,
        work: NightWork,
    ):
        self.work = work
        self.kinds = kinds  # the kinds of job of this run (masters only, frames only, all)
        self.config = config
        self.catalog = catalog
        self.states = states
        self.force = force
        self.pool = pool
        self.progress = progress
        self.bar: Progress | None = None
        self.groups: list[Group] = []
        self.frames_total = 0
        self.frames_done = 0
        self.masters_finished_s: float | None = None
        for state in states:
            self._plan(state)

    def _plan(self, state) -> None:
        """Groups of this night's calibration frames by kind and detector, and of its
        light frames by detector (quad-placed sub-frames apart)."""
        groups: dict[tuple, Group] = {}
        for rawfit in state.rawfits:
            job = self.work.job_of(self.config, state, rawfit)
            if job is None:
                continue
            kind, detector = job
            if kind not in MASTER_KINDS:
                self.frames_total += 1
            if kind not in self.kinds:
                continue
            key = (kind, detector)
            if key not in groups:
                groups[key] = Group(kind, state, detector)
            groups[key].names.append(rawfit.filename)
        self.groups += groups.values()

    def needs(self, group: Group) -> tuple[tuple[str, str], ...]:
        """:data:`NEEDS` of ``group``'s kind, for its instrument."""
        spec = self.config.registry.get(group.detector[0])
        return tuple(
            need
            for need in NEEDS[group.kind]
            if spec.needs_darks or (group.kind, need[0]) not in NEEDS_IF_DARKS
        )

    def _ready(self, group: Group) -> bool:
        """Whether everything ``group`` needs is stored (in any night of the run: a
        frame may be matched to another night's master, a sub-frame to another
        night's photometry frame)."""
        needs = self.needs(group)
        for other in self.groups:
            if other is group or other.done:
                continue
            for kind, shared in needs:
                if other.kind != kind:
                    continue
                if shared == "detector" and other.detector == group.detector:
                    return False
                if shared == "instrument" and other.detector[0] == group.detector[0]:
                    return False
        return True

    def run(self) -> None:
        """Start ready groups' jobs, store results as they come, until all are done."""
        started = time.perf_counter()
        # a bar on a terminal when asked (the CLI); otherwise a log line per frame (_tick)
        self.bar = Progress(
            self.frames_total,
            "reduce",
            unit="frame",
            enabled=bool(self.progress and sys.stderr.isatty()),
        )
        self.bar.update(self.frames_done)
        in_flight: dict[futures.Future, tuple] = {}  # -> (group, function, item, task)
        queue: list[tuple] = []  # (group, function, item), in priority order
        while True:
            for group in sorted(self.groups, key=lambda g: g.order):
                if not group.submitted and self._ready(group):
                    queue += self._start(group)
            queue.sort(key=lambda job: job[0].order)
            # keep every worker busy and one task waiting; no new frames for a worn-out pool
            while queue and len({job[3] for job in in_flight.values()}) <= self.pool.workers:
                group, function, item = queue[0]
                if function is reduce_frame and self.pool.worn_out:
                    break
                jobs = queue[: self._task_size(queue)]
                payloads = [job.job if group.kind in MASTER_KINDS else job for _, _, job in jobs]
                try:
                    submitted = self.pool.submit_many(function, payloads)
                except futures.BrokenExecutor:  # a worker died since the last results
                    self.pool.broken()
                    continue  # the jobs stay queued, for the next pool
                del queue[: len(jobs)]
                task = object()  # the jobs of one task take one place in the window
                for future, job in zip(submitted, jobs, strict=True):
                    in_flight[future] = (*job, task)
            if not in_flight:
                if queue and self.pool.worn_out:
                    self.pool.recycle()
                    continue
                if all(group.done for group in self.groups):
                    break
                if not queue and not any(
                    not g.submitted and self._ready(g) for g in self.groups
                ):  # nothing can start: a dependency that never completes (a bug)
                    waiting = [g for g in self.groups if not g.submitted]
                    raise RuntimeError(f"reduction scheduler stalled on {waiting}")
                continue
            finished, _ = futures.wait(in_flight, return_when=futures.FIRST_COMPLETED)
            for future in finished:
                group, function, item, _ = in_flight.pop(future)
                self._finish(group, function, item, future)
                group.pending -= 1
            if self.masters_finished_s is None and all(
                g.done for g in self.groups if g.kind in MASTER_KINDS
            ):
                self.masters_finished_s = time.perf_counter() - started
        self.bar.close()

    def _task_size(self, queue: list[tuple]) -> int:
        """How many of the first queued jobs go in one task (up to the pool's
        ``jobs_per_task``): frames of the first job's group, or masters of its kind
        (other nights' too). Fewer when the queued jobs of that function would not
        give each place in the window a task of that size: masters always (they
        gate frames, so a short queue of them is not held up behind each other),
        frames once every group has started (the run's last frames spread over the
        workers)."""
        group, function, _ = queue[0]
        size = self.pool.jobs_per_task
        if size <= 1:
            return 1
        if function is not reduce_frame or all(g.submitted for g in self.groups):
            queued = sum(1 for job in queue if job[1] is function)
            size = min(size, max(1, queued // (self.pool.workers + 1)))
        taken = 0
        for other, other_function, _ in queue[:size]:
            if other_function is not function or other.kind != group.kind:
                break
            if function is reduce_frame and other is not group:
                break
            taken += 1
        return taken

    def _start(self, group: Group) -> list[tuple]:
        """The jobs of a group that has become ready (matching masters now exist)."""
        group.submitted = True
        state = group.state
        names = set(group.names)
        if group.kind in MASTER_KINDS:
            work = self.work.master_work(self.config, state, group.kind, self.force, group.detector)
            jobs = [(group, self.work.make_master, item) for item in work]
        else:
            rawfits = [r for r in state.rawfits if r.filename in names]
            infos = {name: state.infos[name] for name in names}
            tasks = self.work.science_tasks(
                self.config,
                self.catalog,
                state.epoch,
                rawfits,
                self.force,
                state.report,
                subframes=group.kind == "subframes",
                infos=infos,
            )
            self.frames_done += len(names) - len(tasks)  # unchanged or excluded
            if self.bar is not None:
                self.bar.update(len(names) - len(tasks))
            jobs = [(group, reduce_frame, task) for task in tasks]
        group.pending = len(jobs)
        return jobs

    def _finish(self, group: Group, function, item, future: futures.Future) -> None:
        """Store a finished job's result (a failure of its own, never of the run)."""
        state = group.state
        if function is reduce_frame:
            try:
                outcome = future.result()
            except Exception as exc:  # a crashed worker fails its frame, not the night
                outcome = FrameOutcome(
                    raw_path=item.raw_path, error=f"worker: {exc}", stage="worker"
                )
                if isinstance(exc, futures.BrokenExecutor):
                    self.pool.broken()
            self.work.store_frame(self.catalog, state, item, outcome)
            self._tick(item, outcome)
            return
        try:
            result = future.result()
        except Exception as exc:  # the master fails alone; its frames look elsewhere
            result = self.work.failed_master(f"worker: {exc}")
            if isinstance(exc, futures.BrokenExecutor):
                self.pool.broken()
        state.worker_seconds["masters cpu"] += result.cpu_s
        state.report.worker_peak_rss_mb = max(state.report.worker_peak_rss_mb, result.peak_rss_mb)
        self.work.store_master(self.config, item, result)

    def _tick(self, task: FrameTask, outcome: FrameOutcome) -> None:
        self.frames_done += 1
        if self.bar is not None and self.bar.drawn:
            self.bar.update()
        else:
            status = "ok" if outcome.ok else outcome.error
            log.info(
                "[%d/%d] %s: %s", self.frames_done, self.frames_total, task.raw_path.name, status
            )
