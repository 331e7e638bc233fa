"""Every family's dialect writes headers that its own reading gives back field for field,
and two configurations in one process never see each other's instruments."""

from __future__ import annotations

import datetime as dt

import pytest
from astropy.time import Time

from iopreport.config import config_from_source
from iopreport.instruments.dialect import FrameKeywords
from iopreport.instruments.keywords import DIPOL_TELRA_FROM
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.reduce.classify import ClassificationError, classify_header
from iopreport.tomlsource import TomlSource

#: A polarimeter described in config.toml, angles in a NOTES-like keyword (DIPOL's convention).
POLARIMETER = """
[instruments.TESTPOL]
telescope = "TEST"
instrume = "TPOL*"
telescop = "TEST-1M"
pixscale_arcsec = 0.4
gain_e_per_adu = 1.1
type_keyword = "FRAMETYP"
filter_keyword = "FILTNAME"
bands = { Red = "R", Green = "V" }
date_keyword = "MJD-OBS"
date_format = "mjd"
binning_keyword = "BINX"
binning_y_keyword = "BINY"
ra_keyword = "RA_DEG"
dec_keyword = "DEC_DEG"
polarimetry = "hwp"
angle_keyword = "NOTES"
angle_convention = "notes"
pol_angles = [0.0, 22.5, 45.0, 67.5]
oe_offset_px = [-100.0, 5.0]

[instruments.TESTPOL.types]
"Bias Frame" = "bias"
"Dark Frame" = "dark"
"Flat Field" = "flat"
"Light Frame" = "light"
"""
#: A camera whose angle keyword holds a number.
NUMBER_POLARIMETER = """
[instruments.NUMPOL]
telescope = "TEST"
instrume = "NUMPOL"
pixscale_arcsec = 0.4
gain_e_per_adu = 1.1
types = { BIAS = "bias", FLAT = "flat", LIGHT = "light" }
date_format = "jd"
polarimetry = "hwp"
angle_keyword = "HWPANGLE"
pol_angles = [0.0, 22.5, 45.0, 67.5]
"""

START = dt.datetime(2024, 3, 10, 21, 15, 30, 250000)


def _registry(text: str, tmp_path) -> InstrumentRegistry:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config_from_source(TomlSource.read(path)).registry


def _frames(name: str, night: dt.date, angles, *, photometric_lights: bool = True):
    start = dt.datetime.combine(night, START.time())
    common = {"instrument": name, "night": night, "start": start, "binning": 2}
    yield FrameKeywords(imgtype="bias", exptime=0.0, object_name="bias", **common)
    yield FrameKeywords(imgtype="dark", exptime=30.0, object_name="dark", **common)
    yield FrameKeywords(
        imgtype="flat", exptime=3.5, band="R", obsmode="photometry", object_name="x", **common
    )
    if photometric_lights:
        for spelling in (0, 1):
            yield FrameKeywords(
                imgtype="light",
                exptime=60.0,
                band="R",
                obsmode="photometry",
                object_name="BLLac",
                pointing=(330.680381, 42.277772),
                spelling=spelling,
                **common,
            )
    for spelling, angle in enumerate(angles):
        yield FrameKeywords(
            imgtype="light",
            exptime=45.0,
            band="R",
            obsmode="polarimetry",
            angle=angle,
            object_name="BLLac",
            pointing=(330.680381, 42.277772),
            spelling=spelling,
            **common,
        )


def _round_trip(registry: InstrumentRegistry, frame: FrameKeywords, telescope: str):
    spec = registry.get(frame.instrument)
    dialect = registry.dialect_of(frame.instrument)
    if frame.imgtype == "flat":
        frame = FrameKeywords(**{**frame.__dict__, "object_name": dialect.flat_object_name})
    header = dialect.header_for(frame, spec.telescop_keyword)
    header["NAXIS"] = 2
    header["NAXIS1"] = 100
    header["NAXIS2"] = 80
    name = dialect.file_name(frame, 7)
    info = classify_header(header, name, telescope, frame.night, registry)
    assert info.instrument == frame.instrument
    assert info.imgtype == frame.imgtype
    assert info.binning == (frame.binning, frame.binning)
    assert info.exptime == pytest.approx(frame.exptime)
    start_jd = Time(frame.start, scale="utc").jd
    # CAFOS writes DATE to the second; the others keep the fraction
    assert info.juliandate - frame.exptime / 2 / 86400 == pytest.approx(start_jd, abs=1 / 86400)
    if frame.imgtype in ("bias", "dark"):
        assert (info.band, info.obsmode, info.angle) == (None, None, None)
        return info
    assert info.band == frame.band
    if frame.imgtype == "flat" and info.obsmode is not None:
        assert info.obsmode == "photometry"
    if frame.imgtype == "light":
        assert info.obsmode == frame.obsmode
        assert info.angle == frame.angle
    if frame.pointing is not None and info.pointing is not None:
        assert info.pointing == pytest.approx(frame.pointing, abs=1e-3)
    return info


@pytest.mark.parametrize(
    ("name", "telescope", "night"),
    [
        ("RoperT90", "OSN-T090", dt.date(2021, 3, 10)),
        ("AndorT90", "OSN-T090", dt.date(2024, 3, 10)),
        ("AndorT150", "OSN-T150", dt.date(2022, 5, 1)),  # INSTRUME = 'Andor' then
        ("AndorT150", "OSN-T150", dt.date(2024, 3, 10)),
        ("CAFOS", "CAHA-T220", dt.date(2024, 3, 10)),
        ("DIPOL", "OSN-T090", dt.date(2023, 1, 5)),  # empty TELESCOP, no TELRA
        ("DIPOL", "OSN-T090", dt.date(2025, 3, 10)),
    ],
)
def test_builtin_dialects_read_back_what_they_write(name, telescope, night):
    registry = InstrumentRegistry.builtin()
    spec = registry.get(name)
    angles = (-45.0, 0.0, 45.0, 90.0, -45.0) if spec.polarimetry == "wheel" else spec.pol_angles
    infos = [_round_trip(registry, frame, telescope) for frame in _frames(name, night, angles)]
    assert {info.imgtype for info in infos} == {"bias", "dark", "flat", "light"}
    assert [info.angle for info in infos if info.obsmode == "polarimetry"] == list(angles)
    lights = [info for info in infos if info.imgtype == "light"]
    if name != "DIPOL" or night >= DIPOL_TELRA_FROM:
        assert all(info.pointing for info in lights)
    else:
        assert not any(info.pointing for info in lights)


def test_generic_dialect_reads_back_what_it_writes(tmp_path):
    registry = _registry(POLARIMETER, tmp_path)
    night = dt.date(2024, 3, 10)
    infos = [
        _round_trip(registry, frame, "TEST")
        for frame in _frames("TESTPOL", night, registry.get("TESTPOL").pol_angles)
    ]
    assert [i.obsmode for i in infos if i.imgtype == "light"] == ["photometry"] * 2 + [
        "polarimetry"
    ] * 4
    number = _registry(NUMBER_POLARIMETER, tmp_path)
    frames = _frames("NUMPOL", night, (0.0, 22.5, 45.0, 67.5), photometric_lights=False)
    infos = [_round_trip(number, frame, "TEST") for frame in frames if frame.imgtype != "dark"]
    assert [i.angle for i in infos if i.imgtype == "light"] == [0.0, 22.5, 45.0, 67.5]


def test_two_configurations_in_one_process_do_not_see_each_others_instruments(tmp_path):
    from iopreport.config import load_config

    for folder, text in (("a", POLARIMETER), ("b", NUMBER_POLARIMETER)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "config.toml").write_text(text)
    # loaded as the commands load them (load_config), one after the other
    with_pol = load_config(tmp_path / "a" / "config.toml").registry
    with_number = load_config(tmp_path / "b" / "config.toml").registry
    frame = next(f for f in _frames("TESTPOL", dt.date(2024, 3, 10), (0.0,)) if f.angle == 0.0)
    header = with_pol.dialect_of("TESTPOL").header_for(frame, "TEST-1M")
    header.update({"NAXIS": 2, "NAXIS1": 100, "NAXIS2": 80})
    assert classify_header(header, "a.fits", "TEST", frame.night, with_pol).instrument == "TESTPOL"
    with pytest.raises(ClassificationError, match="unknown INSTRUME 'TPOL'"):
        classify_header(header, "a.fits", "TEST", frame.night, with_number)
    with pytest.raises(ClassificationError, match="unknown INSTRUME 'TPOL'"):
        classify_header(header, "a.fits", "TEST", frame.night, InstrumentRegistry.builtin())
    assert "TESTPOL" not in with_number and "NUMPOL" not in with_pol


#: Real-world card damage: an unclosed string and an unparsable number.
UNCLOSED = "OBSERVER= 'Vilppu "
UNPARSABLE = "FOCALLEN=             12.3.4 / focal length"


def _with_cards(header, *images):
    """``header`` as a file would hold it, with ``images`` (raw 80-column cards) added."""
    from astropy.io import fits

    text = "".join(card.image for card in header.cards)
    text += "".join(image.ljust(80) for image in images)
    return fits.Header.fromstring(text)


@pytest.mark.parametrize(
    ("name", "telescope", "night"),
    [
        ("AndorT90", "OSN-T090", dt.date(2024, 3, 10)),
        ("CAFOS", "CAHA-T220", dt.date(2024, 3, 10)),
        ("DIPOL", "OSN-T090", dt.date(2025, 3, 10)),
        ("TESTPOL", "TEST", dt.date(2024, 3, 10)),
    ],
)
def test_a_malformed_card_is_reported_once_and_the_rest_of_the_header_used(
    name, telescope, night, tmp_path, caplog
):
    registry = _registry(POLARIMETER, tmp_path)
    angle = registry.get(name).pol_angles[1]
    frame = next(f for f in _frames(name, night, (angle,)) if f.obsmode == "polarimetry")
    dialect = registry.dialect_of(name)
    header = dialect.header_for(frame, registry.get(name).telescop_keyword)
    header.update({"NAXIS": 2, "NAXIS1": 100, "NAXIS2": 80})
    damaged = _with_cards(header, UNCLOSED, UNPARSABLE)
    filename = f"{name}-damaged.fits"
    with caplog.at_level("WARNING"):
        for _ in range(2):
            info = classify_header(damaged, filename, telescope, night, registry)
            assert (info.instrument, info.obsmode, info.angle) == (name, "polarimetry", angle)
    reports = [r.getMessage() for r in caplog.records if "malformed header card" in r.message]
    assert len(reports) == 2  # each card once, though the header was read twice
    assert all(r.startswith(f"{filename}: ") for r in reports)
    assert any("FOCALLEN=             12.3.4" in r for r in reports)
    assert any("OBSERVER= 'Vilppu" in r for r in reports)


def test_a_needed_card_that_is_malformed_is_named_in_the_reason():
    registry = InstrumentRegistry.builtin()
    frame = next(_frames("AndorT90", dt.date(2024, 3, 10), (0.0,)))  # the bias
    header = registry.dialect_of("AndorT90").header_for(frame, "T90-OSN")
    header.update({"NAXIS": 2, "NAXIS1": 100, "NAXIS2": 80})
    del header["JD"]
    damaged = _with_cards(header, "JD      = 2460380.38.5 / Julian Date")
    with pytest.raises(ClassificationError, match=r"JD keyword missing \(its card is malformed: "):
        classify_header(damaged, "bias.fits", "OSN-T090", frame.night, registry)


def test_the_dipol_uf_instrume_card_with_a_quote_in_its_comment_is_read(shared_dir, tmp_path):
    """The real MaxIm DL card ``INSTRUME= 'Apogee US' /Net'`` is readable: nothing is dropped."""
    from astropy.io import fits

    from iopreport.instruments.dialect import readable_header

    path = shared_dir / "data/real/dipol/DIPOL-UF_ImageTest_test.fits_HD22484_MaxImDL.fits"
    header = fits.getheader(path)
    kept, malformed = readable_header(header, path.name)
    assert malformed == {} and kept is header
    assert header["INSTRUME"] == "Apogee US" and header.comments["INSTRUME"] == "Net'"
