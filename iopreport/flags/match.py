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
    return name is not None and name.casefold() in flag.sources_folded


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
    results through their member frames (:func:`iopreport.flags.manual.apply_flags`).
    """
    bits = ManualFlags(0)
    if not selects_result(flag, result):
        return bits
    if "photometry" in flag.what:
        bits |= ManualFlags.BAD_PHOTOMETRY
    if "polarimetry" in flag.what and result.mode == "polarimetry":
        bits |= ManualFlags.BAD_POLARIMETRY
    return bits


#: A time range spanning more days than this is checked against every result.
_MAX_INDEXED_DAYS = 400


class FlagIndex:
    """Flags bucketed by what they select on, so each result is tested against few of them.

    A flag goes in one bucket: its sources, else its file names, else its
    nights, else the days its time range covers, else "anywhere". The
    candidates of a result are the flags of its buckets, in file order; the
    exact test is still :func:`selects_result` / :func:`selects_frame`.
    """

    def __init__(self, flags) -> None:
        self.order = {id(f): i for i, f in enumerate(flags)}
        self.by_source: dict[str, list[Flag]] = {}
        self.by_file: dict[str, list[Flag]] = {}
        self.by_night: dict[dt.date, list[Flag]] = {}
        self.by_day: dict[int, list[Flag]] = {}
        self.anywhere: list[Flag] = []
        for flag in flags:
            if flag.source:
                for name in flag.source:
                    self.by_source.setdefault(name.casefold(), []).append(flag)
            elif flag.file:
                for pattern in flag.file:  # a location, or a bare name at any location
                    self.by_file.setdefault(pattern, []).append(flag)
            elif flag.night:
                for night in flag.night:
                    self.by_night.setdefault(night, []).append(flag)
            elif (
                flag.jd_from is not None
                and flag.jd_to is not None
                and flag.jd_to - flag.jd_from <= _MAX_INDEXED_DAYS
            ):
                for day in range(int(flag.jd_from), int(flag.jd_to) + 1):
                    self.by_day.setdefault(day, []).append(flag)
            else:
                self.anywhere.append(flag)

    def candidates(
        self,
        source: str | None,
        night: dt.date,
        files: tuple[str, ...],
        jd_min: float | None,
        jd_max: float | None,
    ) -> list[Flag]:
        """Flags that may select something with these attributes, in file order."""
        found: dict[int, Flag] = {}
        if source is not None:
            for flag in self.by_source.get(source.casefold(), ()):
                found[id(flag)] = flag
        if self.by_file:
            for location in files:
                for key in (location, location.rsplit("/", 1)[-1]):
                    for flag in self.by_file.get(key, ()):
                        found[id(flag)] = flag
        for flag in self.by_night.get(night, ()):
            found[id(flag)] = flag
        if self.by_day and jd_min is not None and jd_max is not None:
            for day in range(int(jd_min), int(jd_max) + 1):
                for flag in self.by_day.get(day, ()):
                    found[id(flag)] = flag
        for flag in self.anywhere:
            found[id(flag)] = flag
        if len(found) < 2:
            return list(found.values())
        return sorted(found.values(), key=lambda f: self.order[id(f)])
