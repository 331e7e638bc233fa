"""What iopreport knows about each instrument: geometry, detector, header conventions, optics.

An instrument is data (:class:`InstrumentSpec`) plus the few hooks the
reduction needs; adding one must not touch the reduction code. Every number
cites where it comes from: the IOP4 reference (reference/iop4.md section
given), the IOP4 paper (seed 004), or "simulator assumption" where no
published value exists and the simulator needs one.
"""

from iopreport.instruments.polarization import (
    INSTRUMENTAL_POLARIZATION,
    InstrumentalPolarization,
    instrumental_polarization,
)
from iopreport.instruments.specs import INSTRUMENTS, InstrumentSpec, instrument, quad_instruments

__all__ = [
    "INSTRUMENTAL_POLARIZATION",
    "INSTRUMENTS",
    "InstrumentSpec",
    "InstrumentalPolarization",
    "instrument",
    "instrumental_polarization",
    "quad_instruments",
]
