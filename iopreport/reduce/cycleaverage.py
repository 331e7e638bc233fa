"""DIPOL's cycle averages: (q, u) as weighted means over 4-position plate cycles.

Each cycle of the half-wave plate positions 0, 22.5, 45 and 67.5 degrees gives
q and u; those of the sequence are their means under the iterative 2-3 sigma
weights of DIPOL's reduction software (Piirola et al. 2021). The alternative to
the fit over all angles of :mod:`iopreport.reduce.hwpfit`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iopreport.reduce.hwpfit import FitResult
from iopreport.reduce.polarimetry import PolarimetryError
from iopreport.stokes import Stokes

#: DIPOL reduction software's weights (Piirola et al. 2021, Sect. 4): full weight for a
#: cycle within 2 sigma of the mean, falling linearly to zero at 3 sigma, zero beyond.
FULL_WEIGHT_SIGMA = 2.0
ZERO_WEIGHT_SIGMA = 3.0
#: Positions of the half-wave plate in one cycle (0, 22.5, 45, 67.5 degrees).
CYCLE_POSITIONS = 4
#: Iterations of the weighted mean before giving up on convergence.
MAX_WEIGHT_ITERATIONS = 20


@dataclass(frozen=True)
class WeightedMean:
    """A mean under iterative 2-3 sigma weights: value, error and each point's weight."""

    value: float
    error: float
    weights: np.ndarray


def sigma_weights(residual_sigma: np.ndarray) -> np.ndarray:
    """Weights of points ``residual_sigma`` standard deviations from the mean.

    1 within :data:`FULL_WEIGHT_SIGMA`, falling linearly to 0 at
    :data:`ZERO_WEIGHT_SIGMA`, 0 beyond (Piirola et al. 2021).
    """
    r = np.abs(residual_sigma)
    span = ZERO_WEIGHT_SIGMA - FULL_WEIGHT_SIGMA
    return np.clip((ZERO_WEIGHT_SIGMA - r) / span, 0.0, 1.0)


def iterative_weighted_mean(values: Sequence[float], errors: Sequence[float]) -> WeightedMean:
    """Mean of per-cycle values with the iterative 2-3 sigma weights of DIPOL's software.

    Starting from the median, each iteration weighs every value by its
    distance from the current mean in units of the scatter
    (:func:`sigma_weights`) and takes the weighted mean, until the weights settle.
    The scale is the larger of the robust scatter (1.4826 MAD, so that one bad
    cycle among four cannot hide inside the scatter it inflates: with n points
    the plain standard deviation can never place one further than
    (n-1)/sqrt(n) sigma) and the cycles' median propagated error (photon noise
    is a floor the scatter cannot be believed below). The error of the mean is
    the weighted scatter over sqrt(sum of weights), never below the error
    propagated from the weighted cycles.
    """
    x = np.asarray(values, dtype=float)
    e = np.asarray(errors, dtype=float)
    floor = float(np.median(e))
    centre = float(np.median(x))  # a robust start: one wild cycle cannot drag it
    scale = max(1.4826 * float(np.median(np.abs(x - centre))), floor)
    weights = sigma_weights((x - centre) / scale)
    for _ in range(MAX_WEIGHT_ITERATIONS):
        centre = float(np.sum(weights * x) / np.sum(weights))
        kept = x[weights > 0]
        scale = max(1.4826 * float(np.median(np.abs(kept - np.median(kept)))), floor)
        new = sigma_weights((x - centre) / scale)
        if not new.any() or np.allclose(new, weights):
            break
        weights = new
    total = float(np.sum(weights))
    mean = float(np.sum(weights * x) / total)
    scatter = math.sqrt(float(np.sum(weights * (x - mean) ** 2)) / max(total - 1.0, 1.0))
    propagated = math.sqrt(float(np.sum(weights**2 * e**2))) / total
    return WeightedMean(mean, max(scatter / math.sqrt(total), propagated), weights)


def hwp_cycle_average(
    angles: Sequence[float],
    value: Sequence[float],
    error: Sequence[float],
    *,
    min_cycles: int = 3,
) -> FitResult:
    """Stokes parameters averaged over 4-position cycles, as DIPOL's software does.

    The frames, in the order taken, form cycles of the four plate positions
    0, 22.5, 45 and 67.5 degrees (modulo 90); each cycle gives q and u from
    its four normalised beam differences (the four-angle sums of Escudero
    Pedrosa et al. 2024, Eqs. 16-17, free of a beam transmission offset), and
    q and u of the sequence are the means of the cycles' values under iterative
    2-3 sigma weights
    (:func:`iterative_weighted_mean`; Piirola et al. 2021). A cycle given
    weight 0 in q or u is reported as rejected.
    """
    a = np.asarray(angles, dtype=float)
    y = np.asarray(value, dtype=float)
    s = np.asarray(error, dtype=float)
    position = np.round((a % 90.0) / 22.5).astype(int) % CYCLE_POSITIONS
    usable = np.isfinite(y) & np.isfinite(s) & (s > 0)
    cycles: list[np.ndarray] = []
    start = 0
    while start + CYCLE_POSITIONS <= len(a):
        members = np.arange(start, start + CYCLE_POSITIONS)
        if sorted(position[members]) == list(range(CYCLE_POSITIONS)) and usable[members].all():
            cycles.append(members)
            start += CYCLE_POSITIONS
        else:
            start += 1
    if len(cycles) < min_cycles:
        raise PolarimetryError(
            f"only {len(cycles)} complete 4-position cycle(s); at least {min_cycles} needed"
        )
    # per cycle: q = (F(0) - F(45))/2, u = (F(22.5) - F(67.5))/2, the four-angle sums
    order = [c[np.argsort(position[c])] for c in cycles]
    q_cycle = np.array([(y[c[0]] - y[c[2]]) / 2 for c in order])
    u_cycle = np.array([(y[c[1]] - y[c[3]]) / 2 for c in order])
    q_err = np.array([math.hypot(s[c[0]], s[c[2]]) / 2 for c in order])
    u_err = np.array([math.hypot(s[c[1]], s[c[3]]) / 2 for c in order])
    q = iterative_weighted_mean(q_cycle, q_err)
    u = iterative_weighted_mean(u_cycle, u_err)
    both = (q.weights > 0) & (u.weights > 0)
    rejected = tuple(float(a[c[0]]) for c, ok in zip(cycles, both, strict=True) if not ok)
    residual = ((q_cycle - q.value) / q_err) ** 2 + ((u_cycle - u.value) / u_err) ** 2
    dof = 2 * (int(both.sum()) - 1)
    chi2 = float(np.sum(residual[both]))
    return FitResult(
        Stokes(q.value, u.value, q.error, u.error, 0.0),
        int(both.sum()) * CYCLE_POSITIONS,
        rejected,
        chi2 / dof if dof > 0 else float("nan"),
    )
