"""One night of an archive fetched and recorded in the store.

:func:`sync_night` downloads the night through
:func:`~iopreport.archive.nightdownload.download_night` and records what
happened: one ``RawFit`` row per file (size, SHA-256, DOWNLOADED or
ERROR_DOWNLOAD), written after the file is complete and verified, and the
``Epoch``'s flags (LISTED, ERROR_LISTING, DOWNLOADED, CLOSED) and
``last_listed``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass

from iopreport.archive.base import Archive
from iopreport.archive.nightdownload import FetchReport, FileOutcome, download_night
from iopreport.archive.polling import close_time
from iopreport.config import ArchiveConfig, Config
from iopreport.fileio import file_stamp, sha256_of


@dataclass(frozen=True)
class SyncHooks:
    """Callbacks for a progress display (``fetch`` draws a bar from them); all optional.

    ``listed(label, n)`` when a night's listing gives ``n`` files to bring or check,
    ``file_done(outcome)`` after each file, ``night_done(report)`` after the night.
    """

    listed: Callable[[str, int], None] | None = None
    file_done: Callable[[FileOutcome], None] | None = None
    night_done: Callable[[FetchReport], None] | None = None


def sync_night(
    config: Config,
    archive_config: ArchiveConfig,
    archive: Archive,
    night: dt.date,
    now: dt.datetime,
    attempts: int,
    backoff_s: float,
    hooks: SyncHooks | None = None,
) -> tuple[FetchReport, list[str]]:
    """Download one night of ``archive`` and record it in the open store.

    Returns the night's report and the names of the files with new or changed content.
    """
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
            status = outcome.path.stat()
            size, stamp = status.st_size, file_stamp(status)
            sha256 = outcome.sha256
            if sha256 is None:  # present: trust the row if this file was not written since
                known = rawfit.sha256 and rawfit.file_stamp == stamp
                sha256 = rawfit.sha256 if known else sha256_of(outcome.path)
            if rawfit.sha256 != sha256:  # new or changed content: classify again
                rawfit.flags = int(RawFitFlags.DOWNLOADED)
                new.append(outcome.remote.name)
            else:
                rawfit.flags = (rawfit.flags | RawFitFlags.DOWNLOADED) & ~RawFitFlags.ERROR_DOWNLOAD
            if rawfit.error.startswith("download:"):
                rawfit.error = ""
            rawfit.sha256 = sha256
            rawfit.file_stamp = stamp
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
