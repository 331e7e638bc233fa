"""The data directory's lock: one daemon (or ``fetch``) per data directory.

An exclusive ``fcntl.flock`` on ``<datadir>/daemon.lock``, held for the
process's life and dropped by the kernel however the process ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from iopreport.errors import UsageError

#: Name of the lock file in the data directory.
LOCK_NAME = "daemon.lock"


@contextlib.contextmanager
def daemon_lock(datadir: Path) -> Iterator[Path]:
    """Hold ``<datadir>/daemon.lock`` (exclusive ``flock``) or refuse with a UsageError (exit 2).

    The daemon holds it for its whole life and ``iopreport fetch`` while it
    downloads, so two processes never write the same raw folder. The kernel
    drops the lock when the process ends, however it ends: a killed daemon
    never leaves a stale lock behind.
    """
    datadir.mkdir(parents=True, exist_ok=True)
    path = datadir / LOCK_NAME
    handle = open(path, "a+")  # noqa: SIM115 (held open while the lock is needed)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UsageError(
                f"{datadir} is in use by another iopreport daemon or fetch (pid {holder} "
                f"holds {path}); stop it first (systemctl stop iopreport, or kill -TERM {holder})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield path
    finally:
        handle.close()
