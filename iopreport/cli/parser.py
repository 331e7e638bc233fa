"""The argument parser of the ``iopreport`` command and its argument types."""

from __future__ import annotations

import argparse
from pathlib import Path

from iopreport import __version__
from iopreport.cli.data import (
    cmd_calibrate_pol,
    cmd_fetch,
    cmd_import,
    cmd_migrate,
    cmd_reduce,
    cmd_reprocess,
    cmd_store,
)
from iopreport.cli.products import cmd_build, cmd_catalog, cmd_export, cmd_flags, cmd_summary
from iopreport.cli.project import (
    cmd_daemon,
    cmd_demo,
    cmd_index,
    cmd_init,
    cmd_simulate,
    cmd_status,
)


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


def _export_formats() -> list[str]:
    from iopreport.export.write import FORMATS

    return list(FORMATS)


def _fault_names() -> list[str]:
    from iopreport.simulate.faults import FAULTS

    return list(FAULTS)
