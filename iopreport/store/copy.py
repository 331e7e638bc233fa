"""Copy a store between SQLite and PostgreSQL, with every table's row count checked."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import peewee as pw

from iopreport.errors import StoreError
from iopreport.store import dialect
from iopreport.store.database import PRAGMAS, close_store, open_store
from iopreport.store.models import ALL_MODELS

log = logging.getLogger(__name__)

#: Rows sent per INSERT batch.
BATCH_ROWS = 2000
#: Tables outside the models: the change counters the site build compares.
COUNTER_TABLES = ("epoch_change", "source_change")


def _plain(value, field: pw.Field | None, postgres: bool):
    """A value read from one back end as the other takes it."""
    if isinstance(field, pw.BooleanField) and value is not None:
        return bool(value)  # SQLite keeps 0/1
    if not postgres and isinstance(value, dt.datetime):
        return str(value)  # as peewee writes it on SQLite: "YYYY-MM-DD HH:MM:SS[.ffffff]"
    if not postgres and isinstance(value, dt.date):
        return value.isoformat()
    return value


def _count(database: pw.Database, table: str) -> int:
    return database.execute_sql(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def copy_store(source: Path | str, destination: Path | str) -> dict[str, int]:
    """Copy every row of the store ``source`` into the new, empty store ``destination``.

    Both are SQLite files or ``postgresql://`` URLs. The source is upgraded to
    the current schema first; the destination is created at it. Rows keep
    their ids (so flags, journals and the site's page names stay valid), the
    change counters are copied as they are, and on PostgreSQL the id
    sequences continue after the largest id.

    Returns
    -------
    dict
        Rows per table, equal in both stores.

    Raises
    ------
    StoreError
        The destination already holds rows, or a count differs after the copy.
    """
    src = open_store(source, create=False)
    close_store()
    src = dialect.connect(source, PRAGMAS)
    src.connect()
    dst = open_store(destination)  # created at the current schema (tables, triggers)
    name = dialect.describe(destination)
    try:
        tables = [m._meta.table_name for m in pw.sort_models(ALL_MODELS)]
        for table in (*tables, *COUNTER_TABLES):
            if _count(dst, table):
                raise StoreError(f"{name}: table {table} is not empty; copy into a new store")
        postgres = dialect.is_postgres(dst)
        mark = dst.param
        with dst.atomic():
            for model in pw.sort_models(ALL_MODELS):
                fields = model._meta.sorted_fields
                columns = [f.column_name for f in fields]
                _copy_table(src, dst, model._meta.table_name, columns, fields, postgres, mark)
            for table in COUNTER_TABLES:
                dst.execute_sql(f'DELETE FROM "{table}"')  # what the triggers counted on the way
                columns = [c.name for c in src.get_columns(table)]
                _copy_table(src, dst, table, columns, [None] * len(columns), postgres, mark)
            dialect.reset_sequences(dst, tables)
        counts = {}
        for table in (*tables, *COUNTER_TABLES):
            counts[table] = _count(src, table)
            copied = _count(dst, table)
            if copied != counts[table]:
                raise StoreError(
                    f"{name}: table {table} has {copied} rows after the copy, "
                    f"the source {counts[table]}"
                )
    finally:
        src.close()
    log.info("copied %s to %s: %d rows", dialect.describe(source), name, sum(counts.values()))
    return counts


def _copy_table(src, dst, table, columns, fields, postgres, mark) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join([mark] * len(columns))
    insert = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'
    cursor = src.execute_sql(f'SELECT {names} FROM "{table}" ORDER BY 1')
    while rows := cursor.fetchmany(BATCH_ROWS):
        converted = [
            tuple(_plain(v, f, postgres) for v, f in zip(row, fields, strict=True)) for row in rows
        ]
        dst.cursor().executemany(insert, converted)
