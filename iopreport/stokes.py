"""Polarization math in one place: Stokes parameters, means in (q, u), angle means, debiasing.

Every part of iopreport that turns q and u into p and chi, or averages them,
calls this module: the reduction (:mod:`iopreport.reduce.polarimetry`), the
instrumental calibration, the site's time bins and the night summary, so that
the site and the summary cannot disagree about the same night.

Conventions (Escudero Pedrosa et al. 2024, the IOP4 paper, Eqs. 8-9): q = p cos 2chi,
u = p sin 2chi, chi East of North in [0, 180) degrees. A mean polarization is
the polarization of the mean (q, u) (never the mean of p, which is biased
high: p is positive-definite, Simmons & Stewart 1985); the Ricean bias of p is
removed with the MAS estimator of Plaszczynski et al. (2014). Angles modulo
180 degrees are averaged on the doubled-angle circle. See docs/polarimetry.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Degrees per radian, for chi errors (chi = atan2(u, q) / 2, so d chi = 0.5 * 180/pi d(...)).
_DEG = 180.0 / math.pi
#: Period of the polarization angle chi, degrees.
CHI_PERIOD_DEG = 180.0
#: Standard deviation of an angle uniform over 180 degrees (chi of an unpolarized source).
UNIFORM_CHI_STD_DEG = CHI_PERIOD_DEG / math.sqrt(12.0)


@dataclass(frozen=True)
class Stokes:
    """Normalised Stokes parameters with their covariance.

    Attributes
    ----------
    q, u : float
        Fractions (not percent).
    q_err, u_err : float
        One-sigma errors.
    cov_qu : float
        Covariance of q and u.
    """

    q: float
    u: float
    q_err: float
    u_err: float
    cov_qu: float = 0.0

    @property
    def p(self) -> float:
        """Polarization degree (Escudero Pedrosa et al. 2024, Eq. 8)."""
        return math.hypot(self.q, self.u)

    @property
    def p_err(self) -> float:
        """Error of p from the (q, u) covariance (first-order Jacobian)."""
        p = self.p
        if p == 0:
            return math.sqrt(0.5 * (self.q_err**2 + self.u_err**2))
        var = (
            self.q**2 * self.q_err**2
            + self.u**2 * self.u_err**2
            + 2 * self.q * self.u * self.cov_qu
        ) / p**2
        return math.sqrt(max(var, 0.0))

    @property
    def chi(self) -> float:
        """Polarization angle in degrees, [0, 180) (Escudero Pedrosa et al. 2024, Eq. 9)."""
        return (0.5 * math.degrees(math.atan2(self.u, self.q))) % 180.0

    @property
    def chi_err(self) -> float:
        """Error of chi in degrees from the (q, u) covariance (first-order Jacobian).

        Meaningless when p is not significant (chi is then uniformly distributed);
        capped at 52 degrees, the standard deviation of a uniform angle over 180 degrees.
        """
        p2 = self.q**2 + self.u**2
        if p2 == 0:
            return UNIFORM_CHI_STD_DEG
        var = (
            self.u**2 * self.q_err**2
            + self.q**2 * self.u_err**2
            - 2 * self.q * self.u * self.cov_qu
        ) / p2**2
        return min(0.5 * _DEG * math.sqrt(max(var, 0.0)), UNIFORM_CHI_STD_DEG)

    @property
    def sigma(self) -> float:
        """Mean one-sigma error of q and u (the Ricean scale)."""
        return math.sqrt(0.5 * (self.q_err**2 + self.u_err**2))

    @property
    def p_debiased(self) -> float:
        """p with the Ricean bias removed: the MAS estimator of Plaszczynski et al. (2014).

        p_MAS = p - sigma^2 (1 - exp(-p^2 / sigma^2)) / (2 p)  (their Eq. 37);
        it is continuous, never negative, and nearly unbiased for p/sigma > 2,
        unlike the classic sqrt(p^2 - sigma^2) of Wardle & Kronberg (1974),
        which jumps to 0 below p = sigma.
        """
        p = self.p
        s = self.sigma
        if p == 0 or s == 0:
            return p
        return max(p - s**2 * (1.0 - math.exp(-(p**2) / s**2)) / (2.0 * p), 0.0)

    def rotated(self, angle_deg: float) -> Stokes:
        """Rotate on the sky so that chi -> chi + angle (Escudero Pedrosa et al. 2024, Eqs. 6-7)."""
        c = math.cos(math.radians(2 * angle_deg))
        s = math.sin(math.radians(2 * angle_deg))
        rot = np.array([[c, -s], [s, c]])
        cov = rot @ self.covariance @ rot.T
        q, u = rot @ np.array([self.q, self.u])
        return Stokes(
            float(q),
            float(u),
            math.sqrt(cov[0, 0]),
            math.sqrt(cov[1, 1]),
            float(cov[0, 1]),
        )

    @property
    def covariance(self) -> np.ndarray:
        return np.array([[self.q_err**2, self.cov_qu], [self.cov_qu, self.u_err**2]])


def qu_from_p_chi(p: float, chi_deg: float) -> tuple[float, float]:
    """q and u of a polarization degree and angle (Escudero Pedrosa et al. 2024, Eqs. 8-9)."""
    return p * math.cos(math.radians(2 * chi_deg)), p * math.sin(math.radians(2 * chi_deg))


def rotate_qu(q: float, u: float, angle_deg: float) -> tuple[float, float]:
    """(q, u) rotated so that chi -> chi + angle (Escudero Pedrosa et al. 2024, Eqs. 6-7)."""
    c, s = math.cos(math.radians(2 * angle_deg)), math.sin(math.radians(2 * angle_deg))
    return q * c - u * s, q * s + u * c


def wrap_chi_difference(difference: float) -> float:
    """An angle difference brought into [-90, 90) degrees (chi is defined modulo 180)."""
    half = CHI_PERIOD_DEG / 2
    return (difference + half) % CHI_PERIOD_DEG - half


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


@dataclass(frozen=True)
class MeanPolarization:
    """The mean of several polarization results, taken in (q, u).

    ``stokes`` carries the mean q and u with their errors; ``p``, ``chi`` and
    their errors are those of the mean (q, u), so every reader of a nightly or
    binned polarization gets the same numbers.
    """

    stokes: Stokes
    n: int

    @property
    def p(self) -> Estimate:
        return Estimate(self.stokes.p, self.stokes.p_err, self.n)

    @property
    def chi(self) -> Estimate:
        return Estimate(self.stokes.chi, self.stokes.chi_err, self.n)


def mean_polarization(
    q: Sequence[float],
    q_err: Sequence[float | None],
    u: Sequence[float],
    u_err: Sequence[float | None],
) -> MeanPolarization:
    """Mean polarization of several results: weighted means of q and of u.

    q and u of independent results are averaged separately with inverse-variance
    weights (:func:`weighted_mean`); p and chi follow from the mean (q, u)
    (Escudero Pedrosa et al. 2024, Eqs. 8-9), which is how a polarization is combined
    without the positive bias of averaging p itself.
    """
    mean_q = weighted_mean(q, q_err)
    mean_u = weighted_mean(u, u_err)
    q_sigma = mean_q.error if mean_q.error is not None else 0.0
    u_sigma = mean_u.error if mean_u.error is not None else 0.0
    return MeanPolarization(Stokes(mean_q.value, mean_u.value, q_sigma, u_sigma, 0.0), len(q))
