"""The references of DIPOL polarimetry sub-frames: solved photometry frames of the same field.

A sub-frame has too few stars for a blind solve; its astrometry matches quads
against a solved full frame of its target (:mod:`iopreport.reduce.quads`), or
takes the night's orientation for the central-pair fallback. Reads the store
and the reduced files only. See docs/architecture.md (reduction).
"""

from __future__ import annotations

import numpy as np

from iopreport.catalog import Catalog
from iopreport.config import Config
from iopreport.identify import identify_target
from iopreport.reduce.frametask import ReferenceFrame
from iopreport.store import Epoch, RawFit, ReducedFit, ReducedFitFlags


class SolvedDipolFrames:
    """The solved DIPOL photometry frames in the store (any night), queried once: references
    for the polarimetry cuts of their target, and the night's orientation for cuts whose
    target has none. Files are looked at only for the frames chosen (an archive's history
    holds thousands), each header read at most once.
    """

    def __init__(self, config: Config, catalog: Catalog) -> None:
        registry = config.registry
        query = (
            ReducedFit.select(ReducedFit, RawFit)
            .join(RawFit)
            .where(
                RawFit.instrument.in_(registry.quad_instruments())
                & (RawFit.obsmode == "photometry")
                & (RawFit.imgtype == "light")
                & (ReducedFit.flags.bin_and(int(ReducedFitFlags.ASTROMETRY_OK)) != 0)
            )
        )
        self.datadir = config.paths.datadir
        self.frames = [
            (reduced, identify_target(reduced.rawfit.object_name or "", catalog.sources))
            for reduced in query
        ]
        self._headers: dict[int, object] = {}
        self._orientations: dict[tuple[int, bool], tuple[float, bool] | None] = {}

    def _header(self, reduced: ReducedFit):
        from astropy.io import fits

        if reduced.id not in self._headers:
            self._headers[reduced.id] = fits.getheader(self.datadir / reduced.filename)
        return self._headers[reduced.id]

    def reference(self, target: str, epoch: Epoch, rawfit: RawFit) -> ReferenceFrame | None:
        """``target``'s solved frame nearest in time to ``rawfit`` (this night first) whose
        file is there."""
        candidates = [reduced for reduced, name in self.frames if name == target]
        candidates.sort(  # stable: among equals, the first in the store's order
            key=lambda reduced: (
                reduced.rawfit.epoch_id != epoch.id,
                abs((reduced.rawfit.juliandate or 0.0) - rawfit.juliandate),
            )
        )
        for reduced in candidates:
            path = self.datadir / reduced.filename
            if path.exists():
                flipped = str(self._header(reduced).get("FLIPSTAT", "")).strip().lower() == "flip"
                binning = int((reduced.rawfit.binning or "1x1").split("x")[0])
                return ReferenceFrame(path, flipped, binning)
        return None

    def orientation(self, epoch: Epoch, flipped: bool) -> tuple[float, bool] | None:
        """Median (rotation, flip) of ``epoch``'s frames (any target) with that flip state.

        DIPOL's orientation on the sky is about the same for every target of a
        night with the same flip state: a cut without a reference frame of its
        own target takes this instead of the nominal 177.6 deg (on real nights
        the rotation moves with maintenance; on simulated ones each frame's
        scatters by a degree or more, so no single frame is taken).
        """
        from astropy.wcs import WCS

        from iopreport.reduce.quadwcs import rotation_from_wcs

        key = (epoch.id, flipped)
        if key in self._orientations:
            return self._orientations[key]
        rotations = []
        for reduced, _ in self.frames:
            if reduced.rawfit.epoch_id != epoch.id:
                continue
            if not (self.datadir / reduced.filename).exists():
                continue
            rotation, flip = rotation_from_wcs(WCS(self._header(reduced), relax=True))
            if flip == flipped:
                rotations.append(rotation)
        found = None
        if rotations:
            same = np.array(rotations)
            unwrapped = (same - same[0] + 180.0) % 360.0 - 180.0 + same[0]
            found = (float(np.median(unwrapped)) % 360.0, flipped)
        self._orientations[key] = found
        return found
