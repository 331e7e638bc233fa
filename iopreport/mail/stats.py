"""Nightly means of magnitudes, polarization degrees and angles (pure functions).

A night's value of a source is the inverse-variance weighted mean of its
good results that night; angles (chi, defined modulo 180 degrees) are averaged
on the doubled-angle circle so that 179 and 1 degrees average to 0, not 90.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Period of the polarization angle chi, degrees.
CHI_PERIOD_DEG = 180.0


@dataclass(frozen=True)
class Estimate:
    """A mean value, its standard error (None when no point had an error) and its count."""

    value: float
    error: float | None
    n: int


def _weights(errors: Sequence[float | None]) -> list[float] | None:
    """Inverse-variance weights, or None when any error is missing or not positive."""
    if all(e is not None and e > 0 and math.isfinite(e) for e in errors):
        return [1.0 / (e * e) for e in errors]
    return None


def weighted_mean(values: Sequence[float], errors: Sequence[float | None]) -> Estimate:
    """Inverse-variance weighted mean and its error ``1/sqrt(sum w)``.

    Without usable errors the plain mean is returned, with the standard error
    of the mean as error when there are two or more values (else None).
    """
    if not values:
        raise ValueError("no values to average")
    weights = _weights(errors)
    if weights is not None:
        total = sum(weights)
        mean = sum(w * v for w, v in zip(weights, values, strict=True)) / total
        return Estimate(mean, 1.0 / math.sqrt(total), len(values))
    mean = sum(values) / len(values)
    if len(values) < 2:
        return Estimate(mean, None, 1)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return Estimate(mean, math.sqrt(variance / len(values)), len(values))


def wrap_chi_difference(difference: float) -> float:
    """An angle difference brought into [-90, 90) degrees (chi is defined modulo 180)."""
    half = CHI_PERIOD_DEG / 2
    return (difference + half) % CHI_PERIOD_DEG - half


def angle_mean(values: Sequence[float], errors: Sequence[float | None]) -> Estimate:
    """Weighted mean of angles modulo 180 degrees, in [0, 180).

    The angles are doubled, averaged as unit vectors with inverse-variance
    weights and halved back. The error is that of the linear weighted mean
    (valid when the points agree within a few tens of degrees).
    """
    if not values:
        raise ValueError("no values to average")
    weights = _weights(errors) or [1.0] * len(values)
    s = sum(w * math.sin(math.radians(2 * v)) for w, v in zip(weights, values, strict=True))
    c = sum(w * math.cos(math.radians(2 * v)) for w, v in zip(weights, values, strict=True))
    mean = (math.degrees(math.atan2(s, c)) / 2) % CHI_PERIOD_DEG
    if math.isclose(mean, CHI_PERIOD_DEG):  # -1e-15 % 180 is 180.0
        mean = 0.0
    unwrapped = [mean + wrap_chi_difference(v - mean) for v in values]
    linear = weighted_mean(unwrapped, errors)
    return Estimate(mean, linear.error, len(values))


def spread(values: Sequence[float], *, angle: bool = False) -> tuple[float, float] | None:
    """Centre and spread of nightly means: median and sample standard deviation.

    For angles the centre is the circular mean and the spread the standard
    deviation of the wrapped differences from it. None with fewer than 2 values.
    """
    if len(values) < 2:
        return None
    if angle:
        centre = angle_mean(values, [None] * len(values)).value
        deviations = [wrap_chi_difference(v - centre) for v in values]
    else:
        ordered = sorted(values)
        middle = len(ordered) // 2
        centre = (
            ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        )
        mean = sum(values) / len(values)
        deviations = [v - mean for v in values]
    std = math.sqrt(sum(d * d for d in deviations) / (len(values) - 1))
    return centre, std
