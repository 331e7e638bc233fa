"""The ``iopreport`` command: one function per subcommand.

Exit codes: 0 ok, 1 work failed (details logged and recorded), 2 usage or
configuration error (docs/architecture.md, "Command line").
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from iopreport import __version__
from iopreport.errors import (
    EXIT_OK,
    EXIT_USAGE,
    EXIT_WORK_FAILED,
    IopreportError,
    UsageError,
)
from iopreport.logsetup import LOG_FORMAT

log = logging.getLogger("iopreport")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="iopreport",
        description=(
            "Photometry and polarimetry of optical monitoring nights: fetch, reduce, "
            "and publish a static site and night summaries."
        ),
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"iopreport {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $IOPREPORT_CONFIG, then ./config.toml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    init = commands.add_parser(
        "init",
        help="scaffold a site project (config.toml, flags.toml, catalog.toml, templates/, static/)",
        description="Write a new site project into DIR; existing files are never overwritten.",
    )
    init.add_argument("directory", metavar="DIR", type=Path)
    init.set_defaults(handler=cmd_init)

    status = commands.add_parser(
        "status",
        help="what the store holds: nights, failures, last runs, daemon health",
        description="Show the configuration in use, the catalog, the nights in the store "
        "with their failures, the last runs and the daemon's heartbeat.",
    )
    status.add_argument("--nights", type=int, default=10, help="how many recent nights to list")
    status.add_argument(
        "--failures", type=int, default=5, help="failed files listed per night, with reasons"
    )
    status.set_defaults(handler=cmd_status)

    catalog = commands.add_parser(
        "catalog",
        help="check catalog.toml or load it into the store",
        description="`catalog check` reports the first problem with its line; "
        "`catalog load` writes the catalog into the store.",
    )
    catalog.add_argument("action", choices=("check", "load"))
    catalog.set_defaults(handler=cmd_catalog)

    migrate = commands.add_parser(
        "migrate",
        help="upgrade the store to this version's schema (keeps a copy of the old file)",
        description="Upgrade the database named in the configuration to the current schema. "
        "A copy of the old file is kept as <db>.v<N>.bak.",
    )
    migrate.set_defaults(handler=cmd_migrate)

    simulate = commands.add_parser(
        "simulate",
        help="write synthetic raw nights (with truth.json) in each archive's own layout",
        description="Simulate a night at the telescopes: raw FITS files named and laid out as "
        "each archive has them (OUT/<TELESCOPE>/<night folder>/), and a truth.json per night "
        "folder with the true values behind every frame (docs/simulator.md).",
    )
    simulate.add_argument("--out", type=Path, required=True, metavar="DIR")
    simulate.add_argument("--night", required=True, type=_night, metavar="YYYY-MM-DD")
    simulate.add_argument(
        "--telescope",
        action="append",
        type=_telescope,
        metavar="T",
        help="OSN-T090, OSN-T150 or CAHA-T220 (or T090, T150, T220); repeatable; default all",
    )
    simulate.add_argument("--preset", choices=("tiny", "small", "full"), default="small")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="F",
        help="damage one frame: " + ", ".join(_fault_names()),
    )
    simulate.add_argument(
        "--cirrus",
        action="store_true",
        help="thin cirrus: transparency varies up to 10%% per frame",
    )
    simulate.set_defaults(handler=cmd_simulate)

    fetch = commands.add_parser(
        "fetch",
        help="download nights from the configured archives (FTP, SFTP, local) into the raw data",
        description="Download a night's FITS files from each enabled archive (FTP, SFTP or "
        "a local folder) into <datadir>/raw/<TELESCOPE>/<YYYY-MM-DD>/: resumable, verified "
        "(size, and checksum where the server offers one), atomic and read-only, and "
        "recorded in the store. An archive that fails is reported; the others carry on.",
    )
    fetch.add_argument("--telescope", action="append", type=_telescope, metavar="T")
    when = fetch.add_mutually_exclusive_group(required=True)
    when.add_argument("--night", type=_night, metavar="YYYY-MM-DD")
    when.add_argument(
        "--since", type=_night, metavar="YYYY-MM-DD", help="every night from this one"
    )
    fetch.set_defaults(handler=cmd_fetch)

    reduce = commands.add_parser(
        "reduce",
        help="classify, calibrate, plate-solve, measure a night; photometry and polarimetry",
        description="Reduce a night from the raw data directory: classification, masters, "
        "calibration, astrometry (DIPOL sub-frames by quads) and relative photometry in "
        "parallel, then polarimetric sequences and the host-galaxy correction. Work already "
        "done for the same inputs is skipped unless --force.",
    )
    reduce.add_argument("--night", type=_night, required=True, metavar="YYYY-MM-DD")
    reduce.add_argument("--telescope", action="append", type=_telescope, metavar="T")
    reduce.add_argument("--workers", type=int, default=None, help="processes (default: config)")
    reduce.add_argument("--force", action="store_true", help="redo everything")
    reduce.set_defaults(handler=cmd_reduce)

    calibrate_pol = commands.add_parser(
        "calibrate-pol",
        help="fit instrumental polarization and zero angle from the standards observed",
        description="Fit q_inst, u_inst and the zero angle of an instrument from the "
        "polarimetric results of the catalog's unpolarized and polarized standards in the "
        "store, print the fit with each standard's residual, and the config.toml entry.",
    )
    calibrate_pol.add_argument("--instrument", required=True, metavar="NAME")
    calibrate_pol.add_argument("--band", default="R")
    calibrate_pol.add_argument("--since", type=_night, metavar="YYYY-MM-DD")
    calibrate_pol.add_argument("--until", type=_night, metavar="YYYY-MM-DD")
    calibrate_pol.set_defaults(handler=cmd_calibrate_pol)
    summary = commands.add_parser(
        "summary",
        help="a night's summary e-mail: print it, write it (--dry-run) or send it (--send)",
        description="Build a night's summary (frames and failures per telescope, each source's "
        "values with changes and plots, alerts, targets without calibrated magnitudes) and "
        "write the site's copy to <datadir>/summaries/<night>.html. --dry-run writes each "
        "subscriber's .eml and .html to paths.outbox_dir; --send sends it to every "
        "[[subscribers]] entry not served yet (a failure is recorded and retried later, "
        "exit 1). Without either the plain text is printed (docs/summaries.md).",
    )
    summary.add_argument("--night", type=_night, required=True, metavar="YYYY-MM-DD")
    how = summary.add_mutually_exclusive_group()
    how.add_argument("--dry-run", action="store_true", help="write to the outbox, send nothing")
    how.add_argument("--send", action="store_true", help="send over SMTP and record it")
    summary.add_argument("--subscriber", metavar="NAME", help="only this [[subscribers]] entry")
    summary.set_defaults(handler=cmd_summary)
    daemon = commands.add_parser(
        "daemon",
        help="poll the archives, reduce and publish on a schedule until stopped",
        description="Run until SIGTERM/SIGINT: poll the enabled archives every "
        "schedule.poll_interval_minutes for new nights and files, reduce what came in, "
        "send the morning summary at schedule.summary_time and retry failed work every "
        "schedule.retry_interval_minutes. One daemon per data directory "
        "(<datadir>/daemon.lock). Operator's guide: docs/operations.md.",
    )
    daemon.add_argument(
        "--once",
        action="store_true",
        help="run one full cycle (fetch, reduce, build, summary) and exit (cron, tests)",
    )
    daemon.set_defaults(handler=cmd_daemon)
    flags = commands.add_parser(
        "flags",
        help="check, list, add or remove quality flags in flags.toml",
        description="Quality flags (docs/flags.md). `check` reports every problem with its "
        "line; `list` shows what each flag selects now; `add` and `remove` edit flags.toml "
        "keeping its comments and order. Flags take effect at the next build.",
    )
    flag_actions = flags.add_subparsers(dest="flags_action", metavar="ACTION", required=True)
    flag_actions.add_parser("check", help="report mistakes, unknown files, flags matching nothing")
    flags_list = flag_actions.add_parser("list", help="what each flag selects now")
    flags_list.add_argument("--details", action="store_true", help="name every result and frame")
    flags_add = flag_actions.add_parser(
        "add",
        help="append a flag to flags.toml",
        description="Append a [[flag]] to flags.toml. Repeat a selector to accept several values.",
    )
    flags_add.add_argument(
        "--what",
        action="append",
        required=True,
        choices=("photometry", "polarimetry", "frame"),
        help="what is bad (repeatable); frame excludes the frames from reduction",
    )
    flags_add.add_argument("--reason", required=True)
    flags_add.add_argument("--author", help="default: $IOPREPORT_AUTHOR, then the login name")
    flags_add.add_argument(
        "--id", dest="flag_id", metavar="ID", help="default: the next F0001-style id"
    )
    flags_add.add_argument("--date", type=_night, metavar="YYYY-MM-DD", help="default: today")
    for name, metavar in (("source", "NAME"), ("instrument", "NAME"), ("band", "B")):
        flags_add.add_argument(f"--{name}", action="append", metavar=metavar)
    flags_add.add_argument("--telescope", action="append", type=_telescope, metavar="T")
    flags_add.add_argument("--file", action="append", metavar="NAME", help="raw file (or location)")
    flags_add.add_argument("--night", action="append", type=_night, metavar="YYYY-MM-DD")
    flags_add.add_argument("--mode", action="append", choices=("photometry", "polarimetry"))
    flags_add.add_argument("--from", dest="time_from", metavar="ISO|JD", help="start of a range")
    flags_add.add_argument("--to", dest="time_to", metavar="ISO|JD", help="end of a time range")
    flags_remove = flag_actions.add_parser("remove", help="delete a flag from flags.toml")
    flags_remove.add_argument("--id", dest="flag_id", metavar="ID", required=True)
    flags.set_defaults(handler=cmd_flags)
    build = commands.add_parser(
        "build",
        help="render the static site into paths.site_dir (only pages whose inputs changed)",
        description="Render the site (index, source, night, catalog, status and summary pages) "
        "from the store into a fresh folder and swap it in atomically; pages whose inputs did "
        "not change are kept from the published site unless --full.",
    )
    build.add_argument("--full", action="store_true", help="render every page again")
    build.set_defaults(handler=cmd_build)

    demo = commands.add_parser(
        "demo",
        help="simulate an archive, serve it by FTP, run a daemon cycle, build the site",
        description="Create a self-contained demo project under DIR (config.toml, catalog, "
        "archive/, data, site_out, outbox): serve a simulated archive with an FTP server on "
        "127.0.0.1 where a few consecutive nights at the three telescopes appear, run a daemon "
        "cycle (fetch, reduce, build, summaries due) as each does, write the night summaries "
        "to the outbox, compare the results with the simulation's truth and print where to look.",
    )
    demo.add_argument("--dir", type=Path, default=Path("demo"), help="demo folder (default ./demo)")
    demo.add_argument(
        "--preset",
        choices=("tiny", "small", "full"),
        default="small",
        help="size of the simulated night (default small)",
    )
    demo.add_argument(
        "--nights",
        type=int,
        default=3,
        help="consecutive nights simulated, the daemon polling as each appears (default 3)",
    )
    demo.add_argument(
        "--serve", action="store_true", help="then serve the site on http://127.0.0.1:8000"
    )
    demo.set_defaults(handler=cmd_demo)
    return parser


def _night(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _telescope(text: str) -> str:
    """Full name from an abbreviation (T090); other names are checked against the config."""
    from iopreport.telescopes import TELESCOPE_ALIASES

    return TELESCOPE_ALIASES.get(text.upper(), text)


def _check_telescopes(names, config=None) -> None:
    from iopreport.telescopes import TELESCOPES

    known = [*TELESCOPES]
    if config is not None:
        known += sorted({i.telescope for i in config.instruments.values()})
    for name in names or ():
        if name not in known:
            raise UsageError(f"unknown telescope {name!r}; known: {', '.join(known)}")


def _fault_names() -> list[str]:
    from iopreport.simulate.faults import FAULTS

    return list(FAULTS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``iopreport`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    try:
        return args.handler(args)
    except IopreportError as exc:
        print(f"iopreport: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("iopreport: interrupted", file=sys.stderr)
        return EXIT_WORK_FAILED


def _load_config(args: argparse.Namespace, *, log_to_file: bool = False):
    from iopreport.config import load_config
    from iopreport.logsetup import configure_logging

    config = load_config(args.config)
    configure_logging(config, verbose=args.verbose, to_file=log_to_file)
    return config


def cmd_init(args: argparse.Namespace) -> int:
    """``iopreport init DIR``."""
    from iopreport.skeleton import init_project

    written = init_project(args.directory)
    print(f"New iopreport project in {args.directory}:")
    for path in written:
        print(f"  {path}")
    print(f"Next: edit {args.directory / 'config.toml'} (archives, SMTP), then run")
    print(f"  iopreport --config {args.directory / 'config.toml'} status")
    return EXIT_OK


def cmd_catalog(args: argparse.Namespace) -> int:
    """``iopreport catalog check|load``."""
    from iopreport.catalog import load_catalog, sync_catalog

    config = _load_config(args, log_to_file=args.action == "load")
    catalog = load_catalog(config.paths.catalog)
    print(f"{config.paths.catalog}: {_catalog_summary(catalog)}")
    if args.action == "load":
        from iopreport.runlog import recorded_run
        from iopreport.store import open_store

        open_store(config.database_path)
        with recorded_run("catalog load", [str(config.paths.catalog)]) as run:
            counts = sync_catalog(catalog)
            run.detail = _counts_text(counts)
        print(f"{config.database_path}: {_counts_text(counts)}")
    return EXIT_OK


def _catalog_summary(catalog) -> str:
    kinds: dict[str, int] = {}
    for source in catalog.sources:
        kinds[source.srctype] = kinds.get(source.srctype, 0) + 1
    parts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    return f"{len(catalog)} sources ({parts}), {len(catalog.targets())} with calibrators"


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{value} {key}" for key, value in counts.items())


def cmd_status(args: argparse.Namespace) -> int:
    """``iopreport status``."""
    from iopreport.status import render_status

    config = _load_config(args)
    print(render_status(config, nights=args.nights, failures=args.failures))
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """``iopreport migrate``."""
    from iopreport.store import SCHEMA_VERSION, open_store, schema_version
    from iopreport.store.database import read_schema_version

    config = _load_config(args, log_to_file=True)
    path = config.database_path
    if not path.exists():
        print(f"{path}: no database yet; it is created at the current schema when first needed")
        return EXIT_OK
    from iopreport.runlog import recorded_run

    before = read_schema_version(path)
    database = open_store(path)
    after = schema_version(database)
    if before != after:
        with recorded_run("migrate", [str(path)]) as run:
            run.detail = f"schema {before} -> {after}"
    database.close()
    if before == after:
        print(f"{path}: already at schema {SCHEMA_VERSION}")
    else:
        print(f"{path}: upgraded schema {before} -> {after}; old file kept as {path}.v{before}.bak")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    """``iopreport simulate``."""
    from iopreport.simulate import simulate_night
    from iopreport.simulate.faults import FAULTS
    from iopreport.telescopes import TELESCOPES

    _check_telescopes(args.telescope)
    unknown = [fault for fault in args.fault if fault not in FAULTS]
    if unknown:
        raise UsageError(f"unknown fault {unknown[0]!r}; known: {', '.join(FAULTS)}")
    telescopes = tuple(dict.fromkeys(args.telescope or TELESCOPES))
    results = simulate_night(
        args.out,
        args.night,
        telescopes=telescopes,
        preset=args.preset,
        seed=args.seed,
        faults=args.fault,
        cirrus=args.cirrus,
    )
    for result in results:
        truth = result.truth
        print(
            f"{result.folder}: {len(result.files)} files, "
            f"{len(truth['photometry'])} photometric and {len(truth['polarimetry'])} "
            f"polarimetric target observations; truth in {result.folder / 'truth.json'}"
        )
        for fault in truth["faults"]:
            print(f"  fault {fault['fault']}: {fault['file']}")
    missing = [
        fault
        for fault in args.fault
        if not any(fault in r.truth["applied_faults"] for r in results)
    ]
    if missing:
        print(f"warning: no frame suited fault(s) {', '.join(missing)}", file=sys.stderr)
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    """``iopreport fetch``: the daemon's download, for chosen nights, from every protocol."""
    from iopreport.archive.sync import sync_archive
    from iopreport.daemon import daemon_lock
    from iopreport.runlog import recorded_run
    from iopreport.store import open_store

    config = _load_config(args, log_to_file=True)
    _check_telescopes(args.telescope, config)
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
    with daemon_lock(config.paths.datadir), recorded_run("fetch", sys.argv[1:]) as run:
        lines = []
        for archive in archives.values():
            result = sync_archive(
                config, archive, nights=[args.night] if args.night else None, since=args.since
            )
            for line in result.lines():
                print(line)
                lines.append(line)
            for report in result.nights:
                for file, reason in report.failed.items():
                    if file != "listing":
                        print(f"  {file}: {reason}")
            failed = failed or result.failed
        run.detail = "; ".join(lines)
        if failed:
            run.outcome = "failed"
    return EXIT_WORK_FAILED if failed else EXIT_OK


def cmd_reduce(args: argparse.Namespace) -> int:
    """``iopreport reduce``."""
    from iopreport.catalog import load_catalog, sync_catalog
    from iopreport.reduce.night import raw_night_dir, reduce_nights
    from iopreport.runlog import recorded_run
    from iopreport.store import open_store
    from iopreport.telescopes import TELESCOPES

    config = _load_config(args, log_to_file=True)
    _check_telescopes(args.telescope, config)
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
            print(f"{telescope} {args.night}: {message}")
            summaries.append(f"{telescope}: {message}")
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
        for report in reduction.reports:
            print(report.summary())
            summaries.append(report.summary())
            failed = failed or bool(report.frames_failed or report.masters_failed)
            for name, reason in {**report.unclassified, **report.frames_failed}.items():
                print(f"  {name}: {reason}")
            for label, reason in report.masters_failed.items():
                print(f"  master {label}: {reason}")
        run.detail = "\n".join(summaries)
        if failed:
            run.outcome = "failed"
    # 1 when any frame, master or telescope failed: the reasons are printed and recorded
    return EXIT_WORK_FAILED if failed else EXIT_OK


def cmd_calibrate_pol(args: argparse.Namespace) -> int:
    """``iopreport calibrate-pol``: exit 1 when the standards do not constrain the fit."""
    from iopreport.catalog import load_catalog
    from iopreport.instruments.specs import INSTRUMENTS
    from iopreport.reduce.calibratepol import fit_instrumental, standard_observations
    from iopreport.store import open_store

    if args.instrument not in INSTRUMENTS:
        raise UsageError(f"unknown instrument {args.instrument!r}; known: {', '.join(INSTRUMENTS)}")
    config = _load_config(args)
    catalog = load_catalog(config.paths.catalog)
    open_store(config.database_path)
    observations = standard_observations(
        catalog, args.instrument, args.band, args.since, args.until
    )
    fit = fit_instrumental(observations, args.instrument, args.band)
    print(fit.report())
    return EXIT_OK if fit.complete else EXIT_WORK_FAILED


def cmd_summary(args: argparse.Namespace) -> int:
    """``iopreport summary --night D [--dry-run | --send] [--subscriber NAME]``."""
    from iopreport.store import open_store

    config = _load_config(args, log_to_file=args.send)
    open_store(config.database_path)
    if args.send:
        from iopreport.mail import send_night
        from iopreport.runlog import recorded_run

        with recorded_run("summary", sys.argv[1:]) as run:
            outcomes = send_night(config, args.night, subscriber=args.subscriber)
            lines = [outcome.line() for outcome in outcomes]
            print("\n".join(lines))
            failed = any(outcome.status == "failed" for outcome in outcomes)
            run.detail = "\n".join(lines)
            if failed:
                run.outcome = "failed"
        return EXIT_WORK_FAILED if failed else EXIT_OK
    if args.dry_run:
        from iopreport.mail import dry_run

        site_copy, files = dry_run(config, args.night, subscriber=args.subscriber)
        print(f"site copy: {site_copy}")
        for item in files:
            print(f"{item.subscriber}: {item.subject}")
            print(f"  to {', '.join(item.recipients)}")
            print(f"  {item.eml}\n  {item.html}")
        return EXIT_OK
    from iopreport.mail.content import build_night_summary
    from iopreport.mail.dispatch import select_subscribers
    from iopreport.mail.outbox import write_site_copy
    from iopreport.mail.render import render_summary

    summary = build_night_summary(config, args.night)
    site_copy = write_site_copy(config, summary)
    if args.subscriber:
        summary = summary.for_subscriber(select_subscribers(config, args.subscriber)[0])
    print(render_summary(summary, config.paths.templates_dir).text, end="")
    print(f"(site copy: {site_copy})")
    return EXIT_OK


def cmd_daemon(args: argparse.Namespace) -> int:
    """``iopreport daemon [--once]``."""
    from iopreport.daemon import Daemon

    config = _load_config(args, log_to_file=True)
    return Daemon(config).run(once=args.once)


def cmd_flags(args: argparse.Namespace) -> int:
    """``iopreport flags check|list|add|remove``."""
    from iopreport.build import load_inputs
    from iopreport.catalog import load_catalog

    config = _load_config(args)
    path = config.paths.flags
    action = args.flags_action
    if action in ("add", "remove"):  # the edited file is checked whole before it is written
        return _edit_flags(args, config, load_catalog(config.paths.catalog))
    _catalog, flagset = load_inputs(config)  # InputError naming the line -> exit 2
    store = config.database_path
    if not store.exists():
        print(f"{path}: {len(flagset)} flags, valid")
        print(f"{store}: no database yet, so raw files and matches are not checked")
        return EXIT_OK
    from iopreport.flags.apply import evaluate
    from iopreport.flags.check import check_flags, list_text
    from iopreport.store import open_store

    open_store(store, create=False)
    evaluation = evaluate(flagset)
    if action == "list":
        print(list_text(flagset, evaluation, details=args.details))
        return EXIT_OK
    problems = check_flags(flagset, raw_dir=config.paths.data_subdir("raw"), evaluation=evaluation)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{path}: {len(flagset)} flags, {len(problems)} problems")
        return EXIT_USAGE
    print(f"{path}: {len(flagset)} flags, valid; each selects something in {store.name}")
    return EXIT_OK


def _edit_flags(args: argparse.Namespace, config, catalog) -> int:
    import getpass
    import os

    from iopreport.flags.edit import add_flag, remove_flag
    from iopreport.flags.parse import flags_from_source
    from iopreport.tomlsource import TomlSource

    path = config.paths.flags
    telescopes = sorted({i.telescope for i in config.instruments.values()})

    def validate(text: str):
        return flags_from_source(TomlSource.from_text(text, path), catalog, telescopes=telescopes)

    if args.flags_action == "remove":
        remove_flag(path, args.flag_id, validate)
        print(f"{path}: removed flag {args.flag_id}; it stops applying at the next build")
        return EXIT_OK
    values = {
        "id": args.flag_id,
        "what": args.what,
        "source": args.source,
        "telescope": args.telescope,
        "instrument": args.instrument,
        "band": args.band,
        "mode": args.mode,
        "night": args.night,
        "file": args.file,
        "from": _time_value(args.time_from),
        "to": _time_value(args.time_to),
        "reason": args.reason,
        "author": args.author or os.environ.get("IOPREPORT_AUTHOR") or getpass.getuser(),
        "date": args.date,
    }
    flag_id = add_flag(path, {k: v for k, v in values.items() if v}, validate)
    print(f"{path}: added flag {flag_id}; it applies at the next build")
    return EXIT_OK


def _time_value(text: str | None):
    """A --from/--to argument as flags.toml keeps it: a JD number or the ISO text."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def cmd_build(args: argparse.Namespace) -> int:
    """``iopreport build [--full]``: catalog and flags re-applied, stale nights recomputed, site.

    A mistake in catalog.toml or flags.toml stops it before anything is written
    (exit 2, the line named): the store and the published site stay as they were.
    """
    from iopreport.build import load_inputs, run_build
    from iopreport.runlog import recorded_run
    from iopreport.store import open_store

    config = _load_config(args, log_to_file=True)
    load_inputs(config)  # InputError naming the line, before the store is touched
    open_store(config.database_path)
    with recorded_run("build", sys.argv[1:]) as run:
        report = run_build(config, full=args.full)
        run.detail = report.summary()
        if report.rendered is not None:
            run.detail += "; " + report.rendered.summary()
    print(report.summary())
    if report.rendered is not None:
        print(report.rendered.summary())
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """``iopreport demo``: the whole product on a simulated archive served by FTP."""
    from iopreport.demo import run_demo

    return run_demo(
        args.dir, preset=args.preset, nights=args.nights, verbose=args.verbose, serve=args.serve
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
