"""The wheel carries what an installed iopreport needs (the project skeleton for `init`)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest


@pytest.mark.slow
def test_wheel_contains_package_and_skeleton(repo_root, tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(repo_root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("iopreport-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "iopreport/cli/__init__.py",
        "iopreport/store/models/__init__.py",
        "iopreport/skeleton/config.toml",
        "iopreport/skeleton/catalog.toml",
        "iopreport/skeleton/flags.toml",
        "iopreport/skeleton/templates/README.md",
        "iopreport/skeleton/static/README.md",
    ):
        assert required in names, required
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "iopreport = iopreport.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert not any(n.startswith(("tests/", "site_out/")) for n in names)
