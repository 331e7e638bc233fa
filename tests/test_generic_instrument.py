"""An instrument defined entirely in config.toml, on real ESO NTT/EFOSC2 frames."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest
from astropy.io import fits

from iopreport.catalog import load_catalog, sync_catalog
from iopreport.config import load_config
from iopreport.errors import InputError
from iopreport.reduce.classify import classify_file
from iopreport.reduce.night import reduce_night
from iopreport.skeleton import init_project
from iopreport.store import (
    MasterBias,
    MasterFlat,
    ReducedFit,
    ReducedFitFlags,
    close_store,
    open_store,
)

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

EFOSC2 = """
[instruments.EFOSC2]
telescope = "NTT"
instrume = "EFOSC"
telescop = "ESO-NTT"
pixscale_arcsec = 0.12
gain_e_per_adu = 0.91
read_noise_e = 7.8
saturation_adu = 65535
type_keyword = "HIERARCH ESO DPR TYPE"
types = { DARK = "dark", "SKY,FLAT" = "flat", OBJECT = "light" }
filter_keyword = "HIERARCH ESO INS FILT1 NAME"
bands = { "g#782" = "g" }
date_keyword = "DATE-OBS"
binning_keyword = "HIERARCH ESO DET WIN1 BINX"
ra_keyword = "RA"
dec_keyword = "DEC"
# the serial prescan read out after the data (columns 1024-1029) and the parallel
# overscan rows (1025-1030); column 1030 carries data wrapped by the readout
overscan = "[1024:1029,1:1030]"
trim = "[1:1023,1:1024]"

[archives.NTT]
protocol = "local"
root = "archive"
"""

BIAS_NIGHT = dt.date(2022, 1, 26)
SCIENCE_NIGHT = dt.date(2022, 1, 27)  # evening date of the 2022-01-28 UT morning


@pytest.fixture
def project(tmp_path, shared_dir):
    directory = tmp_path / "site"
    init_project(directory)
    config_path = directory / "config.toml"
    # index files that cover none of these fields (a run without any stops up front)
    from iopreport.simulate.sky import SKY_INDEX_DIR

    text = config_path.read_text().replace(
        'astrometry_index_dir = "data/astrometry-index"',
        f'astrometry_index_dir = "{SKY_INDEX_DIR}"',
    )
    config_path.write_text(text + EFOSC2)
    config = load_config(config_path)
    assert config.paths.astrometry_index_dir == SKY_INDEX_DIR
    raw = config.paths.data_subdir("raw") / "NTT"
    for path in sorted((shared_dir / "data/real/efosc2_ntt").glob("*.fits.gz")):
        night = BIAS_NIGHT if "2022-01-26" in path.name else SCIENCE_NIGHT
        (raw / night.isoformat()).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, raw / night.isoformat() / path.name)
    open_store(config.database_path)
    catalog = load_catalog(config.paths.catalog)
    sync_catalog(catalog)
    yield config, catalog, raw
    close_store()


def test_classification_from_configured_keywords(project):
    config, _, raw = project
    kinds = {}
    for path in sorted(raw.rglob("*.fits.gz")):
        night = dt.date.fromisoformat(path.parent.name)
        info = classify_file(path, "NTT", night, config.registry)
        assert info.instrument == "EFOSC2"
        kinds[info.imgtype] = kinds.get(info.imgtype, 0) + 1
        if info.imgtype != "bias":
            assert info.band == "g" and info.obsmode == "photometry"
        assert info.binning == (2, 2)
    # DPR TYPE 'DARK' with EXPTIME 0 are biases
    assert kinds == {"bias": 5, "flat": 3, "light": 6}


def test_masters_across_nights_and_calibrated_science(project):
    config, catalog, _ = project
    first = reduce_night(config, catalog, "NTT", BIAS_NIGHT, workers=1)
    assert first.masters_built == 1 and first.unclassified == {}
    bias = MasterBias.get()
    assert bias.n_frames == 5
    # overscan subtracted and trimmed: the master is the 1023x1024 data section at ~0 ADU
    bias_data = fits.getdata(config.paths.datadir / bias.filename)
    assert bias_data.shape == (1024, 1023)
    # raw bias ~220 ADU; the prescan sits ~3 ADU below the data pixels (the master keeps that)
    assert abs(float(np.median(bias_data))) < 10.0
    second = reduce_night(config, catalog, "NTT", SCIENCE_NIGHT, workers=1)
    flat = MasterFlat.get()
    assert flat.band == "g" and flat.n_frames == 3
    assert (
        fits.getheader(config.paths.datadir / flat.filename)["IOPBIAS"]
        == bias.filename.split("/")[-1]
    )
    # no index file covers these fields: each frame is placed by its header's WCS, whose
    # scale is checked against the instrument's (no catalog source to check positions)
    assert second.frames_failed == {}
    assert ReducedFit.select().count() == 6
    for reduced in ReducedFit.select():
        assert reduced.flags & ReducedFitFlags.CALIBRATED
        assert reduced.flags & ReducedFitFlags.HEADER_WCS
        assert reduced.astrometry_method == "header", reduced.astrometry_detail
        image = fits.getdata(config.paths.datadir / reduced.filename)
        assert image.shape == (1024, 1023)
        header = fits.getheader(config.paths.datadir / reduced.filename)
        assert header["INSTRUME"] == "EFOSC" and header["IOPFLAT"].startswith("masterflat_")
        # flat-fielded sky: the four quadrants agree within 2%
        ny, nx = image.shape
        core = image[20 : ny - 20, 20 : nx - 20]
        quadrants = [
            np.nanmedian(q)
            for half in np.array_split(core, 2)
            for q in np.array_split(half, 2, axis=1)
        ]
        assert max(quadrants) / min(quadrants) < 1.02


def test_configured_instrument_errors_name_the_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(EFOSC2.replace('OBJECT = "light"', 'OBJECT = "science"'))
    with pytest.raises(InputError, match=r"instruments\.EFOSC2\.types: 'OBJECT' maps to 'science'"):
        load_config(path)
    path.write_text(EFOSC2.replace("gain_e_per_adu = 0.91\n", ""))
    with pytest.raises(
        InputError, match=r"instruments\.EFOSC2\.gain_e_per_adu: required key is missing"
    ):
        load_config(path)
