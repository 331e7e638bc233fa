"""Does a flag select this result, or this raw frame? Pure functions, no store.

A result is known by its identity, never by a database id: its source and its
member raw files (``TEL/YYYY-MM-DD/filename`` locations, the lines of
``PhotoPolResult.members_key``), plus the attributes a flag can select on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from iopreport.flags.model import Flag
from iopreport.store.bits import ManualFlags

#: ``what`` -> the bit it sets in ``PhotoPolResult.manual_flags``.
WHAT_BITS = {
    "photometry": ManualFlags.BAD_PHOTOMETRY,
    "polarimetry": ManualFlags.BAD_POLARIMETRY,
    "frame": ManualFlags.BAD_FRAME,
}


@dataclass(frozen=True)
class ResultView:
    """What a flag can see of a result."""

    source: str
    mode: str
    instrument: str
    band: str
    telescope: str
    night: dt.date
    jd_min: float
    jd_max: float
    members: tuple[str, ...]  # raw file locations TEL/YYYY-MM-DD/filename

    @classmethod
    def members_of(cls, members_key: str) -> tuple[str, ...]:
        """Member locations from ``PhotoPolResult.members_key``."""
        return tuple(line for line in members_key.split("\n") if line)


@dataclass(frozen=True)
class FrameView:
    """What a flag can see of a raw frame."""

    fileloc: str  # TEL/YYYY-MM-DD/filename
    telescope: str
    night: dt.date
    instrument: str | None
    band: str | None
    mode: str | None
    jd: float | None
    target: str | None  # catalog name of the source the frame is pointed at


def _any(accepted: tuple, value) -> bool:
    return not accepted or value in accepted


def _source_ok(flag: Flag, name: str | None) -> bool:
    if not flag.source:
        return True
    return name is not None and name.casefold() in {s.casefold() for s in flag.source}


def file_matches(pattern: str, fileloc: str) -> bool:
    """``x.fits`` matches any ``*/x.fits``; ``TEL/night/x.fits`` only that location."""
    if "/" in pattern:
        return fileloc == pattern
    return fileloc.rsplit("/", 1)[-1] == pattern


def _file_ok(flag: Flag, filelocs: tuple[str, ...]) -> bool:
    if not flag.file:
        return True
    return any(file_matches(p, loc) for p in flag.file for loc in filelocs)


def _time_ok(flag: Flag, jd_min: float | None, jd_max: float | None) -> bool:
    if flag.jd_from is None and flag.jd_to is None:
        return True
    if jd_min is None or jd_max is None:
        return False
    if flag.jd_from is not None and jd_max < flag.jd_from:
        return False
    return not (flag.jd_to is not None and jd_min > flag.jd_to)


def selects_result(flag: Flag, result: ResultView) -> bool:
    """True when every selector of ``flag`` accepts ``result``.

    A time range selects a result whose span of member exposures overlaps it;
    a file selects a result that has that raw file among its members.
    """
    return (
        _any(flag.telescope, result.telescope)
        and _any(flag.night, result.night)
        and _any(flag.mode, result.mode)
        and _any(flag.instrument, result.instrument)
        and _any(flag.band, result.band)
        and _source_ok(flag, result.source)
        and _time_ok(flag, result.jd_min, result.jd_max)
        and _file_ok(flag, result.members)
    )


def selects_frame(flag: Flag, frame: FrameView) -> bool:
    """True when every selector of ``flag`` accepts raw ``frame`` (source = its target)."""
    return (
        _any(flag.telescope, frame.telescope)
        and _any(flag.night, frame.night)
        and _any(flag.mode, frame.mode)
        and _any(flag.instrument, frame.instrument)
        and _any(flag.band, frame.band)
        and _source_ok(flag, frame.target)
        and _time_ok(flag, frame.jd, frame.jd)
        and _file_ok(flag, (frame.fileloc,))
    )


def result_bits(flag: Flag, result: ResultView) -> ManualFlags:
    """Bits ``flag`` sets on ``result`` for bad photometry/polarimetry (0 if it does not).

    ``polarimetry`` applies to polarimetric results only; ``frame`` flags reach
    results through their member frames (:func:`iopreport.flags.apply.apply_flags`).
    """
    bits = ManualFlags(0)
    if not selects_result(flag, result):
        return bits
    if "photometry" in flag.what:
        bits |= ManualFlags.BAD_PHOTOMETRY
    if "polarimetry" in flag.what and result.mode == "polarimetry":
        bits |= ManualFlags.BAD_POLARIMETRY
    return bits
