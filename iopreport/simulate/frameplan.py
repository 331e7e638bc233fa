"""One planned exposure: what the simulator renders and writes as one FITS file.

A :class:`FramePlan` holds everything about an exposure except its pixels:
instrument, times, window, band and polarimetric angle, pointing, geometry,
observing conditions and requested faults. :func:`iopreport.simulate.plan.plan_night`
makes them; rendering, headers and faults read them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from iopreport.instruments import InstrumentSpec
from iopreport.simulate.render import Window


@dataclass(frozen=True)
class FramePlan:
    """One exposure to simulate. Times are naive UTC."""

    telescope: str
    instrument: str
    night: dt.date
    imgtype: str  # bias | dark | flat | light
    exptime: float
    start: dt.datetime
    binning: int
    window: Window
    full_shape: tuple[int, int]  # (ny, nx) of the whole detector at this binning
    band: str | None = None
    obsmode: str | None = None  # photometry | polarimetry
    angle: float | None = None
    object_name: str = ""
    target: str | None = None
    pointing: tuple[float, float] | None = None  # commanded (header) position, deg
    centre: tuple[float, float] | None = None  # true position of the detector centre, deg
    rotation_deg: float = 0.0
    flip: bool = False
    seeing_arcsec: float = 0.0
    transparency: float = 1.0
    sequence: str | None = None
    spelling: int = 0
    faults: tuple[str, ...] = ()
    trail_px: tuple[float, float] = (0.0, 0.0)
    flat_level_adu: float = 0.0
    #: The instrument's spec, from the registry the night was planned with.
    spec: InstrumentSpec | None = field(default=None, compare=False, repr=False)

    @property
    def mid_time(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.exptime / 2.0)
