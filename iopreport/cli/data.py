"""Commands that bring data in and keep the store: fetch, reduce, calibrate-pol,
reprocess, store, migrate and import."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iopreport.cli.common import check_telescopes, load_config_and_logging
from iopreport.errors import EXIT_OK, EXIT_WORK_FAILED, UsageError


def cmd_migrate(args: argparse.Namespace) -> int:
    """``iopreport migrate``."""
    from iopreport.config import is_database_url
    from iopreport.store import SCHEMA_VERSION, open_store, schema_version
    from iopreport.store.database import read_schema_version
    from iopreport.store.dialect import describe

    config = load_config_and_logging(args, log_to_file=True)
    path = config.database_path
    url = is_database_url(path)
    if not url and not path.exists():
        print(f"{path}: no database yet; it is created at the current schema when first needed")
        return EXIT_OK
    from iopreport.runlog import recorded_run

    name = describe(path)
    before = read_schema_version(path)
    if url and before == 0:
        print(f"{name}: no store yet; it is created at the current schema when first needed")
        return EXIT_OK
    database = open_store(path)
    after = schema_version(database)
    if before != after:
        with recorded_run("migrate", [name]) as run:
            run.detail = f"schema {before} -> {after}"
    database.close()
    if before == after:
        print(f"{name}: already at schema {SCHEMA_VERSION}")
    elif url:
        print(f"{name}: upgraded schema {before} -> {after} in one transaction")
    else:
        print(f"{path}: upgraded schema {before} -> {after}; old file kept as {path}.v{before}.bak")
    return EXIT_OK


def cmd_reprocess(args: argparse.Namespace) -> int:
    """``iopreport reprocess --from --to``: exit 1 when a night, frame or master failed."""
    from iopreport.reprocess import reprocess
    from iopreport.runlog import recorded_run
    from iopreport.store import open_store

    config = load_config_and_logging(args, log_to_file=True)
    check_telescopes(args.telescope, config)
    if args.end < args.start:
        raise UsageError(f"--to {args.end} is before --from {args.start}")
    open_store(config.database_path)
    with recorded_run("reprocess", sys.argv[1:]) as run:
        report = reprocess(
            config,
            args.start,
            args.end,
            telescopes=args.telescope,
            force=args.force,
            build=not args.no_build,
            workers=args.workers,
        )
        if not report.nights:
            print(f"no raw data from {args.start} to {args.end}; run `iopreport fetch` first")
            return EXIT_OK
        table = report.table()
        run.detail = table
        if report.failed:
            run.outcome = "failed"
    print(table)
    for line in report.nights:
        if line.error:
            print(f"  {line.telescope} {line.night}: {line.error}")
    if report.built:
        print(report.build_summary)
    print(f"{len(report.nights)} nights in {report.seconds:.1f} s")
    return EXIT_WORK_FAILED if report.failed else EXIT_OK


def cmd_store(args: argparse.Namespace) -> int:
    """``iopreport store copy SRC DST``."""
    from iopreport.config import is_database_url, url_with_password
    from iopreport.store.copy import copy_store

    def location(text: str):
        return url_with_password(text, "PGPASSWORD") if is_database_url(text) else Path(text)

    counts = copy_store(location(args.source), location(args.destination))
    for table, n in counts.items():
        print(f"{table}: {n} rows")
    print(f"copied {sum(counts.values())} rows in {len(counts)} tables; every count checked")
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    """``iopreport fetch``: the daemon's download, for chosen nights, from every protocol."""
    from iopreport.archive.sync import sync_archive
    from iopreport.daemon import daemon_lock
    from iopreport.runlog import recorded_run
    from iopreport.store import open_store

    config = load_config_and_logging(args, log_to_file=True)
    check_telescopes(args.telescope, config)
    archives = {
        name: archive
        for name, archive in config.archives.items()
        if archive.enabled and (not args.telescope or name in args.telescope)
    }
    if not archives:
        raise UsageError(
            "no enabled archive for the telescope(s) asked; see [archives] in config.toml"
        )
    open_store(config.database_path)
    failed = False
    say = _printer(args)
    results = []
    with daemon_lock(config.paths.datadir), recorded_run("fetch", sys.argv[1:]) as run:
        lines = []
        for archive in archives.values():
            result = sync_archive(
                config,
                archive,
                nights=[args.night] if args.night else None,
                since=args.since,
                hooks=_fetch_progress(),
            )
            results.append(result)
            for line in result.lines():
                say(line)
                lines.append(line)
            for report in result.nights:
                for file, reason in report.failed.items():
                    if file != "listing":
                        say(f"  {file}: {reason}")
            failed = failed or result.failed
        run.detail = "; ".join(lines)
        if failed:
            run.outcome = "failed"
    if args.json:
        from iopreport.runjson import dumps, fetch_document

        print(dumps(fetch_document(results, ok=not failed)))
    return EXIT_WORK_FAILED if failed else EXIT_OK


def _fetch_progress():
    """A bar per night on a terminal (plain log lines otherwise), fed by sync_archive's hooks."""
    from iopreport.archive.nightsync import SyncHooks
    from iopreport.progress import Progress

    bars: list[Progress] = []

    def listed(label: str, total: int) -> None:
        bars.append(Progress(total, label, unit="file"))

    def file_done(_outcome) -> None:
        if bars:
            bars[-1].update()

    def night_done(_report) -> None:
        while bars:
            bars.pop().close()

    return SyncHooks(listed=listed, file_done=file_done, night_done=night_done)


def _printer(args: argparse.Namespace):
    """``print`` for the text summary; nothing when ``--json`` prints a document instead."""
    return (lambda *_a, **_k: None) if getattr(args, "json", False) else print


def cmd_reduce(args: argparse.Namespace) -> int:
    """``iopreport reduce``."""
    from iopreport.catalog import load_catalog, sync_catalog
    from iopreport.reduce.night import raw_night_dir, reduce_nights
    from iopreport.runlog import recorded_run
    from iopreport.store import open_store
    from iopreport.telescopes import TELESCOPES

    config = load_config_and_logging(args, log_to_file=True)
    check_telescopes(args.telescope, config)
    catalog = load_catalog(config.paths.catalog)
    candidates = [*TELESCOPES, *sorted({i.telescope for i in config.instruments.values()})]
    telescopes = args.telescope or [
        t for t in candidates if raw_night_dir(config, t, args.night).is_dir()
    ]
    if not telescopes:
        raise UsageError(
            f"no raw data for {args.night}; run `iopreport fetch --night {args.night}`"
        )
    open_store(config.database_path)
    from iopreport.build import check_retirement

    check_retirement(config, catalog)  # an emptied catalog.toml retires nothing
    say = _printer(args)
    missing: dict[str, str] = {}
    with recorded_run("reduce", sys.argv[1:]) as run:
        sync_catalog(catalog)
        summaries = []
        failed = False
        present = []
        for telescope in telescopes:  # one telescope's missing data does not stop the others
            folder = raw_night_dir(config, telescope, args.night)
            if folder.is_dir():
                present.append(telescope)
                continue
            message = f"no raw data for {telescope} {args.night} in {folder}; run `iopreport fetch`"
            say(f"{telescope} {args.night}: {message}")
            missing[telescope] = message
            summaries.append(f"{telescope} {args.night}: failed: {message}")
            failed = True
        # the telescopes together: one worker pool, each stage over all of them
        reduction = reduce_nights(
            config,
            catalog,
            [(telescope, args.night) for telescope in present],
            workers=args.workers,
            force=args.force,
            progress=True,
        )
        for warning in reduction.warnings:  # said once for the run, on stderr
            print(f"reduce: {warning}", file=sys.stderr)
            summaries.append(warning)
        for report in reduction.reports:
            say(report.summary())
            summaries.append(report.summary())
            # failed or unclassified frames keep the night failed on every rerun
            failed = failed or report.failed
            for name, reason in report.unclassified.items():
                say(f"  {name}: {reason}")
            for name, reason in report.frames_failed.items():
                again = " (unchanged since an earlier run)" if name in report.failed_before else ""
                say(f"  {name}: {reason}{again}")
            for label, reason in report.masters_failed.items():
                say(f"  master {label}: {reason}")
        run.detail = "\n".join(summaries)
        if failed:
            run.outcome = "failed"
    if args.json:
        from iopreport.runjson import dumps, reduce_document

        print(dumps(reduce_document(reduction.reports, missing, not failed, args.night)))
    # 1 while any frame of the night is failed or unclassified, or a master or telescope
    # failed (in this run or an earlier one): the reasons are printed and recorded
    return EXIT_WORK_FAILED if failed else EXIT_OK


def cmd_calibrate_pol(args: argparse.Namespace) -> int:
    """``iopreport calibrate-pol``: exit 1 when the standards do not constrain the fit."""
    from iopreport.catalog import load_catalog
    from iopreport.reduce.calibratepol import fit_instrumental, standard_observations
    from iopreport.store import open_store

    config = load_config_and_logging(args)
    registry = config.registry
    if args.instrument not in registry:
        known = ", ".join(registry.names())
        raise UsageError(f"unknown instrument {args.instrument!r}; known: {known}")
    catalog = load_catalog(config.paths.catalog)
    open_store(config.database_path)
    observations = standard_observations(
        catalog, args.instrument, args.band, args.since, args.until
    )
    fit = fit_instrumental(observations, args.instrument, args.band)
    print(fit.report())
    return EXIT_OK if fit.complete else EXIT_WORK_FAILED


def cmd_import(args: argparse.Namespace) -> int:
    """``iopreport import iop4 --db PATH [...]`` and ``iopreport import compare``."""
    if args.import_kind == "iop4":
        from iopreport.importers.iop4db import check_schema, open_readonly

        connection = open_readonly(args.db)  # refused before anything is opened or written
        try:
            check_schema(connection, args.db)
        finally:
            connection.close()
    config = load_config_and_logging(
        args, log_to_file=args.import_kind == "iop4" and not args.dry_run
    )
    if args.import_kind == "compare":
        from iopreport.importers.compare import compare_rows, compare_text
        from iopreport.store import open_store

        if not config.store_exists:
            raise UsageError(f"{config.database_path}: no database yet; nothing to compare")
        open_store(config.database_path, create=False)
        print(compare_text(compare_rows(night=args.night, source=args.source)))
        return EXIT_OK
    from iopreport.importers.iop4 import import_iop4

    options = {
        "results": args.results,
        "flags": args.flags,
        "dry_run": args.dry_run,
        "update": args.update,
        "pol_band": args.pol_band,
    }
    if args.dry_run:
        report = import_iop4(config, args.db, **options)
    else:
        from iopreport.runlog import recorded_run
        from iopreport.store import open_store

        open_store(config.database_path)
        with recorded_run("import iop4", sys.argv[1:]) as run:
            report = import_iop4(config, args.db, **options)
            run.detail = ", ".join(report.written) or "nothing to write"
    print(report.text(dry_run=args.dry_run))
    return EXIT_OK
