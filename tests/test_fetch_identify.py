"""Local archive fetch (verified, atomic, read-only, idempotent) and target identification."""

from __future__ import annotations

import datetime as dt
import os
import stat

from iopreport.archive.local import list_nights
from iopreport.archive.nightdownload import fetch_night
from iopreport.catalog import load_catalog
from iopreport.fileio import sha256_of
from iopreport.identify import identify_target
from iopreport.nightlayout import night_folder, night_from_folder
from iopreport.skeleton import skeleton_dir

NIGHT = dt.date(2024, 10, 8)


def make_archive(root):
    folder = root / night_folder("OSN-T090", NIGHT)
    folder.mkdir(parents=True)
    for name in ("BLLac-0001R.fit", "Bias-0001.fit", "notes.txt", "focus.FTS"):
        (folder / name).write_bytes(name.encode() * 1000)
    return folder


def test_layouts():
    assert night_folder("OSN-T090", NIGHT) == "20241008"
    assert night_folder("CAHA-T220", NIGHT) == "241008_CAFOS"
    assert night_from_folder("CAHA-T220", "241008_CAFOS") == NIGHT
    assert night_from_folder("OSN-T150", "20241008") == NIGHT
    assert night_from_folder("OSN-T150", "calibrations") is None
    assert night_from_folder("CAHA-T220", "20241008") is None


def test_fetch_copies_fits_only_verified_and_read_only(tmp_path):
    archive = tmp_path / "archive"
    source = make_archive(archive)
    raw = tmp_path / "raw"
    report = fetch_night(archive, "OSN-T090", NIGHT, raw)
    target = raw / "OSN-T090" / "2024-10-08"
    assert sorted(p.name for p in report.copied) == [
        "BLLac-0001R.fit",
        "Bias-0001.fit",
        "focus.FTS",
    ]
    assert not (target / "notes.txt").exists()
    for path in report.copied:
        assert sha256_of(path) == sha256_of(source / path.name)
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not list(target.glob(".*.part"))
    assert list_nights(archive, "OSN-T090") == [NIGHT]
    again = fetch_night(archive, "OSN-T090", NIGHT, raw)
    assert again.copied == [] and len(again.present) == 3


def test_fetch_replaces_a_changed_file_and_honours_patterns(tmp_path):
    archive = tmp_path / "archive"
    source = make_archive(archive)
    raw = tmp_path / "raw"
    fetch_night(archive, "OSN-T090", NIGHT, raw)
    (source / "Bias-0001.fit").write_bytes(b"changed" * 999)
    report = fetch_night(archive, "OSN-T090", NIGHT, raw, patterns=(r"^Bias",))
    assert [p.name for p in report.copied] == ["Bias-0001.fit"]
    assert (raw / "OSN-T090" / "2024-10-08" / "Bias-0001.fit").read_bytes().startswith(b"changed")


def test_missing_night_is_reported(tmp_path):
    report = fetch_night(tmp_path, "OSN-T090", NIGHT, tmp_path / "raw")
    assert report.failed and "night folder not found" in next(iter(report.failed.values()))
    assert not os.path.exists(tmp_path / "raw" / "OSN-T090" / "2024-10-08")


def test_identify_target_from_object_names():
    sources = load_catalog(skeleton_dir() / "catalog.toml").sources
    assert identify_target("BLLac", sources) == "2200+420"
    assert identify_target("BLLAC", sources) == "2200+420"
    assert identify_target("2200+420 0.0 deg", sources) == "2200+420"
    assert identify_target("3C454.3", sources) == "2251+158"
    assert identify_target("S50716", sources) == "0716+714"
    assert identify_target("Hiltner960", sources) == "Hiltner 960"
    assert identify_target("BD64106", sources) == "BD+64 106"
    assert identify_target("+", sources) is None
    assert identify_target("", sources) is None
    assert identify_target("BL Lac", sources) == "2200+420"
    assert identify_target("2200+420 B", sources) == "2200+420"  # calibrators are never targets
    assert identify_target("FLAT", sources) is None


def test_reduced_file_names():
    from iopreport.reduce.night import reduced_name

    assert reduced_name("BLLac-0001R.fit") == "BLLac-0001R.fits"
    assert reduced_name("BLLAC_R_IAR-0760.fts") == "BLLAC_R_IAR-0760.fits"
    assert (
        reduced_name("EFOSC.2022-01-28T04-54-24.341.fits.gz")
        == "EFOSC.2022-01-28T04-54-24.341.fits"
    )
