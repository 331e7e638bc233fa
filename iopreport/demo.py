"""`iopreport demo`: the whole product on a simulated archive served over FTP.

The demo serves ``<dir>/archive/`` with a real FTP server on 127.0.0.1, points
the project's archives at it, and then lets a few consecutive nights appear
there (``--nights N``, default 3): each night is simulated at the three
telescopes (each archive in its own layout) and the daemon polls the archive,
running one cycle as it would when the night's files arrive: fetch, reduce
(photometry, polarimetry, host correction), build the site, send the summaries
due (none: the demo has no subscribers). BL Lac flares on the third night
(:data:`iopreport.simulate.targets.FLARES`), so the last summary carries an
alert. The demo then writes each night's summary to the outbox, rebuilds the
site so that it carries them, compares the results with the simulation's truth
and prints where to look. ``--serve`` serves the site on http://127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from pathlib import Path

import tomlkit

from iopreport.errors import EXIT_OK, EXIT_WORK_FAILED
from iopreport.fileio import write_text_atomic
from iopreport.telescopes import TELESCOPES

#: The first simulated demo night (an autumn night when BL Lac and the standards are up).
DEMO_NIGHT = dt.date(2024, 10, 8)
DEMO_SEED = 2024
#: Consecutive nights the demo simulates by default (light curves get a time axis,
#: summaries a previous night to compare with, and the flare of the third night an alert).
DEMO_NIGHTS = 3
#: Preset of the nights after the first: BL Lac monitored at every telescope, and a
#: standard at each polarimeter (the first night, at ``--preset``, observes the
#: other targets and standards).
MONITORING_PRESET = "monitor"
#: Polarimeters whose calibration from the standards observed the demo prints.
DEMO_POLARIMETERS = ("AndorT90", "AndorT150", "DIPOL", "CAFOS")


def demo_nights(count: int = DEMO_NIGHTS) -> list[dt.date]:
    """The demo's consecutive nights, from :data:`DEMO_NIGHT`."""
    if count < 1:
        from iopreport.errors import UsageError

        raise UsageError(f"--nights must be at least 1 (got {count})")
    return [DEMO_NIGHT + dt.timedelta(days=k) for k in range(count)]


def point_archives_at(config_path: Path, archive: Path) -> None:
    """Make every telescope archive of the project a local folder under ``archive``,
    and plate-solve with the index files built from the simulated sky."""
    from iopreport.simulate.sky import SKY_INDEX_DIR

    document = tomlkit.parse(config_path.read_text(encoding="utf-8"))
    document["paths"]["astrometry_index_dir"] = str(SKY_INDEX_DIR)
    archives = document.setdefault("archives", tomlkit.table())
    for telescope in TELESCOPES:
        table = tomlkit.table()
        table["enabled"] = True
        table["protocol"] = "local"
        table["root"] = str(archive.relative_to(config_path.parent) / telescope)
        table.comment("the demo's simulated archive (iopreport simulate)")
        archives[telescope] = table
    write_text_atomic(config_path, tomlkit.dumps(document))


def point_archives_at_server(config_path: Path, table: dict) -> None:
    """Make every telescope archive an FTP archive on the demo's server (root /<TELESCOPE>)."""
    document = tomlkit.parse(config_path.read_text(encoding="utf-8"))
    archives = document.setdefault("archives", tomlkit.table())
    for telescope in TELESCOPES:
        entry = tomlkit.table()
        for key, value in {**table, "root": f"/{telescope}"}.items():
            entry[key] = value
        entry.comment("the demo's simulated archive, served by FTP on 127.0.0.1")
        archives[telescope] = entry
    write_text_atomic(config_path, tomlkit.dumps(document))


def run_demo(
    directory: Path,
    *,
    preset: str = "small",
    nights: int = DEMO_NIGHTS,
    verbose: bool = False,
    serve: bool = False,
) -> int:
    """Create (or reuse) the demo project in ``directory`` and run the whole pipeline."""
    from iopreport.archive.testserver import FtpTestServer
    from iopreport.build import run_build
    from iopreport.catalog import load_catalog
    from iopreport.config import load_config
    from iopreport.daemon import Daemon
    from iopreport.logsetup import configure_logging
    from iopreport.mail import dry_run
    from iopreport.mail.content import build_night_summary
    from iopreport.runlog import recorded_run
    from iopreport.simulate import simulate_night
    from iopreport.simulate.evaluate import evaluate_night, evaluate_polarimetry
    from iopreport.skeleton import init_project
    from iopreport.status import render_status
    from iopreport.store import open_store
    from iopreport.store.dialect import describe

    dates = demo_nights(nights)
    directory = directory.resolve()
    config_path = directory / "config.toml"
    archive = directory / "archive"
    if config_path.exists():
        print(f"Reusing demo project {directory}")
    else:
        init_project(directory)
        point_archives_at(config_path, archive)
        print(f"Created demo project {directory}")
    archive.mkdir(parents=True, exist_ok=True)
    simulated = []
    codes = []
    with FtpTestServer(archive) as server:
        point_archives_at_server(config_path, server.archive_table())
        config = load_config(config_path)
        configure_logging(config, verbose=verbose)
        print(
            f"Serving the archive by FTP on 127.0.0.1:{server.port}; {len(dates)} night(s) "
            "appear there, the daemon polling as each does."
        )
        for night in dates:
            plan = preset if night == dates[0] else MONITORING_PRESET
            print(f"Night {night}: simulating {', '.join(TELESCOPES)} ({plan} preset) ...")
            for result in simulate_night(archive, night, preset=plan, seed=DEMO_SEED):
                simulated.append((night, result))
            print("  daemon cycle (fetch, reduce, build, summaries due) ...")
            codes.append(Daemon(config).run(once=True))
    cycle_code = next((code for code in codes if code != EXIT_OK), EXIT_OK)
    catalog = load_catalog(config.paths.catalog)
    open_store(config.database_path)
    with recorded_run("demo", [str(directory), preset, f"{len(dates)} nights"]) as run:
        written = [dry_run(config, night) for night in dates]
        build = run_build(config)
        run.detail = (
            f"daemon cycles exit {codes}; summaries {[str(w[0]) for w in written]}; "
            f"{build.summary()}"
        )
        alerts = build_night_summary(config, dates[-1], plots=False).alerts

    print()
    print(render_status(config, failures=2))
    print()
    print(f"Alerts in the summary of {dates[-1]}:" if alerts else f"No alert on {dates[-1]}.")
    for alert in alerts:
        print(f"  {alert.source} [{alert.rule}]: {alert.message}")
    print()
    print("Compared with the simulation's truth:")
    for night, result in simulated:
        print(f"  {result.telescope} {night}")
        evaluation = evaluate_night(result.folder, config.paths.datadir, result.telescope)
        print("    " + evaluation.summary().replace("\n", "\n    "))
        for check in evaluate_polarimetry(result.folder, result.telescope):
            print("    " + check.line())
    print()
    print("Polarimeters calibrated from the standards observed (calibrate-pol, R band):")
    for line in calibration_lines(catalog):
        print(f"  {line}")
    print()
    print("What the demo made:")
    print(f"  project:   {config_path}")
    print(f"  catalog:   {config.paths.catalog} ({len(catalog)} sources)")
    print(f"  database:  {describe(config.database_path)}")
    print(f"  archive:   {archive} (served by FTP during the run)")
    for site_copy, outbox in written:
        print(f"  summary:   {site_copy}")
        for item in outbox:
            print(f"  outbox:    {item.eml}")
    index = config.paths.site_dir / "index.html"
    print(f"Site: {index}")
    if serve:
        serve_site(config.paths.site_dir)
    return EXIT_OK if cycle_code == EXIT_OK else EXIT_WORK_FAILED


def calibration_lines(catalog) -> list[str]:
    """One line per polarimeter: its instrumental polarization and zero angle as fitted
    from the standards of the store (``iopreport calibrate-pol``), or what is missing."""
    from iopreport.reduce.calibratepol import fit_instrumental, standard_observations

    lines = []
    for name in DEMO_POLARIMETERS:
        fit = fit_instrumental(standard_observations(catalog, name, "R"), name, "R")
        counts = f"{fit.n_unpolarized} unpolarized + {fit.n_polarized} polarized"
        parts = []
        if math.isfinite(fit.q_inst):
            parts.append(
                f"q_inst {fit.q_inst * 100:+.3f}+-{fit.q_inst_err * 100:.3f}% "
                f"u_inst {fit.u_inst * 100:+.3f}+-{fit.u_inst_err * 100:.3f}%"
            )
        if math.isfinite(fit.zero_angle_deg):
            parts.append(f"zero angle {fit.zero_angle_deg:+.2f}+-{fit.zero_angle_err_deg:.2f} deg")
        if not fit.n_unpolarized + fit.n_polarized:
            parts.append("no standard observed")
        elif not fit.complete:
            parts += fit.problems[:1] or ["incomplete"]
        lines.append(f"{name:<9} {counts:<26} {'; '.join(parts)}")
    return lines


def serve_site(folder: Path, port: int = 8000) -> None:
    """Serve the published site on http://127.0.0.1:PORT until Ctrl-C."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        print(f"Serving {folder} on http://127.0.0.1:{httpd.server_address[1]}/ (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            httpd.serve_forever()
