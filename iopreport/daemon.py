"""``iopreport daemon``: the long-running process that fetches, reduces and publishes.

The work is data: :data:`JOBS` says which steps each scheduled job runs, in
order, and :data:`STEPS` maps a step name to the function that does it:
``fetch`` (archives), ``reduce`` (every night with new files), ``build``
(flags, catalog and the site) and ``summary`` (the e-mails that are due).

Scheduling (APScheduler 3): a *poll* job every ``schedule.poll_interval_minutes``
(and once at start), the *summary* job at ``schedule.summary_time`` in
``schedule.timezone``, and a *retry* job every ``schedule.retry_interval_minutes``
for archives that failed. The scheduler's jobs only queue a request; the main
thread runs the queued jobs one at a time under one lock, so jobs never
overlap and a job asked for twice while waiting runs once (coalescing).

Safety: a lock file (``fcntl.flock`` on ``<datadir>/daemon.lock``) keeps a
second daemon off the same data directory; SIGTERM and SIGINT stop the
daemon within seconds, abandoning the file or frame in flight (it is redone on
the next start: every step is idempotent and crash-safe); the ``Heartbeat``
row named ``daemon`` shows ``iopreport status`` that it is alive and what it is doing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import multiprocessing
import os
import queue
import signal
import socket
import threading
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.config import Config
from iopreport.errors import EXIT_OK, EXIT_WORK_FAILED, UsageError

log = logging.getLogger(__name__)

#: Name of the lock file in the data directory.
LOCK_NAME = "daemon.lock"
#: ``Heartbeat.name`` of the daemon's row (iopreport.status reads it).
HEARTBEAT_NAME = "daemon"
#: Seconds between heartbeats while idle or busy (status calls it stale after 5 minutes).
HEARTBEAT_INTERVAL_S = 60
#: After SIGTERM, seconds before the reduction's worker processes are ended.
STOP_GRACE_S = 3.0
#: After SIGTERM, seconds before the process exits whatever it is doing.
STOP_HARD_S = 15.0
#: Seconds a scheduled job may start late (after a suspend, a long job) and still run.
MISFIRE_GRACE_S = 3600


class DaemonStop(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM/SIGINT; recorded runs end as ``interrupted``."""


@dataclass
class DaemonState:
    """What one daemon process remembers between jobs."""

    failed_archives: dict[str, str] = field(default_factory=dict)  # telescope -> reason


@dataclass
class Cycle:
    """One job's run: what the steps share and report."""

    config: Config
    job: str
    state: DaemonState
    changed: bool = False  # new files or new reductions: the site is worth rebuilding
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def report(self, line: str, *, failed: bool = False) -> None:
        (log.error if failed else log.info)("%s", line)
        self.lines.append(line)
        if failed:
            self.failures.append(line)


StepFunction = Callable[[Cycle], None]


@dataclass(frozen=True)
class Step:
    """A step of a job; ``only_if_changed`` steps are skipped when nothing new came in."""

    name: str
    only_if_changed: bool = False


#: The steps each job runs, in order.
JOBS: dict[str, tuple[Step, ...]] = {
    "poll": (Step("fetch"), Step("reduce"), Step("build", only_if_changed=True)),
    "retry": (
        Step("fetch"),
        Step("reduce"),
        Step("build", only_if_changed=True),
        Step("summary"),
    ),
    "summary": (Step("summary"),),
    "once": (Step("fetch"), Step("reduce"), Step("build"), Step("summary")),
}

#: Step name -> function (:func:`register_step` replaces one, e.g. in tests).
STEPS: dict[str, StepFunction] = {}


def register_step(name: str, function: StepFunction) -> None:
    """Fill a step slot, e.g. ``register_step("build", lambda c: render_site(c.config))``."""
    STEPS[name] = function


# -- the steps ------------------------------------------------------------------------


def step_fetch(cycle: Cycle) -> None:
    """Every enabled archive (only those that failed, in a retry): new and open nights."""
    from iopreport.archive.sync import sync_archive

    archives = [a for a in cycle.config.archives.values() if a.enabled]
    if cycle.job == "retry":
        archives = [a for a in archives if a.telescope in cycle.state.failed_archives]
    for archive in archives:
        try:
            result = sync_archive(cycle.config, archive)
        except DaemonStop:
            raise
        except Exception as exc:  # a bug or a store problem: report it, the others carry on
            log.exception("%s: fetch failed", archive.telescope)
            reason = f"fetch failed: {type(exc).__name__}: {exc}"
            cycle.report(f"{archive.telescope}: {reason}", failed=True)
            cycle.state.failed_archives[archive.telescope] = reason
            continue
        if result.error:
            cycle.report(f"{archive.telescope}: {result.error}", failed=True)
        for report in result.nights:
            cycle.report(report.summary(), failed=bool(report.failed))
        if result.failed:
            cycle.state.failed_archives[archive.telescope] = result.error or "some files failed"
        else:
            cycle.state.failed_archives.pop(archive.telescope, None)
        if result.new_files:
            cycle.changed = True


def nights_to_reduce() -> list[tuple[str, dt.date]]:
    """(telescope, night) to reduce, newest first.

    Nights that came through an archive (``LISTED``, by the daemon or ``fetch``)
    with downloaded files and no ``REDUCED`` flag: new nights, nights with new
    or changed files, and reductions that failed or were interrupted. Nights
    only ever reduced by hand from older raw folders are left alone.
    """
    from iopreport.store import Epoch, EpochFlags, RawFit, RawFitFlags

    query = (
        Epoch.select(Epoch.telescope, Epoch.night)
        .join(RawFit)
        .where(
            (Epoch.flags.bin_and(int(EpochFlags.REDUCED)) == 0)
            & (Epoch.flags.bin_and(int(EpochFlags.LISTED)) != 0)
            & (RawFit.flags.bin_and(int(RawFitFlags.DOWNLOADED)) != 0)
        )
        .distinct()
        .order_by(Epoch.night.desc(), Epoch.telescope)
    )
    return [(epoch.telescope, epoch.night) for epoch in query]


def step_reduce(cycle: Cycle) -> None:
    """Reduce every night with new or unreduced files (unchanged work is skipped).

    A night's telescopes run together in one worker pool (``reduce_nights``,
    as ``iopreport reduce --night`` does), so the workers stay busy across
    them; if that run fails, each telescope is tried alone, so that one
    telescope's trouble does not stop the others.
    """
    from iopreport.build import check_retirement
    from iopreport.catalog import load_catalog, sync_catalog
    from iopreport.reduce.night import raw_night_dir, reduce_night, reduce_nights

    todo = [
        (telescope, night)
        for telescope, night in nights_to_reduce()
        if raw_night_dir(cycle.config, telescope, night).is_dir()
    ]
    if not todo:
        return
    catalog = load_catalog(cycle.config.paths.catalog)
    check_retirement(cycle.config, catalog)  # an emptied catalog.toml retires nothing
    sync_catalog(catalog)
    by_night: dict[dt.date, list[str]] = {}
    for telescope, night in todo:
        by_night.setdefault(night, []).append(telescope)
    said: set[str] = set()
    for night, telescopes in by_night.items():
        beat(f"{cycle.job}: reducing {', '.join(telescopes)} {night}")
        try:
            run = reduce_nights(cycle.config, catalog, [(t, night) for t in telescopes])
        except DaemonStop:
            raise
        except Exception:
            log.exception("%s: reducing %s together failed; one by one", night, telescopes)
        else:
            for warning in run.warnings:  # the same for every night: said once per cycle
                if warning not in said:
                    said.add(warning)
                    cycle.report(warning, failed=True)
            for report in run.reports:
                _reduced(cycle, report)
            continue
        for telescope in telescopes:
            try:
                report = reduce_night(cycle.config, catalog, telescope, night)
            except DaemonStop:
                raise
            except Exception as exc:  # one night's trouble does not stop the others
                log.exception("%s %s: reduction failed", telescope, night)
                cycle.report(f"{telescope} {night}: reduction failed: {exc}", failed=True)
                continue
            _reduced(cycle, report)


def _reduced(cycle: Cycle, report) -> None:
    """Mark a reduced night in the store and the cycle's report."""
    from iopreport.store import Epoch, EpochFlags
    from iopreport.store.models import database_proxy

    with database_proxy.atomic():
        epoch = Epoch.get(telescope=report.telescope, night=report.night)
        epoch.flags = int(EpochFlags(epoch.flags) | EpochFlags.REDUCED)
        epoch.save()
    cycle.changed = True
    cycle.report(report.summary())


def step_build(cycle: Cycle) -> None:
    """``iopreport build``: re-apply catalog.toml and flags.toml, recompute, publish the site.

    A broken flags.toml or catalog.toml is reported (the site and the store are
    left as they were) and the cycle goes on to the summaries.
    """
    from iopreport.build import run_build
    from iopreport.errors import InputError

    beat(f"{cycle.job}: building the site")
    try:
        report = run_build(cycle.config)
    except InputError as exc:
        cycle.report(f"build refused: {exc}", failed=True)
        return
    cycle.report(report.summary())


def step_summary(cycle: Cycle) -> None:
    """Send the night summaries that are due (queued, failed and due again)."""
    from iopreport.mail import send_due

    beat(f"{cycle.job}: night summaries")
    for outcome in send_due(cycle.config):
        cycle.report(outcome.line(), failed=outcome.status == "failed")


STEPS.update(
    {"fetch": step_fetch, "reduce": step_reduce, "build": step_build, "summary": step_summary}
)


# -- heartbeat, lock --------------------------------------------------------------------

_started_at: dt.datetime | None = None


def beat(state: str) -> None:
    """Write the daemon's heartbeat row (pid, host, time, what it is doing)."""
    from iopreport.store import Heartbeat
    from iopreport.store.models import utcnow

    global _started_at
    now = utcnow()
    _started_at = _started_at or now
    fields = {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started_at": _started_at,
        "beat_at": now,
        "state": state[:250],
    }
    try:
        updated = Heartbeat.update(**fields).where(Heartbeat.name == HEARTBEAT_NAME).execute()
        if not updated:
            Heartbeat.create(name=HEARTBEAT_NAME, **fields)
    except Exception as exc:  # a busy store must not stop the work
        log.warning("heartbeat not written: %s", exc)


@contextlib.contextmanager
def daemon_lock(datadir: Path) -> Iterator[Path]:
    """Hold ``<datadir>/daemon.lock`` (exclusive ``flock``) or refuse with a UsageError (exit 2).

    The daemon holds it for its whole life and ``iopreport fetch`` while it
    downloads, so two processes never write the same raw folder. The kernel
    drops the lock when the process ends, however it ends: a killed daemon
    never leaves a stale lock behind.
    """
    datadir.mkdir(parents=True, exist_ok=True)
    path = datadir / LOCK_NAME
    handle = open(path, "a+")  # noqa: SIM115 (held open while the lock is needed)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UsageError(
                f"{datadir} is in use by another iopreport daemon or fetch (pid {holder} "
                f"holds {path}); stop it first (systemctl stop iopreport, or kill -TERM {holder})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield path
    finally:
        handle.close()


# -- the daemon ---------------------------------------------------------------------------


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
