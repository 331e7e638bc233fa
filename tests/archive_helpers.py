"""Shared by the archive and daemon tests: simulated archives and projects pointed at servers."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import tomlkit

from iopreport.config import load_config
from iopreport.fileio import write_text_atomic
from iopreport.skeleton import init_project

NIGHT = dt.date(2024, 10, 8)


def simulate(out: Path, telescopes: tuple[str, ...], seed: int = 9) -> Path:
    """A tiny simulated night per telescope under ``out/<TEL>/<night folder>/``."""
    from iopreport.simulate import simulate_night

    simulate_night(out, NIGHT, telescopes=telescopes, preset="tiny", seed=seed)
    return out


def copy_archive(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def make_project(directory: Path, archives: dict[str, dict[str, Any]]) -> Path:
    """A project whose [archives] are exactly ``archives``; returns config.toml's path."""
    from iopreport.simulate.sky import SKY_INDEX_DIR

    init_project(directory)
    config_path = directory / "config.toml"
    document = tomlkit.parse(config_path.read_text(encoding="utf-8"))
    document["paths"]["astrometry_index_dir"] = str(SKY_INDEX_DIR)
    table = tomlkit.table(is_super_table=True)
    for telescope, values in archives.items():
        archive = tomlkit.table()
        for key, value in values.items():
            archive[key] = value
        table[telescope] = archive
    document["archives"] = table
    write_text_atomic(config_path, tomlkit.dumps(document))
    return config_path


def fits_names(folder: Path) -> list[str]:
    from iopreport.nightlayout import FITS_NAME

    return sorted(p.name for p in folder.iterdir() if p.is_file() and FITS_NAME.match(p.name))


def load(config_path: Path):
    return load_config(config_path)
