"""Half-wave plate + Wollaston: (q, u) from beam fluxes over the plate angles.

A weighted least-squares fit of the normalised beam differences
(:func:`hwp_least_squares`; Escudero Pedrosa et al. 2024 Eqs. 16-17), the
ratio method for four angles (:func:`hwp_ratio`; Eqs. 11-14) and a fit of one
beam alone (:func:`one_beam_fit`). The differences and the beam labels are
those of :mod:`iopreport.reduce.polarimetry`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iopreport.reduce.polarimetry import PolarimetryError
from iopreport.stokes import Stokes


@dataclass(frozen=True)
class FitResult:
    """A fitted sequence: Stokes parameters, what was used and how well it fits."""

    stokes: Stokes
    n_used: int
    rejected_angles: tuple[float, ...]
    chi2_reduced: float
    offset: float = 0.0  # fitted constant term (beam transmission imbalance)


def hwp_least_squares(
    angles: Sequence[float],
    value: Sequence[float],
    error: Sequence[float],
    *,
    with_offset: bool = True,
    clip_sigma: float | None = None,
    min_points: int = 3,
    max_rejected_fraction: float = 0.25,
) -> FitResult:
    """Weighted least squares of F = c + q cos 4t + u sin 4t over the HWP angles.

    For a complete sequence of equally spaced angles this is exactly the
    analytic sums of Patat & Romaniello (2006) used by the paper (Escudero Pedrosa et al. 2024
    Eqs. 16-17); unlike them it stays correct with missing angles and weights
    each angle by its error. The constant ``c`` absorbs a transmission
    difference between the two beams (a first-order form of the reference's
    "non-ideal" model); with four angles the fit of (q, u) is unchanged by it.
    Errors come from the propagated photometric errors (absolute), inflated
    by sqrt(chi2/dof) only when the scatter is significantly larger than they
    allow (:func:`_scatter_inflation`).

    With ``clip_sigma``, points whose normalised residual exceeds
    ``clip_sigma`` times max(1, robust spread) are rejected one at a time
    (worst first), never more than ``max_rejected_fraction`` of the points
    and never below ``min_points`` (robust outlier rejection for DIPOL's 16
    angles: a satellite trail or a missed cosmic ray).
    """
    t = np.radians(4.0 * np.asarray(angles, dtype=float))
    y = np.asarray(value, dtype=float)
    s = np.asarray(error, dtype=float)
    good = np.isfinite(y) & np.isfinite(s) & (s > 0)
    columns = [np.cos(t), np.sin(t)] + ([np.ones_like(t)] if with_offset else [])
    design = np.column_stack(columns)
    n_params = design.shape[1]
    if good.sum() < max(min_points, n_params):
        raise PolarimetryError(
            f"only {int(good.sum())} usable angle(s); at least {max(min_points, n_params)} needed"
        )
    keep = good.copy()
    max_rejected = math.floor(max_rejected_fraction * good.sum())
    rejected: list[float] = []
    while True:
        beta, cov, chi2 = _weighted_lstsq(design[keep], y[keep], s[keep])
        dof = int(keep.sum()) - n_params
        if (
            clip_sigma is None
            or len(rejected) >= max_rejected
            or keep.sum() - 1 < max(min_points, n_params + 1)
        ):
            break
        residual = (y - design @ beta) / s
        spread = 1.4826 * float(np.median(np.abs(residual[keep])))
        limit = clip_sigma * max(1.0, spread)
        worst = int(np.argmax(np.where(keep, np.abs(residual), -np.inf)))
        if abs(residual[worst]) <= limit:
            break
        keep[worst] = False
        rejected.append(float(np.asarray(angles, dtype=float)[worst]))
    chi2_reduced = chi2 / dof if dof > 0 else float("nan")
    cov = cov * _scatter_inflation(chi2, dof)
    stokes = Stokes(
        float(beta[0]),
        float(beta[1]),
        math.sqrt(cov[0, 0]),
        math.sqrt(cov[1, 1]),
        float(cov[0, 1]),
    )
    return FitResult(
        stokes,
        int(keep.sum()),
        tuple(rejected),
        chi2_reduced,
        float(beta[2]) if with_offset else 0.0,
    )


#: The scatter about a fit must be this improbable under the propagated errors
#: (chi-square survival probability) before the errors are scaled up to it.
INFLATION_P_VALUE = 0.05


def _scatter_inflation(chi2: float, dof: int) -> float:
    """Variance factor chi2/dof when the scatter is significantly above the errors, else 1.

    Scaling by chi2/dof whenever it exceeds 1 (as ``curve_fit`` with
    ``absolute_sigma=False`` does in the reference) inflates honest errors at
    random: with CAFOS's one degree of freedom chi2/dof exceeds 1 a third of the
    time, by a factor of up to several, and the pulls came out 0.7 wide.
    """
    # the chi-square survival function itself (what scipy.stats.chi2.sf calls), without
    # importing scipy.stats (0.8 s of the main process's time on a night)
    from scipy.special import chdtrc

    if dof <= 0 or chi2 <= dof:
        return 1.0
    if chdtrc(dof, chi2) >= INFLATION_P_VALUE:
        return 1.0
    return chi2 / dof


def _weighted_lstsq(design: np.ndarray, y: np.ndarray, s: np.ndarray):
    weighted = design / s[:, None]
    normal = weighted.T @ weighted
    cov = np.linalg.inv(normal)
    beta = cov @ (weighted.T @ (y / s))
    chi2 = float(np.sum(((y - design @ beta) / s) ** 2))
    return beta, cov, chi2


def hwp_ratio(
    angles: Sequence[float],
    plus: Sequence[float],
    plus_err: Sequence[float],
    minus: Sequence[float],
    minus_err: Sequence[float],
) -> Stokes:
    """The ratio method for four HWP angles (IOP4 paper Eqs. 11-14; Zapatero Osorio et al. 2005).

    R_Q = sqrt((f+_0/f-_0)/(f+_45/f-_45)), Q = (R_Q - 1)/(R_Q + 1), and the same
    with 22.5 and 67.5 for U. A transmission difference between the beams
    cancels exactly. Errors propagate through ln R (each flux independent).
    """
    by_angle = {}
    for a, fp, sp, fm, sm in zip(angles, plus, plus_err, minus, minus_err, strict=True):
        by_angle[round(float(a) % 90.0 / 22.5) % 4] = (fp, sp, fm, sm)
    missing = [str(22.5 * k) for k in range(4) if k not in by_angle]
    if missing:
        raise PolarimetryError(
            "ratio method needs HWP angles 0, 22.5, 45, 67.5; lacks " + ", ".join(missing)
        )
    q, q_err = _ratio_component(by_angle[0], by_angle[2])
    u, u_err = _ratio_component(by_angle[1], by_angle[3])
    return Stokes(q, u, q_err, u_err, 0.0)


def _ratio_component(first, second) -> tuple[float, float]:
    fp1, sp1, fm1, sm1 = first
    fp2, sp2, fm2, sm2 = second
    if min(fp1, fm1, fp2, fm2) <= 0:
        raise PolarimetryError("a beam flux is not positive")
    log_r = 0.5 * (math.log(fp1) - math.log(fm1) - math.log(fp2) + math.log(fm2))
    log_r_err = 0.5 * math.sqrt(
        (sp1 / fp1) ** 2 + (sm1 / fm1) ** 2 + (sp2 / fp2) ** 2 + (sm2 / fm2) ** 2
    )
    r = math.exp(log_r)
    value = (r - 1.0) / (r + 1.0)
    error = 2.0 * r / (r + 1.0) ** 2 * log_r_err
    return value, error


def one_beam_fit(
    angles: Sequence[float],
    flux: Sequence[float],
    flux_err: Sequence[float],
    *,
    sign: float,
    min_points: int = 4,
) -> FitResult:
    """(q, u) from one Wollaston beam: f = a (1 + sign (q cos 4t + u sin 4t)).

    The fluxes should already be normalised for transparency by comparison
    stars measured in the same beam. The model is linear in (a, a q, a u), so
    it is a weighted least-squares fit whose estimate is unbiased; the
    reference's fallback instead fakes the missing beam by shifting the
    measured one by one angle step, which returns p/sqrt(2) and chi - 22.5 deg
    (IOP4's polarimetry). ``sign`` is +1 for the beam carrying
    (1 + ...), -1 for the other.
    """
    t = np.radians(4.0 * np.asarray(angles, dtype=float))
    y = np.asarray(flux, dtype=float)
    s = np.asarray(flux_err, dtype=float)
    good = np.isfinite(y) & np.isfinite(s) & (s > 0)
    if good.sum() < max(min_points, 3):
        raise PolarimetryError(f"only {int(good.sum())} usable angle(s) in the single beam")
    design = np.column_stack([np.ones_like(t), np.cos(t), np.sin(t)])[good]
    beta, cov, chi2 = _weighted_lstsq(design, y[good], s[good])
    dof = int(good.sum()) - 3
    chi2_reduced = chi2 / dof if dof > 0 else float("nan")
    cov = cov * _scatter_inflation(chi2, dof)
    a, b, c = beta
    # q = sign * b / a, u = sign * c / a; Jacobian rows for (a, b, c)
    jac = sign * np.array([[-b / a**2, 1 / a, 0.0], [-c / a**2, 0.0, 1 / a]])
    cov_qu = jac @ cov @ jac.T
    stokes = Stokes(
        float(sign * b / a),
        float(sign * c / a),
        math.sqrt(cov_qu[0, 0]),
        math.sqrt(cov_qu[1, 1]),
        float(cov_qu[0, 1]),
    )
    return FitResult(stokes, int(good.sum()), (), chi2_reduced)
