"""OSN CCD cameras (AndorT90, RoperT90 at the T090; AndorT150 at the T150): header dialect.

Rules from IOP4 (Escudero Pedrosa et al. 2024; the IOP4 code's OSN CCD classes):
``INSTRUME`` with its dated quirks, ``IMAGETYP``, ``FILTER`` (a band, or a
polarizer-wheel angle on the R filter), ``JD`` at the start, ``OBJCTRA``/``OBJCTDEC``.
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
    OSN_IMAGETYP,
    OSN_PHOTOMETRY_R,
    OSN_WHEEL_ANGLES,
    ROPER_UNTIL,
)

#: The OSN CCD instruments.
NAMES = ("AndorT90", "RoperT90", "AndorT150")


class OsnCcdDialect(HeaderDialect):
    """AndorT90, RoperT90 and AndorT150."""

    def instrument(self, header: fits.Header, night: dt.date) -> str | None:
        value = instrume(header)
        if value == "RoperT90":  # the control PC kept the name after the camera swap
            return "RoperT90" if night < ROPER_UNTIL else "AndorT90"
        if value == "AndorT90":
            return "AndorT90"
        if value in ("Andor", "AndorT150"):
            return "AndorT150"
        return None

    def owns(self, name: str) -> bool:
        return name in NAMES

    def fields(self, header: fits.Header, name: str, filename: str) -> FrameFields:
        object_name = str(header.get("OBJECT", "")).strip()
        imgtype, band, obsmode, angle = _frame(header, object_name, filename)
        return FrameFields(
            imgtype,
            band,
            obsmode,
            angle,
            start_jd=header_number(header, "JD"),
            pointing=sexagesimal_pointing(header, "OBJCTRA", "OBJCTDEC"),
        )


def _frame(header: fits.Header, object_name: str, filename: str):
    raw_type = str(header.get("IMAGETYP", "")).strip().upper()
    if raw_type not in OSN_IMAGETYP:
        raise ClassificationError(
            f"IMAGETYP {header.get('IMAGETYP')!r} is not BIAS, DARK, FLAT or LIGHT"
        )
    imgtype = OSN_IMAGETYP[raw_type]
    if imgtype == "light":  # IOP4's workaround for mislabelled calibrations
        for word, kind in (("FLAT", "flat"), ("BIAS", "bias")):
            if word in object_name.upper() and word in filename.upper():
                imgtype = kind
    if imgtype in ("bias", "dark"):
        return imgtype, None, None, None
    value = str(header.get("FILTER", "")).strip()
    if not value or value.upper() == "CLEAR":
        if imgtype == "flat":
            raise ClassificationError(f"FILTER {value!r}: flats without a band cannot be used")
        raise ClassificationError(f"FILTER {value!r} on a science frame")
    band = value[0].upper()
    if band not in "UBVRI":
        raise ClassificationError(f"FILTER {value!r} is not a U, B, V, R or I filter")
    if band != "R" or value in OSN_PHOTOMETRY_R:
        return imgtype, band, "photometry", None
    if value not in OSN_WHEEL_ANGLES:
        raise ClassificationError(f"FILTER {value!r} is not a known polarizer angle")
    return imgtype, "R", "polarimetry", OSN_WHEEL_ANGLES[value]
