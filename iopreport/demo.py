"""`iopreport demo`: a self-contained project that runs every stage implemented so far.

The demo simulates a night at the three telescopes into ``<dir>/archive/``
(each archive in its own layout), points the project's archives at it, loads
the catalog into the store and reports. Stages are added here as they are
built (fetch, reduce, build, summary); what is not built yet is said, never
pretended.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import tomlkit

from iopreport.errors import EXIT_OK
from iopreport.fileio import write_text_atomic
from iopreport.telescopes import TELESCOPES

#: The simulated demo night (an autumn night when BL Lac and the standards are up).
DEMO_NIGHT = dt.date(2024, 10, 8)
DEMO_SEED = 2024

#: Stages of the full pipeline that the demo does not run yet.
NOT_YET = (
    "polarimetry (sequences are calibrated and solved, not yet combined into p and chi)",
    "static site (`iopreport build`)",
    "night summary e-mail",
)


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


def run_demo(directory: Path, *, preset: str = "small", verbose: bool = False) -> int:
    """Create (or reuse) the demo project in ``directory`` and run what exists."""
    from iopreport.archive.local import fetch_night
    from iopreport.catalog import load_catalog, sync_catalog
    from iopreport.config import load_config
    from iopreport.logsetup import configure_logging
    from iopreport.reduce.night import reduce_night
    from iopreport.runlog import recorded_run
    from iopreport.simulate import simulate_night
    from iopreport.simulate.evaluate import evaluate_night
    from iopreport.skeleton import init_project
    from iopreport.status import render_status
    from iopreport.store import AstroSource, open_store

    directory = directory.resolve()
    config_path = directory / "config.toml"
    archive = directory / "archive"
    if config_path.exists():
        print(f"Reusing demo project {directory}")
    else:
        init_project(directory)
        point_archives_at(config_path, archive)
        print(f"Created demo project {directory}")
    config = load_config(config_path)
    configure_logging(config, verbose=verbose)
    catalog = load_catalog(config.paths.catalog)
    open_store(config.database_path)
    with recorded_run("demo", [str(directory), preset]) as run:
        counts = sync_catalog(catalog)
        print(f"Simulating {DEMO_NIGHT} at {', '.join(TELESCOPES)} ({preset} preset) ...")
        nights = simulate_night(archive, DEMO_NIGHT, preset=preset, seed=DEMO_SEED)
        n_files = sum(len(night.files) for night in nights)
        reports = []
        for night in nights:
            root = Path(config.archives[night.telescope].root)
            fetch_night(root, night.telescope, DEMO_NIGHT, config.paths.data_subdir("raw"))
            print(f"Reducing {night.telescope} {DEMO_NIGHT} ...")
            reports.append(
                reduce_night(config, catalog, night.telescope, DEMO_NIGHT, progress=True)
            )
        run.detail = (
            f"catalog: {counts['added']} added, {counts['updated']} updated; "
            f"simulated {n_files} raw files; " + "; ".join(report.summary() for report in reports)
        )
    in_store = AstroSource.select().where(AstroSource.in_catalog).count()

    print()
    print(render_status(config, failures=2))
    print()
    print("What the demo made:")
    print(f"  project:   {config_path}")
    print(f"  catalog:   {config.paths.catalog} ({len(catalog)} sources, {in_store} in the store)")
    print(f"  database:  {config.database_path}")
    print(f"  archive:   {archive}")
    for night in nights:
        truth = night.truth
        print(
            f"    {night.folder.relative_to(directory)}: {len(night.files)} raw files, "
            f"{len(truth['photometry'])} photometric and {len(truth['polarimetry'])} polarimetric "
            "target observations, truth.json"
        )
    print("Reduction, compared with the simulation's truth:")
    for night, report in zip(nights, reports, strict=True):
        print(f"  {report.summary()}")
        evaluation = evaluate_night(night.folder, config.paths.datadir, night.telescope)
        print("    " + evaluation.summary().replace("\n", "\n    "))
    print("Not run yet (not implemented in this version):")
    for stage in NOT_YET:
        print(f"  - {stage}")
    print(f"Site: not built yet; it will be published to {config.paths.site_dir}")
    return EXIT_OK
