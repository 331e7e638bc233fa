"""The instrument registry: built from a Config, immutable, picklable, no process-wide state."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from iopreport.config import config_from_source
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.tomlsource import TomlSource

CAMERA = """
[instruments.TESTCAM]
telescope = "TEST"
instrume = "TESTCAM"
telescop = "TEST-1M"
pixscale_arcsec = 0.5
gain_e_per_adu = 1.3
read_noise_e = 4.0
saturation_adu = 60000
type_keyword = "IMAGETYP"
types = { BIAS = "bias", FLAT = "flat", LIGHT = "light" }
filter_keyword = "FILTER"
bands = { R = "R" }
date_keyword = "DATE-OBS"
ra_keyword = "RA"
dec_keyword = "DEC"

[archives.TEST]
protocol = "local"
root = "archive"
"""


def _config(text: str, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config_from_source(TomlSource.read(path))


def test_builtin_registry_knows_the_instruments_and_aliases():
    registry = InstrumentRegistry.builtin()
    assert registry.names() == ("AndorT90", "RoperT90", "AndorT150", "CAFOS", "DIPOL")
    assert registry.get("CAFOS2.2") is registry.get("CAFOS")
    assert "CAFOS2.2" in registry and "TESTCAM" not in registry
    assert registry.quad_instruments() == ("DIPOL",)
    with pytest.raises(KeyError, match="unknown instrument 'NOPE'; known: AndorT90"):
        registry.get("NOPE")


def test_config_registry_adds_configured_instruments_without_touching_others(tmp_path):
    config = _config(CAMERA, tmp_path)
    registry = config.registry
    assert registry is config.registry  # built once per Config
    spec = registry.get("TESTCAM")
    assert (spec.telescope, spec.gain_e_per_adu, spec.read_noise_e) == ("TEST", 1.3, 4.0)
    assert registry.generic["TESTCAM"].instrume == "TESTCAM"
    assert "TESTCAM" not in InstrumentRegistry.builtin()  # no process-wide state
    plain = _config("", tmp_path)
    assert "TESTCAM" not in plain.registry


def test_registry_travels_to_worker_processes(tmp_path):
    registry = _config(CAMERA, tmp_path).registry
    copy = pickle.loads(pickle.dumps(registry))
    assert copy.names() == registry.names()
    assert copy.get("TESTCAM") == registry.get("TESTCAM")
    assert copy.generic["TESTCAM"] == registry.generic["TESTCAM"]


def test_a_configured_instrument_may_not_reuse_a_builtin_name(tmp_path):
    from iopreport.errors import InputError

    with pytest.raises(
        InputError, match=r"config.toml:2: instruments.CAFOS: .*'CAFOS' is built in"
    ):
        _config(CAMERA.replace("TESTCAM]", "CAFOS]"), tmp_path)
    config = _config(CAMERA, tmp_path)
    renamed = dataclasses.replace(config.instruments["TESTCAM"], name="CAFOS")
    with pytest.raises(ValueError, match="'CAFOS' is built in"):
        InstrumentRegistry.builtin().with_generic([renamed])


def test_detector_keywords_of_a_configured_instrument_reach_its_spec(tmp_path):
    text = CAMERA.replace(
        "read_noise_e = 4.0\n",
        'read_noise_e = 4.0\ngain_keyword = "GAIN"\nread_noise_keyword = "RDNOISE"\n'
        'saturation_keyword = "SATURATE"\nbinning_keyword = "CCDXBIN"\n'
        'binning_y_keyword = "CCDYBIN"\n',
    )
    config = _config(text, tmp_path)
    spec = config.registry.get("TESTCAM")
    assert (spec.gain_keyword, spec.read_noise_keyword, spec.saturation_keyword) == (
        "GAIN",
        "RDNOISE",
        "SATURATE",
    )
    assert config.instruments["TESTCAM"].binning_y_keyword == "CCDYBIN"
    from astropy.io import fits

    frame = spec.for_header(fits.Header({"GAIN": 2.5, "RDNOISE": 6.0, "SATURATE": 40000}))
    assert (frame.gain_e_per_adu, frame.read_noise_e, frame.saturation_adu) == (2.5, 6.0, 40000)


def test_instrumental_polarization_entries_may_name_a_configured_polarimeter(tmp_path):
    import datetime as dt

    from iopreport.errors import InputError
    from iopreport.instruments.polarization import (
        NO_ENTRY,
        InstrumentalPolarization,
        configured_instrumental,
    )

    entry = (
        '\n[[polarimetry.instrumental]]\ninstrument = "TESTCAM"\nvalid_from = "2024-01-01"\n'
        "q_inst = 0.01\nu_inst = -0.02\nzero_angle_deg = 12.5\nq_inst_err = 0.001\n"
    )
    config = _config(CAMERA + entry, tmp_path)
    (parsed,) = config.polarimetry.instrumental
    assert isinstance(parsed, InstrumentalPolarization)
    assert (parsed.instrument, parsed.valid_from, parsed.source) == (
        "TESTCAM",
        dt.datetime(2024, 1, 1),
        "config.toml",
    )
    when = dt.datetime(2024, 6, 1)
    found = configured_instrumental(config.polarimetry.instrumental, "TESTCAM", when, "R")
    assert found is parsed and (found.q_inst, found.u_inst, found.zero_angle_deg) == (
        0.01,
        -0.02,
        12.5,
    )
    before = configured_instrumental(
        config.polarimetry.instrumental, "TESTCAM", dt.datetime(2023, 1, 1)
    )
    assert (before.q_inst, before.u_inst, before.zero_angle_deg, before.source) == (
        0,
        0,
        0,
        NO_ENTRY,
    )
    assert "[[polarimetry.instrumental]]" in parsed.toml_lines()
    with pytest.raises(InputError, match="instrument: unknown instrument; known: AndorT90"):
        _config(entry, tmp_path)  # a config without the TESTCAM table
