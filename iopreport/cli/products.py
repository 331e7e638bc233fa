"""Commands for the site and what shapes it or comes out of it: catalog, flags,
build, summary and export."""

from __future__ import annotations

import argparse
import sys

from iopreport.cli.common import load_config_and_logging
from iopreport.errors import EXIT_OK, EXIT_USAGE, EXIT_WORK_FAILED, UsageError


def cmd_catalog(args: argparse.Namespace) -> int:
    """``iopreport catalog check|load|suggest``."""
    from iopreport.catalog import load_catalog, sync_catalog

    if args.action == "suggest":
        return _catalog_suggest(args)
    config = load_config_and_logging(args, log_to_file=args.action == "load")
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


def cmd_summary(args: argparse.Namespace) -> int:
    """``iopreport summary --night D [--dry-run | --send] [--subscriber NAME]``."""
    from iopreport.store import open_store

    config = load_config_and_logging(args, log_to_file=args.send)
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


def cmd_flags(args: argparse.Namespace) -> int:
    """``iopreport flags check|list|add|remove``."""
    from iopreport.build import load_inputs
    from iopreport.catalog import load_catalog

    config = load_config_and_logging(args)
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
    from iopreport.flags.check import check_flags, list_text
    from iopreport.flags.manual import evaluate
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


def cmd_build(args: argparse.Namespace) -> int:
    """``iopreport build [--full]``: catalog and flags re-applied, stale nights recomputed, site.

    A mistake in catalog.toml or flags.toml stops it before anything is written
    (exit 2, the line named): the store and the published site stay as they were.
    """
    from iopreport.build import load_inputs, run_build
    from iopreport.runlog import recorded_run
    from iopreport.store import open_store

    config = load_config_and_logging(args, log_to_file=True)
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


def cmd_export(args: argparse.Namespace) -> int:
    """``iopreport export``: read-only on the store; writes only ``--out``."""
    from iopreport.export import ExportFilter, export_metadata, select_records, write_export
    from iopreport.export.write import FORMATS
    from iopreport.store import open_store

    config = load_config_and_logging(args)
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
