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

#: ``source`` of the zero entry of an instrument that has no table and no configured entry.
NO_ENTRY = "none configured: zero assumed (fit one with iopreport calibrate-pol)"
#: Start of the built-in tables: before any archive iopreport reads.
EPOCH0 = dt.datetime(1990, 1, 1)


@dataclass(frozen=True)
class InstrumentalPolarization:
    """An instrument's instrumental polarization and zero angle, with their errors.

    The one type for these values: the built-in tables below, config.toml's
    ``[[polarimetry.instrumental]]`` entries (parsed into it), the correction of a
    sequence (:func:`iopreport.reduce.polarimetry.correct_instrumental`), the
    ``calibrate-pol`` fit and the simulator. Valid from ``valid_from`` (naive UTC)
    until the next entry of the same instrument (and band, when ``band`` is set).
    Escudero Pedrosa et al. 2024, Eqs. 4-7, 15, 19-20.
    """

    q_inst: float
    q_inst_err: float
    u_inst: float
    u_inst_err: float
    zero_angle_deg: float
    zero_angle_err_deg: float
    valid_from: dt.datetime = EPOCH0
    source: str = ""
    instrument: str = ""
    band: str = ""  # empty: every band

    def toml_lines(self) -> list[str]:
        """This entry as a config.toml ``[[polarimetry.instrumental]]`` table."""
        lines = ["[[polarimetry.instrumental]]", f'instrument = "{self.instrument}"']
        if self.band:
            lines.append(f'band = "{self.band}"')
        lines += [
            f'valid_from = "{self.valid_from.date().isoformat()}"',
            f"q_inst = {self.q_inst:.5f}",
            f"q_inst_err = {self.q_inst_err:.5f}",
            f"u_inst = {self.u_inst:.5f}",
            f"u_inst_err = {self.u_inst_err:.5f}",
            f"zero_angle_deg = {self.zero_angle_deg:.2f}",
            f"zero_angle_err_deg = {self.zero_angle_err_deg:.2f}",
        ]
        if self.source:
            lines.append(f'source = "{self.source}"')
        return lines


_OSN_WHEEL = InstrumentalPolarization(
    q_inst=0.0579,
    q_inst_err=0.003,
    u_inst=0.0583,
    u_inst_err=0.0023,
    zero_angle_deg=-18.0,
    zero_angle_err_deg=0.001,
    source="IOP4 OSNCCDCamera.compute_relative_polarimetry (IOP4's polarimetry)",
)

INSTRUMENTAL_POLARIZATION: dict[str, tuple[InstrumentalPolarization, ...]] = {
    "AndorT90": (_OSN_WHEEL,),
    "RoperT90": (_OSN_WHEEL,),
    "AndorT150": (_OSN_WHEEL,),
    "CAFOS": (
        InstrumentalPolarization(
            q_inst=0.0,
            q_inst_err=0.0005,
            u_inst=0.0,
            u_inst_err=0.0005,
            zero_angle_deg=-1.5,
            zero_angle_err_deg=1.5,
            source="IOP4 CAFOS.get_instrumental_polarization (IOP4's polarimetry)",
        ),
    ),
    "DIPOL": (
        InstrumentalPolarization(
            q_inst=0.0005777,
            q_inst_err=0.00005,
            u_inst=-0.0377095,
            u_inst_err=0.00005,
            zero_angle_deg=44.5,
            zero_angle_err_deg=0.05,
            source="IOP4 v1.6.0 dipol.py, before the 2023-09-28 mirror cleaning "
            "(IOP4's polarimetry)",
        ),
        InstrumentalPolarization(
            q_inst=0.0004,
            q_inst_err=0.0007,
            u_inst=-0.0455,
            u_inst_err=0.0007,
            zero_angle_deg=41.0,
            zero_angle_err_deg=3.0,
            valid_from=dt.datetime(2023, 9, 28, 12, 0),
            source="IOP4 DIPOL.get_instrumental_polarization, #198 (IOP4's polarimetry)",
        ),
    ),
}


def instrumental_polarization(instrument: str, when: dt.datetime) -> InstrumentalPolarization:
    """The entry of ``instrument``'s table in force at ``when`` (naive UTC).

    An instrument without a built-in table (one described in config.toml, with no
    ``[[polarimetry.instrumental]]`` entry) has none: zeros, said in ``source``.
    """
    table = INSTRUMENTAL_POLARIZATION.get(instrument)
    if table is None:
        return InstrumentalPolarization(
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, source=NO_ENTRY, instrument=instrument
        )
    current = table[0]
    for entry in table:
        if entry.valid_from <= when:
            current = entry
    return current


def configured_instrumental(
    entries, instrument: str, when: dt.datetime, band: str = ""
) -> InstrumentalPolarization:
    """The entry in force from config.toml's [[polarimetry.instrumental]] tables.

    ``entries`` are :class:`InstrumentalPolarization` values (``config.polarimetry.
    instrumental``); an entry with a band applies to that band only and wins over a
    band-less one of the same date. Without any entry for ``instrument`` the built-in
    reference values above are used.
    """
    candidates = [e for e in entries if e.instrument == instrument and e.band in ("", band)]
    candidates = [e for e in candidates if e.valid_from <= when]
    if not candidates:
        return instrumental_polarization(instrument, when)
    return max(candidates, key=lambda e: (e.valid_from, e.band != ""))
