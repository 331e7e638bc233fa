"""The daemon's jobs and steps: which steps each job runs, and the step functions.

:data:`JOBS` says which steps each scheduled job runs, in order, and
:data:`STEPS` maps a step name to the function that does it: ``fetch``
(archives), ``reduce`` (every night with new files), ``build`` (flags,
catalog and the site) and ``summary`` (the e-mails that are due).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from iopreport.daemon.cycle import Cycle, DaemonStop
from iopreport.daemon.heartbeat import beat

log = logging.getLogger(__name__)


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
