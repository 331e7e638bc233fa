"""``iopreport import iop4``: an IOP4 database's catalog, flags and results.

* **catalog**: every IOP4 ``AstroSource`` becomes a ``[[source]]`` table
  appended to catalog.toml (tomlkit: the file's comments and order are kept),
  its ``references`` naming the database and row it came from. A name the
  catalog has already is reported and left alone (``update=True`` overwrites
  the imported keys). IOP4's ``calibrates`` links become the targets'
  ``calibrators``; the polarization of a standard (IOP4 keeps one value, no
  band) becomes ``pol.<pol_band>``.
* **flags**: the bad-photometry and bad-polarimetry bits of IOP4 results
  become ``[[flag]]`` tables selecting the same raw files by location. Bits
  that IOP4's automatic rule explains (``auto_flag``: p outside 0..1, mag error
  above 0.3) are left to iopreport's own ``[quality]`` thresholds.
* **results**: IOP4's results go to the ``imported_result`` table as method
  ``iop4-import``, apart from iopreport's own results (never in nightly means,
  alerts, night summaries, recomputation or flags); the source pages draw them
  as their own trace.

Everything is checked before anything is written: the new catalog.toml and
flags.toml texts are validated as a build would read them, then written
atomically. Importing the same database again finds every entry unchanged and
writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from iopreport.errors import InputError
from iopreport.fileio import write_text_atomic
from iopreport.importers.iop4catalog import merge_catalog
from iopreport.importers.iop4db import read_iop4
from iopreport.importers.iop4flags import merge_flags
from iopreport.importers.iop4results import METHOD, plan_results, write_results
from iopreport.importers.report import ImportReport
from iopreport.telescopes import BANDS

__all__ = ["METHOD", "ImportReport", "import_iop4"]


def import_iop4(
    config,
    database: Path | str,
    *,
    results: bool = False,
    flags: bool = False,
    dry_run: bool = False,
    update: bool = False,
    pol_band: str = "R",
) -> ImportReport:
    """Import an IOP4 database into the project of ``config``.

    Nothing is written when ``dry_run``; otherwise catalog.toml and flags.toml
    are rewritten atomically only if something changes, and with ``results``
    the catalog is loaded into the store and the results written in one
    transaction.

    Raises
    ------
    InputError
        Not an IOP4 database, an unknown IOP4 schema, or a catalog.toml or
        flags.toml that does not load (before or after the merge).
    """
    from iopreport.catalog import sync_catalog

    if pol_band not in BANDS:
        raise InputError("--pol-band", None, f"unknown band {pol_band!r}; one of {BANDS}")
    db = read_iop4(database)
    report = ImportReport(database=Path(database), migrations=db.migrations)
    catalog_path = Path(config.paths.catalog)
    merged = merge_catalog(db, catalog_path, report, update=update, pol_band=pol_band)
    flags_text = None
    if flags:
        telescopes = sorted({i.telescope for i in config.instruments.values()})
        flags_text = merge_flags(
            db,
            Path(config.paths.flags),
            merged.names,
            merged.catalog,
            telescopes,
            report,
            update=update,
        )
    todo = []
    if results:
        store_path = config.database_path
        if config.store_exists:
            from iopreport.store import open_store

            open_store(store_path, create=False, upgrade=not dry_run)
        todo = plan_results(
            db, merged.names, merged.catalog, report, update=update, store=store_path.exists()
        )
    if dry_run:
        return report
    if merged.text is not None:
        write_text_atomic(catalog_path, merged.text)
        report.written.append(str(catalog_path))
    if flags_text is not None:
        write_text_atomic(Path(config.paths.flags), flags_text)
        report.written.append(str(config.paths.flags))
    if results and (todo or merged.text is not None):
        from iopreport.store import open_store

        # the results need their sources' rows; a renamed entry renames its row
        open_store(config.database_path)
        sync_catalog(merged.catalog)
        write_results(todo)
        report.written.append(f"{config.database_path} ({len(todo)} results)")
    return report
