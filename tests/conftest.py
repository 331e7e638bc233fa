"""Shared fixtures: the repository, ../shared, temporary projects and stores."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (CI provides it); tests fail loudly without it."""
    assert SHARED.is_dir(), f"{SHARED} is missing: tests need ../shared beside the checkout"
    return SHARED


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh site project made by `iopreport init`, data directory inside it."""
    from iopreport.skeleton import init_project

    directory = tmp_path / "site"
    init_project(directory)
    return directory


@pytest.fixture
def store(backend_location):
    """An empty store, once in a SQLite file and once on PostgreSQL, closed afterwards."""
    from iopreport.store import close_store, open_store

    database = open_store(backend_location)
    yield database
    close_store()


@pytest.fixture(scope="session")
def iopreport_exe() -> str:
    """The installed console script (the real entry point, not the function)."""
    exe = shutil.which(
        "iopreport", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    )
    assert exe, "the iopreport console script is not installed in this environment"
    return exe


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session (tests/pgserver.py), stopped at the end."""
    from pgserver import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    from iopreport.store import close_store

    url = postgres_server.database()
    yield url
    close_store()
    postgres_server.drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_location(request, tmp_path: Path):
    """Where a store lives, once for each back end: a SQLite file, then a PostgreSQL URL."""
    if request.param == "sqlite":
        yield tmp_path / "store.db"
        return
    yield request.getfixturevalue("postgres_url")
