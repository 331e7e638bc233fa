"""What every archive backend offers: list nights, list a night's files, download one.

The backends (:mod:`~iopreport.archive.ftp`, :mod:`~iopreport.archive.sftp`,
:mod:`~iopreport.archive.local`) know only their protocol; which files to take
and where to put them is decided once, in :mod:`iopreport.archive.nightdownload`,
how to verify, resume and retry them in :mod:`iopreport.archive.download`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from iopreport.fileio import UnsafeNameError, check_name

#: Most entries one folder listing may have; a longer (or endless) listing is refused.
MAX_LISTING_ENTRIES = 100_000


class ArchiveError(Exception):
    """A listing or a transfer failed (unreachable server, timeout, missing folder...).

    ``permanent`` marks an answer that a retry within the same run cannot change
    (FTP 5xx: no such file, permission denied); later runs still try again.
    """

    def __init__(self, *args: object, permanent: bool = False):
        super().__init__(*args)
        self.permanent = permanent


@dataclass(frozen=True)
class RemoteFile:
    """One file of a night folder as the archive lists it.

    Attributes
    ----------
    name : str
        File name (no folder).
    size : int
        Size in bytes.
    mtime : float or None
        Modification time (POSIX seconds) when the listing gives one reliably.
    checksum : str or None
        ``"<algorithm>:<hex digest>"`` (hashlib names, e.g. ``sha256:...``) when
        the listing itself carries one.
    path : str
        Where the backend finds the file again (remote path).
    refused : str
        Why the entry is not used (an unsafe name, a size that is not a
        number); empty for a usable entry. Refused entries are reported,
        never downloaded, and their names never become paths.
    """

    name: str
    size: int
    mtime: float | None = None
    checksum: str | None = None
    path: str = ""
    refused: str = ""


def listed_file(name: object, size: object, mtime: float | None, folder: str, join) -> RemoteFile:
    """A :class:`RemoteFile` from one listing entry, checked where it enters.

    ``name`` must be a safe single file name (:func:`iopreport.fileio.check_name`)
    and ``size`` a non-negative integer; otherwise the entry comes back with
    ``refused`` set and is never downloaded. ``join(folder, name)`` builds the
    remote path of a usable entry.
    """
    shown = name if isinstance(name, str) else repr(name)
    try:
        check_name(name)
    except UnsafeNameError as exc:
        return RemoteFile(repr(shown), 0, None, None, "", f"unsafe name: {exc}")
    try:
        number = int(str(size).strip())
        if number < 0:
            raise ValueError
    except ValueError:
        return RemoteFile(str(name), 0, None, None, "", f"size {str(size)[:40]!r} is not a size")
    return RemoteFile(str(name), number, mtime, None, join(folder, name))


@runtime_checkable
class Archive(Protocol):
    """A telescope archive. Connections are opened lazily and reopened after a failure."""

    telescope: str

    def list_nights(self) -> list[dt.date]:
        """Nights with a folder in the archive, oldest first."""
        ...

    def list_files(self, night: dt.date) -> list[RemoteFile]:
        """Regular files of a night's folder (every name; filtering is the caller's)."""
        ...

    def download(self, remote: RemoteFile, dest_part: Path, offset: int) -> None:
        """Append ``remote`` from byte ``offset`` on to ``dest_part`` (which has ``offset`` bytes).

        Raises :class:`ArchiveError` (or an ``OSError``) when the transfer stops early.
        """
        ...

    def checksum(self, remote: RemoteFile) -> str | None:
        """``"<algorithm>:<hex>"`` of the archive's copy, if the server can tell; else None."""
        ...

    def reset(self) -> None:
        """Drop the connection (the next call reconnects)."""
        ...

    def close(self) -> None:
        """Log out and close."""
        ...
