"""The spread of a source's nightly means (pure functions).

The means themselves (weighted means, angle means, a night's polarization from
its mean q and u) live in :mod:`iopreport.stokes`, shared with the site.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from iopreport.stokes import angle_mean, wrap_chi_difference


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
