"""Real frames from other cameras, through instruments described in config.toml.

The files are public test data of other projects (README beside them):
DIPOL-UF frames (a MaxIm DL sub-frame with a malformed INSTRUME card, and an
Andor iXon frame), a SAAO 1.0 m frame and a 6-inch refractor's reduced frame
with an astrometry.net SIP WCS.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from iopreport.config import load_config
from iopreport.reduce.astrometry import find_pairs
from iopreport.reduce.classify import classify_file
from iopreport.reduce.detect import detect
from iopreport.reduce.photometry import Apertures, Target, measure
from iopreport.reduce.rawframe import read_raw
from iopreport.skeleton import init_project

DIPOL_UF = """
[instruments.DIPOLUF_APOGEE]
telescope = "NOT"
instrume = "Apogee US"          # the card reads INSTRUME= 'Apogee US' /Net'
pixscale_arcsec = 0.22
gain_e_per_adu = 1.0
read_noise_e = 10.0
type_keyword = "IMAGETYP"
types = { "Light Frame" = "light", "Bias Frame" = "bias", "Flat Field" = "flat" }
default_band = "R"              # MaxIm DL wrote no filter
date_keyword = "DATE-OBS"
polarimetry = "hwp"
angle_keyword = "NOTES"
angle_convention = "notes"      # "315 deg 315": DIPOL's NOTES convention
pol_angles = [
    0.0, 22.5, 45.0, 67.5, 90.0, 112.5, 135.0, 157.5,
    180.0, 202.5, 225.0, 247.5, 270.0, 292.5, 315.0, 337.5,
]
min_pol_angles = 8
hwp_average = "cycles"
oe_offset_px = [56.6, 55.5]
oe_offset_std_px = [3.0, 3.0]

[instruments.DIPOLUF_IXON]
telescope = "NOT"
instrume_keyword = "CAMERA"
instrume = "DU897*"             # CAMERA = 'DU897_BV [10001]'
pixscale_arcsec = 0.22
gain_e_per_adu = 1.0
read_noise_e = 10.0
type_keyword = "IMAGETYP"
types = { "Light Frame" = "light" }
filter_keyword = "BAND"
date_keyword = "DATE-OBS"
polarimetry = "hwp"
angle_keyword = "ANGLE"
pol_angles = [0.0, 22.5, 45.0, 67.5]
oe_offset_px = [-89.8, -91.8]
oe_offset_std_px = [3.0, 3.0]

[archives.NOT]
protocol = "local"
root = "archive"
"""

#: O and E image positions the README gives (pixels, as SEP measures them).
APOGEE_PAIR = ((95.1, 48.0), (151.7, 103.5))
IXON_PAIR = ((291.7, 453.7), (201.9, 361.9))


@pytest.fixture(scope="module")
def dipol_config(tmp_path_factory):
    directory = tmp_path_factory.mktemp("real") / "site"
    init_project(directory)
    path = directory / "config.toml"
    path.write_text(path.read_text() + DIPOL_UF)
    return load_config(path)


def _pair_near(path, spec, expected):
    data = read_raw(path, spec).data
    found = detect(data, threshold_sigma=5.0)
    pairs = find_pairs(found.x, found.y, spec.oe_offset_px, spec.oe_offset_std_px)
    assert pairs is not None, "no O/E pair found"
    (ox, oy), (ex, ey) = expected
    best = min(
        (
            np.hypot(found.x[o] - ox, found.y[o] - oy) + np.hypot(found.x[e] - ex, found.y[e] - ey),
            (found.x[o], found.y[o]),
            (found.x[e], found.y[e]),
        )
        for o, e in zip(pairs.o_index, pairs.e_index, strict=True)
    )
    return best[1], best[2]


@pytest.mark.parametrize(
    ("name", "instrument_name", "angle", "band", "expected"),
    [
        (
            "DIPOL-UF_ImageTest_test.fits_HD22484_MaxImDL.fits",
            "DIPOLUF_APOGEE",
            315.0,
            "R",
            APOGEE_PAIR,
        ),
        ("debug_image.fits", "DIPOLUF_IXON", 0.0, "B", IXON_PAIR),
    ],
)
def test_dipol_uf_frames_are_polarimetric_with_their_pairs(
    dipol_config, shared_dir, name, instrument_name, angle, band, expected
):
    path = shared_dir / "data/real/dipol" / name
    info = classify_file(path, "NOT", dt.date(2020, 1, 1), dipol_config.registry)
    assert info.instrument == instrument_name
    assert info.imgtype == "light" and info.obsmode == "polarimetry"
    assert info.angle == angle and info.band == band
    spec = dipol_config.registry.get(instrument_name)
    assert spec.polarimetry == "hwp" and spec.oe_offset_px is not None
    o, e = _pair_near(path, spec, expected)
    assert np.hypot(o[0] - expected[0][0], o[1] - expected[0][1]) < 1.0, o
    assert np.hypot(e[0] - expected[1][0], e[1] - expected[1][1]) < 1.0, e


def test_malformed_instrume_card_is_read_as_far_as_it_goes(shared_dir):
    header = fits.getheader(
        shared_dir / "data/real/dipol/DIPOL-UF_ImageTest_test.fits_HD22484_MaxImDL.fits"
    )
    assert header["INSTRUME"] == "Apogee US"  # the rest of the header is used as it is
    assert header["XORGSUBF"] == 112 and header["NOTES"] == "315 deg 315"


def test_refractor_sip_wcs_and_photometry(shared_dir):
    """A reduced Pleiades frame: the SIP WCS read, the bright stars measured with sane errors."""
    path = shared_dir / "data/real/refractor_wcs/HD23642_20200222_0050u.fit"
    header = fits.getheader(path)
    wcs = WCS(header)
    assert wcs.has_celestial and wcs.sip is not None  # TAN-SIP
    # HD 23642 (Pleiades, RA 03h47m29.45s, Dec +24d17m18.0s) falls inside the frame
    x, y = wcs.all_world2pix([[56.8727, 24.2883]], 0)[0]
    data = fits.getdata(path).astype(np.float32)
    assert 0 <= x < data.shape[1] and 0 <= y < data.shape[0]
    found = detect(data, threshold_sigma=10.0)
    nearest = np.min(np.hypot(found.x - x, found.y - y))
    assert nearest < 3.0, f"no star within 3 px of HD 23642's WCS position ({nearest:.1f} px)"
    brightest = np.argsort(found.flux)[::-1][:8]
    fwhm = float(np.median(found.fwhm_px[brightest]))
    targets = [Target(f"star{i}", "", found.x[i], found.y[i]) for i in brightest]
    results = measure(data, targets, Apertures.from_fwhm(fwhm), gain=1.0, read_noise_adu=5.0)
    usable = [m for m in results if not m.flags]
    assert len(usable) >= 5, [m.flags for m in results]
    for m in usable:
        assert m.flux > 0 and 0 < m.flux_err < 0.05 * m.flux, m  # bright stars: better than 5%
        assert m.flux_err > np.sqrt(m.flux)  # no better than the photon noise
