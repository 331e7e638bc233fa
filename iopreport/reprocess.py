"""A reprocessing campaign: every night with raw data in a period, reduced again.

``iopreport reprocess --from DATE --to DATE`` runs in three stages, each
resumable:

1. the masters of every night, in date order and a few nights at a time, so
   that a night without its own calibrations may borrow a later night's
   (``processing.master_validity_days``, nearest night first);
2. the frames of each date (its telescopes together in one pool), then that
   date's polarimetry and host correction;
3. the site build, once.

A journal in ``<datadir>/campaigns/`` records each finished step (written
atomically); a campaign killed at any point and started again with the same
arguments continues after the last recorded step, and work inside an
unfinished step that is unchanged is skipped by the reduction itself
(``reduced_fit.inputs_key``). Progress shows nights and frames done, the rate
and the time left (:mod:`iopreport.progress`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.config import Config
from iopreport.fileio import write_text_atomic
from iopreport.nightlayout import FITS_NAME
from iopreport.progress import Progress

log = logging.getLogger(__name__)

#: Nights whose masters are built in one run of the pool (keeps both workers busy).
MASTER_BATCH_NIGHTS = 8
#: Journal format version (a journal of another version is started afresh).
JOURNAL_VERSION = 1


@dataclass
class NightLine:
    """One night of a campaign, for the final table."""

    telescope: str
    night: dt.date
    files: int
    frames_reduced: int = 0
    frames_unchanged: int = 0
    frames_failed: int = 0
    masters_failed: int = 0
    error: str = ""  # the whole night failed (an exception), retried on resume
    resumed: bool = False  # finished by an earlier run of the campaign


@dataclass
class CampaignReport:
    """What :func:`reprocess` did."""

    nights: list[NightLine] = field(default_factory=list)
    seconds: float = 0.0
    built: bool = False
    build_summary: str = ""

    @property
    def failed(self) -> bool:
        return any(n.error or n.frames_failed or n.masters_failed for n in self.nights)

    def table(self) -> str:
        """Nights, frames and failures per telescope, and the total."""
        rows: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
        for line in self.nights:
            for key in (line.telescope, "total"):
                row = rows[key]
                row[0] += 1
                row[1] += line.files
                row[2] += line.frames_reduced
                row[3] += line.frames_unchanged
                row[4] += line.frames_failed + line.masters_failed
                row[5] += bool(line.error)
        header = ("telescope", "nights", "files", "reduced", "unchanged", "failed", "nights failed")
        body = [(name, *values) for name, values in rows.items() if name != "total"]
        body.sort()
        if "total" in rows:
            body.append(("total", *rows["total"]))
        widths = [max(len(str(r[i])) for r in (header, *body)) for i in range(len(header))]
        lines = ["  ".join(str(v).rjust(w) for v, w in zip(r, widths, strict=True)) for r in body]
        head = "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
        return "\n".join([head, *lines])


def campaign_nights(
    config: Config, start: dt.date, end: dt.date, telescopes: list[str] | None = None
) -> list[tuple[str, dt.date]]:
    """(telescope, night) of every raw night folder in ``start``..``end``, in date order."""
    raw = config.paths.data_subdir("raw")
    found = []
    if not raw.is_dir():
        return found
    for folder in sorted(raw.iterdir()):
        if not folder.is_dir() or (telescopes and folder.name not in telescopes):
            continue
        for night_dir in folder.iterdir():
            try:
                night = dt.date.fromisoformat(night_dir.name)
            except ValueError:
                continue
            if night_dir.is_dir() and start <= night <= end:
                found.append((folder.name, night))
    return sorted(found, key=lambda item: (item[1], item[0]))


def _files(config: Config, telescope: str, night: dt.date) -> int:
    from iopreport.reduce.night import raw_night_dir

    folder = raw_night_dir(config, telescope, night)
    return sum(1 for p in folder.iterdir() if p.is_file() and FITS_NAME.match(p.name))


class Journal:
    """The steps a campaign has finished, kept in a JSON file beside the data."""

    def __init__(self, path: Path, key: dict) -> None:
        self.path = path
        self.key = key
        self.state = {"version": JOURNAL_VERSION, "key": key, "masters": [], "nights": []}
        if path.is_file():
            saved = _read_journal(path)
            same = saved.get("version") == JOURNAL_VERSION and saved.get("key") == key
            if same and not saved.get("finished"):
                self.state = saved

    @staticmethod
    def name(night: tuple[str, dt.date]) -> str:
        return f"{night[0]} {night[1].isoformat()}"

    def done(self, stage: str, night: tuple[str, dt.date]) -> bool:
        return self.name(night) in self.state[stage]

    def record(self, stage: str, nights: list[tuple[str, dt.date]], **extra) -> None:
        self.state[stage] += [self.name(n) for n in nights if not self.done(stage, n)]
        self.state.update(extra)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(self.state, indent=1) + "\n")


def _read_journal(path: Path) -> dict:
    """A saved journal's state, or ``{}`` (with a warning naming the file and what is wrong)
    when it cannot be read or is not a journal: the campaign then starts afresh, which
    redoes nothing unchanged (the reduction skips what it has stored)."""
    try:
        saved = json.loads(path.read_text())
        problem = _not_a_journal(saved)
    except (OSError, ValueError) as exc:
        problem = str(exc)
    if not problem:
        return saved
    log.warning("%s: unreadable campaign journal (%s); starting afresh", path, problem)
    return {}


def _not_a_journal(saved: object) -> str:
    """What makes parsed JSON not a journal ("" if nothing)."""
    if not isinstance(saved, dict):
        return f"a JSON {type(saved).__name__}, not an object"
    wrong = [
        step
        for step in ("masters", "nights")
        if not isinstance(saved.get(step), list)
        or not all(isinstance(name, str) for name in saved[step])
    ]
    return f"{', '.join(wrong)}: not a list of night names" if wrong else ""


def journal_path(config: Config, start: dt.date, end: dt.date, telescopes) -> Path:
    which = "-".join(sorted(telescopes)) if telescopes else "all"
    return config.paths.data_subdir("campaigns") / f"{start}_{end}_{which}.json"


def reprocess(
    config: Config,
    start: dt.date,
    end: dt.date,
    *,
    telescopes: list[str] | None = None,
    force: bool = False,
    build: bool = True,
    workers: int | None = None,
    progress: bool | None = None,
    executor=None,
) -> CampaignReport:
    """Reduce every night with raw data from ``start`` to ``end``, then build the site once.

    The store must be open. ``force`` redoes work whose inputs did not change
    (a resumed forced campaign does not redo the steps it already finished).
    The jobs run on ``executor`` when given (left open), else on the pool that
    ``[cluster]`` asks for.
    """
    import contextlib

    from iopreport.catalog import load_catalog, sync_catalog
    from iopreport.reduce.executor import make_executor
    from iopreport.reduce.night import reduce_nights

    started = time.perf_counter()
    report = CampaignReport()
    nights = campaign_nights(config, start, end, telescopes)
    journal = Journal(
        journal_path(config, start, end, telescopes),
        {
            "from": str(start),
            "to": str(end),
            "telescopes": sorted(telescopes or []),
            "force": force,
        },
    )
    lines = {n: NightLine(n[0], n[1], _files(config, *n)) for n in nights}
    report.nights = list(lines.values())
    if not nights:
        return report
    catalog = load_catalog(config.paths.catalog)
    sync_catalog(catalog)
    total_files = sum(line.files for line in lines.values())
    done_files = sum(lines[n].files for n in nights if journal.done("nights", n))
    for n in nights:
        lines[n].resumed = journal.done("nights", n)
    with (
        contextlib.nullcontext(executor) if executor else make_executor(config, workers) as pool,
        Progress(
            total_files, "reprocess", unit="frame", enabled=progress, initial=done_files
        ) as bar,
    ):
        # 1. masters of every night first, a few nights per pool run
        todo = [n for n in nights if not journal.done("masters", n)]
        for first in range(0, len(todo), MASTER_BATCH_NIGHTS):
            batch = todo[first : first + MASTER_BATCH_NIGHTS]
            run = reduce_nights(
                config, catalog, batch, force=force, executor=pool, stages="masters"
            )
            for night_report in run.reports:
                key = (night_report.telescope, night_report.night)
                lines[key].masters_failed = len(night_report.masters_failed)
            journal.record("masters", batch)
        # 2. frames, one date (its telescopes together) at a time
        by_date: dict[dt.date, list[tuple[str, dt.date]]] = defaultdict(list)
        for n in nights:
            if not journal.done("nights", n):
                by_date[n[1]].append(n)
        nights_done = len(nights) - sum(len(v) for v in by_date.values())
        for date, batch in by_date.items():
            try:
                run = reduce_nights(
                    config, catalog, batch, force=force, executor=pool, stages="frames"
                )
            except Exception as exc:  # one date's trouble does not stop the campaign
                log.exception("reprocess %s: failed", date)
                for n in batch:
                    lines[n].error = str(exc) or type(exc).__name__
                bar.update(sum(lines[n].files for n in batch))
                continue
            for night_report in run.reports:
                line = lines[night_report.telescope, night_report.night]
                line.frames_reduced = night_report.frames_reduced
                line.frames_unchanged = night_report.frames_skipped
                line.frames_failed = len(night_report.frames_failed)
            journal.record("nights", batch)
            nights_done += len(batch)
            bar.update(sum(lines[n].files for n in batch))
            log.info("reprocess: %d/%d nights done (%s)", nights_done, len(nights), date)
    if build:
        from iopreport.build import run_build

        built = run_build(config)
        report.built = True
        report.build_summary = built.summary()
    journal.record("nights", [], finished=not any(line.error for line in report.nights))
    report.seconds = time.perf_counter() - started
    return report
