"""A throw-away PostgreSQL server for the tests: Debian's initdb/pg_ctl, run as a non-root user.

The server's data folder is a temporary folder owned by that user; it listens on
a free port of 127.0.0.1 only (no Unix socket outside the folder) and trusts
local connections, so the tests need no password.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

#: The unprivileged account Debian's postgresql package creates.
SERVER_USER = "postgres"


def server_binaries() -> Path | None:
    """The folder of initdb and pg_ctl (the newest installed PostgreSQL), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One server for a test session: :meth:`start`, :meth:`database`, :meth:`stop`."""

    def __init__(self) -> None:
        self.bin = server_binaries()
        if self.bin is None:
            raise RuntimeError(
                "PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin); "
                "`make test` installs Debian's postgresql package"
            )
        self.root = Path(tempfile.mkdtemp(prefix="iopreport-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = SERVER_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.databases: list[str] = []

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(a) for a in args],
            check=True,
            capture_output=True,
            text=True,
            user=self.user if os.geteuid() == 0 else None,
            cwd=self.root,
        )

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.root, self.user)
        self._run(
            self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8"
        )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._run(
            self.bin / "pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-o", options,
            "-w", "start",
        )  # fmt: skip
        return self

    def url(self, name: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _admin(self, sql: str) -> None:
        import psycopg2

        connection = psycopg2.connect(self.url())
        connection.autocommit = True
        try:
            connection.cursor().execute(sql)
        finally:
            connection.close()

    def require_password(self, role: str, password: str) -> None:
        """Create ``role`` (allowed to create databases) whose TCP connections must give
        ``password`` (SCRAM), as Debian's own server asks of every role; other roles stay
        trusted."""
        self._admin(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{password}'")
        hba = self.data / "pg_hba.conf"
        # the first matching line wins; written in place, so the file keeps its owner
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        self._run(self.bin / "pg_ctl", "-D", self.data, "reload")

    def database(self, owner: str = "") -> str:
        """A new empty database (owned by ``owner`` if given); its URL, as user ``postgres``."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._admin(f"CREATE DATABASE {name}" + (f" OWNER {owner}" if owner else ""))
        self.databases.append(name)
        return self.url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        try:
            self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
