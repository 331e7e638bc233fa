"""Seeing, trailing test and star selection robust against cosmic-ray tracks.

Frames are drawn with the simulator's own PSF and cosmic-ray tracks
(iopreport.simulate.render): faint stars on an unbinned frame whose brightest
detections are multi-pixel tracks.
"""

from __future__ import annotations

import numpy as np
import pytest

from iopreport.reduce.detect import detect
from iopreport.simulate.render import add_cosmic_rays, add_stars

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

SHAPE = (1024, 1024)
FWHM_PX = 5.0  # 2" seeing at AndorT90's 0.387"/px, unbinned
SKY_E = 400.0
READ_NOISE_E = 8.0


def _frame(seed: int, *, cosmic_scale: float, trail=(0.0, 0.0), n_stars: int = 40):
    """A calibrated-like frame in electrons (sky subtracted later by the detection)."""
    rng = np.random.default_rng(seed)
    image = np.zeros(SHAPE)
    x = rng.uniform(40, SHAPE[1] - 40, n_stars)
    y = rng.uniform(40, SHAPE[0] - 40, n_stars)
    flux = 10 ** rng.uniform(3.6, 4.4, n_stars)  # 4000-25000 e: fainter than many tracks
    add_stars(image, x, y, flux, FWHM_PX, trail=trail)
    image = rng.poisson(image + SKY_E).astype(float)
    # 13.5 um pixels; 3x the simulator's rate over 300 s: ~80 tracks of 1-7 px
    hits = add_cosmic_rays(image, 300.0, (13.5e-4) ** 2, rng, rate_scale=cosmic_scale)
    image += rng.normal(0.0, READ_NOISE_E, SHAPE)
    return image.astype(np.float32), hits


def _old_selection_fwhm(detections, image):
    """The selection used before: the six brightest clean detections, unchecked."""
    from iopreport.reduce.detect import gaussian_fwhm

    good = (detections.flags == 0) & (detections.fwhm_px > 0.8)
    guess = float(np.median(detections.fwhm_px[good][:6]))
    half = max(2, int(np.ceil(0.8 * guess)))
    fits = []
    for x, y in zip(detections.x[good][:6], detections.y[good][:6], strict=True):
        xi, yi = round(x), round(y)
        cut = image[yi - half : yi + half + 1, xi - half : xi + half + 1]
        if cut.shape == (2 * half + 1, 2 * half + 1):
            fits.append(gaussian_fwhm(cut, x - (xi - half), y - (yi - half), guess / 2))
    return float(np.median(fits))  # NaN when a fit failed


@pytest.mark.parametrize("seed", range(6))
def test_seeing_and_roundness_ignore_cosmic_ray_tracks(seed):
    image, hits = _frame(seed, cosmic_scale=3.0)
    assert len(hits) > 100  # pixels: tracks of several pixels each
    detections = detect(image)
    fwhm = detections.seeing_fwhm_px(image)
    # the simulator's Moffat (beta 3) fitted with a Gaussian reads ~5% wide
    assert abs(fwhm / FWHM_PX - 1.0) < 0.10, fwhm
    assert detections.median_elongation() < 1.3


def test_the_test_frames_break_the_unchecked_selection():
    """The frames above are hard: among their brightest detections are tracks, and the
    former selection (brightest clean detections, no shape test) gets the seeing wrong
    and finds the frames trailed."""
    wrong = trailed = 0
    for seed in range(6):
        image, _ = _frame(seed, cosmic_scale=3.0)
        detections = detect(image)
        fwhm = _old_selection_fwhm(detections, image)
        wrong += not abs(fwhm / FWHM_PX - 1.0) <= 0.10
        clean = detections.flags == 0
        trailed += float(np.median(detections.elongation[clean][:20])) > 1.6
    assert wrong >= 3 and trailed >= 3


def test_trailed_stars_stay_star_like_and_elongated():
    image, _ = _frame(11, cosmic_scale=3.0, trail=(20.0, 4.0))
    detections = detect(image)
    assert detections.median_elongation() > 1.6
    mask = detections.star_like()
    assert mask.sum() >= 10


def test_without_cosmic_rays_nothing_changes():
    image, _ = _frame(3, cosmic_scale=0.0)
    detections = detect(image)
    clean = np.nonzero(detections.flags == 0)[0]
    star_like = detections.star_like()
    assert star_like[clean[:20]].all()  # the bright stars all kept (faint ones are noisier)
    assert star_like.sum() >= 0.85 * len(clean)
    assert abs(detections.seeing_fwhm_px(image) / FWHM_PX - 1.0) < 0.10


def test_a_hint_is_followed_only_where_the_stars_agree():
    image, _ = _frame(2, cosmic_scale=3.0)
    detections = detect(image)
    own = detections.seeing_fwhm_px(image)
    near = detections.seeing_fwhm_px(image, hint=FWHM_PX)
    assert abs(near / FWHM_PX - 1.0) < 0.10
    # a hint no star agrees with does not drag the seeing: the frame keeps its own
    assert detections.seeing_fwhm_px(image, hint=2.5 * FWHM_PX) == own


def test_frames_off_the_nights_seeing_trend_are_found():
    from iopreport.reduce.seeingtrend import SeeingPoint, off_trend

    step = 10.0 / 1440.0  # a frame every 10 minutes
    points = [
        SeeingPoint(f"f{i}", ("AndorT90", "1x1"), 2460000.5 + i * step, 1.8 + 0.02 * i)
        for i in range(8)
    ]
    points[4] = SeeingPoint("f4", ("AndorT90", "1x1"), points[4].juliandate, 0.9)  # half
    points.append(SeeingPoint("other", ("CAFOS", "1x1"), points[4].juliandate, 0.9))
    found = off_trend(points)
    assert set(found) == {"f4"}  # the CAFOS frame has no trend of its own
    assert found["f4"] == pytest.approx(1.87, abs=0.05)


@pytest.mark.slow
def test_a_frame_measured_off_the_trend_is_measured_again(tmp_path):
    """A stored seeing at half the night's (as tracks would give) is measured again with
    the trend as the hint, through the worker pool, and comes back right."""
    from test_reduce import NIGHT, make_project

    from iopreport.reduce.executor import LocalPool
    from iopreport.reduce.night import (
        NightReport,
        NightState,
        reduce_night,
        remeasure_off_trend,
    )
    from iopreport.reduce.plan import science_tasks
    from iopreport.store import Epoch, RawFit, ReducedFit, close_store

    project, config, catalog = make_project(tmp_path, telescopes=("OSN-T150",), preset="tiny")
    first = reduce_night(config, catalog, "OSN-T150", NIGHT, workers=1)
    assert first.frames_failed == {} and first.seeing_remeasured == {}
    frames = list(ReducedFit.select().join(RawFit).order_by(RawFit.juliandate))
    assert len(frames) >= 5
    victim = frames[2]
    true_seeing = victim.seeing_fwhm_arcsec
    ReducedFit.update(seeing_fwhm_arcsec=true_seeing / 2).where(
        ReducedFit.id == victim.id
    ).execute()
    epoch = Epoch.get(telescope="OSN-T150", night=NIGHT)
    rawfits = list(RawFit.select().where(RawFit.epoch == epoch))
    report = NightReport("OSN-T150", NIGHT)
    state = NightState(epoch, rawfits, report)
    tasks = science_tasks(config, catalog, epoch, rawfits, True, report)
    state.tasks = {task.raw_path.name: task for task in tasks}
    with LocalPool(config, 1) as pool:
        again = remeasure_off_trend(catalog, state, pool)
    assert again == [victim.rawfit.filename], report.seeing_remeasured
    assert "against the trend" in report.seeing_remeasured[victim.rawfit.filename]
    restored = ReducedFit.get_by_id(victim.id).seeing_fwhm_arcsec
    assert restored == pytest.approx(true_seeing, rel=0.02)
    close_store()
