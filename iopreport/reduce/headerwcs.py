"""A frame's own header WCS as a fallback when plate solving cannot be done, checked first.

When no index file covers a field, or solving fails, a celestial WCS in the
raw header (TAN or TAN-SIP keywords), or one built from the pointing keywords
with the instrument's plate scale and rotation, may still place the catalog
sources. It is used only after a check against the frame: the catalog sources
expected in the field must land on detections within
:data:`MATCH_TOLERANCE_ARCSEC`. When they all miss by one common displacement
(a pointing offset), the WCS is shifted by it (``header+shift``); otherwise it
is refused. Without a catalog source in the field, only the header WCS's own
geometry can be checked (its pixel scale against the instrument's), and the
method says the position is unverified. Pure functions: no store, no files.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

#: A catalog source counts as found when a detection lies within this of where the
#: WCS puts it (about a seeing FWHM: pointing models give 5-30", a plate solution <0.5").
MATCH_TOLERANCE_ARCSEC = 2.0
#: Largest pointing offset searched for (a header WCS further off is refused).
MAX_SHIFT_ARCSEC = 120.0
#: Catalog sources that must agree on one displacement before a shift is applied.
MIN_SHIFT_SOURCES = 3
#: Largest relative difference of a header WCS's pixel scale from the instrument's.
MAX_SCALE_DIFFERENCE = 0.05
#: Catalog sources closer than this to the edge (px) are not expected to be detected.
EDGE_MARGIN_PX = 10.0
#: Primary-WCS keywords of a FITS header (Greisen & Calabretta 2002; SIP: Shupe et al. 2005).
WCS_KEY = re.compile(
    r"^(WCSAXES|CTYPE\d|CRVAL\d|CRPIX\d|CDELT\d|CUNIT\d|CROTA\d|CD\d_\d|PC\d_\d|PV\d_\d+|"
    r"LONPOLE|LATPOLE|RADESYS|EQUINOX|WCSNAME|[AB]P?_ORDER|[AB]P?_\d+_\d+|[AB]_DMAX)$"
)

#: Method names recorded in ReducedFit.astrometry_method.
HEADER = "header"
HEADER_SHIFT = "header+shift"


@dataclass
class HeaderCheck:
    """Outcome of :func:`check_header_wcs`: a WCS to use, or why not."""

    wcs: WCS | None
    method: str = ""  # HEADER or HEADER_SHIFT when usable
    detail: str = ""  # what was checked and found (ReducedFit.astrometry_detail)
    error: str = ""  # why it was refused
    pair_offset: tuple[float, float] | None = None  # Wollaston frames: the E - O offset used

    @property
    def ok(self) -> bool:
        return self.wcs is not None


def header_celestial_wcs(header: fits.Header) -> WCS | None:
    """The celestial WCS of ``header`` (TAN, TAN-SIP, any projection astropy reads), or None."""
    if not any(key.startswith("CTYPE") for key in header):
        return None
    try:
        wcs = WCS(header, naxis=2, relax=True)
    except Exception:
        return None
    if not wcs.has_celestial or not np.all(np.isfinite(wcs.wcs.crval)):
        return None
    return wcs.celestial


def pointing_wcs(
    pointing: tuple[float, float],
    full_shape: tuple[int, int],
    origin: tuple[int, int],
    rotation_deg: float,
    flip: bool,
    pixscale_arcsec: float,
) -> WCS:
    """A TAN WCS from the header's pointing: the detector centre at ``pointing``, the
    instrument's plate scale and rotation (:func:`iopreport.reduce.quadwcs.tan_wcs`).

    ``full_shape`` is (nx, ny) of the whole detector at this binning, ``origin`` the
    (x, y) of this file's first pixel on it (sub-frames).
    """
    from iopreport.reduce.quadwcs import tan_wcs

    centre = ((full_shape[0] - 1) / 2.0 - origin[0], (full_shape[1] - 1) / 2.0 - origin[1])
    return tan_wcs(centre, pointing, rotation_deg, flip, pixscale_arcsec)


def check_header_wcs(
    wcs: WCS,
    xy: np.ndarray,
    shape: tuple[int, int],
    sources_radec: np.ndarray,
    pixscale_arcsec: float,
    *,
    tolerance_arcsec: float = MATCH_TOLERANCE_ARCSEC,
    max_shift_arcsec: float = MAX_SHIFT_ARCSEC,
    pair_offset: tuple[float, float] | None = None,
    target_radec: tuple[float, float] | None = None,
) -> HeaderCheck:
    """Check a header WCS against the frame; shift it when the sources say so.

    Parameters
    ----------
    xy : (N, 2) array
        0-based positions of the detections on the frame.
    shape : (ny, nx)
        The frame's shape.
    sources_radec : (M, 2) array
        RA, Dec (deg) of the catalog sources; those the WCS puts on the frame are
        the ones checked.
    pixscale_arcsec : float
        The instrument's plate scale at this binning.
    pair_offset : (dx, dy), optional
        Wollaston frames: the E image's displacement from the O image (the WCS is the
        O beam's). A source then counts only with both images on detections, so that
        a shift onto the E images (as good a match for a single beam) is not taken.
    target_radec : (ra, dec), optional
        The frame's target (from its OBJECT): a WCS that puts it off the frame is refused.
    """
    scale = float(np.mean(np.sqrt(np.sum(wcs.pixel_scale_matrix**2, axis=0)))) * 3600.0
    if not math.isfinite(scale) or abs(scale / pixscale_arcsec - 1.0) > MAX_SCALE_DIFFERENCE:
        return HeaderCheck(
            None,
            error=f"header WCS scale {scale:.4f}\"/px differs from the instrument's "
            f'{pixscale_arcsec:.4f}"/px by more than {100 * MAX_SCALE_DIFFERENCE:.0f}%',
        )
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if target_radec is not None and len(_predicted(wcs, shape, [target_radec], margin=0.0)) == 0:
        return HeaderCheck(None, error="header WCS refused: it puts the target off the frame")
    predicted = _predicted(wcs, shape, sources_radec)
    if len(predicted) == 0:
        if len(xy) == 0:
            return HeaderCheck(None, error="header WCS: no detections on the frame")
        return HeaderCheck(
            wcs,
            HEADER,
            detail=f'header WCS, scale {scale:.4f}"/px agrees with the instrument; position '
            "not verified: no catalog source in the field",
        )
    if len(xy) == 0:
        return HeaderCheck(None, error="header WCS: no detections to check it against")
    from scipy.spatial import cKDTree

    tree = cKDTree(xy)
    tolerance_px = tolerance_arcsec / scale
    pair = None if pair_offset is None else np.asarray(pair_offset, dtype=float)
    direct = _matches(tree, predicted, np.zeros(2), tolerance_px, pair)
    shift, shifted, ambiguous = _best_shift(
        tree, xy, predicted, tolerance_px, max_shift_arcsec / scale, pair
    )
    n = len(predicted)
    found = f'{{}} of {n} catalog source(s) within {tolerance_arcsec:g}"'
    needed_direct = min(2, n)
    if direct >= needed_direct and direct >= shifted:
        return HeaderCheck(wcs, HEADER, detail="header WCS checked: " + found.format(direct))
    needed_shift = max(MIN_SHIFT_SOURCES, math.ceil(n / 2))
    if shifted >= needed_shift and ambiguous:
        return HeaderCheck(
            None,
            error="header WCS refused: "
            + found.format(direct)
            + f" as written, and two different shifts each put {shifted} on detections",
        )
    if shifted >= needed_shift:
        moved = wcs.deepcopy()
        moved.wcs.crpix = [moved.wcs.crpix[0] + shift[0], moved.wcs.crpix[1] + shift[1]]
        offset_arcsec = float(np.hypot(*shift)) * scale
        return HeaderCheck(
            moved,
            HEADER_SHIFT,
            detail=f"header WCS shifted by ({shift[0]:.1f}, {shift[1]:.1f}) px = "
            f'{offset_arcsec:.1f}": ' + found.format(shifted) + " after the shift",
        )
    return HeaderCheck(
        None,
        error="header WCS refused: "
        + found.format(direct)
        + f' as written, {shifted} on any one shift up to {max_shift_arcsec:g}" '
        f"(needs {needed_direct} as written or {needed_shift} shifted)",
    )


def _predicted(wcs: WCS, shape, radec, margin: float = EDGE_MARGIN_PX) -> np.ndarray:
    """0-based pixel positions of the sources the WCS puts on the frame (``margin`` px
    from the edge)."""
    radec = np.asarray(radec, dtype=float).reshape(-1, 2)
    if len(radec) == 0:
        return np.zeros((0, 2))
    x, y = wcs.all_world2pix(radec[:, 0], radec[:, 1], 0)
    ny, nx = shape
    m = margin
    inside = np.isfinite(x) & np.isfinite(y) & (x >= m) & (y >= m) & (x < nx - m) & (y < ny - m)
    return np.column_stack([x[inside], y[inside]])


def _matches(tree, predicted, shift, tolerance_px, pair=None) -> int:
    """Sources with a detection within ``tolerance_px`` of ``predicted + shift`` (and, with
    ``pair``, another at the E image's place too)."""
    distance, _ = tree.query(predicted + shift)
    found = distance <= tolerance_px
    if pair is not None:
        distance, _ = tree.query(predicted + shift + pair)
        found &= distance <= tolerance_px
    return int(np.sum(found))


def _best_shift(tree, xy, predicted, tolerance_px, radius_px, pair=None):
    """The displacement that puts the most sources on detections (refined: the median of
    their displacements), how many it puts there, and whether another displacement
    (further than twice the tolerance from it) does as well."""
    candidates = [xy[j] - p for p in predicted for j in tree.query_ball_point(p, radius_px)]
    counts = [_matches(tree, predicted, c, tolerance_px, pair) for c in candidates]
    if not counts or max(counts) == 0:
        return np.zeros(2), 0, False
    best_count = max(counts)
    best = candidates[counts.index(best_count)]
    ambiguous = any(
        count == best_count and np.hypot(*(c - best)) > 2 * tolerance_px
        for c, count in zip(candidates, counts, strict=True)
    )
    distance, index = tree.query(predicted + best)
    near = distance <= tolerance_px
    refined = np.median(xy[index[near]] - predicted[near], axis=0)
    refined_count = _matches(tree, predicted, refined, tolerance_px, pair)
    if refined_count < best_count:
        refined, refined_count = best, best_count
    return refined, refined_count, ambiguous


def strip_wcs(header: fits.Header) -> None:
    """Remove the primary WCS keywords from ``header`` in place (before writing a new WCS);
    a header without a ``CTYPE`` keeps everything (its EQUINOX may date its pointing)."""
    if not any(key.startswith("CTYPE") for key in header):
        return
    for key in [k for k in header if WCS_KEY.match(k)]:
        header.remove(key, ignore_missing=True, remove_all=True)
