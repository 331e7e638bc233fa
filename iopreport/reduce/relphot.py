"""Relative photometry of one frame: zero points from the calibrators, then magnitudes.

A pure function of the summed beam fluxes and the catalog (IOP4's relative
photometry, Escudero Pedrosa et al. 2024, §3.4: the target's magnitude from
its calibrators' literature magnitudes through a weighted zero point,
:func:`iopreport.reduce.photometry.zero_point`). It returns plain values;
:mod:`iopreport.reduce.persist` writes them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from iopreport.catalog import Catalog
from iopreport.reduce.photometry import ZeroPoint, zero_point
from iopreport.store.bits import PhotometryFlags, ResultFlags

#: Magnitude error above which a result is flagged LARGE_MAG_ERROR (the reference's 0.3).
LARGE_MAG_ERROR = 0.3
#: Fewest calibrators for a trusted zero point.
MIN_CALIBRATORS = 2


@dataclass(frozen=True)
class RelPhot:
    """One target's relative photometry in one frame."""

    name: str
    flux: float
    flux_err: float
    mag_inst: float
    mag_inst_err: float
    zp: ZeroPoint | None
    mag: float | None
    mag_err: float | None
    flags: ResultFlags


def instrumental_mag(flux: float, variance: float) -> tuple[float, float]:
    """-2.5 log10(flux) and its error from the flux variance (first-order propagation)."""
    return -2.5 * math.log10(flux), 2.5 / math.log(10) * math.sqrt(variance) / flux


def relative_photometry(
    totals: Mapping[str, tuple[float, float, int]],
    catalog: Catalog,
    band: str,
    known: Collection[str],
) -> list[RelPhot]:
    """Magnitudes of the targets in ``totals`` that have calibrators, in ``totals`` order.

    Parameters
    ----------
    totals
        Source name -> (flux, variance, PhotometryFlags) summed over its beams.
    catalog
        The sources, their calibrators and the calibrators' magnitudes.
    band
        The frame's band.
    known
        Names that may get a result (those with a row in the store).
    """
    found = []
    for name, (flux, variance, mflags) in totals.items():
        entry = catalog.get(name)
        if entry is None or not entry.calibrators or not flux > 0 or name not in known:
            continue
        mag_inst, mag_inst_err = instrumental_mag(flux, variance)
        calibrators = []
        for calibrator in entry.calibrators:
            other = catalog.get(calibrator)
            if calibrator not in totals or other is None or band not in other.mags:
                continue
            c_flux, c_variance, c_flags = totals[calibrator]
            if not c_flux > 0 or c_flags & PhotometryFlags.SATURATED:
                continue
            c_mag, c_err = instrumental_mag(c_flux, c_variance)
            calibrators.append((c_mag, c_err, other.mags[band].value, other.mags[band].err))
        zp = zero_point(calibrators)
        flags = ResultFlags(0)
        mag = mag_err = None
        if zp is not None:
            mag = mag_inst + zp.value
            mag_err = math.hypot(mag_inst_err, zp.error)
        if zp is None or zp.n_used < MIN_CALIBRATORS:
            flags |= ResultFlags.FEW_CALIBRATORS | ResultFlags.BAD_PHOTOMETRY
        if mag_err is not None and mag_err > LARGE_MAG_ERROR:
            flags |= ResultFlags.LARGE_MAG_ERROR | ResultFlags.BAD_PHOTOMETRY
        if mflags & PhotometryFlags.SATURATED:
            flags |= ResultFlags.TARGET_SATURATED | ResultFlags.BAD_PHOTOMETRY
        found.append(
            RelPhot(
                name,
                flux,
                math.sqrt(variance),
                mag_inst,
                mag_inst_err,
                zp,
                mag,
                mag_err,
                flags,
            )
        )
    return found
