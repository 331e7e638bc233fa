"""Download index files: resumable, checked, atomic, never twice.

This module is the only part of iopreport that fetches index files from the
network, and it runs only when asked (``iopreport index fetch``, or a
reduction with ``[astrometry] auto_download = true``). Each file goes to
``<index_dir>/<series>/<name>`` (the layout of the series' own server and of
the ``astrometry`` package's cache) through ``<name>.part``: an interrupted
download resumes with an HTTP Range request (RFC 9110 §14), the finished file
must have the series' size and a header with the expected scale and HEALPix
tile, and only then is it renamed into place.
"""

from __future__ import annotations

import http.client
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.indexfiles.identify import PARTIAL_SUFFIX, read_index_header
from iopreport.indexfiles.plan import matches
from iopreport.indexfiles.series import IndexFile
from iopreport.progress import Progress

log = logging.getLogger(__name__)

#: Bytes read per chunk.
CHUNK_BYTES = 1 << 20
#: Attempts per file; each one resumes where the last one stopped.
ATTEMPTS = 4
#: Seconds waited before each attempt after the first (a dropped connection
#: is retried at once, a server that stays away gets a little time).
RETRY_DELAYS_S = (0.0, 2.0, 5.0)
#: Seconds before a silent connection is given up (and resumed).
TIMEOUT_S = 60.0
USER_AGENT = "iopreport index fetch"


@dataclass
class FetchReport:
    """What one fetch did."""

    downloaded: list[Path] = field(default_factory=list)
    present: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # file name -> reason
    bytes_downloaded: int = 0
    unreachable: str = ""  # the server could not be reached at all: the rest is not tried

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = (
            f"{len(self.downloaded)} downloaded ({self.bytes_downloaded / 1e6:.1f} MB), "
            f"{len(self.present)} already present"
        )
        return text + (f", {len(self.failed)} failed" if self.failed else "")


def check_file(path: Path, file: IndexFile) -> str:
    """Why ``path`` is not ``file`` ("" when it is): size, then header."""
    size = path.stat().st_size
    if size != file.size:
        return f"size {size} bytes, expected {file.size}"
    try:
        header = read_index_header(path)
    except ValueError as exc:
        return str(exc)
    if not matches(header, file):
        tile = f", HEALPix {file.tile} (nside {file.nside})" if file.nside else ""
        return (
            f"header says INDEXID {header.index_id}, quads "
            f"{header.scale_lower_arcmin:.2f}'-{header.scale_upper_arcmin:.2f}', HEALPix "
            f"{header.healpix} (nside {header.nside}); expected INDEXID {file.index_id}{tile}"
        )
    return ""


def destination(index_dir: Path, file: IndexFile) -> Path:
    """Where ``file`` is kept: ``<index_dir>/<series>/<name>``."""
    return Path(index_dir).expanduser() / file.series / file.name


def _download_once(url: str, part: Path, expected: int, progress: Progress, got: list) -> None:
    """Append the rest of ``url`` to ``part`` (from its current size); raises on trouble.

    The bytes received are added to ``got[0]`` as they arrive.
    """
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have >= expected:  # nothing left to send
            return
        raise
    with response:
        mode = "ab"
        if have and response.status != 206:  # the server ignored the range: start again
            progress.update(-have)
            mode = "wb"
        with open(part, mode) as stream:
            while True:
                chunk = response.read(CHUNK_BYTES)
                if not chunk:
                    break
                stream.write(chunk)
                got[0] += len(chunk)
                progress.update(len(chunk))
            stream.flush()
            os.fsync(stream.fileno())
        length = response.headers.get("Content-Length")
        if length is not None and response.status in (200, 206):
            got = part.stat().st_size - (have if mode == "ab" else 0)
            if got < int(length):
                raise http.client.IncompleteRead(b"", int(length) - got)


def fetch_file(
    file: IndexFile, index_dir: Path, mirror_url: str, progress: Progress, report: FetchReport
) -> None:
    """Download one file unless it is already there; the outcome goes into ``report``."""
    target = destination(index_dir, file)
    if target.exists():
        reason = check_file(target, file)
        if reason:
            report.failed[file.name] = f"{target} is present but wrong ({reason}); delete it"
        else:
            report.present.append(target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PARTIAL_SUFFIX)
    if part.exists() and part.stat().st_size > file.size:
        part.unlink()
    url = file.url_from(mirror_url)
    before = part.stat().st_size if part.exists() else 0
    progress.update(before)
    error = ""
    connected = False
    received = [0]
    for attempt in range(1, ATTEMPTS + 1):
        if attempt > 1:
            time.sleep(RETRY_DELAYS_S[min(attempt - 2, len(RETRY_DELAYS_S) - 1)])
        try:
            _download_once(url, part, file.size, progress, received)
            error = ""
            break
        except urllib.error.HTTPError as exc:
            error = f"{url}: HTTP {exc.code} {exc.reason}"
            connected = True
            break  # the server answered: trying again will not help
        except urllib.error.URLError as exc:  # no connection (name, refused, TLS)
            error = f"{url}: {exc.reason}"
        except (OSError, http.client.HTTPException) as exc:  # dropped or timed out: resume
            error = f"{url}: {type(exc).__name__}: {exc}"
            connected = True
        if attempt < ATTEMPTS:
            log.info(
                "index fetch: %s (attempt %d of %d failed, resuming)", error, attempt, ATTEMPTS
            )
    if error:
        report.failed[file.name] = error + (" (the partial file is kept)" if part.exists() else "")
        if not connected and not part.exists():
            report.unreachable = urllib.parse.urlsplit(url).netloc
        return
    reason = check_file(part, file)
    if reason:
        part.unlink()
        report.failed[file.name] = f"{url}: refused: {reason}"
        return
    os.replace(part, target)
    report.downloaded.append(target)
    report.bytes_downloaded += received[0]


def fetch_files(
    files: list[IndexFile],
    index_dir: Path,
    mirror_url: str = "",
    *,
    progress: bool | None = None,
) -> FetchReport:
    """Download every file of ``files`` missing from ``index_dir`` (one after the other).

    ``progress``: None shows a bar on a terminal (log lines otherwise), False nothing.
    """
    report = FetchReport()
    if not files:
        return report
    missing = [f for f in files if not destination(index_dir, f).exists()]
    total = sum(f.size for f in missing)
    with Progress(total, "index fetch", unit="B", bytes_=True, enabled=progress) as bar:
        for file in files:
            if report.unreachable:
                report.failed[file.name] = f"not tried: {report.unreachable} cannot be reached"
                continue
            fetch_file(file, index_dir, mirror_url, bar, report)
    return report
