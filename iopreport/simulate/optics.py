"""How polarization reaches the detector: the forward model the simulator applies.

Conventions: q = p cos 2chi, u = p sin 2chi, chi East of North (Escudero Pedrosa et al. 2024 Eqs.
8-9). The instrument turns sky Stokes parameters into instrument-frame ones
by the inverse of the correction the reduction applies (Escudero Pedrosa et al. 2024 Eqs. 4-7, 15,
19-20; see :mod:`iopreport.instruments.polarization`):

    (q_c, u_c) = R(-2 theta0) (q, u);  q_raw = q_c + q_inst;  u_raw = u_c + u_inst.

A polarizer at angle t transmits I/2 (1 + q_raw cos 2t + u_raw sin 2t); a
half-wave plate at t followed by a Wollaston prism gives two beams
I/2 (1 +- (q_raw cos 4t + u_raw sin 4t)).
"""

from __future__ import annotations

import numpy as np


def stokes_from_polarization(p, chi_deg):
    """(q, u) from degree ``p`` (a fraction) and angle ``chi_deg`` (IOP4 paper Eqs. 8-9)."""
    two_chi = np.deg2rad(2.0 * np.asarray(chi_deg, dtype=float))
    p = np.asarray(p, dtype=float)
    return p * np.cos(two_chi), p * np.sin(two_chi)


def polarization_from_stokes(q, u):
    """(p, chi in [0, 180) deg) from (q, u) (Escudero Pedrosa et al. 2024 Eqs. 8-9)."""
    q = np.asarray(q, dtype=float)
    u = np.asarray(u, dtype=float)
    chi = 0.5 * np.rad2deg(np.arctan2(u, q))
    return np.hypot(q, u), np.mod(chi, 180.0)


def rotate_stokes(q, u, angle_deg):
    """Rotate (q, u) by ``angle_deg`` on the sky: chi -> chi + angle (the IOP4 paper Eqs. 6-7)."""
    two = np.deg2rad(2.0 * np.asarray(angle_deg, dtype=float))
    return q * np.cos(two) - u * np.sin(two), q * np.sin(two) + u * np.cos(two)


def sky_to_instrument(q, u, *, q_inst: float, u_inst: float, zero_angle_deg: float):
    """Instrument-frame (q_raw, u_raw) of a source with sky (q, u).

    The inverse of Escudero Pedrosa et al. 2024 Eqs. 4-7 (wheel) and 15, 19-20 (half-wave plate):
    rotate by minus the zero angle, then add the instrumental polarization.
    """
    q_c, u_c = rotate_stokes(q, u, -zero_angle_deg)
    return q_c + q_inst, u_c + u_inst


def polarizer_transmission(q_raw, u_raw, angle_deg):
    """Fraction of the flux a polarizer at ``angle_deg`` passes: (1 + q cos 2t + u sin 2t)/2."""
    t = np.deg2rad(2.0 * np.asarray(angle_deg, dtype=float))
    return 0.5 * (1.0 + q_raw * np.cos(t) + u_raw * np.sin(t))


def wollaston_beams(q_raw, u_raw, hwp_angle_deg):
    """Fractions of the total flux in the two Wollaston beams behind a half-wave plate at t.

    Returns
    -------
    (plus, minus)
        ``(1 + q cos 4t + u sin 4t)/2`` and ``(1 - q cos 4t - u sin 4t)/2``.
        The simulator puts ``plus`` on the left-hand image (the one displaced by
        the instrument's O/E offset from the right-hand image), matching the
        reference's processing after its O/E label swap (IOP4's astrometry).
    """
    t = np.deg2rad(4.0 * np.asarray(hwp_angle_deg, dtype=float))
    modulation = q_raw * np.cos(t) + u_raw * np.sin(t)
    return 0.5 * (1.0 + modulation), 0.5 * (1.0 - modulation)
