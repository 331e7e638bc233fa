"""Atomic publishing of the site: render into a fresh folder, then swap it in.

The published folder (``paths.site_dir``) holds a manifest, ``.manifest.json``:
for every unit of work (a page and the files made with it) the hash of its
inputs and the files it wrote. An incremental build hard-links the files of
unchanged units from the published folder into the fresh one and renders only
the others; then the fresh folder replaces the published one in one
``renameat2(RENAME_EXCHANGE)`` system call (Linux), or in two renames where
that call is missing. A build that fails removes its fresh folder and leaves
the published site as it was.
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
    state: dict[str, dict] = field(default_factory=dict)

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
        (site / MANIFEST_NAME).write_text(text, encoding="utf-8")


def link_or_copy(source: Path, target: Path, made: set[str] | None = None) -> None:
    """Hard-link ``source`` to ``target`` (copy when linking is impossible).

    ``made`` remembers the folders already created (one ``mkdir`` per folder).
    """
    parent = str(target.parent)
    if made is None or parent not in made:
        target.parent.mkdir(parents=True, exist_ok=True)
        if made is not None:
            made.add(parent)
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


def fresh_folder(site: Path) -> Path:
    """An empty folder beside ``site`` (same file system, so hard links and renames work)."""
    site.parent.mkdir(parents=True, exist_ok=True)
    folder = site.parent / f".{site.name}.new-{os.getpid()}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for name in KEEP_NAMES:
        if (site / name).is_file():
            shutil.copy2(site / name, folder / name)
    return folder


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


def swap_in(new: Path, site: Path) -> None:
    """Make ``new`` the published ``site``; the old content is removed in the background."""
    if not site.exists():
        os.rename(new, site)
        return
    if _exchange(new, site):
        retire(new, site)  # ``new`` now holds the old site
        return
    old = _retired_name(site)
    os.rename(site, old)
    os.rename(new, site)
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
    """Remove old site folders left behind by a build that was killed during its cleanup."""
    busy = {str(process.args[-1]) for process in _CLEANUPS if process.poll() is None}
    for folder in site.parent.glob(f".{site.name}.old-*"):
        if str(folder) not in busy:
            retire(folder, site)


def wait_for_cleanup() -> None:
    """Wait until the old sites being removed in the background are gone."""
    for process in _CLEANUPS:
        process.wait()
    _CLEANUPS.clear()


def discard(folder: Path) -> None:
    """Remove a fresh folder after a failed build."""
    shutil.rmtree(folder, ignore_errors=True)
