"""Archive backends against real servers on 127.0.0.1, and the store they fill (issue 9).

FTP is pyftpdlib, SFTP is asyncssh's server, both serving tiny simulated nights
in each telescope's own layout (OSN YYYYMMDD, CAHA YYMMDD_CAFOS).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import stat
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from archive_helpers import NIGHT, copy_archive, fits_names, load, make_project, simulate

from iopreport.archive.backends import open_archive
from iopreport.archive.base import ArchiveError, RemoteFile
from iopreport.archive.download import download_file, part_path
from iopreport.archive.ftp import FtpArchive, parse_list_line
from iopreport.archive.polling import close_time
from iopreport.archive.sync import sync_archive
from iopreport.archive.testserver import FtpTestServer, SftpTestServer, silent_port
from iopreport.config import ArchiveConfig
from iopreport.fileio import sha256_of
from iopreport.nightlayout import night_folder
from iopreport.store import Epoch, EpochFlags, RawFit, RawFitFlags, close_store, open_store


@pytest.fixture(scope="module")
def archive_root(tmp_path_factory):
    """One tiny simulated night for each of the three telescopes (written once)."""
    return simulate(
        tmp_path_factory.mktemp("sim") / "archive", ("OSN-T090", "OSN-T150", "CAHA-T220")
    )


def night_dir(root: Path, telescope: str) -> Path:
    return root / telescope / night_folder(telescope, NIGHT)


def archive_config(telescope: str, table: dict) -> ArchiveConfig:
    return ArchiveConfig(telescope=telescope, **table)


@pytest.fixture
def project(tmp_path):
    """A function that makes a project for given archive tables and opens its store."""
    opened = []

    def make(archives):
        config = load(make_project(tmp_path / "site", archives))
        open_store(config.database_path)
        opened.append(config)
        return config

    yield make
    close_store()


def assert_night_complete(config, telescope, source_folder):
    """Every FITS file of the archive's night is in raw/, identical, read-only, recorded."""
    raw = config.paths.data_subdir("raw") / telescope / NIGHT.isoformat()
    names = fits_names(source_folder)
    assert names and fits_names(raw) == names
    assert not list(raw.glob(".*.part"))
    epoch = Epoch.get(telescope=telescope, night=NIGHT)
    assert epoch.flags & EpochFlags.LISTED and epoch.flags & EpochFlags.DOWNLOADED
    assert not epoch.flags & EpochFlags.ERROR_LISTING and epoch.last_listed is not None
    rows = {r.filename: r for r in RawFit.select().where(RawFit.epoch == epoch)}
    assert sorted(rows) == names
    for name in names:
        path = raw / name
        assert sha256_of(path) == sha256_of(source_folder / name) == rows[name].sha256
        assert rows[name].size_bytes == path.stat().st_size
        assert rows[name].flags & RawFitFlags.DOWNLOADED and rows[name].error == ""
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_list_lines_of_unix_and_dos_servers():
    unix = "-rw-r--r--    1 ftp      ftp        529920 Oct 09 03:12 BLLac-0019R.fit"
    assert parse_list_line(unix) == ("BLLac-0019R.fit", "file", 529920)
    assert parse_list_line("drwxr-xr-x 2 ftp ftp 4096 Oct  9  2024 20241008") == (
        "20241008",
        "dir",
        4096,
    )
    assert parse_list_line("lrwxrwxrwx 1 a b 8 Jan 1 10:00 last -> 20241008")[0] == "last"
    assert parse_list_line("10-09-24  03:12AM  <DIR>  20241008") == ("20241008", "dir", 0)
    assert parse_list_line("10-09-24  03:12AM  1234 Bias-0001.fit") == (
        "Bias-0001.fit",
        "file",
        1234,
    )
    assert parse_list_line("total 12") is None


def test_ftp_discovery_download_checksum_and_no_second_download(archive_root, project):
    """OSN-T150 over FTP (MLSD, server HASH): a new night found, every file verified."""
    with FtpTestServer(archive_root / "OSN-T150", offer_hash=True) as server:
        config = project({"OSN-T150": server.archive_table()})
        archive = config.archives["OSN-T150"]
        backend = open_archive(archive)
        assert backend.list_nights() == [NIGHT]
        listing = backend.list_files(NIGHT)
        assert listing[0].mtime is not None and listing[0].size > 0
        assert backend.checksum(listing[0]) == "sha256:" + sha256_of(
            night_dir(archive_root, "OSN-T150") / listing[0].name
        )
        backend.close()

        result = sync_archive(config, archive, now=dt.datetime(2024, 10, 9, 3, 0))
        assert not result.failed, result.lines()
        assert_night_complete(config, "OSN-T150", night_dir(archive_root, "OSN-T150"))
        assert sorted(result.new_files[NIGHT]) == fits_names(night_dir(archive_root, "OSN-T150"))
        assert not Epoch.get(night=NIGHT).flags & EpochFlags.CLOSED  # still the night itself
        transfers = len(server.retrievals)

        # next poll, before closing time: listed again, nothing downloaded again
        again = sync_archive(config, archive, now=dt.datetime(2024, 10, 9, 9, 0))
        assert again.new_files == {} and len(again.nights[0].present) == transfers
        assert len(server.retrievals) == transfers
        epoch = Epoch.get(night=NIGHT)
        assert epoch.last_listed == dt.datetime(2024, 10, 9, 9, 0)
        assert not epoch.flags & EpochFlags.CLOSED

        # after close_night_after_hours the night is closed and no longer polled
        late = close_time(NIGHT, config) + dt.timedelta(minutes=1)
        sync_archive(config, archive, now=late)
        assert Epoch.get(night=NIGHT).flags & EpochFlags.CLOSED
        closed = sync_archive(config, archive, now=late)
        assert closed.nights == [] and closed.lines() == ["OSN-T150: no night to fetch"]


def test_close_time_is_hours_after_local_noon(project):
    config = project({})
    # Europe/Madrid is UTC+2 on 2024-10-08: noon local = 10:00 UTC, + 36 h
    assert close_time(NIGHT, config) == dt.datetime(2024, 10, 9, 22, 0)


def test_ftp_list_fallback_latin1_names_and_new_files_in_an_open_night(
    archive_root, project, tmp_path
):
    """OSN-T090 over FTP without MLSD, latin-1 listings; a file added later is found."""
    root = tmp_path / "copy"
    copy_archive(archive_root / "OSN-T090", root / "OSN-T090")
    folder = night_dir(root, "OSN-T090")
    first = fits_names(folder)[0]
    (folder / "Señal-0001.fits").write_bytes((folder / first).read_bytes())
    with FtpTestServer(root / "OSN-T090", mlsd=False, encoding="latin-1") as server:
        config = project({"OSN-T090": server.archive_table(encoding="latin-1")})
        archive = config.archives["OSN-T090"]
        result = sync_archive(config, archive, now=dt.datetime(2024, 10, 9, 2, 0))
        assert not result.failed, result.lines()
        assert_night_complete(config, "OSN-T090", folder)
        assert "Señal-0001.fits" in result.new_files[NIGHT]

        # the telescope writes one more frame into the open night
        (folder / "BLLac-9999R.fit").write_bytes((folder / first).read_bytes())
        Epoch.update(flags=Epoch.flags.bin_or(int(EpochFlags.REDUCED))).execute()
        later = sync_archive(config, archive, now=dt.datetime(2024, 10, 9, 4, 0))
        assert later.new_files == {NIGHT: ["BLLac-9999R.fit"]}
        assert_night_complete(config, "OSN-T090", folder)
        assert not Epoch.get(night=NIGHT).flags & EpochFlags.REDUCED  # to be reduced again


def test_sftp_discovery_and_download(archive_root, project):
    """CAHA-T220 over SFTP: YYMMDD_CAFOS folders under root DATA-like folder."""
    with SftpTestServer(archive_root / "CAHA-T220") as server:
        config = project({"CAHA-T220": server.archive_table()})
        backend = open_archive(config.archives["CAHA-T220"])
        assert backend.list_nights() == [NIGHT]
        backend.close()
        result = sync_archive(config, config.archives["CAHA-T220"])
        assert not result.failed, result.lines()
        assert_night_complete(config, "CAHA-T220", night_dir(archive_root, "CAHA-T220"))


def test_resume_after_a_dropped_connection(archive_root, project):
    """The server cuts every file's first transfer after 100 kB; REST resumes from there."""
    with FtpTestServer(archive_root / "OSN-T150", drop_after=100_000) as server:
        config = project({"OSN-T150": server.archive_table()})
        result = sync_archive(config, config.archives["OSN-T150"], backoff_s=0.05)
        assert not result.failed, result.lines()
        assert_night_complete(config, "OSN-T150", night_dir(archive_root, "OSN-T150"))
        resumed = [path for path, offset in server.retrievals if offset == 100_000]
        assert len(server.dropped) == len(fits_names(night_dir(archive_root, "OSN-T150")))
        assert sorted(resumed) == sorted(
            f"/{night_folder('OSN-T150', NIGHT)}/{Path(p).name}" for p in server.dropped
        )


def test_sftp_resume_from_a_part_file_left_by_a_crash(archive_root, project):
    source = night_dir(archive_root, "CAHA-T220")
    name = fits_names(source)[0]
    with SftpTestServer(archive_root / "CAHA-T220") as server:
        config = project({"CAHA-T220": server.archive_table()})
        target = config.paths.data_subdir("raw") / "CAHA-T220" / NIGHT.isoformat()
        target.mkdir(parents=True)
        part_path(target, name).write_bytes((source / name).read_bytes()[:12345])
        backend = open_archive(config.archives["CAHA-T220"])
        remote = next(r for r in backend.list_files(NIGHT) if r.name == name)
        assert download_file(backend, remote, target) == sha256_of(source / name)
        backend.close()
        assert (target / name).read_bytes() == (source / name).read_bytes()
        assert not part_path(target, name).exists()


def test_stale_part_file_fails_the_checksum_and_is_downloaded_again(archive_root, project):
    """A .part from an older version of the file: the server's HASH catches it."""
    source = night_dir(archive_root, "OSN-T150")
    name = fits_names(source)[0]
    with FtpTestServer(archive_root / "OSN-T150", offer_hash=True) as server:
        config = project({"OSN-T150": server.archive_table()})
        target = config.paths.data_subdir("raw") / "OSN-T150" / NIGHT.isoformat()
        target.mkdir(parents=True)
        part_path(target, name).write_bytes(b"\0" * 4096)  # not the archive's first bytes
        backend = open_archive(config.archives["OSN-T150"])
        remote = next(r for r in backend.list_files(NIGHT) if r.name == name)
        sleeps = []
        sha = download_file(backend, remote, target, sleep=sleeps.append)
        backend.close()
        assert sha == sha256_of(source / name) and len(sleeps) == 1
        offsets = [offset for path, offset in server.retrievals if path.endswith(name)]
        assert offsets == [4096, 0]  # resumed, rejected by checksum, downloaded whole


def test_one_failing_archive_does_not_stop_the_others_and_is_retried(
    archive_root, project, monkeypatch
):
    """T090's root is missing (listing error) and T150's server hangs (timeout): CAHA arrives;
    the retry job fetches only the failed archives once they answer again."""
    from iopreport import daemon

    monkeypatch.setitem(daemon.JOBS, "poll", (daemon.Step("fetch"),))
    monkeypatch.setitem(daemon.JOBS, "retry", (daemon.Step("fetch"),))
    with (
        FtpTestServer(archive_root / "OSN-T090") as t090,
        FtpTestServer(archive_root / "OSN-T150") as t150,
        SftpTestServer(archive_root / "CAHA-T220") as caha,
    ):
        t150.silent = True
        config = project(
            {
                "OSN-T090": t090.archive_table(root="/no-such-folder"),
                "OSN-T150": t150.archive_table(timeout_s=1),
                "CAHA-T220": caha.archive_table(),
            }
        )
        runner = daemon.Daemon(config)
        started = time.monotonic()
        cycle = runner.run_job("poll")
        assert time.monotonic() - started < 30
        assert set(runner.state.failed_archives) == {"OSN-T090", "OSN-T150"}
        text = "\n".join(cycle.failures)
        assert "OSN-T090: listing the archive failed" in text and "no-such-folder" in text
        assert "OSN-T150: listing the archive failed" in text and "no answer within 1 s" in text
        assert_night_complete(config, "CAHA-T220", night_dir(archive_root, "CAHA-T220"))
        caha_transfers = Path(config.paths.data_subdir("raw") / "CAHA-T220").stat().st_mtime

        # the operator fixes T090's root, T150 answers again: the retry job fetches them
        fixed = dict(config.archives)
        fixed["OSN-T090"] = dataclasses.replace(fixed["OSN-T090"], root="/")
        runner.config = dataclasses.replace(config, archives=types.MappingProxyType(fixed))
        t150.silent = False
        retry = runner.run_job("retry")
        assert retry.failures == [] and runner.state.failed_archives == {}
        assert all("CAHA" not in line for line in retry.lines)  # only failed archives retried
        for telescope in ("OSN-T090", "OSN-T150"):
            assert_night_complete(config, telescope, night_dir(archive_root, telescope))
        assert Path(config.paths.data_subdir("raw") / "CAHA-T220").stat().st_mtime == caha_transfers
        # nothing failed any more: a retry does nothing and records nothing
        runs = _runs()
        runner.run_job("retry")
        assert _runs() == runs


def _runs():
    from iopreport.store import RunLog

    return RunLog.select().count()


def test_silent_sftp_server_times_out(project):
    with silent_port() as port:
        archive = ArchiveConfig(
            telescope="CAHA-T220", protocol="sftp", host="127.0.0.1", port=port, timeout_s=1
        )
        started = time.monotonic()
        with pytest.raises(ArchiveError, match=r"(no answer|no SSH greeting) within 1 s"):
            open_archive(archive).list_nights()
        assert time.monotonic() - started < 10


def test_file_patterns_are_honoured_and_skipped_files_reported(archive_root, project, caplog):
    caplog.set_level(logging.INFO, logger="iopreport.archive.nightdownload")
    with FtpTestServer(archive_root / "OSN-T150") as server:
        config = project({"OSN-T150": server.archive_table(file_patterns=["^Bias", "^Flat"])})
        result = sync_archive(config, config.archives["OSN-T150"])
    report = result.nights[0]
    names = fits_names(night_dir(archive_root, "OSN-T150"))
    assert sorted(p.name for p in report.copied) == [
        n for n in names if n.startswith(("Bias", "Flat"))
    ]
    assert report.skipped and all(not n.startswith(("Bias", "Flat")) for n in report.skipped)
    assert f"{len(report.skipped)} skipped by file_patterns" in report.summary()
    assert "do not match file_patterns" in caplog.text


def test_wrong_password_is_a_clear_error(archive_root, project):
    with FtpTestServer(archive_root / "OSN-T150", password="right") as server:
        table = server.archive_table()
        server.password = "other"
        backend = FtpArchive(archive_config("OSN-T150", table))
        import os

        os.environ[table["password_env"]] = "wrong"
        with pytest.raises(ArchiveError, match="530"):
            backend.list_nights()


def test_fetch_command_over_ftp_and_sftp(archive_root, tmp_path, iopreport_exe):
    with (
        FtpTestServer(archive_root / "OSN-T150") as ftp,
        SftpTestServer(archive_root / "CAHA-T220") as sftp,
    ):
        config_path = make_project(
            tmp_path / "site", {"OSN-T150": ftp.archive_table(), "CAHA-T220": sftp.archive_table()}
        )
        run = subprocess.run(
            [iopreport_exe, "--config", str(config_path), "fetch", "--night", NIGHT.isoformat()],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        n150 = len(fits_names(night_dir(archive_root, "OSN-T150")))
        n220 = len(fits_names(night_dir(archive_root, "CAHA-T220")))
        assert f"OSN-T150 {NIGHT}: {n150} copied, 0 already present, 0 failed" in run.stdout
        assert f"CAHA-T220 {NIGHT}: {n220} copied, 0 already present, 0 failed" in run.stdout
        missing = subprocess.run(
            [iopreport_exe, "--config", str(config_path), "fetch", "--night", "2024-10-01"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert missing.returncode == 1
    assert "OSN-T150 2024-10-01: listing failed" in missing.stdout


def test_local_archive_is_the_same_interface(archive_root, project):
    root = archive_root / "OSN-T150"
    config = project({"OSN-T150": {"enabled": True, "protocol": "local", "root": str(root)}})
    result = sync_archive(config, config.archives["OSN-T150"])
    assert not result.failed
    assert_night_complete(config, "OSN-T150", night_dir(archive_root, "OSN-T150"))
    backend = open_archive(config.archives["OSN-T150"])
    remote = backend.list_files(NIGHT)[0]
    digest = hashlib.sha256(Path(remote.path).read_bytes()).hexdigest()
    assert backend.checksum(remote) == f"sha256:{digest}"
    assert isinstance(remote, RemoteFile)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_daemon_polls_from_the_oldest_night_in_the_store(archive_root, project, tmp_path):
    """An older night folder is left alone once `fetch --night/--since` set the start."""
    root = tmp_path / "copy" / "OSN-T150"
    copy_archive(archive_root / "OSN-T150", root)
    older = dt.date(2024, 9, 30)
    copy_archive(night_dir(archive_root, "OSN-T150"), root / night_folder("OSN-T150", older))
    with FtpTestServer(root) as server:
        config = project({"OSN-T150": server.archive_table()})
        archive = config.archives["OSN-T150"]
        sync_archive(config, archive, nights=[NIGHT])  # what `fetch --night` does
        polled = sync_archive(config, archive)
        assert polled.nights == []  # NIGHT is closed by now, the older one left alone
        backfill = sync_archive(config, archive, since=older)
        assert [report.night for report in backfill.nights] == [NIGHT, older]
        assert sorted(e.night for e in Epoch.select()) == [older, NIGHT]
