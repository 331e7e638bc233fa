"""Atomic publishing of the site through a symbolic link to one of two generations.

The published path (``paths.site_dir``, e.g. ``site_out``) is a symbolic link
to one of two folders beside it, ``.site_out.gen/a`` and ``.site_out.gen/b``.
A build writes into the generation that is *not* published (the one published
before the last build), then points the link at it with one ``rename`` over
the link: readers see either the old site or the new one, never a mix, and
``site_out/`` stays a plain folder path for ``file://`` and any static server.

Each generation holds a manifest, ``.manifest.json``: for every unit of work (a
page and the files made with it) the hash of its inputs and the files it
wrote. A unit whose hash the generation already holds is left as it is; one
the published generation holds is hard-linked from there; the others are
rendered. Files are never rewritten in place (a file is unlinked and written
anew), so the two generations can share files by hard links. Files of units
that are gone are removed. So an incremental build touches only what changed
since the generation was last written, not every page of the site.

The manifest is removed from the generation before it is changed and written
(atomically) only when the generation is complete: a generation without one,
left by a failed or killed build, is discarded and rewritten from scratch.
A site published by an older iopreport as a plain folder is replaced by the
link with one ``renameat2(RENAME_EXCHANGE)`` system call (Linux; two renames
elsewhere).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iopreport.errors import IopreportError

MANIFEST_NAME = ".manifest.json"
#: Bump when the manifest's layout changes (an old manifest is then ignored).
MANIFEST_VERSION = 2
#: Files kept from the published folder even though no build wrote them.
KEEP_NAMES = (".gitkeep",)
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100  # linux/fcntl.h


@dataclass
class Manifest:
    """Input hash and output files of each unit of a published site."""

    units: dict[str, dict] = field(default_factory=dict)
    #: What the build remembers besides the units (e.g. the results counted per source).
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, site: Path) -> Manifest:
        """The manifest of a published site (empty when there is none or it is unreadable)."""
        try:
            data = json.loads((site / MANIFEST_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if data.get("version") != MANIFEST_VERSION:
            return cls()
        return cls(units=dict(data.get("units", {})), state=dict(data.get("state", {})))

    def write(self, site: Path) -> None:
        """Write the manifest into ``site``."""
        text = json.dumps(
            {"version": MANIFEST_VERSION, "units": self.units, "state": self.state}, sort_keys=True
        )
        temporary = site / f"{MANIFEST_NAME}.{os.getpid()}"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, site / MANIFEST_NAME)


def remove_file(path: Path | str) -> None:
    """Unlink ``path`` if it exists (before writing: a file may be shared by a hard link)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def link_or_copy(source: Path, target: Path, made: set[str] | None = None) -> None:
    """Hard-link ``source`` to ``target`` (copy when linking is impossible).

    An existing ``target`` is replaced. ``made`` remembers the folders already
    created (one ``mkdir`` per folder).
    """
    parent = str(target.parent)
    if made is None or parent not in made:
        target.parent.mkdir(parents=True, exist_ok=True)
        if made is not None:
            made.add(parent)
    remove_file(target)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def keep_unit(old_site: Path, new_site: Path, files: list[str], made: set[str]) -> bool:
    """Link a unit's files from the published site; False when one of them is missing."""
    sources = [os.path.join(old_site, name) for name in files]
    if not all(os.path.isfile(path) for path in sources):
        return False
    for source, name in zip(sources, files, strict=True):
        link_or_copy(Path(source), new_site / name, made)
    return True


def holds_unit(folder: Path, files: list[str]) -> bool:
    """True when every file of a unit is in ``folder``."""
    return all(os.path.isfile(os.path.join(folder, name)) for name in files)


@contextlib.contextmanager
def build_lock(site: Path) -> Iterator[None]:
    """Hold ``<site>.lock`` so two builds of the same site never run at once."""
    site.parent.mkdir(parents=True, exist_ok=True)
    lock_path = site.parent / f".{site.name}.lock"
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IopreportError(f"another build of {site} is running (lock {lock_path})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


GENERATIONS = ("a", "b")


def generations_folder(site: Path) -> Path:
    """Folder beside ``site`` that holds its two generations."""
    return site.parent / f".{site.name}.gen"


def published_folder(site: Path) -> Path | None:
    """The folder ``site`` shows (the generation its link points at), None before any build."""
    if site.is_symlink():
        folder = site.resolve()
        return folder if folder.is_dir() else None
    return site if site.is_dir() else None


@dataclass
class Target:
    """The generation a build writes: its folder and the manifest of what it holds."""

    folder: Path
    holds: Manifest


def prepare_target(site: Path, *, full: bool) -> Target:
    """The generation to write: the one not published, with what it holds.

    With ``full``, or when the generation has no manifest (a build was interrupted
    while writing it), the generation is discarded and made empty.
    """
    gens = generations_folder(site)
    published = published_folder(site)
    first = (gens / GENERATIONS[0]).resolve()
    folder = gens / GENERATIONS[1 if published is not None and published == first else 0]
    holds = Manifest() if full else Manifest.read(folder)
    if folder.exists() and (full or not (folder / MANIFEST_NAME).is_file()):
        retire(folder, site)
    folder.mkdir(parents=True, exist_ok=True)
    remove_file(folder / MANIFEST_NAME)  # until the generation is complete again
    for keep in KEEP_NAMES:
        if (site / keep).is_file() and not (folder / keep).is_file():
            shutil.copy2(site / keep, folder / keep)
    return Target(folder=folder, holds=holds)


def remove_stale(folder: Path, holds: Manifest, new: Manifest) -> int:
    """Remove the files of ``holds`` that ``new`` does not list; returns how many."""
    stale = manifest_files(holds) - manifest_files(new)
    for name in stale:
        path = folder / name
        remove_file(path)
        with contextlib.suppress(OSError):  # the folder when it is empty now
            path.parent.rmdir()
    return len(stale)


def manifest_files(manifest: Manifest) -> set[str]:
    """Every file a manifest lists (units and the pages made on every build)."""
    files = {name for unit in manifest.units.values() for name in unit["files"]}
    files.update(manifest.state.get("files", []))
    return files


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with renameat2; False where the call is unavailable."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    return result == 0


def swap_in(folder: Path, site: Path) -> None:
    """Publish ``folder`` (a generation) at ``site``: point the link at it atomically."""
    link = site.parent / f".{site.name}.link-{os.getpid()}"
    remove_file(link)
    os.symlink(os.path.relpath(folder, site.parent), link)
    if site.is_symlink() or not site.exists():
        os.replace(link, site)  # a rename over the old link: atomic
        return
    # a plain folder published by an older iopreport: exchange it with the link
    if _exchange(link, site):
        retire(link, site)  # ``link`` now holds the old folder
        return
    old = _retired_name(site)
    os.rename(site, old)
    os.rename(link, site)
    retire(old, site)


#: ``rm -rf`` processes removing old sites (a site is thousands of folders: removing them
#: takes seconds that the published site need not wait for).
_CLEANUPS: list[subprocess.Popen] = []


def _retired_name(site: Path) -> Path:
    return site.parent / f".{site.name}.old-{os.getpid()}-{time.monotonic_ns()}"


def retire(folder: Path, site: Path) -> None:
    """Remove an old site folder in a background process (in this one where that fails)."""
    target = folder if folder.name.startswith(f".{site.name}.old-") else _retired_name(site)
    if target != folder:
        os.rename(folder, target)
    _CLEANUPS[:] = [process for process in _CLEANUPS if process.poll() is None]
    try:
        process = subprocess.Popen(
            ["rm", "-rf", "--", str(target)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        shutil.rmtree(target, ignore_errors=True)
    else:
        _CLEANUPS.append(process)


def sweep(site: Path) -> None:
    """Remove what a killed build left: old site folders, a link not yet published."""
    busy = {str(process.args[-1]) for process in _CLEANUPS if process.poll() is None}
    for folder in site.parent.glob(f".{site.name}.old-*"):
        if str(folder) not in busy:
            retire(folder, site)
    for link in site.parent.glob(f".{site.name}.link-*"):  # a build killed while publishing
        if link.is_symlink():
            remove_file(link)
        else:  # the old plain site folder, exchanged with the link
            retire(link, site)


def wait_for_cleanup() -> None:
    """Wait until the old sites being removed in the background are gone."""
    for process in _CLEANUPS:
        process.wait()
    _CLEANUPS.clear()


def discard(folder: Path, site: Path) -> None:
    """Drop a generation a failed build was writing (it is removed in the background)."""
    if folder.exists():
        retire(folder, site)
