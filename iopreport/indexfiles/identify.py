"""Recognise astrometry.net index files by their FITS header, whatever their names.

An index file's primary header carries the quad-size bounds ``SCALE_L`` and
``SCALE_U`` (radians), the quad count ``NQUADS`` and, for a tile of a split
series, ``HEALPIX`` and ``HPNSIDE`` (astrometry.net ``util/index.c``,
``quadfile.c``). Any other file in the folder is reported once with the
reason it is not used. Verdicts are cached per process by path, size and
modification time, so a reduction reads each header once, not once per frame,
and a folder whose sub-folders' modification times have not changed is not
walked again (a file rewritten in place, without a rename, is not noticed
until the folder changes; downloads always rename).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

#: FITS block size (FITS Standard 4.0, §3.1).
FITS_BLOCK = 2880
#: Suffix of a download in progress (``iopreport index fetch``).
PARTIAL_SUFFIX = ".part"
#: Header keys every index file has.
REQUIRED_KEYS = ("SCALE_L", "SCALE_U", "NQUADS")


@dataclass(frozen=True)
class IndexHeader:
    """What an index file's primary header says about it."""

    path: Path
    scale_lower_arcmin: float
    scale_upper_arcmin: float
    index_id: int | None
    healpix: int  # -1: all sky
    nside: int  # 0: all sky
    n_quads: int
    n_stars: int

    @property
    def all_sky(self) -> bool:
        return self.healpix < 0 or self.nside <= 0


@dataclass
class IndexScan:
    """The index files of a folder, and the files that are not (with why)."""

    directory: Path
    index: list[IndexHeader] = field(default_factory=list)
    rejected: dict[Path, str] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [header.path for header in self.index]


#: Cards of the primary header that :func:`read_index_header` parses.
INDEX_CARDS = (b"SIMPLE", *(k.encode() for k in REQUIRED_KEYS), b"INDEXID", b"HEALPIX")
INDEX_CARDS += (b"HPNSIDE", b"NSTARS")
#: A primary header longer than this many blocks is not an index file's.
MAX_HEADER_BLOCKS = 200


def _primary_header_cards(path: Path) -> bytes:
    """The index cards of the primary header of ``path`` (raw 80-byte cards)."""
    cards = []
    with open(path, "rb") as stream:
        for _ in range(MAX_HEADER_BLOCKS):
            block = stream.read(FITS_BLOCK)
            if len(block) < FITS_BLOCK:
                raise ValueError("FITS header without END")
            for start in range(0, FITS_BLOCK, 80):
                card = block[start : start + 80]
                key = card[:8].rstrip()
                if key == b"END":
                    return b"".join(cards)
                if key in INDEX_CARDS:
                    cards.append(card)
    raise ValueError(f"FITS header longer than {MAX_HEADER_BLOCKS} blocks")


def read_index_header(path: Path) -> IndexHeader:
    """The index keys of ``path``; ``ValueError`` saying why it is not an index file.

    Only the primary header's few index cards are parsed (by astropy), so a
    folder of index files is checked in about 0.1 ms per file.
    """
    from astropy.io import fits

    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as stream:
        start = stream.read(30)
    if not start.startswith(b"SIMPLE  ="):
        raise ValueError("not a FITS file")
    if size % FITS_BLOCK:
        raise ValueError(f"incomplete FITS file ({size} bytes, not a multiple of {FITS_BLOCK})")
    try:
        header = fits.Header.fromstring(_primary_header_cards(path))
    except ValueError:
        raise
    except Exception as exc:  # astropy raises several kinds for a damaged card
        raise ValueError(f"unreadable FITS header: {exc}") from None
    missing = [key for key in REQUIRED_KEYS if key not in header]
    if missing:
        raise ValueError(f"FITS file without the index keys {', '.join(missing)}")
    arcmin = 60.0 * 180.0 / math.pi
    try:
        return IndexHeader(
            path=path,
            scale_lower_arcmin=float(header["SCALE_L"]) * arcmin,
            scale_upper_arcmin=float(header["SCALE_U"]) * arcmin,
            index_id=int(header["INDEXID"]) if "INDEXID" in header else None,
            healpix=int(header.get("HEALPIX", -1)),
            nside=int(header.get("HPNSIDE", 0)),
            n_quads=int(header["NQUADS"]),
            n_stars=int(header.get("NSTARS", 0)),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad index keys: {exc}") from None


#: path -> (size, mtime_ns, header or reason): each header is read once per process.
_CACHE: dict[str, tuple[int, int, IndexHeader | str]] = {}


def _verdict(path: Path, stat: os.stat_result) -> IndexHeader | str:
    key = str(path)
    cached = _CACHE.get(key)
    if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
        return cached[2]
    if path.name.endswith(PARTIAL_SUFFIX):
        verdict: IndexHeader | str = "download in progress (`iopreport index fetch` resumes it)"
    else:
        try:
            verdict = read_index_header(path)
        except (OSError, ValueError) as exc:
            verdict = str(exc)
    _CACHE[key] = (stat.st_size, stat.st_mtime_ns, verdict)
    return verdict


def _folder_signature(directory: Path) -> tuple:
    """Modification time and file names of ``directory`` and of its sub-folders."""
    signature = []
    pending = [str(directory)]
    while pending:
        folder = pending.pop()
        try:
            mtime = os.stat(folder).st_mtime_ns
            with os.scandir(folder) as entries:
                visible = [e for e in entries if not e.name.startswith(".")]
            names = tuple(sorted(e.name for e in visible))
            signature.append((folder, mtime, names))
            pending += [e.path for e in visible if e.is_dir(follow_symlinks=True)]
        except OSError:
            signature.append((folder, -1, ()))
    return tuple(sorted(signature))


#: directory -> (signature, scan): a folder unchanged since the last scan is not walked again.
_FOLDERS: dict[str, tuple[tuple, IndexScan]] = {}


def scan_index_folder(directory: Path) -> IndexScan:
    """Every file under ``directory`` (any name, any depth), sorted into index files and others.

    Hidden files (``.name``) are skipped. A missing folder gives an empty scan.
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        return IndexScan(directory)
    signature = _folder_signature(directory)
    cached = _FOLDERS.get(str(directory))
    if cached is not None and cached[0] == signature:
        return cached[1]
    scan = IndexScan(directory)
    for root, folders, names in os.walk(directory, followlinks=True):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(root) / name
            try:
                stat = path.stat()
            except OSError as exc:
                scan.rejected[path] = f"cannot read: {exc.strerror}"
                continue
            verdict = _verdict(path, stat)
            if isinstance(verdict, str):
                scan.rejected[path] = verdict
            else:
                scan.index.append(verdict)
    scan.index.sort(key=lambda header: str(header.path))
    _FOLDERS[str(directory)] = (signature, scan)
    return scan
