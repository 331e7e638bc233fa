"""Verified, resumable download of one archive file.

The bytes go to a hidden ``.part`` file that a later attempt (or run) resumes
from its current size; once its size matches the listing (and the server's
checksum, where it offers one) it is synced to disk, made read-only and
renamed to its final name. Failed attempts are retried with backoff.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

from iopreport.archive.base import Archive, ArchiveError, RemoteFile
from iopreport.fileio import UnsafeNameError, path_inside, sha256_of

log = logging.getLogger(__name__)

#: Attempts per file within one run before the file is reported failed (later runs retry).
DOWNLOAD_ATTEMPTS = 3
#: Seconds before the 2nd attempt; doubled before each further one.
DOWNLOAD_BACKOFF_S = 2.0
#: Errors a transfer may end with (anything else is a bug and propagates).
TRANSFER_ERRORS = (ArchiveError, OSError, EOFError)
#: Mode of a complete raw file: read-only for everyone.
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def part_path(target_dir: Path, name: str) -> Path:
    """The temporary name a file is downloaded under (hidden, never matched as FITS).

    Raises :class:`~iopreport.fileio.UnsafeNameError` unless it stays inside ``target_dir``.
    """
    return path_inside(target_dir, f".{name}.part")


def _digest_matches(expected: str, path: Path, sha256: str) -> bool:
    algorithm, _, value = expected.partition(":")
    if algorithm == "sha256":
        return value.lower() == sha256
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == value.lower()


def download_file(
    archive: Archive,
    remote: RemoteFile,
    target_dir: Path,
    *,
    attempts: int = DOWNLOAD_ATTEMPTS,
    backoff_s: float = DOWNLOAD_BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Download ``remote`` into ``target_dir``, verified; return its SHA-256.

    The bytes go to a ``.part`` file that a later attempt (or run) resumes
    from its current size. Once the size matches the listing (and the
    server's checksum, if it offers one), the file is synced to disk, given
    the archive's mtime, made read-only and renamed to its final name.

    Raises
    ------
    ArchiveError
        After ``attempts`` failed attempts (the ``.part`` file is kept for resuming).
    """
    try:
        destination = path_inside(target_dir, remote.name)
        part = part_path(target_dir, remote.name)
    except UnsafeNameError as exc:
        raise ArchiveError(f"refused: {exc}") from None
    for attempt in range(1, attempts + 1):
        try:
            offset = part.stat().st_size if part.exists() else 0
            if offset > remote.size:  # the archive's file was replaced by a smaller one
                part.unlink()
                offset = 0
            if offset < remote.size or remote.size == 0:
                if offset and not os.access(part, os.W_OK):
                    part.chmod(READ_ONLY | stat.S_IWUSR)
                if offset:
                    log.info("%s: resuming at byte %d of %d", remote.name, offset, remote.size)
                archive.download(remote, part, offset)
            size = part.stat().st_size
            if size != remote.size:
                raise ArchiveError(f"{remote.name}: got {size} bytes, archive lists {remote.size}")
            sha256 = sha256_of(part)
            expected = remote.checksum or archive.checksum(remote)
            if expected and not _digest_matches(expected, part, sha256):
                part.unlink()
                raise ArchiveError(f"{remote.name}: checksum differs from the archive's {expected}")
            break
        except TRANSFER_ERRORS as exc:
            archive.reset()
            with contextlib.suppress(OSError):  # nothing to resume: leave no empty .part
                if part.stat().st_size == 0:
                    part.unlink()
            if getattr(exc, "permanent", False):  # e.g. "550 No such file": no retry now
                raise ArchiveError(f"{exc} (not retried in this run)") from exc
            if attempt == attempts:
                raise ArchiveError(f"{exc} (gave up after {attempts} attempts)") from exc
            wait = backoff_s * 2 ** (attempt - 1)
            log.warning("%s: %s; retrying in %.0f s", remote.name, exc, wait)
            sleep(wait)
    with open(part, "rb") as stream:
        os.fsync(stream.fileno())
    if remote.mtime is not None:
        os.utime(part, (remote.mtime, remote.mtime))
    part.chmod(READ_ONLY)
    os.replace(part, destination)
    return sha256
