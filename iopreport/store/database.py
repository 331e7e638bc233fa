"""Opening the store: SQLite in WAL mode or PostgreSQL, created or upgraded as needed.

Where the two differ is said in :mod:`iopreport.store.dialect`.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import peewee as pw

from iopreport.config import is_database_url
from iopreport.errors import StoreError
from iopreport.fileio import create_private
from iopreport.store import changes, dialect
from iopreport.store.migrations import MIGRATIONS, SCHEMA_VERSION
from iopreport.store.models import ALL_MODELS, database_proxy

log = logging.getLogger(__name__)

#: Connection settings. WAL lets the site build and `status` read while the
#: reduction writes; foreign keys make deletes cascade as the models declare.
PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 30_000,  # ms to wait for the writer instead of failing at once
    "cache_size": -64_000,  # KiB
}


#: Mode of a new store file: its owner only (``[safety] group_readable`` widens it,
#: :func:`iopreport.logsetup.apply_file_modes`).
NEW_STORE_MODE = 0o600


def open_store(path: Path | str, *, upgrade: bool = True, create: bool = True) -> pw.Database:
    """Open (creating or upgrading) the database at ``path`` and bind the models to it.

    Parameters
    ----------
    path : path-like or str
        The SQLite file; its folder is created if missing. ``":memory:"`` gives
        a throw-away store. A ``postgresql://user:password@host:port/name`` URL
        opens a PostgreSQL database instead (which must exist; its tables are
        created when it has none).
    upgrade : bool
        Upgrade an older schema in place (after keeping a ``.v<N>.bak`` copy).
        With False an older schema raises :class:`StoreError`.
    create : bool
        Create a missing file. With False a missing file raises
        :class:`StoreError` (use it in notebooks, where a typo in the path
        would otherwise give an empty store).

    Returns
    -------
    peewee.Database
        The open database, also bound to every model in :mod:`iopreport.store.models`.

    Raises
    ------
    StoreError
        The file is not an iopreport store, or was written by a newer iopreport.
    """
    url = is_database_url(path)
    in_memory = str(path) == ":memory:"
    if not in_memory and not url:
        path = Path(path).expanduser()
        if not create and not path.exists():
            raise StoreError(f"{path}: no such database")
        path.parent.mkdir(parents=True, exist_ok=True)
        create_private(path, NEW_STORE_MODE)  # SQLite gives -wal and -shm the same mode
    database = dialect.connect(path, PRAGMAS)
    name = dialect.describe(path)  # the URL without its password
    try:
        database.connect(reuse_if_open=True)
        version = schema_version(database)
        tables = dialect.store_tables(database)
    except pw.DatabaseError as exc:
        if url and database.is_closed():  # the server refused the connection itself
            raise StoreError(f"{name}: {dialect.connection_failure(exc)}") from None
        kind = "PostgreSQL" if url else "SQLite"
        raise StoreError(f"{name}: not a readable {kind} database ({exc})") from None
    database_proxy.initialize(database)
    path = name

    if not tables:
        if url and not create:
            raise StoreError(f"{path}: no iopreport store in this database")
        with database.atomic():
            database.create_tables(ALL_MODELS)
            changes.install(database)
            changes.install_imported(database)
            dialect.install_functions(database)
            _set_schema_version(database, SCHEMA_VERSION)
        log.info("created store %s (schema %d)", path, SCHEMA_VERSION)
    elif version == 0:
        raise StoreError(
            f"{path}: has tables but no iopreport schema version; not an iopreport store"
        )
    elif version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this iopreport supports "
            f"({SCHEMA_VERSION}); upgrade iopreport"
        )
    elif version < SCHEMA_VERSION:
        if not upgrade:
            raise StoreError(
                f"{path}: schema version {version} needs an upgrade to {SCHEMA_VERSION}; "
                "run `iopreport migrate` (a copy of the old file is kept)"
            )
        _upgrade(database, path, version)
    return database


def read_schema_version(path: Path | str) -> int:
    """Schema version of a database file or URL, read without opening it as a store."""
    if is_database_url(path):
        database = dialect.connect(path, PRAGMAS)
        try:
            database.connect()
            return dialect.schema_version(database)
        except pw.DatabaseError as exc:
            raise StoreError(f"{dialect.describe(path)}: cannot read ({exc})") from None
        finally:
            database.close()
    connection = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        return connection.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a readable SQLite database ({exc})") from None
    finally:
        connection.close()


def schema_version(database: pw.Database) -> int:
    """The stored schema version (``PRAGMA user_version`` on SQLite; 0 for a new store)."""
    return dialect.schema_version(database)


def _set_schema_version(database: pw.Database, version: int) -> None:
    dialect.set_schema_version(database, version)


def _upgrade(database: pw.Database, path: Path | str, version: int) -> None:
    if dialect.is_postgres(database):
        # PostgreSQL changes the schema inside the transaction: a failed step leaves it as it was
        log.info("upgrading %s in one transaction (take a pg_dump first to keep a copy)", path)
    elif str(path) != ":memory:":
        backup = Path(f"{path}.v{version}.bak")
        source = sqlite3.connect(str(path))
        target = sqlite3.connect(str(backup))
        with target:
            source.backup(target)
        source.close()
        target.close()
        log.info("kept a copy of the schema-%d store at %s", version, backup)
    with database.atomic():
        for target_version in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[target_version](database)
            log.info("upgraded store %s to schema %d", path, target_version)
        dialect.install_functions(database)
        _set_schema_version(database, SCHEMA_VERSION)


def write_transaction():
    """A transaction that takes the write lock when it begins (``BEGIN IMMEDIATE``).

    A writer that first reads in a deferred transaction and then writes fails
    at once with "database is locked" when another process wrote in between
    (SQLite cannot upgrade a stale read snapshot); taking the lock first makes
    it wait up to ``busy_timeout`` instead. PostgreSQL's row locks need no such
    mode: there it is a plain transaction.
    """
    if dialect.is_postgres(database_proxy.obj):
        return database_proxy.atomic()
    return database_proxy.atomic("IMMEDIATE")


def is_locked_error(exc: BaseException) -> bool:
    """True for SQLite's "database is locked" / "busy" (another process holds the write lock)."""
    text = str(exc).lower()
    return isinstance(exc, pw.OperationalError) and ("locked" in text or "busy" in text)


def locked_message() -> str:
    """What to tell the user when another process kept the store's write lock too long."""
    seconds = PRAGMAS["busy_timeout"] / 1000
    return (
        f"the store is being written by another iopreport process (waited {seconds:g} s for "
        "it); try again when it has finished"
    )


def close_store() -> None:
    """Close the connection the models are bound to, if any."""
    if database_proxy.obj is not None and not database_proxy.obj.is_closed():
        database_proxy.obj.close()
