"""Fetch an archive's nights into the store, shared by ``fetch`` and the daemon.

:func:`sync_archive` decides which nights to poll (new ones and those not yet
closed, :mod:`~iopreport.archive.polling`), brings each in and records it
(:mod:`~iopreport.archive.nightsync`) and sums up what happened in an
:class:`ArchiveSync`.

Crash safety: a file appears under its final name only when complete and
verified, and its row is written after that; a run killed at any point leaves
at most a ``.part`` file (resumed next time) or a verified file without its
row (recognised as present next time and recorded then).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from iopreport.archive.backends import open_archive
from iopreport.archive.base import Archive
from iopreport.archive.download import DOWNLOAD_ATTEMPTS, DOWNLOAD_BACKOFF_S, TRANSFER_ERRORS
from iopreport.archive.nightdownload import FetchReport
from iopreport.archive.nightsync import SyncHooks, sync_night
from iopreport.archive.polling import nights_to_poll
from iopreport.config import ArchiveConfig, Config

log = logging.getLogger(__name__)


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
            report, new = sync_night(
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
