"""Paths of the published site's pages, shared by the site build and the e-mails.

Every path is relative to the site root (``paths.site_dir``), uses ``/`` and is
stable across builds, so links in old e-mails keep working. Prefix them with
``smtp.site_url`` for absolute links.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

_UNSAFE = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=4096)
def slug(name: str) -> str:
    """File-name-safe form of a source or telescope name.

    Lower case; every run of characters other than ``a-z0-9`` becomes ``-``;
    ``+`` is kept as ``p`` and ``-`` before a digit in declinations stays a
    hyphen, so ``"BL Lac"`` -> ``"bl-lac"``, ``"S5 0716+714"`` ->
    ``"s5-0716p714"``, ``"BD+32 3739"`` -> ``"bdp32-3739"``.
    """
    text = name.strip().lower().replace("+", "p")
    return _UNSAFE.sub("-", text).strip("-") or "unnamed"


def index_page() -> str:
    """The list of every source."""
    return "index.html"


def source_page(name: str) -> str:
    """One source's light curves, table and downloads."""
    return f"sources/{slug(name)}.html"


def night_page(night: dt.date, telescope: str) -> str:
    """One night at one telescope: frames, masters, failures, results."""
    return f"nights/{night.isoformat()}/{slug(telescope)}.html"


def summary_page(night: dt.date) -> str:
    """The copy of a night's e-mailed summary."""
    return f"summaries/{night.isoformat()}.html"


def catalog_page() -> str:
    """The source catalog."""
    return "catalog.html"


def status_page() -> str:
    """Last runs, failures and daemon health."""
    return "status.html"
