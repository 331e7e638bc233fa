"""Read an IOP4 1.x database: SQLite, opened read-only, never migrated or written.

IOP4 (Escudero Pedrosa et al. 2024, arXiv:2405.20111; github.com/juanep97/iop4) keeps
its state in one SQLite file made by Django's migrations (app ``iop4api``).
The tables read here, and the columns each must have, are :data:`REQUIRED`;
the schema check refuses a file that is not SQLite, has no Django
``django_migrations`` table, has no applied ``iop4api`` migration, or lacks a
table or column of :data:`REQUIRED`. IOP4 does not ship its migrations (each
installation makes its own with ``makemigrations``), so their names differ
between installations and the columns, not the names, are what is checked.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.errors import InputError

#: Tables and columns read, as IOP4 1.x's models define them (iop4lib/db/*.py).
REQUIRED: dict[str, tuple[str, ...]] = {
    "iop4api_astrosource": (
        "id",
        "name",
        "other_names",
        "ra_hms",
        "dec_dms",
        "srctype",
        "comment",
        "redshift",
        "p",
        "p_err",
        "chi",
        "chi_err",
        *(f"mag_{band}{suffix}" for band in "UBVRI" for suffix in ("", "_err")),
    ),
    "iop4api_astrosource_calibrates": ("from_astrosource_id", "to_astrosource_id"),
    "iop4api_epoch": ("id", "telescope", "night"),
    "iop4api_rawfit": ("id", "epoch_id", "filename"),
    "iop4api_photopolresult": (
        "id",
        "astrosource_id",
        "reduction",
        "juliandate",
        "juliandate_min",
        "juliandate_max",
        "epoch_id",
        "instrument",
        "obsmode",
        "band",
        "exptime",
        "aperpix",
        "flux_counts",
        "flux_counts_err",
        "mag_inst",
        "mag_inst_err",
        "mag_zp",
        "mag_zp_err",
        "mag",
        "mag_err",
        "_q_nocorr",
        "_u_nocorr",
        "p",
        "p_err",
        "chi",
        "chi_err",
        "mag_corr",
        "mag_corr_err",
        "p_corr",
        "p_corr_err",
        "flags",
        "modified",
    ),
    "iop4api_photopolresultreducedfitrelation": ("photopolresult_id", "reducedfit_id"),
}
#: Django app label of IOP4's models.
APP_LABEL = "iop4api"
#: IOP4's PhotoPolResult flag bits (iop4lib/db/photopolresult.py, ``FLAGS``).
BAD_PHOTOMETRY = 1 << 1
BAD_POLARIMETRY = 1 << 2
#: IOP4's ``PhotoPolResult.auto_flag`` rule: bad photometry above this magnitude error.
AUTO_MAG_ERR_LIMIT = 0.3
#: IOP4 instrument names that iopreport spells differently (iopreport/telescopes.py).
INSTRUMENT_NAMES = {"CAFOS2.2": "CAFOS"}


@dataclass(frozen=True)
class Iop4Source:
    """One ``AstroSource`` row."""

    id: int
    name: str
    other_names: tuple[str, ...]
    ra_hms: str
    dec_dms: str
    srctype: str
    comment: str
    redshift: float | None
    p: float | None
    p_err: float | None
    chi: float | None
    chi_err: float | None
    mags: dict[str, tuple[float, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Iop4Result:
    """One ``PhotoPolResult`` row with its member raw files (``TEL/night/file``)."""

    id: int
    source_id: int
    reduction: str
    mode: str  # photometry | polarimetry
    telescope: str
    night: dt.date
    instrument: str
    band: str
    exptime: float | None
    juliandate: float
    juliandate_min: float
    juliandate_max: float
    files: tuple[str, ...]
    values: dict[str, float | None]
    flags: int
    modified: dt.date | None

    def auto_flags(self) -> int:
        """The bits IOP4's ``auto_flag`` rule would set from the stored values."""
        bits = 0
        p = self.values.get("p")
        if p is not None and not 0 <= p <= 1:
            bits |= BAD_POLARIMETRY
        mag, mag_err = self.values.get("mag"), self.values.get("mag_err")
        if mag is not None and mag_err is not None and mag_err > AUTO_MAG_ERR_LIMIT:
            bits |= BAD_PHOTOMETRY
        return bits


@dataclass(frozen=True)
class Iop4Database:
    """What an IOP4 database holds that iopreport imports."""

    path: Path
    migrations: tuple[str, ...]
    sources: tuple[Iop4Source, ...]
    calibrates: tuple[tuple[int, int], ...]  # (calibrator id, target id)
    results: tuple[Iop4Result, ...]
    skipped_results: tuple[str, ...] = ()

    def source(self, source_id: int) -> Iop4Source:
        return next(s for s in self.sources if s.id == source_id)


#: IOP4 result columns -> ImportedResult columns.
RESULT_VALUES = {
    "aperpix": "aperture_px",
    "flux_counts": "flux_counts",
    "flux_counts_err": "flux_counts_err",
    "mag_inst": "mag_inst",
    "mag_inst_err": "mag_inst_err",
    "mag_zp": "mag_zp",
    "mag_zp_err": "mag_zp_err",
    "mag": "mag",
    "mag_err": "mag_err",
    "_q_nocorr": "q_raw",
    "_u_nocorr": "u_raw",
    "p": "p",
    "p_err": "p_err",
    "chi": "chi",
    "chi_err": "chi_err",
    "mag_corr": "mag_host_corrected",
    "mag_corr_err": "mag_host_corrected_err",
    "p_corr": "p_host_corrected",
    "p_corr_err": "p_host_corrected_err",
}


def open_readonly(path: Path | str) -> sqlite3.Connection:
    """Open ``path`` with SQLite's read-only URI (``mode=ro``): nothing can be written.

    ``immutable=1`` is added unless a non-empty ``-wal`` file shows a writer at
    work, so that reading leaves no file behind (SQLite URI parameters:
    https://www.sqlite.org/uri.html).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "no such file (expected an IOP4 SQLite database)")
    # A database whose write-ahead log holds pages not yet copied into it (IOP4
    # running) is read through the log; any other is opened immutable, so SQLite
    # creates no -wal or -shm file beside it.
    wal = path.with_name(path.name + "-wal")
    live = wal.exists() and wal.stat().st_size > 0
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    if not live:
        uri += "&immutable=1"
    try:
        connection = sqlite3.connect(uri, uri=True)
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise InputError(
            path, None, f"not an SQLite database ({exc}); not an IOP4 database"
        ) from None
    return connection


def check_schema(connection: sqlite3.Connection, path: Path) -> tuple[str, ...]:
    """The applied ``iop4api`` migrations; :class:`InputError` for anything else.

    Raises
    ------
    InputError
        The file has no Django migrations table, no applied IOP4 migration, or
        lacks a table or column IOP4 1.x has (an unknown schema).
    """
    tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "django_migrations" not in tables:
        raise InputError(
            path,
            None,
            "not an IOP4 database: no django_migrations table (IOP4 is a Django project)",
        )
    migrations = tuple(
        r[0]
        for r in connection.execute(
            "SELECT name FROM django_migrations WHERE app = ? ORDER BY id", (APP_LABEL,)
        )
    )
    if not migrations:
        raise InputError(
            path,
            None,
            f"not an IOP4 database: no applied '{APP_LABEL}' migration in django_migrations",
        )
    for table, wanted in REQUIRED.items():
        if table not in tables:
            raise InputError(
                path,
                None,
                f"unknown IOP4 schema (migrations {', '.join(migrations)}): no table {table}; "
                "iopreport reads IOP4 1.x databases",
            )
        have = {r[1] for r in connection.execute(f'PRAGMA table_info("{table}")')}
        missing = [c for c in wanted if c not in have]
        if missing:
            raise InputError(
                path,
                None,
                f"unknown IOP4 schema (migrations {', '.join(migrations)}): table {table} has "
                f"no column {', '.join(missing)}; iopreport reads IOP4 1.x databases",
            )
    return migrations


def _names(text: str | None) -> tuple[str, ...]:
    """IOP4's ``other_names``: names separated by ';'."""
    return tuple(n.strip() for n in (text or "").split(";") if n.strip())


def _date(value) -> dt.date | None:
    if value is None:
        return None
    return dt.date.fromisoformat(str(value)[:10])


def read_iop4(path: Path | str) -> Iop4Database:
    """Read sources, calibration links and results of an IOP4 database (read-only)."""
    path = Path(path)
    connection = open_readonly(path)
    try:
        migrations = check_schema(connection, path)
        connection.row_factory = sqlite3.Row
        sources = []
        for row in connection.execute("SELECT * FROM iop4api_astrosource ORDER BY id"):
            mags = {}
            for band in "UBVRI":
                if row[f"mag_{band}"] is not None:
                    mags[band] = (row[f"mag_{band}"], row[f"mag_{band}_err"])
            sources.append(
                Iop4Source(
                    id=row["id"],
                    name=row["name"].strip(),
                    other_names=_names(row["other_names"]),
                    ra_hms=row["ra_hms"],
                    dec_dms=row["dec_dms"],
                    srctype=row["srctype"],
                    comment=row["comment"] or "",
                    redshift=row["redshift"],
                    p=row["p"],
                    p_err=row["p_err"],
                    chi=row["chi"],
                    chi_err=row["chi_err"],
                    mags=mags,
                )
            )
        calibrates = tuple(
            (r[0], r[1])
            for r in connection.execute(
                "SELECT from_astrosource_id, to_astrosource_id"
                " FROM iop4api_astrosource_calibrates ORDER BY id"
            )
        )
        files: dict[int, list[str]] = {}
        for result_id, telescope, night, filename in connection.execute(
            "SELECT rel.photopolresult_id, e.telescope, e.night, r.filename"
            " FROM iop4api_photopolresultreducedfitrelation rel"
            " JOIN iop4api_rawfit r ON r.id = rel.reducedfit_id"
            " JOIN iop4api_epoch e ON e.id = r.epoch_id"
        ):
            files.setdefault(result_id, []).append(f"{telescope}/{_date(night)}/{filename}")
        results, skipped = [], []
        for row in connection.execute(
            "SELECT r.*, e.telescope AS e_telescope, e.night AS e_night"
            " FROM iop4api_photopolresult r LEFT JOIN iop4api_epoch e ON e.id = r.epoch_id"
            " ORDER BY r.id"
        ):
            mode = (row["obsmode"] or "").lower()
            if (
                row["astrosource_id"] is None
                or row["juliandate"] is None
                or row["e_telescope"] is None
                or mode not in ("photometry", "polarimetry")
                or not files.get(row["id"])
            ):
                skipped.append(
                    f"IOP4 result {row['id']}: incomplete (no source, epoch, date, mode or files)"
                )
                continue
            results.append(
                Iop4Result(
                    id=row["id"],
                    source_id=row["astrosource_id"],
                    reduction=row["reduction"] or "",
                    mode=mode,
                    telescope=row["e_telescope"],
                    night=_date(row["e_night"]),
                    instrument=INSTRUMENT_NAMES.get(row["instrument"], row["instrument"] or ""),
                    band=row["band"] or "",
                    exptime=row["exptime"],
                    juliandate=row["juliandate"],
                    juliandate_min=row["juliandate_min"] or row["juliandate"],
                    juliandate_max=row["juliandate_max"] or row["juliandate"],
                    files=tuple(sorted(set(files[row["id"]]))),
                    values={column: row[column] for column in RESULT_VALUES},
                    flags=int(row["flags"] or 0),
                    modified=_date(row["modified"]),
                )
            )
    finally:
        connection.close()
    return Iop4Database(
        path=path,
        migrations=migrations,
        sources=tuple(sources),
        calibrates=calibrates,
        results=tuple(results),
        skipped_results=tuple(skipped),
    )
