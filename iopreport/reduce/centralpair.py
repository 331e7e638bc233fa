"""Fallback astrometry of a polarimetric sub-frame: the target is the O/E pair nearest the centre.

:func:`central_pair_wcs` builds a WCS from the single O/E pair nearest the
image centre, at the target's catalog position, with a rotation and parity
known from elsewhere (e.g. :func:`iopreport.reduce.quadwcs.rotation_from_wcs` of
a solved photometry frame; IOP4's astrometry "target_O_and_E"). Used when
quad matching against a solved frame (:mod:`iopreport.reduce.quads`) fails.
See docs/dipol-astrometry.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from iopreport.reduce.beammodel import default_scatter
from iopreport.reduce.quadwcs import tan_wcs

#: A known field star counts as found by a candidate pair of the fallback when
#: a detection lies this close to where the pair puts it (a 2 deg rotation
#: error moves a star 50" away by 1.7").
FIELD_TOLERANCE_ARCSEC = 4.0


@dataclass(frozen=True)
class CentralPair:
    """The O/E pair taken for the target: indices of its right-hand (O) and left-hand (E) images."""

    o_index: int
    e_index: int
    offset: tuple[float, float]  # measured E - O displacement, px
    centre_distance_px: float  # of the pair's midpoint (or O image) from where it was expected
    field_matches: int = 0  # known field stars found where this pair puts them


#: With fluxes, pairs fainter than FAINT_PAIR_FRACTION of the brightest pair within
#: CENTRAL_ZONE_FRACTION of the frame's smaller side from its centre are not the
#: target (the target of a polarimetric exposure is exposed for; its calibrators
#: may be brighter, so the brightest pair does not simply win).
CENTRAL_ZONE_FRACTION = 0.25
FAINT_PAIR_FRACTION = 0.02


def central_pair(
    x: np.ndarray,
    y: np.ndarray,
    shape: tuple[int, int],
    oe_offset: tuple[float, float],
    scatter_px: tuple[float, float],
    expected_o_xy: tuple[float, float] | None = None,
    field_offsets_px: np.ndarray | None = None,
    field_tolerance_px: float = 0.0,
    flux: np.ndarray | None = None,
) -> CentralPair | None:
    """The pair nearest the image centre displaced by ``oe_offset`` within ``scatter_px``.

    With ``flux`` (of each detection), pairs fainter than
    :data:`FAINT_PAIR_FRACTION` of the brightest pair near the centre
    (:data:`CENTRAL_ZONE_FRACTION`) come last: the observer centres the target
    only roughly, and a faint pair 32 px from the centre beat Hiltner 960's at
    39 px and gave a WCS 14" off.

    Two detections pair when the per-axis differences between their
    displacement and ``oe_offset`` are within ``scatter_px`` (an ellipse).
    The right-hand member (larger x) is O, as IOP4 labels it
    (IOP4's astrometry). "Nearest" compares the pair's midpoint with
    the image centre (DIPOL centres the cut on the target's pair), or, with
    ``expected_o_xy``, the pair's O image with that position.

    With ``field_offsets_px`` ((K, 2): where other known stars, e.g. the
    target's calibrators, sit relative to the target's O image), each pair
    is first scored by how many of those positions, counted from its O
    image and falling inside the image, hold a detection within
    ``field_tolerance_px``; the best-scoring pairs compete on distance.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return None
    ny, nx = shape
    centre = np.array([(nx - 1) / 2.0, (ny - 1) / 2.0])
    dx = x[None, :] - x[:, None]  # displacement from i to j
    dy = y[None, :] - y[:, None]
    sx, sy = scatter_px
    misfit = ((dx - oe_offset[0]) / sx) ** 2 + ((dy - oe_offset[1]) / sy) ** 2
    first, second = np.nonzero(misfit <= 1.0)
    if not len(first):
        return None
    right = np.where(x[first] >= x[second], first, second)
    if expected_o_xy is None:
        where = np.column_stack([(x[first] + x[second]) / 2.0, (y[first] + y[second]) / 2.0])
    else:
        where = np.column_stack([x[right], y[right]])
        centre = np.asarray(expected_o_xy, dtype=float)
    distance = np.hypot(*(where - centre).T)
    score = np.zeros(len(first), dtype=int)
    if field_offsets_px is not None and len(field_offsets_px):
        score = _field_score(x, y, shape, right, np.asarray(field_offsets_px), field_tolerance_px)
    faint = np.zeros(len(first), dtype=bool)
    if flux is not None:
        flux = np.asarray(flux, dtype=float)
        pair_flux = flux[first] + flux[second]
        central = distance <= CENTRAL_ZONE_FRACTION * min(nx, ny)
        brightest = pair_flux[central].max() if central.any() else pair_flux.max()
        faint = pair_flux < FAINT_PAIR_FRACTION * brightest
    # best field score; then pairs not far fainter than the brightest central one;
    # then the nearest
    best = int(np.lexsort((distance, faint, -score))[0])
    i, j = int(first[best]), int(second[best])
    o, e = (i, j) if x[i] >= x[j] else (j, i)
    return CentralPair(
        o_index=o,
        e_index=e,
        offset=(float(x[e] - x[o]), float(y[e] - y[o])),
        centre_distance_px=float(distance[best]),
        field_matches=int(score[best]),
    )


def _field_score(x, y, shape, o_index, offsets, tolerance) -> np.ndarray:
    """Per candidate O image: known field stars found at their predicted positions."""
    from scipy.spatial import cKDTree

    ny, nx = shape
    tree = cKDTree(np.column_stack([x, y]))
    predicted = np.column_stack([x[o_index], y[o_index]])[:, None, :] + offsets[None, :, :]
    inside = (
        (predicted[..., 0] >= 0)
        & (predicted[..., 0] <= nx - 1)
        & (predicted[..., 1] >= 0)
        & (predicted[..., 1] <= ny - 1)
    )
    distance, _ = tree.query(predicted.reshape(-1, 2), distance_upper_bound=tolerance, workers=1)
    found = np.isfinite(distance).reshape(inside.shape) & inside
    return found.sum(axis=1)


def central_pair_wcs(
    detections,
    shape: tuple[int, int],
    target_radec: tuple[float, float],
    oe_offset: tuple[float, float],
    rotation_deg: float,
    flip: bool,
    pixscale: float,
    *,
    scatter_px: tuple[float, float] | None = None,
    expected_o_xy: tuple[float, float] | None = None,
    field_radec: np.ndarray | None = None,
    field_tolerance_arcsec: float = FIELD_TOLERANCE_ARCSEC,
) -> WCS | None:
    """Fallback WCS: the target is the O/E pair nearest the image centre.

    Parameters
    ----------
    detections : Detections
        Sources of the frame (:func:`iopreport.reduce.detect.detect`).
    shape : (ny, nx)
        Image shape.
    target_radec : (ra, dec)
        The target's catalog position, degrees.
    oe_offset : (dx, dy)
        Expected E - O displacement in this frame's pixels (scaled for
        binning, dy negated for a flipped image, as the frame worker does).
    rotation_deg, flip : float, bool
        Orientation in the convention of :func:`rotation_from_wcs` (e.g. from
        a solved photometry frame of the night, or DIPOL's typical 177.6 deg).
    pixscale : float
        Arcsec per pixel at this binning.
    scatter_px : (sx, sy) or None
        Allowed deviation from ``oe_offset``; by default 3 sigma of DIPOL's
        measured scatter (12, 16) px at 2x2 (IOP4's astrometry), scaled
        like ``oe_offset``.
    expected_o_xy : (x, y) or None
        Where the target's O image is expected; by default the pair whose
        midpoint is nearest the image centre wins.
    field_radec : (K, 2) array or None
        Catalog positions (degrees) of other stars near the target, e.g. its
        calibrators: the pair that puts the most of them on detections (within
        ``field_tolerance_arcsec``) wins before distance is considered. This
        catches a brighter neighbour's pair sitting nearer the centre than
        the target's.

    Returns
    -------
    WCS or None
        TAN WCS of the right-hand (O) beam with the target's position at the
        O image, or None without a suitable pair. The E beam's WCS is
        :func:`iopreport.reduce.astrometry.pair_wcs` of it with the pair's
        offset (:func:`central_pair` measures it).
    """
    if scatter_px is None:
        scatter_px = default_scatter(oe_offset)
    offsets = None
    if field_radec is not None and len(field_radec):
        field = np.asarray(field_radec, dtype=float).reshape(-1, 2)
        origin = tan_wcs((0.0, 0.0), target_radec, rotation_deg, flip, pixscale)
        offsets = np.column_stack(origin.world_to_pixel_values(field[:, 0], field[:, 1]))
    pair = central_pair(
        detections.x,
        detections.y,
        shape,
        oe_offset,
        scatter_px,
        expected_o_xy,
        field_offsets_px=offsets,
        field_tolerance_px=field_tolerance_arcsec / pixscale,
        flux=detections.flux,
    )
    if pair is None:
        return None
    o = (float(detections.x[pair.o_index]), float(detections.y[pair.o_index]))
    wcs = tan_wcs(o, target_radec, rotation_deg, flip, pixscale)
    wcs.pixel_shape = (shape[1], shape[0])
    return wcs
