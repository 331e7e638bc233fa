"""Change counters kept by SQLite triggers (schema 5): what the site build compares.

Two small tables count, per night (epoch) and per source, how often a row that
the site's pages show was inserted, updated or deleted:

``epoch_change (epoch_id, changes)``
    raw frames, reduced frames, masters (also in the nights whose frames use
    them) and results of the night;
``source_change (astrosource_id, changes)``
    the source's results, and the night and telescope of the epochs it has
    results in.

The triggers run inside SQLite, so every writer — reduce, ``flags``,
recompute, the catalog sync, a curator's manual SQL — is counted without any
code having to remember it. An update is counted only when one of the columns
the pages show changes (``WHEN OLD.x IS NOT NEW.x OR ...``): rewriting a row
with its own values, or a column the site never shows (``modified``,
``sha256``, ``last_listed``), is not a change. The counters only grow and
their rows are never deleted (no foreign key: a deleted epoch keeps its
counter, so an epoch made again with the same id goes on counting from it).

This SQL is schema 5 as written by :func:`iopreport.store.migrations._to_v5`
and by a new store; changing it needs a new schema version whose step drops
and recreates the triggers.

On PostgreSQL the same triggers are rendered as PL/pgSQL: each body becomes a
trigger function (``RETURN NULL``, as for every ``AFTER ... FOR EACH ROW``
trigger), ``IS NOT`` becomes ``IS DISTINCT FROM`` and the upsert names the
counter's table (PostgreSQL documentation, "CREATE TRIGGER" and "INSERT ... ON
CONFLICT").
"""

from __future__ import annotations

import peewee as pw

#: The counter tables.
TABLES = (
    "CREATE TABLE IF NOT EXISTS epoch_change ("
    " epoch_id INTEGER NOT NULL PRIMARY KEY, changes INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS source_change ("
    " astrosource_id INTEGER NOT NULL PRIMARY KEY, changes INTEGER NOT NULL)",
)

#: Columns of each table that a night or source page shows (an update of another
#: column is not counted).
RAW_COLUMNS = (
    "epoch_id",
    "filename",
    "flags",
    "error",
    "instrument",
    "imgtype",
    "obsmode",
    "band",
    "angle",
    "juliandate",
    "exptime",
    "binning",
    "imgsize",
    "object_name",
)
REDUCED_COLUMNS = (
    "rawfit_id",
    "filename",
    "flags",
    "error",
    "seeing_fwhm_arcsec",
    "masterbias_id",
    "masterdark_id",
    "masterflat_id",
)
MASTER_COLUMNS = (
    "epoch_id",
    "filename",
    "instrument",
    "n_frames",
    "level",
    "noise",
    "flags",
    "error",
)
FLAT_COLUMNS = (*MASTER_COLUMNS, "band", "obsmode", "angle")
RESULT_COLUMNS = (
    "astrosource_id",
    "epoch_id",
    "members_key",
    "mode",
    "method",
    "instrument",
    "band",
    "exptime",
    "juliandate",
    "n_frames",
    "mag",
    "mag_err",
    "q",
    "q_err",
    "u",
    "u_err",
    "p",
    "p_err",
    "chi",
    "chi_err",
    "flags",
    "manual_flags",
    "flag_reasons",
    "error",
)
_COUNT_EPOCH = " ON CONFLICT (epoch_id) DO UPDATE SET changes = changes + 1;"
_COUNT_SOURCE = " ON CONFLICT (astrosource_id) DO UPDATE SET changes = changes + 1;"


#: The same upserts as PostgreSQL writes them (the updated column names its table).
_PG_COUNT = {
    _COUNT_EPOCH: " ON CONFLICT (epoch_id) DO UPDATE SET changes = epoch_change.changes + 1;",
    _COUNT_SOURCE: (
        " ON CONFLICT (astrosource_id) DO UPDATE SET changes = source_change.changes + 1;"
    ),
}


def _epoch(expression: str) -> str:
    return f"INSERT INTO epoch_change (epoch_id, changes) VALUES ({expression}, 1){_COUNT_EPOCH}"


def _source(expression: str) -> str:
    return (
        f"INSERT INTO source_change (astrosource_id, changes) VALUES ({expression}, 1)"
        f"{_COUNT_SOURCE}"
    )


def _epoch_of_rawfit(row: str) -> str:
    # no row when the raw frame is gone (a cascading delete): its own trigger counted it
    return (
        "INSERT INTO epoch_change (epoch_id, changes) SELECT epoch_id, 1 FROM raw_fit"
        f" WHERE id = {row}.rawfit_id{_COUNT_EPOCH}"
    )


def _epochs_using(kind: str, row: str) -> str:
    return (
        "INSERT INTO epoch_change (epoch_id, changes) SELECT DISTINCT r.epoch_id, 1"
        " FROM reduced_fit f JOIN raw_fit r ON r.id = f.rawfit_id"
        f" WHERE f.master{kind}_id = {row}.id{_COUNT_EPOCH}"
    )


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f'OLD."{c}" IS NOT NEW."{c}"' for c in columns)


def _trigger(name: str, event: str, table: str, body: list[str], when: str = "") -> str:
    when = f" WHEN {when}" if when else ""
    return (
        f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table}{when}"
        f" BEGIN {' '.join(body)} END"
    )


def _pg_trigger(sqlite_trigger: str) -> list[str]:
    """The PL/pgSQL function and trigger of one SQLite ``CREATE TRIGGER`` statement."""
    head, body = sqlite_trigger.split(" BEGIN ", 1)
    body = body.removesuffix(" END")
    for sqlite_upsert, pg_upsert in _PG_COUNT.items():
        body = body.replace(sqlite_upsert, pg_upsert)
    words = head.removeprefix("CREATE TRIGGER IF NOT EXISTS ").split(" ", 5)
    name, _after, event, _on, table = words[:5]
    when = words[5].removeprefix("WHEN ") if len(words) > 5 else ""
    when = f" WHEN ({when.replace(' IS NOT ', ' IS DISTINCT FROM ')})" if when else ""
    return [
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN {body} RETURN NULL; END $$",
        f"DROP TRIGGER IF EXISTS {name} ON {table}",
        f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{when}"
        f" EXECUTE FUNCTION {name}()",
    ]


def trigger_sql(postgres: bool = False) -> list[str]:
    """``CREATE TRIGGER`` statements of every change counter (PL/pgSQL with ``postgres``)."""
    if postgres:
        return [pg for sqlite in trigger_sql() for pg in _pg_trigger(sqlite)]
    triggers = []
    for table, columns, own in (
        ("raw_fit", RAW_COLUMNS, _epoch),
        ("photo_pol_result", RESULT_COLUMNS, _epoch),
    ):
        extra_new = [_source("NEW.astrosource_id")] if table == "photo_pol_result" else []
        extra_old = [_source("OLD.astrosource_id")] if table == "photo_pol_result" else []
        triggers += [
            _trigger(f"{table}_change_ins", "INSERT", table, [own("NEW.epoch_id"), *extra_new]),
            _trigger(f"{table}_change_del", "DELETE", table, [own("OLD.epoch_id"), *extra_old]),
            _trigger(
                f"{table}_change_upd",
                "UPDATE",
                table,
                [own("OLD.epoch_id"), own("NEW.epoch_id"), *extra_old, *extra_new],
                _changed(columns),
            ),
        ]
    triggers += [
        _trigger("reduced_fit_change_ins", "INSERT", "reduced_fit", [_epoch_of_rawfit("NEW")]),
        _trigger("reduced_fit_change_del", "DELETE", "reduced_fit", [_epoch_of_rawfit("OLD")]),
        _trigger(
            "reduced_fit_change_upd",
            "UPDATE",
            "reduced_fit",
            [_epoch_of_rawfit("OLD"), _epoch_of_rawfit("NEW")],
            _changed(REDUCED_COLUMNS),
        ),
    ]
    for kind, columns in (
        ("bias", MASTER_COLUMNS),
        ("dark", MASTER_COLUMNS),
        ("flat", FLAT_COLUMNS),
    ):
        table = f"master_{kind}"
        triggers += [
            _trigger(f"{table}_change_ins", "INSERT", table, [_epoch("NEW.epoch_id")]),
            _trigger(
                f"{table}_change_del",
                "DELETE",
                table,
                [_epoch("OLD.epoch_id"), _epochs_using(kind, "OLD")],
            ),
            _trigger(
                f"{table}_change_upd",
                "UPDATE",
                table,
                [_epoch("OLD.epoch_id"), _epoch("NEW.epoch_id"), _epochs_using(kind, "NEW")],
                _changed(columns),
            ),
        ]
    triggers.append(
        _trigger(
            "epoch_change_upd",
            "UPDATE",
            "epoch",
            [
                "INSERT INTO source_change (astrosource_id, changes)"
                " SELECT DISTINCT astrosource_id, 1 FROM photo_pol_result"
                f" WHERE epoch_id = NEW.id{_COUNT_SOURCE}"
            ],
            _changed(("night", "telescope")),
        )
    )
    return triggers


#: Columns of ``imported_result`` (schema 7) that a source page shows.
IMPORTED_COLUMNS = (
    "astrosource_id",
    "method",
    "members_key",
    "mode",
    "instrument",
    "band",
    "juliandate",
    "mag",
    "mag_err",
    "p",
    "p_err",
    "chi",
    "chi_err",
    "flags",
)


def imported_trigger_sql(postgres: bool = False) -> list[str]:
    """``CREATE TRIGGER`` statements counting imported results as changes of their source."""
    if postgres:
        return [pg for sqlite in imported_trigger_sql() for pg in _pg_trigger(sqlite)]
    table = "imported_result"
    return [
        _trigger(f"{table}_change_ins", "INSERT", table, [_source("NEW.astrosource_id")]),
        _trigger(f"{table}_change_del", "DELETE", table, [_source("OLD.astrosource_id")]),
        _trigger(
            f"{table}_change_upd",
            "UPDATE",
            table,
            [_source("OLD.astrosource_id"), _source("NEW.astrosource_id")],
            _changed(IMPORTED_COLUMNS),
        ),
    ]


def install_imported(database: pw.Database) -> None:
    """Create the triggers of the ``imported_result`` table (schema 7; a no-op where they exist)."""
    from iopreport.store.dialect import is_postgres

    for statement in imported_trigger_sql(postgres=is_postgres(database)):
        database.execute_sql(statement)


def install(database: pw.Database) -> None:
    """Create the counter tables and triggers (a no-op where they exist)."""
    from iopreport.store.dialect import is_postgres

    for statement in (*TABLES, *trigger_sql(postgres=is_postgres(database))):
        database.execute_sql(statement)


def epoch_changes() -> dict[int, int]:
    """Changes counted per epoch id (an epoch never changed since schema 5 is missing)."""
    from iopreport.store.models import database_proxy

    return dict(database_proxy.execute_sql("SELECT epoch_id, changes FROM epoch_change"))


def source_changes() -> dict[int, int]:
    """Changes counted per source id (a source whose results never changed is missing)."""
    from iopreport.store.models import database_proxy

    return dict(database_proxy.execute_sql("SELECT astrosource_id, changes FROM source_change"))
