"""Change counters (schema 5): every writer of a row the site shows is counted by SQLite."""

from __future__ import annotations

import datetime as dt

import pytest

from iopreport.store import (
    AstroSource,
    Epoch,
    MasterBias,
    MasterFlat,
    PhotoPolResult,
    RawFit,
    ReducedFit,
)
from iopreport.store.changes import epoch_changes, source_changes
from iopreport.store.models import database_proxy


@pytest.fixture
def rows(store):
    """Two nights; the second one's frame is calibrated with the first one's masters."""
    source = AstroSource.create(name="2200+420", srctype="blazar", ra_deg=330.68, dec_deg=42.28)
    other = AstroSource.create(name="3C 454.3", srctype="blazar", ra_deg=343.49, dec_deg=16.15)
    first = Epoch.create(telescope="OSN-T090", night=dt.date(2024, 1, 1))
    second = Epoch.create(telescope="OSN-T090", night=dt.date(2024, 1, 2))
    bias = MasterBias.create(
        epoch=first, filename="mb.fits", instrument="AndorT90", imgsize="1x1", binning="1x1"
    )
    flat = MasterFlat.create(
        epoch=first,
        filename="mf.fits",
        instrument="AndorT90",
        imgsize="1x1",
        binning="1x1",
        band="R",
        obsmode="photometry",
    )
    raw = RawFit.create(epoch=second, filename="a.fits", imgtype="light", band="R")
    reduced = ReducedFit.create(rawfit=raw, filename="red/a.fits", masterbias=bias, masterflat=flat)
    result = PhotoPolResult.create(
        astrosource=source,
        epoch=second,
        members_key="OSN-T090/2024-01-02/a.fits",
        mode="photometry",
        method="relphot",
        instrument="AndorT90",
        band="R",
        juliandate=2460312.5,
        juliandate_min=2460312.5,
        juliandate_max=2460312.5,
        mag=15.0,
        mag_err=0.02,
    )
    return {
        "source": source,
        "other": other,
        "first": first,
        "second": second,
        "bias": bias,
        "flat": flat,
        "raw": raw,
        "reduced": reduced,
        "result": result,
    }


def _counts() -> tuple[dict[int, int], dict[int, int]]:
    return epoch_changes(), source_changes()


def test_a_new_store_counts_inserts(rows):
    epochs, sources = _counts()
    # first: two masters; second: raw frame, reduced frame, result
    assert epochs == {rows["first"].id: 2, rows["second"].id: 3}
    assert sources == {rows["source"].id: 1}


def test_flag_edit_counts_the_night_and_the_source(rows):
    epochs, sources = _counts()
    PhotoPolResult.update(manual_flags=2, flag_reasons=["clouds"]).execute()
    after_epochs, after_sources = _counts()
    assert after_epochs[rows["second"].id] > epochs[rows["second"].id]
    assert after_sources[rows["source"].id] > sources[rows["source"].id]
    assert after_epochs[rows["first"].id] == epochs[rows["first"].id]


def test_rewriting_the_same_values_or_a_hidden_column_is_not_a_change(rows):
    before = _counts()
    PhotoPolResult.update(mag=15.0, manual_flags=0).execute()  # the values it has
    RawFit.update(sha256="abc", size_bytes=10).execute()  # never shown
    ReducedFit.update(inputs_key="k", n_detected=5).execute()
    Epoch.update(last_listed=dt.datetime(2024, 1, 3)).execute()
    assert _counts() == before


def test_manual_sql_is_counted_too(rows):
    before = _counts()[0][rows["second"].id]
    database_proxy.execute_sql("UPDATE raw_fit SET flags = flags | 64")
    assert _counts()[0][rows["second"].id] > before


def test_a_result_moved_to_another_source_counts_both(rows):
    before = _counts()[1]
    PhotoPolResult.update(astrosource=rows["other"]).execute()
    after = _counts()[1]
    assert after[rows["source"].id] == before[rows["source"].id] + 1
    assert after[rows["other"].id] == 1


def test_deleted_result_counts_its_night_and_source(rows):
    before = _counts()
    rows["result"].delete_instance()
    after = _counts()
    assert after[0][rows["second"].id] == before[0][rows["second"].id] + 1
    assert after[1][rows["source"].id] == before[1][rows["source"].id] + 1


def test_a_master_change_counts_the_nights_using_it(rows):
    before = _counts()[0]
    MasterFlat.update(flags=1).where(MasterFlat.id == rows["flat"].id).execute()
    after = _counts()[0]
    assert after[rows["first"].id] > before[rows["first"].id]
    assert after[rows["second"].id] > before[rows["second"].id]


def test_a_deleted_master_counts_the_nights_using_it(rows):
    before = _counts()[0]
    rows["bias"].delete_instance()  # the reduced frame's masterbias is set to NULL
    after = _counts()[0]
    assert after[rows["first"].id] > before[rows["first"].id]
    assert after[rows["second"].id] > before[rows["second"].id]
    assert ReducedFit.get().masterbias_id is None


def test_cascading_delete_of_a_raw_frame_counts_once_and_adds_no_stray_row(rows):
    before = _counts()[0]
    rows["raw"].delete_instance(recursive=False)  # reduced frame goes by ON DELETE CASCADE
    after = _counts()[0]
    assert ReducedFit.select().count() == 0
    assert after[rows["second"].id] > before[rows["second"].id]
    assert set(after) == set(before)


def test_a_renamed_night_counts_its_sources(rows):
    before = _counts()[1][rows["source"].id]
    Epoch.update(night=dt.date(2024, 1, 5)).where(Epoch.id == rows["second"].id).execute()
    assert _counts()[1][rows["source"].id] > before


def test_deleted_epoch_keeps_its_counter(rows):
    eid = rows["second"].id
    rows["second"].delete_instance(recursive=False)  # everything of it cascades
    counters = _counts()[0]
    assert eid in counters and counters[eid] > 3
