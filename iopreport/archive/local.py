"""A local folder laid out like a telescope archive (the :class:`Archive` of protocol "local").

Copies go through the same verified, atomic, read-only download as FTP and
SFTP (:func:`iopreport.archive.nightdownload.download_night`); here the
archive's own SHA-256 is known, so every copy is checked against it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from iopreport.archive.base import ArchiveError, RemoteFile, listed_file
from iopreport.fileio import sha256_of
from iopreport.nightlayout import night_layout, walk_nights

#: Bytes per read when copying.
BLOCK_SIZE = 1 << 20


def _folders(path: str) -> list[str]:
    return [p.name for p in Path(path).iterdir() if p.is_dir()]


def list_nights(root: Path, telescope: str, pattern: str = "") -> list[dt.date]:
    """Nights present in a local archive root, oldest first."""
    if not root.is_dir():
        return []
    layout = night_layout(telescope, pattern)
    return walk_nights(layout, _folders, str(root), lambda a, b: str(Path(a) / b))[0]


class LocalArchive:
    """A folder on this machine with the archive's night folders."""

    def __init__(self, root: Path, telescope: str, pattern: str = ""):
        self.root = Path(root)
        self.telescope = telescope
        self.layout = night_layout(telescope, pattern)
        self.unmatched_folders: list[str] = []  # of the last list_nights

    def list_nights(self) -> list[dt.date]:
        if not self.root.is_dir():
            raise ArchiveError(f"{self.root}: archive folder not found")
        nights, self.unmatched_folders = walk_nights(
            self.layout, _folders, str(self.root), lambda a, b: str(Path(a) / b)
        )
        return nights

    def list_files(self, night: dt.date) -> list[RemoteFile]:
        folder = self.root / self.layout.folder(night)
        if not folder.is_dir():
            raise ArchiveError(f"{folder}: night folder not found in the archive")
        files = []
        for path in sorted(folder.iterdir()):
            if path.is_file():
                info = path.stat()
                join = lambda base, name: str(Path(base) / name)  # noqa: E731
                files.append(listed_file(path.name, info.st_size, info.st_mtime, str(folder), join))
        return files

    def download(self, remote: RemoteFile, dest_part: Path, offset: int) -> None:
        try:
            with (
                open(remote.path, "rb") as source,
                open(dest_part, "r+b" if dest_part.exists() else "wb") as out,
            ):
                out.truncate(offset)
                out.seek(offset)
                source.seek(offset)
                for block in iter(lambda: source.read(BLOCK_SIZE), b""):
                    out.write(block)
        except OSError as exc:
            raise ArchiveError(f"{remote.path}: {exc.strerror or exc}") from exc

    def checksum(self, remote: RemoteFile) -> str | None:
        return f"sha256:{sha256_of(Path(remote.path))}"

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass
