"""The command line, run as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from iopreport import __version__
from iopreport.catalog import load_catalog
from iopreport.config import load_config

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow


def run(exe: str, *args: str, cwd: Path | None = None, env: dict | None = None, timeout=120):
    environment = {k: v for k, v in os.environ.items() if k != "IOPREPORT_CONFIG"}
    environment.update(env or {})
    return subprocess.run(
        [exe, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )


def test_help_and_version(iopreport_exe):
    result = run(iopreport_exe, "--help")
    assert result.returncode == 0
    for command in ("init", "status", "catalog", "demo", "--config"):
        assert command in result.stdout
    version = run(iopreport_exe, "--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"iopreport {__version__}"


def test_no_command_or_unknown_command_is_a_usage_error(iopreport_exe):
    assert run(iopreport_exe).returncode == 2
    unknown = run(iopreport_exe, "frobnicate")
    assert unknown.returncode == 2
    assert "invalid choice" in unknown.stderr


def test_init_then_status(iopreport_exe, tmp_path):
    project = tmp_path / "site"
    result = run(iopreport_exe, "init", str(project))
    assert result.returncode == 0, result.stderr
    for name in ("config.toml", "catalog.toml", "flags.toml", "templates", "static"):
        assert (project / name).exists(), name
    assert 'datadir = "data"' in (project / "config.toml").read_text()
    # the template's comments are kept
    assert "# Worker processes" in (project / "config.toml").read_text()

    again = run(iopreport_exe, "init", str(project))
    assert again.returncode == 2
    assert "already has config.toml" in again.stderr

    status = run(iopreport_exe, "status", cwd=project)
    assert status.returncode == 0, status.stderr
    assert f"config:    {project / 'config.toml'}" in status.stdout
    assert "(not created yet)" in status.stdout
    assert not (project / "data").exists(), "status must not create the data directory"


def test_catalog_load_then_status_shows_the_run(iopreport_exe, tmp_path):
    project = tmp_path / "site"
    run(iopreport_exe, "init", str(project))
    config = str(project / "config.toml")
    load = run(iopreport_exe, "--config", config, "catalog", "load")
    assert load.returncode == 0, load.stderr
    assert f"{len(load_catalog(project / 'catalog.toml'))} added" in load.stdout
    status = run(iopreport_exe, "status", env={"IOPREPORT_CONFIG": config}, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "catalog load: ok" in status.stdout
    assert "daemon:    has never run" in status.stdout
    assert "nights:    0" in status.stdout


def test_bad_config_exits_2_naming_key_and_line(iopreport_exe, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[processing]\nworkers = 2\nworkres = 3\n")
    result = run(iopreport_exe, "--config", str(config), "status")
    assert result.returncode == 2
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.count("\n") == 0, "one clear message, no traceback"
    assert message.startswith(f"iopreport: error: {config}:3: processing.workres: unknown key")
    assert "did you mean 'workers'?" in message


def test_missing_config_exits_2(iopreport_exe, tmp_path):
    result = run(iopreport_exe, "status", cwd=tmp_path)
    assert result.returncode == 2
    assert "no configuration found" in result.stderr
    missing = run(iopreport_exe, "--config", str(tmp_path / "nope.toml"), "status")
    assert missing.returncode == 2
    assert "nope.toml: file not found" in missing.stderr


def test_bad_catalog_exits_2_naming_line(iopreport_exe, project):
    catalog = project / "catalog.toml"
    text = catalog.read_text().replace('name = "2200+420 C"', 'name = "2200+420 B"', 1)
    catalog.write_text(text)
    line = (
        text.splitlines().index(
            'name = "2200+420 B"', text.splitlines().index('name = "2200+420 B"') + 1
        )
        + 1
    )
    result = run(iopreport_exe, "--config", str(project / "config.toml"), "catalog", "check")
    assert result.returncode == 2
    assert f"catalog.toml:{line}: source[" in result.stderr
    assert "name '2200+420 B' is already used" in result.stderr


def test_demo_runs_the_whole_product_over_ftp(iopreport_exe, tmp_path):
    """Daemon cycles on an FTP-served simulated archive as three nights appear; site, outbox
    and summaries made, and the flare of the third night raises an alert."""
    demo = ("demo", "--dir", str(tmp_path / "demo"), "--preset", "tiny")
    result = run(iopreport_exe, *demo, timeout=900)
    assert result.returncode == 0, result.stderr + result.stdout
    database = tmp_path / "demo" / "data" / "iopreport.db"
    with sqlite3.connect(database) as connection:
        n_sources = connection.execute("SELECT COUNT(*) FROM astro_source").fetchone()[0]
        runs = dict(connection.execute("SELECT command, outcome FROM run_log").fetchall())
        n_pol = connection.execute(
            "SELECT COUNT(*) FROM photo_pol_result WHERE mode = 'polarimetry' AND p IS NOT NULL"
        ).fetchone()[0]
    assert n_sources == len(load_catalog(tmp_path / "demo" / "catalog.toml"))
    assert runs["demo"] == "ok" and runs["daemon once"] == "ok", runs
    assert n_pol >= 4  # a sequence of each of the four polarimeters
    config = load_config(tmp_path / "demo" / "config.toml")
    for telescope, archive in config.archives.items():
        assert archive.protocol == "ftp" and archive.host == "127.0.0.1", telescope
    site = tmp_path / "demo" / "site_out" / "index.html"
    assert site.exists() and f"Site: {site}" in result.stdout
    for night in ("2024-10-08", "2024-10-09", "2024-10-10"):  # three nights, by default
        assert (tmp_path / "demo" / "site_out" / "summaries" / f"{night}.html").exists()
    with sqlite3.connect(database) as connection:
        nights = connection.execute("SELECT COUNT(DISTINCT night) FROM epoch").fetchone()[0]
        cycles = connection.execute(
            "SELECT COUNT(*) FROM run_log WHERE command = 'daemon once'"
        ).fetchone()[0]
    assert nights == 3 and cycles == 3  # the daemon polled as each night appeared
    # BL Lac's flare on the third night fires an alert rule
    assert "Alerts in the summary of 2024-10-10:" in result.stdout
    assert "2200+420 [mag_change]" in result.stdout
    assert list((tmp_path / "demo" / "outbox").rglob("*.eml"))
    assert "Not run yet" not in result.stdout
    # running it again reuses the project and fetches nothing new
    again = run(iopreport_exe, *demo, timeout=900)
    assert again.returncode == 0, again.stderr
    assert "Reusing demo project" in again.stdout
