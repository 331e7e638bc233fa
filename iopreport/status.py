"""The text `iopreport status` prints: configuration, catalog, nights, runs, daemon."""

from __future__ import annotations

import datetime as dt

from iopreport.catalog import load_catalog
from iopreport.config import Config

#: A heartbeat older than this means the daemon is not running.
HEARTBEAT_STALE_AFTER = dt.timedelta(minutes=5)


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
    from iopreport.config import is_database_url
    from iopreport.store.dialect import describe

    where = describe(config.database_path)  # a PostgreSQL URL without its password
    if not is_database_url(config.database_path) and not config.database_path.exists():
        lines.append(f"database:  {where} (not created yet)")
        return "\n".join(lines)

    database = open_store(config.database_path, upgrade=False)
    lines.append(f"database:  {where} (schema {schema_version(database)})")
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
        alive = "alive" if age < HEARTBEAT_STALE_AFTER else "NOT RUNNING (stale heartbeat)"
        lines.append(
            f"daemon:    {alive}; pid {beat.pid} on {beat.hostname}, last beat "
            f"{age.total_seconds():.0f} s ago, state: {beat.state or 'unknown'}"
        )
    database.close()
    return "\n".join(lines)
