"""How each archive names its night folders (reference/iop4.md §3)."""

from __future__ import annotations

import datetime as dt
import re

#: Files an archive listing takes: FITS under its usual extensions.
FITS_NAME = re.compile(r".*\.(fits?|fts)(\.gz)?$", re.IGNORECASE)


def night_folder(telescope: str, night: dt.date) -> str:
    """OSN: ``YYYYMMDD``; CAHA: ``YYMMDD_CAFOS`` (the evening date of the night)."""
    if telescope == "CAHA-T220":
        return night.strftime("%y%m%d") + "_CAFOS"
    return night.strftime("%Y%m%d")


def night_from_folder(telescope: str, name: str) -> dt.date | None:
    """The night a folder name stands for, or None if it is not a night folder."""
    if telescope == "CAHA-T220":
        match = re.fullmatch(r"(\d{6})_CAFOS", name)
        fmt = "%y%m%d"
    else:
        match = re.search(r"(\d{8})", name)
        fmt = "%Y%m%d"
    if not match:
        return None
    try:
        return dt.datetime.strptime(match.group(1), fmt).date()
    except ValueError:
        return None
