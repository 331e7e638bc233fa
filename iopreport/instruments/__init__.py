"""What iopreport knows about each instrument: geometry, detector, header conventions, optics.

An instrument is data (:class:`InstrumentSpec`) plus the few hooks the
reduction needs (``has_pairs``, ``solves_by_quads``, ``flats_per_pol_setup``,
``hwp_average``), and a header dialect per family (:mod:`.dialect`, :mod:`.osn`,
:mod:`.cafos`, :mod:`.dipol`, :mod:`.generic`); adding one must not touch the
reduction code. Every number cites where it comes from: IOP4's code (its
instrument and telescope classes), the IOP4 paper (Escudero Pedrosa et al.
2024), or "simulator assumption" where no published value exists and the
simulator needs one. See docs/architecture.md.
"""

from iopreport.instruments.polarization import (
    INSTRUMENTAL_POLARIZATION,
    InstrumentalPolarization,
    instrumental_polarization,
)
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.instruments.specs import BUILTIN_SPECS, InstrumentSpec

__all__ = [
    "BUILTIN_SPECS",
    "INSTRUMENTAL_POLARIZATION",
    "InstrumentRegistry",
    "InstrumentSpec",
    "InstrumentalPolarization",
    "instrumental_polarization",
]
