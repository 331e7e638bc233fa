"""Masters from simulated calibration frames, against the simulator's detector truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from astropy.io import fits

from iopreport.instruments import InstrumentRegistry
from iopreport.reduce import masters as masters_module
from iopreport.reduce.classify import classify_file
from iopreport.reduce.masters import CalibrationFrame, build_master, master_header, write_master
from iopreport.simulate import simulate_night
from iopreport.simulate.render import bias_structure, flat_pattern, hot_pixels

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHT = dt.date(2022, 9, 8)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    out = tmp_path_factory.mktemp("masters")
    return {r.telescope: r for r in simulate_night(out, NIGHT, preset="tiny", seed=5)}


def frames_of(result, instrument_name, imgtype, band=None, angle=None):
    frames = []
    for name, record in result.truth["files"].items():
        if record["instrument"] != instrument_name or record["imgtype"] != imgtype:
            continue
        if band and (record["band"] != band or record["angle"] != angle):
            continue
        info = classify_file(result.folder / name, result.telescope, NIGHT)
        frames.append(CalibrationFrame(result.folder / name, info.exptime))
    return frames


def test_master_bias_recovers_pedestal_and_column_structure(night):
    spec = InstrumentRegistry.builtin().get("AndorT90")
    bias = build_master("bias", frames_of(night["OSN-T090"], "AndorT90", "bias"), spec)
    assert bias.ok and len(bias.inputs) == 3
    truth = spec.bias_level_adu + bias_structure("AndorT90", bias.data.shape)
    residual = bias.data - truth
    # read noise 7 e- / 4.5 e-/ADU / sqrt(3) frames ~ 0.9 ADU, plus rounding
    assert abs(np.median(residual)) < 0.1
    assert np.std(residual) < 1.2


def test_master_dark_is_a_rate_with_the_hot_pixels(night):
    spec = InstrumentRegistry.builtin().get("DIPOL")
    result = night["OSN-T090"]
    bias = build_master("bias", frames_of(result, "DIPOL", "bias"), spec)
    darks = frames_of(result, "DIPOL", "dark")
    longest = max(f.exptime for f in darks)
    dark = build_master("dark", [f for f in darks if f.exptime == longest], spec, bias=bias.data)
    assert dark.ok
    rows, cols, rates = hot_pixels("DIPOL", dark.data.shape)
    measured = dark.data[rows, cols] * spec.gain_e_per_adu
    assert np.median(measured / rates) == pytest.approx(1.0, abs=0.05)
    assert np.median(dark.data) * spec.gain_e_per_adu == pytest.approx(spec.dark_e_per_s, abs=0.05)


@pytest.mark.parametrize(
    ("telescope", "instrument_name", "band", "angle"),
    [
        ("OSN-T090", "AndorT90", "R", None),
        ("OSN-T090", "AndorT90", "R", 45.0),
        ("OSN-T150", "AndorT150", "R", None),
        ("CAHA-T220", "CAFOS", "R", 22.48),
        ("OSN-T090", "DIPOL", "R", None),
    ],
)
def test_master_flat_matches_the_true_flat_pattern(night, telescope, instrument_name, band, angle):
    spec = InstrumentRegistry.builtin().get(instrument_name)
    result = night[telescope]
    bias = build_master("bias", frames_of(result, instrument_name, "bias"), spec)
    flat = build_master(
        "flat", frames_of(result, instrument_name, "flat", band, angle), spec, bias=bias.data
    )
    assert flat.ok, flat.error
    assert np.median(flat.data) == pytest.approx(1.0, abs=1e-6)
    binning = next(
        r["binning"] for r in result.truth["files"].values() if r["instrument"] == instrument_name
    )
    truth = flat_pattern(instrument_name, band, flat.data.shape, binning)
    ratio = flat.data / (truth / np.median(truth))
    # photon noise of three ~25000 ADU flats: well under 1% per pixel
    assert np.std(ratio) < 0.01
    assert np.median(np.abs(ratio - 1)) < 0.004


def test_frames_are_selected_with_reasons(night, tmp_path):
    spec = InstrumentRegistry.builtin().get("AndorT90")
    result = night["OSN-T090"]
    bias = build_master("bias", frames_of(result, "AndorT90", "bias"), spec)
    flats = frames_of(result, "AndorT90", "flat", "R", None)
    dim = tmp_path / "dim.fits"
    data = fits.getdata(flats[0].path).astype(float)
    fits.writeto(dim, (spec.bias_level_adu + (data - spec.bias_level_adu) * 0.02).astype(np.uint16))
    saturated = tmp_path / "saturated.fits"
    data[:100] = spec.saturation_adu
    fits.writeto(saturated, data.astype(np.uint16))
    broken = tmp_path / "broken.fits"
    broken.write_bytes(flats[0].path.read_bytes()[:5000])
    extra = [CalibrationFrame(p, 5.0) for p in (dim, saturated, broken)]
    flat = build_master("flat", [*flats, *extra], spec, bias=bias.data)
    assert flat.ok and len(flat.inputs) == len(flats)
    assert "outside" in flat.rejected["dim.fits"]
    assert "saturated" in flat.rejected["saturated.fits"]
    assert "unreadable" in flat.rejected["broken.fits"]


def test_too_few_frames_gives_no_master_and_says_why(night):
    spec = InstrumentRegistry.builtin().get("AndorT90")
    frames = frames_of(night["OSN-T090"], "AndorT90", "bias")[:2]
    bias = build_master("bias", frames, spec)
    assert not bias.ok
    assert bias.error == "2 usable bias frame(s) of 2; at least 3 needed"


def test_reads_each_frame_once_and_strips_do_not_change_the_result(night, monkeypatch):
    spec = InstrumentRegistry.builtin().get("AndorT90")
    frames = frames_of(night["OSN-T090"], "AndorT90", "bias")
    reads = []
    original = masters_module.read_raw
    monkeypatch.setattr(
        masters_module, "read_raw", lambda p, spec: reads.append(p) or original(p, spec)
    )
    small = build_master("bias", frames, spec, memory_limit=64 * 1024)  # a few rows per strip
    assert sorted(reads) == sorted(f.path for f in frames)
    large = build_master("bias", frames, spec)
    np.testing.assert_array_equal(small.data, large.data)


def test_master_file_carries_its_provenance(night, tmp_path):
    spec = InstrumentRegistry.builtin().get("AndorT90")
    frames = frames_of(night["OSN-T090"], "AndorT90", "bias")
    bias = build_master("bias", frames, spec)
    path = tmp_path / "masterbias.fits"
    write_master(path, bias, master_header(bias, instrume="AndorT90", binning="4x4"))
    header = fits.getheader(path)
    assert header["MASTER"] == "bias" and header["NCOMBINE"] == 3
    assert {header[f"IMCMB00{i}"] for i in (1, 2, 3)} == {f.path.name for f in frames}
    assert not list(tmp_path.glob(".*.tmp"))


def test_sort_stack_sorts_like_numpy_for_every_stack_size():
    rng = np.random.default_rng(7)
    for count in range(1, masters_module.NETWORK_MAX_FRAMES + 3):
        stack = rng.normal(size=(count, 6, 5)).astype(np.float32)
        stack[:, 0, 0] = 1.0  # ties
        expected = np.sort(stack, axis=0)
        np.testing.assert_array_equal(masters_module.sort_stack(stack.copy()), expected)


@pytest.mark.parametrize("count", [3, 5, 9])
def test_combination_drops_a_cosmic_ray_and_keeps_the_noise(tmp_path, count):
    """A hit is clipped; good values are not (with 3 frames a per-pixel MAD would clip
    the farther of the two outer values on many pixels; the stack's noise does not)."""
    rng = np.random.default_rng(count)
    sigma, level = 5.0, 1000.0
    stack = rng.normal(level, sigma, size=(count, 64, 64)).astype(np.float32)
    stack[1, 10:12, 20:22] += 5000.0  # a cosmic ray in one bias
    frames = []
    for index, data in enumerate(stack):
        path = tmp_path / f"bias{index}.fits"
        fits.PrimaryHDU(data=data).writeto(path)
        frames.append(CalibrationFrame(path, 0.0))
    master = build_master("bias", frames, InstrumentRegistry.builtin().get("AndorT90"))
    assert master.ok, master.error
    others = np.delete(stack, 1, axis=0)
    np.testing.assert_allclose(master.data[10:12, 20:22], others[:, 10:12, 20:22].mean(axis=0))
    clean = np.ones((64, 64), dtype=bool)
    clean[10:12, 20:22] = False
    plain = stack.mean(axis=0)
    clipped = ~np.isclose(master.data, plain, rtol=0, atol=1e-3) & clean
    # Gaussian values beyond 3 sigma of the median: ~0.3-0.5% of each frame's
    assert clipped.mean() < 0.006 * count
    noise = float(np.std(master.data[clean]))
    assert noise == pytest.approx(sigma / np.sqrt(count), rel=0.1)


def test_exact_median_equals_numpys_on_flats_with_ties_vignetting_and_nan():
    from iopreport.reduce.masters import exact_median

    rng = np.random.default_rng(5)
    for trial in range(30):
        shape = (int(rng.integers(40, 400)), int(rng.integers(40, 400)))
        flat = rng.normal(1.0, 0.02, shape).astype(np.float32)
        if trial % 3 == 0:
            flat[:, : shape[1] // 3] *= np.float32(0.7)  # a vignetted third
        if trial % 5 == 0:
            flat = np.round(flat * 100) / np.float32(100)  # many ties
        expected = float(np.median(flat))
        assert exact_median(flat) == expected
    flat[3, 4] = np.nan
    assert np.isnan(exact_median(flat))
    # a skewed frame whose sampled window misses the median still gets the exact value
    skewed = np.concatenate([np.zeros(5000), np.arange(5001, dtype=float)]).astype(np.float32)
    assert exact_median(skewed) == float(np.median(skewed))
