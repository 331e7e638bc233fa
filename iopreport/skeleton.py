"""The files of a site project, as `iopreport init` writes them.

In a checkout they are the repository's own config.toml, catalog.toml,
flags.toml, templates/ and static/; an installed wheel carries a copy under
``iopreport/skeleton/`` (see pyproject.toml).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import tomlkit

from iopreport.errors import IopreportError, UsageError
from iopreport.fileio import write_text_atomic

SKELETON_FILES = ("config.toml", "catalog.toml", "flags.toml")
SKELETON_DIRS = ("templates", "static")


def skeleton_dir() -> Path:
    """Folder holding the skeleton files (packaged copy first, then the checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "skeleton", here.parent):
        if all((candidate / name).is_file() for name in SKELETON_FILES):
            return candidate
    raise IopreportError(f"iopreport is installed without its project skeleton (looked in {here})")


def init_project(directory: Path | str, *, datadir: str = "data") -> list[Path]:
    """Write a new site project into ``directory``.

    The new config.toml keeps every comment of the template and points its
    data directory at ``datadir`` (relative to the project), so the project
    is self-contained. Existing files are never overwritten.

    Returns
    -------
    list of Path
        The files and folders written.

    Raises
    ------
    UsageError
        If ``directory`` already holds a config.toml, catalog.toml or flags.toml.
    """
    directory = Path(directory)
    source = skeleton_dir()
    clashes = [name for name in SKELETON_FILES if (directory / name).exists()]
    if clashes:
        raise UsageError(
            f"{directory} already has {', '.join(clashes)}; not overwriting "
            "(choose an empty folder)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    config = tomlkit.parse((source / "config.toml").read_text(encoding="utf-8"))
    config["paths"]["datadir"] = datadir
    config["paths"]["astrometry_index_dir"] = f"{datadir}/astrometry-index"
    write_text_atomic(directory / "config.toml", tomlkit.dumps(config))
    written.append(directory / "config.toml")
    for name in SKELETON_FILES[1:]:
        shutil.copyfile(source / name, directory / name)
        written.append(directory / name)
    for name in SKELETON_DIRS:
        if not (directory / name).exists():
            shutil.copytree(source / name, directory / name)
            written.append(directory / name)
    return written
