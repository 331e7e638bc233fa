"""Registration of a night's raw files: hash, spot duplicates, classify, RawFit rows.

A file unchanged since an earlier run (same SHA-256, a plausible stored
classification) is not classified again; byte-identical files are reduced
once. A file whose stamp (size, times, inode) is the one stored with its
SHA-256 is not even read again: a campaign over years of registered nights
does not hash its terabytes anew. See docs/architecture.md (reduction).
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import os
from pathlib import Path

from peewee import chunked

from iopreport.fileio import file_stamp, sha256_of
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.nightlayout import FITS_NAME
from iopreport.reduce.classify import (
    JD_PLAUSIBLE,
    ClassificationError,
    FrameInfo,
    classify_file,
)
from iopreport.reduce.state import NightReport
from iopreport.store import Epoch, RawFit, RawFitFlags
from iopreport.store.models import database_proxy

log = logging.getLogger(__name__)


def register(
    epoch: Epoch,
    folder: Path,
    force: bool,
    report: NightReport,
    infos: dict[str, FrameInfo],
    registry: InstrumentRegistry,
) -> list[RawFit]:
    """RawFit rows for every file, classified with ``registry`` (again when the file
    changed); the classifications made are kept in ``infos`` by file name."""
    rawfits = []
    paths = [p for p in sorted(folder.iterdir()) if p.is_file() and FITS_NAME.match(p.name)]
    # one query for the night's rows and one transaction for the night: the new files'
    # rows in a few multi-row INSERTs, a changed file's row one UPDATE
    known = _night_rows(epoch)
    stamps = [file_stamp(path.stat()) for path in paths]  # before hashing: a later write shows
    checksums = _checksums(paths, stamps, known, force)
    originals = originals_of(epoch, [p.name for p in paths], checksums)
    new = []
    with database_proxy.atomic():
        for path, checksum, stamp in zip(paths, checksums, stamps, strict=True):
            report.files += 1
            rawfit = known.get(path.name) or RawFit(epoch=epoch, filename=path.name)
            changed = _register_file(
                rawfit, path, checksum, originals, force, report, infos, registry
            )
            if rawfit.file_stamp != stamp:
                rawfit.file_stamp = stamp
                changed = True
            if changed:
                if rawfit.id is None:
                    new.append(rawfit)
                else:
                    rawfit.save()
            rawfits.append(rawfit)
        # every row with every column: insert_many takes its columns from the first row
        columns = [f.name for f in RawFit._meta.sorted_fields if f is not RawFit.id]
        rows = [{name: rawfit.__data__.get(name) for name in columns} for rawfit in new]
        for batch in chunked(rows, INSERT_BATCH):
            RawFit.insert_many(batch).execute()
    if new:  # the ids the INSERTs gave
        known = _night_rows(epoch)
        rawfits = [known[rawfit.filename] for rawfit in rawfits]
    return rawfits


def _checksums(
    paths: list[Path], stamps: list[str], known: dict[str, RawFit], force: bool
) -> list[str]:
    """Each file's SHA-256: the stored one when the file's stamp is the one stored
    with it (:func:`iopreport.fileio.file_stamp`: the file was not written since),
    else read and hashed (every file with ``force``)."""
    stored: dict[Path, str] = {}
    for path, stamp in zip(paths, stamps, strict=True):
        rawfit = known.get(path.name)
        if not force and rawfit is not None and rawfit.sha256 and rawfit.file_stamp == stamp:
            stored[path] = rawfit.sha256
    unknown = [path for path in paths if path not in stored]
    # hashing is most of this stage and hashlib releases the GIL: a thread per core
    with futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as threads:
        stored.update(zip(unknown, threads.map(sha256_of, unknown), strict=True))
    return [stored[path] for path in paths]


#: Rows per multi-row INSERT (SQLite allows 32,766 parameters per statement).
INSERT_BATCH = 500


def _night_rows(epoch: Epoch) -> dict[str, RawFit]:
    """The night's RawFit rows by file name, each holding ``epoch`` (no query to reach it)."""
    rows = {}
    for rawfit in RawFit.select().where(RawFit.epoch == epoch):
        rawfit.epoch = epoch
        rows[rawfit.filename] = rawfit
    return rows


def _register_file(
    rawfit: RawFit,
    path: Path,
    checksum: str,
    originals: dict[str, str],
    force: bool,
    report: NightReport,
    infos: dict[str, FrameInfo],
    registry: InstrumentRegistry,
) -> bool:
    """Record, and classify when it is new or changed, one file of the night.

    Returns whether ``rawfit`` changed (the caller writes it)."""
    if originals[checksum] != path.name:  # byte-identical to another file: reduced once
        reason = f"duplicate of {originals[checksum]} (same SHA-256)"
        if rawfit.sha256 != checksum or rawfit.error != reason:
            log.warning("%s: %s; not reduced again", path.name, reason)
        rawfit.sha256 = checksum
        rawfit.size_bytes = path.stat().st_size
        rawfit.flags = RawFitFlags.DOWNLOADED | RawFitFlags.DUPLICATE
        rawfit.error = reason
        return True
    unchanged = (
        rawfit.sha256 == checksum
        and rawfit.flags & (RawFitFlags.CLASSIFIED | RawFitFlags.ERROR_CLASSIFY)
        and plausible(rawfit)  # classified by an iopreport that checked less
    )
    if unchanged and not force:
        if rawfit.error:
            report.unclassified[path.name] = rawfit.error
        return False
    rawfit.sha256 = checksum
    rawfit.size_bytes = path.stat().st_size
    try:
        info = classify_file(path, rawfit.epoch.telescope, rawfit.epoch.night, registry)
    except ClassificationError as exc:
        rawfit.flags = RawFitFlags.DOWNLOADED | RawFitFlags.ERROR_CLASSIFY
        rawfit.error = f"classify: {exc}"
        report.unclassified[path.name] = rawfit.error
        log.warning("%s: %s", path.name, rawfit.error)
    else:
        infos[path.name] = info
        rawfit.flags = RawFitFlags.DOWNLOADED | RawFitFlags.CLASSIFIED
        rawfit.error = ""
        rawfit.instrument = info.instrument
        rawfit.imgtype = info.imgtype
        rawfit.obsmode = info.obsmode
        rawfit.band = info.band
        rawfit.angle = info.angle
        rawfit.juliandate = info.juliandate
        rawfit.exptime = info.exptime
        rawfit.binning = info.binning_text
        rawfit.imgsize = info.imgsize
        rawfit.object_name = info.object_name
    return True


def plausible(rawfit: RawFit) -> bool:
    """A stored classification within today's header ranges (else the file is classified again)."""
    if not rawfit.flags & RawFitFlags.CLASSIFIED:
        return True
    low, high = JD_PLAUSIBLE
    exptime = rawfit.exptime if rawfit.exptime is not None else 0.0
    return (
        rawfit.juliandate is not None
        and low <= rawfit.juliandate <= high
        and (exptime > 0 or (exptime == 0 and rawfit.imgtype == "bias"))
    )


def originals_of(epoch: Epoch, names: list[str], checksums: list[str]) -> dict[str, str]:
    """For each checksum of a night, the file that stands for it (the others are duplicates).

    The file already classified under that checksum keeps its place (its results
    stay); otherwise the first name in sorted order.
    """
    stored = {
        rawfit.sha256: rawfit.filename
        for rawfit in RawFit.select(RawFit.filename, RawFit.sha256)
        .where(
            (RawFit.epoch == epoch)
            & (RawFit.flags.bin_and(int(RawFitFlags.CLASSIFIED)) != 0)
            & RawFit.filename.in_(names)
        )
        .order_by(RawFit.filename.desc())
    }
    originals: dict[str, str] = {}
    for name, checksum in zip(names, checksums, strict=True):
        originals.setdefault(checksum, stored.get(checksum, name))
    return originals
