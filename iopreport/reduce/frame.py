"""The work on one science frame, as a worker process does it.

A task carries everything needed (paths, classification, masters, catalog
sources); the worker calibrates, writes the reduced FITS file (raw header kept,
provenance and WCS added), detects, plate-solves through its long-lived
solver, measures and returns a plain :class:`FrameOutcome`. It never touches
the database: the parent writes the outcome in one transaction. The task and
outcome are in :mod:`iopreport.reduce.frametask`, the stages in
:mod:`iopreport.reduce.framestages`, the solver and masters a worker keeps in
:mod:`iopreport.reduce.workercache`.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from iopreport.reduce.framestages import STAGES, FrameWork
from iopreport.reduce.frametask import FrameOutcome, FrameTask
from iopreport.reduce.worker import one_thread_per_worker, watch_owner
from iopreport.reduce.workercache import get_solver


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
    get_solver(Path(index_dir))
    if owner_pid:
        watch_owner(owner_pid)


def reduce_frame(task: FrameTask) -> FrameOutcome:
    """Calibrate, solve and measure one frame; never raises for a bad frame."""
    cpu = time.process_time()
    outcome = FrameOutcome(raw_path=task.raw_path, pid=os.getpid())
    _reduce_frame(task, outcome)
    outcome.cpu_s = time.process_time() - cpu
    outcome.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return outcome


def _reduce_frame(task: FrameTask, outcome: FrameOutcome) -> FrameOutcome:
    work = FrameWork(task, outcome)
    for stage in STAGES:
        if stage(work) is not None:
            break
    return outcome
