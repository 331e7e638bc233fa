"""The one definition of a result's columns: names, units, types and descriptions.

Used by :func:`iopreport.store.queries.results_table` (notebooks), ``iopreport
export`` (ECSV, VOTable, FITS, CSV) and the site's CSV and JSON downloads, so the
three name and scale every quantity alike. Polarization degrees (p, q, u) are
percentages and named ``*_pct``; angles are degrees (``chi_deg``); times are
given both as JD and MJD (UTC). Units are astropy unit strings (VOUnit-valid).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iopreport.airmass import airmass
from iopreport.store.bits import ManualFlags, ResultFlags
from iopreport.store.models import database_proxy

#: Modified Julian Date = JD − 2400000.5 (IAU 1997 resolution B1).
MJD_OFFSET = 2400000.5
#: Unix epoch (1970-01-01T00:00 UTC) as a Julian date.
JD_UNIX_EPOCH = 2440587.5


#: Julian dates of the first and last instants a datetime can hold (years 1 and 9999).
_JD_DATETIME_RANGE = (1721425.5, 5373484.499988426)


def jd_to_datetime(jd: float) -> dt.datetime:
    """UTC datetime of a Julian date (to the second).

    A stored value no datetime can hold (beyond the years 1-9999, NaN) gives
    the nearest end of that range instead of failing the whole site: such
    frames are refused at classification, so only an old store can hold one.
    """
    low, high = _JD_DATETIME_RANGE
    jd = low if not math.isfinite(jd) else min(max(jd, low), high)
    seconds = round((jd - JD_UNIX_EPOCH) * 86400.0)
    try:
        return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    except OverflowError:
        return dt.datetime.max.replace(microsecond=0) if jd > JD_UNIX_EPOCH else dt.datetime.min


@dataclass(frozen=True)
class ResultColumn:
    """One column: name, astropy unit (None for text), numpy dtype, description, digits.

    ``digits`` is the rounding the site applies (None: not rounded).
    """

    name: str
    unit: str | None
    dtype: str
    description: str
    digits: int | None = None


#: Every column of a result, in order.
RESULT_COLUMNS: tuple[ResultColumn, ...] = (
    ResultColumn("source", None, "str", "Source name (catalog.toml)"),
    ResultColumn("date", None, "str", "Mean time of the result, UTC, ISO 8601"),
    ResultColumn("jd", "d", "f8", "Mean Julian date of the result (UTC)", 6),
    ResultColumn("mjd", "d", "f8", "Modified Julian date, JD - 2400000.5 (UTC)", 6),
    ResultColumn("night", None, "str", "Night (date of the evening, local)"),
    ResultColumn("telescope", None, "str", "Telescope"),
    ResultColumn("instrument", None, "str", "Instrument"),
    ResultColumn("band", None, "str", "Johnson-Cousins band"),
    ResultColumn("mode", None, "str", "photometry or polarimetry"),
    ResultColumn("method", None, "str", "Reduction method (relphot, osn-wheel, dipol-16, ...)"),
    ResultColumn("exptime", "s", "f8", "Exposure time of one member frame"),
    ResultColumn("n_frames", None, "i8", "Number of member frames"),
    ResultColumn("airmass", "", "f8", "Airmass at the mean time, Young (1994)", 3),
    ResultColumn("seeing", "arcsec", "f8", "Mean seeing FWHM of the member frames", 2),
    ResultColumn("mag", "mag", "f8", "Calibrated magnitude (Vega, Johnson-Cousins)", 4),
    ResultColumn("mag_err", "mag", "f8", "Statistical error: photon noise, zero-point scatter", 4),
    ResultColumn("mag_sys_err", "mag", "f8", "Systematic error: calibrators' literature errors", 4),
    ResultColumn("zero_point", "mag", "f8", "Zero point from the calibrators", 4),
    ResultColumn("zero_point_err", "mag", "f8", "Error of the zero point", 4),
    ResultColumn("n_calibrators", None, "i8", "Calibrators used for the zero point (-1: none)"),
    ResultColumn("p_pct", "%", "f8", "Degree of linear polarization", 3),
    ResultColumn("p_pct_err", "%", "f8", "Statistical error of p", 3),
    ResultColumn("p_debiased_pct", "%", "f8", "p with the Ricean bias removed", 3),
    ResultColumn("p_sys_err_pct", "%", "f8", "Systematic error of p (instrumental)", 3),
    ResultColumn("chi_deg", "deg", "f8", "Polarization angle, East of North, [0, 180)", 2),
    ResultColumn("chi_deg_err", "deg", "f8", "Statistical error of chi", 2),
    ResultColumn("chi_sys_err_deg", "deg", "f8", "Systematic error of chi (zero angle)", 2),
    ResultColumn("q_pct", "%", "f8", "Normalised Stokes q, instrumental polarization removed", 3),
    ResultColumn("q_pct_err", "%", "f8", "Error of q", 3),
    ResultColumn("u_pct", "%", "f8", "Normalised Stokes u, instrumental polarization removed", 3),
    ResultColumn("u_pct_err", "%", "f8", "Error of u", 3),
    ResultColumn("mag_host_corrected", "mag", "f8", "R magnitude, host galaxy removed", 4),
    ResultColumn("mag_host_corrected_err", "mag", "f8", "Error of mag_host_corrected", 4),
    ResultColumn("p_host_corrected_pct", "%", "f8", "p, host galaxy's dilution removed", 3),
    ResultColumn("p_host_corrected_pct_err", "%", "f8", "Error of p_host_corrected_pct", 3),
    ResultColumn("flagged", None, "bool", "Any automatic or manual flag set"),
    ResultColumn("auto_flags", None, "str", "Automatic flags, '|'-separated"),
    ResultColumn("manual_flags", None, "str", "Manual flags (flags.toml), '|'-separated"),
    ResultColumn("flag_reasons", None, "str", "Reason of each flag, '; '-separated"),
    ResultColumn("members", None, "str", "Member raw files TELESCOPE/NIGHT/FILE, ' '-separated"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in RESULT_COLUMNS)
BY_NAME: dict[str, ResultColumn] = {column.name: column for column in RESULT_COLUMNS}

#: Store columns read as they are (name in RESULT_COLUMNS -> SQL) and those scaled to %.
_PLAIN_SQL = (
    ("jd", "r.juliandate"),
    ("night", "e.night"),
    ("telescope", "e.telescope"),
    ("instrument", "r.instrument"),
    ("band", "r.band"),
    ("mode", "r.mode"),
    ("method", "r.method"),
    ("exptime", "r.exptime"),
    ("n_frames", "r.n_frames"),
    ("mag", "r.mag"),
    ("mag_err", "r.mag_err"),
    ("mag_sys_err", "r.mag_sys_err"),
    ("zero_point", "r.mag_zp"),
    ("zero_point_err", "r.mag_zp_err"),
    ("n_calibrators", "r.n_calibrators"),
    ("p_pct", "r.p * 100"),
    ("p_pct_err", "r.p_err * 100"),
    ("p_debiased_pct", "r.p_debiased * 100"),
    ("p_sys_err_pct", "r.p_sys_err * 100"),
    ("chi_deg", "r.chi"),
    ("chi_deg_err", "r.chi_err"),
    ("chi_sys_err_deg", "r.chi_sys_err"),
    ("q_pct", "r.q * 100"),
    ("q_pct_err", "r.q_err * 100"),
    ("u_pct", "r.u * 100"),
    ("u_pct_err", "r.u_err * 100"),
    ("mag_host_corrected", "r.mag_host_corrected"),
    ("mag_host_corrected_err", "r.mag_host_corrected_err"),
    ("p_host_corrected_pct", "r.p_host_corrected * 100"),
    ("p_host_corrected_pct_err", "r.p_host_corrected_err * 100"),
)
_SEEING_SQL = (
    "(SELECT avg(f.seeing_fwhm_arcsec) FROM photo_pol_member m"
    " JOIN reduced_fit f ON f.rawfit_id = m.rawfit_id WHERE m.result_id = r.id)"
)


def _reasons(text: str | None) -> str:
    if not text or text == "[]":
        return ""
    return "; ".join(json.loads(text))


def result_records(where: str = "", params: Sequence = (), *, rounded: bool = False) -> list[dict]:
    """Results as dicts keyed by :data:`COLUMN_NAMES`, oldest first.

    Parameters
    ----------
    where
        SQL condition on ``r`` (photo_pol_result), ``e`` (epoch) and ``a``
        (astro_source), e.g. ``"r.astrosource_id = ?"``; empty for every result.
    params
        Its parameters.
    rounded
        Round to each column's ``digits`` (the site's downloads).

    Missing values are None. The airmass is computed from the source's position,
    the telescope's site and the time (:mod:`iopreport.airmass`).
    """
    plain = [name for name, _ in _PLAIN_SQL]
    sql = (
        f"SELECT a.name, a.ra_deg, a.dec_deg, {', '.join(s for _, s in _PLAIN_SQL)},"
        f" {_SEEING_SQL}, r.flags, r.manual_flags, r.flag_reasons, r.members_key"
        " FROM photo_pol_result r JOIN epoch e ON r.epoch_id = e.id"
        " JOIN astro_source a ON r.astrosource_id = a.id"
        + (f" WHERE {where}" if where else "")
        + " ORDER BY r.juliandate, r.id"
    )
    rows = database_proxy.execute_sql(sql, tuple(params)).fetchall()
    records = []
    places: dict[tuple, list[int]] = {}
    for row in rows:
        name, ra, dec = row[:3]
        record = dict(zip(plain, row[3 : 3 + len(plain)], strict=True))
        seeing, flags, manual, reasons, members = row[3 + len(plain) :]
        record["source"] = name
        record["night"] = str(record["night"])[:10]
        record["mjd"] = record["jd"] - MJD_OFFSET
        record["date"] = jd_to_datetime(record["jd"]).isoformat()
        record["seeing"] = seeing
        record["airmass"] = None
        record["flagged"] = bool(flags or manual)
        record["auto_flags"] = "|".join(ResultFlags.labels(flags or 0))
        record["manual_flags"] = "|".join(ManualFlags.labels(manual or 0))
        record["flag_reasons"] = _reasons(reasons)
        record["members"] = (members or "").replace("\n", " ")
        places.setdefault((ra, dec, record["telescope"]), []).append(len(records))
        records.append(record)
    for (ra, dec, telescope), indices in places.items():
        values = airmass([records[i]["jd"] for i in indices], ra, dec, telescope)
        for index, value in zip(indices, values, strict=True):
            records[index]["airmass"] = None if np.isnan(value) else float(value)
    ordered = []
    for record in records:
        record = {name: record[name] for name in COLUMN_NAMES}
        if rounded:
            for column in RESULT_COLUMNS:
                value = record[column.name]
                if column.digits is not None and value is not None:
                    record[column.name] = round(value, column.digits)
        ordered.append(record)
    return ordered


def records_table(records: Sequence[dict], meta: dict | None = None):
    """Records as an :class:`astropy.table.Table` with units and descriptions.

    Missing numbers are NaN in float columns and -1 in integer ones.
    """
    import astropy.units as u
    from astropy.table import Column, Table

    table = Table(meta=dict(meta or {}))
    for column in RESULT_COLUMNS:
        values = [record[column.name] for record in records]
        if column.dtype == "f8":
            data = np.array([np.nan if v is None else v for v in values], dtype=float)
        elif column.dtype == "i8":
            data = np.array([-1 if v is None else v for v in values], dtype=np.int64)
        elif column.dtype == "bool":
            data = np.array(values, dtype=bool)
        else:
            data = np.array(["" if v is None else str(v) for v in values], dtype=str)
            if data.dtype.itemsize == 0 or not len(data):
                data = np.array(values or [], dtype="U1")
        unit = None if column.unit is None else u.Unit(column.unit)
        table.add_column(Column(data, name=column.name, unit=unit, description=column.description))
    return table
