"""Pixels: stars, sky, flat field, dark current, bias, noise, cosmic rays, saturation.

Everything is computed in electrons and converted to ADU at the end with the
instrument's gain (:class:`iopreport.instruments.InstrumentSpec`). Fixed
detector features (flat-field pattern, hot pixels, bias structure) depend only
on the instrument, band and binning, through a stable seed, so they are the
same in calibration and science frames of every night, as on a real camera.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np

from iopreport.instruments import InstrumentSpec

#: Moffat beta of the simulated PSF (a typical seeing-limited profile; simulator assumption).
MOFFAT_BETA = 3.0
#: Cosmic-ray hits per cm^2 per second at ground level (about 1.5 per cm^2 per
#: minute, the usual figure for CCDs at observatory altitudes).
COSMIC_RATE_PER_CM2_S = 0.025
#: Fraction of pixels that are hot, and their dark rate range (e-/s).
HOT_PIXEL_FRACTION = 1.0e-4
HOT_PIXEL_RATE = (5.0, 100.0)


def stable_seed(*parts: object) -> int:
    """A seed that depends only on ``parts`` (not on Python's per-process hash salt)."""
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


def moffat_alpha(fwhm_px: float, beta: float = MOFFAT_BETA) -> float:
    """Moffat core width alpha for a given FWHM: FWHM = 2 alpha sqrt(2^(1/beta) - 1)."""
    return fwhm_px / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def moffat_enclosed(radius_px: float, fwhm_px: float, beta: float = MOFFAT_BETA) -> float:
    """Fraction of a Moffat flux within ``radius_px``: 1 - (1 + r^2/alpha^2)^(1 - beta)."""
    alpha = moffat_alpha(fwhm_px, beta)
    return 1.0 - (1.0 + (radius_px / alpha) ** 2) ** (1.0 - beta)


def moffat_peak_fraction(fwhm_px: float, beta: float = MOFFAT_BETA) -> float:
    """Fraction of the total flux in the brightest pixel (centred star): (beta-1)/(pi alpha^2)."""
    return (beta - 1.0) / (math.pi * moffat_alpha(fwhm_px, beta) ** 2)


def add_stars(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    fwhm_px: float,
    *,
    trail: tuple[float, float] = (0.0, 0.0),
    subsample: int = 3,
) -> None:
    """Add Moffat stars to ``image`` (electrons) in place.

    ``x``, ``y`` are 0-based pixel centres (numpy convention: pixel (0, 0)
    spans -0.5..0.5). Each star's stamp is normalised so that it holds the
    analytic fraction of ``flux`` enclosed by the stamp radius; flux outside
    the image is lost, as on a detector. ``trail`` (dx, dy) in pixels smears
    each star along a line (a tracking error).
    """
    ny, nx = image.shape
    alpha = moffat_alpha(fwhm_px)
    offsets = (np.arange(subsample) + 0.5) / subsample - 0.5
    n_trail = max(1, math.ceil(math.hypot(*trail) / max(fwhm_px / 3.0, 0.5)))
    steps = np.linspace(0.0, 1.0, n_trail) if n_trail > 1 else np.zeros(1)
    for xi, yi, fi in zip(x, y, flux, strict=True):
        if fi <= 0:
            continue
        radius = fwhm_px * (4.0 + 2.0 * max(0.0, math.log10(max(fi, 1.0)) - 4.0))
        radius = min(radius, 25.0 * fwhm_px)
        share = fi / n_trail
        for step in steps:
            cx, cy = xi + step * trail[0], yi + step * trail[1]
            x0, x1 = math.floor(cx - radius), math.ceil(cx + radius) + 1
            y0, y1 = math.floor(cy - radius), math.ceil(cy + radius) + 1
            if x1 <= 0 or y1 <= 0 or x0 >= nx or y0 >= ny:
                continue
            gx = np.arange(x0, x1)[None, :, None, None] + offsets[None, None, None, :] - cx
            gy = np.arange(y0, y1)[:, None, None, None] + offsets[None, None, :, None] - cy
            r2 = (gx**2 + gy**2) / alpha**2
            profile = ((1.0 + r2) ** (-MOFFAT_BETA)).mean(axis=(2, 3))
            stamp_r2 = (np.arange(x0, x1)[None, :] - cx) ** 2 + (
                np.arange(y0, y1)[:, None] - cy
            ) ** 2
            profile[stamp_r2 > radius**2] = 0.0
            total = profile.sum()
            if total <= 0:
                continue
            profile *= share * moffat_enclosed(radius, fwhm_px) / total
            sx0, sy0 = max(x0, 0), max(y0, 0)
            sx1, sy1 = min(x1, nx), min(y1, ny)
            image[sy0:sy1, sx0:sx1] += profile[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]


@functools.lru_cache(maxsize=16)
def flat_pattern(instrument: str, band: str, shape: tuple[int, int], binning: int) -> np.ndarray:
    """Relative response of the full detector (mean 1): vignetting, dust rings, pixel response.

    ``shape`` is (ny, nx) of the full frame at ``binning``. Dust-ring sizes and
    the vignetting are fixed in unbinned pixels so that every binning of one
    camera shows the same rings. Read-only array (cached).
    """
    ny, nx = shape
    rng = np.random.default_rng(stable_seed("flat", instrument, band))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    rmax = math.hypot(cx, cy)
    vignetting = 1.0 - 0.12 * ((xx - cx) ** 2 + (yy - cy) ** 2) / rmax**2
    pattern = vignetting.astype(np.float32)
    for _ in range(5):
        rx, ry = rng.uniform(0.1, 0.9) * nx, rng.uniform(0.1, 0.9) * ny
        ring_radius = rng.uniform(12.0, 30.0) / binning
        width = max(ring_radius * 0.25, 1.0)
        depth = rng.uniform(0.02, 0.05)
        distance = np.hypot(xx - rx, yy - ry)
        pattern *= 1.0 - depth * np.exp(-0.5 * ((distance - ring_radius) / width) ** 2)
    pixel_rng = np.random.default_rng(stable_seed("prnu", instrument, binning))
    pattern *= (1.0 + pixel_rng.normal(0.0, 0.006, size=shape)).astype(np.float32)
    pattern /= pattern.mean()
    pattern.setflags(write=False)
    return pattern


@functools.lru_cache(maxsize=8)
def hot_pixels(
    instrument: str, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed hot pixels of a detector: (rows, columns, dark rate in e-/s)."""
    rng = np.random.default_rng(stable_seed("hot", instrument, shape))
    n = max(1, int(HOT_PIXEL_FRACTION * shape[0] * shape[1]))
    rows = rng.integers(0, shape[0], n)
    cols = rng.integers(0, shape[1], n)
    rates = rng.uniform(*HOT_PIXEL_RATE, n)
    return rows, cols, rates


@functools.lru_cache(maxsize=8)
def bias_structure(instrument: str, shape: tuple[int, int]) -> np.ndarray:
    """Fixed column-to-column bias offsets in ADU (read-only)."""
    rng = np.random.default_rng(stable_seed("bias", instrument, shape))
    columns = rng.normal(0.0, 1.5, shape[1]).astype(np.float32)
    structure = np.broadcast_to(columns[None, :], shape)
    return structure


@dataclass(frozen=True)
class Window:
    """The part of the full detector a file holds (a DIPOL sub-frame, or the whole)."""

    x0: int
    y0: int
    nx: int
    ny: int

    def cut(self, full: np.ndarray) -> np.ndarray:
        return full[self.y0 : self.y0 + self.ny, self.x0 : self.x0 + self.nx]


def add_cosmic_rays(
    image: np.ndarray,
    exptime: float,
    pixel_area_cm2: float,
    rng: np.random.Generator,
    rate_scale: float = 1.0,
) -> list[tuple[int, int, float]]:
    """Add cosmic-ray tracks (electrons) to ``image`` in place, at ``rate_scale`` times
    :data:`COSMIC_RATE_PER_CM2_S`.

    Returns
    -------
    list of (x, y, electrons)
        Every pixel a hit touched (0-based), for the truth file.
    """
    ny, nx = image.shape
    n = rng.poisson(COSMIC_RATE_PER_CM2_S * rate_scale * pixel_area_cm2 * nx * ny * exptime)
    touched = []
    for _ in range(n):
        length = rng.integers(1, 8)
        angle = rng.uniform(0, math.pi)
        x, y = rng.uniform(0, nx - 1), rng.uniform(0, ny - 1)
        deposit = rng.uniform(800.0, 6000.0)
        for k in range(length):
            xi = round(x + k * math.cos(angle))
            yi = round(y + k * math.sin(angle))
            if 0 <= xi < nx and 0 <= yi < ny:
                image[yi, xi] += deposit
                touched.append((xi, yi, round(float(deposit), 1)))
    return touched


def expose(
    signal_e: np.ndarray,
    spec: InstrumentSpec,
    *,
    exptime: float,
    window: Window,
    full_shape: tuple[int, int],
    rng: np.random.Generator,
    cosmic_rays: bool = True,
    cosmic_ray_scale: float = 1.0,
) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Turn expected photo-electrons into a raw 16-bit frame.

    Adds dark current (with the fixed hot pixels), Poisson noise, cosmic rays,
    read noise, the bias pedestal and its column structure, then converts to
    ADU with the gain and clips at the ADC range (saturation). Returns the
    frame and the pixels cosmic rays hit.

    Parameters
    ----------
    signal_e : ndarray
        Expected electrons from sky and stars (flat field already applied),
        shape (window.ny, window.nx).
    full_shape : tuple
        (ny, nx) of the full detector at this binning (for the fixed patterns).
    cosmic_ray_scale : float
        Cosmic-ray rate as a multiple of :data:`COSMIC_RATE_PER_CM2_S`.
    """
    dark = np.full(signal_e.shape, spec.dark_e_per_s * exptime, dtype=np.float64)
    rows, cols, rates = hot_pixels(spec.name, full_shape)
    inside = (
        (rows >= window.y0)
        & (rows < window.y0 + window.ny)
        & (cols >= window.x0)
        & (cols < window.x0 + window.nx)
    )
    dark[rows[inside] - window.y0, cols[inside] - window.x0] += rates[inside] * exptime
    electrons = rng.poisson(np.clip(signal_e + dark, 0, None)).astype(np.float64)
    hits: list[tuple[int, int, float]] = []
    if cosmic_rays and exptime > 0:
        binning = window_binning(spec, full_shape)
        area = spec.pixel_area_cm2_at(binning)
        hits = add_cosmic_rays(electrons, exptime, area, rng, cosmic_ray_scale)
    electrons += rng.normal(0.0, spec.read_noise_e, size=electrons.shape)
    adu = electrons / spec.gain_e_per_adu + spec.bias_level_adu
    adu += window.cut(bias_structure(spec.name, full_shape))
    return np.clip(np.rint(adu), 0, spec.saturation_adu).astype(np.uint16), hits


def window_binning(spec: InstrumentSpec, full_shape: tuple[int, int]) -> int:
    """The binning that gives this full-frame (ny, nx) shape."""
    return max(1, round(spec.full_shape[0] * spec.reference_binning / full_shape[1]))
