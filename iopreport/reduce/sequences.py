"""Polarimetric sequences: which frames belong together.

The reference groups frames by the first word of OBJECT, instrument, band and
exposure time and pops one frame per angle with no time check, so one missing
angle shifts frames into the next group (IOP4's polarimetry). Here a
sequence is a run of frames of the same identified target, instrument, band and
exposure time, taken within minutes of each other: a new sequence starts when
the gap to the previous frame exceeds ``gap_minutes`` (plus the exposure) or
when an angle repeats. A missing angle therefore leaves its own sequence
incomplete and never takes frames from its neighbours.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

_MINUTES_PER_DAY = 1440.0


@dataclass(frozen=True)
class PolFrame:
    """What grouping needs to know of one polarimetric frame."""

    fileloc: str  # <TEL>/<YYYY-MM-DD>/<filename>: identity across databases
    target: str
    instrument: str
    band: str
    exptime: float
    angle: float
    juliandate: float  # mid-exposure, UTC JD (RawFit.juliandate)

    @property
    def key(self) -> tuple[str, str, str, float]:
        return (self.target, self.instrument, self.band, round(self.exptime, 2))


def angle_key(angle: float) -> float:
    """Angles equal modulo 360 degrees (and rounded to 0.01 deg) are the same setting."""
    return round(angle % 360.0, 2)


def build_sequences(frames: Iterable[PolFrame], gap_minutes: float) -> list[list[PolFrame]]:
    """Split frames into sequences (each sorted by time; sequences by start time)."""
    by_key: dict[tuple, list[PolFrame]] = defaultdict(list)
    for frame in frames:
        by_key[frame.key].append(frame)
    sequences: list[list[PolFrame]] = []
    for group in by_key.values():
        group.sort(key=lambda f: (f.juliandate, f.fileloc))
        current: list[PolFrame] = []
        for frame in group:
            if current:
                previous = current[-1]
                gap = (frame.juliandate - previous.juliandate) * _MINUTES_PER_DAY
                gap -= previous.exptime / 60.0
                repeats = angle_key(frame.angle) in {angle_key(f.angle) for f in current}
                if gap > gap_minutes or repeats:
                    sequences.append(current)
                    current = []
            current.append(frame)
        if current:
            sequences.append(current)
    sequences.sort(key=lambda seq: (seq[0].juliandate, seq[0].fileloc))
    return sequences
