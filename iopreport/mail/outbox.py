"""Files a summary leaves on disk: the dry-run outbox and the site's copy.

* ``<outbox_dir>/<YYYY-MM-DD>/<subscriber-slug>.eml`` - the exact message that
  ``--send`` would hand to the server (open it in any mail client), and
  ``.html`` beside it - the same page with its plots inlined as ``data:`` URIs.
* ``<datadir>/summaries/<YYYY-MM-DD>.html`` - the night's full summary (every
  source, no subscriber filter), self-contained, which the site build
  publishes under ``summaries/`` (:func:`iopreport.urls.summary_page`).

Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import datetime as dt
from email import policy
from pathlib import Path

from iopreport import fileio, urls
from iopreport.config import Config
from iopreport.mail.message import Outgoing
from iopreport.mail.render import inline_src, render_summary
from iopreport.mail.summary import NightSummary

#: Permissions of written files: readable by the web server that publishes the site.
FILE_MODE = 0o644


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """:func:`iopreport.fileio.write_bytes_atomic`, readable by the web server."""
    fileio.write_bytes_atomic(path, data, mode=FILE_MODE)


def site_copy_path(config: Config, night: dt.date) -> Path:
    """``<datadir>/summaries/<YYYY-MM-DD>.html``."""
    return config.paths.data_subdir("summaries") / f"{night.isoformat()}.html"


def write_site_copy(config: Config, summary: NightSummary) -> Path:
    """Write the night's full summary, plots inlined, for the site to publish."""
    html = render_summary(summary, config.paths.templates_dir, image_src=inline_src).html
    path = site_copy_path(config, summary.night)
    write_bytes_atomic(path, html.encode("utf-8"))
    return path


def write_outbox(
    config: Config, outgoing: Outgoing, summary: NightSummary, subscriber: str
) -> tuple[Path, Path]:
    """Write the message as ``.eml`` and its page as ``.html`` into the outbox folder."""
    safety = config.safety
    fileio.ensure_dir(config.paths.outbox_dir, safety.dir_mode)  # messages name subscribers
    folder = fileio.ensure_dir(config.paths.outbox_dir / summary.night.isoformat(), safety.dir_mode)
    stem = urls.slug(subscriber)
    eml = folder / f"{stem}.eml"
    html = folder / f"{stem}.html"
    message = outgoing.message.as_bytes(policy=policy.SMTP)
    fileio.write_bytes_atomic(eml, message, mode=safety.file_mode)
    page = render_summary(summary, config.paths.templates_dir, image_src=inline_src).html
    fileio.write_bytes_atomic(html, page.encode("utf-8"), mode=safety.file_mode)
    return eml, html
