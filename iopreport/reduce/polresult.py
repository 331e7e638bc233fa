"""What the polarimetry of a night works on and gives: beam fluxes, member frames, results.

:class:`FrameFluxes` holds what the frame reduction stored for one member
frame of a sequence (each source's flux per beam, :class:`BeamFlux`, and the
field stars of polarizer-wheel frames); :class:`SequenceResult` what
:mod:`iopreport.reduce.polnight` computed from a sequence of them, which
:func:`iopreport.reduce.persist.store_sequences` writes as one
``PhotoPolResult``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from iopreport.reduce.photometry import ZeroPoint
from iopreport.reduce.sequences import PolFrame
from iopreport.stokes import Stokes
from iopreport.store import RawFit
from iopreport.store.bits import PhotometryFlags, ResultFlags

#: Beam measurements with these flags are not used.
UNUSABLE = PhotometryFlags.SATURATED | PhotometryFlags.NEAR_EDGE


@dataclass
class BeamFlux:
    flux: float
    err: float
    flags: int


@dataclass
class FrameFluxes:
    """Fluxes measured on one member frame, by source name and beam label."""

    frame: PolFrame
    rawfit: RawFit
    solved: bool
    beams: dict[tuple[str, str], BeamFlux] = field(default_factory=dict)
    aperture_px: float | None = None
    fwhm_px: float | None = None
    pixscale: float | None = None
    field_stars: list[tuple[float, float, BeamFlux]] = field(default_factory=list)

    def get(self, name: str, beam: str) -> BeamFlux | None:
        value = self.beams.get((name, beam))
        if value is None or value.flags & UNUSABLE or not (value.flux > 0):
            return None
        if not math.isfinite(value.err):
            return None
        return value


@dataclass
class SequenceResult:
    """What one sequence gave (stored as one PhotoPolResult)."""

    target: str
    members: list[FrameFluxes]
    method: str = ""
    raw: Stokes | None = None
    sky: Stokes | None = None
    p_sys_err: float | None = None
    chi_sys_err: float | None = None
    mag: tuple[float, float, ZeroPoint | None] | None = None  # inst, inst_err, zero point
    flux: tuple[float, float] | None = None
    flags: ResultFlags = ResultFlags.BAD_PHOTOMETRY & 0
    error: str = ""
    notes: list[str] = field(default_factory=list)
    used: list[FrameFluxes] = field(default_factory=list)  # frames the method used
    factor: np.ndarray | None = None  # their transparency factors (wheel)
