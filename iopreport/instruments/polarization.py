"""Instrumental polarization and zero angle of each instrument, as dated tables.

Correction model (Escudero Pedrosa et al. 2024 Eqs. 4-7 for the OSN wheel, 15 and 19-20 for the
half-wave-plate instruments; IOP4's polarimetry): the measured Stokes
parameters in the instrument frame are

    q_raw = q_c + q_inst,  u_raw = u_c + u_inst,
    (q_c, u_c) = R(-2 theta0) (q, u),

where (q, u) are on the sky and theta0 is the zero angle, so the reduction
computes ``(q, u) = R(2 theta0) (q_raw - q_inst, u_raw - u_inst)`` and
chi_sky = chi_instrument + theta0. This is the sign the reference code uses
(Stokes.correct adds CPA; the OSN rotation by -18 deg); the paper's Eq. 15
writes chi - CPA, and its Eq. 7 has a typo (u_c for q_c in the first term).

These tables are the defaults; [[polarimetry.instrumental]] in config.toml overrides them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class InstrumentalPolarization:
    """One dated entry: values valid from ``valid_from`` (UTC) until the next entry."""

    valid_from: dt.datetime
    q_inst: float
    q_inst_err: float
    u_inst: float
    u_inst_err: float
    zero_angle_deg: float
    zero_angle_err_deg: float
    source: str


_EPOCH0 = dt.datetime(1990, 1, 1)
_OSN_WHEEL = InstrumentalPolarization(
    _EPOCH0,
    0.0579,
    0.003,
    0.0583,
    0.0023,
    -18.0,
    0.001,
    "IOP4 OSNCCDCamera.compute_relative_polarimetry (IOP4's polarimetry)",
)

INSTRUMENTAL_POLARIZATION: dict[str, tuple[InstrumentalPolarization, ...]] = {
    "AndorT90": (_OSN_WHEEL,),
    "RoperT90": (_OSN_WHEEL,),
    "AndorT150": (_OSN_WHEEL,),
    "CAFOS": (
        InstrumentalPolarization(
            _EPOCH0,
            0.0,
            0.0005,
            0.0,
            0.0005,
            -1.5,
            1.5,
            "IOP4 CAFOS.get_instrumental_polarization (IOP4's polarimetry)",
        ),
    ),
    "DIPOL": (
        InstrumentalPolarization(
            _EPOCH0,
            0.0005777,
            0.00005,
            -0.0377095,
            0.00005,
            44.5,
            0.05,
            "IOP4 v1.6.0 dipol.py, before the 2023-09-28 mirror cleaning (IOP4's polarimetry)",
        ),
        InstrumentalPolarization(
            dt.datetime(2023, 9, 28, 12, 0),
            0.0004,
            0.0007,
            -0.0455,
            0.0007,
            41.0,
            3.0,
            "IOP4 DIPOL.get_instrumental_polarization, #198 (IOP4's polarimetry)",
        ),
    ),
}


def instrumental_polarization(instrument: str, when: dt.datetime) -> InstrumentalPolarization:
    """The entry of ``instrument``'s table in force at ``when`` (naive UTC)."""
    table = INSTRUMENTAL_POLARIZATION[instrument]
    current = table[0]
    for entry in table:
        if entry.valid_from <= when:
            current = entry
    return current


def configured_instrumental(
    entries, instrument: str, when: dt.datetime, band: str = ""
) -> InstrumentalPolarization:
    """The entry in force from config.toml's [[polarimetry.instrumental]] tables.

    ``entries`` are :class:`iopreport.config.InstrumentalPolarizationConfig`;
    an entry with a band applies to that band only and wins over a band-less
    one of the same date. Without any entry for ``instrument`` the built-in
    reference values above are used.
    """
    candidates = [e for e in entries if e.instrument == instrument and e.band in ("", band)]
    candidates = [e for e in candidates if e.valid_from_time <= when]
    if not candidates:
        return instrumental_polarization(instrument, when)
    chosen = max(candidates, key=lambda e: (e.valid_from_time, e.band != ""))
    return InstrumentalPolarization(
        chosen.valid_from_time,
        chosen.q_inst,
        chosen.q_inst_err,
        chosen.u_inst,
        chosen.u_inst_err,
        chosen.zero_angle_deg,
        chosen.zero_angle_err_deg,
        chosen.source or "config.toml",
    )
