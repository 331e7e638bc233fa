"""Photometry of the catalog sources on one calibrated frame with a known WCS.

Projects every catalog source that falls on the frame, measures the seeing
from the detected stars, cleans cosmic rays around the sources, and measures
each source (and, for Wollaston images, both of its beams) with apertures that
follow the seeing. The beam at the WCS position (the right-hand image) is
labelled "O" and the other "E", as IOP4 labels them (IOP4's astrometry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from astropy.wcs import WCS

from iopreport.instruments import InstrumentSpec
from iopreport.reduce.calibrate import clean_cosmic_rays
from iopreport.reduce.detect import Detections, detect
from iopreport.reduce.photometry import Apertures, Measurement, Target, measure, refine_centroid


@dataclass(frozen=True)
class SkySource:
    """A catalog source to look for: name and ICRS position in degrees."""

    name: str
    ra_deg: float
    dec_deg: float


@dataclass
class FramePhotometry:
    """What :func:`measure_frame` found."""

    fwhm_px: float
    apertures: Apertures | None
    measurements: list[Measurement] = field(default_factory=list)
    in_field: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_cosmic_pixels: int = 0
    error: str = ""
    field_stars: list[tuple[float, float, Measurement]] = field(default_factory=list)  # ra, dec


#: Cosmic rays are looked for within the aperture radius plus this margin (px).
CR_MARGIN_PX = 1.0
#: Prefix of the names given to field stars measured for transparency normalisation.
FIELD_STAR_PREFIX = "~field"


def sources_on_frame(
    wcs: WCS, shape: tuple[int, int], sources: list[SkySource], margin: float = 0.0
) -> dict[str, tuple[float, float]]:
    """0-based pixel positions of the sources that fall on the frame."""
    if not sources:
        return {}
    ra = np.array([s.ra_deg for s in sources])
    dec = np.array([s.dec_deg for s in sources])
    x, y = wcs.all_world2pix(ra, dec, 0)
    ny, nx = shape
    inside = (x >= margin) & (y >= margin) & (x < nx - margin) & (y < ny - margin)
    return {
        s.name: (float(xi), float(yi))
        for s, xi, yi, ok in zip(sources, x, y, inside, strict=True)
        if ok
    }


def measure_frame(
    image: np.ndarray,
    raw: np.ndarray,
    wcs: WCS,
    sources: list[SkySource],
    spec: InstrumentSpec,
    *,
    pair_offset: tuple[float, float] | None = None,
    detections: Detections | None = None,
    field_stars: int = 0,
    seeing_hint_px: float | None = None,
) -> FramePhotometry:
    """Measure every catalog source on ``image`` (calibrated, ADU).

    Parameters
    ----------
    raw : ndarray
        The raw frame, for saturation flags.
    pair_offset : (dx, dy), optional
        Displacement of the E beam from the O beam for Wollaston images.
    detections : Detections, optional
        Sources already detected on ``image`` (for the seeing and the mask).
    field_stars : int
        Also measure up to this many bright, isolated, unsaturated detected
        stars that are not catalog sources (single-beam images only): the
        comparison stars of polarizer-wheel sequences whose target has no
        catalog calibrators in the field (transparency normalisation).
    seeing_hint_px : float, optional
        The night's seeing trend around this frame, when its own seeing disagreed
        with it (:meth:`Detections.seeing_fwhm_px`).
    """
    detections = detections if detections is not None else detect(image)
    fwhm = detections.seeing_fwhm_px(image, spec.saturation_adu, hint=seeing_hint_px)
    if not math.isfinite(fwhm):
        return FramePhotometry(fwhm_px=fwhm, apertures=None, error="no stars to measure the seeing")
    apertures = Apertures.from_fwhm(fwhm)
    in_field = sources_on_frame(wcs, image.shape, sources)
    targets: list[Target] = []
    for name, (x, y) in in_field.items():
        if pair_offset is None:
            targets.append(Target(name, "", *refine_centroid(image, x, y, fwhm)))
        else:
            targets.append(Target(name, "O", *refine_centroid(image, x, y, fwhm)))
            ex, ey = x + pair_offset[0], y + pair_offset[1]
            targets.append(Target(name, "E", *refine_centroid(image, ex, ey, fwhm)))
    extra = []
    if field_stars and pair_offset is None:
        extra = _field_star_targets(detections, image, apertures, targets, spec, field_stars, fwhm)
    targets += extra
    # cleaned where a hit changes the flux: the aperture and a pixel more (the
    # annulus needs none: its sigma-clipped median ignores a hit's few pixels)
    cleaned, cosmic = clean_cosmic_rays(
        image,
        [(t.x, t.y) for t in targets],
        apertures.radius + CR_MARGIN_PX,
        gain=spec.gain_e_per_adu,
        read_noise=spec.read_noise_e,
        fwhm_px=fwhm,
    )
    source_mask = _mask_detected(detections, image.shape, apertures.radius, targets)
    measurements = measure(
        cleaned,
        targets,
        apertures,
        gain=spec.gain_e_per_adu,
        read_noise_adu=spec.read_noise_e / spec.gain_e_per_adu,
        saturated=raw >= spec.saturation_adu,
        cosmic=cosmic,
        sources_mask=source_mask,
    )
    stars = []
    if extra:
        field_measurements = [m for m in measurements if m.name.startswith(FIELD_STAR_PREFIX)]
        measurements = [m for m in measurements if not m.name.startswith(FIELD_STAR_PREFIX)]
        if field_measurements:
            ra, dec = wcs.all_pix2world(
                [m.x for m in field_measurements], [m.y for m in field_measurements], 0
            )
            stars = [
                (float(a), float(d), m) for a, d, m in zip(ra, dec, field_measurements, strict=True)
            ]
    return FramePhotometry(
        fwhm_px=fwhm,
        apertures=apertures,
        measurements=measurements,
        in_field=in_field,
        n_cosmic_pixels=int(cosmic.sum()),
        field_stars=stars,
    )


def _field_star_targets(detections, image, apertures, targets, spec, count, fwhm) -> list[Target]:
    """Bright isolated unsaturated detections away from the edges and the catalog sources."""
    if len(detections) == 0:
        return []
    ny, nx = image.shape
    margin = apertures.annulus_out + 2
    x, y = detections.x, detections.y
    # star-like: no cosmic-ray track as a comparison star
    good = detections.star_like() & (detections.peak < 0.5 * spec.saturation_adu)
    good &= (x > margin) & (y > margin) & (x < nx - margin) & (y < ny - margin)
    chosen: list[Target] = []
    taken = [(t.x, t.y) for t in targets]
    for index in np.argsort(-detections.flux):
        if not good[index]:
            continue
        xi, yi = float(x[index]), float(y[index])
        others = np.hypot(x - xi, y - yi)
        others[index] = np.inf
        if np.min(others) < 1.5 * apertures.annulus_out:
            continue  # a neighbour in the annulus
        if taken and min(math.hypot(xi - a, yi - b) for a, b in taken) < 2 * apertures.annulus_out:
            continue
        cx, cy = refine_centroid(image, xi, yi, fwhm)
        chosen.append(Target(f"{FIELD_STAR_PREFIX}{len(chosen)}", "", cx, cy))
        taken.append((cx, cy))
        if len(chosen) >= count:
            break
    return chosen


def _mask_detected(
    detections: Detections, shape: tuple[int, int], radius: float, targets: list[Target]
) -> np.ndarray:
    """Discs over every detected source except the measured ones (annulus contamination)."""
    mask = np.zeros(shape, dtype=bool)
    if len(detections) == 0:
        return mask
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    measured = np.array([(t.x, t.y) for t in targets]) if targets else np.zeros((0, 2))
    for x, y, flux in zip(detections.x, detections.y, detections.flux, strict=True):
        if measured.size and np.min(np.hypot(measured[:, 0] - x, measured[:, 1] - y)) < radius:
            continue
        r = radius * (1.0 + 0.5 * max(0.0, math.log10(max(flux, 1.0)) - 4.0))
        x0, x1 = max(0, int(x - r)), min(shape[1], int(x + r) + 2)
        y0, y1 = max(0, int(y - r)), min(shape[0], int(y + r) + 2)
        mask[y0:y1, x0:x1] |= (xx[:, x0:x1] - x) ** 2 + (yy[y0:y1, :] - y) ** 2 <= r**2
    return mask
