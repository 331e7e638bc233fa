"""Manual flags from flags.toml: the results each flag selects, written into the store.

Recomputed from scratch on every build, so a flag removed from the file takes
effect at once. :func:`apply_flags` works in ONE transaction and writes only
the rows that change. ``PhotoPolResult.flag_reasons`` is shared with the
automatic flags (:mod:`iopreport.flags.automatic`): manual texts start with
``manual:``, and only those are replaced.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from iopreport.flags import prefilter
from iopreport.flags.frames import frame_flag_hits, mark_excluded
from iopreport.flags.match import FlagIndex, result_bits
from iopreport.flags.model import Flag, FlagSet
from iopreport.flags.rows import update_results
from iopreport.flags.views import result_views
from iopreport.store.bits import ManualFlags
from iopreport.store.models import PhotoPolResult, database_proxy

log = logging.getLogger(__name__)

MANUAL_PREFIX = "manual:"


@dataclass(frozen=True)
class FlagMatches:
    """What one flag selects now."""

    flag: Flag
    results: tuple[tuple[str, str, str], ...] = ()  # (source, mode, members_key)
    frames: tuple[str, ...] = ()  # raw file locations excluded (frame flags)
    frame_results: tuple[tuple[str, str, str], ...] = ()  # results with an excluded frame

    @property
    def empty(self) -> bool:
        return not self.results and not self.frames


@dataclass
class Evaluation:
    """Manual flags of every result, computed from a flag set (nothing written)."""

    new: dict[int, tuple[int, list[str]]] = field(default_factory=dict)  # id -> bits, reasons
    old: dict[int, tuple[int, list[str]]] = field(default_factory=dict)
    matches: dict[str, FlagMatches] = field(default_factory=dict)
    frames: dict[str, list[Flag]] = field(default_factory=dict)  # fileloc -> frame flags
    frame_ids: dict[str, tuple[int, int]] = field(default_factory=dict)  # fileloc -> id, flags


@dataclass
class ApplyReport:
    """What :func:`apply_flags` did."""

    results: int = 0  # results examined
    changed: int = 0  # rows written
    flagged: int = 0  # results with a manual flag now
    frames_excluded: int = 0
    matches: dict[str, FlagMatches] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def unmatched(self) -> list[Flag]:
        """Flags that select nothing now (``flags check`` reports them)."""
        return [m.flag for m in self.matches.values() if m.empty]

    def summary(self) -> str:
        return (
            f"{len(self.matches)} manual flags: {self.flagged} of {self.results} results "
            f"flagged, {self.frames_excluded} frames excluded, {self.changed} rows changed"
        )


def evaluate(flagset: FlagSet) -> Evaluation:
    """Compute the manual flags of every result now (reads the store, writes nothing)."""
    evaluation = Evaluation()
    hits, rows = frame_flag_hits(flagset)
    evaluation.frames = hits
    evaluation.frame_ids = rows
    result_flags = [f for f in flagset if {"photometry", "polarimetry"} & set(f.what)]
    index = FlagIndex(result_flags)
    result_hits: dict[str, list] = defaultdict(list)
    frame_hits: dict[str, set[str]] = defaultdict(set)
    frame_results: dict[str, dict[tuple, None]] = defaultdict(dict)
    excluded_ids = [rid for rid, _ in rows.values()]
    where = prefilter.results_where(result_flags, excluded_ids)
    for rid, manual, _auto, reasons, view, key in result_views(where):
        candidates = index.candidates(
            view.source, view.night, view.members, view.jd_min, view.jd_max
        )
        bits = ManualFlags(0)
        texts: list[str] = []
        for flag in candidates:
            flag_bits = result_bits(flag, view)
            if not flag_bits:
                continue
            bits |= flag_bits
            result_hits[flag.id].append((view.source, view.mode, key))
            for what in ("photometry", "polarimetry"):
                if flag_bits & _BIT[what]:
                    texts.append(flag.reason_text(what))
        if hits:
            for loc in view.members:
                for flag in hits.get(loc, ()):
                    bits |= ManualFlags.BAD_FRAME
                    texts.append(f"{flag.reason_text('frame')}: {loc}")
                    frame_hits[flag.id].add(loc)
                    frame_results[flag.id][(view.source, view.mode, key)] = None
        kept = [r for r in reasons if not r.startswith(MANUAL_PREFIX)]
        evaluation.old[rid] = (manual, reasons)
        evaluation.new[rid] = (int(bits), kept + texts)
    for loc, flags in hits.items():
        for flag in flags:
            frame_hits[flag.id].add(loc)
    for flag in flagset:
        evaluation.matches[flag.id] = FlagMatches(
            flag=flag,
            results=tuple(result_hits.get(flag.id, ())),
            frames=tuple(sorted(frame_hits.get(flag.id, ()))),
            frame_results=tuple(frame_results.get(flag.id, ())),
        )
    return evaluation


_BIT = {"photometry": ManualFlags.BAD_PHOTOMETRY, "polarimetry": ManualFlags.BAD_POLARIMETRY}


def apply_flags(flagset: FlagSet) -> ApplyReport:
    """Write the manual flags of ``flagset`` into the store, in one transaction.

    Sets ``PhotoPolResult.manual_flags`` (:class:`~iopreport.store.bits.ManualFlags`)
    and the ``manual:`` texts of ``flag_reasons`` of every result, clearing
    those no flag selects any more, and ``RawFitFlags.EXCLUDED`` on exactly
    the frames that frame flags select.
    """
    started = time.perf_counter()
    report = ApplyReport()
    with database_proxy.atomic():
        evaluation = evaluate(flagset)
        report.frames_excluded = mark_excluded(evaluation.frame_ids)
        changed = []
        for rid, (bits, reasons) in evaluation.new.items():
            if evaluation.old[rid] != (bits, reasons):
                changed.append((bits, reasons, rid))
            report.flagged += bool(bits)
        update_results(changed, ("manual_flags", "flag_reasons"))
    report.results = PhotoPolResult.select().count()
    report.changed = len(changed)
    report.matches = evaluation.matches
    report.seconds = time.perf_counter() - started
    for flag in report.unmatched:
        log.warning("%s:%s: flag %s selects nothing", flagset.path, flag.line, flag.id)
    return report
