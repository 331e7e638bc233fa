"""The archive backend a ``[archives.<TELESCOPE>]`` table asks for (FTP, SFTP, local)."""

from __future__ import annotations

from pathlib import Path

from iopreport.archive.base import Archive
from iopreport.archive.ftp import FtpArchive
from iopreport.archive.local import LocalArchive
from iopreport.archive.sftp import SftpArchive
from iopreport.config import ArchiveConfig


def open_archive(config: ArchiveConfig) -> Archive:
    """The backend for one ``[archives.<TELESCOPE>]`` table."""
    if config.protocol == "ftp":
        return FtpArchive(config)
    if config.protocol == "sftp":
        return SftpArchive(config)
    if config.protocol == "local":
        return LocalArchive(Path(config.root), config.telescope, config.night_folder)
    raise ValueError(f"unknown archive protocol {config.protocol!r}")
