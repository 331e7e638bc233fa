"""Classification of every simulated raw file against the simulator's truth, and damaged files."""

from __future__ import annotations

import datetime as dt

import pytest

from iopreport.reduce.classify import ClassificationError, classify_file
from iopreport.simulate import simulate_night

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHT = dt.date(2022, 9, 8)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    out = tmp_path_factory.mktemp("classify")
    return simulate_night(out, NIGHT, preset="tiny", seed=11)


def test_every_file_classified_as_the_truth_says(night):
    checked = 0
    for result in night:
        truth = result.truth
        for name, record in truth["files"].items():
            info = classify_file(result.folder / name, result.telescope, NIGHT)
            assert info.instrument == record["instrument"], name
            assert info.imgtype == record["imgtype"], name
            if record["imgtype"] in ("flat", "light"):
                assert info.band == record["band"], name
                assert info.obsmode == record["obsmode"], name
                if record["obsmode"] == "polarimetry":
                    assert info.angle == pytest.approx(record["angle"]), name
                else:
                    assert info.angle is None, name
            assert info.exptime == pytest.approx(record["exptime"])
            assert info.juliandate == pytest.approx(record["jd_mid"], abs=2e-5), name
            assert info.binning == (record["binning"], record["binning"])
            assert list(info.size) == record["shape"]
            assert info.subframe_origin == (record["window"]["x0"], record["window"]["y0"])
            assert info.flipped == record["flip"]
            checked += 1
    assert checked > 80


def test_pointing_is_read_from_each_instruments_keywords(night):
    for result in night:
        for name, record in result.truth["files"].items():
            if record["imgtype"] != "light":
                continue
            info = classify_file(result.folder / name, result.telescope, NIGHT)
            if record["instrument"] == "DIPOL":
                assert info.pointing is None  # TELRA/TELDEC only from 2025
            else:
                assert info.pointing[0] == pytest.approx(record["pointing"][0], abs=1e-3)
                assert info.pointing[1] == pytest.approx(record["pointing"][1], abs=1e-3)


def test_roper_name_kept_after_the_camera_swap_means_andor(tmp_path):
    (result,) = simulate_night(
        tmp_path, dt.date(2021, 10, 1), telescopes=("OSN-T090",), preset="tiny", seed=3
    )
    bias = next(p for p in result.files if p.name.startswith("Bias"))
    assert classify_file(bias, "OSN-T090", dt.date(2021, 10, 1)).instrument == "RoperT90"
    assert classify_file(bias, "OSN-T090", dt.date(2021, 11, 1)).instrument == "AndorT90"


def test_wrong_telescope_is_refused(night):
    result = night[0]
    bias = next(p for p in result.files if p.name.startswith("Bias"))
    with pytest.raises(ClassificationError, match="not an instrument of CAHA-T220"):
        classify_file(bias, "CAHA-T220", NIGHT)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("truncated", None),
        ("missing_keywords", "EXPTIME keyword missing"),
        ("wrong_imagetyp", "IMAGETYP 'FOCUS'"),
        ("unknown_instrume", "unknown INSTRUME 'MysteryCam'"),
    ],
)
def test_damaged_files_fail_with_a_reason(tmp_path, fault, reason):
    (result,) = simulate_night(
        tmp_path, NIGHT, telescopes=("OSN-T090",), preset="tiny", seed=3, faults=[fault]
    )
    name = result.truth["faults"][0]["file"]
    if fault == "truncated":
        # the header is intact, the data are cut: classification may pass, reading the data fails
        classify_file(result.folder / name, "OSN-T090", NIGHT)
        return
    with pytest.raises(ClassificationError, match=reason):
        classify_file(result.folder / name, "OSN-T090", NIGHT)


def test_unreadable_file(tmp_path):
    path = tmp_path / "junk.fits"
    path.write_bytes(b"not a fits file at all")
    with pytest.raises(ClassificationError, match="cannot read FITS header"):
        classify_file(path, "OSN-T090", NIGHT)
