"""The scheduler with a synchronous in-process pool and a planner and writer made here.

Checks the :data:`iopreport.reduce.schedule.NEEDS` order (no job starts before
every job it needs is stored) and what becomes of a master whose worker
crashes. No night simulated, no store: fast.
"""

from __future__ import annotations

import concurrent.futures as futures
import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest

from iopreport.instruments.registry import InstrumentRegistry
from iopreport.reduce.executor import run_each
from iopreport.reduce.frame import reduce_frame
from iopreport.reduce.frametask import FrameOutcome
from iopreport.reduce.schedule import MASTER_KINDS, NightWork, Scheduler
from iopreport.reduce.state import NightReport, NightState

NIGHT = dt.date(2023, 2, 24)
OSN = ("AndorT90", "2048x2048", "1x1")
DIPOL = ("DIPOL", "2048x1536", "2x2")  # size and binning as written; any will do here
OTHER_OSN = ("AndorT90", "1024x1024", "2x2")
#: What must be stored before a job starts, written out independently of the module's
#: NEEDS: (kind, shared) with shared "detector" or "instrument".
EXPECTED_NEEDS = {
    "bias": (),
    "dark": (("bias", "detector"),),
    "flat": (("bias", "detector"), ("dark", "detector")),  # dark: only if it takes darks
    "frames": (("bias", "detector"), ("dark", "detector"), ("flat", "detector")),
    "subframes": (
        ("bias", "detector"),
        ("dark", "detector"),
        ("flat", "detector"),
        ("frames", "instrument"),
    ),
}


class SyncPool:
    """A pool that runs each job when it is submitted (in this process); frames run
    :meth:`frame` instead of the real worker. Its many workers let the scheduler
    submit every job it deems ready at once, before any result is stored."""

    workers = 50
    worn_out = False

    def __init__(self, on_submit, jobs_per_task: int = 1):
        self.on_submit = on_submit
        self.jobs_per_task = jobs_per_task
        self.tasks: list[list] = []  # the items of each submit_many

    def submit_many(self, function, items: list) -> list[futures.Future]:
        self.tasks.append(items)
        return [self.submit(function, item) for item in items]

    def submit(self, function, item) -> futures.Future:
        self.on_submit(item)
        future: futures.Future = futures.Future()
        try:
            run = self.frame if function is reduce_frame else function
            future.set_result(run(item))
        except Exception as exc:
            future.set_exception(exc)
        return future

    @staticmethod
    def frame(task) -> FrameOutcome:
        return FrameOutcome(raw_path=task.raw_path)

    def broken(self) -> None: ...

    def recycle(self) -> None: ...

    def close(self) -> None: ...


def _night(frames: list[tuple[str, str, tuple]]) -> NightState:
    rawfits = [SimpleNamespace(filename=n, kind=k, detector=d) for n, k, d in frames]
    epoch = SimpleNamespace(telescope="T", night=NIGHT)
    state = NightState(epoch, rawfits, NightReport("T", NIGHT))
    state.infos = {r.filename: None for r in rawfits if r.kind not in MASTER_KINDS}
    return state


class Run:
    """A scheduler run with a planner and writer that record what they see."""

    def __init__(self, states, crash=frozenset(), jobs_per_task: int = 1):
        self.states = states
        self.crash = crash  # master jobs whose worker raises
        self.started: list[str] = []
        self.stored: list[str] = []
        self.jobs = {r.filename: r for s in states for r in s.rawfits}
        work = NightWork(
            job_of=lambda config, state, r: (r.kind, r.detector),
            master_work=self.master_work,
            make_master=self.make_master,
            science_tasks=self.science_tasks,
            store_master=self.store_master,
            store_frame=self.store_frame,
            failed_master=lambda reason: SimpleNamespace(error=reason, cpu_s=0.0, peak_rss_mb=0.0),
        )
        config = SimpleNamespace(registry=InstrumentRegistry.builtin())
        self.pool = pool = SyncPool(self.check_and_start, jobs_per_task)
        self.scheduler = Scheduler(config, None, states, False, pool, False, work=work)

    def needed(self, job) -> set[str]:
        """Every job that must be stored before ``job`` starts (NEEDS written out)."""
        registry = InstrumentRegistry.builtin()
        found = set()
        for kind, shared in EXPECTED_NEEDS[job.kind]:
            darks = registry.get(job.detector[0]).needs_darks
            if job.kind == "flat" and kind == "dark" and not darks:
                continue
            for other in self.jobs.values():
                same = other.detector if shared == "detector" else other.detector[:1]
                mine = job.detector if shared == "detector" else job.detector[:1]
                if other.kind == kind and same == mine:
                    found.add(other.filename)
        return found

    def check_and_start(self, item) -> None:
        name = item.filename if hasattr(item, "filename") else item.raw_path.name
        missing = self.needed(self.jobs[name]) - set(self.stored)
        assert not missing, f"{name} started before {sorted(missing)} were stored"
        self.started.append(name)

    def master_work(self, config, state, kind, force, detector):
        return [
            SimpleNamespace(job=r, state=state)
            for r in state.rawfits
            if r.kind == kind and r.detector == detector
        ]

    def make_master(self, job):
        if job.filename in self.crash:
            raise MemoryError("killed")
        return SimpleNamespace(error="", cpu_s=0.1, peak_rss_mb=1.0)

    def science_tasks(self, config, catalog, epoch, rawfits, force, report, **_):
        return [SimpleNamespace(raw_path=Path(r.filename)) for r in rawfits]

    def store_master(self, config, item, result):
        if result.error:
            item.state.report.masters_failed[item.job.filename] = result.error
        self.stored.append(item.job.filename)

    def store_frame(self, catalog, state, task, outcome):
        self.stored.append(task.raw_path.name)


def _two_nights():
    first = _night(
        [
            ("f1", "frames", OSN),
            ("s1", "subframes", DIPOL),
            ("b1", "bias", OSN),
            ("b2", "bias", OSN),
            ("fl1", "flat", OSN),
            ("db", "bias", DIPOL),
            ("dd", "dark", DIPOL),
            ("df", "flat", DIPOL),
            ("dp", "frames", DIPOL),
            ("o1", "frames", OTHER_OSN),
        ]
    )
    second = _night([("f2", "frames", OSN), ("b3", "bias", OSN), ("s2", "subframes", DIPOL)])
    return [first, second]


def test_no_job_starts_before_what_it_needs_is_stored():
    run = Run(_two_nights())
    run.scheduler.run()
    assert sorted(run.started) == sorted(run.jobs) == sorted(run.stored)
    # a frame whose detector has no masters does not wait for other detectors' masters
    assert run.started.index("o1") < run.started.index("dd") < run.started.index("fl1")
    assert run.started.index("dp") < run.started.index("s1")
    assert run.scheduler.masters_finished_s is not None


def test_frames_go_several_to_a_task_of_one_group_and_few_masters_one_each():
    nights = _two_nights()
    nights[0].rawfits += [
        SimpleNamespace(filename=f"g{i}", kind="frames", detector=OSN) for i in range(9)
    ]
    nights[0].infos.update({f"g{i}": None for i in range(9)})
    run = Run(nights, jobs_per_task=3)
    run.scheduler.run()
    assert sorted(run.started) == sorted(run.jobs) == sorted(run.stored)
    names = [[getattr(i, "filename", None) or i.raw_path.name for i in t] for t in run.pool.tasks]
    sizes = {name: len(task) for task in names for name in task}
    assert max(len(task) for task in names) == 3  # frames grouped, never more than asked
    # a few masters in a wide window: one per task, so that none waits behind another
    assert all(sizes[name] == 1 for name, job in run.jobs.items() if job.kind in MASTER_KINDS)
    for task in names:  # a task's frames are one group's: one night and detector
        assert len({run.jobs[name].detector for name in task}) == 1
        assert len({id(s) for s in nights for r in s.rawfits if r.filename in task}) == 1


def test_many_queued_masters_go_several_to_a_task_of_one_kind():
    nights = [_night([(f"b{n}", "bias", OSN), (f"f{n}", "flat", OSN)]) for n in range(12)]
    run = Run(nights, jobs_per_task=3)
    run.pool.workers = 1  # a window of two tasks: 12 queued biases fill tasks of 3
    run.scheduler.run()
    assert sorted(run.started) == sorted(run.jobs) == sorted(run.stored)
    names = [[i.filename for i in t] for t in run.pool.tasks]
    assert max(len(task) for task in names) == 3
    for task in names:
        assert len({run.jobs[name].kind for name in task}) == 1  # biases, or flats


def test_the_check_catches_a_job_started_too_early():
    run = Run(_two_nights())
    with pytest.raises(AssertionError, match="f1 started before"):
        run.check_and_start(SimpleNamespace(raw_path=Path("f1")))


def test_a_crashed_master_is_failed_with_its_reason_and_its_dependants_wait_for_it():
    run = Run(_two_nights(), crash={"b1", "dd"})
    run.scheduler.run()
    report = run.states[0].report
    assert report.masters_failed == {"b1": "worker: killed", "dd": "worker: killed"}
    # what needs them starts only after the failure is stored (then matched elsewhere)
    assert run.stored.index("b1") < run.started.index("fl1")
    assert run.stored.index("dd") < run.started.index("df") < run.started.index("dp")
    assert sorted(run.stored) == sorted(run.jobs)


def test_a_task_of_several_jobs_fails_only_the_job_that_raised():
    def job(n: int) -> int:
        if n == 2:
            raise ValueError("bad frame")
        return n * 10

    done = run_each(job, [1, 2, 3])
    assert [ok for ok, _ in done] == [True, False, True]
    assert done[0][1] == 10 and done[2][1] == 30
    assert isinstance(done[1][1], ValueError) and str(done[1][1]) == "bad frame"
