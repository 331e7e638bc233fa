"""Detection: the same sources whatever SEP's pixel stack, and the binned background."""

from __future__ import annotations

import numpy as np
import pytest

from iopreport.reduce import detect as detect_module
from iopreport.reduce.detect import _subtract_background, background_binning, detect


def _field(shape=(600, 700), seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.normal(500.0, 10.0, shape).astype(np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for x, y, flux in zip(
        rng.uniform(20, shape[1] - 20, 40),
        rng.uniform(20, shape[0] - 20, 40),
        rng.uniform(1e3, 1e5, 40),
        strict=True,
    ):
        image += (
            flux / (2 * np.pi * 2.0**2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0)
        ).astype(np.float32)
    # a large bright patch (a galaxy, a bleed): 40,000 pixels above the threshold
    image[100:300, 200:400] += 200.0
    return image


def test_a_frame_that_fills_the_small_pixel_stack_is_extracted_with_the_larger(monkeypatch):
    image = _field()
    expected = detect(image)
    assert len(expected) > 30
    monkeypatch.setattr(detect_module, "PIXSTACK_SIZES", (1_000, 1_000_000))
    found = detect(image)
    np.testing.assert_array_equal(found.x, expected.x)
    np.testing.assert_array_equal(found.flux, expected.flux)
    monkeypatch.setattr(detect_module, "PIXSTACK_SIZES", (1_000,))
    with pytest.raises(Exception, match="pixel buffer full"):
        detect(image)


@pytest.mark.parametrize(
    "shape, factor",
    [
        ((600, 700), 4),
        ((603, 702), 4),
        ((601, 701), 4),
        ((602, 703), 4),
        ((300, 350), 2),
        ((301, 351), 2),
    ],
)
def test_binned_background_is_subtracted_from_every_pixel_of_its_block(shape, factor):
    assert background_binning(*shape) == factor
    image = _field(shape)
    bad = np.zeros(shape, dtype=bool)
    subtracted, background = _subtract_background(image, bad)
    height, width = shape[0] - shape[0] % factor, shape[1] - shape[1] % factor
    back = image - subtracted
    # one background value per block, and odd edge rows and columns take their neighbour's
    first = back[0:height:factor, 0:width:factor]
    for dy in range(factor):
        for dx in range(factor):
            block = back[dy:height:factor, dx:width:factor]
            np.testing.assert_allclose(block, first, atol=0.01)
    for row in range(height, shape[0]):
        np.testing.assert_allclose(back[row, :width], back[height - 1, :width], atol=0.01)
    for column in range(width, shape[1]):
        np.testing.assert_allclose(back[:height, column], back[:height, width - 1], atol=0.01)
    # the level and noise of the simulated sky
    assert background.level == pytest.approx(500.0, abs=3.0)
    assert background.rms == pytest.approx(10.0, rel=0.15)


def test_a_4x4_mesh_gives_the_2x2_background_and_detections(monkeypatch):
    """The 4x4 binning of large frames changes neither the background (a gradient
    included) nor what is detected, against the 2x2 one it replaced there."""
    shape = (1024, 1100)
    image = _field(shape, seed=5)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image += (0.02 * xx + 0.01 * yy).astype(np.float32)  # 22 and 10 ADU across the frame
    bad = np.zeros(shape, dtype=bool)
    assert background_binning(*shape) == 4
    sub4, back4 = _subtract_background(image, bad)
    found4 = detect(image)
    monkeypatch.setattr(detect_module, "BACKGROUND_BINNING", ((256, 2),))
    sub2, back2 = _subtract_background(image, bad)
    found2 = detect(image)
    # away from the bright patch, the meshes differ as little as the 2x2 one differs from
    # the full-resolution one (median 0.02 sigma, at most 0.1 sigma, with these stars)
    difference = np.abs(sub4 - sub2)[450:1000, 500:1050] / back2.rms
    assert np.median(difference) < 0.03
    assert difference.max() < 0.12
    assert back4.rms == pytest.approx(back2.rms, rel=0.02)
    assert len(found4) == len(found2) > 30

    def stars(found):  # the bright patch's pieces sit on what each mesh takes for sky
        keep = ~((found.x > 190) & (found.x < 410) & (found.y > 90) & (found.y < 310))
        return found.x[keep], found.y[keep], found.flux[keep]

    (x4, y4, flux4), (x2, y2, flux2) = stars(found4), stars(found2)
    assert len(x4) > 30
    np.testing.assert_allclose(x4, x2, atol=0.02)
    np.testing.assert_allclose(y4, y2, atol=0.02)
    # isophotal sums over hundreds of pixels follow the background's 0.02 sigma a pixel
    np.testing.assert_allclose(flux4, flux2, rtol=0.005)
