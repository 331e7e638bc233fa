"""DIPOL at the OSN T090 (MaxIm DL headers): header dialect.

Rules from IOP4 (Escudero Pedrosa et al. 2024; the IOP4 code's DIPOL class):
``INSTRUME`` ``ASI Camera ...``, MaxIm DL's ``IMAGETYP`` (sky flats are Light
Frames named skyflat), ``FILTER`` Red/Green/Blue, ``NOTES`` reading
``"<angle> deg"`` on polarimetric frames, ``JD`` at the start, ``TELRA``/``TELDEC``.
"""

from __future__ import annotations

import datetime as dt

from astropy.io import fits

from iopreport.instruments.dialect import (
    ClassificationError,
    FrameFields,
    HeaderDialect,
    header_number,
    instrume,
    sexagesimal_pointing,
)
from iopreport.instruments.keywords import (
    DIPOL_BANDS,
    DIPOL_EMPTY_TELESCOP_UNTIL,
    DIPOL_IMAGETYP,
)


class DipolDialect(HeaderDialect):
    """DIPOL."""

    def instrument(self, header: fits.Header, night: dt.date) -> str | None:
        return "DIPOL" if instrume(header).startswith("ASI Camera") else None

    def owns(self, name: str) -> bool:
        return name == "DIPOL"

    def telescop_may_be_empty(self, name: str, night: dt.date) -> bool:
        return night < DIPOL_EMPTY_TELESCOP_UNTIL

    def fields(self, header: fits.Header, name: str, filename: str) -> FrameFields:
        object_name = str(header.get("OBJECT", "")).strip()
        imgtype, band, obsmode, angle = _frame(header, object_name)
        return FrameFields(
            imgtype,
            band,
            obsmode,
            angle,
            start_jd=header_number(header, "JD"),
            pointing=sexagesimal_pointing(header, "TELRA", "TELDEC"),
        )


def _frame(header: fits.Header, object_name: str):
    raw_type = str(header.get("IMAGETYP", "")).strip()
    if raw_type not in DIPOL_IMAGETYP:
        raise ClassificationError(f"IMAGETYP {raw_type!r} is not a MaxIm DL frame type")
    imgtype = DIPOL_IMAGETYP[raw_type]
    if imgtype == "light" and "skyflat" in object_name.lower():
        imgtype = "flat"
    if imgtype in ("bias", "dark"):
        return imgtype, None, None, None
    filter_name = str(header.get("FILTER", "")).strip()
    if filter_name not in DIPOL_BANDS:
        raise ClassificationError(f"FILTER {filter_name!r} is not Red, Green or Blue")
    band = DIPOL_BANDS[filter_name]
    if imgtype == "flat":
        return imgtype, band, "photometry", None
    if "NOTES" not in header:
        raise ClassificationError("NOTES keyword missing: cannot tell photometry from polarimetry")
    notes = str(header["NOTES"]).strip()
    if "deg" not in notes:
        return imgtype, band, "photometry", None
    try:
        angle = float(notes.split()[0])
    except (IndexError, ValueError):
        raise ClassificationError(f"NOTES {notes!r}: no half-wave-plate angle") from None
    return imgtype, band, "polarimetry", angle
