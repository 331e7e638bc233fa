"""Calibration of a science frame: (raw - bias - dark_rate * t) / flat, and cosmic-ray masks.

The formula is the reference's (reference/iop4.md §5.3). Unlike the reference,
DIPOL sub-frames are cut from full-frame masters at XORGSUBF/YORGSUBF, flats are
applied to every frame, and cosmic rays are found and masked where photometry
looks (around the sources), so a single hit on a comparison star cannot move a
result.
"""

from __future__ import annotations

import numpy as np

#: L.A.Cosmic settings (van Dokkum 2001, via astroscrappy): detection threshold
#: in sigma and the fine-structure contrast that separates cosmic rays from
#: undersampled stars.
CR_SIGCLIP = 5.0
CR_OBJLIM = 5.0
CR_ITERATIONS = 2
#: Point-symmetry test for hits on a star's core: threshold in sigma and the
#: fraction of asymmetry a real PSF may have (sub-pixel interpolation, coma).
SYMMETRY_SIGMA = 6.0
SYMMETRY_TOLERANCE = 0.15
#: Cleaning needs a sampled PSF: below this FWHM (pixels) a star's core is
#: one or two pixels, indistinguishable from a hit, and nothing is cleaned.
SYMMETRY_MIN_FWHM_PX = 2.0


def cut_to_window(master: np.ndarray | None, origin: tuple[int, int], shape: tuple[int, int]):
    """The part of a full-frame master under a sub-frame at ``origin`` (x0, y0) of ``shape``."""
    if master is None:
        return None
    if master.shape == shape:
        return master
    x0, y0 = origin
    ny, nx = shape
    if y0 + ny > master.shape[0] or x0 + nx > master.shape[1]:
        raise ValueError(
            f"sub-frame {nx}x{ny} at ({x0}, {y0}) does not fit in the master {master.shape[::-1]}"
        )
    return master[y0 : y0 + ny, x0 : x0 + nx]


def calibrate(
    raw: np.ndarray,
    *,
    exptime: float,
    bias: np.ndarray | None,
    dark_rate: np.ndarray | None,
    flat: np.ndarray | None,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """(raw - bias - dark_rate * exptime) / flat, in ADU, float32 (reference/iop4.md §5.3).

    Missing masters are skipped (the caller records which); masters larger
    than ``raw`` are cut at ``origin``.
    """
    image = np.asarray(raw, dtype=np.float32).copy()
    shape = image.shape
    bias = cut_to_window(bias, origin, shape)
    dark_rate = cut_to_window(dark_rate, origin, shape)
    flat = cut_to_window(flat, origin, shape)
    if bias is not None:
        image -= bias
    if dark_rate is not None and exptime > 0:
        image -= dark_rate * np.float32(exptime)
    if flat is not None:
        safe = np.where(flat > 0.05, flat, np.nan).astype(np.float32)
        image /= safe
    return image


def clean_cosmic_rays(
    image: np.ndarray,
    positions,
    radius: float,
    *,
    gain: float,
    read_noise: float,
    saturation: float,
    fwhm_px: float,
    core_radius: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Find and replace cosmic-ray pixels within ``radius`` of each (x, y) position.

    Two tests, on a cut-out around each source only (that is where a hit can
    change a result, and it keeps the cost to milliseconds per frame instead
    of seconds for the whole detector):

    * L.A.Cosmic (van Dokkum 2001, astroscrappy) for hits on the sky and the
      wings, where it is reliable; hit pixels take the median of their clean
      neighbours;
    * a point-symmetry test inside the star's core, where L.A.Cosmic cannot
      tell a hit from the star: a seeing-limited star is symmetric about its
      centre, a cosmic ray is not, so a pixel far above its mirror image
      through the centroid (:data:`SYMMETRY_SIGMA` sigma, allowing
      :data:`SYMMETRY_TOLERANCE` of asymmetry) is a hit and takes its mirror
      pixel's value. It runs within ``core_radius`` (default ``radius``; the
      photometry passes the aperture radius plus a pixel), and never on a pixel
      nearer to another of the positions than to this one: a neighbour's core
      is not a cosmic ray of this star (a comparison star 14 px from a
      Wollaston image lost 30% of its flux that way before).

    Neither runs on undersampled images (FWHM < 2 px), where a star's core is
    as sharp as a cosmic ray and cleaning would remove stars.

    Returns
    -------
    (cleaned, mask)
        A cleaned copy of ``image`` and the boolean mask of replaced pixels.
    """
    import astroscrappy

    cleaned = image.copy()
    mask = np.zeros(image.shape, dtype=bool)
    if fwhm_px < SYMMETRY_MIN_FWHM_PX:
        # an undersampled star is as sharp as a cosmic ray: cleaning would eat stars
        return cleaned, mask
    half = int(np.ceil(radius)) + 4
    ny, nx = image.shape
    finite = [(x, y) for x, y in positions if np.isfinite(x) and np.isfinite(y)]
    for index, (x, y) in enumerate(finite):
        x0, x1 = max(0, int(x) - half), min(nx, int(x) + half + 1)
        y0, y1 = max(0, int(y) - half), min(ny, int(y) + half + 1)
        if x1 - x0 < 8 or y1 - y0 < 8:
            continue
        cutout = np.nan_to_num(image[y0:y1, x0:x1], nan=0.0)
        found, repaired = astroscrappy.detect_cosmics(
            cutout,
            gain=gain,
            readnoise=read_noise,
            sigclip=CR_SIGCLIP,
            objlim=CR_OBJLIM,
            niter=CR_ITERATIONS,
            satlevel=saturation,
            sepmed=False,
            cleantype="medmask",
            fsmode="median",
        )
        # a star cut by the cut-out's edge looks sharp to L.A.Cosmic: keep only hits
        # within ``radius`` of this position and nearer to it than to any other one
        # (a neighbouring Wollaston image lost 95% of its flux to that before)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        own = (xx - x) ** 2 + (yy - y) ** 2
        found &= own <= radius**2
        for other_index, (ox, oy) in enumerate(finite):
            if other_index != index:
                found &= (xx - ox) ** 2 + (yy - oy) ** 2 > own
        if found.any():
            mask[y0:y1, x0:x1] |= found
            region = cleaned[y0:y1, x0:x1]
            region[found] = repaired[found]
    points = [(x, y) for x, y in positions if np.isfinite(x) and np.isfinite(y)]
    for index, (x, y) in enumerate(points):
        others = points[:index] + points[index + 1 :]
        _repair_asymmetric(
            cleaned, mask, x, y, core_radius or radius, gain, read_noise / gain, others
        )
    return cleaned, mask


def _repair_asymmetric(
    image: np.ndarray,
    mask: np.ndarray,
    x: float,
    y: float,
    radius: float,
    gain: float,
    read_noise_adu: float,
    others=(),
) -> None:
    """Replace pixels far above their point-mirror through (x, y), in place.

    Pixels nearer to one of ``others`` (other measured positions) than to
    (x, y), or whose mirror is, are left alone.
    """
    from scipy.ndimage import map_coordinates

    ny, nx = image.shape
    half = int(np.ceil(radius))
    x0, x1 = int(np.floor(x)) - half, int(np.floor(x)) + half + 2
    y0, y1 = int(np.floor(y)) - half, int(np.floor(y)) + half + 2
    if x0 < 0 or y0 < 0 or x1 > nx or y1 > ny:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    own = (xx - x) ** 2 + (yy - y) ** 2
    inside = own <= radius**2
    for ox, oy in others:
        if (ox - x) ** 2 + (oy - y) ** 2 > (2 * radius + 2) ** 2:
            continue
        inside &= (xx - ox) ** 2 + (yy - oy) ** 2 > own  # nearer to the other star
        inside &= (2 * x - xx - ox) ** 2 + (2 * y - yy - oy) ** 2 > own  # its mirror too
    values = image[y0:y1, x0:x1]
    mirror = map_coordinates(image, [2 * y - yy, 2 * x - xx], order=1, mode="nearest")
    floor = np.nanmedian(values[~inside]) if (~inside).any() else 0.0
    variance = (
        np.clip(values - floor, 0, None) / gain
        + np.clip(mirror - floor, 0, None) / gain
        + 2 * read_noise_adu**2
        + (SYMMETRY_TOLERANCE * np.clip(mirror - floor, 0, None)) ** 2
    )
    excess = values - mirror
    hit = inside & (excess > SYMMETRY_SIGMA * np.sqrt(variance))
    if hit.any():
        region = image[y0:y1, x0:x1]
        region[hit] = mirror[hit]
        mask[y0:y1, x0:x1] |= hit
