"""Header keywords and file names of simulated frames, written by each family's dialect.

What each instrument writes (``INSTRUME`` and its dated quirks, the family's
keywords, the archive's file names) lives with the reading of the same keywords
in :mod:`iopreport.instruments` (:meth:`HeaderDialect.header_for`,
:meth:`HeaderDialect.file_name`); this module turns a :class:`FramePlan` into
what a dialect writes, and adds a header WCS when asked.
"""

from __future__ import annotations

import math

from astropy.io import fits
from astropy.wcs import WCS

from iopreport.instruments.dialect import FrameKeywords, HeaderDialect
from iopreport.simulate.frameplan import FramePlan


def frame_keywords(plan: FramePlan) -> FrameKeywords:
    """What ``plan`` is, as its dialect writes it."""
    return FrameKeywords(
        instrument=plan.instrument,
        night=plan.night,
        imgtype=plan.imgtype,
        start=plan.start,
        exptime=plan.exptime,
        binning=plan.binning,
        object_name=plan.object_name,
        band=plan.band,
        obsmode=plan.obsmode,
        angle=plan.angle,
        pointing=plan.pointing,
        spelling=plan.spelling,
        subframe_origin=(plan.window.x0, plan.window.y0),
        flip=plan.flip,
    )


def build_header(plan: FramePlan, telescop: str, dialect: HeaderDialect) -> fits.Header:
    """Every keyword of the raw file except the data-shape ones."""
    return dialect.header_for(frame_keywords(plan), telescop)


def file_name(plan: FramePlan, counter: int, dialect: HeaderDialect) -> str:
    """File name in the archive's own pattern (IOP4's telescope classes)."""
    return dialect.file_name(frame_keywords(plan), counter)


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
