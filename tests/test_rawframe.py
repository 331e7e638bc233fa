"""Raw frames read through the instrument's overscan and trim sections (real SAAO frame)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy.io import fits

from iopreport.instruments import InstrumentRegistry
from iopreport.instruments.sections import SectionError, parse_section, section_problem
from iopreport.reduce.rawframe import read_raw

SAAO = "data/real/saao_ccd/a8280271.fits"


def _generic_spec(**sections):
    return dataclasses.replace(
        InstrumentRegistry.builtin().get("AndorT90"), name="SAAO", **sections
    )


def test_sections_parse_and_refuse_with_the_name():
    rows, columns = parse_section("[  17: 528,   1: 520]", (520, 536), "TRIMSEC")
    assert (rows, columns) == (slice(0, 520), slice(16, 528))
    with pytest.raises(SectionError, match="TRIMSEC = '\\[1:600,1:520\\]' falls outside"):
        parse_section("[1:600,1:520]", (520, 536), "TRIMSEC")
    with pytest.raises(SectionError, match="BIASSEC = '4:13' is not a FITS section"):
        parse_section("4:13", (520, 536), "BIASSEC")
    assert section_problem("") is None and section_problem("[1:2,3:4]") is None
    assert "not a FITS section" in section_problem("[1:2]")


def test_saao_overscan_from_biassec_and_trim_from_trimsec(shared_dir):
    path = shared_dir / SAAO
    raw = fits.getdata(path).astype(np.float64)
    spec = _generic_spec(overscan_keyword="BIASSEC", trim_keyword="TRIMSEC")
    frame = read_raw(path, spec)
    assert frame.data.shape == (520, 512)  # TRIMSEC [17:528,1:520]
    assert frame.trimmed_from == (536, 520)
    # the level subtracted row by row is the median of BIASSEC's columns 4-13 in that row
    row_level = np.median(raw[:, 3:13], axis=1)
    expected = raw[:, 16:528] - row_level[:, None]
    np.testing.assert_allclose(frame.data, expected, atol=1e-3)
    assert frame.overscan_level == pytest.approx(float(np.median(raw[:, 3:13])))
    # the trimmed frame has no overscan left: its sky sits well above 0, the overscan at 0
    assert abs(float(np.median(frame.data))) < float(np.median(raw[:, 16:528]))


def test_frame_without_sections_is_read_unchanged(shared_dir):
    path = shared_dir / SAAO
    frame = read_raw(path, _generic_spec())
    np.testing.assert_array_equal(frame.data, fits.getdata(path).astype(np.float32))
    assert frame.overscan_level is None and frame.trimmed_from is None


def test_bad_section_in_a_header_names_the_keyword(tmp_path, shared_dir):
    data = fits.getdata(shared_dir / SAAO)
    header = fits.getheader(shared_dir / SAAO)
    header["TRIMSEC"] = "[17:999,1:520]"
    path = tmp_path / "bad.fits"
    fits.PrimaryHDU(data, header).writeto(path)
    with pytest.raises(SectionError, match="TRIMSEC"):
        read_raw(path, _generic_spec(trim_keyword="TRIMSEC"))


def test_trimming_moves_the_header_wcs_reference_pixel(tmp_path, shared_dir):
    data = fits.getdata(shared_dir / SAAO)
    header = fits.getheader(shared_dir / SAAO)
    header["CRPIX1"], header["CRPIX2"] = 300.0, 200.0
    path = tmp_path / "wcs.fits"
    fits.PrimaryHDU(data, header).writeto(path)
    frame = read_raw(path, _generic_spec(trim_keyword="TRIMSEC"))  # [17:528,1:520]
    assert frame.header["CRPIX1"] == 284.0 and frame.header["CRPIX2"] == 200.0


def test_gain_read_noise_and_saturation_come_from_the_frames_keywords(shared_dir, tmp_path):
    """SAAO's GAIN/RDNOISE and EFOSC2's ESO DET OUT1 GAIN/RON reach the frame's spec;
    a frame without a usable value keeps the configured one."""
    keywords = {"gain_keyword": "GAIN", "read_noise_keyword": "RDNOISE"}
    spec = _generic_spec(overscan_keyword="BIASSEC", trim_keyword="TRIMSEC", **keywords)
    frame = read_raw(shared_dir / SAAO, spec)
    assert (frame.spec.gain_e_per_adu, frame.spec.read_noise_e) == (1.9, 5.0)
    assert frame.spec.saturation_adu == spec.saturation_adu
    efosc = sorted((shared_dir / "data/real/efosc2_ntt").glob("EFOSC*.fits.gz"))[0]
    eso = _generic_spec(
        gain_keyword="ESO DET OUT1 GAIN",
        read_noise_keyword="ESO DET OUT1 RON",
        saturation_keyword="NO SUCH KEY",
    )
    frame = read_raw(efosc, eso)
    assert (frame.spec.gain_e_per_adu, frame.spec.read_noise_e) == (0.91, 7.8)
    assert frame.spec.saturation_adu == eso.saturation_adu
    header = fits.Header({"GAIN": "n/a", "RDNOISE": -3.0, "SATURATE": 50000})
    fallback = _generic_spec(saturation_keyword="SATURATE", **keywords).for_header(header)
    assert fallback.gain_e_per_adu == spec.gain_e_per_adu  # not a number
    assert fallback.read_noise_e == spec.read_noise_e  # not positive
    assert fallback.saturation_adu == 50000
    plain = _generic_spec()
    assert plain.for_header(header) is plain


@pytest.mark.parametrize(
    ("dtype", "keys"),
    [
        (np.uint16, {}),  # written as int16 with BZERO = 32768
        (np.int16, {}),
        (np.uint8, {}),
        (np.int16, {"BSCALE": 2.0, "BZERO": 10.5}),  # astropy's scaling
        (np.int16, {"BLANK": -32768}),  # astropy's scaling
        (np.int32, {}),
        (np.float32, {}),
    ],
)
def test_pixels_equal_astropys_scaling_whatever_the_storage(tmp_path, dtype, keys):
    rng = np.random.default_rng(4)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        data = rng.integers(info.min, info.max, size=(37, 41), endpoint=True).astype(dtype)
    else:
        data = rng.normal(1000.0, 30.0, size=(37, 41)).astype(dtype)
    hdu = fits.PrimaryHDU(data=data)
    if keys:
        hdu.header.update(keys)
        if "BSCALE" in keys:
            hdu.data = data  # stored as they are: the keys say how to scale them
            hdu.header["BSCALE"], hdu.header["BZERO"] = keys["BSCALE"], keys["BZERO"]
    path = tmp_path / "frame.fits"
    hdu.writeto(path)
    with fits.open(path) as hdul:
        expected = np.asarray(hdul[0].data, dtype=np.float32)
    frame = read_raw(path, _generic_spec())
    assert frame.data.dtype == np.float32
    np.testing.assert_array_equal(frame.data, expected)
