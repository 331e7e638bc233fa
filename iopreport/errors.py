"""Exceptions that reach the user, and the exit codes the CLI maps them to.

Exit codes (the CLI contract in docs/architecture.md): 0 ok, 1 work failed
(details logged and recorded), 2 usage or configuration error.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_WORK_FAILED = 1
EXIT_USAGE = 2


class IopreportError(Exception):
    """Base class of errors iopreport explains to its user."""

    exit_code = EXIT_WORK_FAILED


class InputError(IopreportError):
    """A mistake in a file a person wrote (config.toml, catalog.toml, flags.toml).

    The message names the file, the line and the key, in the form editors and
    terminals turn into links: ``config.toml:12: archives.OSN-T090.port: ...``.
    """

    exit_code = EXIT_USAGE

    def __init__(self, path: Path | str, line: int | None, message: str, *, key: str = ""):
        self.path = Path(path)
        self.line = line
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class UsageError(IopreportError):
    """The command was asked for something it cannot do as asked."""

    exit_code = EXIT_USAGE


class StoreError(IopreportError):
    """The database cannot be opened or upgraded as it is."""

    exit_code = EXIT_USAGE
