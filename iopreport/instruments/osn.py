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
    FrameKeywords,
    HeaderDialect,
    header_number,
    instrume,
    sexagesimal,
    sexagesimal_pointing,
    slug,
)
from iopreport.instruments.keywords import (
    ANDOR150_SHORT_NAME_UNTIL,
    OSN_IMAGETYP,
    OSN_PHOTOMETRY_R,
    OSN_WHEEL_ANGLES,
    ROPER_UNTIL,
)

#: The OSN CCD instruments.
NAMES = ("AndorT90", "RoperT90", "AndorT150")
#: The T090's CCD cameras: RoperT90 until the swap, AndorT90 after (IOP4's telescope classes).
T090_CAMERAS = ("RoperT90", "AndorT90")
#: FILTER spellings of the polarizer wheel per angle (every spelling in use, in turn).
WHEEL_FILTERS = {
    angle: tuple(name for name, value in OSN_WHEEL_ANGLES.items() if value == angle)
    for angle in sorted(set(OSN_WHEEL_ANGLES.values()))
}
#: IMAGETYP written per type (the inverse of the reader's table).
IMAGETYP_WRITTEN = {kind: value for value, kind in OSN_IMAGETYP.items()}


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

    def camera_on(self, name: str, night: dt.date) -> str:
        return _camera_on(name, night)

    def instrume_value(self, name: str, night: dt.date) -> str:
        return _instrume_value(name, night)

    def write(self, header: fits.Header, frame: FrameKeywords, start_jd: float, start_iso: str):
        _write(header, frame, start_jd)

    def file_name(self, frame: FrameKeywords, counter: int) -> str:
        return _file_name(frame, counter)


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


def _camera_on(name: str, night: dt.date) -> str:
    if name in T090_CAMERAS:
        return T090_CAMERAS[0] if night < ROPER_UNTIL else T090_CAMERAS[1]
    return name


def _instrume_value(name: str, night: dt.date) -> str:
    if name in T090_CAMERAS:
        return name
    return "Andor" if night < ANDOR150_SHORT_NAME_UNTIL else name


def osn_filter(frame: FrameKeywords) -> str:
    """FILTER of a frame: its band, or its polarizer-wheel angle's spelling."""
    if frame.obsmode == "polarimetry":
        spellings = WHEEL_FILTERS[frame.angle]
        return spellings[frame.spelling % len(spellings)]
    if frame.band == "R" and frame.spelling % 2:
        return OSN_PHOTOMETRY_R[1]
    return frame.band or ""


def _write(header: fits.Header, frame: FrameKeywords, start_jd: float) -> None:
    header["JD"] = (start_jd, "Julian Date at start of exposure")
    header["IMAGETYP"] = IMAGETYP_WRITTEN[frame.imgtype]
    if frame.imgtype != "bias":
        header["FILTER"] = osn_filter(frame)
    if frame.pointing is not None:
        ra, dec = sexagesimal(*frame.pointing)
        header["OBJCTRA"] = (ra, "Nominal RA of the object (J2000)")
        header["OBJCTDEC"] = (dec, "Nominal Dec of the object (J2000)")
    header["CCD-TEMP"] = -80.0


def _file_name(frame: FrameKeywords, counter: int) -> str:
    if frame.imgtype == "bias":
        return f"Bias-{counter:04d}.fit"
    prefix = "Flat" if frame.imgtype == "flat" else slug(frame.object_name)
    suffix = osn_filter(frame) if frame.obsmode == "polarimetry" else (frame.band or "")
    return f"{prefix}-{counter:04d}{suffix}.fit"
