"""Header keywords and file names exactly as each instrument writes them.

Rules from IOP4's telescope classes (TELESCOP, INSTRUME and their dated quirks,
archive layouts) and §4.2 (per-instrument keywords), and from the real
MaxIm DL / Andor headers in the real test frames for keyword style.
"""

from __future__ import annotations

import math
import re

from astropy.coordinates import Angle
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from iopreport.instruments.keywords import (
    ANDOR150_SHORT_NAME_UNTIL,
    CAFOS_IMAGETYP,
    DIPOL_BANDS,
    DIPOL_EMPTY_TELESCOP_UNTIL,
    DIPOL_TELRA_FROM,
    OSN_WHEEL_ANGLES,
)
from iopreport.simulate.plan import FramePlan

#: FILTER spellings of the OSN polarizer wheel per angle; the simulator
#: rotates through the alternatives.
OSN_WHEEL_FILTERS = {
    angle: tuple(name for name, value in OSN_WHEEL_ANGLES.items() if value == angle)
    for angle in sorted(set(OSN_WHEEL_ANGLES.values()))
}
#: CAFOS INSFLNAM written per band (Johnson UBV, Cousins RI).
CAFOS_FILTER_NAMES = {band: f"{'Cous' if band in 'RI' else 'John'} {band}" for band in "UBVRI"}
#: DIPOL FILTER names by band (the inverse of the reader's table).
DIPOL_FILTER_NAMES = {band: name for name, band in DIPOL_BANDS.items()}
#: DIPOL IMAGETYP written per type (sky flats are Light Frames, as at OSN).
DIPOL_IMAGETYP_WRITTEN = {
    "bias": "Bias Frame",
    "dark": "Dark Frame",
    "flat": "Light Frame",
    "light": "Light Frame",
}
#: CAFOS IMAGETYP written per type.
CAFOS_IMAGETYP_WRITTEN = {kind: value for value, kind in CAFOS_IMAGETYP.items()}


def instrume_keyword(plan: FramePlan) -> str:
    """INSTRUME as written on that night (IOP4's telescope classes)."""
    if plan.instrument in ("AndorT90", "RoperT90"):
        return plan.instrument
    if plan.instrument == "AndorT150":
        return "Andor" if plan.night < ANDOR150_SHORT_NAME_UNTIL else "AndorT150"
    if plan.instrument == "CAFOS":
        return "CAFOS 2.2"
    return "ASI Camera (1)"


def telescop_keyword(plan: FramePlan, default: str) -> str:
    if plan.instrument == "DIPOL" and plan.night < DIPOL_EMPTY_TELESCOP_UNTIL:
        return ""
    return default


def sexagesimal(ra_deg: float, dec_deg: float, sep: str = " ") -> tuple[str, str]:
    ra = Angle(ra_deg, unit="deg").to_string(unit="hourangle", sep=sep, precision=2, pad=True)
    dec = Angle(dec_deg, unit="deg").to_string(
        unit="deg", sep=sep, precision=1, alwayssign=True, pad=True
    )
    return ra, dec


def build_header(plan: FramePlan, telescop: str) -> fits.Header:
    """Every keyword of the raw file except the data-shape ones."""
    header = fits.Header()
    start = Time(plan.start, scale="utc")
    header["DATE-OBS"] = (start.isot[:23], "UTC start of exposure")
    header["EXPTIME"] = (round(plan.exptime, 3), "Exposure time in seconds")
    header["XBINNING"] = (plan.binning, "Binning factor in width")
    header["YBINNING"] = (plan.binning, "Binning factor in height")
    header["OBJECT"] = plan.object_name
    header["INSTRUME"] = instrume_keyword(plan)
    header["TELESCOP"] = telescop_keyword(plan, telescop)
    if plan.instrument == "CAFOS":
        _cafos(header, plan, start)
    elif plan.instrument == "DIPOL":
        _dipol(header, plan, start)
    else:
        _osn_ccd(header, plan, start)
    return header


def _osn_ccd(header: fits.Header, plan: FramePlan, start: Time) -> None:
    header["JD"] = (start.jd, "Julian Date at start of exposure")
    header["IMAGETYP"] = {"bias": "BIAS", "flat": "FLAT", "light": "LIGHT", "dark": "DARK"}[
        plan.imgtype
    ]
    if plan.imgtype != "bias":
        header["FILTER"] = osn_filter(plan)
    if plan.pointing is not None:
        ra, dec = sexagesimal(*plan.pointing)
        header["OBJCTRA"] = (ra, "Nominal RA of the object (J2000)")
        header["OBJCTDEC"] = (dec, "Nominal Dec of the object (J2000)")
    header["CCD-TEMP"] = -80.0


def osn_filter(plan: FramePlan) -> str:
    if plan.obsmode == "polarimetry":
        spellings = OSN_WHEEL_FILTERS[plan.angle]
        return spellings[plan.spelling % len(spellings)]
    if plan.band == "R" and plan.spelling % 2:
        return "R Johnson"
    return plan.band or ""


def _cafos(header: fits.Header, plan: FramePlan, start: Time) -> None:
    header["DATE"] = (start.isot[:19], "UTC date and time of the start of exposure")
    header["IMAGETYP"] = CAFOS_IMAGETYP_WRITTEN[plan.imgtype]
    if plan.band:
        header["INSFLNAM"] = (CAFOS_FILTER_NAMES[plan.band], "Filter name")
    if plan.obsmode == "polarimetry":
        header["INSTRMOD"] = ("Polarizer", "Instrument mode")
        header["INSPOFPI"] = ("Wollaston", "Polarizer optics")
        header["INSPOROT"] = (plan.angle, "Half-wave plate rotation, deg")
    else:
        header["INSTRMOD"] = ("Imaging", "Instrument mode")
        header["INSPOFPI"] = ("FREE", "Polarizer optics")
    if plan.pointing is not None:
        header["RA"] = (round(plan.pointing[0], 6), "Telescope RA, deg")
        header["DEC"] = (round(plan.pointing[1], 6), "Telescope Dec, deg")
    header["DATASEC"] = "[1:800,1:800]"


def _dipol(header: fits.Header, plan: FramePlan, start: Time) -> None:
    header["JD"] = (start.jd, "Julian Date at start of exposure")
    header["IMAGETYP"] = (DIPOL_IMAGETYP_WRITTEN[plan.imgtype], "Type of image")
    if plan.band:
        header["FILTER"] = DIPOL_FILTER_NAMES[plan.band]
    header["XORGSUBF"] = (plan.window.x0, "Subframe X position in binned pixels")
    header["YORGSUBF"] = (plan.window.y0, "Subframe Y position in binned pixels")
    if plan.obsmode == "polarimetry":
        header["NOTES"] = f"{plan.angle:g} deg"
    else:
        header["NOTES"] = " "
    header["FLIPSTAT"] = "Flip" if plan.flip else " "
    if plan.pointing is not None and plan.night >= DIPOL_TELRA_FROM:
        ra, dec = sexagesimal(*plan.pointing)
        header["TELRA"] = (ra, "Telescope RA (hours)")
        header["TELDEC"] = (dec, "Telescope Dec (deg)")
    header["SWCREATE"] = "MaxIm DL Version 6.40"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9+.]", "", text)


def file_name(plan: FramePlan, counter: int) -> str:
    """File name in each archive's own pattern (IOP4's telescope classes)."""
    if plan.instrument == "CAFOS":
        stamp = plan.start.strftime("%Y%m%d-%H:%M:%S")
        kind = {"bias": "bia", "flat": "fla", "light": "sci", "dark": "dar"}[plan.imgtype]
        return f"caf-{stamp}-{kind}-agui.fits"
    if plan.instrument == "DIPOL":
        if plan.imgtype == "bias":
            return f"bias_IAR-{counter:04d}.fit"
        if plan.imgtype == "dark":
            return f"dark_{plan.exptime:g}s_IAR-{counter:04d}.fit"
        if plan.imgtype == "flat":
            return f"skyflat_{plan.band}_IAR-{counter:04d}.fit"
        if plan.obsmode == "polarimetry":
            return f"{_slug(plan.object_name).upper()}_{plan.band}_IAR-{counter:04d}.fts"
        return f"{_slug(plan.object_name)}_IAR-{counter:04d}{plan.band}.fit"
    if plan.imgtype == "bias":
        return f"Bias-{counter:04d}.fit"
    prefix = "Flat" if plan.imgtype == "flat" else _slug(plan.object_name)
    suffix = osn_filter(plan) if plan.obsmode == "polarimetry" else (plan.band or "")
    return f"{prefix}-{counter:04d}{suffix}.fit"


def add_header_wcs(header: fits.Header, wcs: WCS, offset_arcsec: float = 0.0) -> None:
    """Write a celestial TAN WCS into ``header`` (as a telescope system that knows where it
    points would), ``offset_arcsec`` north of the true one (0: exact).

    The reduction uses such a WCS only when no index file solves the frame, and only
    after checking it against the catalog sources in the field.
    """
    shifted = wcs.deepcopy()
    crval = shifted.wcs.crval
    shifted.wcs.crval = [crval[0], crval[1] + offset_arcsec / 3600.0]
    if not math.isfinite(shifted.wcs.crval[1]) or abs(shifted.wcs.crval[1]) > 90:
        raise ValueError(f"a header WCS offset of {offset_arcsec} arcsec leaves the sky")
    header.update(shifted.to_header())
