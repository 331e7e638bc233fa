"""Night-folder layouts from config.toml (``night_folder``) on real FTP, SFTP and local archives."""

from __future__ import annotations

import datetime as dt
import io
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from archive_helpers import load, make_project
from astropy.io import fits

from iopreport.archive.sync import sync_archive
from iopreport.archive.testserver import FtpTestServer, SftpTestServer
from iopreport.cli import main
from iopreport.errors import InputError
from iopreport.nightlayout import LayoutError, NightLayout, night_folder, night_from_folder
from iopreport.store import close_store, open_store

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHTS = (dt.date(2024, 10, 8), dt.date(2024, 10, 9))
NOW = dt.datetime(2024, 10, 11, 3, 0)


def tiny_fits(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.ones((4, 4), dtype=np.float32)).writeto(path)


def make_archive(root: Path, pattern: str, junk: tuple[str, ...]) -> Path:
    layout = NightLayout(pattern)
    for night in NIGHTS:
        tiny_fits(root / layout.folder(night) / f"frame-{night:%d}.fits")
    for folder in junk:
        (root / folder).mkdir(parents=True, exist_ok=True)
    return root


@pytest.mark.parametrize(
    ("pattern", "folder"),
    [
        ("{night:%Y%m%d}", "20241008"),
        ("{night:%y%m%d}_CAFOS", "241008_CAFOS"),
        ("{night:%Y-%m-%d}", "2024-10-08"),
        ("{night:%Y}/{night:%m}/{night:%d}", "2024/10/08"),
        ("night_{night:%j}_{night:%Y}", "night_282_2024"),
    ],
)
def test_patterns_name_and_recognise_nights(pattern, folder):
    layout = NightLayout(pattern)
    assert layout.folder(NIGHTS[0]) == folder
    assert layout.night(folder) == NIGHTS[0]
    assert layout.night(folder + "x") is None and layout.night("x" + folder) is None


def test_defaults_are_todays_layouts():
    assert night_folder("OSN-T090", NIGHTS[0]) == "20241008"
    assert night_folder("CAHA-T220", NIGHTS[0]) == "241008_CAFOS"
    assert night_from_folder("CAHA-T220", "241008_CAFOS") == NIGHTS[0]
    assert night_from_folder("OSN-T150", "2024-10-08") is None


@pytest.mark.parametrize(
    "pattern", ["20241008", "{night:%Y}", "{night:%H%M}", "../{night:%Y%m%d}", "{other}"]
)
def test_bad_patterns_are_refused(pattern, tmp_path):
    with pytest.raises(LayoutError):
        NightLayout(pattern)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[archives.OSN-T090]\nprotocol = "local"\nroot = "a"\nnight_folder = "{pattern}"\n'
    )
    with pytest.raises(InputError, match="night_folder"):
        load(path)


NESTED = "{night:%Y}/{night:%m}/{night:%d}"
NESTED_JUNK = ("misc", "2024/notes", "2024/13/01")
DASHED = "{night:%Y-%m-%d}"
DASHED_JUNK = ("calibration", "2024-02-30")


@pytest.mark.parametrize("protocol", ["ftp", "sftp", "local"])
@pytest.mark.parametrize(("pattern", "junk"), [(NESTED, NESTED_JUNK), (DASHED, DASHED_JUNK)])
def test_layout_from_config_on_every_protocol(tmp_path, protocol, pattern, junk):
    archive = make_archive(tmp_path / "archive", pattern, junk)
    extra = {"night_folder": pattern}
    if protocol == "local":
        server = None
        table = {"enabled": True, "protocol": "local", "root": str(archive), **extra}
    else:
        server = (FtpTestServer if protocol == "ftp" else SftpTestServer)(archive).start()
        table = server.archive_table(**extra)
    try:
        config = load(make_project(tmp_path / "project", {"OSN-T150": table}))
        open_store(config.database_path)
        result = sync_archive(config, config.archives["OSN-T150"], since=NIGHTS[0], now=NOW)
    finally:
        close_store()
        if server is not None:
            server.stop()
    assert [report.night for report in result.nights] == sorted(NIGHTS, reverse=True)
    assert not result.failed, result.lines()
    for night in NIGHTS:
        raw = config.paths.data_subdir("raw") / "OSN-T150" / night.isoformat()
        assert [p.name for p in raw.iterdir()] == [f"frame-{night:%d}.fits"]
    assert sorted(result.unmatched) == sorted(junk)
    assert "folders match no night_folder pattern" in result.lines()[-1]


def test_fetch_reports_unmatched_folders(tmp_path):
    archive = make_archive(tmp_path / "archive", DASHED, DASHED_JUNK)
    table = {"enabled": True, "protocol": "local", "root": str(archive), "night_folder": DASHED}
    config_path = make_project(tmp_path / "project", {"OSN-T150": table})
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--config", str(config_path), "fetch", "--since", "2024-10-01"])
    close_store()
    assert code == 0
    assert "OSN-T150: 2 folders match no night_folder pattern '{night:%Y-%m-%d}'" in out.getvalue()
    assert "2024-02-30" in out.getvalue() and "calibration" in out.getvalue()
