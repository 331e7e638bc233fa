"""`iopreport demo`: a self-contained project that runs every stage implemented so far.

Stages are added here as they are built (simulated archive, fetch, reduce,
build, summary); what is not built yet is said, never pretended.
"""

from __future__ import annotations

from pathlib import Path

from iopreport.errors import EXIT_OK

#: Stages of the full pipeline that the demo does not run yet, and why.
NOT_YET = (
    "simulated archive (`iopreport simulate`)",
    "fetch, reduction and polarimetry",
    "static site (`iopreport build`)",
    "night summary e-mail",
)


def run_demo(directory: Path) -> int:
    """Create (or reuse) the demo project in ``directory`` and run what exists."""
    from iopreport.catalog import load_catalog, sync_catalog
    from iopreport.config import load_config
    from iopreport.logsetup import configure_logging
    from iopreport.runlog import recorded_run
    from iopreport.skeleton import init_project
    from iopreport.status import render_status
    from iopreport.store import AstroSource, open_store

    directory = directory.resolve()
    config_path = directory / "config.toml"
    if config_path.exists():
        print(f"Reusing demo project {directory}")
    else:
        init_project(directory)
        print(f"Created demo project {directory}")
    config = load_config(config_path)
    configure_logging(config)
    catalog = load_catalog(config.paths.catalog)
    open_store(config.database_path)
    with recorded_run("demo", [str(directory)]) as run:
        counts = sync_catalog(catalog)
        run.detail = f"catalog: {counts['added']} added, {counts['updated']} updated"
    in_store = AstroSource.select().where(AstroSource.in_catalog).count()

    print()
    print(render_status(config))
    print()
    print("What the demo made:")
    print(f"  project:   {config_path}")
    print(f"  catalog:   {config.paths.catalog} ({len(catalog)} sources, {in_store} in the store)")
    print(f"  database:  {config.database_path}")
    print(f"  data dir:  {config.paths.datadir}")
    print("Not run yet (not implemented in this version):")
    for stage in NOT_YET:
        print(f"  - {stage}")
    print(f"Site: not built yet; it will be published to {config.paths.site_dir}")
    return EXIT_OK
