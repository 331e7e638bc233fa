"""The job of one science frame and what became of it (picklable, no pixels).

The planner (:mod:`iopreport.reduce.plan`) makes :class:`FrameTask` values;
a worker reduces each (:func:`iopreport.reduce.frame.reduce_frame`) and
returns a :class:`FrameOutcome`, which the parent writes to the database
(:mod:`iopreport.reduce.persist`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from iopreport.instruments import InstrumentSpec
from iopreport.reduce.classify import FrameInfo
from iopreport.reduce.measure import SkySource
from iopreport.reduce.photometry import Measurement


@dataclass(frozen=True)
class ReferenceFrame:
    """A solved full-frame DIPOL photometry image of the same field (for sub-frame astrometry)."""

    path: Path
    flipped: bool
    binning: int


@dataclass(frozen=True)
class FrameTask:
    """Inputs of one science frame's reduction (all picklable)."""

    raw_path: Path
    reduced_path: Path
    info: FrameInfo
    bias_path: Path | None
    dark_path: Path | None
    flat_path: Path | None
    sources: tuple[SkySource, ...]
    position_hint: tuple[float, float] | None
    index_dir: Path
    budget_s: float
    spec: InstrumentSpec  # carried along: workers may not know config-defined instruments
    target_radec: tuple[float, float] | None = None  # the identified target's catalog position
    reference: ReferenceFrame | None = None  # DIPOL polarimetry sub-frames only
    #: (rotation, flip) of a solved DIPOL frame of the night with the same flip state
    #: (sub-frames without a reference: the central-pair fallback's orientation)
    orientation: tuple[float, bool] | None = None
    index_state: str = ""  # fingerprint of the index folder (reduce.night.index_folder_state)
    field_radec: tuple[tuple[float, float], ...] = ()  # the target's calibrators (sub-frames)
    #: the night's seeing trend around this frame (px), when a first measurement disagreed
    seeing_hint_px: float | None = None


@dataclass
class FrameOutcome:
    """What became of a frame."""

    raw_path: Path
    reduced_path: Path | None = None
    error: str = ""
    stage: str = ""  # where it failed: read, calibrate, astrometry, photometry
    #: how the WCS was found: solved, quads, central-pair, header, header+shift
    astrometry_method: str = ""
    astrometry_detail: str = ""  # which attempt, and what it matched
    #: the WCS comes from a header's (this frame's, or its sub-frame reference's)
    header_wcs: bool = False
    wcs_header: dict = field(default_factory=dict)
    center: tuple[float, float] | None = None
    pixscale_arcsec: float | None = None
    seeing_fwhm_px: float | None = None
    aperture_px: tuple[float, float, float] | None = None
    n_detected: int = 0
    n_cosmic_pixels: int = 0
    measurements: list[Measurement] = field(default_factory=list)
    in_field: dict[str, tuple[float, float]] = field(default_factory=dict)
    field_stars: list[tuple[float, float, Measurement]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    saturated: bool = False  # too many saturated pixels to measure (RawFitFlags.SATURATED)
    cpu_s: float = 0.0  # processor time the worker spent on the frame
    peak_rss_mb: float = 0.0  # the worker's peak resident memory so far
    pid: int = 0

    @property
    def ok(self) -> bool:
        return not self.error
