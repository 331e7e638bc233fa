"""Detection: the same sources whatever SEP's pixel stack, and the binned background."""

from __future__ import annotations

import numpy as np
import pytest

from iopreport.reduce import detect as detect_module
from iopreport.reduce.detect import _subtract_background, detect


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


@pytest.mark.parametrize("shape", [(600, 700), (601, 700), (600, 701), (601, 701)])
def test_binned_background_is_subtracted_from_every_pixel_of_its_block(shape):
    image = _field(shape)
    bad = np.zeros(shape, dtype=bool)
    subtracted, background = _subtract_background(image, bad)
    height, width = shape[0] - shape[0] % 2, shape[1] - shape[1] % 2
    back = image - subtracted
    # one background value per 2x2 block, and an odd edge takes its neighbour's
    np.testing.assert_allclose(back[0:height:2, 0:width:2], back[1:height:2, 1:width:2], atol=0.01)
    np.testing.assert_allclose(back[0:height:2, 0:width:2], back[0:height:2, 1:width:2], atol=0.01)
    if shape[0] > height:
        np.testing.assert_allclose(back[height, :width], back[height - 1, :width], atol=0.01)
    if shape[1] > width:
        np.testing.assert_allclose(back[:height, width], back[:height, width - 1], atol=0.01)
    # the level and noise of the simulated sky
    assert background.level == pytest.approx(500.0, abs=3.0)
    assert background.rms == pytest.approx(10.0, rel=0.15)
