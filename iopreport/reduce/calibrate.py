"""Calibration of a science frame: (raw - bias - dark_rate * t) / flat, and cosmic-ray masks.

The formula is the reference's (IOP4's master calibration). Unlike the reference,
DIPOL sub-frames are cut from full-frame masters at XORGSUBF/YORGSUBF, flats are
applied to every frame, and cosmic rays are found and replaced where photometry
looks (in the apertures), so a single hit on a comparison star cannot move a
result.
"""

from __future__ import annotations

import numpy as np

#: Point-symmetry test for cosmic-ray hits: threshold in sigma and the
#: fraction of asymmetry a real PSF may have (sub-pixel interpolation, coma).
SYMMETRY_SIGMA = 6.0
SYMMETRY_TOLERANCE = 0.15
#: Cleaning needs a sampled PSF: below this FWHM (pixels) a star's core is
#: one or two pixels, indistinguishable from a hit, and nothing is cleaned.
SYMMETRY_MIN_FWHM_PX = 2.0
#: Pixels (and mirror pixels) within this many FWHM of another measured
#: position are not tested: a neighbour's light is an asymmetry of this star.
NEIGHBOUR_ZONE_FWHM = 1.5


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


#: Flat-field values at or below this are not trusted (vignetted corners, dead
#: columns): the calibrated pixel becomes NaN.
MIN_FLAT = 0.05


def usable_flat(flat: np.ndarray) -> np.ndarray:
    """``flat`` as float32 with NaN where it is not above :data:`MIN_FLAT` (no copy if
    it already is so)."""
    if flat.dtype == np.float32 and not (flat <= MIN_FLAT).any():
        return flat
    return np.where(flat > MIN_FLAT, flat, np.nan).astype(np.float32)


def calibrate(
    raw: np.ndarray,
    *,
    exptime: float,
    bias: np.ndarray | None,
    dark_rate: np.ndarray | None,
    flat: np.ndarray | None,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """(raw - bias - dark_rate * exptime) / flat, in ADU, float32 (IOP4's master calibration).

    Missing masters are skipped (the caller records which); masters larger
    than ``raw`` are cut at ``origin``.
    """
    raw = np.asarray(raw, dtype=np.float32)
    shape = raw.shape
    bias = cut_to_window(bias, origin, shape)
    dark_rate = cut_to_window(dark_rate, origin, shape)
    flat = cut_to_window(flat, origin, shape)
    # a new array either way: the bias subtraction makes it (no copy first)
    image = raw - bias if bias is not None else raw.copy()
    if dark_rate is not None and exptime > 0:
        image -= dark_rate * np.float32(exptime)
    if flat is not None:
        image /= usable_flat(flat)
    return image


def clean_cosmic_rays(
    image: np.ndarray,
    positions,
    radius: float,
    *,
    gain: float,
    read_noise: float,
    fwhm_px: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Find and replace cosmic-ray pixels within ``radius`` of each (x, y) position.

    A point-symmetry test, where photometry looks (the caller passes the
    aperture radius plus a pixel): a seeing-limited star is symmetric about
    its centre and a cosmic ray is not, so a pixel far above its mirror image
    through the centroid (:data:`SYMMETRY_SIGMA` sigma, allowing
    :data:`SYMMETRY_TOLERANCE` of asymmetry) is a hit and takes its mirror
    pixel's value, the best estimate of what the star put there. On the sky
    around a faint source the mirror is sky, so the same test finds hits there.
    Pixels nearer to another of the positions than to this one, or within
    :data:`NEIGHBOUR_ZONE_FWHM` FWHM of it, and pixels whose mirror is, are left
    alone: a neighbour's light is not a cosmic ray of this star.

    L.A.Cosmic (van Dokkum 2001) was used before on cut-outs around the
    sources; near a bright core it flagged the star's own pixels (its growth
    step spreads into the core) and repaired them with a neighbourhood median
    far below the profile: a hit on a star's wing cost the star 2% of its
    flux, and a neighbour at 1.75 FWHM lost 0.5% (tests/test_cosmic.py).
    The annulus needs no cleaning: its sigma-clipped median ignores a hit.

    Nothing is cleaned on undersampled images (FWHM < 2 px), where a star's
    core is as sharp as a cosmic ray.

    Returns
    -------
    (cleaned, mask)
        A cleaned copy of ``image`` and the boolean mask of replaced pixels.
    """
    cleaned = image.copy()
    mask = np.zeros(image.shape, dtype=bool)
    if fwhm_px < SYMMETRY_MIN_FWHM_PX:
        return cleaned, mask
    points = [(x, y) for x, y in positions if np.isfinite(x) and np.isfinite(y)]
    zone = NEIGHBOUR_ZONE_FWHM * fwhm_px
    for index, (x, y) in enumerate(points):
        others = points[:index] + points[index + 1 :]
        _repair_asymmetric(cleaned, mask, x, y, radius, gain, read_noise / gain, others, zone)
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
    zone: float = 0.0,
) -> None:
    """Replace pixels far above their point-mirror through (x, y), in place.

    Pixels nearer to one of ``others`` (other measured positions) than to
    (x, y), or within ``zone`` of it, or whose mirror is, are left alone.
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
        if (ox - x) ** 2 + (oy - y) ** 2 > (2 * radius + 2 + zone) ** 2:
            continue
        to_other = (xx - ox) ** 2 + (yy - oy) ** 2
        mirror_to_other = (2 * x - xx - ox) ** 2 + (2 * y - yy - oy) ** 2
        inside &= (to_other > own) & (to_other > zone**2)  # nearer to the other star
        inside &= (mirror_to_other > own) & (mirror_to_other > zone**2)  # its mirror too
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
