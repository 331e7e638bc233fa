"""`iopreport export`: four table formats round-trip with units, filters, WEBT files."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
import warnings

import numpy as np
import pytest
from astropy.table import Table

from iopreport.airmass import airmass, young_airmass
from iopreport.cli import main
from iopreport.store.columns import COLUMN_NAMES, RESULT_COLUMNS

JD0 = 2460591.40  # 2024-10-08 21:36 UTC


def _populate(config) -> None:
    """Two sources, two telescopes, photometry in R and V, one polarimetric result, flags."""
    from iopreport.store import (
        AstroSource,
        Epoch,
        PhotoPolMember,
        PhotoPolResult,
        RawFit,
        ReducedFit,
        close_store,
        open_store,
    )

    open_store(config.database_path)
    blazar = AstroSource.create(
        name="2200+420", other_names=["BL Lac"], srctype="blazar", ra_deg=330.68, dec_deg=42.28
    )
    other = AstroSource.create(name="0735+178", srctype="blazar", ra_deg=114.53, dec_deg=17.71)
    n = 0
    for telescope, instrument, night in (
        ("OSN-T090", "AndorT90", dt.date(2024, 10, 8)),
        ("CAHA-T220", "CAFOS", dt.date(2024, 10, 9)),
    ):
        epoch = Epoch.create(telescope=telescope, night=night)
        for k, (source, band) in enumerate(((blazar, "R"), (blazar, "V"), (other, "R"))):
            n += 1
            jd = JD0 + (night - dt.date(2024, 10, 8)).days + 0.01 * k
            raw = RawFit.create(
                epoch=epoch, filename=f"f{n}.fit", imgtype="light", juliandate=jd, band=band
            )
            ReducedFit.create(rawfit=raw, filename=f"r{n}.fits", seeing_fwhm_arcsec=1.5 + 0.1 * k)
            result = PhotoPolResult.create(
                astrosource=source,
                epoch=epoch,
                members_key=f"{telescope}/{night}/f{n}.fit",
                mode="photometry",
                method="relphot",
                instrument=instrument,
                band=band,
                exptime=60.0,
                juliandate=jd,
                juliandate_min=jd,
                juliandate_max=jd,
                mag=14.0 + 0.1 * n,
                mag_err=0.01 + 0.001 * n,
                mag_sys_err=0.02,
                mag_zp=22.1,
                mag_zp_err=0.005,
                n_calibrators=3,
                flags=4 if n == 5 else 0,  # one automatically flagged result
                flag_reasons=["few calibrators"] if n == 5 else [],
            )
            PhotoPolMember.create(result=result, rawfit=raw)
    epoch = Epoch.get(Epoch.telescope == "OSN-T090")
    PhotoPolResult.create(
        astrosource=blazar,
        epoch=epoch,
        members_key="OSN-T090/2024-10-08/p1.fit\nOSN-T090/2024-10-08/p2.fit",
        mode="polarimetry",
        method="osn-wheel",
        instrument="AndorT90",
        band="R",
        exptime=90.0,
        juliandate=JD0 + 0.05,
        juliandate_min=JD0 + 0.04,
        juliandate_max=JD0 + 0.06,
        n_frames=4,
        p=0.125,
        p_err=0.004,
        p_debiased=0.1249,
        q=0.1,
        q_err=0.004,
        u=0.075,
        u_err=0.004,
        chi=18.43,
        chi_err=0.9,
    )
    close_store()


@pytest.fixture
def exported(project, monkeypatch):
    """A project whose store holds results; returns (config path, out folder)."""
    from iopreport.config import load_config

    monkeypatch.chdir(project)
    config = load_config(project / "config.toml")
    _populate(config)
    return project / "config.toml", project / "out"


def _same_unit(got, want, suffix: str) -> bool:
    """Equal units; a VOTable names % 'percent' (not a VOUnit), FITS drops a dimensionless one."""
    import astropy.units as u

    if got == want:
        return True
    if suffix == ".xml" and want == u.percent:
        return got.to_string() in u.percent.names
    return suffix == ".fits" and got is None and want == u.dimensionless_unscaled


def _run(config_path, *args) -> int:
    return main(["--config", str(config_path), "export", *args])


@pytest.mark.parametrize("suffix", [".ecsv", ".xml", ".fits", ".csv"])
def test_round_trip_keeps_values_and_units(exported, suffix):
    config_path, out = exported
    path = out / f"results{suffix}"
    assert _run(config_path, "--out", str(path), "--include-flagged") == 0
    fmt = {".ecsv": "ascii.ecsv", ".xml": "votable", ".fits": "fits", ".csv": "ascii.csv"}[suffix]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITS: '%' is not a FITS unit (astropy still parses it)
        table = Table.read(path, format=fmt, **({"comment": "#"} if suffix == ".csv" else {}))
    from iopreport.config import load_config
    from iopreport.store import close_store, open_store, results_table
    from iopreport.store.models import PhotoPolResult

    open_store(load_config(config_path).database_path)
    expected = results_table(PhotoPolResult.select())
    close_store()
    assert len(expected) == 7 and table.colnames == list(COLUMN_NAMES)
    for column in RESULT_COLUMNS:
        got, want = table[column.name], expected[column.name]
        if column.dtype == "f8":
            assert np.allclose(np.asarray(got, float), np.asarray(want), equal_nan=True, rtol=0)
            if suffix != ".csv":  # CSV has no place for units: they are in its comment lines
                assert _same_unit(got.unit, want.unit, suffix), column.name
        elif column.dtype == "bool":
            assert [str(v).lower() for v in got] == [str(v).lower() for v in want]
        else:
            assert [("" if v is np.ma.masked else str(v)) for v in got] == [str(v) for v in want]
    assert str(expected["p_pct"].unit) == "%" and str(expected["mjd"].unit) == "d"
    assert np.nanmax(expected["p_pct"]) == pytest.approx(12.5)
    assert all(c.unit is not None for c in expected.columns.values() if c.dtype.kind == "f")
    if suffix == ".csv":
        comments = table.meta["comments"]
        assert "column p_pct [%]: Degree of linear polarization" in comments
        assert any(line.startswith("CITATION = ") for line in comments)
    elif suffix == ".ecsv":
        assert table["p_pct"].description == "Degree of linear polarization"
        catalog = load_config(config_path).paths.catalog
        assert table.meta["CATSHA"] == hashlib.sha256(catalog.read_bytes()).hexdigest()
        assert table.meta["SWVERS"] and "Escudero Pedrosa" in table.meta["CITATION"]
        assert dt.datetime.fromisoformat(table.meta["DATE"]).year >= 2024


def test_votable_passes_astropy_validator(exported):
    from astropy.io.votable import parse, validate

    config_path, out = exported
    path = out / "results.xml"
    assert _run(config_path, "--out", str(path)) == 0
    report = io.StringIO()
    assert validate(str(path), output=report) is True, report.getvalue()  # True: no warnings
    assert "found no violations" in report.getvalue()
    votable = parse(str(path))
    infos = {info.name: info.value for info in votable.resources[0].infos}
    assert infos["ORIGIN"] == "iopreport" and "FLAGSHA" in infos
    fields = {f.name: f for f in votable.get_first_table().fields}
    assert fields["chi_deg"].description.startswith("Polarization angle")


def test_filters_select_results(exported):
    config_path, out = exported
    path = out / "r.ecsv"
    assert _run(config_path, "--out", str(path)) == 0
    assert len(Table.read(path)) == 6  # the flagged result is left out
    assert _run(config_path, "--out", str(path), "--source", "BL Lac", "--band", "R") == 0
    table = Table.read(path)
    assert set(table["source"]) == {"2200+420"} and set(table["band"]) == {"R"}
    assert len(table) == 3  # R photometry at both telescopes, polarimetry at OSN
    args = ("--telescope", "T090", "--mode", "photometry", "--instrument", "AndorT90")
    assert _run(config_path, "--out", str(path), *args) == 0
    assert set(Table.read(path)["telescope"]) == {"OSN-T090"} and len(Table.read(path)) == 3
    assert _run(config_path, "--out", str(path), "--from", "2024-10-09", "--to", "2024-10-09") == 0
    assert set(Table.read(path)["night"]) == {"2024-10-09"}
    assert (
        _run(config_path, "--out", str(path), "--night", "2024-10-08", "--mode", "polarimetry") == 0
    )
    assert len(Table.read(path)) == 1
    assert _run(config_path, "--out", str(path), "--source", "3C 999") == 2


def test_webt_files_hold_jd_mag_err_per_band_and_telescope(exported):
    config_path, out = exported
    folder = out / "webt"
    assert _run(config_path, "--out", str(folder), "--format", "webt") == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "0735+178_CAHA-T220_R.txt",
        "0735+178_OSN-T090_R.txt",
        "2200+420_CAHA-T220_R.txt",
        "2200+420_OSN-T090_R.txt",
        "2200+420_OSN-T090_V.txt",
    ]  # the flagged CAHA V result and the polarimetric result are not there
    lines = (folder / "2200+420_OSN-T090_R.txt").read_text().splitlines()
    data = [line.split() for line in lines if not line.startswith("#")]
    assert data == [[f"{JD0:.5f}", "14.100", "0.011"]]
    assert "# band: R (Johnson-Cousins, Vega)" in lines


def test_airmass_matches_astropy_altaz():
    """Young (1994) airmass from the sidereal time agrees with astropy's AltAz (no IERS)."""
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord
    from astropy.time import Time
    from astropy.utils import iers

    from iopreport.telescopes import TELESCOPE_SITES

    lat, lon, height = TELESCOPE_SITES["OSN-T090"]
    jds = JD0 + np.linspace(0, 0.3, 7)
    with iers.conf.set_temp("auto_download", False), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = AltAz(
            obstime=Time(jds, format="jd", scale="utc"),
            location=EarthLocation(lat=lat * u.deg, lon=lon * u.deg, height=height * u.m),
        )
        altitude = SkyCoord(330.68 * u.deg, 42.28 * u.deg).transform_to(frame).alt.deg
    assert np.allclose(airmass(jds, 330.68, 42.28, "OSN-T090"), young_airmass(altitude), atol=2e-3)
    assert math.isnan(airmass([JD0], 0, 0, "unknown telescope")[0])
    assert young_airmass(np.array([90.0]))[0] == pytest.approx(1.0, abs=1e-3)
