"""The frame worker's stages on a small frame rendered here (no night simulated).

A 320x320 frame with a dozen Gaussian stars, a header TAN WCS and no
astrometry.net index: the worker reads, calibrates, finds no solver, places the
frame by its header WCS (checked against the catalog sources) and measures
the sources. Fast: not marked slow.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from iopreport.instruments.registry import InstrumentRegistry
from iopreport.reduce import frame, framestages
from iopreport.reduce.classify import FrameInfo
from iopreport.reduce.frame import reduce_frame
from iopreport.reduce.framestages import STAGES
from iopreport.reduce.frametask import FrameOutcome, FrameTask
from iopreport.reduce.measure import SkySource
from iopreport.reduce.quadwcs import tan_wcs

SHAPE = (320, 320)  # ny, nx
SKY = 200.0  # ADU per pixel
FWHM_PX = 3.5
CENTRE = (150.0, 30.0)  # RA, Dec of the frame's centre, degrees
N_SOURCES = 5  # the stars named in the "catalog"


def _render(seed: int = 7):
    """Frame pixels, its true WCS and the stars' (x, y, flux) (0-based pixels)."""
    rng = np.random.default_rng(seed)
    spec = InstrumentRegistry.builtin().get("AndorT150")
    wcs = tan_wcs((159.5, 159.5), CENTRE, 0.0, False, spec.pixscale_arcsec)
    stars = np.column_stack(
        [rng.uniform(30, 290, 12), rng.uniform(30, 290, 12), rng.uniform(2e4, 8e4, 12)]
    )
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    sigma = FWHM_PX / (2 * math.sqrt(2 * math.log(2)))
    image = np.full(SHAPE, SKY)
    for sx, sy, flux in stars:
        image += (
            flux
            / (2 * math.pi * sigma**2)
            * np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / (2 * sigma**2))
        )
    image = rng.poisson(image).astype(np.float32)
    return image, wcs, stars, spec


def _task(tmp_path: Path, image, wcs, stars, spec) -> FrameTask:
    raw = tmp_path / "raw" / "frame-0001R.fits"
    raw.parent.mkdir(parents=True)
    header = fits.Header()
    header.update(wcs.to_header())
    fits.PrimaryHDU(image, header).writeto(raw)
    ra, dec = wcs.all_pix2world(stars[:N_SOURCES, 0], stars[:N_SOURCES, 1], 0)
    sources = tuple(SkySource(f"S{i}", float(ra[i]), float(dec[i])) for i in range(N_SOURCES))
    info = FrameInfo(
        instrument=spec.name,
        imgtype="light",
        band="R",
        obsmode="photometry",
        angle=None,
        juliandate=2460000.5,
        exptime=60.0,
        binning=(1, 1),
        size=(SHAPE[1], SHAPE[0]),
        object_name="S0",
    )
    (tmp_path / "index").mkdir()
    return FrameTask(
        raw_path=raw,
        reduced_path=tmp_path / "reduced" / "frame-0001R.fits",
        info=info,
        bias_path=None,
        dark_path=None,
        flat_path=None,
        sources=sources,
        position_hint=CENTRE,
        index_dir=tmp_path / "index",  # empty: no plate solving, the header's WCS is checked
        budget_s=5.0,
        spec=spec,
        target_radec=(sources[0].ra_deg, sources[0].dec_deg),
    )


@pytest.fixture
def rendered(tmp_path):
    image, wcs, stars, spec = _render()
    return _task(tmp_path, image, wcs, stars, spec), stars


def test_the_stages_run_in_their_order():
    names = [stage.__name__ for stage in STAGES]
    assert names.index("read_stage") < names.index("calibrate_stage")
    assert names.index("calibrate_stage") < names.index("plate_solve_stage")
    assert names.index("plate_solve_stage") < names.index("header_wcs_stage")
    assert names.index("header_wcs_stage") < names.index("place_stage")
    assert names.index("quality_stage") < names.index("photometry_stage") == len(names) - 1


def test_a_small_frame_is_placed_by_its_header_and_measured(rendered):
    task, stars = rendered
    outcome = reduce_frame(task)
    assert outcome.ok, outcome.error
    assert outcome.astrometry_method == "header"
    assert outcome.header_wcs and "no astrometry.net index files" in outcome.astrometry_detail
    assert outcome.n_detected >= len(stars) - 1
    assert outcome.pixscale_arcsec == pytest.approx(task.spec.pixscale_arcsec, rel=1e-3)
    assert outcome.seeing_fwhm_px == pytest.approx(FWHM_PX, rel=0.15)
    measured = {m.name: m for m in outcome.measurements}
    assert sorted(measured) == [f"S{i}" for i in range(N_SOURCES)]
    for i in range(N_SOURCES):
        m = measured[f"S{i}"]
        assert math.hypot(m.x - stars[i, 0], m.y - stars[i, 1]) < 0.3
        # an aperture of a few FWHM holds nearly all of a Gaussian star's light
        assert m.flux == pytest.approx(stars[i, 2], rel=0.06)
        assert 0 < m.flux_err < 0.05 * m.flux
    assert set(outcome.seconds) >= {"read", "calibrate", "detect", "astrometry", "photometry"}
    with fits.open(task.reduced_path) as hdul:
        assert hdul[0].header["IOPASTRO"] == "header"
        assert hdul[0].header["IOPRAW"] == task.raw_path.name
        assert hdul[0].data.shape == SHAPE


def test_a_frame_without_data_stops_at_the_read_stage(rendered, tmp_path):
    task, _ = rendered
    empty = tmp_path / "raw" / "empty.fits"
    fits.PrimaryHDU(np.full(SHAPE, np.nan, dtype=np.float32)).writeto(empty)
    outcome = reduce_frame(dataclasses.replace(task, raw_path=empty))
    assert outcome.stage == "read" and outcome.error == "read: every pixel is NaN"
    assert outcome.seconds == {} and outcome.reduced_path is None


def test_a_header_wcs_far_off_fails_astrometry_and_the_later_stages_do_not_run(
    rendered, monkeypatch
):
    task, _ = rendered
    with fits.open(task.raw_path, mode="update") as hdul:
        hdul[0].header["CRVAL2"] = CENTRE[1] + 0.2  # 12' north: no source matches
    ran = []
    stages = tuple(_recording(stage, ran) for stage in STAGES)
    monkeypatch.setattr(frame, "STAGES", stages)
    outcome = reduce_frame(task)
    assert outcome.stage == "astrometry" and "plate solving failed" in outcome.error
    assert ran[-1] == "place_stage" and "photometry_stage" not in ran
    assert outcome.measurements == [] and task.reduced_path.exists()  # calibrated, unsolved


def _recording(stage, ran):
    def run(work):
        ran.append(stage.__name__)
        return stage(work)

    return run


def test_the_calibrate_stage_applies_bias_and_flat(rendered, tmp_path):
    task, _ = rendered
    bias = tmp_path / "bias.fits"
    flat = tmp_path / "flat.fits"
    fits.PrimaryHDU(np.full(SHAPE, 100.0, dtype=np.float32)).writeto(bias)
    fits.PrimaryHDU(np.full(SHAPE, 0.5, dtype=np.float32)).writeto(flat)
    work = framestages.FrameWork(dataclasses.replace(task, bias_path=bias, flat_path=flat), None)
    work.outcome = FrameOutcome(raw_path=task.raw_path)
    assert framestages.read_stage(work) is None and framestages.calibrate_stage(work) is None
    np.testing.assert_allclose(work.image, (work.raw - 100.0) / 0.5, rtol=1e-5)
    assert not work.has_pairs and work.offset is None


def test_the_frames_own_gain_reaches_photometry(tmp_path):
    """A spec naming a gain keyword: the frame's header value, not the spec's, sets the errors."""
    image, wcs, stars, spec = _render()
    errors = {}
    for gain in (1.0, 16.0):
        folder = tmp_path / f"gain{gain:g}"
        folder.mkdir()
        keyed = dataclasses.replace(spec, gain_keyword="GAIN", gain_e_per_adu=1.0)
        task = _task(folder, image, wcs, stars, keyed)
        with fits.open(task.raw_path, mode="update") as hdul:
            hdul[0].header["GAIN"] = gain
        outcome = reduce_frame(task)
        assert outcome.ok, outcome.error
        errors[gain] = {m.name: m.flux_err for m in outcome.measurements}
    # the Poisson part of an error in ADU falls as 1/sqrt(gain) (the sky's measured scatter
    # does not): with the spec's gain used for both, the errors would be equal
    for name, err in errors[1.0].items():
        assert errors[16.0][name] < 0.8 * err, name
