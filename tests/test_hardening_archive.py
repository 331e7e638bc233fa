"""Hostile archive listings against the real FTP and SFTP test servers.

Each test stands for one finding of the adversarial pass: names that would
leave the raw folder, a malformed MLSD line, a listing that never ends and an
empty ``.part`` file after "550".
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
from archive_helpers import load, make_project
from astropy.io import fits

from iopreport.archive.sync import sync_archive
from iopreport.archive.testserver import FtpTestServer, SftpTestServer
from iopreport.fileio import UnsafeNameError, check_name, path_inside
from iopreport.store import Epoch, EpochFlags, close_store, open_store

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHT = dt.date(2024, 10, 8)
FOLDER = "/20241008"  # OSN layout
LATE = dt.datetime(2024, 10, 9, 3, 0)

HOSTILE_NAMES = [
    "./../../../../EVIL.fits",
    "../EVIL.fits",
    "../../../../../../../../../../tmp/EVIL.fits",
    "/EVIL.fits",
    "sub/EVIL.fits",
    "..\\..\\EVIL.fits",
    "EVIL\x1b[31m.fits",
    "EVIL\x7f.fits",
    " EVIL.fits",
    "EVIL.fits\u202e",
    "A" * 300 + ".fits",
]


def tiny_fits(path: Path, value: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.full((4, 4), value, dtype=np.float32)).writeto(path)
    return path


@pytest.fixture
def archive(tmp_path):
    """An OSN-layout archive: one good file in the night, EVIL.fits beside the night folder."""
    root = tmp_path / "archive"
    tiny_fits(root / FOLDER.strip("/") / "good.fits")
    evil = tiny_fits(root / "EVIL.fits", 666.0)
    return root, evil


@pytest.fixture
def project(tmp_path):
    opened = []

    def make(table):
        config = load(make_project(tmp_path / "project", {"OSN-T150": table}))
        open_store(config.database_path)
        opened.append(config)
        return config

    yield make
    close_store()


def evil_copies(tmp_path: Path, evil: Path) -> list[Path]:
    """Every file named like EVIL under tmp_path or /tmp, except the archive's own."""
    found = [p for p in tmp_path.rglob("*EVIL*") if p != evil]
    found += [p for p in Path("/tmp").glob("EVIL.fits")]
    return found


def test_names_are_checked_where_they_enter():
    assert check_name("a.fits") == "a.fits"
    for name in [*HOSTILE_NAMES, "", ".", "..", "a\x00b.fits", "x\udcff.fits", b"a.fits", None]:
        with pytest.raises(UnsafeNameError):
            check_name(name)


def test_paths_stay_inside_their_folder(tmp_path):
    (tmp_path / "raw").mkdir()
    assert path_inside(tmp_path / "raw", "a.fits") == tmp_path / "raw" / "a.fits"
    (tmp_path / "raw" / "link.fits").symlink_to(tmp_path / "outside.fits")
    with pytest.raises(UnsafeNameError, match="leaves"):
        path_inside(tmp_path / "raw", "link.fits")
    with pytest.raises(UnsafeNameError):
        path_inside(tmp_path / "raw", "../x.fits")


def test_ftp_mlsd_traversal_names_are_refused_and_nothing_leaves_raw(archive, project, tmp_path):
    root, evil = archive
    size = evil.stat().st_size
    lines = [f"type=file;size={size}; {name}" for name in HOSTILE_NAMES]
    with FtpTestServer(root, extra_lines={FOLDER: lines}) as server:
        config = project(server.archive_table())
        result = sync_archive(config, config.archives["OSN-T150"], nights=[NIGHT], now=LATE)
    report = result.nights[0]
    assert evil_copies(tmp_path, evil) == []
    assert [p.name for p in report.copied] == ["good.fits"]
    assert len(report.refused) == len(HOSTILE_NAMES), report.refused
    assert all("unsafe name" in reason for reason in report.refused.values())
    assert not report.failed and "refused" in report.summary()
    assert Epoch.get(night=NIGHT).flags & EpochFlags.DOWNLOADED


def test_ftp_list_traversal_names_are_refused(archive, project, tmp_path):
    """The LIST fallback (servers without MLSD) checks names the same way."""
    root, evil = archive
    size = evil.stat().st_size
    lines = [f"-rw-r--r--   1 owner group {size} Oct  8 23:59 {name}" for name in HOSTILE_NAMES]
    with FtpTestServer(root, mlsd=False, extra_lines={FOLDER: lines}) as server:
        config = project(server.archive_table())
        result = sync_archive(config, config.archives["OSN-T150"], nights=[NIGHT], now=LATE)
    report = result.nights[0]
    assert evil_copies(tmp_path, evil) == []
    assert [p.name for p in report.copied] == ["good.fits"]
    # leading blanks vanish in ls -l columns: " EVIL.fits" is listed as EVIL.fits, not there
    assert len(report.refused) + len(report.failed) == len(HOSTILE_NAMES), report.summary()


def test_sftp_traversal_names_are_refused(archive, project, tmp_path):
    root, evil = archive
    names = [b"../../../../EVIL.fits", b"..", b"/EVIL.fits", b"a/../../EVIL.fits"]
    with SftpTestServer(root, extra_names={FOLDER: names}, stand_in=evil) as server:
        config = project(server.archive_table())
        result = sync_archive(config, config.archives["OSN-T150"], nights=[NIGHT], now=LATE)
    report = result.nights[0]
    assert evil_copies(tmp_path, evil) == []
    assert [p.name for p in report.copied] == ["good.fits"]
    assert len(report.refused) == len(names) - 1  # ".." is not a regular file once resolved
    assert not report.failed


def test_malformed_mlsd_line_is_reported_and_the_rest_used(archive, project, tmp_path):
    root, _ = archive
    lines = [
        "type=file;size=abc; bad-size.fits",
        "type=file;size=-5; negative.fits",
        "no facts at all",
        b"type=file;size=10; latin\xe9\xff.fits",
    ]
    with FtpTestServer(root, extra_lines={FOLDER: lines}) as server:
        config = project(server.archive_table())
        result = sync_archive(config, config.archives["OSN-T150"], nights=[NIGHT], now=LATE)
    report = result.nights[0]
    assert not report.listing_error and not report.failed, report.summary()
    assert [p.name for p in report.copied] == ["good.fits"]
    assert report.refused["bad-size.fits"] == "size 'abc' is not a size"
    assert "negative.fits" in report.refused
    assert any("undecodable" in reason for reason in report.refused.values())


def test_endless_listing_is_abandoned_with_a_reason(archive, project):
    root, _ = archive
    with FtpTestServer(root, endless=True) as server:
        config = project(server.archive_table())
        result = sync_archive(config, config.archives["OSN-T150"], nights=[NIGHT], now=LATE)
    report = result.nights[0]
    assert "listing abandoned" in report.listing_error


def test_no_empty_part_file_after_550(archive, project):
    root, _ = archive
    lines = ["type=file;size=2880; ghost.fits"]  # listed, but RETR answers 550
    with FtpTestServer(root, extra_lines={FOLDER: lines}) as server:
        config = project(server.archive_table())
        result = sync_archive(
            config, config.archives["OSN-T150"], nights=[NIGHT], now=LATE, backoff_s=0.01
        )
    report = result.nights[0]
    assert "ghost.fits" in report.failed and "550" in report.failed["ghost.fits"]
    raw = config.paths.data_subdir("raw") / "OSN-T150" / NIGHT.isoformat()
    assert sorted(os.listdir(raw)) == ["good.fits"]
