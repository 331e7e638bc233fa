"""`iopreport status`: configuration, catalog, nights, runs, daemon (read-only).

:func:`status_data` gathers everything once as plain values (the ``--json``
output, schema ``docs/schemas/status.schema.json``); :func:`render_status` is
the text made from the same values.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path

from iopreport.catalog import load_catalog
from iopreport.config import Config

#: A heartbeat older than this means the daemon is not running.
HEARTBEAT_STALE_AFTER = dt.timedelta(minutes=5)
#: Version of the JSON document (``schema`` key); raised when a key changes meaning.
STATUS_SCHEMA = 1


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


def _failures(epoch) -> list[dict]:
    """Files of a night that failed, with their reasons, sorted by name."""
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
    return [{"file": name, "reason": reason} for name, reason in failed]


def index_coverage(config: Config, catalog) -> list[str]:
    """Per catalog source, whether index files cover it at each instrument's scales."""
    from iopreport.indexfiles.ready import plan_for
    from iopreport.indexfiles.report import coverage_lines

    return coverage_lines(plan_for(config, catalog), catalog.sources)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_data(
    config: Config, *, nights: int = 10, failures: int = 5, now: dt.datetime | None = None
) -> dict:
    """Everything `status` shows, as JSON-ready values; never writes or creates the store."""
    from iopreport.store.dialect import describe
    from iopreport.store.models import utcnow

    now = now or utcnow()
    catalog = load_catalog(config.paths.catalog)
    kinds: dict[str, int] = {}
    for source in catalog.sources:
        kinds[source.srctype] = kinds.get(source.srctype, 0) + 1
    data: dict = {
        "schema": STATUS_SCHEMA,
        "generated_at": _iso(now),
        "config": str(config.source),
        "datadir": str(config.paths.datadir),
        "catalog": {"path": str(config.paths.catalog), "sources": len(catalog), "kinds": kinds},
        "archives": [
            {"name": name, "protocol": a.protocol, "enabled": a.enabled}
            for name, a in config.archives.items()
        ],
        "database": {
            "path": describe(config.database_path),  # a PostgreSQL URL without its password
            "exists": config.store_exists,
            "schema": None,
        },
    }
    data["index_coverage"] = index_coverage(config, catalog)
    if not data["database"]["exists"]:
        return data
    from iopreport.store import (
        Epoch,
        Heartbeat,
        PhotoPolResult,
        RunLog,
        epoch_counts,
        open_store,
        schema_version,
    )

    database = open_store(config.database_path, upgrade=False)
    data["database"]["schema"] = schema_version(database)
    epochs = list(Epoch.select().order_by(Epoch.night.desc(), Epoch.telescope).limit(nights))
    data["nights_total"] = Epoch.select().count()
    data["nights"] = []
    for epoch in epochs:
        counts = epoch_counts(epoch)
        failed = _failures(epoch)
        data["nights"].append(
            {
                "epoch": epoch.epochname,
                "telescope": epoch.telescope,
                "night": epoch.night.isoformat(),
                "frames": {
                    k: n for k, n in sorted(counts.items()) if k not in ("reduced", "failed")
                },
                "reduced": counts["reduced"],
                "failed": counts["failed"],
                "error": epoch.error,
                "failures": failed[:failures],
                "failures_total": len(failed),
            }
        )
    data["results"] = {
        mode: PhotoPolResult.select().where(PhotoPolResult.mode == mode).count()
        for mode in ("photometry", "polarimetry")
    }
    data["runs"] = []
    for run in RunLog.select().order_by(RunLog.started_at.desc()).limit(5):
        seconds = None
        if run.finished_at:
            seconds = round((run.finished_at - run.started_at).total_seconds(), 3)
        data["runs"].append(
            {
                "command": run.command,
                "outcome": run.outcome,
                "started_at": _iso(run.started_at),
                "finished_at": _iso(run.finished_at),
                "seconds": seconds,
                "detail": run.detail.splitlines()[-1] if run.detail else "",
            }
        )
    beat = Heartbeat.get_or_none(Heartbeat.name == "daemon")
    if beat is None:
        data["daemon"] = None
    else:
        age = (now - beat.beat_at).total_seconds()
        liveness = daemon_liveness(beat, now - beat.beat_at, config.paths.datadir)
        data["daemon"] = {
            "alive": liveness == "alive",
            "liveness": liveness,
            "pid": beat.pid,
            "hostname": beat.hostname,
            "last_beat_at": _iso(beat.beat_at),
            "age_s": round(age, 3),
            "state": beat.state or "",
        }
    database.close()
    return data


def status_json(config: Config, **options) -> str:
    """The ``status --json`` document (:func:`status_data`), indented."""
    return json.dumps(status_data(config, **options), indent=2, sort_keys=False)


def render_status(
    config: Config, *, nights: int = 10, failures: int = 5, now: dt.datetime | None = None
) -> str:
    """Describe the project in text: never writes to the store, never creates it."""
    data = status_data(config, nights=nights, failures=failures, now=now)
    catalog = data["catalog"]
    lines = [
        f"config:    {data['config']}",
        f"datadir:   {data['datadir']}",
        f"catalog:   {catalog['path']}: {catalog['sources']} sources "
        + "("
        + ", ".join(f"{n} {k}" for k, n in sorted(catalog["kinds"].items()))
        + ")",
        "archives:  "
        + (
            ", ".join(
                f"{a['name']} ({a['protocol']}{'' if a['enabled'] else ', disabled'})"
                for a in data["archives"]
            )
            or "none configured"
        ),
    ]
    lines += data["index_coverage"]
    database = data["database"]
    if not database["exists"]:
        lines.append(f"database:  {database['path']} (not created yet)")
        return "\n".join(lines)
    lines.append(f"database:  {database['path']} (schema {database['schema']})")
    lines.append(
        f"nights:    {data['nights_total']}" + (" (latest first)" if data["nights"] else "")
    )
    for night in data["nights"]:
        frames = " ".join(f"{kind} {n}" for kind, n in night["frames"].items())
        lines.append(
            f"  {night['epoch']:<22} {frames or 'no frames'}; "
            f"reduced {night['reduced']}, failed {night['failed']}"
            + (f"; error: {night['error']}" if night["error"] else "")
        )
        lines.extend(f"    {f['file']}: {f['reason']}" for f in night["failures"])
        if night["failures_total"] > failures:
            more = night["failures_total"] - failures
            lines.append(f"    ... and {more} more (iopreport status --failures N)")
    results = data["results"]
    lines.append(
        f"results:   {results['photometry']} photometry, {results['polarimetry']} polarimetry"
    )
    lines.append("last runs:" + ("" if data["runs"] else " none"))
    for run in data["runs"]:
        took = f" in {run['seconds']:.1f} s" if run["seconds"] is not None else ""
        detail = f" - {run['detail']}" if run["detail"] else ""
        started = run["started_at"].replace("T", " ").rstrip("Z")
        lines.append(f"  {started} UTC  {run['command']}: {run['outcome']}{took}{detail}")
    daemon = data["daemon"]
    if daemon is None:
        lines.append("daemon:    has never run")
    else:
        alive = daemon["liveness"]
        lines.append(
            f"daemon:    {alive}; pid {daemon['pid']} on {daemon['hostname']}, last beat "
            f"{daemon['age_s']:.0f} s ago, state: {daemon['state'] or 'unknown'}"
        )
    return "\n".join(lines)
