"""Classification of raw files from their headers, by each instrument's rules.

Rules from the IOP4 reference (reference/iop4.md §3 for INSTRUME and TELESCOP
and their dated quirks, §4.1-4.2 for everything else), with these deliberate
differences:

* the stored Julian date is mid-exposure (IOP4 stores the start, §4.2);
* OSN dark frames are accepted as darks (IOP4 rejects them);
* every failure names the file and the keyword, and never stops the night:
  :func:`classify_file` raises :class:`ClassificationError` with a reason the
  caller records.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from iopreport.instruments import instrument
from iopreport.instruments.keywords import (
    CAFOS_FILTER_PREFIXES,
    CAFOS_IMAGETYP,
    DIPOL_BANDS,
    DIPOL_EMPTY_TELESCOP_UNTIL,
    DIPOL_IMAGETYP,
    OSN_IMAGETYP,
    OSN_PHOTOMETRY_R,
    OSN_WHEEL_ANGLES,
    ROPER_UNTIL,
)

CAFOS_FILTER_RE = re.compile(
    "^(?:" + "|".join(re.escape(p) for p in CAFOS_FILTER_PREFIXES) + ")([UBVRI])$"
)


#: Julian dates a frame may carry: 1980-01-01 (before any archive this reads) to
#: 2132-08-31 (JD 2500000.5, the end of the range flags.toml accepts too).
JD_PLAUSIBLE = (2444239.5, 2500000.5)
#: Longest exposure accepted, seconds (one day: longer is a header error).
EXPTIME_MAX_S = 86400.0
#: Binning factors accepted along each axis.
BINNING_RANGE = (1, 64)
#: Image sizes accepted along each axis, pixels (one pixel to a 64k-pixel mosaic row).
SIZE_RANGE = (1, 65536)


class ClassificationError(ValueError):
    """A raw file whose header does not say what it is; the message is the recorded reason."""


@dataclass(frozen=True)
class FrameInfo:
    """What a raw file is, read from its header."""

    instrument: str
    imgtype: str  # bias | dark | flat | light
    band: str | None
    obsmode: str | None  # photometry | polarimetry (None for bias and dark)
    angle: float | None  # polarizer or half-wave-plate angle, degrees
    juliandate: float  # mid-exposure, UTC
    exptime: float
    binning: tuple[int, int]
    size: tuple[int, int]  # (NAXIS1, NAXIS2)
    object_name: str
    pointing: tuple[float, float] | None = None  # RA, Dec in degrees from the header
    subframe_origin: tuple[int, int] = (0, 0)  # DIPOL XORGSUBF, YORGSUBF
    flipped: bool = False

    @property
    def imgsize(self) -> str:
        return f"{self.size[0]}x{self.size[1]}"

    @property
    def binning_text(self) -> str:
        return f"{self.binning[0]}x{self.binning[1]}"


def classify_file(path: Path | str, telescope: str, night: dt.date) -> FrameInfo:
    """Read ``path``'s primary header and classify it.

    Raises
    ------
    ClassificationError
        With a reason naming the keyword (or the read error) when the file
        cannot be classified.
    """
    path = Path(path)
    try:
        header = fits.getheader(path, 0)
    except Exception as exc:  # astropy raises many kinds for damaged files
        raise ClassificationError(f"cannot read FITS header: {exc}") from None
    return classify_header(header, path.name, telescope, night)


def instrument_from_header(header: fits.Header, telescope: str, night: dt.date) -> str:
    """Instrument name from INSTRUME and the night (reference/iop4.md §3)."""
    value = str(header.get("INSTRUME", "")).strip()
    if not value:
        raise ClassificationError("INSTRUME keyword missing or empty")
    from iopreport.instruments.generic import GENERIC_BY_INSTRUME

    if value in GENERIC_BY_INSTRUME:
        generic = GENERIC_BY_INSTRUME[value]
        if generic.telescope != telescope:
            raise ClassificationError(f"INSTRUME {value!r} is not an instrument of {telescope}")
        telescop = str(header.get("TELESCOP", "")).strip()
        if generic.telescop and telescop != generic.telescop:
            raise ClassificationError(f"TELESCOP {telescop!r} is not {generic.telescop!r}")
        return generic.name
    if value == "RoperT90":
        name = "RoperT90" if night < ROPER_UNTIL else "AndorT90"
    elif value == "AndorT90":
        name = "AndorT90"
    elif value in ("Andor", "AndorT150"):
        name = "AndorT150"
    elif value == "CAFOS 2.2":
        name = "CAFOS"
    elif value.startswith("ASI Camera"):
        name = "DIPOL"
    else:
        raise ClassificationError(f"unknown INSTRUME {value!r}")
    spec = instrument(name)
    if spec.telescope != telescope:
        raise ClassificationError(f"INSTRUME {value!r} is not an instrument of {telescope}")
    telescop = str(header.get("TELESCOP", "")).strip()
    empty_allowed = name == "DIPOL" and night < DIPOL_EMPTY_TELESCOP_UNTIL
    if telescop and telescop != spec.telescop_keyword:
        raise ClassificationError(
            f"TELESCOP {telescop!r} does not match {telescope} ({spec.telescop_keyword!r})"
        )
    if not telescop and not empty_allowed and "TELESCOP" in header:
        raise ClassificationError("TELESCOP is empty")
    return name


def classify_header(
    header: fits.Header, filename: str, telescope: str, night: dt.date
) -> FrameInfo:
    """Classify from an already-read header (see :func:`classify_file`).

    A header card astropy cannot parse (found when its value is read) is a
    ClassificationError like any other bad value, never another exception.
    """
    try:
        return _classify_header(header, filename, telescope, night)
    except ClassificationError:
        raise
    except (fits.VerifyError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise ClassificationError(f"header not usable: {type(exc).__name__}: {exc}") from None


def _classify_header(
    header: fits.Header, filename: str, telescope: str, night: dt.date
) -> FrameInfo:
    name = instrument_from_header(header, telescope, night)
    from iopreport.instruments.generic import GENERIC_BY_INSTRUME

    generic = next((g for g in GENERIC_BY_INSTRUME.values() if g.name == name), None)
    if generic is not None:
        return _generic(header, generic)
    if header.get("NAXIS") != 2:
        raise ClassificationError(f"NAXIS is {header.get('NAXIS')!r}, not 2")
    size = (int(header["NAXIS1"]), int(header["NAXIS2"]))
    exptime = _number(header, "EXPTIME")
    binning = (_binning(header, "XBINNING", "CCDBINX"), _binning(header, "YBINNING", "CCDBINY"))
    object_name = str(header.get("OBJECT", "")).strip()
    if name == "CAFOS":
        imgtype, band, obsmode, angle = _cafos(header)
        start_jd = _jd_from_iso(header, "DATE")
        pointing = _degrees_pointing(header)
    elif name == "DIPOL":
        imgtype, band, obsmode, angle = _dipol(header, object_name)
        start_jd = _number(header, "JD")
        pointing = _sexagesimal_pointing(header, "TELRA", "TELDEC")
    else:
        imgtype, band, obsmode, angle = _osn_ccd(header, object_name, filename)
        start_jd = _number(header, "JD")
        pointing = _sexagesimal_pointing(header, "OBJCTRA", "OBJCTDEC")
    return _checked(
        FrameInfo(
            instrument=name,
            imgtype=imgtype,
            band=band,
            obsmode=obsmode,
            angle=angle,
            juliandate=start_jd + exptime / 2.0 / 86400.0,
            exptime=exptime,
            binning=binning,
            size=size,
            object_name=object_name,
            pointing=pointing,
            subframe_origin=(_integer(header, "XORGSUBF"), _integer(header, "YORGSUBF")),
            flipped=str(header.get("FLIPSTAT", "")).strip() == "Flip",
        ),
        start_jd,
    )


def _generic(header: fits.Header, config) -> FrameInfo:
    """An instrument described in config.toml: keywords and value maps from its table."""
    from astropy.time import Time

    if header.get("NAXIS") != 2:
        raise ClassificationError(f"NAXIS is {header.get('NAXIS')!r}, not 2")
    raw_type = str(header.get(config.type_keyword, "")).strip()
    if raw_type not in config.frame_types:
        known = ", ".join(repr(v) for v in config.frame_types)
        raise ClassificationError(f"{config.type_keyword} {raw_type!r} is none of {known}")
    imgtype = config.frame_types[raw_type]
    exptime = _number(header, config.exptime_keyword)
    if imgtype == "dark" and exptime == 0 and config.zero_second_dark_is_bias:
        imgtype = "bias"
    band = obsmode = None
    if imgtype in ("flat", "light"):
        value = str(header.get(config.filter_keyword, "")).strip()
        if not value:
            raise ClassificationError(f"{config.filter_keyword} keyword missing or empty")
        band = config.bands.get(value, value)
        obsmode = "photometry"
    if config.date_keyword not in header:
        raise ClassificationError(f"{config.date_keyword} keyword missing")
    date = header[config.date_keyword]
    try:
        if config.date_format == "isot":
            start_jd = float(Time(str(date), format="isot", scale="utc").jd)
        elif config.date_format == "mjd":
            start_jd = float(date) + 2400000.5
        else:
            start_jd = float(date)
    except (ValueError, TypeError, OverflowError):
        raise ClassificationError(
            f"{config.date_keyword} = {date!r} is not a {config.date_format} date"
        ) from None
    binning = _binning(header, config.binning_keyword, config.binning_keyword)
    pointing = None
    try:
        pointing = (float(header[config.ra_keyword]), float(header[config.dec_keyword]))
    except (KeyError, TypeError, ValueError):
        pointing = None
    return _checked(
        FrameInfo(
            instrument=config.name,
            imgtype=imgtype,
            band=band,
            obsmode=obsmode,
            angle=None,
            juliandate=start_jd + exptime / 2.0 / 86400.0,
            exptime=exptime,
            binning=(binning, binning),
            size=(int(header["NAXIS1"]), int(header["NAXIS2"])),
            object_name=str(header.get("OBJECT", "")).strip(),
            pointing=pointing,
        ),
        start_jd,
    )


def _checked(info: FrameInfo, start_jd: float) -> FrameInfo:
    """``info`` if its header values are physically possible, else a ClassificationError.

    Julian date within :data:`JD_PLAUSIBLE`; exposure above 0 s (0 s allowed
    for bias frames) and at most :data:`EXPTIME_MAX_S`; binning within
    :data:`BINNING_RANGE`; image size within :data:`SIZE_RANGE`.
    """
    low, high = JD_PLAUSIBLE
    if not low <= start_jd <= high:
        raise ClassificationError(
            f"Julian date {start_jd!r} is outside {low}..{high} (1980 to 2132): not a real date"
        )
    if info.exptime < 0 or (info.exptime == 0 and info.imgtype != "bias"):
        raise ClassificationError(
            f"exposure time {info.exptime!r} s on a {info.imgtype} frame: must be above 0"
        )
    if info.exptime > EXPTIME_MAX_S:
        raise ClassificationError(
            f"exposure time {info.exptime!r} s is longer than {EXPTIME_MAX_S:g} s"
        )
    for axis, factor in zip("XY", info.binning, strict=True):
        if not BINNING_RANGE[0] <= factor <= BINNING_RANGE[1]:
            raise ClassificationError(
                f"{axis} binning {factor} is outside {BINNING_RANGE[0]}..{BINNING_RANGE[1]}"
            )
    for axis, pixels in zip((1, 2), info.size, strict=True):
        if not SIZE_RANGE[0] <= pixels <= SIZE_RANGE[1]:
            raise ClassificationError(
                f"NAXIS{axis} = {pixels} is outside {SIZE_RANGE[0]}..{SIZE_RANGE[1]}"
            )
    return info


def _integer(header: fits.Header, key: str, default: int = 0) -> int:
    value = header.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ClassificationError(f"{key} = {value!r} is not an integer") from None


def _number(header: fits.Header, key: str) -> float:
    if key not in header:
        raise ClassificationError(f"{key} keyword missing")
    value = header[key]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ClassificationError(f"{key} = {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ClassificationError(f"{key} = {value!r} is not finite")
    return number


def _binning(header: fits.Header, key: str, alternative: str) -> int:
    value = header.get(key, header.get(alternative, 1))
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ClassificationError(f"{key} = {value!r} is not an integer") from None


def _jd_from_iso(header: fits.Header, key: str) -> float:
    from astropy.time import Time

    if key not in header:
        raise ClassificationError(f"{key} keyword missing")
    try:
        return float(Time(str(header[key]), format="isot", scale="utc").jd)
    except (ValueError, OverflowError):
        raise ClassificationError(f"{key} = {header[key]!r} is not an ISO date") from None


def _sexagesimal_pointing(header: fits.Header, ra_key: str, dec_key: str):
    if ra_key not in header or dec_key not in header:
        return None
    from astropy.coordinates import Angle

    try:
        ra = Angle(str(header[ra_key]), unit="hourangle").deg
        dec = Angle(str(header[dec_key]), unit="deg").deg
    except ValueError:
        return None
    return float(ra), float(dec)


def _degrees_pointing(header: fits.Header):
    try:
        return float(header["RA"]), float(header["DEC"])
    except (KeyError, TypeError, ValueError):
        return None


def _osn_ccd(header: fits.Header, object_name: str, filename: str):
    """AndorT90, RoperT90, AndorT150 (reference/iop4.md §4.2, OSN CCD cameras)."""
    raw_type = str(header.get("IMAGETYP", "")).strip().upper()
    if raw_type not in OSN_IMAGETYP:
        raise ClassificationError(
            f"IMAGETYP {header.get('IMAGETYP')!r} is not BIAS, DARK, FLAT or LIGHT"
        )
    imgtype = OSN_IMAGETYP[raw_type]
    if imgtype == "light":  # the reference's workaround for mislabelled calibrations
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


def _cafos(header: fits.Header):
    """CAFOS (reference/iop4.md §4.2)."""
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
        angle = _number(header, "INSPOROT")
        return imgtype, band, "polarimetry", angle
    raise ClassificationError(
        f"INSTRMOD {header.get('INSTRMOD')!r} / INSPOFPI {header.get('INSPOFPI')!r}: "
        "neither imaging nor Wollaston polarimetry"
    )


def _dipol(header: fits.Header, object_name: str):
    """DIPOL (reference/iop4.md §4.2)."""
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
