"""Plate solving with astrometry.net through the ``astrometry`` package, and Wollaston pairs.

Against the reference (IOP4's astrometry): one :class:`PlateSolver`
per worker process is kept alive (the pool recycles workers after a number of
frames, since the upstream solver leaks memory) instead of a new process per
attempt; the retry ladder is a fixed, ordered list; each solve has a
wall-clock budget, and quads come from the brightest stars only, so a hopeless
frame fails in a fraction of a second instead of minutes
(astrometry.net's documentation).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

#: Size hint margin around the instrument's pixel scale (the offline notes:
#: a hint that narrowly misses the true scale is the killer; use 10% or more).
SCALE_MARGIN = 0.15
#: Position hint radius in degrees (well above any pointing error).
POSITION_RADIUS_DEG = 0.5
#: Quads are built from at most this many of the brightest stars.
MAX_QUAD_STARS = 60
#: Field quads tried per slice (bounds hopeless solves).
MAXIMUM_QUADS = 4000
#: Log-odds a match needs to be accepted (the solver's default output threshold).
OUTPUT_LOGODDS = 21.0
#: Fewest stars worth sending to the solver.
MIN_STARS = 8


def index_files_in(directory: Path) -> list[Path]:
    """The astrometry.net index files under a directory, whatever their names.

    Files are recognised by their FITS header
    (:func:`iopreport.indexfiles.identify.scan_index_folder`), each header read
    once per process; the others are left out (the run reports them once).
    """
    from iopreport.indexfiles.identify import scan_index_folder

    return scan_index_folder(directory).files


@dataclass
class SolveResult:
    """Outcome of one solve: a WCS, or the reason there is none."""

    wcs: WCS | None
    logodds: float = math.nan
    n_stars: int = 0
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.wcs is not None


class PlateSolver:
    """An astrometry.net solver over a set of index files, kept for many frames."""

    def __init__(self, index_files: list[Path]):
        import astrometry

        if not index_files:
            raise ValueError("no astrometry.net index files")
        self._astrometry = astrometry
        self._solver = astrometry.Solver([Path(p) for p in index_files])
        self.solves = 0

    def close(self) -> None:
        self._solver.close()

    def solve(
        self,
        xy: np.ndarray,
        *,
        scale_arcsec: float,
        position: tuple[float, float] | None,
        budget_s: float,
    ) -> SolveResult:
        """Solve star positions ``xy`` (0-based, brightest first).

        Parameters
        ----------
        scale_arcsec : float
            Expected pixel scale; the hint is +-:data:`SCALE_MARGIN` around it.
        position : (ra, dec) or None
            Pointing hint in degrees, searched within :data:`POSITION_RADIUS_DEG`.
        budget_s : float
            Wall-clock budget: no new slice of stars is started after it.
        """
        astrometry = self._astrometry
        self.solves += 1
        started = time.monotonic()
        if len(xy) < MIN_STARS:
            return SolveResult(None, n_stars=len(xy), error=f"only {len(xy)} stars detected")
        deadline = started + budget_s

        def slices(count: int):
            for size in (20, 40, MAX_QUAD_STARS, 2 * MAX_QUAD_STARS, 4 * MAX_QUAD_STARS):
                if time.monotonic() > deadline:
                    return
                yield (0, min(count, size))
                if size >= count:
                    return

        parameters = astrometry.SolutionParameters(
            sip_order=1,
            tune_up_logodds_threshold=14.0,
            output_logodds_threshold=OUTPUT_LOGODDS,
            maximum_quads=MAXIMUM_QUADS,
            slices_generator=slices,
            logodds_callback=lambda logodds: astrometry.Action.STOP,
        )
        hint = None
        if position is not None:
            hint = astrometry.PositionHint(
                ra_deg=float(position[0]) % 360.0,
                dec_deg=float(position[1]),
                radius_deg=POSITION_RADIUS_DEG,
            )
        size = astrometry.SizeHint(
            lower_arcsec_per_pixel=scale_arcsec * (1 - SCALE_MARGIN),
            upper_arcsec_per_pixel=scale_arcsec * (1 + SCALE_MARGIN),
        )
        stars = [(float(x) + 1.0, float(y) + 1.0) for x, y in xy[:200]]  # FITS 1-based
        solution = self._solver.solve(stars, size, hint, parameters)
        seconds = time.monotonic() - started
        if not solution.has_match():
            reason = "no match" if seconds < budget_s else f"no match within {budget_s:.0f} s"
            return SolveResult(None, n_stars=len(xy), seconds=seconds, error=reason)
        match = solution.best_match()
        header = fits.Header()
        for key, (value, comment) in match.wcs_fields.items():
            header[key] = (value, comment)
        for axis in (1, 2):  # sip_order may leave a SIP CTYPE without A_/B_ terms
            ctype = header.get(f"CTYPE{axis}", "")
            if ctype.endswith("-SIP") and "A_ORDER" not in header:
                header[f"CTYPE{axis}"] = ctype[:-4]
        return SolveResult(
            WCS(header, relax=True), logodds=match.logodds, n_stars=len(xy), seconds=seconds
        )


@dataclass(frozen=True)
class Pairs:
    """Wollaston image pairs: indices of right-hand (O) and left-hand (E) detections."""

    o_index: np.ndarray
    e_index: np.ndarray
    offset: tuple[float, float]  # median E - O displacement


def find_pairs(
    x: np.ndarray,
    y: np.ndarray,
    expected: tuple[float, float],
    tolerance: tuple[float, float],
) -> Pairs | None:
    """Pair detections displaced by about ``expected`` (E = O + offset).

    The offset is refined from the histogram of all displacements within
    ``tolerance`` of the expected one (the instrument's known offset seeds
    it; IOP4's astrometry), then each source keeps its closest partner.
    """
    from scipy.spatial import cKDTree

    if len(x) < 2:
        return None
    points = np.column_stack([x, y])
    tree = cKDTree(points)
    radius = float(np.hypot(*tolerance))
    displacements = []
    for i, (xi, yi) in enumerate(points):
        for j in tree.query_ball_point((xi + expected[0], yi + expected[1]), radius):
            if j != i:
                displacements.append(points[j] - points[i])
    if not displacements:
        return None
    displacements = np.array(displacements)
    # histogram peak: the densest 1-px cell of displacements, then their median
    cells = np.round(displacements).astype(int)
    values, counts = np.unique(cells, axis=0, return_counts=True)
    peak = values[np.argmax(counts)]
    near = np.hypot(*(displacements - peak).T) <= 2.0
    offset = np.median(displacements[near], axis=0)
    o_list, e_list = [], []
    used = set()
    for i, (xi, yi) in enumerate(points):
        distance, j = tree.query((xi + offset[0], yi + offset[1]))
        if j != i and distance <= 2.0 and j not in used:
            o_list.append(i)
            e_list.append(j)
            used.add(j)
    if not o_list:
        return None
    return Pairs(np.array(o_list), np.array(e_list), (float(offset[0]), float(offset[1])))


def pair_wcs(wcs: WCS, offset: tuple[float, float]) -> WCS:
    """WCS of the E beam: the O beam's, shifted by the pair offset."""
    shifted = wcs.deepcopy()
    shifted.wcs.crpix = [shifted.wcs.crpix[0] + offset[0], shifted.wcs.crpix[1] + offset[1]]
    return shifted
