"""Writing an export: astropy Table formats with units and metadata, and WEBT files.

ECSV, VOTable, FITS and CSV go through :meth:`astropy.table.Table.write`. The
metadata (software version, SHA-256 of catalog.toml and flags.toml, the citation,
the export date and the filters) is the table's ``meta``: ECSV keeps it in its
YAML header, FITS in the header of the table HDU, VOTable as INFO elements, CSV as
``#`` comment lines (with each column's unit, which CSV has no other place for).
Every file is written atomically (:mod:`iopreport.fileio`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from iopreport import __version__
from iopreport.errors import UsageError
from iopreport.fileio import write_bytes_atomic, write_text_atomic
from iopreport.store.columns import RESULT_COLUMNS, records_table

#: --format choices, and the file name ending each one writes.
FORMATS: dict[str, str] = {
    "ecsv": ".ecsv",
    "votable": ".xml",
    "fits": ".fits",
    "csv": ".csv",
    "webt": "",  # a folder of one file per source, telescope and band
}
#: What to cite when using the data (written into every export).
CITATION = (
    f"iopreport {__version__} (https://example.invalid/iopreport); method as in "
    "Escudero Pedrosa et al. 2024, AJ 168, 84 (IOP4)"
)
#: Digits of the WEBT columns: JD to 1e-5 d (0.9 s), magnitudes and errors to 1 mmag.
WEBT_JD_DIGITS = 5
WEBT_MAG_DIGITS = 3
#: How a VOTable names percent: VOUnit 1.0 has no '%'; quoted names are allowed (sec. 2.9).
VOUNIT_PERCENT = "'percent'"
#: Permissions of an exported file: readable by everyone (tables are meant to be shared).
FILE_MODE = 0o644


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "missing"


def export_metadata(config, description: str, now: dt.datetime | None = None) -> dict:
    """The metadata every export carries (keys are FITS-safe: at most 8 characters)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return {
        "ORIGIN": "iopreport",
        "SWVERS": __version__,
        "DATE": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "CATSHA": _sha256(config.paths.catalog),
        "FLAGSHA": _sha256(config.paths.flags),
        "CITATION": CITATION,
        "FILTERS": description,
        "PUNIT": "p, q, u in percent; angles in degrees East of North; JD and MJD in UTC",
    }


def write_export(records: Sequence[dict], meta: dict, fmt: str, out: Path) -> list[Path]:
    """Write ``records`` in format ``fmt`` to ``out`` (a folder for ``webt``); the files."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    out = Path(out)
    if fmt == "webt":
        return write_webt(records, meta, out)
    table = records_table(records, meta)
    if fmt == "csv":
        write_text_atomic(out, _csv_text(table), mode=FILE_MODE)
    elif fmt == "ecsv":
        buffer = io.StringIO()
        table.write(buffer, format="ascii.ecsv")
        write_text_atomic(out, buffer.getvalue(), mode=FILE_MODE)
    elif fmt == "votable":
        write_bytes_atomic(out, _votable_bytes(table), mode=FILE_MODE)
    else:
        write_bytes_atomic(out, _fits_bytes(table), mode=FILE_MODE)
    return [out]


def _csv_text(table) -> str:
    """CSV with the metadata and each column's unit and description as ``#`` lines."""
    buffer = io.StringIO()
    lines = [f"{key} = {value}" for key, value in table.meta.items()]
    for column in RESULT_COLUMNS:
        unit = f" [{column.unit}]" if column.unit else ""
        lines.append(f"column {column.name}{unit}: {column.description}")
    plain = table.copy(copy_data=False)
    plain.meta = {"comments": lines}
    plain.write(buffer, format="ascii.csv", comment="# ")
    return buffer.getvalue()


def _votable_bytes(table) -> bytes:
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    votable = from_table(table)
    resource = votable.resources[0]
    for key, value in table.meta.items():
        resource.infos.append(Info(name=key, value=str(value)))
    for field_, column in zip(resource.tables[0].fields, RESULT_COLUMNS, strict=True):
        field_.description = column.description
        if column.unit == "%":  # not a VOUnit: a quoted unit name (VOUnit 1.0, sec. 2.9)
            field_.unit = VOUNIT_PERCENT
    buffer = io.BytesIO()
    votable.to_xml(buffer)
    return buffer.getvalue()


def _fits_bytes(table) -> bytes:
    import warnings

    from astropy.units import UnitsWarning

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.fits"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnitsWarning)  # '%' is not a FITS unit; kept as text
            table.write(path, format="fits")
        return path.read_bytes()


# ------------------------------------------------------------------------ WEBT / GASP


def webt_rows(records: Sequence[dict]) -> dict[tuple[str, str, str], list[tuple]]:
    """(source, telescope, band) -> sorted (JD, mag, err) rows of photometric results.

    The column rules (docs/export.md): photometry with a calibrated magnitude
    only; the statistical error ``mag_err`` (the calibrators' systematic error is
    common to every telescope using the same comparison stars); JD (UTC) at
    the mean time, 5 decimals; magnitude and error, 3 decimals.
    """
    groups: dict[tuple[str, str, str], list[tuple]] = defaultdict(list)
    for record in records:
        if record["mode"] != "photometry" or record["mag"] is None:
            continue
        if record["mag_err"] is None or not math.isfinite(record["mag"]):
            continue
        key = (record["source"], record["telescope"], record["band"])
        groups[key].append((record["jd"], record["mag"], record["mag_err"]))
    return {key: sorted(rows) for key, rows in sorted(groups.items())}


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "+-." else "_" for c in text)


def webt_text(source: str, telescope: str, band: str, rows: Sequence[tuple], meta: dict) -> str:
    """One WEBT exchange file: ``#`` header lines, then ``JD mag err`` per line."""
    header = [
        f"# source: {source}",
        f"# telescope: {telescope}",
        f"# band: {band} (Johnson-Cousins, Vega)",
        "# columns: JD (UTC)  magnitude  error (statistical, 1 sigma)",
        f"# exported by iopreport {meta.get('SWVERS', __version__)} on {meta.get('DATE', '')}",
        f"# cite: {meta.get('CITATION', CITATION)}",
    ]
    body = [
        f"{jd:.{WEBT_JD_DIGITS}f} {mag:.{WEBT_MAG_DIGITS}f} {err:.{WEBT_MAG_DIGITS}f}"
        for jd, mag, err in rows
    ]
    return "\n".join(header + body) + "\n"


def write_webt(records: Sequence[dict], meta: dict, folder: Path) -> list[Path]:
    """One file per source, telescope and band: ``<source>_<telescope>_<band>.txt``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (source, telescope, band), rows in webt_rows(records).items():
        path = folder / f"{_safe(source)}_{_safe(telescope)}_{_safe(band)}.txt"
        write_text_atomic(path, webt_text(source, telescope, band, rows, meta), mode=FILE_MODE)
        written.append(path)
    return written
