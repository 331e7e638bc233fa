"""One night of an archive, files only: list it, keep the wanted FITS files, download them.

:func:`download_night` keeps the FITS files that pass ``file_patterns`` and
brings each into ``<datadir>/raw/<TEL>/<YYYY-MM-DD>/`` through
:func:`~iopreport.archive.download.download_file`; a file that fails is
reported and the others carry on. Nothing is written to the store here.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.archive.base import Archive, ArchiveError, RemoteFile
from iopreport.archive.download import (
    DOWNLOAD_ATTEMPTS,
    DOWNLOAD_BACKOFF_S,
    TRANSFER_ERRORS,
    download_file,
)
from iopreport.archive.local import LocalArchive
from iopreport.fileio import UnsafeNameError, path_inside
from iopreport.nightlayout import FITS_NAME

log = logging.getLogger(__name__)


@dataclass
class FileOutcome:
    """One file of a night: where it is and whether it arrived."""

    remote: RemoteFile
    path: Path
    status: str  # copied | present | failed
    sha256: str | None = None
    error: str = ""


@dataclass
class FetchReport:
    """What one night's download did (files only)."""

    telescope: str
    night: dt.date
    copied: list[Path] = field(default_factory=list)
    present: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # FITS names left out by file_patterns
    refused: dict[str, str] = field(default_factory=dict)  # listed entries never used: reason
    listing_error: str = ""
    outcomes: list[FileOutcome] = field(default_factory=list)

    def summary(self) -> str:
        if self.listing_error:
            return f"{self.telescope} {self.night}: listing failed: {self.listing_error}"
        text = (
            f"{self.telescope} {self.night}: {len(self.copied)} copied, "
            f"{len(self.present)} already present, {len(self.failed)} failed"
        )
        if self.skipped:
            text += f", {len(self.skipped)} skipped by file_patterns"
        if self.refused:
            text += f", {len(self.refused)} listing entries refused"
        return text


def compile_patterns(patterns: Sequence[str]) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


def wanted(name: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    """FITS files, and among them those matching any pattern (all when there is none)."""
    return bool(FITS_NAME.match(name)) and (not patterns or any(p.search(name) for p in patterns))


def is_present(remote: RemoteFile, path: Path) -> bool:
    """A local copy matches the listing: same size, and same mtime when the archive gives one."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    if info.st_size != remote.size:
        return False
    return remote.mtime is None or abs(info.st_mtime - remote.mtime) < 1e-3


def download_night(
    archive: Archive,
    night: dt.date,
    raw_dir: Path,
    patterns: Sequence[str] = (),
    *,
    on_file: Callable[[FileOutcome], None] | None = None,
    attempts: int = DOWNLOAD_ATTEMPTS,
    backoff_s: float = DOWNLOAD_BACKOFF_S,
    on_listed: Callable[[int], None] | None = None,
) -> FetchReport:
    """List one night of ``archive`` and bring its wanted files into ``raw_dir/<TEL>/<night>/``.

    A file that fails is reported and the others carry on; ``on_file`` is
    called after each file (the store is written there, one file at a time).
    """
    telescope = archive.telescope
    report = FetchReport(telescope, night)
    try:
        listing = archive.list_files(night)
    except TRANSFER_ERRORS as exc:
        report.listing_error = str(exc)
        report.failed["listing"] = str(exc)
        archive.reset()
        return report
    compiled = compile_patterns(patterns)
    selected = []
    for remote in listing:
        if remote.refused:
            report.refused[remote.name] = remote.refused
            log.warning(
                "%s %s: listing entry %s refused: %s", telescope, night, remote.name, remote.refused
            )
        elif wanted(remote.name, compiled):
            selected.append(remote)
        elif FITS_NAME.match(remote.name):
            report.skipped.append(remote.name)
    if report.skipped:
        log.info(
            "%s %s: %d FITS files do not match file_patterns and are not downloaded: %s",
            telescope,
            night,
            len(report.skipped),
            ", ".join(report.skipped[:10]) + (" ..." if len(report.skipped) > 10 else ""),
        )
    if on_listed:
        on_listed(len(selected))
    target = raw_dir / telescope / night.isoformat()
    if selected:
        target.mkdir(parents=True, exist_ok=True)
    for remote in selected:
        try:
            path = path_inside(target, remote.name)
        except UnsafeNameError as exc:  # the backends refuse these; checked again here
            report.refused[repr(remote.name)] = str(exc)
            continue
        if is_present(remote, path):
            outcome = FileOutcome(remote, path, "present")
            report.present.append(path)
        else:
            try:
                sha256 = download_file(
                    archive, remote, target, attempts=attempts, backoff_s=backoff_s
                )
            except ArchiveError as exc:
                outcome = FileOutcome(remote, path, "failed", error=str(exc))
                report.failed[remote.name] = str(exc)
                log.error("%s %s: %s", telescope, night, exc)
            else:
                outcome = FileOutcome(remote, path, "copied", sha256=sha256)
                report.copied.append(path)
        report.outcomes.append(outcome)
        if on_file:
            on_file(outcome)
    return report


def fetch_night(
    root: Path,
    telescope: str,
    night: dt.date,
    raw_dir: Path,
    patterns: tuple[str, ...] = (),
):
    """Copy one night's FITS files from ``root`` into ``raw_dir/<TEL>/<YYYY-MM-DD>/``.

    Files only, no store: the daemon and ``iopreport fetch`` use
    :func:`iopreport.archive.sync.sync_archive`, which also records them.
    """
    return download_night(LocalArchive(root, telescope), night, raw_dir, patterns)
