"""Commands that set up, try out and run a project: init, status, simulate, daemon,
index and demo."""

from __future__ import annotations

import argparse
import sys

from iopreport.cli.common import check_telescopes, load_config_and_logging
from iopreport.errors import EXIT_OK, EXIT_WORK_FAILED, UsageError


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


def cmd_status(args: argparse.Namespace) -> int:
    """``iopreport status``."""
    from iopreport.status import render_status, status_json

    config = load_config_and_logging(args)
    render = status_json if args.json else render_status
    print(render(config, nights=args.nights, failures=args.failures))
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    """``iopreport simulate``."""
    from iopreport.simulate import simulate_night
    from iopreport.simulate.faults import FAULTS
    from iopreport.telescopes import TELESCOPES

    check_telescopes(args.telescope)
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


def cmd_daemon(args: argparse.Namespace) -> int:
    """``iopreport daemon [--once]``."""
    from iopreport.daemon import Daemon

    config = load_config_and_logging(args, log_to_file=True)
    return Daemon(config).run(once=args.once)


def cmd_index(args: argparse.Namespace) -> int:
    """``iopreport index plan|fetch``: index files for the catalog's fields."""
    from iopreport.catalog import load_catalog
    from iopreport.indexfiles.plan import make_plan
    from iopreport.indexfiles.report import render_plan

    config = load_config_and_logging(args, log_to_file=args.index_action == "fetch")
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


def cmd_demo(args: argparse.Namespace) -> int:
    """``iopreport demo``: the whole product on a simulated archive served by FTP."""
    from iopreport.demo import run_demo

    return run_demo(
        args.dir, preset=args.preset, nights=args.nights, verbose=args.verbose, serve=args.serve
    )
