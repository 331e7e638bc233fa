"""SFTP archives (CAHA T220) with paramiko.

Host keys: keys in the system and ``~/.ssh/known_hosts`` files are checked (a
changed key is refused); a host with no known key is accepted with a warning,
as the reference pipeline does. Put the archive's key into ``known_hosts`` to
pin it. Downloads resume by seeking the remote file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import posixpath
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import paramiko

from iopreport.archive.base import MAX_LISTING_ENTRIES, ArchiveError, RemoteFile, listed_file
from iopreport.config import ArchiveConfig
from iopreport.nightlayout import night_layout, walk_nights

log = logging.getLogger(__name__)

#: Bytes per read of a transfer.
BLOCK_SIZE = 1 << 15

SFTP_ERRORS = (paramiko.SSHException, OSError, EOFError, socket.timeout)


class _WarnUnknownHostKey(paramiko.MissingHostKeyPolicy):
    """Accept a host with no known key, logging its fingerprint (a changed key is refused)."""

    def missing_host_key(self, client, hostname, key):
        log.warning(
            "%s: host key %s %s is not in known_hosts; accepted (add it to pin it)",
            hostname,
            key.get_name(),
            key.fingerprint if hasattr(key, "fingerprint") else key.get_fingerprint().hex(),
        )


class SftpArchive:
    """One SFTP archive; the session opens on first use and reopens after an error."""

    def __init__(self, config: ArchiveConfig):
        self.config = config
        self.telescope = config.telescope
        self.layout = night_layout(config.telescope, config.night_folder)
        self.unmatched_folders: list[str] = []  # of the last list_nights
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    @property
    def where(self) -> str:
        return f"sftp://{self.config.host}:{self.config.effective_port}"

    def _session(self) -> paramiko.SFTPClient:
        if self._sftp is not None:
            return self._sftp
        client = paramiko.SSHClient()
        client.load_system_host_keys()
        client.set_missing_host_key_policy(_WarnUnknownHostKey())
        password = self.config.password()
        timeout = self.config.timeout_s
        try:
            client.connect(
                self.config.host,
                port=self.config.effective_port,
                username=self.config.user or None,
                password=password or None,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                allow_agent=False,
                look_for_keys=not password,
            )
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(timeout)
        except paramiko.SSHException as exc:
            # paramiko may report a later symptom ("No existing session"); the
            # transport keeps the first cause (e.g. no banner before the timeout)
            transport = client.get_transport()
            if transport is not None:
                transport.join(timeout=2)  # its thread records the first cause as it ends
            cause = getattr(transport, "saved_exception", None) if transport else None
            client.close()
            if isinstance(cause, Exception) and cause is not exc:
                raise paramiko.SSHException(str(cause)) from exc
            raise
        except BaseException:
            client.close()
            raise
        self._client, self._sftp = client, sftp
        return sftp

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except ArchiveError:
            self.reset()
            raise
        except FileNotFoundError as exc:
            raise ArchiveError(f"{self.where}: {what}: no such file or folder") from exc
        except UnicodeDecodeError as exc:  # paramiko decodes every name of a listing as UTF-8
            self.reset()
            raise ArchiveError(f"{self.where}: {what}: a name is not UTF-8 ({exc})") from exc
        except SFTP_ERRORS as exc:
            self.reset()
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError | socket.timeout):
                reason = f"no answer within {self.config.timeout_s:g} s"
            elif "banner" in reason:
                reason = f"no SSH greeting within {self.config.timeout_s:g} s ({reason})"
            raise ArchiveError(f"{self.where}: {what}: {reason}") from exc

    def reset(self) -> None:
        for closable in (self._sftp, self._client):
            if closable is not None:
                with contextlib.suppress(Exception):
                    closable.close()
        self._client = self._sftp = None

    def close(self) -> None:
        self.reset()

    def list_nights(self) -> list[dt.date]:
        def folders(path: str) -> list[str]:
            return [
                entry.filename
                for entry in self._listing(path)
                if entry.st_mode is None or stat.S_ISDIR(entry.st_mode)
            ]

        with self._errors(f"listing {self.config.root}"):
            nights, self.unmatched_folders = walk_nights(
                self.layout, folders, self.config.root, posixpath.join
            )
        return nights

    def list_files(self, night: dt.date) -> list[RemoteFile]:
        folder = posixpath.join(self.config.root, self.layout.folder(night))
        with self._errors(f"listing {folder}"):
            entries = self._listing(folder)
        return sorted(
            (
                listed_file(
                    entry.filename,
                    entry.st_size if entry.st_size is not None else 0,
                    float(entry.st_mtime) if entry.st_mtime is not None else None,
                    folder,
                    posixpath.join,
                )
                for entry in entries
                if entry.st_mode is not None and stat.S_ISREG(entry.st_mode)
            ),
            key=lambda remote: remote.name,
        )

    def _listing(self, folder: str) -> list[paramiko.SFTPAttributes]:
        """A folder's entries, at most MAX_LISTING_ENTRIES (an endless listing is abandoned)."""
        entries = []
        for entry in self._session().listdir_iter(folder):
            if len(entries) >= MAX_LISTING_ENTRIES:
                raise ArchiveError(
                    f"{self.where}: listing {folder}: more than {MAX_LISTING_ENTRIES} entries; "
                    "listing abandoned"
                )
            entries.append(entry)
        return entries

    def download(self, remote: RemoteFile, dest_part: Path, offset: int) -> None:
        with self._errors(f"downloading {remote.path}"):
            sftp = self._session()
            with (
                sftp.open(remote.path, "rb") as source,
                open(dest_part, "r+b" if dest_part.exists() else "wb") as out,
            ):
                out.truncate(offset)
                out.seek(offset)
                source.seek(offset)
                source.prefetch(max(0, remote.size - offset))
                while block := source.read(BLOCK_SIZE):
                    out.write(block)

    def checksum(self, remote: RemoteFile) -> str | None:
        """SFTP servers rarely offer hashes (the check-file extension): sizes are verified."""
        return None
