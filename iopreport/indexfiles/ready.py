"""The index check at the start of a reduction (and, when enabled, the automatic download).

A run checks its index folder once, before any frame is solved: files that
are not index files are logged once with the reason, and a folder without a
usable index stops the run with one message saying what to do, instead of
every frame failing with the same reason. With ``[astrometry] auto_download``
the files new catalog sources need are fetched first.
"""

from __future__ import annotations

import logging

from iopreport.errors import IopreportError
from iopreport.indexfiles.identify import IndexScan, scan_index_folder

log = logging.getLogger(__name__)


class NoIndexError(IopreportError):
    """No usable astrometry.net index file in the configured folder."""


def plan_for(config, catalog, scan: IndexScan | None = None):
    """The index plan of ``catalog``'s sources for every known instrument."""
    from iopreport.indexfiles.plan import make_plan

    return make_plan(
        catalog.sources,
        dict(config.registry.specs),
        series=config.astrometry.series,
        index_dir=config.paths.astrometry_index_dir,
        scan=scan,
    )


def prepare_index(config, catalog) -> IndexScan:
    """Check (and with ``auto_download``, complete) the index folder; the scan of it.

    Raises
    ------
    NoIndexError
        When the folder holds no usable index file.
    """
    directory = config.paths.astrometry_index_dir
    scan = scan_index_folder(directory)
    if config.astrometry.auto_download:
        from iopreport.indexfiles.fetch import fetch_files

        plan = plan_for(config, catalog, scan)
        if plan.missing:
            log.info(
                "index: downloading %d missing index files (%.1f MB) for the catalog "
                "([astrometry] auto_download = true)",
                len(plan.missing),
                plan.missing_bytes / 1e6,
            )
            report = fetch_files(
                plan.missing, directory, config.astrometry.mirror_url, progress=False
            )
            log.info("index: %s", report.summary())
            for name, reason in report.failed.items():
                log.warning("index: %s: %s", name, reason)
            scan = scan_index_folder(directory)
    for path, reason in scan.rejected.items():
        log.info("index: %s is not used: %s", path, reason)
    if not scan.index:
        raise NoIndexError(no_index_message(config, scan))
    return scan


def no_index_message(config, scan: IndexScan) -> str:
    """What to do when the index folder has no usable file."""
    where = f" in {config.source}" if config.source else ""
    found = (
        f" ({len(scan.rejected)} other files there, none an index file)" if scan.rejected else ""
    )
    return (
        f"no usable astrometry.net index files in {scan.directory}{found}: plate solving "
        "needs them. Run `iopreport index plan` to see what the catalog's fields need and "
        "`iopreport index fetch` to download it, or set paths.astrometry_index_dir"
        f"{where} to a folder that holds index files"
    )
