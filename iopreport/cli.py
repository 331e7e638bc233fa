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
    parser.add_argument(
        "--log-json",
        action="store_true",
        help='log records as JSON lines (as [logging] format = "json"), e.g. for the daemon',
    )
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
    status.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (schema: docs/schemas/status.schema.json) instead of text",
    )
    status.set_defaults(handler=cmd_status)

    catalog = commands.add_parser(
        "catalog",
        help="check catalog.toml or load it into the store",
        description="`catalog check` reports the first problem with its line; "
        "`catalog load` writes the catalog into the store.",
    )
    catalog_actions = catalog.add_subparsers(dest="action", metavar="ACTION", required=True)
    catalog_actions.add_parser("check", help="report the first problem with its line")
    catalog_actions.add_parser("load", help="write the catalog into the store")
    suggest = catalog_actions.add_parser(
        "suggest",
        help="propose comparison stars for a new target (queries PS1 and Gaia: network)",
        description="Query Pan-STARRS1 DR2 (MAST) and Gaia DR3 (ESA) around a position "
        "through astroquery, choose comparison stars by IOP4's and the WEBT's rules "
        "(magnitude range around the target, isolation, not variable, colours) and print "
        "[[source]] entries for catalog.toml (B, V, R, I from PS1 by Tonry et al. 2012). "
        "This is the only command that uses these services; it needs the network. The MAST "
        "servers are astroquery's ([mast] in astroquery.cfg); docs/catalog.md.",
    )
    suggest.add_argument("name", metavar="NAME", help="the target's name in catalog.toml")
    suggest.add_argument("--ra", required=True, help="hours (22:02:43.29) or degrees (330.68)")
    suggest.add_argument("--dec", required=True, help="degrees (+42:16:39.98 or 42.2778)")
    suggest.add_argument(
        "--radius", type=float, default=3.0, metavar="ARCMIN", help="field radius (default 3)"
    )
    suggest.add_argument("--mag", type=float, metavar="R", help="target's R (default: PS1)")
    suggest.add_argument("--count", type=int, default=5, help="stars to propose (default 5)")
    suggest.add_argument("--gaia-tap", metavar="URL", help="Gaia TAP service (default ESA's)")
    suggest.add_argument("--out", type=Path, metavar="FILE", help="write the entries here too")
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
    simulate.add_argument(
        "--preset",
        choices=("tiny", "small", "full", "unbinned"),
        default="small",
        help="size of the night (unbinned: 2048x2048 frames, 3x the cosmic-ray rate)",
    )
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
    simulate.add_argument(
        "--header-wcs",
        action="store_true",
        help="write a celestial TAN WCS into every science frame's header",
    )
    simulate.add_argument(
        "--header-wcs-offset",
        type=float,
        default=0.0,
        metavar="ARCSEC",
        help="shift the header WCS this far north of the truth (with --header-wcs)",
    )
    simulate.add_argument(
        "--cosmic-ray-scale",
        type=float,
        default=None,
        metavar="X",
        help="cosmic-ray rate as a multiple of the simulator's (default: the preset's)",
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
    fetch.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (schema: docs/schemas/fetch.schema.json) instead of text",
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
    reduce.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (schema: docs/schemas/reduce.schema.json) instead of text",
    )
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
    importer = commands.add_parser(
        "import",
        help="import another pipeline's catalog, flags and results (IOP4), or compare them",
        description="`import iop4 --db PATH` reads an IOP4 database read-only and appends its "
        "sources to catalog.toml (with --flags its manual result flags to flags.toml, with "
        "--results its results to the store, method iop4-import, kept apart from iopreport's "
        "own). `import compare` lists iopreport's and the imported results side by side per "
        "source and night.",
    )
    import_kinds = importer.add_subparsers(dest="import_kind", metavar="KIND", required=True)
    iop4 = import_kinds.add_parser("iop4", help="an IOP4 1.x database (SQLite)")
    iop4.add_argument("--db", required=True, type=Path, metavar="PATH", help="the IOP4 database")
    iop4.add_argument("--results", action="store_true", help="also import the results")
    iop4.add_argument("--flags", action="store_true", help="also import manual result flags")
    iop4.add_argument(
        "--dry-run", action="store_true", help="print what would change; write nothing"
    )
    iop4.add_argument(
        "--update", action="store_true", help="overwrite entries imported before that differ"
    )
    iop4.add_argument(
        "--pol-band",
        default="R",
        choices=("U", "B", "V", "R", "I"),
        help="band of the standards' polarization (IOP4 keeps one value, no band; default R)",
    )
    compare = import_kinds.add_parser(
        "compare", help="imported and own results side by side per source and night"
    )
    compare.add_argument("--night", type=_night, metavar="YYYY-MM-DD")
    compare.add_argument("--source", metavar="NAME")
    importer.set_defaults(handler=cmd_import)

    reprocess = commands.add_parser(
        "reprocess",
        help="reduce every night with raw data in a period again, then build the site once",
        description="A reprocessing campaign: the masters of every night in the period first "
        "(a night may borrow a later night's), then each date's frames and polarimetry, in "
        "date order, then the site build. Runs on the local pool or the Dask cluster of "
        "[cluster]; killed and started again with the same arguments it continues where it "
        "stopped. Work already done for the same inputs is skipped unless --force.",
    )
    reprocess.add_argument("--from", dest="start", type=_night, required=True, metavar="YYYY-MM-DD")
    reprocess.add_argument("--to", dest="end", type=_night, required=True, metavar="YYYY-MM-DD")
    reprocess.add_argument("--telescope", action="append", type=_telescope, metavar="T")
    reprocess.add_argument("--force", action="store_true", help="redo everything")
    reprocess.add_argument("--workers", type=int, default=None, help="processes (default: config)")
    reprocess.add_argument("--no-build", action="store_true", help="skip the site build at the end")
    reprocess.set_defaults(handler=cmd_reprocess)

    store = commands.add_parser(
        "store",
        help="copy a store between SQLite and PostgreSQL",
        description="`store copy SRC DST` copies every table of the store SRC into the new, "
        "empty store DST (a SQLite file or a postgresql:// URL; a password in $PGPASSWORD), "
        "then checks that every table has the same number of rows.",
    )
    store_actions = store.add_subparsers(dest="action", metavar="ACTION", required=True)
    store_copy = store_actions.add_parser("copy", help="copy SRC into the empty store DST")
    store_copy.add_argument("source", metavar="SRC")
    store_copy.add_argument("destination", metavar="DST")
    store.set_defaults(handler=cmd_store)

    build = commands.add_parser(
        "build",
        help="render the static site into paths.site_dir (only pages whose inputs changed)",
        description="Render the site (index, source, night, catalog, status and summary pages) "
        "from the store into a fresh folder and swap it in atomically; pages whose inputs did "
        "not change are kept from the published site unless --full.",
    )
    build.add_argument("--full", action="store_true", help="render every page again")
    build.add_argument(
        "--allow-retire",
        action="store_true",
        help="apply a catalog even if it retires every source or more than "
        "safety.max_retire_share of those with results",
    )
    build.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (schema: docs/schemas/build.schema.json) instead of text",
    )
    build.set_defaults(handler=cmd_build)

    index = commands.add_parser(
        "index",
        help="astrometry.net index files for the catalog's fields: plan, fetch (network)",
        description="Work out which astrometry.net index files the catalog's fields need "
        "with every instrument (scales whose quads are 10%%-100%% of the field, HEALPix "
        "tiles covering each field) and download the missing ones into "
        "paths.astrometry_index_dir. `fetch` is the only command that downloads index files "
        "([astrometry] in config.toml: series, mirror_url).",
    )
    index_actions = index.add_subparsers(dest="index_action", metavar="ACTION", required=True)
    for action, text in (
        ("plan", "list the files needed, their sizes, the total and what is present"),
        ("fetch", "download the missing files (uses the network; resumable, verified)"),
    ):
        sub = index_actions.add_parser(action, help=text, description=text)
        sub.add_argument(
            "--instrument", action="append", metavar="NAME", help="only this instrument"
        )
        sub.add_argument("--source", action="append", metavar="NAME", help="only this source")
        if action == "plan":
            sub.add_argument(
                "--by-source", action="store_true", help="also list each source's tiles"
            )
        sub.set_defaults(handler=cmd_index)

    export = commands.add_parser(
        "export",
        help="write results to ECSV, VOTable, FITS, CSV or WEBT/GASP exchange files",
        description="Export results with units, column descriptions and metadata (software "
        "version, catalog and flags hashes, citation, export date) through astropy Tables; "
        "--format webt writes one JD/magnitude/error file per source, telescope and band "
        "(docs/export.md). Flagged results are left out unless --include-flagged.",
    )
    export.add_argument(
        "--out", type=Path, required=True, metavar="PATH", help="file (folder for webt)"
    )
    export.add_argument(
        "--format", dest="fmt", choices=_export_formats(), help="default: from --out"
    )
    export.add_argument("--source", action="append", metavar="NAME", help="repeatable")
    export.add_argument("--night", action="append", type=_night, metavar="YYYY-MM-DD")
    export.add_argument("--from", dest="date_from", type=_night, metavar="YYYY-MM-DD")
    export.add_argument("--to", dest="date_to", type=_night, metavar="YYYY-MM-DD")
    export.add_argument("--telescope", action="append", type=_telescope, metavar="T")
    export.add_argument("--instrument", action="append", metavar="NAME")
    export.add_argument("--band", action="append", metavar="B")
    export.add_argument("--mode", action="append", choices=("photometry", "polarimetry"))
    export.add_argument("--include-flagged", action="store_true", help="keep flagged results")
    export.set_defaults(handler=cmd_export)

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


def _export_formats() -> list[str]:
    from iopreport.export.write import FORMATS

    return list(FORMATS)


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
    except Exception as exc:
        from iopreport.store.database import is_locked_error, locked_message

        if not is_locked_error(exc):
            raise
        print(f"iopreport: error: {locked_message()}", file=sys.stderr)
        return EXIT_WORK_FAILED
    except KeyboardInterrupt:
        print("iopreport: interrupted", file=sys.stderr)
        return EXIT_WORK_FAILED


def _load_config(args: argparse.Namespace, *, log_to_file: bool = False):
    from iopreport.config import load_config
    from iopreport.logsetup import configure_logging

    config = load_config(args.config)
    configure_logging(config, verbose=args.verbose, to_file=log_to_file, json_lines=args.log_json)
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
    """``iopreport catalog check|load|suggest``."""
    from iopreport.catalog import load_catalog, sync_catalog

    if args.action == "suggest":
        return _catalog_suggest(args)
    config = _load_config(args, log_to_file=args.action == "load")
    catalog = load_catalog(config.paths.catalog)
    print(f"{config.paths.catalog}: {_catalog_summary(catalog)}")
    if not catalog.sources:
        raise UsageError(
            f"{config.paths.catalog}: holds no [[source]]: a build with it would retire "
            "every source (refused unless --allow-retire)"
        )
    if args.action == "load":
        from iopreport.runlog import recorded_run
        from iopreport.store import open_store

        open_store(config.database_path)
        with recorded_run("catalog load", [str(config.paths.catalog)]) as run:
            counts = sync_catalog(catalog)
            run.detail = _counts_text(counts)
        print(f"{config.database_path}: {_counts_text(counts)}")
    return EXIT_OK


def _catalog_suggest(args: argparse.Namespace) -> int:
    """``catalog suggest``: needs no project; the only command that asks PS1 and Gaia."""
    from iopreport.suggest import suggest

    ra, dec = _position(args.ra, args.dec)
    if args.radius <= 0 or args.count < 1:
        raise UsageError("--radius and --count must be positive")
    choice, text = suggest(
        args.name,
        ra,
        dec,
        radius_arcmin=args.radius,
        target_r=args.mag,
        count=args.count,
        gaia_tap=args.gaia_tap,
    )
    if args.out:
        from iopreport.fileio import write_text_atomic

        write_text_atomic(args.out, text, mode=0o644)
    print(text, end="")
    reasons: dict[str, int] = {}
    for candidate in choice.rejected:
        for rule in candidate.failed:
            reasons[rule] = reasons.get(rule, 0) + 1
    print(
        f"{len(choice.chosen)} stars proposed; rejected by rule: "
        + (", ".join(f"{rule} {n}" for rule, n in sorted(reasons.items())) or "none"),
        file=sys.stderr,
    )
    return EXIT_OK if choice.chosen else EXIT_WORK_FAILED


def _position(ra_text: str, dec_text: str) -> tuple[float, float]:
    """Degrees from the catalog's conventions: ra a number (deg) or hours, dec degrees."""
    from astropy.coordinates import Angle

    try:
        ra = float(ra_text)
    except ValueError:
        try:
            ra = Angle(ra_text, unit="hourangle").deg
        except ValueError as exc:
            raise UsageError(f"cannot read --ra {ra_text!r}: {exc}") from None
    try:
        dec = Angle(dec_text, unit="deg").deg
    except ValueError as exc:
        raise UsageError(f"cannot read --dec {dec_text!r}: {exc}") from None
    if not (0 <= ra < 360 and -90 <= dec <= 90):
        raise UsageError(f"position out of range: ra {ra} deg, dec {dec} deg")
    return ra, dec


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
    from iopreport.status import render_status, status_json

    config = _load_config(args)
    render = status_json if args.json else render_status
    print(render(config, nights=args.nights, failures=args.failures))
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """``iopreport migrate``."""
    from iopreport.config import is_database_url
    from iopreport.store import SCHEMA_VERSION, open_store, schema_version
    from iopreport.store.database import read_schema_version
    from iopreport.store.dialect import describe

    config = _load_config(args, log_to_file=True)
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

    config = _load_config(args, log_to_file=True)
    _check_telescopes(args.telescope, config)
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
        header_wcs=args.header_wcs,
        header_wcs_offset_arcsec=args.header_wcs_offset,
        cosmic_ray_scale=args.cosmic_ray_scale,
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
    from iopreport.archive.sync import SyncHooks
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

    config = _load_config(args)
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
    from iopreport.config import is_database_url
    from iopreport.store.dialect import describe

    store = config.database_path
    url = is_database_url(store)
    if not url and not store.exists():
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
    name = describe(store) if url else store.name
    print(f"{path}: {len(flagset)} flags, valid; each selects something in {name}")
    return EXIT_OK


def _edit_flags(args: argparse.Namespace, config, catalog) -> int:
    import getpass
    import os

    from iopreport.flags.edit import add_flag, remove_flag
    from iopreport.flags.parse import flags_from_source
    from iopreport.tomlsource import TomlSource

    path = config.paths.flags
    telescopes = sorted({i.telescope for i in config.instruments.values()})
    registry = config.registry

    def validate(text: str):
        return flags_from_source(
            TomlSource.from_text(text, path), catalog, telescopes=telescopes, registry=registry
        )

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


def cmd_import(args: argparse.Namespace) -> int:
    """``iopreport import iop4 --db PATH [...]`` and ``iopreport import compare``."""
    if args.import_kind == "iop4":
        from iopreport.importers.iop4db import check_schema, open_readonly

        connection = open_readonly(args.db)  # refused before anything is opened or written
        try:
            check_schema(connection, args.db)
        finally:
            connection.close()
    config = _load_config(args, log_to_file=args.import_kind == "iop4" and not args.dry_run)
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
        report = run_build(config, full=args.full, allow_retire=args.allow_retire)
        run.detail = report.summary()
        if report.rendered is not None:
            run.detail += "; " + report.rendered.summary()
    if args.json:
        from iopreport.runjson import build_document, dumps

        print(dumps(build_document(report)))
        return EXIT_OK
    print(report.summary())
    if report.rendered is not None:
        print(report.rendered.summary())
    return EXIT_OK


def cmd_index(args: argparse.Namespace) -> int:
    """``iopreport index plan|fetch``: index files for the catalog's fields."""
    from iopreport.catalog import load_catalog
    from iopreport.indexfiles.plan import make_plan
    from iopreport.indexfiles.report import render_plan

    config = _load_config(args, log_to_file=args.index_action == "fetch")
    catalog = load_catalog(config.paths.catalog)
    instruments = dict(config.registry.specs)
    if args.instrument:
        unknown = [name for name in args.instrument if name not in instruments]
        if unknown:
            raise UsageError(f"unknown instrument {unknown[0]!r}; known: {', '.join(instruments)}")
        instruments = {name: instruments[name] for name in args.instrument}
    sources = list(catalog.sources)
    if args.source:
        sources = []
        for name in args.source:
            found = catalog.get(name)
            if found is None:
                raise UsageError(f"unknown source {name!r} (not in {config.paths.catalog})")
            sources.append(found)
    plan = make_plan(
        sources,
        instruments,
        series=config.astrometry.series,
        index_dir=config.paths.astrometry_index_dir,
    )
    if args.index_action == "plan":
        print(render_plan(plan, by_source=args.by_source))
        return EXIT_OK

    from iopreport.indexfiles.fetch import fetch_files

    mirror = config.astrometry.mirror_url
    print(
        f"index fetch: {len(plan.missing)} of {len(plan.files)} files to download "
        f"({plan.missing_bytes / 1e6:,.1f} MB) into {config.paths.astrometry_index_dir}"
        + (f" from {mirror}" if mirror and plan.missing else "")
    )
    report = fetch_files(plan.missing, config.paths.astrometry_index_dir, mirror)
    report.present[:0] = [plan.present[name] for name in sorted(plan.present)]
    print(f"index fetch: {report.summary()}")
    for name, reason in report.failed.items():
        print(f"  {name}: {reason}")
    return EXIT_WORK_FAILED if report.failed else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """``iopreport export``: read-only on the store; writes only ``--out``."""
    from iopreport.export import ExportFilter, export_metadata, select_records, write_export
    from iopreport.export.write import FORMATS
    from iopreport.store import open_store

    config = _load_config(args)
    fmt = args.fmt
    if fmt is None:
        by_suffix = {suffix: name for name, suffix in FORMATS.items() if suffix}
        by_suffix[".vot"] = "votable"
        fmt = by_suffix.get(args.out.suffix.lower())
        if fmt is None:
            raise UsageError(
                f"cannot tell the format from {args.out}; give --format ({', '.join(FORMATS)})"
            )
    if not config.store_exists:
        raise UsageError(f"{config.database_path}: no database yet; nothing to export")
    open_store(config.database_path, create=False, upgrade=False)
    selection = ExportFilter(
        sources=tuple(args.source or ()),
        nights=tuple(args.night or ()),
        date_from=args.date_from,
        date_to=args.date_to,
        telescopes=tuple(args.telescope or ()),
        instruments=tuple(args.instrument or ()),
        bands=tuple(args.band or ()),
        modes=tuple(args.mode or ()),
        include_flagged=args.include_flagged,
    )
    records = select_records(selection)
    files = write_export(records, export_metadata(config, selection.describe()), fmt, args.out)
    print(
        f"{len(records)} results -> {', '.join(str(f) for f in files) or 'no file (none to write)'}"
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """``iopreport demo``: the whole product on a simulated archive served by FTP."""
    from iopreport.demo import run_demo

    return run_demo(
        args.dir, preset=args.preset, nights=args.nights, verbose=args.verbose, serve=args.serve
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
