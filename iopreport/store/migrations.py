"""Schema versions and the steps between them.

The schema version lives in SQLite's ``PRAGMA user_version`` (on PostgreSQL in
a one-row table, :mod:`iopreport.store.dialect`). A new database
is created from the current models at :data:`SCHEMA_VERSION`; an older one is
upgraded by running every step above its version, in one transaction, after a
copy of the file is kept beside it (``<db>.v<N>.bak``).

A step must describe its change with frozen names and field definitions (never
by importing the current model, which may have moved on since), and work on
both back ends: the migrator and column types come from
:mod:`iopreport.store.dialect`.

History
-------
1
    First schema: IOP4's model (IOP4's data model) with identity keys,
    error texts, run log and summary log.
2
    Corrected q and u with errors and the Ricean-debiased p in
    ``photo_pol_result`` (IOP4 keeps only uncorrected q/u, §17.3), and the
    ``heartbeat`` table for the daemon.
3
    ``reduced_fit.inputs_key``: a hash of what a reduced frame was made from,
    so that a rerun skips frames whose inputs did not change.
4
    ``photo_pol_result.mag_sys_err``, ``p_sys_err`` and ``chi_sys_err``: the
    systematic parts of the errors (calibrator literature magnitudes;
    instrumental polarization and zero angle) kept apart from the statistical
    ``mag_err``, ``p_err`` and ``chi_err``; the ``field_star_flux`` table
    (field stars measured on polarizer-wheel frames for transparency).
5
    Change counters for the site build: tables ``epoch_change`` and
    ``source_change`` and the triggers that count, per night and per source,
    every insert, update and delete of a row the site's pages show
    (:mod:`iopreport.store.changes`).
6
    ``reduced_fit.astrometry_method`` becomes a short name of how the WCS was
    found (``solved``, ``quads``, ``central-pair``, ``header``,
    ``header+shift``); the description it held moves to the new
    ``reduced_fit.astrometry_detail``.
7
    ``imported_result``: results imported from another pipeline's database
    (``iopreport import iop4``), kept apart from iopreport's own results, and
    the triggers that count them as changes of their source's page.
8
    ``raw_fit.file_stamp``: the raw file's size, times and inode when its
    SHA-256 was taken, so that an unchanged file is not hashed again
    (:func:`iopreport.fileio.file_stamp`).
"""

from __future__ import annotations

from collections.abc import Callable

import peewee as pw
from playhouse.migrate import migrate

from iopreport.store import dialect

SCHEMA_VERSION = 8


def _to_v2(database: pw.Database) -> None:
    migrator = dialect.migrator(database)
    migrate(
        *(
            migrator.add_column("photo_pol_result", name, pw.FloatField(null=True))
            for name in ("q", "q_err", "u", "u_err", "p_debiased")
        )
    )
    database.execute_sql(
        "CREATE TABLE IF NOT EXISTS heartbeat ("
        f" {dialect.id_column(database)},"
        " name VARCHAR(255) NOT NULL,"
        " pid INTEGER NOT NULL,"
        " hostname VARCHAR(255) NOT NULL,"
        f" started_at {dialect.datetime_type(database)} NOT NULL,"
        f" beat_at {dialect.datetime_type(database)} NOT NULL,"
        " state VARCHAR(255) NOT NULL)"
    )
    database.execute_sql("CREATE UNIQUE INDEX IF NOT EXISTS heartbeat_name ON heartbeat (name)")


def _to_v3(database: pw.Database) -> None:
    migrator = dialect.migrator(database)
    migrate(migrator.add_column("reduced_fit", "inputs_key", pw.CharField(default="")))


def _to_v4(database: pw.Database) -> None:
    migrator = dialect.migrator(database)
    migrate(
        *(
            migrator.add_column("photo_pol_result", name, pw.FloatField(null=True))
            for name in ("mag_sys_err", "p_sys_err", "chi_sys_err")
        )
    )
    real = dialect.float_type(database)
    database.execute_sql(
        "CREATE TABLE IF NOT EXISTS field_star_flux ("
        f" {dialect.id_column(database)},"
        " reducedfit_id INTEGER NOT NULL REFERENCES reduced_fit (id) ON DELETE CASCADE,"
        f" ra_deg {real} NOT NULL,"
        f" dec_deg {real} NOT NULL,"
        f" flux_counts {real},"
        f" flux_counts_err {real},"
        " flags INTEGER NOT NULL)"
    )
    database.execute_sql(
        "CREATE INDEX IF NOT EXISTS field_star_flux_reducedfit_id"
        " ON field_star_flux (reducedfit_id)"
    )


def _to_v5(database: pw.Database) -> None:
    from iopreport.store import changes

    changes.install(database)


def _to_v6(database: pw.SqliteDatabase) -> None:
    # plain ALTER TABLE: the migrator would rebuild the table, which the schema-5 triggers
    # that name it do not allow
    database.execute_sql(
        "ALTER TABLE reduced_fit ADD COLUMN astrometry_detail TEXT NOT NULL DEFAULT ''"
    )
    database.execute_sql("UPDATE reduced_fit SET astrometry_detail = astrometry_method")
    database.execute_sql(
        "UPDATE reduced_fit SET astrometry_method = CASE"
        " WHEN astrometry_detail = '' THEN ''"
        " WHEN astrometry_detail LIKE 'quads%' THEN 'quads'"
        " WHEN astrometry_detail LIKE 'central O/E pair%' THEN 'central-pair'"
        " ELSE 'solved' END"
    )


#: ``{id}``, ``{float}`` and ``{datetime}`` are the back end's types (:mod:`.dialect`).
_IMPORTED_RESULT_SQL = (
    'CREATE TABLE IF NOT EXISTS "imported_result" ({id},'
    ' "astrosource_id" INTEGER NOT NULL, "method" VARCHAR(255) NOT NULL,'
    ' "origin_id" INTEGER NOT NULL, "members_key" TEXT NOT NULL,'
    ' "telescope" VARCHAR(255) NOT NULL, "night" DATE NOT NULL, "mode" VARCHAR(255) NOT NULL,'
    ' "reduction" VARCHAR(255) NOT NULL, "instrument" VARCHAR(255) NOT NULL,'
    ' "band" VARCHAR(255) NOT NULL, "exptime" {float}, "juliandate" {float} NOT NULL,'
    ' "juliandate_min" {float} NOT NULL, "juliandate_max" {float} NOT NULL,'
    ' "n_frames" INTEGER NOT NULL, "aperture_px" {float}, "flux_counts" {float},'
    ' "flux_counts_err" {float}, "mag_inst" {float}, "mag_inst_err" {float}, "mag_zp" {float},'
    ' "mag_zp_err" {float}, "mag" {float}, "mag_err" {float}, "q_raw" {float},'
    ' "u_raw" {float}, "p" {float},'
    ' "p_err" {float}, "chi" {float}, "chi_err" {float}, "mag_host_corrected" {float},'
    ' "mag_host_corrected_err" {float}, "p_host_corrected" {float}, "p_host_corrected_err" {float},'
    ' "flags" INTEGER NOT NULL, "modified" {datetime} NOT NULL,'
    ' FOREIGN KEY ("astrosource_id") REFERENCES "astro_source" ("id") ON DELETE CASCADE)',
    'CREATE INDEX IF NOT EXISTS "imported_result_astrosource_id"'
    ' ON "imported_result" ("astrosource_id")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "imported_result_method_astrosource_id_members_key_mode"'
    ' ON "imported_result" ("method", "astrosource_id", "members_key", "mode")',
    'CREATE INDEX IF NOT EXISTS "imported_result_astrosource_id_juliandate"'
    ' ON "imported_result" ("astrosource_id", "juliandate")',
)


def _to_v7(database: pw.Database) -> None:
    from iopreport.store import changes

    types = {
        "id": dialect.id_column(database),
        "float": dialect.float_type(database),
        "datetime": dialect.datetime_type(database),
    }
    for statement in _IMPORTED_RESULT_SQL:
        database.execute_sql(statement.format(**types))
    changes.install_imported(database)


def _to_v8(database: pw.Database) -> None:
    if "file_stamp" in {column.name for column in database.get_columns("raw_fit")}:
        return  # already there: like the other steps' IF NOT EXISTS, a step may meet its work done
    migrator = dialect.migrator(database)
    migrate(migrator.add_column("raw_fit", "file_stamp", pw.CharField(null=True)))


#: Step that upgrades a database *to* each version.
MIGRATIONS: dict[int, Callable[[pw.Database], None]] = {
    2: _to_v2,
    3: _to_v3,
    4: _to_v4,
    5: _to_v5,
    6: _to_v6,
    7: _to_v7,
    8: _to_v8,
}
