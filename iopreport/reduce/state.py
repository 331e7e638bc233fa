"""What the stages of a reduction run share: each night's state and report, the run's exclusions.

The run (:mod:`iopreport.reduce.run`) makes these; registration, planning,
scheduling and persisting read or fill them. See docs/architecture.md.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.config import Config
from iopreport.reduce.classify import FrameInfo
from iopreport.reduce.frametask import FrameTask
from iopreport.store import Epoch, RawFit


def raw_night_dir(config: Config, telescope: str, night: dt.date) -> Path:
    """The folder of ``telescope``'s raw files of ``night``."""
    return config.paths.data_subdir("raw") / telescope / night.isoformat()


@dataclass
class NightReport:
    """What :func:`reduce_night` did, for the terminal, the run log and the benchmark."""

    telescope: str
    night: dt.date
    files: int = 0
    unclassified: dict[str, str] = field(default_factory=dict)
    masters_built: int = 0
    masters_failed: dict[str, str] = field(default_factory=dict)
    frames_reduced: int = 0
    frames_skipped: int = 0
    frames_failed: dict[str, str] = field(default_factory=dict)
    results: int = 0
    sequences: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    worker_peak_rss_mb: float = 0.0  # the largest peak resident memory a worker reported
    stored: set[str] = field(default_factory=set)  # frames reduced and stored in this run
    #: frames in ``frames_failed`` that failed in an earlier run and were left unchanged
    failed_before: set[str] = field(default_factory=set)
    #: frames measured again against the night's seeing trend: name -> what happened
    seeing_remeasured: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Whether any frame of the night is failed or unclassified, or a master failed."""
        return bool(self.unclassified or self.frames_failed or self.masters_failed)

    @property
    def outcome(self) -> str:
        """``ok``, or ``failed`` with what failed (for the terminal and the run log)."""
        if not self.failed:
            return "ok"
        parts = []
        if self.frames_failed:
            unchanged = len(self.failed_before)
            parts.append(
                f"{len(self.frames_failed)} frames failed"
                + (f" ({unchanged} unchanged since an earlier run)" if unchanged else "")
            )
        if self.unclassified:
            parts.append(f"{len(self.unclassified)} unclassified")
        if self.masters_failed:
            parts.append(f"{len(self.masters_failed)} masters failed")
        return "failed: " + ", ".join(parts)

    def summary(self) -> str:
        return (
            f"{self.telescope} {self.night}: {self.outcome}; {self.files} files, "
            f"{len(self.unclassified)} unclassified, {self.masters_built} masters built "
            f"({len(self.masters_failed)} failed), {self.frames_reduced} frames reduced, "
            f"{self.frames_skipped} unchanged, {len(self.frames_failed)} failed, "
            f"{self.results} photometry results, {self.sequences} polarimetric sequences"
        )


@dataclass
class NightState:
    """One night of a run: its epoch, raw frames, report and summed worker seconds."""

    epoch: Epoch
    rawfits: list[RawFit]
    report: NightReport
    worker_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    infos: dict[str, FrameInfo] = field(default_factory=dict)  # classified in this run
    tasks: dict[str, FrameTask] = field(default_factory=dict)  # frames stored in this run
    # the writer's lookups, made once per night instead of once per stored frame
    master_ids: dict[Path, int] = field(default_factory=dict)  # master file -> row id
    source_ids: dict[str, int] = field(default_factory=dict)  # AstroSource name -> row id
    reduced_ids: dict[int, int] | None = None  # RawFit id -> ReducedFit id (loaded at first use)

    @functools.cached_property
    def by_name(self) -> dict[str, RawFit]:
        return {rawfit.filename: rawfit for rawfit in self.rawfits}


@dataclass(frozen=True)
class Exclusions:
    """The raw frames that flags.toml's frame flags exclude, decided once per run.

    ``locations`` holds ``TEL/YYYY-MM-DD/file`` (``RawFit.fileloc``). An
    excluded frame is not reduced (docs/flags.md).
    """

    locations: frozenset[str] = frozenset()

    def in_night(self, epoch: Epoch) -> frozenset[str]:
        """File names of ``epoch`` that are excluded."""
        prefix = f"{epoch.epochname}/"
        return frozenset(loc[len(prefix) :] for loc in self.locations if loc.startswith(prefix))

    def excludes(self, epoch: Epoch, filename: str) -> bool:
        """Whether ``filename`` of ``epoch`` is excluded."""
        return f"{epoch.epochname}/{filename}" in self.locations


#: A run with no frame flags.
NO_EXCLUSIONS = Exclusions()
