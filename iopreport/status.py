"""The text `iopreport status` prints: configuration, catalog, nights, runs, daemon."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
from pathlib import Path

from iopreport.catalog import load_catalog
from iopreport.config import Config

#: A heartbeat older than this means the daemon is not running.
HEARTBEAT_STALE_AFTER = dt.timedelta(minutes=5)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: no signal sent, only the check
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _lock_held(path: Path) -> bool | None:
    """Whether some process holds ``daemon.lock`` (None: no lock file to look at)."""
    try:
        handle = open(path)  # noqa: SIM115 (read-only: status never writes)
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def daemon_liveness(beat, age: dt.timedelta, datadir: Path) -> str:
    """ "alive" only for a daemon that runs now, else why it is taken as not running.

    A heartbeat row outlives its daemon: the state it ended with (``stopped``,
    ``finished``), its age, and on this host the process and the data
    directory's lock tell whether it still runs.
    """
    state = beat.state or ""
    if state.startswith(("stopped", "finished")):
        return "NOT RUNNING (" + state + ")"
    if age >= HEARTBEAT_STALE_AFTER:
        return "NOT RUNNING (stale heartbeat)"
    if beat.hostname == socket.gethostname():
        if not _process_exists(beat.pid):
            return f"NOT RUNNING (process {beat.pid} has exited)"
        if _lock_held(datadir / "daemon.lock") is False:
            return f"NOT RUNNING (nothing holds {datadir / 'daemon.lock'})"
    return "alive"


def _failures(epoch, limit: int) -> list[str]:
    """Files of a night that failed, with their reasons (at most ``limit``, then a count)."""
    from iopreport.store import RawFit, ReducedFit

    failed = [
        (rawfit.filename, rawfit.error)
        for rawfit in RawFit.select().where((RawFit.epoch == epoch) & (RawFit.error != ""))
    ]
    failed += [
        (reduced.rawfit.filename, reduced.error)
        for reduced in ReducedFit.select(ReducedFit, RawFit)
        .join(RawFit)
        .where((RawFit.epoch == epoch) & (ReducedFit.error != ""))
    ]
    failed.sort()
    lines = [f"{name}: {reason}" for name, reason in failed[:limit]]
    if len(failed) > limit:
        lines.append(f"... and {len(failed) - limit} more (iopreport status --failures N)")
    return lines


def index_coverage(config: Config, catalog) -> list[str]:
    """Per catalog source, whether index files cover it at each instrument's scales."""
    from iopreport.indexfiles.ready import plan_for
    from iopreport.indexfiles.report import coverage_lines

    return coverage_lines(plan_for(config, catalog), catalog.sources)


def render_status(
    config: Config, *, nights: int = 10, failures: int = 5, now: dt.datetime | None = None
) -> str:
    """Describe the project: never writes to the store, never creates it."""
    from iopreport.store import (
        Epoch,
        Heartbeat,
        PhotoPolResult,
        RunLog,
        epoch_counts,
        open_store,
        schema_version,
    )
    from iopreport.store.models import utcnow

    now = now or utcnow()
    catalog = load_catalog(config.paths.catalog)
    kinds: dict[str, int] = {}
    for source in catalog.sources:
        kinds[source.srctype] = kinds.get(source.srctype, 0) + 1
    lines = [
        f"config:    {config.source}",
        f"datadir:   {config.paths.datadir}",
        f"catalog:   {config.paths.catalog}: {len(catalog)} sources "
        + "("
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        + ")",
        "archives:  "
        + (
            ", ".join(
                f"{name} ({a.protocol}{'' if a.enabled else ', disabled'})"
                for name, a in config.archives.items()
            )
            or "none configured"
        ),
    ]
    lines += index_coverage(config, catalog)
    if not config.database_path.exists():
        lines.append(f"database:  {config.database_path} (not created yet)")
        return "\n".join(lines)

    database = open_store(config.database_path, upgrade=False)
    lines.append(f"database:  {config.database_path} (schema {schema_version(database)})")
    epochs = list(Epoch.select().order_by(Epoch.night.desc(), Epoch.telescope).limit(nights))
    total_epochs = Epoch.select().count()
    lines.append(f"nights:    {total_epochs}" + (" (latest first)" if epochs else ""))
    for epoch in epochs:
        counts = epoch_counts(epoch)
        frames = " ".join(
            f"{kind} {counts[kind]}" for kind in sorted(counts) if kind not in ("reduced", "failed")
        )
        lines.append(
            f"  {epoch.epochname:<22} {frames or 'no frames'}; "
            f"reduced {counts['reduced']}, failed {counts['failed']}"
            + (f"; error: {epoch.error}" if epoch.error else "")
        )
        lines.extend(f"    {line}" for line in _failures(epoch, failures))
    n_phot = PhotoPolResult.select().where(PhotoPolResult.mode == "photometry").count()
    n_pol = PhotoPolResult.select().where(PhotoPolResult.mode == "polarimetry").count()
    lines.append(f"results:   {n_phot} photometry, {n_pol} polarimetry")

    runs = list(RunLog.select().order_by(RunLog.started_at.desc()).limit(5))
    lines.append("last runs:" + ("" if runs else " none"))
    for run in runs:
        took = ""
        if run.finished_at:
            took = f" in {(run.finished_at - run.started_at).total_seconds():.1f} s"
        detail = f" - {run.detail.splitlines()[-1]}" if run.detail else ""
        lines.append(
            f"  {run.started_at:%Y-%m-%d %H:%M:%S} UTC  {run.command}: {run.outcome}{took}{detail}"
        )

    beat = Heartbeat.get_or_none(Heartbeat.name == "daemon")
    if beat is None:
        lines.append("daemon:    has never run")
    else:
        age = now - beat.beat_at
        alive = daemon_liveness(beat, age, config.paths.datadir)
        lines.append(
            f"daemon:    {alive}; pid {beat.pid} on {beat.hostname}, last beat "
            f"{age.total_seconds():.0f} s ago, state: {beat.state or 'unknown'}"
        )
    database.close()
    return "\n".join(lines)
