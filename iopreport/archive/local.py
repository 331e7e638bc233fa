"""A local folder laid out like a telescope archive, copied into the raw store.

Copies are verified (size and SHA-256), written under a temporary name then
renamed, and made read-only; files already present with the same checksum are
not copied again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.archive.layout import FITS_NAME, night_folder, night_from_folder


@dataclass
class FetchReport:
    """What one night's fetch did."""

    telescope: str
    night: dt.date
    copied: list[Path] = field(default_factory=list)
    present: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_nights(root: Path, telescope: str) -> list[dt.date]:
    """Nights present in a local archive root, oldest first."""
    if not root.is_dir():
        return []
    nights = {night_from_folder(telescope, p.name) for p in root.iterdir() if p.is_dir()}
    return sorted(n for n in nights if n)


def fetch_night(
    root: Path,
    telescope: str,
    night: dt.date,
    raw_dir: Path,
    patterns: tuple[str, ...] = (),
) -> FetchReport:
    """Copy one night's FITS files from ``root`` into ``raw_dir/<TEL>/<YYYY-MM-DD>/``."""
    report = FetchReport(telescope, night)
    source = root / night_folder(telescope, night)
    target = raw_dir / telescope / night.isoformat()
    if not source.is_dir():
        report.failed[str(source)] = "night folder not found in the archive"
        return report
    target.mkdir(parents=True, exist_ok=True)
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]
    for path in sorted(source.iterdir()):
        if not path.is_file() or not FITS_NAME.match(path.name):
            continue
        if compiled and not any(p.search(path.name) for p in compiled):
            continue
        destination = target / path.name
        try:
            if (
                destination.exists()
                and destination.stat().st_size == path.stat().st_size
                and sha256_of(destination) == sha256_of(path)
            ):
                report.present.append(destination)
                continue
            temporary = target / f".{path.name}.part"
            shutil.copyfile(path, temporary)
            if temporary.stat().st_size != path.stat().st_size or sha256_of(temporary) != sha256_of(
                path
            ):
                temporary.unlink(missing_ok=True)
                report.failed[path.name] = "copy differs from the archive file"
                continue
            if destination.exists():
                destination.chmod(stat.S_IRUSR | stat.S_IWUSR)
            os.replace(temporary, destination)
            destination.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            report.copied.append(destination)
        except OSError as exc:
            report.failed[path.name] = str(exc)
    return report
