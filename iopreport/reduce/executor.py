"""Where a reduction's jobs run: the local process pool or a Dask cluster.

Both executors take the same pure jobs (:func:`iopreport.reduce.frame.reduce_frame`,
:func:`iopreport.reduce.night.make_master`) and return ``concurrent.futures``
futures of the same outcomes; the calling process stays the single writer of
the store (docs/architecture.md). :func:`make_executor` picks one from the
configuration: ``[cluster] scheduler = ""`` (the default) is the local pool,
``"local"`` a Dask ``LocalCluster`` of worker processes on this machine, and
``"tcp://host:8786"`` an existing Dask scheduler (Rocklin 2015, "Dask: parallel
computation with blocked algorithms and task scheduling", Proc. SciPy).
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from iopreport.config import Config
from iopreport.errors import IopreportError, UsageError
from iopreport.reduce.frame import init_worker, reduce_frame
from iopreport.reduce.worker import one_thread_per_worker
from iopreport.store.dialect import CLUSTER_EXTRA

log = logging.getLogger(__name__)

#: File written in the data folder to check that every worker sees the same folder.
VISIBILITY_FILE = ".iopreport-cluster-check"
#: Jobs handed to a Dask cluster beyond one per worker thread, per thread.
QUEUED_PER_THREAD = 1
#: Environment variables Dask's nanny sets in new workers that a reduction worker must not
#: get. ``MALLOC_TRIM_THRESHOLD_`` (Dask's default 65536, meant to return memory to the
#: system) also switches off glibc's dynamic mmap threshold (mallopt(3), M_MMAP_THRESHOLD),
#: so that every frame-sized array is a fresh mmap whose pages fault in again: measured, a
#: third more CPU in the workers of a tiny-night campaign, all of it system time.
WORKER_ENVIRON_DROPPED = ("MALLOC_TRIM_THRESHOLD_",)
#: Environment variables a reduction worker of a ``LocalCluster`` starts with. A Dask
#: worker runs its tasks in a thread, and glibc gives a thread its own malloc arena,
#: whose heaps grow to 64 MB at most: a master's stack of frames (up to 354 MB) is then a
#: fresh mmap on every allocation, whatever the thresholds of
#: :func:`iopreport.reduce.memory.keep_freed_memory`. One arena for the process puts the
#: task thread's blocks in the main heap. Glibc reads it when the process starts (a
#: mallopt in the worker comes after the task thread has its arena: measured, no effect),
#: so it is set before the forkserver starts. Measured in a LocalCluster worker, 16, 46
#: and 354 MB arrays allocated and filled 70 times in a task: 1,780 page faults and 0.48 s
#: of CPU by default, none and 0.20 s with it.
WORKER_ENVIRON_SET = {"MALLOC_ARENA_MAX": "1"}
#: Modules the forkserver of a ``LocalCluster`` imports once, before it forks each worker.
WORKER_PRELOAD = ("distributed", "iopreport.reduce.frame")
#: Dask settings of a ``LocalCluster`` that cut its background work: the event-loop health
#: tick (20 ms by default, in the scheduler, each nanny and each worker), the workers'
#: statistical profiler (a stack sample every 10 ms, shown only by the dashboard, which is
#: off) and the resource monitors. Measured on an idle cluster of two workers: 0.66 s of
#: CPU in 8 s with Dask's defaults, 0.12 s with these.
LOCAL_CLUSTER_SETTINGS = {
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


class ClusterError(IopreportError):
    """The cluster cannot run this reduction (a worker cannot see the data folder, ...)."""


class Executor(Protocol):
    """What the reduction scheduler needs of a pool of workers."""

    #: Tasks handed out at once (the scheduler keeps one more waiting): the worker processes
    #: of the local pool; on Dask, twice its worker threads (:data:`QUEUED_PER_THREAD`).
    workers: int
    #: Jobs (frames, masters) one task may run (1: one per task; see :meth:`submit_many`).
    jobs_per_task: int

    @property
    def worn_out(self) -> bool:
        """Whether the workers' solvers must be recycled before more frames."""

    def submit(self, function, item) -> futures.Future:
        """Start ``function(item)`` on a worker."""

    def submit_many(self, function, items: list) -> list[futures.Future]:
        """Start ``function(item)`` for each item, as one task; a future per item."""

    def broken(self) -> None:
        """A worker died: the next submit starts afresh."""

    def recycle(self) -> None:
        """Replace the workers (their solvers leak memory)."""

    def close(self) -> None:
        """Stop the workers this executor started."""

    def __enter__(self): ...

    def __exit__(self, *exc_info) -> None: ...


class LocalPool:
    """The process pool of one reduction run (or the calling process, for one worker).

    Workers start from a forkserver (forking this process could copy thread
    state of native libraries and deadlock the children), load the
    astrometry.net index once (:func:`init_worker`), keep their numeric
    libraries to one thread, and end if this process is killed. A pool is
    replaced after ``solver_recycle_frames`` frames per worker, since the
    upstream solver leaks memory (ProcessPoolExecutor's own max_tasks_per_child
    hung on Python 3.11 once a worker retired): the scheduler stops handing out
    frames, lets the running jobs finish and calls :meth:`recycle`.
    """

    #: A process pool's jobs cost little to hand out: one job per task.
    jobs_per_task = 1

    def __init__(self, config: Config, workers: int | None = None) -> None:
        self.workers = workers or config.processing.workers or os.cpu_count() or 1
        if self.workers > 1:
            # before the forkserver starts: it preloads numpy, whose BLAS reads this once
            one_thread_per_worker()
        self.index_dir = str(config.paths.astrometry_index_dir)
        self.frames_per_pool = max(1, self.workers * config.processing.solver_recycle_frames)
        self.frames_served = 0
        self._executor: futures.ProcessPoolExecutor | None = None
        self._initialised_here = False

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def worn_out(self) -> bool:
        """Whether this pool's solvers have served their frames (recycle before more)."""
        return self.workers > 1 and self.frames_served >= self.frames_per_pool

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def recycle(self) -> None:
        self.close()
        self.frames_served = 0

    def submit(self, function, item) -> futures.Future:
        """Start ``function(item)``; with one worker it runs here, now."""
        if function is reduce_frame:
            self.frames_served += 1
        if self.workers <= 1:
            if function is reduce_frame and not self._initialised_here:
                init_worker(self.index_dir)
                self._initialised_here = True
            done: futures.Future = futures.Future()
            try:
                done.set_result(function(item))
            except Exception as exc:
                done.set_exception(exc)
            return done
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["iopreport.reduce.frame"])
            self._executor = futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=init_worker,
                initargs=(self.index_dir, os.getpid()),
            )
        return self._executor.submit(function, item)

    def submit_many(self, function, items: list) -> list[futures.Future]:
        """One job per item (:attr:`jobs_per_task`)."""
        return [self.submit(function, item) for item in items]

    def broken(self) -> None:
        """A worker died: the pool cannot take more jobs; the next submit starts a new one."""
        self.close()
        self.frames_served = 0


def import_distributed():
    """The ``distributed`` package, or a clear error naming the extra to install."""
    try:
        import distributed
    except ImportError:
        raise UsageError(
            "[cluster] scheduler needs Dask, which is not installed; " + CLUSTER_EXTRA
        ) from None
    return distributed


@contextmanager
def local_cluster_config() -> Iterator[None]:
    """Dask settings for starting a ``LocalCluster`` of reduction workers.

    Workers are forked from a forkserver that has imported Dask and the reduction once
    (:data:`WORKER_PRELOAD`; spawned workers import both again, about 1.5 s of CPU each
    on this machine's cores) and that was started with one numeric thread per worker
    (:func:`one_thread_per_worker`) and :data:`WORKER_ENVIRON_SET`; the nanny's environment
    leaves out :data:`WORKER_ENVIRON_DROPPED`; :data:`LOCAL_CLUSTER_SETTINGS` quieten the
    servers.
    """
    import dask
    from distributed.utils import get_mp_context

    one_thread_per_worker()  # before the forkserver starts (shared with LocalPool)
    for name, value in WORKER_ENVIRON_SET.items():
        # the forkserver's environment, which its forked workers' glibc starts with (the
        # nanny's pre-spawn environment reaches a forked worker only after it has started)
        os.environ.setdefault(name, value)
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ") or {})
    for name in WORKER_ENVIRON_DROPPED:
        environ.pop(name, None)
    settings = {
        **LOCAL_CLUSTER_SETTINGS,
        "distributed.nanny.pre-spawn-environ": environ,
        "distributed.worker.multiprocessing-method": "forkserver",
    }
    with dask.config.set(settings):
        context = get_mp_context()  # Dask sets its own preload list the first time
        context.set_forkserver_preload(list(WORKER_PRELOAD))
        yield


def run_each(function, items: list) -> list[tuple[bool, object]]:
    """On a worker: ``function(item)`` for each item, as ``(True, result)`` or
    ``(False, exception)``, so that one item's failure is its own."""
    done: list[tuple[bool, object]] = []
    for item in items:
        try:
            done.append((True, function(item)))
        except Exception as exc:
            done.append((False, exc))
    return done


def _read_visibility(path: str) -> str:
    """On a worker: the content of ``path``, or why it cannot be read."""
    import socket

    try:
        return Path(path).read_text()
    except OSError as exc:
        return f"unreadable on {socket.gethostname()}: {exc.strerror or exc}"


class DaskPool:
    """Jobs on a Dask cluster: an existing scheduler, or a ``LocalCluster`` started here.

    The tasks are the local pool's; the futures handed back are
    ``concurrent.futures`` futures, so the scheduler waits on them the same
    way. A task whose worker dies is run again on another worker by the Dask
    scheduler (``distributed.scheduler.allowed-failures`` times); if it still
    fails, this class submits it once more before reporting the failure.
    Workers must see the data folder at the same path (a shared file system):
    :meth:`check_data_visible` refuses to start otherwise. A ``LocalCluster``
    starts in a background thread while the caller plans its first jobs; the
    first use of :attr:`client` or :attr:`workers` waits for it and raises
    what stopped it.
    """

    #: Times a job lost with its worker is submitted again by this class.
    RESUBMITS = 2
    #: Seconds spent starting the ``LocalCluster`` (0 for a remote scheduler).
    start_s = 0.0

    def __init__(self, config: Config, workers: int | None = None) -> None:
        self._distributed = import_distributed()
        self._config = config
        self._cluster = None
        self._client = None
        self._threads = 0
        self._failed: BaseException | None = None
        self._starting: threading.Thread | None = None
        self.resubmitted = 0
        self.jobs_per_task = config.cluster.jobs_per_task
        self.jobs_submitted = 0
        self.tasks_submitted = 0
        if config.cluster.scheduler == "local":
            n = workers or config.cluster.local_workers or config.processing.workers or 1
            # started in the background: meanwhile this process registers and classifies
            # the first nights' files, which needs no worker (the first job waits for it)
            self._starting = threading.Thread(
                target=self._start_local, args=(n,), name="iopreport-dask-start", daemon=True
            )
            self._starting.start()
        else:
            address = config.cluster.scheduler
            try:
                client = self._distributed.Client(address, timeout=config.cluster.connect_timeout_s)
            except OSError as exc:
                raise ClusterError(
                    f"[cluster] scheduler {address}: cannot connect ({exc})"
                ) from None
            self._connected(client)

    def _start_local(self, n: int) -> None:
        """Start a ``LocalCluster`` of ``n`` worker processes (in a background thread)."""
        clock = time.perf_counter()
        try:
            with local_cluster_config():
                self._cluster = self._distributed.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.WARNING,
                )
            self._connected(self._distributed.Client(self._cluster))
        except BaseException as exc:  # raised again by the first use of the pool
            self._failed = exc
        self.start_s = time.perf_counter() - clock

    def _connected(self, client) -> None:
        """Install the worker plugin and check the data folder on a new client's workers."""
        from iopreport.reduce.daskplugin import SolverPlugin  # needs distributed

        self._client = client
        client.register_plugin(SolverPlugin(str(self._config.paths.astrometry_index_dir)))
        self._threads = max(1, sum(client.nthreads().values()))
        checked = self.check_data_visible(self._config.paths.datadir)
        log.info(
            "dask cluster %s: %d worker threads; the data folder %s is visible on all %d workers",
            client.scheduler.address,
            self._threads,
            self._config.paths.datadir,
            checked,
        )

    def _ready(self) -> None:
        """Wait for a cluster started in the background; raise what stopped it."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._failed is not None:
            raise self._failed

    @property
    def client(self):
        """The Dask client (once the cluster has started)."""
        self._ready()
        return self._client

    @property
    def threads(self) -> int:
        """Worker threads of the cluster."""
        self._ready()
        return self._threads

    @property
    def workers(self) -> int:
        """Jobs handed out at once: one queued per worker thread besides the running one,
        so that a result's way back to this process and the next job's way out (client,
        scheduler, worker) hide behind the queued job."""
        return self.threads * (1 + QUEUED_PER_THREAD)

    def __enter__(self) -> DaskPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def worn_out(self) -> bool:
        return False  # Dask restarts its own workers (`dask worker --lifetime`)

    def check_data_visible(self, datadir: Path) -> int:
        """Refuse to run when a worker cannot read the data folder at the same path.

        Returns the number of workers checked."""
        datadir = Path(datadir).expanduser()
        datadir.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        probe = datadir / VISIBILITY_FILE
        probe.write_text(token)
        try:
            seen = self._client.run(_read_visibility, str(probe))
        finally:
            probe.unlink(missing_ok=True)
        blind = {worker: text for worker, text in seen.items() if text != token}
        if blind:
            lines = "; ".join(f"{w}: {t[:120] or 'another folder'}" for w, t in blind.items())
            raise ClusterError(
                f"the data folder {datadir} is not visible at the same path on every Dask "
                f"worker (it must be on a shared file system): {lines}"
            )
        return len(seen)

    def submit(self, function, item) -> futures.Future:
        """Start ``function(item)`` on the cluster; a ``concurrent.futures`` future."""
        return self.submit_many(function, [item])[0]

    def submit_many(self, function, items: list) -> list[futures.Future]:
        """Start ``function(item)`` for each item in one Dask task (:func:`run_each`);
        a ``concurrent.futures`` future per item."""
        self.jobs_submitted += len(items)
        self.tasks_submitted += 1
        dones = [futures.Future() for _ in items]
        for done in dones:
            done.set_running_or_notify_cancel()
        self._submit(function, items, dones, self.RESUBMITS)
        return dones

    def _submit(self, function, items: list, dones: list, resubmits: int) -> None:
        remote = self.client.submit(
            run_each, function, items, pure=False, key=f"{function.__name__}-{uuid.uuid4().hex}"
        )

        def finished(remote) -> None:
            try:
                results = remote.result()
            except self._distributed.KilledWorker:
                if resubmits > 0:  # every worker that ran it died: try once more
                    self.resubmitted += 1
                    log.warning("job %s lost with its workers; submitted again", remote.key)
                    self._submit(function, items, dones, resubmits - 1)
                    return
                lost = RuntimeError(f"{remote.key}: workers died running it")
                results = [(False, lost)] * len(items)
            except BaseException as exc:
                results = [(False, exc)] * len(items)
            for done, (ok, value) in zip(dones, results, strict=True):
                if ok:
                    done.set_result(value)
                else:
                    done.set_exception(value)

        remote.add_done_callback(finished)

    def broken(self) -> None:
        pass  # a lost worker's jobs are rescheduled by Dask

    def recycle(self) -> None:
        pass

    def close(self) -> None:
        if self._starting is not None:  # still starting: wait, then stop what it started
            self._starting.join()
            self._starting = None
        if self._client is not None:
            log.info("dask: %d jobs in %d tasks", self.jobs_submitted, self.tasks_submitted)
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(config: Config, workers: int | None = None) -> Executor:
    """The executor the configuration asks for (``[cluster] scheduler``)."""
    if not config.cluster.scheduler:
        return LocalPool(config, workers)
    return DaskPool(config, workers)
