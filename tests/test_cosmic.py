"""Cosmic-ray cleaning around measured sources: hits go, stars stay (synthetic frames)."""

from __future__ import annotations

import numpy as np
import pytest

from iopreport.reduce.calibrate import clean_cosmic_rays
from iopreport.reduce.measure import CR_MARGIN_PX
from iopreport.reduce.photometry import Apertures

FWHM_PX = 4.0
SKY = 200.0
GAIN = 1.0
READ_NOISE = 5.0


def star_field(positions, fluxes, shape=(120, 160), seed=0):
    """Gaussian stars on a flat sky with Poisson and read noise, and the noiseless model."""
    sigma = FWHM_PX / 2.3548
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    model = np.full(shape, SKY)
    for (x, y), flux in zip(positions, fluxes, strict=True):
        model += (
            flux
            / (2 * np.pi * sigma**2)
            * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
        )
    rng = np.random.default_rng(seed)
    image = rng.poisson(model * GAIN) / GAIN + rng.normal(0, READ_NOISE / GAIN, shape)
    return image.astype(np.float32), model


def aperture_sum(image, x, y, radius):
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    return float(image[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2].sum())


def clean(image, positions):
    apertures = Apertures.from_fwhm(FWHM_PX)
    return clean_cosmic_rays(
        image,
        positions,
        apertures.radius + CR_MARGIN_PX,  # as measure_frame calls it
        gain=GAIN,
        read_noise=READ_NOISE,
        fwhm_px=FWHM_PX,
    )


@pytest.mark.parametrize("separation", [7.0, 10.0, 13.0, 16.0])
def test_a_neighbour_inside_the_cut_out_keeps_its_flux(separation):
    """Regression: cleaning around one star once removed 30-95% of a neighbour's flux (a
    Wollaston pair, a comparison star): L.A.Cosmic on a cut-out whose edge cut it, the
    symmetry test reading its light as an asymmetry."""
    positions = [(70.0, 60.0), (70.0 + separation, 60.0 + 0.3 * separation)]
    image, _ = star_field(positions, [60000.0, 30000.0], seed=int(separation))
    cleaned, mask = clean(image, positions)
    radius = Apertures.from_fwhm(FWHM_PX).radius
    for x, y in positions:
        before = aperture_sum(image, x, y, radius)
        after = aperture_sum(cleaned, x, y, radius)
        assert after == pytest.approx(before, rel=1e-3), (x, y, int(mask.sum()))


def test_a_hit_on_a_star_wing_is_removed_and_the_flux_restored():
    positions = [(70.0, 60.0), (80.0, 63.0)]
    image, model = star_field(positions, [60000.0, 30000.0], seed=3)
    clean_image, _ = clean(image, positions)
    hit = image.copy()
    hit[62, 72] += 3000.0  # two pixels of a track on the first star's wing
    hit[63, 73] += 2500.0
    cleaned, mask = clean(hit, positions)
    assert mask[62, 72] and mask[63, 73]
    radius = Apertures.from_fwhm(FWHM_PX).radius
    restored = aperture_sum(cleaned, 70.0, 60.0, radius)
    assert restored == pytest.approx(aperture_sum(clean_image, 70.0, 60.0, radius), rel=2e-3)
    # the neighbour is untouched
    assert aperture_sum(cleaned, 80.0, 63.0, radius) == pytest.approx(
        aperture_sum(clean_image, 80.0, 63.0, radius), rel=1e-3
    )


def test_a_hit_on_the_sky_inside_a_faint_stars_aperture_is_removed():
    positions = [(70.0, 60.0)]
    image, _ = star_field(positions, [2000.0], seed=5)
    hit = image.copy()
    hit[63, 68] += 800.0
    cleaned, mask = clean(hit, positions)
    assert mask[63, 68]
    radius = Apertures.from_fwhm(FWHM_PX).radius
    # the replaced value is the mirror pixel's: the flux comes back to within the noise
    assert aperture_sum(cleaned, 70.0, 60.0, radius) == pytest.approx(
        aperture_sum(image, 70.0, 60.0, radius), abs=4 * (READ_NOISE + np.sqrt(SKY))
    )


def test_undersampled_frames_are_left_alone():
    positions = [(70.0, 60.0)]
    image, _ = star_field(positions, [20000.0], seed=6)
    image[61, 71] += 3000.0
    cleaned, mask = clean_cosmic_rays(image, positions, 5.0, gain=GAIN, read_noise=5.0, fwhm_px=1.5)
    assert not mask.any()
    np.testing.assert_array_equal(cleaned, image)
