"""A frame's seeing against the night's trend: frames measured far off their neighbours.

The seeing drifts slowly through a night; a frame whose FWHM is far from that
of the frames of the same instrument and binning taken around it was most
likely measured on something that is not a star (cosmic-ray tracks that
passed the shape test) or on a blend. Such frames are measured again with the
trend as a hint (:meth:`iopreport.reduce.detect.Detections.seeing_fwhm_px`):
the fits that agree with the trend are used when there are enough of them,
otherwise the frame keeps its own value (the seeing did change). Pure
functions: the caller reads the store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Frames within this time of a frame (days) form its trend (1 h: the seeing's
#: slow drifts; IOP4 and observatory monitors quote it over tens of minutes).
TREND_WINDOW_DAYS = 1.0 / 24.0
#: Fewest other frames for a trend.
MIN_TREND_FRAMES = 4
#: A frame's seeing more than this factor from its trend is measured again (a
#: frame measured on cosmic-ray tracks reads about half the seeing).
MAX_TREND_RATIO = 1.5


@dataclass(frozen=True)
class SeeingPoint:
    """One frame's seeing: its name, detector key, time (JD) and FWHM (arcsec)."""

    name: str
    detector: tuple
    juliandate: float
    fwhm_arcsec: float


def off_trend(points: list[SeeingPoint]) -> dict[str, float]:
    """Frames whose seeing is more than :data:`MAX_TREND_RATIO` from the median of the
    other frames of their detector within :data:`TREND_WINDOW_DAYS`: name -> that
    median (arcsec), the trend to measure them against."""
    outliers: dict[str, float] = {}
    by_detector: dict[tuple, list[SeeingPoint]] = {}
    for point in points:
        if np.isfinite(point.fwhm_arcsec) and point.fwhm_arcsec > 0:
            by_detector.setdefault(point.detector, []).append(point)
    for group in by_detector.values():
        times = np.array([p.juliandate for p in group])
        values = np.array([p.fwhm_arcsec for p in group])
        for index, point in enumerate(group):
            near = np.abs(times - point.juliandate) <= TREND_WINDOW_DAYS
            near[index] = False
            if near.sum() < MIN_TREND_FRAMES:
                continue
            trend = float(np.median(values[near]))
            ratio = point.fwhm_arcsec / trend
            if ratio > MAX_TREND_RATIO or ratio < 1.0 / MAX_TREND_RATIO:
                outliers[point.name] = trend
    return outliers
