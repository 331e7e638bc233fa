"""Where the store's SQL differs between SQLite and PostgreSQL, in one place.

The store is SQLite (a file) by default and PostgreSQL when ``paths.database``
is a ``postgresql://`` URL. Peewee writes the models' SQL for both; this
module covers the rest:

* connecting (SQLite pragmas; the PostgreSQL driver, an optional extra);
* the schema version: SQLite's ``PRAGMA user_version``, a one-row
  ``iopreport_schema`` table on PostgreSQL;
* schema steps: the migrator and the column types raw ``CREATE TABLE`` needs;
* raw SQL written for SQLite (``?`` placeholders, ``strftime`` of a Julian
  date, ``round`` of a double): :class:`PostgresStore` turns the placeholders
  into the driver's ``%s``, and :data:`PG_COMPAT_FUNCTIONS` gives PostgreSQL
  the two SQLite functions the site's queries use, with SQLite's semantics
  (SQLite "Date And Time Functions": a number is a Julian day, rounded to the
  millisecond), so the same query gives the same page on both;
* values: dates and timestamps are read as text on both (SQLite keeps text);
* triggers: SQLite's trigger bodies become PL/pgSQL functions
  (:mod:`iopreport.store.changes` renders both);
* sequences after rows were copied with their ids (``store copy``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import peewee as pw

from iopreport.config import is_database_url
from iopreport.errors import StoreError, UsageError

#: The optional extra with the PostgreSQL driver (and Dask).
CLUSTER_EXTRA = "pip install 'iopreport[cluster]'"
#: Table holding the schema version on PostgreSQL (SQLite keeps it in the file header).
PG_VERSION_TABLE = "iopreport_schema"

#: SQLite functions the site's raw SQL uses, defined on PostgreSQL with SQLite's results.
PG_COMPAT_FUNCTIONS = (
    # round(double, n): SQLite rounds a double half away from zero, as numeric does
    "CREATE OR REPLACE FUNCTION round(value double precision, digits integer)"
    " RETURNS double precision LANGUAGE sql IMMUTABLE STRICT"
    " AS 'SELECT round(value::numeric, digits)::double precision'",
    # strftime(format, julian day): SQLite first rounds the Julian day to the millisecond
    # (iJD = (sqlite3_int64)(jd * 86400000 + 0.5)); 210866760000000 ms is JD 2440587.5
    "CREATE OR REPLACE FUNCTION strftime(format text, jd double precision)"
    " RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$"
    " SELECT to_char(to_timestamp((floor(jd * 86400000.0 + 0.5) - 210866760000000) / 1000.0)"
    " AT TIME ZONE 'UTC', replace(replace(replace(replace(replace(replace(replace("
    " format, 'T', '\"T\"'), '%Y', 'YYYY'), '%m', 'MM'), '%d', 'DD'), '%H', 'HH24'),"
    " '%M', 'MI'), '%S', 'SS')) $$",
)


class PostgresStore(pw.PostgresqlDatabase):
    """Peewee's PostgreSQL database, also running the store's raw SQLite-style SQL.

    Raw SQL written with ``?`` placeholders (and literal ``%`` signs, as in
    ``strftime('%H:%M:%S', ...)``) is given to the driver with ``%s``
    placeholders and ``%%``; a statement without parameters is passed without
    any, so its ``%`` signs stay literal.
    A ``FloatField`` is a double, as on SQLite (peewee's PostgreSQL default, REAL,
    is single precision and would round magnitudes and coordinates).
    """

    field_types: ClassVar[dict] = {**pw.PostgresqlDatabase.field_types, "FLOAT": "DOUBLE PRECISION"}

    def _connect(self):
        """A connection whose dates and timestamps come back as text, as SQLite gives
        them (the models' fields parse text; raw queries then see the same values)."""
        import psycopg2.extensions as extensions

        connection = super()._connect()
        for oid, name in ((1082, "DATE_AS_TEXT"), (1114, "TIMESTAMP_AS_TEXT")):
            as_text = extensions.new_type((oid,), name, lambda value, cursor: value)
            extensions.register_type(as_text, connection)
        return connection

    def _execute_cursor(self, sql, params, **cursor_options):
        sql, params = translate(sql, params)
        self._log_query(sql, params)
        with pw.__exception_wrapper__:
            cursor = self.cursor(**cursor_options)
            cursor.execute(sql, params)
        return cursor


def translate(sql: str, params) -> tuple[str, object]:
    """SQLite-style ``sql``/``params`` as the PostgreSQL driver takes them."""
    if not params:
        return sql, None
    if "?" in sql and "%s" not in sql:
        sql = sql.replace("%", "%%").replace("?", "%s")
    return sql, params


def is_postgres(database) -> bool:
    """Whether ``database`` (a peewee database or proxy) is PostgreSQL."""
    database = getattr(database, "obj", None) or database
    return isinstance(database, pw.PostgresqlDatabase)


def describe(location: Path | str) -> str:
    """``location`` for messages, without its password."""
    if not is_database_url(location):
        return str(location)
    parts = urlsplit(str(location))
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


def connect(location: Path | str, pragmas: dict) -> pw.Database:
    """An unconnected peewee database for a SQLite file or a ``postgresql://`` URL."""
    if not is_database_url(location):
        return pw.SqliteDatabase(str(location), pragmas=pragmas)
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        raise UsageError(
            f"{describe(location)}: a PostgreSQL store needs the psycopg2 driver, which is "
            f"not installed; {CLUSTER_EXTRA}"
        ) from None
    parts = urlsplit(str(location))
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise StoreError(f"{describe(location)}: the URL names no database")
    options = {
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "host": parts.hostname,
        "port": parts.port,
    }
    return PostgresStore(name, **{k: v for k, v in options.items() if v is not None})


def connection_failure(exc: Exception) -> str:
    """Why a PostgreSQL server refused a connection, for the user (the driver's first line)."""
    lines = str(exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    text = f"cannot connect to the PostgreSQL server ({reason})"
    if "password" in reason:
        text += (
            "; the server asks for a password: put it in the environment variable that"
            " [paths] database_password_env names (`iopreport store copy` reads $PGPASSWORD)"
        )
    return text


def schema_version(database: pw.Database) -> int:
    """The stored schema version (0 for a new, empty store)."""
    if not is_postgres(database):
        return database.execute_sql("PRAGMA user_version").fetchone()[0]
    if PG_VERSION_TABLE not in database.get_tables():
        return 0
    row = database.execute_sql(f"SELECT version FROM {PG_VERSION_TABLE}").fetchone()
    return row[0] if row else 0


def set_schema_version(database: pw.Database, version: int) -> None:
    if not is_postgres(database):
        database.execute_sql(f"PRAGMA user_version = {int(version)}")
        return
    database.execute_sql(
        f"CREATE TABLE IF NOT EXISTS {PG_VERSION_TABLE} (version INTEGER NOT NULL)"
    )
    database.execute_sql(f"DELETE FROM {PG_VERSION_TABLE}")
    database.execute_sql(f"INSERT INTO {PG_VERSION_TABLE} (version) VALUES ({int(version)})")


def store_tables(database: pw.Database) -> set[str]:
    """Tables of the store (without PostgreSQL's version table)."""
    return set(database.get_tables()) - {PG_VERSION_TABLE}


def install_functions(database: pw.Database) -> None:
    """On PostgreSQL, the SQLite functions the site's queries use (a no-op on SQLite)."""
    if is_postgres(database):
        for statement in PG_COMPAT_FUNCTIONS:
            database.execute_sql(statement)


def migrator(database: pw.Database):
    """Peewee's schema migrator for ``database``."""
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator

    return PostgresqlMigrator(database) if is_postgres(database) else SqliteMigrator(database)


def id_column(database: pw.Database) -> str:
    """Column definition of an integer primary key that numbers new rows itself."""
    return "id SERIAL PRIMARY KEY" if is_postgres(database) else "id INTEGER NOT NULL PRIMARY KEY"


def datetime_type(database: pw.Database) -> str:
    """Column type of a naive UTC timestamp (peewee's DateTimeField)."""
    return "TIMESTAMP" if is_postgres(database) else "DATETIME"


def float_type(database: pw.Database) -> str:
    """Column type of a double (peewee's FloatField)."""
    return "DOUBLE PRECISION" if is_postgres(database) else "REAL"


def reset_sequences(database: pw.Database, tables: list[str]) -> None:
    """After rows were inserted with their ids: new rows continue after the largest."""
    if not is_postgres(database):
        return  # SQLite numbers new rows after the largest id by itself
    for table in tables:
        database.execute_sql(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'),"
            f' COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM "{table}"'
        )
