"""The store: round trip of every table, identity keys, cascades, WAL, library helpers."""

from __future__ import annotations

import datetime as dt
import math

import peewee as pw
import pytest

from iopreport.store import (
    ALL_MODELS,
    SCHEMA_VERSION,
    AperPhotResult,
    AstroSource,
    Calibrator,
    Epoch,
    Heartbeat,
    MasterBias,
    MasterBiasInput,
    PhotoPolMember,
    PhotoPolResult,
    RawFit,
    RawFitFlags,
    ReducedFit,
    ReducedFitFlags,
    ResultFlags,
    RunLog,
    SentSummary,
    SourceInField,
    StandardPolarization,
    epoch_counts,
    last_epoch,
    open_store,
    results_table,
    schema_version,
    source_by_name,
    source_results,
)
from iopreport.store.dialect import is_postgres


def make_night(night=dt.date(2022, 9, 8)):
    """One night with a bias, a flat and two polarimetric frames, reduced, with one result."""
    target = AstroSource.create(
        name="2200+420",
        other_names=["BL Lacertae", "BL Lac"],
        srctype="blazar",
        ra_deg=330.68,
        dec_deg=42.28,
        redshift=0.0686,
    )
    star = AstroSource.create(
        name="2200+420 B",
        srctype="calibrator",
        ra_deg=330.69,
        dec_deg=42.276,
        mag_R=11.99,
        mag_R_err=0.04,
    )
    Calibrator.create(target=target, calibrator=star)
    epoch = Epoch.create(telescope="OSN-T090", night=night)
    bias = RawFit.create(
        epoch=epoch,
        filename="Bias-0001.fit",
        imgtype="bias",
        instrument="AndorT90",
        flags=RawFitFlags.DOWNLOADED | RawFitFlags.CLASSIFIED,
    )
    RawFit.create(epoch=epoch, filename="Flat-0001.fit", imgtype="flat", instrument="AndorT90")
    lights = [
        RawFit.create(
            epoch=epoch,
            filename=f"BLLac-0001R{angle}.fit",
            imgtype="light",
            instrument="AndorT90",
            obsmode="polarimetry",
            band="R",
            angle=float(angle),
            juliandate=2459831.4 + i * 0.001,
            exptime=60.0,
            target=target,
        )
        for i, angle in enumerate((0, 45, 90))
    ]
    master = MasterBias.create(
        epoch=epoch,
        filename="masterbias/OSN-T090/2022-09-08/mb1.fits",
        instrument="AndorT90",
        imgsize="2048x2048",
        binning="2x2",
        n_frames=1,
    )
    MasterBiasInput.create(master=master, rawfit=bias)
    reduced = [
        ReducedFit.create(
            rawfit=light,
            filename=f"calibration/{light.filename}",
            masterbias=master,
            flags=ReducedFitFlags.CALIBRATED | ReducedFitFlags.ASTROMETRY_OK,
        )
        for light in lights
    ]
    ReducedFit.update(
        error="astrometry: no solution in 120 s",
        flags=ReducedFitFlags.CALIBRATED | ReducedFitFlags.ERROR_ASTROMETRY,
    ).where(ReducedFit.id == reduced[2].id).execute()
    SourceInField.create(reducedfit=reduced[0], astrosource=target, x_px=512.0, y_px=500.5)
    AperPhotResult.create(
        reducedfit=reduced[0],
        astrosource=target,
        pair="O",
        aperture_px=6.0,
        annulus_in_px=12.0,
        annulus_out_px=18.0,
        x_px=512.0,
        y_px=500.5,
        flux_counts=1.0e5,
        flux_counts_err=320.0,
    )
    result = PhotoPolResult.create(
        astrosource=target,
        epoch=epoch,
        mode="polarimetry",
        method="osn-wheel",
        members_key=PhotoPolResult.make_members_key(light.fileloc for light in lights),
        instrument="AndorT90",
        band="R",
        exptime=60.0,
        juliandate=2459831.401,
        juliandate_min=2459831.4,
        juliandate_max=2459831.402,
        n_frames=3,
        mag=13.35,
        mag_err=0.03,
        q_raw=0.05,
        u_raw=0.08,
        q=0.06,
        q_err=0.004,
        u=0.11,
        u_err=0.004,
        p=0.125,
        p_err=0.004,
        p_debiased=0.1249,
        chi=30.6,
        chi_err=0.9,
        flags=ResultFlags.BAD_POLARIMETRY | ResultFlags.LARGE_POL_ERROR,
    )
    for light in lights:
        PhotoPolMember.create(result=result, rawfit=light)
    return epoch, target, lights, result


def test_new_store_has_every_table_wal_and_version(store):
    assert schema_version(store) == SCHEMA_VERSION
    counters = {"epoch_change", "source_change"}  # schema 5 (iopreport.store.changes)
    tables = {m._meta.table_name for m in ALL_MODELS} | counters
    if is_postgres(store):  # the schema version lives in a table (iopreport.store.dialect)
        assert set(store.get_tables()) == tables | {"iopreport_schema"}
        return
    assert set(store.get_tables()) == tables
    assert store.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1


def test_round_trip_through_a_new_connection(tmp_path):
    path = tmp_path / "rt.db"
    database = open_store(path)
    epoch, target, lights, result = make_night()
    Heartbeat.create(name="daemon", pid=123, state="idle")
    RunLog.create(command="reduce", arguments=["--night", "2022-09-08"], outcome="ok")
    SentSummary.create(night=epoch.night, subscriber="a@example.org", status="sent")
    StandardPolarization.create(source=target, band="R", p=0.05, chi=54.5)
    database.close()

    open_store(path)
    again = PhotoPolResult.get(PhotoPolResult.members_key == result.members_key)
    assert again.astrosource.name == "2200+420"
    assert again.epoch.epochname == "OSN-T090/2022-09-08"
    assert again.p == pytest.approx(0.125)
    assert again.q == pytest.approx(0.06) and again.q_raw == pytest.approx(0.05)
    assert ResultFlags.labels(again.flags) == ["BAD_POLARIMETRY", "LARGE_POL_ERROR"]
    assert sorted(m.rawfit.filename for m in again.members) == sorted(f.filename for f in lights)
    assert AstroSource.get(name="2200+420").other_names == ["BL Lacertae", "BL Lac"]
    assert [s.name for s in AstroSource.get(name="2200+420").calibrator_sources] == ["2200+420 B"]
    assert RunLog.get().arguments == ["--night", "2022-09-08"]
    assert isinstance(RunLog.get().started_at, dt.datetime)
    assert RawFit.get(filename="Bias-0001.fit").fileloc == "OSN-T090/2022-09-08/Bias-0001.fit"
    assert MasterBias.get().inputs[0].rawfit.filename == "Bias-0001.fit"
    assert ReducedFit.select().where(ReducedFit.error != "").count() == 1


def test_result_identity_is_unique(store):
    _, target, lights, result = make_night()
    with pytest.raises(pw.IntegrityError), store.atomic():
        PhotoPolResult.create(
            astrosource=target,
            epoch=result.epoch,
            mode="polarimetry",
            method="osn-wheel",
            members_key=PhotoPolResult.make_members_key(reversed([f.fileloc for f in lights])),
            instrument="AndorT90",
            band="R",
            juliandate=1.0,
            juliandate_min=1.0,
            juliandate_max=1.0,
        )
    # the same members measured with another method is another result
    PhotoPolResult.create(
        astrosource=target,
        epoch=result.epoch,
        mode="polarimetry",
        method="osn-wheel-raw",
        members_key=result.members_key,
        instrument="AndorT90",
        band="R",
        juliandate=1.0,
        juliandate_min=1.0,
        juliandate_max=1.0,
    )


def test_unique_raw_file_per_night_and_epoch_per_telescope(store):
    epoch, *_ = make_night()
    with pytest.raises(pw.IntegrityError), store.atomic():
        RawFit.create(epoch=epoch, filename="Bias-0001.fit")
    with pytest.raises(pw.IntegrityError), store.atomic():
        Epoch.create(telescope="OSN-T090", night=epoch.night)


def test_deleting_an_epoch_cascades(store):
    epoch, *_ = make_night()
    epoch.delete_instance()
    for model in (RawFit, ReducedFit, PhotoPolResult, PhotoPolMember, AperPhotResult, MasterBias):
        assert model.select().count() == 0, model.__name__
    assert AstroSource.select().count() == 2


def test_queries_for_notebooks(store):
    make_night(dt.date(2022, 9, 8))
    newer = Epoch.create(telescope="OSN-T150", night=dt.date(2022, 9, 9))
    assert last_epoch() == newer
    assert last_epoch("OSN-T090").night == dt.date(2022, 9, 8)
    counts = epoch_counts(last_epoch("OSN-T090"))
    assert counts == {"bias": 1, "flat": 1, "light": 3, "reduced": 3, "failed": 1}
    assert source_by_name("bl lacertae").name == "2200+420"
    with pytest.raises(LookupError):
        source_by_name("3C 999")
    results = list(source_results("BL Lac", band="R"))
    assert len(results) == 1
    table = results_table(results)
    assert len(table) == 1
    assert table["source"][0] == "2200+420"
    assert table["p_pct"][0] == pytest.approx(12.5)
    assert str(table["p_pct"].unit) == "%"
    assert str(table["mag"].unit) == "mag"
    assert table["mjd"][0] == pytest.approx(table["jd"][0] - 2400000.5)
    assert math.isnan(table["mag"][0]) is False
    assert len(table["members"][0].split()) == 3
    assert len(results_table([])) == 0


def test_refuses_foreign_and_newer_databases(tmp_path):
    import sqlite3

    from iopreport.errors import StoreError

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not an iopreport store"):
        open_store(foreign)
    newer = tmp_path / "newer.db"
    open_store(newer).close()
    with sqlite3.connect(newer) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this iopreport supports"):
        open_store(newer)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        open_store(garbage)
