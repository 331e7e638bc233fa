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
    First schema: IOP4's model (reference/iop4.md §2) with identity keys,
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
"""

from __future__ import annotations

from collections.abc import Callable

import peewee as pw
from playhouse.migrate import migrate

from iopreport.store import dialect

SCHEMA_VERSION = 5


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


#: Step that upgrades a database *to* each version.
MIGRATIONS: dict[int, Callable[[pw.Database], None]] = {
    2: _to_v2,
    3: _to_v3,
    4: _to_v4,
    5: _to_v5,
}
