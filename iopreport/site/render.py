"""Build the static site: :func:`render_site`.

Units of work are the pages (with the files made beside them: a source's
finding chart, a night's thumbnails). Each unit has a hash of its inputs — the
store rows it shows (through the change counters SQLite keeps per night and
per source, :mod:`iopreport.store.changes`), the templates, static files and
this package's code — kept in the site's manifest. An incremental build renders
the units whose hash changed and keeps the others (left as they are in the
generation it writes, or hard-linked from the published one: :mod:`.publish`);
the index, catalog and status pages and the summaries are made on every build.
The pages of each kind: :mod:`.sourcepages`, :mod:`.nightpages`; the build's
state: :mod:`.sitebuild`; the worker processes: :mod:`.pageworkers`.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from iopreport import urls
from iopreport.config import Config
from iopreport.site import (
    indexcontext,
    nightcontext,
    plots,
    publish,
    sourcecontext,
    statuscontext,
)
from iopreport.site.assets import plotly_js_path
from iopreport.site.nightpages import plan_night_pages
from iopreport.site.pageworkers import render_units
from iopreport.site.sitebuild import SiteBuild
from iopreport.site.sourcepages import plan_source_pages
from iopreport.store import changes
from iopreport.store.models import utcnow

#: Where the site serves plotly.js from (copied from the installed ``plotly`` package).
PLOTLY_JS_IN_SITE = "static/plotly.min.js"
#: Folder (under the data directory) where the e-mail feature writes night summaries.
SUMMARIES_SUBDIR = "summaries"
#: A daemon heartbeat older than this many poll intervals is reported as stale.
STALE_HEARTBEAT_INTERVALS = 3


@dataclass(frozen=True)
class SiteReport:
    """What a build did."""

    pages_rendered: int
    pages_kept: int
    seconds: float
    output: Path
    sources: int = 0
    nights: int = 0
    full: bool = False

    def summary(self) -> str:
        """One line for the terminal and the run log."""
        kind = "full" if self.full else "incremental"
        return (
            f"site {self.output}: {self.pages_rendered} pages rendered, {self.pages_kept} kept "
            f"({kind} build, {self.sources} sources, {self.nights} nights) in {self.seconds:.1f} s"
        )


def render_site(config: Config, *, full: bool = False, workers: int | None = None) -> SiteReport:
    """Render the site from the store as it is, and publish it atomically.

    The store must be open (:func:`iopreport.store.open_store`). Flags and the
    catalog are read from the store (applied before this is called).

    Parameters
    ----------
    config
        Paths of the site, templates, static files and data directory.
    full
        Render every page, ignoring the published site's manifest.
    workers
        Processes rendering pages (default ``processing.workers``); the pages are
        shared out when there are many to render.

    Returns
    -------
    SiteReport
        Pages rendered and kept, seconds, the published folder.
    """
    start = time.perf_counter()
    site = Path(config.paths.site_dir)
    with publish.build_lock(site):
        build = SiteBuild(config, full=full)
        try:
            counts = _render_all(build, workers or config.processing.workers)
            build.finish()
            publish.swap_in(build.out, site)
        except BaseException:
            publish.discard(build.out, site)
            raise
    return SiteReport(
        pages_rendered=build.rendered,
        pages_kept=build.kept,
        seconds=time.perf_counter() - start,
        output=site,
        sources=counts[0],
        nights=counts[1],
        full=full,
    )


def _render_all(build: SiteBuild, workers: int) -> tuple[int, int]:
    # The change counters are read first: a write made while the build runs raises
    # them past what the manifest records, so its pages are made again next time.
    epoch_changes = changes.epoch_changes()
    source_changes = changes.source_changes()
    _copy_static(build)
    sources = sourcecontext.load_sources()
    counts = _source_counts(build, sources, source_changes)
    imported = sourcecontext.imported_counts()  # another pipeline's results: a page, not a count
    pages = sourcecontext.sources_with_pages(sources, counts.keys() | imported.keys())
    summaries = _copy_summaries(build)
    epochs = nightcontext.load_epochs()
    todo, night_sources = plan_night_pages(build, epochs, sources, summaries, epoch_changes)
    todo = plan_source_pages(build, pages, counts, source_changes) + todo
    render_units(build, todo, workers)
    for eid, epoch in epochs.items():
        build.new.units[f"night:{epoch.page}"]["sources"] = night_sources.get(eid, [])
    n_nights: dict[int, int] = {}
    for source_ids in night_sources.values():
        for source_id in source_ids:
            n_nights[source_id] = n_nights.get(source_id, 0) + 1
    stats = {sid: (count, n_nights.get(sid, 0)) for sid, count in counts.items()}
    summary_rows = indexcontext.source_summaries(pages, stats)
    recent = list(reversed(list(epochs.values())[-30:]))
    build.extra += [urls.index_page(), urls.catalog_page(), urls.status_page()]
    build.page(
        urls.index_page(),
        "index.html",
        summaries=summary_rows,
        sparkline=plots.sparkline,
        recent_nights=recent,
    )
    build.page(
        urls.catalog_page(),
        "catalog.html",
        sources=list(sources.values()),
        with_page={source.id for source in pages},
    )
    _status_page(build)
    build.rendered += 3
    return len(pages), len(epochs)


#: Sources whose counters changed, above which their results are counted in one scan.
RECOUNT_ALL_ABOVE = 100


def _source_counts(build: SiteBuild, sources, source_changes: dict[int, int]) -> dict[int, int]:
    """Number of results by source id (sources without results left out).

    The manifest keeps each source's count with its change counter; only the sources
    whose counter moved since (or that the manifest does not know) are counted again.
    """
    known = build.old.state.get("source_counts", {})
    counts: dict[int, int] = {}
    stale = []
    for sid in sources:
        kept = known.get(str(sid))
        if kept is not None and kept[0] == source_changes.get(sid, 0):
            counts[sid] = kept[1]
        else:
            stale.append(sid)
    fresh = sourcecontext.source_counts(None if len(stale) > RECOUNT_ALL_ABOVE else stale)
    for sid in stale:
        counts[sid] = fresh.get(sid, 0)
    build.new.state["source_counts"] = {
        str(sid): [source_changes.get(sid, 0), count] for sid, count in counts.items()
    }
    return {sid: count for sid, count in counts.items() if count}


def _copy_static(build: SiteBuild) -> None:
    for relative, path in build.static_files.items():
        target = build.out / "static" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        publish.remove_file(target)
        shutil.copy2(path, target)
        build.extra.append(f"static/{relative}")
    build.extra.append(PLOTLY_JS_IN_SITE)
    target = build.out / PLOTLY_JS_IN_SITE
    package = plotly_js_path()
    size = package.stat().st_size
    if target.is_file() and target.stat().st_size == size:
        return  # the generation has it already
    old = build.site / PLOTLY_JS_IN_SITE
    if old.is_file() and old.stat().st_size == size:
        publish.link_or_copy(old, target)
    else:
        publish.remove_file(target)
        shutil.copy2(package, target)


def _copy_summaries(build: SiteBuild) -> dict[str, str]:
    """Copy ``<datadir>/summaries/*.html`` and list them; returns {file name: site path}."""
    folder = Path(build.config.paths.datadir) / SUMMARIES_SUBDIR
    found = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*.html"), reverse=True):
            relative = f"summaries/{path.name}"
            publish.link_or_copy(path, build.out / relative)
            found[path.name] = relative
    build.page("summaries/index.html", "summaries.html", summaries=found)
    build.extra += ["summaries/index.html", *found.values()]
    build.rendered += 1
    return found


def _status_page(build: SiteBuild) -> None:
    status = statuscontext.status_context()
    now = utcnow()
    limit = dt.timedelta(
        minutes=STALE_HEARTBEAT_INTERVALS * build.config.schedule.poll_interval_minutes
    )
    for beat in status["heartbeats"]:
        age = now - beat["beat_at"]
        beat["age"] = str(age).split(".")[0]
        beat["stale"] = age > limit
    build.page(urls.status_page(), "status.html", status=status, stale_after=str(limit))
