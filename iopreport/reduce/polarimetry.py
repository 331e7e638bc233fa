"""Polarimetry from beam fluxes: the IOP4 paper's methods with propagated errors.

Pure functions on arrays; the night orchestration (:mod:`iopreport.reduce.polnight`)
groups frames into sequences and feeds them here.

Conventions (Escudero Pedrosa et al. 2024 Eqs. 8-9): q = p cos 2chi, u = p sin 2chi, chi East of
North. Instrument-frame ("raw") Stokes parameters are turned into sky ones by
:func:`correct_instrumental` (Eqs. 4-7, 15, 19-20; the sign of the zero
angle follows the reference code, see :mod:`iopreport.instruments.polarization`).

Beams of a Wollaston image: the reference labels the right-hand image "O"
and then swaps the labels before computing (IOP4's astrometry), so
the beam that carries ``(1 + q cos 4t + u sin 4t)/2`` is the left-hand image,
which the store labels ``"E"`` (:data:`PLUS_BEAM`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iopreport.instruments.polarization import InstrumentalPolarization
from iopreport.stokes import UNIFORM_CHI_STD_DEG, Stokes

#: Store label of the Wollaston beam that carries (1 + q cos 4t + u sin 4t)/2.
PLUS_BEAM = "E"
#: Store label of the beam that carries (1 - q cos 4t - u sin 4t)/2.
MINUS_BEAM = "O"


class PolarimetryError(ValueError):
    """A sequence that cannot give a result; the message says why."""


#: The instrumental polarization and zero angle in force for a sequence (one type for them).
Instrumental = InstrumentalPolarization


@dataclass(frozen=True)
class Corrected:
    """Sky Stokes parameters (statistical errors) and the systematic errors of p and chi."""

    stokes: Stokes
    p_sys_err: float
    chi_sys_err: float


def correct_instrumental(raw: Stokes, inst: Instrumental) -> Corrected:
    """Sky Stokes parameters from instrument-frame ones.

    q_c = q_raw - q_inst, u_c = u_raw - u_inst (Escudero Pedrosa et al. 2024 Eqs. 4-5, 19-20), then
    a rotation by the zero angle (Eqs. 6-7, 15; chi_sky = chi_c + theta0, the
    reference code's sign). The errors of the result are the statistical ones
    of the measurement; the uncertainties of the instrumental polarization and
    of the zero angle are the same for every sequence of an instrument period,
    so they are returned apart as systematic errors of p and chi (the
    reference adds them in quadrature, IOP4's polarimetry).
    """
    offset = Stokes(raw.q - inst.q_inst, raw.u - inst.u_inst, raw.q_err, raw.u_err, raw.cov_qu)
    sky = offset.rotated(inst.zero_angle_deg)
    systematic = Stokes(offset.q, offset.u, inst.q_inst_err, inst.u_inst_err, 0.0)
    chi_sys = math.hypot(systematic.chi_err, inst.zero_angle_err_deg)
    return Corrected(sky, systematic.p_err, min(chi_sys, UNIFORM_CHI_STD_DEG))


# ---------------------------------------------------------------------------
# OSN polarizer wheel (Escudero Pedrosa et al. 2024 Eqs. 1-3)


def wheel_modulation(q: float, u: float, angle_deg: np.ndarray) -> np.ndarray:
    """Relative transmission 1 + q cos 2t + u sin 2t of a polarizer at ``angle_deg``."""
    t = np.radians(2.0 * np.asarray(angle_deg, dtype=float))
    return 1.0 + q * np.cos(t) + u * np.sin(t)


def wheel_stokes(
    angles: Sequence[float], flux: Sequence[float], flux_err: Sequence[float]
) -> Stokes:
    """q_raw, u_raw from the four polarizer angles (Escudero Pedrosa et al. 2024 Eqs. 2-3).

    q = (f0 - f90)/(f0 + f90), u = (f45 - f-45)/(f45 + f-45). The errors are
    the exact first-order propagation, sigma_q = 2 sqrt(f90^2 s0^2 + f0^2
    s90^2) / (f0 + f90)^2, which, unlike the reference's formula inherited from
    IOP3 (IOP4's polarimetry), does not depend on the sign of q.

    Raises
    ------
    PolarimetryError
        When an angle of the four is missing or a flux is not positive.
    """
    by_angle = {float(a) % 180.0: (f, e) for a, f, e in zip(angles, flux, flux_err, strict=True)}
    needed = {0.0: "0", 90.0: "90", 45.0: "45", 135.0: "-45"}
    missing = [label for key, label in needed.items() if key not in by_angle]
    if missing:
        raise PolarimetryError(
            "polarizer-wheel sequence lacks angle(s) " + ", ".join(missing) + " (needs all four)"
        )
    values = {}
    for key, label in needed.items():
        f, e = by_angle[key]
        if not (math.isfinite(f) and f > 0 and math.isfinite(e)):
            raise PolarimetryError(f"no positive flux at polarizer angle {label}")
        values[label] = (f, e)
    q, q_err = _normalised_difference(*values["0"], *values["90"])
    u, u_err = _normalised_difference(*values["45"], *values["-45"])
    return Stokes(q, u, q_err, u_err, 0.0)


def _normalised_difference(a: float, sa: float, b: float, sb: float) -> tuple[float, float]:
    s = a + b
    return (a - b) / s, 2.0 * math.sqrt(b**2 * sa**2 + a**2 * sb**2) / s**2


# ---------------------------------------------------------------------------
# Transparency normalisation by comparison stars


@dataclass(frozen=True)
class Normalisation:
    """Per-frame transparency factors from comparison stars (mean 1 over the sequence)."""

    factor: np.ndarray
    factor_err: np.ndarray
    n_stars: int


def transparency_factors(
    star_flux: np.ndarray, star_flux_err: np.ndarray, modulation: np.ndarray
) -> Normalisation:
    """Relative transparency of each frame from unpolarized comparison stars.

    Parameters
    ----------
    star_flux, star_flux_err : ndarray, shape (n_stars, n_frames)
        Fluxes of the comparison stars in each frame (NaN where unmeasured).
    modulation : ndarray, shape (n_frames,)
        The known relative transmission of an unpolarized star in each frame
        (for the wheel 1 + q_inst cos 2t + u_inst sin 2t: the instrumental
        polarization modulates every star).

    Each star gives r_sk = f_sk / m_k / mean_k(f_sk / m_k); the factor of frame
    k is the inverse-variance weighted mean of r_sk over stars. Stars not
    measured in every frame are left out.
    """
    flux = np.asarray(star_flux, dtype=float)
    err = np.asarray(star_flux_err, dtype=float)
    usable = np.all(np.isfinite(flux) & (flux > 0) & np.isfinite(err), axis=1)
    flux, err = flux[usable], err[usable]
    n_frames = flux.shape[1] if flux.ndim == 2 else len(modulation)
    if len(flux) == 0:
        return Normalisation(np.ones(n_frames), np.zeros(n_frames), 0)
    corrected = flux / modulation
    reference = corrected.mean(axis=1, keepdims=True)
    ratio = corrected / reference
    ratio_err = err / modulation / reference
    weights = 1.0 / ratio_err**2
    factor = np.sum(weights * ratio, axis=0) / np.sum(weights, axis=0)
    factor_err = 1.0 / np.sqrt(np.sum(weights, axis=0))
    scale = factor.mean()
    return Normalisation(factor / scale, factor_err / scale, len(flux))


# ---------------------------------------------------------------------------
# Half-wave plate + Wollaston (Escudero Pedrosa et al. 2024 Eqs. 10-20)


def beam_difference(
    plus: np.ndarray, plus_err: np.ndarray, minus: np.ndarray, minus_err: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """F_i = (f+ - f-)/(f+ + f-) and its error (Escudero Pedrosa et al. 2024 Eq. 18)."""
    plus = np.asarray(plus, dtype=float)
    minus = np.asarray(minus, dtype=float)
    total = plus + minus
    value = (plus - minus) / total
    error = 2.0 * np.sqrt(minus**2 * plus_err**2 + plus**2 * minus_err**2) / total**2
    return value, error


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
