"""A night's page: whether it must be made again, and making it.

The page holds the night's frames, masters, failures, results and conditions as
JSON (static/night.js draws the tables and plots); the thumbnails of its reduced
frames are written beside it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from iopreport import urls
from iopreport.site import charts, nightcontext, sourcecontext
from iopreport.site.sitebuild import PageUnit, SiteBuild, inputs_hash
from iopreport.store.bits import RawFitFlags, ReducedFitFlags

log = logging.getLogger(__name__)


def plan_night_pages(
    build: SiteBuild, epochs, sources, summaries, epoch_changes: dict[int, int]
) -> tuple[list[PageUnit], dict[int, list[int]]]:
    """The night pages to render, and the sources with results in each night.

    The sources of an unchanged night are taken from the manifest; the others are read.
    """
    build.sources = sources
    near = nightcontext.neighbours(epochs)
    names = inputs_hash(sorted((s.id, s.name, s.page) for s in sources.values()))
    todo = []
    night_sources: dict[int, list[int]] = {}
    unknown: list[int] = []
    for eid, epoch in epochs.items():
        before, after = near.get(eid, (None, None))
        before = epochs[before] if before else None
        after = epochs[after] if after else None
        summary = urls.summary_page(epoch.night)
        summary = summary if summary.split("/", 1)[1] in summaries else None
        inputs = (
            "night",
            epoch,
            epoch_changes.get(eid, 0),
            before.page if before else None,
            after.page if after else None,
            names,
            summary,
        )
        key = f"night:{epoch.page}"
        digest = build.wanted(key, inputs)
        if digest:
            todo.append(PageUnit(key, digest, "night", (epoch, before, after, summary)))
        kept = build.new.units.get(key) if not digest else None
        if kept is not None and "sources" in kept:
            night_sources[eid] = kept["sources"]
        else:
            unknown.append(eid)
    night_sources.update(sourcecontext.epoch_sources(unknown))
    return todo, night_sources


def make_night_page(build: SiteBuild, epoch, before, after, summary, night: dict) -> list[str]:
    """Write a night's page and the thumbnails of its reduced frames; returns the files written."""
    datadir = Path(build.config.paths.datadir)
    folders: dict[str, bool] = {}  # folder of reduced frames -> exists (one stat per folder)
    files = [epoch.page]
    thumbs = {}
    folder = epoch.page[: -len(".html")]
    for raw_name, reduced_name in night["reduced_files"]:
        path = _existing(datadir, reduced_name, folders)
        if path is None:
            continue
        try:
            png = charts.thumbnail_png(path)
        except (OSError, ValueError) as exc:
            log.warning("thumbnail of %s failed: %s", path, exc)
            continue
        name = f"{folder}/{urls.slug(raw_name)}.png"
        build.write(name, png)
        files.append(name)
        thumbs[raw_name] = name
    build.page(
        epoch.page,
        "night.html",
        epoch=epoch,
        epoch_flags=nightcontext.epoch_flag_labels(epoch.flags),
        night=night,
        thumbs=thumbs,
        before=before,
        after=after,
        summary=summary,
        frame_types=_frame_type_order(night["frame_counts"]),
        frame_counts=night["frame_counts"],
        by_source=_results_by_source(night["results"]),
        tables={
            "frame_columns": nightcontext.FRAME_COLUMNS,
            "frames": night["frames"],
            "flag_names": {
                "raw": nightcontext.flag_names(RawFitFlags),
                "reduced": nightcontext.flag_names(ReducedFitFlags),
            },
            "result_columns": nightcontext.RESULT_COLUMNS,
            "results": night["results"],
            "thumbs": thumbs,
            "night": epoch.night.isoformat(),
            "condition_columns": nightcontext.CONDITION_COLUMNS,
            "conditions": night["conditions"],
        },
    )
    return files


def _existing(datadir: Path, relative: str, folders: dict[str, bool]) -> Path | None:
    """``datadir / relative`` when that file exists; folders known to be missing are not asked."""
    folder = os.path.dirname(relative)
    if folder not in folders:
        folders[folder] = os.path.isdir(os.path.join(datadir, folder))
    if not folders[folder]:
        return None
    path = os.path.join(datadir, relative)
    return Path(path) if os.path.isfile(path) else None


def _frame_type_order(frames: dict) -> list[str]:
    order = ["light", "flat", "dark", "bias"]
    return [t for t in order if t in frames] + sorted(t for t in frames if t not in order)


def _results_by_source(results: list[list]) -> list[tuple[str, str, int]]:
    counts: dict[tuple[str, str], int] = {}
    for result in results:
        key = (result[0], result[1])  # source name and page (nightcontext.RESULT_COLUMNS)
        counts[key] = counts.get(key, 0) + 1
    return [(name, page, n) for (name, page), n in sorted(counts.items())]
