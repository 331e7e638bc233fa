"""CAFOS at the CAHA 2.2 m: header dialect.

Rules from IOP4 (Escudero Pedrosa et al. 2024; the IOP4 code's CAFOS class):
``IMAGETYP``, the band from ``INSFLNAM``, Wollaston polarimetry from ``INSPOFPI``
and ``INSTRMOD`` with the plate angle in ``INSPOROT``, ``DATE`` at the start,
``RA``/``DEC`` in degrees.
"""

from __future__ import annotations

import datetime as dt
import re

from astropy.io import fits

from iopreport.instruments.dialect import (
    ClassificationError,
    FrameFields,
    FrameKeywords,
    HeaderDialect,
    degrees_pointing,
    header_number,
    instrume,
    jd_from_iso,
)
from iopreport.instruments.keywords import CAFOS_FILTER_PREFIXES, CAFOS_IMAGETYP

CAFOS_FILTER_RE = re.compile(
    "^(?:" + "|".join(re.escape(p) for p in CAFOS_FILTER_PREFIXES) + ")([UBVRI])$"
)
#: INSTRUME written by CAFOS (IOP4's telescope classes).
CAFOS_INSTRUME = "CAFOS 2.2"
#: INSFLNAM written per band (Johnson UBV, Cousins RI).
FILTER_NAMES = {band: f"{'Cous' if band in 'RI' else 'John'} {band}" for band in "UBVRI"}
#: IMAGETYP written per type (the inverse of the reader's table).
IMAGETYP_WRITTEN = {kind: value for value, kind in CAFOS_IMAGETYP.items()}
#: File-name type codes of the CAHA archive.
FILE_KINDS = {"bias": "bia", "flat": "fla", "light": "sci", "dark": "dar"}


class CafosDialect(HeaderDialect):
    """CAFOS."""

    def instrument(self, header: fits.Header, night: dt.date) -> str | None:
        return "CAFOS" if instrume(header) == CAFOS_INSTRUME else None

    def owns(self, name: str) -> bool:
        return name == "CAFOS"

    def fields(self, header: fits.Header, name: str, filename: str) -> FrameFields:
        imgtype, band, obsmode, angle = _frame(header)
        return FrameFields(
            imgtype,
            band,
            obsmode,
            angle,
            start_jd=jd_from_iso(header, "DATE"),
            pointing=degrees_pointing(header),
        )

    def instrume_value(self, name: str, night: dt.date) -> str:
        return CAFOS_INSTRUME

    def write(self, header: fits.Header, frame: FrameKeywords, start_jd: float, start_iso: str):
        header["DATE"] = (start_iso[:19], "UTC date and time of the start of exposure")
        header["IMAGETYP"] = IMAGETYP_WRITTEN[frame.imgtype]
        if frame.band:
            header["INSFLNAM"] = (FILTER_NAMES[frame.band], "Filter name")
        if frame.obsmode == "polarimetry":
            header["INSTRMOD"] = ("Polarizer", "Instrument mode")
            header["INSPOFPI"] = ("Wollaston", "Polarizer optics")
            header["INSPOROT"] = (frame.angle, "Half-wave plate rotation, deg")
        else:
            header["INSTRMOD"] = ("Imaging", "Instrument mode")
            header["INSPOFPI"] = ("FREE", "Polarizer optics")
        if frame.pointing is not None:
            header["RA"] = (round(frame.pointing[0], 6), "Telescope RA, deg")
            header["DEC"] = (round(frame.pointing[1], 6), "Telescope Dec, deg")
        header["DATASEC"] = "[1:800,1:800]"

    def file_name(self, frame: FrameKeywords, counter: int) -> str:
        stamp = frame.start.strftime("%Y%m%d-%H:%M:%S")
        return f"caf-{stamp}-{FILE_KINDS[frame.imgtype]}-agui.fits"


def _frame(header: fits.Header):
    raw_type = str(header.get("IMAGETYP", "")).strip().lower()
    if raw_type not in CAFOS_IMAGETYP:
        raise ClassificationError(
            f"IMAGETYP {header.get('IMAGETYP')!r} is not bias, dark, flat or science"
        )
    imgtype = CAFOS_IMAGETYP[raw_type]
    if imgtype in ("bias", "dark"):
        return imgtype, None, None, None
    match = CAFOS_FILTER_RE.match(str(header.get("INSFLNAM", "")).strip())
    if not match:
        raise ClassificationError(f"INSFLNAM {header.get('INSFLNAM')!r} is not a known filter")
    band = match.group(1)
    optics = str(header.get("INSPOFPI", "")).strip()
    if optics == "FREE":
        return imgtype, band, "photometry", None
    if optics == "Wollaston" and str(header.get("INSTRMOD", "")).strip() == "Polarizer":
        return imgtype, band, "polarimetry", header_number(header, "INSPOROT")
    raise ClassificationError(
        f"INSTRMOD {header.get('INSTRMOD')!r} / INSPOFPI {header.get('INSPOFPI')!r}: "
        "neither imaging nor Wollaston polarimetry"
    )
