"""Aperture photometry and calibrated magnitudes.

Apertures follow the measured seeing as in the reference (reference/iop4.md
§7.1: r = 3 sigma, annulus 5-9 sigma of the image FWHM), with three fixes of
its weaknesses (§7.2, §17.3): the annulus background is sigma-clipped with the
other beam and every other detected source masked; the flux error includes the
uncertainty of the background estimate; and cosmic-ray pixels in the aperture
are replaced by their neighbourhood before summing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clipped_stats
from photutils.aperture import CircularAnnulus, CircularAperture
from photutils.centroids import centroid_2dg

from iopreport.store.bits import PhotometryFlags

#: FWHM -> Gaussian sigma.
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
#: Aperture and annulus radii in units of the image's PSF sigma (reference/iop4.md §7.1).
APERTURE_SIGMAS = 3.0
ANNULUS_SIGMAS = (5.0, 9.0)
#: Smallest aperture radius in pixels. On undersampled frames (FWHM below ~2.4 px,
#: e.g. CAFOS binned 2x2 in good seeing) 3 sigma is under 3 px and the captured
#: fraction of a star then depends on where its centre falls within a pixel by
#: a few percent, differently for target and calibrators (a 1.8% error measured
#: on a simulated CAFOS frame at FWHM 1.45 px); 3 px keeps it well below 1%.
MIN_APERTURE_PX = 3.0
#: Largest centroid shift accepted from the predicted position, in FWHM.
MAX_CENTROID_SHIFT_FWHM = 1.0
#: Below this signal-to-noise a measurement is flagged LOW_SNR.
LOW_SNR = 5.0
#: Variance of a median relative to a mean for Gaussian noise (pi/2).
MEDIAN_VARIANCE_FACTOR = math.pi / 2.0


@dataclass(frozen=True)
class Apertures:
    """Radii in pixels."""

    radius: float
    annulus_in: float
    annulus_out: float

    @classmethod
    def from_fwhm(cls, fwhm_px: float) -> Apertures:
        sigma = fwhm_px * FWHM_TO_SIGMA
        radius = max(APERTURE_SIGMAS * sigma, MIN_APERTURE_PX)
        inner = max(ANNULUS_SIGMAS[0] * sigma, radius + 2.0)
        outer = max(ANNULUS_SIGMAS[1] * sigma, inner + 3.0)
        return cls(radius, inner, outer)


@dataclass(frozen=True)
class Target:
    """A position to measure: a catalog source, and which beam ('' single, 'O', 'E')."""

    name: str
    pair: str
    x: float
    y: float


@dataclass(frozen=True)
class Measurement:
    """One aperture measurement (ADU on the calibrated frame)."""

    name: str
    pair: str
    x: float
    y: float
    flux: float
    flux_err: float
    background: float  # background inside the aperture
    background_err: float
    flags: int

    @property
    def snr(self) -> float:
        return self.flux / self.flux_err if self.flux_err > 0 else 0.0

    @property
    def instrumental_mag(self) -> tuple[float, float]:
        """(-2.5 log10 flux, its error); NaN for non-positive fluxes."""
        if not self.flux > 0:
            return math.nan, math.nan
        return -2.5 * math.log10(self.flux), 2.5 / math.log(10) * self.flux_err / self.flux


def refine_centroid(image: np.ndarray, x: float, y: float, fwhm_px: float) -> tuple[float, float]:
    """2-D Gaussian centroid in a box of ~3 FWHM; the prediction if the fit wanders off.

    On sampled images (FWHM >= 2.5 px) the cut-out is median-filtered (3x3)
    first, so that a cosmic-ray hit cannot pull the centroid (which the
    cosmic-ray symmetry test relies on).
    """
    from scipy.ndimage import median_filter

    half = max(3, math.ceil(1.5 * fwhm_px))
    x0, y0 = round(x) - half, round(y) - half
    if x0 < 0 or y0 < 0 or x0 + 2 * half + 1 > image.shape[1] or y0 + 2 * half + 1 > image.shape[0]:
        return x, y
    cutout = image[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1]
    if not np.isfinite(cutout).all():
        return x, y
    if fwhm_px >= 2.5:
        cutout = median_filter(cutout, size=3, mode="nearest")
    cutout = cutout - np.median(cutout)
    try:
        cx, cy = centroid_2dg(cutout)
    except Exception:
        return x, y
    nx, ny = cx + x0, cy + y0
    if not (np.isfinite(nx) and np.isfinite(ny)):
        return x, y
    if math.hypot(nx - x, ny - y) > MAX_CENTROID_SHIFT_FWHM * fwhm_px:
        return x, y
    return float(nx), float(ny)


def measure(
    image: np.ndarray,
    targets: list[Target],
    apertures: Apertures,
    *,
    gain: float,
    read_noise_adu: float,
    saturated: np.ndarray | None = None,
    cosmic: np.ndarray | None = None,
    sources_mask: np.ndarray | None = None,
) -> list[Measurement]:
    """Measure every target with the same apertures.

    Parameters
    ----------
    image : ndarray
        Calibrated frame in ADU, cosmic rays already replaced where ``cosmic`` is set.
    gain : float
        e-/ADU, for the source's Poisson noise.
    read_noise_adu : float
        Read noise in ADU (enters through the background scatter already, kept
        for frames with almost no sky).
    saturated, cosmic, sources_mask : bool arrays
        Raw saturation, cosmic-ray pixels, and pixels of detected sources (the
        annulus ignores them, except the measured source itself, which the
        annulus does not reach).
    """
    results = []
    ny, nx = image.shape
    annulus_mask = sources_mask.copy() if sources_mask is not None else np.zeros(image.shape, bool)
    annulus_mask |= ~np.isfinite(image)
    # whole-image work done once, not per target
    annulus_image = np.where(annulus_mask, np.nan, image)
    saturated_f = saturated.astype(np.float32) if saturated is not None else None
    cosmic_f = cosmic.astype(np.float32) if cosmic is not None else None
    for target in targets:
        flags = PhotometryFlags(0)
        x, y = target.x, target.y
        if (
            x - apertures.annulus_out < 0
            or y - apertures.annulus_out < 0
            or x + apertures.annulus_out >= nx
            or y + apertures.annulus_out >= ny
        ):
            flags |= PhotometryFlags.NEAR_EDGE
            if (
                x - apertures.radius < 0
                or y - apertures.radius < 0
                or x + apertures.radius >= nx
                or y + apertures.radius >= ny
            ):
                results.append(
                    Measurement(
                        target.name,
                        target.pair,
                        x,
                        y,
                        math.nan,
                        math.nan,
                        math.nan,
                        math.nan,
                        int(flags),
                    )
                )
                continue
        aperture = CircularAperture((x, y), apertures.radius)
        annulus = CircularAnnulus((x, y), apertures.annulus_in, apertures.annulus_out)
        annulus_data = annulus.to_mask(method="center").get_values(annulus_image)
        annulus_data = annulus_data[np.isfinite(annulus_data)]
        if annulus_data.size < 10:
            flags |= PhotometryFlags.CROWDED
            annulus_data = annulus.to_mask(method="center").get_values(image)
            annulus_data = annulus_data[np.isfinite(annulus_data)]
        _, sky, sky_sigma = sigma_clipped_stats(annulus_data, sigma=3.0, maxiters=5)
        area = aperture.area
        total = _aperture_sum(aperture.to_mask(method="exact"), image, sky)
        flux = total - sky * area
        background_err = math.sqrt(MEDIAN_VARIANCE_FACTOR / annulus_data.size) * sky_sigma * area
        variance = max(flux, 0.0) / gain + area * (sky_sigma**2) + background_err**2
        aperture_mask = aperture.to_mask(method="center")
        if saturated_f is not None and (aperture_mask.get_values(saturated_f) > 0).any():
            flags |= PhotometryFlags.SATURATED
        if cosmic_f is not None and (aperture_mask.get_values(cosmic_f) > 0).any():
            flags |= PhotometryFlags.COSMIC_RAY
        error = math.sqrt(variance)
        if not flux > LOW_SNR * error:
            flags |= PhotometryFlags.LOW_SNR
        results.append(
            Measurement(
                name=target.name,
                pair=target.pair,
                x=x,
                y=y,
                flux=flux,
                flux_err=error,
                background=float(sky * area),
                background_err=background_err,
                flags=int(flags),
            )
        )
    return results


def _aperture_sum(mask, image: np.ndarray, fill: float) -> float:
    """Exact-overlap aperture sum on a cut-out; NaN pixels count as ``fill``."""
    cutout = mask.cutout(image, fill_value=np.nan)
    if cutout is None:
        return math.nan
    values = np.where(np.isfinite(cutout), cutout, fill)
    return float(np.sum(values * mask.data))


@dataclass(frozen=True)
class ZeroPoint:
    """Zero point from a target's calibrators in one frame.

    ``error`` is the statistical part (the calibrators' measured fluxes and
    their scatter); ``sys_error`` the systematic part, from the literature
    errors of the calibrators' magnitudes, which is the same night after night
    for the same calibrators and does not average down in a light curve.
    """

    value: float
    error: float
    n_used: int
    n_rejected: int
    sys_error: float = 0.0

    @property
    def total_error(self) -> float:
        return math.hypot(self.error, self.sys_error)


def zero_point(
    calibrators: list[tuple[float, float, float, float | None]],
    *,
    clip_sigma: float = 3.0,
    literature_error_floor: float = 0.01,
) -> ZeroPoint | None:
    """Robust weighted zero point from (mag_inst, err_inst, mag_lit, err_lit) of each calibrator.

    Each calibrator gives zp_i = mag_lit - mag_inst with variance
    err_inst^2 + err_lit^2 (a floor of ``literature_error_floor`` when the
    literature gives none). Calibrators more than ``clip_sigma`` robust standard
    deviations from the weighted median are rejected (a variable or blended
    star); the weighted mean of the rest is returned. Its error is split into
    the statistical part sqrt(sum w_i^2 err_inst_i^2) / sum w_i and the
    systematic part (the same with err_lit), both inflated by sqrt(max(1,
    chi2/dof)) so that the scatter of the calibrators, not only their stated
    errors, limits the claim (the reference's "full" mode, reference/iop4.md §7.3).
    """
    values, inst_errors, lit_errors = [], [], []
    for mag_inst, err_inst, mag_lit, err_lit in calibrators:
        if not (math.isfinite(mag_inst) and math.isfinite(mag_lit)):
            continue
        values.append(mag_lit - mag_inst)
        inst_errors.append(err_inst if math.isfinite(err_inst) else 1.0)
        lit_errors.append(err_lit if err_lit and err_lit > 0 else literature_error_floor)
    if not values:
        return None
    values_a = np.array(values)
    inst_a = np.array(inst_errors)
    lit_a = np.array(lit_errors)
    errors_a = np.hypot(inst_a, lit_a)
    keep = np.ones(len(values_a), dtype=bool)
    if len(values_a) >= 3:
        for _ in range(3):
            centre = _weighted_median(values_a[keep], errors_a[keep])
            spread = max(1.4826 * np.median(np.abs(values_a[keep] - centre)), 0.0)
            scale = np.hypot(spread, errors_a)
            new_keep = np.abs(values_a - centre) <= clip_sigma * scale
            if new_keep.sum() < 2 or (new_keep == keep).all():
                break
            keep = new_keep
    weights = 1.0 / errors_a[keep] ** 2
    total_weight = float(np.sum(weights))
    mean = float(np.sum(weights * values_a[keep]) / total_weight)
    stat = float(np.sqrt(np.sum(weights**2 * inst_a[keep] ** 2)) / total_weight)
    sys = float(np.sqrt(np.sum(weights**2 * lit_a[keep] ** 2)) / total_weight)
    if keep.sum() > 1:
        chi2 = float(np.sum(weights * (values_a[keep] - mean) ** 2)) / (keep.sum() - 1)
        inflation = math.sqrt(max(1.0, chi2))
        stat *= inflation
        sys *= inflation
    return ZeroPoint(mean, stat, int(keep.sum()), int((~keep).sum()), sys)


def _weighted_median(values: np.ndarray, errors: np.ndarray) -> float:
    order = np.argsort(values)
    weights = 1.0 / errors[order] ** 2
    cumulative = np.cumsum(weights) / np.sum(weights)
    return float(values[order][np.searchsorted(cumulative, 0.5)])
