"""Polarimetry from beam fluxes: the IOP4 paper's methods with propagated errors.

Pure functions on arrays; the night orchestration (:mod:`iopreport.reduce.polnight`)
groups frames into sequences and feeds them here. The half-wave-plate estimators
over the plate angles are in :mod:`iopreport.reduce.hwpfit` (fits, ratio method)
and :mod:`iopreport.reduce.cycleaverage` (DIPOL's cycle averages).

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
