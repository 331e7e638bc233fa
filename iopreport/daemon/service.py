"""The :class:`Daemon`: scheduler, job queue, signals and the main loop.

Scheduling (APScheduler 3): the scheduler's jobs only queue a request; the
main thread runs the queued jobs one at a time under one lock, so jobs never
overlap and a job asked for twice while waiting runs once (coalescing).
SIGTERM and SIGINT stop the daemon within seconds, abandoning the file or
frame in flight (every step is idempotent and crash-safe).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import multiprocessing
import os
import queue
import signal
import threading
import zoneinfo
from collections.abc import Iterator

from iopreport.config import Config
from iopreport.daemon.cycle import Cycle, DaemonState, DaemonStop
from iopreport.daemon.heartbeat import HEARTBEAT_INTERVAL_S, HEARTBEAT_NAME, beat
from iopreport.daemon.lock import daemon_lock
from iopreport.daemon.steps import JOBS, STEPS, nights_to_reduce
from iopreport.errors import EXIT_OK, EXIT_WORK_FAILED

log = logging.getLogger(__name__)

#: After SIGTERM, seconds before the reduction's worker processes are ended.
STOP_GRACE_S = 3.0
#: After SIGTERM, seconds before the process exits whatever it is doing.
STOP_HARD_S = 15.0
#: Seconds a scheduled job may start late (after a suspend, a long job) and still run.
MISFIRE_GRACE_S = 3600


class Daemon:
    """Runs jobs from the scheduler in the main thread until SIGTERM/SIGINT."""

    def __init__(self, config: Config):
        self.config = config
        self.state = DaemonState()
        self._requests: queue.Queue[str] = queue.Queue()
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()
        self._pipeline = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()  # set when run() ends: the watchdog has nothing to do

    # requests from the scheduler's threads
    def request(self, job: str) -> None:
        """Queue ``job`` unless it is already waiting (coalescing)."""
        with self._pending_lock:
            if job in self._pending:
                return
            self._pending.add(job)
        self._requests.put(job)

    def _next_request(self, timeout: float) -> str | None:
        try:
            job = self._requests.get(timeout=timeout)
        except queue.Empty:
            return None
        with self._pending_lock:
            self._pending.discard(job)
        return job

    def run_job(self, job: str) -> Cycle:
        """Run one job's steps under the pipeline lock, recorded in RunLog."""
        from iopreport.runlog import recorded_run

        cycle = Cycle(self.config, job, self.state)
        if job == "retry" and not self._retry_needed():
            return cycle
        with self._pipeline, recorded_run(f"daemon {job}") as run:
            for step in JOBS[job]:
                function = STEPS.get(step.name)
                if function is None:
                    log.debug("step %s: not available in this version", step.name)
                    continue
                if step.only_if_changed and not cycle.changed:
                    continue
                beat(f"{job}: {step.name}")
                try:
                    function(cycle)
                except DaemonStop:
                    raise
                except Exception as exc:  # a failed step is reported; the next ones still run
                    log.exception("step %s failed", step.name)
                    cycle.report(f"{step.name}: {type(exc).__name__}: {exc}", failed=True)
            run.detail = "\n".join(cycle.lines)
            if cycle.failures:
                run.outcome = "failed"
        beat(f"idle (last: {job}, {'failed' if cycle.failures else 'ok'})")
        return cycle

    def _retry_needed(self) -> bool:
        """Whether the retry job has anything to do (else it runs and records nothing)."""
        steps = {step.name for step in JOBS["retry"] if step.name in STEPS}
        return bool(
            ("fetch" in steps and self.state.failed_archives)
            or ("reduce" in steps and nights_to_reduce())
            or "summary" in steps  # unsent summaries: the mail module knows
        )

    # signals
    def _on_signal(self, signum, frame) -> None:
        if self._stopping:
            return
        self._stopping = True
        name = signal.Signals(signum).name
        log.info("%s received: stopping", name)
        threading.Thread(target=self._watchdog, name="stop-watchdog", daemon=True).start()
        raise DaemonStop(name)

    def _watchdog(self) -> None:
        """End the reduction's workers, then the process, if the stop takes too long.

        Returns at once when the daemon has stopped by itself: a daemon thread
        writing to the log while the interpreter shuts down aborts the process
        (exit -6 instead of the daemon's own code).
        """
        if self._stopped.wait(STOP_GRACE_S):
            return
        for child in multiprocessing.active_children():
            log.info("ending worker process %d", child.pid)
            child.terminate()
        if self._stopped.wait(STOP_HARD_S - STOP_GRACE_S):
            return
        log.error("not stopped after %.0f s: exiting now", STOP_HARD_S)
        logging.shutdown()
        os._exit(EXIT_WORK_FAILED)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _scheduler(self):
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        schedule = self.config.schedule
        zone = zoneinfo.ZoneInfo(schedule.timezone)
        scheduler = BackgroundScheduler(
            timezone=zone,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_S,
            },
        )
        hour, minute = (int(part) for part in schedule.summary_time.split(":"))
        now = dt.datetime.now(zone)
        scheduler.add_job(
            self.request,
            IntervalTrigger(minutes=schedule.poll_interval_minutes, timezone=zone),
            args=["poll"],
            id="poll",
            next_run_time=now,
        )
        scheduler.add_job(
            self.request,
            CronTrigger(hour=hour, minute=minute, timezone=zone),
            args=["summary"],
            id="summary",
        )
        scheduler.add_job(
            self.request,
            IntervalTrigger(minutes=schedule.retry_interval_minutes, timezone=zone),
            args=["retry"],
            id="retry",
        )
        scheduler.add_job(
            self._timer_beat,
            IntervalTrigger(seconds=HEARTBEAT_INTERVAL_S, timezone=zone),
            id="heartbeat",
        )
        return scheduler

    def _timer_beat(self) -> None:
        from iopreport.store import Heartbeat

        try:
            row = Heartbeat.get_or_none(Heartbeat.name == HEARTBEAT_NAME)
            beat(row.state if row else "running")
        except Exception as exc:
            log.warning("heartbeat not written: %s", exc)

    def run(self, *, once: bool = False) -> int:
        """Run until stopped (or one ``once`` job); exit code 0, or 1 if ``once`` had failures."""
        from iopreport.store import open_store

        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        with daemon_lock(self.config.paths.datadir), self._signals():
            open_store(self.config.database_path)
            scheduler = None
            ending = "finished (--once)" if once else "stopped"
            try:
                beat("starting")
                if once:
                    cycle = self.run_job("once")
                    return EXIT_WORK_FAILED if cycle.failures else EXIT_OK
                scheduler = self._scheduler()
                scheduler.start()
                log.info(
                    "daemon started (pid %d): poll every %d min, summary at %s %s, "
                    "retry every %d min",
                    os.getpid(),
                    self.config.schedule.poll_interval_minutes,
                    self.config.schedule.summary_time,
                    self.config.schedule.timezone,
                    self.config.schedule.retry_interval_minutes,
                )
                while True:
                    job = self._next_request(timeout=1.0)
                    if job:
                        self.run_job(job)
            except DaemonStop as stop:
                ending = f"stopped on {stop}"
                log.info("stopped on %s", stop)
                for child in multiprocessing.active_children():  # workers of an abandoned step
                    child.terminate()
                return EXIT_WORK_FAILED if once else EXIT_OK  # an interrupted --once did not finish
            finally:
                if scheduler is not None:
                    scheduler.shutdown(wait=False)
                with contextlib.suppress(BaseException):
                    beat(ending)
                self._stopped.set()
