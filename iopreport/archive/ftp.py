"""FTP archives (OSN T090 and T150) with :mod:`ftplib`.

Listings use MLSD (sizes and UTC modification times in a defined format) and
fall back to parsing ``LIST`` lines when the server does not know MLSD.
Downloads are binary and resume with ``REST``. When the server advertises the
``HASH`` command (draft-bryan-ftpext-hash), its SHA-256/SHA-1/MD5 is used to
verify each file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ftplib
import logging
import posixpath
import re
import socket
from collections.abc import Iterator
from pathlib import Path

from iopreport.archive.base import MAX_LISTING_ENTRIES, ArchiveError, RemoteFile, listed_file
from iopreport.config import ArchiveConfig
from iopreport.nightlayout import FITS_NAME, night_layout, walk_nights

log = logging.getLogger(__name__)

#: Errors ftplib and the socket layer raise for a failed command or connection.
FTP_ERRORS = (*ftplib.all_errors, socket.timeout)

#: Bytes per read of a binary transfer.
BLOCK_SIZE = 1 << 16

#: HASH algorithm names (RFC draft) -> hashlib names, in order of preference.
HASH_ALGORITHMS = {"SHA-256": "sha256", "SHA-512": "sha512", "SHA-1": "sha1", "MD5": "md5"}

# Unix ``ls -l`` lines: type+mode, links, owner, group, size, date, name.
_UNIX_LIST = re.compile(
    r"^(?P<type>[-dlbcps])\S{9}\S*\s+\d+\s+\S+\s+\S+\s+(?P<size>\d+)\s+"
    r"\w{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4})\s+(?P<name>.+)$"
)
# DOS/IIS lines: date, time, <DIR> or size, name.
_DOS_LIST = re.compile(
    r"^\d{2}-\d{2}-\d{2,4}\s+\d{1,2}:\d{2}(?:AM|PM)?\s+(?P<size><DIR>|\d+)\s+(?P<name>.+)$",
    re.IGNORECASE,
)


def parse_list_line(line: str) -> tuple[str, str, int] | None:
    """(name, "dir"|"file"|"other", size) from one LIST line, or None if not understood."""
    if match := _UNIX_LIST.match(line):
        kind = {"-": "file", "d": "dir"}.get(match["type"], "other")
        name = match["name"]
        if match["type"] == "l":
            name = name.split(" -> ", 1)[0]
        return name, kind, int(match["size"])
    if match := _DOS_LIST.match(line):
        is_dir = match["size"].upper() == "<DIR>"
        return match["name"], "dir" if is_dir else "file", 0 if is_dir else int(match["size"])
    return None


def parse_mlsd_time(value: str) -> float | None:
    """POSIX seconds from an MLSD ``modify`` fact (``YYYYMMDDHHMMSS[.sss]``, UTC)."""
    try:
        stamp = dt.datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return stamp.timestamp()


class FtpArchive:
    """One FTP archive; the connection opens on first use and reopens after an error."""

    def __init__(self, config: ArchiveConfig):
        self.config = config
        self.telescope = config.telescope
        self.layout = night_layout(config.telescope, config.night_folder)
        self.unmatched_folders: list[str] = []  # of the last list_nights
        self._ftp: ftplib.FTP | None = None
        self._features: set[str] = set()
        self._use_mlsd = True

    # -- connection -------------------------------------------------------------
    @property
    def where(self) -> str:
        return f"ftp://{self.config.host}:{self.config.effective_port}"

    def _connection(self) -> ftplib.FTP:
        if self._ftp is not None:
            return self._ftp
        ftp = ftplib.FTP(encoding=self.config.encoding, timeout=self.config.timeout_s)
        try:
            ftp.connect(self.config.host, self.config.effective_port)
            ftp.login(self.config.user or "anonymous", self.config.password())
            ftp.voidcmd("TYPE I")
            self._features = _features(ftp)
        except BaseException:
            ftp.close()
            raise
        self._use_mlsd = "MLSD" in self._features or "MLST" in self._features
        self._ftp = ftp
        return ftp

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except ArchiveError:
            self.reset()
            raise
        except ftplib.error_perm as exc:
            raise ArchiveError(f"{self.where}: {what}: {exc}", permanent=True) from exc
        except (*FTP_ERRORS, UnicodeDecodeError) as exc:
            self.reset()
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError | socket.timeout):
                reason = f"no answer within {self.config.timeout_s:g} s"
            raise ArchiveError(f"{self.where}: {what}: {reason}") from exc

    def reset(self) -> None:
        if self._ftp is not None:
            with contextlib.suppress(Exception):
                self._ftp.close()
        self._ftp = None

    def close(self) -> None:
        if self._ftp is not None:
            with contextlib.suppress(Exception):
                self._ftp.quit()
        self.reset()

    # -- listings ---------------------------------------------------------------
    def _lines(self, command: str) -> list[str]:
        """The lines a listing command sends, decoded with ``encoding``.

        Bytes that do not decode are kept as surrogate escapes (the name check
        refuses such names one by one instead of failing the listing). At most
        MAX_LISTING_ENTRIES lines of at most ``ftplib.FTP.maxline`` bytes are
        read: an endless listing is abandoned with an :class:`ArchiveError`.
        """
        ftp = self._connection()
        ftp.voidcmd("TYPE A")
        lines: list[str] = []
        with ftp.transfercmd(command) as conn, conn.makefile("rb") as stream:
            while raw := stream.readline(ftp.maxline + 1):
                if len(raw) > ftp.maxline or len(lines) >= MAX_LISTING_ENTRIES:
                    raise ArchiveError(
                        f"{self.where}: {command}: longer than {MAX_LISTING_ENTRIES} entries "
                        f"or a line over {ftp.maxline} bytes; listing abandoned"
                    )
                text = raw.decode(self.config.encoding, errors="surrogateescape")
                lines.append(text.rstrip("\r\n"))
        ftp.voidresp()
        return lines

    def _entries(self, path: str) -> list[tuple[str, str, str, float | None]]:
        """(name, kind, size as listed, mtime) of a folder's entries."""
        if self._use_mlsd:
            try:
                lines = self._lines(f"MLSD {path}")
            except ftplib.error_perm as exc:
                if not str(exc).startswith(("500", "502", "504")):
                    raise
                log.info("%s: MLSD refused (%s); using LIST", self.where, exc)
                self._use_mlsd = False
            else:
                entries = []
                for line in lines:
                    facts_text, _, name = line.rstrip("\r\n").partition(" ")
                    facts = {}
                    for fact in facts_text[:-1].split(";") if facts_text.endswith(";") else ():
                        key, _, value = fact.partition("=")
                        facts[key.lower()] = value
                    kind = facts.get("type", "").lower()
                    if kind in ("cdir", "pdir"):
                        continue
                    if not kind:  # reported with the listing, never used
                        entries.append((line, "bad", "0", None))
                        continue
                    kind = kind if kind in ("file", "dir") else "other"
                    mtime = parse_mlsd_time(facts["modify"]) if "modify" in facts else None
                    entries.append((name, kind, facts.get("size", "0") or "0", mtime))
                return entries
        lines = self._lines(f"LIST {path}")
        entries = []
        for line in lines:
            parsed = parse_list_line(line)
            if parsed is None:
                if line.strip() and not line.startswith("total"):
                    log.warning("%s: LIST line not understood: %r", self.where, line)
                continue
            name, kind, size = parsed
            prefix = path.rstrip("/") + "/"
            if name.startswith(prefix):  # servers that list "LIST /a" as "/a/x.fits"
                name = name[len(prefix) :]
            entries.append((name, kind, str(size), None))
        return entries

    def list_nights(self) -> list[dt.date]:
        def folders(path: str) -> list[str]:
            return [name for name, kind, _, _ in self._entries(path) if kind in ("dir", "other")]

        with self._errors(f"listing {self.config.root}"):
            nights, self.unmatched_folders = walk_nights(
                self.layout, folders, self.config.root, posixpath.join
            )
        return nights

    def list_files(self, night: dt.date) -> list[RemoteFile]:
        folder = posixpath.join(self.config.root, self.layout.folder(night))
        with self._errors(f"listing {folder}"):
            entries = self._entries(folder)
        files = []
        for name, kind, size, mtime in entries:
            if kind == "file":
                files.append(listed_file(name, size, mtime, folder, posixpath.join))
            elif kind == "bad":
                files.append(RemoteFile(repr(name), 0, refused="MLSD line not understood"))
            elif kind == "other" and FITS_NAME.match(name):  # a link or device named like FITS
                files.append(RemoteFile(repr(name), 0, refused="not a regular file"))
        return sorted(files, key=lambda remote: remote.name)

    # -- transfers --------------------------------------------------------------
    def download(self, remote: RemoteFile, dest_part: Path, offset: int) -> None:
        with self._errors(f"downloading {remote.path}"):
            ftp = self._connection()
            ftp.voidcmd("TYPE I")
            with open(dest_part, "r+b" if dest_part.exists() else "wb") as out:
                out.truncate(offset)
                out.seek(offset)
                ftp.retrbinary(f"RETR {remote.path}", out.write, BLOCK_SIZE, rest=offset or None)

    def checksum(self, remote: RemoteFile) -> str | None:
        """The server's hash of the file, when it offers the HASH command."""
        if "HASH" not in self._features:
            return None
        with self._errors(f"HASH {remote.path}"):
            reply = self._connection().sendcmd(f"HASH {remote.path}")
        # "213 SHA-256 0-1234 <hex> <name>"
        parts = reply.split()
        if len(parts) >= 4 and parts[0] == "213" and parts[1].upper() in HASH_ALGORITHMS:
            return f"{HASH_ALGORITHMS[parts[1].upper()]}:{parts[3].lower()}"
        log.warning("%s: HASH reply not understood: %r", self.where, reply)
        return None


def _features(ftp: ftplib.FTP) -> set[str]:
    """Command names the server lists in its FEAT reply (empty if it has no FEAT)."""
    try:
        reply = ftp.sendcmd("FEAT")
    except ftplib.error_perm:
        return set()
    names = set()
    for line in reply.splitlines()[1:-1]:
        if line.strip():
            names.add(line.split()[0].upper())
    return names
