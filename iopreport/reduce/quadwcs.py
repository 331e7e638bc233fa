"""WCS of a DIPOL sub-frame from its quad match, and the TAN WCS helpers around it.

:func:`wcs_from_reference` carries a solved reference frame's WCS onto a
sub-frame through the similarity transform :mod:`iopreport.reduce.quads`
found, by fitting a TAN WCS to a grid of mapped points (astropy
``fit_wcs_from_points``). :func:`rotation_from_wcs` reads the rotation and
parity of a solved frame (the "history angle" of IOP4's astrometry), and
:func:`tan_wcs` builds a TAN WCS from a position, rotation, parity and
plate scale (the central-pair fallback, the header's pointing).
"""

from __future__ import annotations

import math

import numpy as np
from astropy.wcs import WCS

from iopreport.reduce.quads import Similarity

#: Grid points per axis mapped through the reference WCS to fit the sub-frame WCS.
WCS_GRID = 7


def wcs_from_reference(ref_wcs: WCS, transform: Similarity, sub_shape: tuple[int, int]) -> WCS:
    """The sub-frame's TAN WCS, through the transform and the reference's WCS.

    A :data:`WCS_GRID` x :data:`WCS_GRID` grid over the sub-frame (``sub_shape``
    is (ny, nx)) is mapped into reference pixels, then to the sky with
    ``ref_wcs`` (its distortion included, if any), and a TAN WCS is fitted to
    those points (astropy ``fit_wcs_from_points``). The grid spans the whole
    sub-frame, so the fit is as good at the corners as at the centre; the
    transform itself was fitted on every matched source. The result
    describes the beam ``ref_wcs`` describes.
    """
    from astropy.wcs.utils import fit_wcs_from_points

    ny, nx = sub_shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, WCS_GRID), np.linspace(0, ny - 1, WCS_GRID))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    ref = transform.apply(grid)
    sky = ref_wcs.pixel_to_world(ref[:, 0], ref[:, 1])
    wcs = fit_wcs_from_points((grid[:, 0], grid[:, 1]), sky, proj_point="center", projection="TAN")
    wcs.pixel_shape = (nx, ny)
    return wcs


def rotation_from_wcs(wcs: WCS) -> tuple[float, bool]:
    """(rotation_deg, flip) of a celestial WCS, in the convention of :func:`central_pair_wcs`.

    The rotation is the position angle of the image +y axis East of North
    for an unflipped image (DIPOL: about 177.6 deg, IOP4's instrument classes);
    ``flip`` is True when the image has the other parity. IOP4 takes the
    same angle from the photometry frames of the night ("history angle",
    IOP4's astrometry).
    """
    cd = wcs.pixel_scale_matrix
    flip = float(np.linalg.det(cd)) > 0.0  # a North-up East-left image has det < 0
    # first column (-s cos t, s sin t) does not depend on the parity
    rotation = math.degrees(math.atan2(cd[1, 0], -cd[0, 0])) % 360.0
    return rotation, flip


def tan_wcs(
    crpix0: tuple[float, float],
    radec: tuple[float, float],
    rotation_deg: float,
    flip: bool,
    pixscale_arcsec: float,
) -> WCS:
    """A TAN WCS with sky position ``radec`` at 0-based pixel ``crpix0``.

    ``CD = s [[-cos t, p sin t], [sin t, p cos t]]`` with ``p = -1`` when
    flipped: the simulator's convention (iopreport.simulate.night.frame_wcs).
    """
    scale = pixscale_arcsec / 3600.0
    theta = math.radians(rotation_deg)
    parity = -1.0 if flip else 1.0
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [float(radec[0]) % 360.0, float(radec[1])]
    wcs.wcs.crpix = [float(crpix0[0]) + 1.0, float(crpix0[1]) + 1.0]
    wcs.wcs.cd = scale * np.array(
        [
            [-math.cos(theta), parity * math.sin(theta)],
            [math.sin(theta), parity * math.cos(theta)],
        ]
    )
    return wcs
