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
    FrameKeywords,
    HeaderDialect,
    header_number,
    instrume,
    sexagesimal,
    sexagesimal_pointing,
    slug,
)
from iopreport.instruments.keywords import (
    DIPOL_BANDS,
    DIPOL_EMPTY_TELESCOP_UNTIL,
    DIPOL_IMAGETYP,
    DIPOL_TELRA_FROM,
)

#: INSTRUME of DIPOL's ZWO cameras starts so (IOP4's DIPOL class); the simulator writes
#: the first camera's value.
DIPOL_INSTRUME_PREFIX = "ASI Camera"
DIPOL_INSTRUME = f"{DIPOL_INSTRUME_PREFIX} (1)"
#: FILTER names by band (the inverse of the reader's table).
FILTER_NAMES = {band: name for name, band in DIPOL_BANDS.items()}
#: IMAGETYP written per type (sky flats are Light Frames named skyflat).
IMAGETYP_WRITTEN = {
    "bias": "Bias Frame",
    "dark": "Dark Frame",
    "flat": "Light Frame",
    "light": "Light Frame",
}


class DipolDialect(HeaderDialect):
    """DIPOL."""

    flat_object_name = "skyflat"

    def instrument(self, header: fits.Header, night: dt.date) -> str | None:
        return "DIPOL" if instrume(header).startswith(DIPOL_INSTRUME_PREFIX) else None

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

    def instrume_value(self, name: str, night: dt.date) -> str:
        return DIPOL_INSTRUME

    def telescop_value(self, name: str, night: dt.date, telescop: str) -> str:
        return "" if self.telescop_may_be_empty(name, night) else telescop

    def write(self, header: fits.Header, frame: FrameKeywords, start_jd: float, start_iso: str):
        header["JD"] = (start_jd, "Julian Date at start of exposure")
        header["IMAGETYP"] = (IMAGETYP_WRITTEN[frame.imgtype], "Type of image")
        if frame.band:
            header["FILTER"] = FILTER_NAMES[frame.band]
        header["XORGSUBF"] = (frame.subframe_origin[0], "Subframe X position in binned pixels")
        header["YORGSUBF"] = (frame.subframe_origin[1], "Subframe Y position in binned pixels")
        if frame.obsmode == "polarimetry":
            header["NOTES"] = f"{frame.angle:g} deg"
        else:
            header["NOTES"] = " "
        header["FLIPSTAT"] = "Flip" if frame.flip else " "
        if frame.pointing is not None and frame.night >= DIPOL_TELRA_FROM:
            ra, dec = sexagesimal(*frame.pointing)
            header["TELRA"] = (ra, "Telescope RA (hours)")
            header["TELDEC"] = (dec, "Telescope Dec (deg)")
        header["SWCREATE"] = "MaxIm DL Version 6.40"

    def file_name(self, frame: FrameKeywords, counter: int) -> str:
        if frame.imgtype == "bias":
            return f"bias_IAR-{counter:04d}.fit"
        if frame.imgtype == "dark":
            return f"dark_{frame.exptime:g}s_IAR-{counter:04d}.fit"
        if frame.imgtype == "flat":
            return f"skyflat_{frame.band}_IAR-{counter:04d}.fit"
        if frame.obsmode == "polarimetry":
            return f"{slug(frame.object_name).upper()}_{frame.band}_IAR-{counter:04d}.fts"
        return f"{slug(frame.object_name)}_IAR-{counter:04d}{frame.band}.fit"


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
