"""Header dialects: how each instrument family's FITS headers say what a frame is.

A dialect names the instruments an ``INSTRUME`` value designates and reads the
family's own keywords (frame type, band, polarimetric mode and angle, start
time, pointing). Classification (:mod:`iopreport.reduce.classify`) asks the
dialects and applies the checks every frame shares, so a new instrument family
is a new dialect here, never a name compared in the reduction. The keyword
values are in :mod:`iopreport.instruments.keywords`. Each dialect also *writes*
its keywords (:meth:`HeaderDialect.header_for`, :meth:`HeaderDialect.file_name`):
the inverse of its reading, used by the simulator, so that what is written and
what is read are defined in one place.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import re
import warnings
from dataclasses import dataclass

from astropy.io import fits

log = logging.getLogger(__name__)


class ClassificationError(ValueError):
    """A raw file whose header does not say what it is; the message is the recorded reason."""


@dataclass(frozen=True)
class FrameFields:
    """What a dialect reads from a header; the shared parts (size, exposure) are read apart.

    ``binning`` is None when the frame's binning is in the usual
    ``XBINNING``/``YBINNING`` (or ``CCDBINX``/``CCDBINY``) keywords.
    """

    imgtype: str  # bias | dark | flat | light
    band: str | None
    obsmode: str | None  # photometry | polarimetry (None for bias and dark)
    angle: float | None
    start_jd: float
    pointing: tuple[float, float] | None
    binning: tuple[int, int] | None = None


@dataclass(frozen=True)
class FrameKeywords:
    """What a frame is, to be written as its family's header keywords (the simulator's input).

    ``start`` is naive UTC; ``spelling`` picks among equivalent spellings a family
    uses for one value (the OSN wheel's ``R_45``/``R-45``); ``subframe_origin`` is
    DIPOL's ``XORGSUBF``/``YORGSUBF``.
    """

    instrument: str
    night: dt.date
    imgtype: str  # bias | dark | flat | light
    start: dt.datetime
    exptime: float
    binning: int
    object_name: str = ""
    band: str | None = None
    obsmode: str | None = None
    angle: float | None = None
    pointing: tuple[float, float] | None = None
    spelling: int = 0
    subframe_origin: tuple[int, int] = (0, 0)
    flip: bool = False


class HeaderDialect:
    """Base of a family's dialect: the hooks classification calls, with their defaults."""

    #: OBJECT of a sky flat as the family's observers write it.
    flat_object_name = "FLAT"

    def instrument(self, header: fits.Header, night: dt.date) -> str | None:
        """The instrument ``header`` designates on ``night`` (its ``INSTRUME``), or None."""
        return None

    def owns(self, name: str) -> bool:
        """Whether instrument ``name`` is read by this dialect."""
        return False

    def exptime_keyword(self, name: str) -> str:
        """The keyword holding the exposure time in seconds."""
        return "EXPTIME"

    def telescop_may_be_empty(self, name: str, night: dt.date) -> bool:
        """Whether an empty ``TELESCOP`` is a known quirk of ``name`` on ``night``."""
        return False

    def fields(self, header: fits.Header, name: str, filename: str) -> FrameFields:
        """Read the family's keywords (raises :class:`ClassificationError` naming the key)."""
        raise NotImplementedError

    # Writing: the inverse of the reading above (the simulator's headers).

    def camera_on(self, name: str, night: dt.date) -> str:
        """The instrument actually mounted for ``name`` on ``night`` (camera swaps)."""
        return name

    def instrume_value(self, name: str, night: dt.date) -> str:
        """The ``INSTRUME`` value ``name`` writes on ``night``."""
        raise NotImplementedError

    def telescop_value(self, name: str, night: dt.date, telescop: str) -> str:
        """The ``TELESCOP`` value written on ``night`` (``telescop`` unless a quirk says not)."""
        return telescop

    def header_for(self, frame: FrameKeywords, telescop: str) -> fits.Header:
        """Every keyword of ``frame``'s raw file except the data-shape ones."""
        from astropy.time import Time

        header = fits.Header()
        start = Time(frame.start, scale="utc")
        header["DATE-OBS"] = (start.isot[:23], "UTC start of exposure")
        header["EXPTIME"] = (round(frame.exptime, 3), "Exposure time in seconds")
        header["XBINNING"] = (frame.binning, "Binning factor in width")
        header["YBINNING"] = (frame.binning, "Binning factor in height")
        header["OBJECT"] = frame.object_name
        header["INSTRUME"] = self.instrume_value(frame.instrument, frame.night)
        header["TELESCOP"] = self.telescop_value(frame.instrument, frame.night, telescop)
        self.write(header, frame, start.jd, start.isot)
        return header

    def write(self, header: fits.Header, frame: FrameKeywords, start_jd: float, start_iso: str):
        """Add the family's own keywords (type, band, mode and angle, time, pointing)."""
        raise NotImplementedError

    def file_name(self, frame: FrameKeywords, counter: int) -> str:
        """The raw file's name in the family's archive pattern."""
        raise NotImplementedError


def header_number(header: fits.Header, key: str) -> float:
    """A finite number from ``key`` (raises naming the key)."""
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


def jd_from_iso(header: fits.Header, key: str) -> float:
    """Julian date (UTC) of an ISO date in ``key``."""
    from astropy.time import Time

    if key not in header:
        raise ClassificationError(f"{key} keyword missing")
    try:
        return float(Time(str(header[key]), format="isot", scale="utc").jd)
    except (ValueError, OverflowError):
        raise ClassificationError(f"{key} = {header[key]!r} is not an ISO date") from None


def sexagesimal_pointing(
    header: fits.Header, ra_key: str, dec_key: str
) -> tuple[float, float] | None:
    """RA (hours) and Dec (degrees) written sexagesimally, in degrees; None if absent or bad."""
    if ra_key not in header or dec_key not in header:
        return None
    from astropy.coordinates import Angle

    try:
        ra = Angle(str(header[ra_key]), unit="hourangle").deg
        dec = Angle(str(header[dec_key]), unit="deg").deg
    except ValueError:
        return None
    return float(ra), float(dec)


def degrees_pointing(
    header: fits.Header, ra_key: str = "RA", dec_key: str = "DEC"
) -> tuple[float, float] | None:
    """RA and Dec in degrees from two keywords; None if absent or not numbers."""
    try:
        return float(header[ra_key]), float(header[dec_key])
    except (KeyError, TypeError, ValueError):
        return None


def sexagesimal(ra_deg: float, dec_deg: float, sep: str = " ") -> tuple[str, str]:
    """RA (hours) and Dec (degrees) as written sexagesimally: the inverse of
    :func:`sexagesimal_pointing`."""
    from astropy.coordinates import Angle

    ra = Angle(ra_deg, unit="deg").to_string(unit="hourangle", sep=sep, precision=2, pad=True)
    dec = Angle(dec_deg, unit="deg").to_string(
        unit="deg", sep=sep, precision=1, alwayssign=True, pad=True
    )
    return ra, dec


def slug(text: str) -> str:
    """``text`` with only the characters archives keep in file names."""
    return re.sub(r"[^A-Za-z0-9+.]", "", text)


def instrume(header: fits.Header) -> str:
    """The header's ``INSTRUME`` value, stripped ('' when missing)."""
    return str(header.get("INSTRUME", "")).strip()


def readable_header(header: fits.Header, filename: str) -> tuple[fits.Header, dict[str, str]]:
    """``header`` without the cards astropy cannot parse, and those cards by keyword.

    Tolerant reading: a malformed card (an unparsable value, an unclosed string) is
    reported once per file and card, in the log with the file name and the card as
    written, and the rest of the header is used. The header is returned unchanged
    (the same object) when every card is readable.
    """
    bad: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for card in header.cards:
            try:
                _ = card.value
            except Exception as exc:  # astropy raises VerifyError, ValueError or a warning
                # the card as written (its ``image`` would try to fix it first)
                image = (getattr(card, "_image", None) or card.keyword).rstrip()
                bad[card.keyword] = image
                _report_malformed(filename, image, f"{type(exc).__name__}: {exc}")
    if not bad:
        return header, bad
    kept = fits.Header([card for card in header.cards if card.keyword not in bad])
    return kept, bad


@functools.lru_cache(maxsize=4096)
def _report_malformed(filename: str, image: str, reason: str) -> None:
    """Log a malformed card (once per file and card in a process)."""
    log.warning("%s: malformed header card %r ignored (%s)", filename, image, reason)
