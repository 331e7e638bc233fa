"""Discovery and verified download of archive nights, shared by ``fetch`` and the daemon.

Two layers:

* :func:`download_night` works on files only: it lists a night, keeps the FITS
  files that pass ``file_patterns``, and brings each into
  ``<datadir>/raw/<TEL>/<YYYY-MM-DD>/`` through :func:`download_file`
  (resumable ``.part`` file, size and checksum verified, fsync, rename,
  read-only, retried with backoff);
* :func:`sync_archive` decides which nights to poll (new ones and those not
  yet closed) and records what happened in the store: ``Epoch.flags``
  (LISTED, ERROR_LISTING, DOWNLOADED, CLOSED), ``Epoch.last_listed`` and one
  ``RawFit`` row per file with its size, SHA-256 and DOWNLOADED or
  ERROR_DOWNLOAD.

Crash safety: a file appears under its final name only when complete and
verified, and its row is written after that; a run killed at any point leaves
at most a ``.part`` file (resumed next time) or a verified file without its
row (recognised as present next time and recorded then).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import logging
import os
import re
import stat
import time
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import peewee as pw

from iopreport.archive.backends import open_archive
from iopreport.archive.base import Archive, ArchiveError, RemoteFile
from iopreport.archive.local import LocalArchive
from iopreport.config import ArchiveConfig, Config
from iopreport.fileio import UnsafeNameError, path_inside, sha256_of
from iopreport.nightlayout import FITS_NAME

log = logging.getLogger(__name__)

#: Attempts per file within one run before the file is reported failed (later runs retry).
DOWNLOAD_ATTEMPTS = 3
#: Seconds before the 2nd attempt; doubled before each further one.
DOWNLOAD_BACKOFF_S = 2.0
#: Errors a transfer may end with (anything else is a bug and propagates).
TRANSFER_ERRORS = (ArchiveError, OSError, EOFError)
#: Mode of a complete raw file: read-only for everyone.
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


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


@dataclass(frozen=True)
class SyncHooks:
    """Callbacks for a progress display (``fetch`` draws a bar from them); all optional.

    ``listed(label, n)`` when a night's listing gives ``n`` files to bring or check,
    ``file_done(outcome)`` after each file, ``night_done(report)`` after the night.
    """

    listed: Callable[[str, int], None] | None = None
    file_done: Callable[[FileOutcome], None] | None = None
    night_done: Callable[[FetchReport], None] | None = None


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


# -- the store side ---------------------------------------------------------------


@dataclass
class ArchiveSync:
    """What one archive's sync did: an error of its own, or one report per night."""

    telescope: str
    error: str = ""
    nights: list[FetchReport] = field(default_factory=list)
    new_files: dict[dt.date, list[str]] = field(default_factory=dict)  # new or changed content
    unmatched: list[str] = field(default_factory=list)  # folders matching no night pattern
    pattern: str = ""  # the archive's night-folder pattern

    @property
    def failed(self) -> bool:
        return bool(self.error) or any(report.failed for report in self.nights)

    def lines(self) -> list[str]:
        if self.error:
            return [f"{self.telescope}: {self.error}"]
        lines = [report.summary() for report in self.nights]
        if not self.nights:
            lines = [f"{self.telescope}: no night to fetch"]
        if self.unmatched:
            shown = ", ".join(self.unmatched[:10]) + (" ..." if len(self.unmatched) > 10 else "")
            lines.append(
                f"{self.telescope}: {len(self.unmatched)} folders match no night_folder "
                f"pattern {self.pattern!r}: {shown}"
            )
        return lines


def close_time(night: dt.date, config: Config) -> dt.datetime:
    """When a night stops being polled: ``close_night_after_hours`` after its evening's noon.

    Noon is local time in ``schedule.timezone``; the result is naive UTC like the store.
    """
    zone = zoneinfo.ZoneInfo(config.schedule.timezone)
    noon = dt.datetime.combine(night, dt.time(12), tzinfo=zone)
    closing = noon + dt.timedelta(hours=config.schedule.close_night_after_hours)
    return closing.astimezone(dt.UTC).replace(tzinfo=None)


def nights_to_poll(telescope: str, remote_nights: Sequence[dt.date]) -> list[dt.date]:
    """Nights the daemon lists: new ones and those not closed yet, newest first.

    Nights older than the oldest night already in the store for this telescope
    are left alone, so ``iopreport fetch --since D`` sets where the daemon
    starts; with no night in the store yet, every night of the archive is new.
    """
    from iopreport.store import Epoch, EpochFlags

    mine = Epoch.telescope == telescope
    oldest = Epoch.select(pw.fn.MIN(Epoch.night)).where(mine).scalar()
    closed = {
        epoch.night
        for epoch in Epoch.select(Epoch.night).where(
            mine & (Epoch.flags.bin_and(int(EpochFlags.CLOSED)) != 0)
        )
    }
    return sorted(
        (n for n in remote_nights if n not in closed and (oldest is None or n >= oldest)),
        reverse=True,
    )


def sync_archive(
    config: Config,
    archive_config: ArchiveConfig,
    *,
    nights: Sequence[dt.date] | None = None,
    since: dt.date | None = None,
    now: dt.datetime | None = None,
    archive: Archive | None = None,
    attempts: int = DOWNLOAD_ATTEMPTS,
    backoff_s: float = DOWNLOAD_BACKOFF_S,
    hooks: SyncHooks | None = None,
) -> ArchiveSync:
    """Fetch nights of one archive and record them in the open store.

    Parameters
    ----------
    nights : sequence of date, optional
        Exactly these nights (``fetch --night``).
    since : date, optional
        Every night the archive lists from this one on (``fetch --since``).
        With neither, the nights the daemon polls: new ones and those not closed.
    now : datetime, optional
        Naive UTC "now" for ``last_listed`` and closing (tests).
    hooks : SyncHooks, optional
        Progress callbacks.

    Never raises for an archive's trouble: it is returned in ``error`` or per night.
    """
    from iopreport.store.models import utcnow

    telescope = archive_config.telescope
    result = ArchiveSync(telescope)
    archive = archive or open_archive(archive_config)
    try:
        if nights is None:
            try:
                remote_nights = archive.list_nights()
            except TRANSFER_ERRORS as exc:
                result.error = f"listing the archive failed: {exc}"
                log.error("%s: %s", telescope, result.error)
                return result
            result.unmatched = list(getattr(archive, "unmatched_folders", []))
            layout = getattr(archive, "layout", None)
            result.pattern = layout.pattern if layout is not None else ""
            if result.unmatched:
                log.info("%s", result.lines()[-1])
            if since is not None:
                chosen = sorted((n for n in remote_nights if n >= since), reverse=True)
            else:
                chosen = nights_to_poll(telescope, remote_nights)
        else:
            chosen = list(nights)
        for night in chosen:
            report, new = _sync_night(
                config, archive_config, archive, night, now or utcnow(), attempts, backoff_s, hooks
            )
            if hooks and hooks.night_done:
                hooks.night_done(report)
            result.nights.append(report)
            if new:
                result.new_files[night] = new
    finally:
        archive.close()
    return result


def _sync_night(
    config: Config,
    archive_config: ArchiveConfig,
    archive: Archive,
    night: dt.date,
    now: dt.datetime,
    attempts: int,
    backoff_s: float,
    hooks: SyncHooks | None = None,
) -> tuple[FetchReport, list[str]]:
    from iopreport.store import Epoch, EpochFlags, RawFit, RawFitFlags
    from iopreport.store.models import database_proxy

    telescope = archive_config.telescope
    epoch = Epoch.get_or_none(telescope=telescope, night=night)
    new: list[str] = []

    def record(outcome: FileOutcome) -> None:
        nonlocal epoch
        with database_proxy.atomic():
            if epoch is None:
                epoch, _ = Epoch.get_or_create(telescope=telescope, night=night)
            rawfit, _ = RawFit.get_or_create(epoch=epoch, filename=outcome.remote.name)
            if outcome.status == "failed":
                rawfit.flags |= RawFitFlags.ERROR_DOWNLOAD
                rawfit.error = f"download: {outcome.error}"
                rawfit.save()
                return
            size = outcome.path.stat().st_size
            sha256 = outcome.sha256
            if sha256 is None:  # present: trust the row if it describes this file
                known = rawfit.sha256 and rawfit.size_bytes == size
                sha256 = rawfit.sha256 if known else sha256_of(outcome.path)
            if rawfit.sha256 != sha256:  # new or changed content: classify again
                rawfit.flags = int(RawFitFlags.DOWNLOADED)
                new.append(outcome.remote.name)
            else:
                rawfit.flags = (rawfit.flags | RawFitFlags.DOWNLOADED) & ~RawFitFlags.ERROR_DOWNLOAD
            if rawfit.error.startswith("download:"):
                rawfit.error = ""
            rawfit.sha256 = sha256
            rawfit.size_bytes = size
            rawfit.save()

    def recorded(outcome: FileOutcome) -> None:
        record(outcome)
        if hooks and hooks.file_done:
            hooks.file_done(outcome)

    listed = None
    if hooks and hooks.listed:
        listed = functools.partial(hooks.listed, f"fetch {telescope} {night}")
    report = download_night(
        archive,
        night,
        config.paths.data_subdir("raw"),
        archive_config.file_patterns,
        on_file=recorded,
        attempts=attempts,
        backoff_s=backoff_s,
        on_listed=listed,
    )
    with database_proxy.atomic():
        if epoch is None:
            if report.listing_error:  # never seen, and not there: no row for it
                return report, new
            epoch, _ = Epoch.get_or_create(telescope=telescope, night=night)
        epoch = Epoch.get_by_id(epoch.id)
        flags = EpochFlags(epoch.flags)
        if report.listing_error:
            flags |= EpochFlags.ERROR_LISTING
            epoch.error = f"listing: {report.listing_error}"
        else:
            flags = (flags | EpochFlags.LISTED) & ~EpochFlags.ERROR_LISTING
            if epoch.error.startswith("listing:"):
                epoch.error = ""
            epoch.last_listed = now
            if report.failed:
                flags &= ~EpochFlags.DOWNLOADED
            else:
                flags |= EpochFlags.DOWNLOADED
                if now >= close_time(night, config):
                    flags |= EpochFlags.CLOSED
        if new:
            flags &= ~EpochFlags.REDUCED
        epoch.flags = int(flags)
        epoch.save()
    return report, new


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
