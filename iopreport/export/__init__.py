"""``iopreport export``: results to ECSV, VOTable, FITS, CSV, or WEBT/GASP exchange files.

The columns are the one definition in :mod:`iopreport.store.columns` (shared with
``results_table()`` and the site's downloads). Formats: docs/export.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from iopreport.export.select import ExportFilter, select_records
from iopreport.export.write import FORMATS, export_metadata, write_export

__all__ = ["FORMATS", "ExportFilter", "ExportResult", "export_metadata", "select_records"]
__all__ += ["write_export"]


@dataclass
class ExportResult:
    """What an export wrote."""

    rows: int
    files: list = field(default_factory=list)
    written_at: dt.datetime | None = None
