"""Photometry on simulated frames with the true WCS: magnitudes against truth, CR immunity."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from iopreport.catalog import load_catalog
from iopreport.instruments import InstrumentRegistry
from iopreport.reduce.calibrate import calibrate
from iopreport.reduce.classify import classify_file
from iopreport.reduce.masters import CalibrationFrame, build_master
from iopreport.reduce.measure import SkySource, measure_frame
from iopreport.reduce.photometry import zero_point
from iopreport.simulate import simulate_night
from iopreport.skeleton import skeleton_dir

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHT = dt.date(2022, 9, 8)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    out = tmp_path_factory.mktemp("phot")
    return {r.telescope: r for r in simulate_night(out, NIGHT, preset="tiny", seed=21)}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(skeleton_dir() / "catalog.toml")


def masters_for(result, instrument_name, band, angle):
    spec = InstrumentRegistry.builtin().get(instrument_name)
    frames = {}
    for name, record in result.truth["files"].items():
        if record["instrument"] != instrument_name:
            continue
        info = classify_file(result.folder / name, result.telescope, NIGHT)
        frames.setdefault(record["imgtype"], []).append(
            (record, CalibrationFrame(result.folder / name, info.exptime))
        )
    bias = build_master("bias", [f for _, f in frames["bias"]], spec).data
    dark = None
    if "dark" in frames:
        longest = max(f.exptime for _, f in frames["dark"])
        dark = build_master(
            "dark", [f for _, f in frames["dark"] if f.exptime == longest], spec, bias=bias
        ).data
    flat_frames = [
        f
        for r, f in frames["flat"]
        if r["band"] == band and (r["angle"] == angle or instrument_name == "DIPOL")
    ]
    flat = build_master("flat", flat_frames, spec, bias=bias, dark_rate=dark).data
    return bias, dark, flat


def reduce_and_measure(result, name, catalog):
    record = result.truth["files"][name]
    spec = InstrumentRegistry.builtin().get(record["instrument"])
    info = classify_file(result.folder / name, result.telescope, NIGHT)
    bias, dark, flat = masters_for(result, record["instrument"], record["band"], record["angle"])
    raw = fits.getdata(result.folder / name).astype(np.float32)
    image = calibrate(
        raw, exptime=info.exptime, bias=bias, dark_rate=dark, flat=flat, origin=info.subframe_origin
    )
    target = catalog.get(record["target"])
    sources = [
        SkySource(s.name, s.ra_deg, s.dec_deg)
        for s in [target, *(catalog.get(c) for c in target.calibrators)]
    ]
    offset = tuple(record["pair_offset_px"]) if record["pair_offset_px"] else None
    return (
        measure_frame(image, raw, WCS(record["wcs"]), sources, spec, pair_offset=offset),
        record,
        target,
    )


def calibrated_magnitude(photometry, record, target, catalog):
    flux = {}
    for m in photometry.measurements:
        flux.setdefault(m.name, []).append(m)

    def total(name):
        ms = flux[name]
        f = sum(m.flux for m in ms)
        e = math.sqrt(sum(m.flux_err**2 for m in ms))
        return -2.5 * math.log10(f), 2.5 / math.log(10) * e / f

    band = record["band"]
    calibrators = []
    for c in target.calibrators:
        if c in flux and band in catalog.get(c).mags:
            inst, err = total(c)
            mag = catalog.get(c).mags[band]
            calibrators.append((inst, err, mag.value, mag.err))
    zp = zero_point(calibrators)
    inst, err = total(target.name)
    return inst + zp.value, math.hypot(err, zp.error), zp


def test_target_magnitudes_match_truth_on_every_instrument(night, catalog):
    errors = []
    for result in night.values():
        for entry in result.truth["photometry"]:
            if entry["faults"]:
                continue
            photometry, record, target = reduce_and_measure(result, entry["file"], catalog)
            assert not photometry.error
            mag, mag_err, zp = calibrated_magnitude(photometry, record, target, catalog)
            assert zp.n_used >= 2
            errors.append((entry["file"], mag - entry["mag"], mag_err))
    assert len(errors) >= 4
    for name, error, sigma in errors:
        # literature errors of the calibrators (0.04-0.06 mag) dominate the claimed error
        assert abs(error) < 0.05, (name, error)
        assert abs(error) < 3 * sigma, (name, error, sigma)


def test_seeing_is_measured(night, catalog):
    result = night["OSN-T090"]
    entry = next(e for e in result.truth["photometry"] if e["instrument"] == "AndorT90")
    photometry, record, _ = reduce_and_measure(result, entry["file"], catalog)
    scale = 0.387 * record["binning"]
    # a Gaussian-equivalent FWHM of a beta=3 Moffat is within ~20% of its FWHM
    assert photometry.fwhm_px * scale == pytest.approx(record["seeing_fwhm_arcsec"], rel=0.25)


@pytest.fixture(scope="module")
def sampled_night(tmp_path_factory):
    """AndorT150 at 2x2 binning: stars sampled by ~4 px FWHM, as on real nights."""
    out = tmp_path_factory.mktemp("phot-small")
    (result,) = simulate_night(out, NIGHT, telescopes=("OSN-T150",), preset="small", seed=22)
    return result


def test_a_cosmic_ray_on_a_calibrator_does_not_move_the_result(sampled_night, catalog):
    result = sampled_night
    entry = next(e for e in result.truth["photometry"] if e["target"] == "2200+420")
    clean, record, target = reduce_and_measure(result, entry["file"], catalog)
    star = next(m for m in clean.measurements if m.name == "2200+420 C")
    # hit the calibrator's core with a cosmic ray track in the raw file
    path = result.folder / entry["file"]
    original = path.read_bytes()
    try:
        with fits.open(path, mode="update") as hdul:
            data = hdul[0].data.astype(np.int32)
            x, y = round(star.x), round(star.y)
            data[y, x + 1] += 4000
            data[y + 1, x + 2] += 3000
            hdul[0].data = np.clip(data, 0, 65535).astype(np.uint16)
        hit, _, _ = reduce_and_measure(result, entry["file"], catalog)
    finally:
        path.write_bytes(original)
    hit_star = next(m for m in hit.measurements if m.name == "2200+420 C")
    assert hit.n_cosmic_pixels >= clean.n_cosmic_pixels + 2
    assert hit_star.flux == pytest.approx(star.flux, rel=0.005)
    mag_clean = calibrated_magnitude(clean, record, target, catalog)[0]
    mag_hit = calibrated_magnitude(hit, record, target, catalog)[0]
    assert abs(mag_hit - mag_clean) < 0.003


def test_zero_point_rejects_a_wrong_calibrator():
    good = [(-10.0, 0.005, 12.0 + 0.001 * i, 0.01) for i in range(5)]
    bad = [(-10.0, 0.005, 12.5, 0.01)]
    zp = zero_point(good + bad)
    assert zp.n_used == 5 and zp.n_rejected == 1
    assert zp.value == pytest.approx(22.002, abs=0.002)
