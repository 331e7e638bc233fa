"""Build the static site: :func:`render_site`.

Units of work are the pages (with the files made beside them: a source's
finding chart, a night's thumbnails). Each unit has a hash of its inputs — the
store rows it shows (through the change counters SQLite keeps per night and
per source, :mod:`iopreport.store.changes`), the templates, static files and
this package's code — kept in the site's manifest. An incremental build renders
the units whose hash changed and keeps the others (left as they are in the
generation it writes, or hard-linked from the published one: :mod:`.publish`);
the index, catalog and status pages and the summaries are made on every build.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import operator
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from iopreport import __version__, urls
from iopreport.config import Config
from iopreport.site import (
    charts,
    indexcontext,
    nightcontext,
    plots,
    publish,
    sourcecontext,
    statuscontext,
)
from iopreport.store import changes
from iopreport.store.bits import RawFitFlags, ReducedFitFlags
from iopreport.store.models import utcnow

log = logging.getLogger(__name__)

#: plotly.js inside the installed ``plotly`` package (copied into static/ at build time).
PLOTLY_JS_IN_PACKAGE = ("package_data", "plotly.min.js")
#: Where the site serves it from.
PLOTLY_JS_IN_SITE = "static/plotly.min.js"
#: Folder (under the data directory) where the e-mail feature writes night summaries.
SUMMARIES_SUBDIR = "summaries"
#: Templates of the pages (compiled before worker processes are forked).
PAGE_TEMPLATES = (
    "index.html",
    "source.html",
    "night.html",
    "catalog.html",
    "status.html",
    "summaries.html",
)
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


# --------------------------------------------------------------------------- helpers


def script_json(value) -> Markup:
    """JSON that is safe inside ``<script>`` (``<``, ``>``, ``&``, ``'`` and U+2028/9 escaped).

    ``</script>`` inside a string can then never close the element.
    """
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("'", "\\u0027"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return Markup(text)


def _fmt(value, digits: int = 3, empty: str = "—") -> str:
    if value is None or value == "":
        return empty
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _root(path: str) -> str:
    """Relative prefix from a page to the site root (``sources/x.html`` → ``../``)."""
    return "../" * path.count("/")


def _hash(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def _skeleton_subdir(name: str) -> Path | None:
    from iopreport.skeleton import skeleton_dir

    try:
        folder = skeleton_dir() / name
    except Exception:  # installed without a skeleton: only the project's folder is used
        return None
    return folder if folder.is_dir() else None


def _folders(config: Config) -> tuple[list[Path], list[Path]]:
    """Template and static folders: the project's first, then the packaged skeleton's."""
    templates = [config.paths.templates_dir]
    statics = [config.paths.static_dir]
    for name, found in (("templates", templates), ("static", statics)):
        fallback = _skeleton_subdir(name)
        if fallback and fallback.resolve() != found[0].resolve():
            found.append(fallback)
    return templates, statics


def _static_files(statics: list[Path]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for folder in reversed(statics):  # the project's files win
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if path.is_file() and relative not in ("plotly.min.js", "README.md"):
                files[relative] = path
    return files


def plotly_js_path() -> Path:
    """plotly.min.js of the installed ``plotly`` package."""
    import plotly

    path = Path(plotly.__file__).parent.joinpath(*PLOTLY_JS_IN_PACKAGE)
    if not path.is_file():
        from iopreport.errors import IopreportError

        raise IopreportError(f"plotly.min.js not found in the plotly package ({path})")
    return path


def _code_hash(templates: list[Path], static_files: dict[str, Path]) -> str:
    """Hash of everything every page depends on: code, templates, static files, plotly."""
    import plotly

    digest = hashlib.sha256(f"{__version__} plotly {plotly.__version__}".encode())
    package = Path(__file__).parent
    code = [*sorted(package.glob("*.py")), Path(urls.__file__)]
    template_files = [
        p for folder in templates if folder.is_dir() for p in sorted(folder.rglob("*"))
    ]
    for path in [*code, *template_files, *static_files.values()]:
        if path.is_file():
            digest.update(str(path.name).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def _environment(templates: list[Path]) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in templates]),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["fmt"] = _fmt
    environment.filters["script_json"] = script_json
    environment.globals["site_version"] = __version__
    return environment


# --------------------------------------------------------------------------- build


class _Build:
    """State of one build: the generation written, the published manifest and the new one."""

    def __init__(self, config: Config, *, full: bool) -> None:
        self.config = config
        self.full = full
        self.site = Path(config.paths.site_dir)
        self.old = publish.Manifest() if full else publish.Manifest.read(self.site)
        self.new = publish.Manifest()
        self.made: set[str] = set()  # folders known to exist in the generation written
        self.extra: list[str] = []  # files made on every build (not part of a unit)
        self.rendered = 0
        self.kept = 0
        templates, statics = _folders(config)
        self.static_files = _static_files(statics)
        self.code = _code_hash(templates, self.static_files)
        self.env = _environment(templates)
        for name in PAGE_TEMPLATES:  # compiled once here, not again in every worker process
            self.env.get_template(name)
        self.generated = utcnow().strftime("%Y-%m-%d %H:%M UTC")
        self.sources: dict[int, sourcecontext.SourceInfo] = {}
        publish.sweep(self.site)
        self.target = publish.prepare_target(self.site, full=full)
        self.out = self.target.folder

    def wanted(self, key: str, inputs) -> str | None:
        """Keep unit ``key`` when its inputs are unchanged.

        The generation written may hold the unit already (nothing to do); otherwise
        its files are hard-linked from the published site. Returns the unit's hash
        when it must be rendered, None when it was kept.
        """
        digest = _hash(self.code, inputs)
        held = self.target.holds.units.get(key)
        if held and held.get("hash") == digest and publish.holds_unit(self.out, held["files"]):
            self.new.units[key] = held
            self.kept += 1
            return None
        previous = self.old.units.get(key)
        if (
            previous
            and previous.get("hash") == digest
            and publish.keep_unit(self.site, self.out, previous["files"], self.made)
        ):
            self.new.units[key] = previous
            self.kept += 1
            return None
        return digest

    def page(self, path: str, template: str, **values) -> str:
        """Render ``template`` to ``path`` (relative to the site root); returns ``path``."""
        html = self.env.get_template(template).render(
            root=_root(path), page_path=path, generated=self.generated, urls=urls, **values
        )
        self.write(path, html)
        return path

    def write(self, path: str, content: str | bytes) -> None:
        """Write a file of the generation anew (never in place: it may be a hard link)."""
        target = self.out / path
        parent = str(target.parent)
        if parent not in self.made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.made.add(parent)
        publish.remove_file(target)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")

    def finish(self) -> None:
        """Remove what the generation held and no longer needs; write its manifest."""
        self.new.state["files"] = sorted(set(self.extra))
        publish.remove_stale(self.out, self.target.holds, self.new)
        self.new.write(self.out)


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
        build = _Build(config, full=full)
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


def _render_all(build: _Build, workers: int) -> tuple[int, int]:
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
    todo, night_sources = _plan_nights(build, epochs, sources, summaries, epoch_changes)
    todo = _plan_sources(build, pages, counts, source_changes) + todo
    _render_units(build, todo, workers)
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


def _source_counts(build: _Build, sources, source_changes: dict[int, int]) -> dict[int, int]:
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


@dataclass(frozen=True)
class _Unit:
    """A page to render: its manifest key, input hash, kind and what it is made from."""

    key: str
    digest: str
    kind: str  # "source" | "night"
    spec: tuple


#: Most units given to a worker process at a time (nights are read in chunks of this size).
UNITS_PER_TASK = 50
#: Fewer units than this are rendered in the building process itself.
MIN_UNITS_FOR_WORKERS = 12
_WORKER_BUILD: _Build | None = None  # the build a forked worker renders for


def _render_units(build: _Build, todo: list[_Unit], workers: int) -> None:
    """Render the units, in ``workers`` forked processes when there are many."""
    global _WORKER_BUILD
    if workers <= 1 or len(todo) < MIN_UNITS_FOR_WORKERS or not _can_fork():
        results = _render_task(build, todo)
    else:
        import multiprocessing

        from iopreport.store.models import database_proxy

        # at least two tasks per worker, so a few pages are shared out too (not one task)
        size = max(1, min(UNITS_PER_TASK, -(-len(todo) // (2 * workers))))
        tasks = [todo[i : i + size] for i in range(0, len(todo), size)]
        database_proxy.close()  # each worker opens its own connection (never share one)
        _WORKER_BUILD = build
        try:
            with multiprocessing.get_context("fork").Pool(
                workers, initializer=_default_signals
            ) as pool:
                results = [r for part in pool.imap(_worker_task, tasks) for r in part]
        finally:
            _WORKER_BUILD = None
    for key, digest, files in results:
        build.new.units[key] = {"hash": digest, "files": files}
        build.rendered += 1


def _default_signals() -> None:
    """Forked workers must not inherit a caller's handlers (the daemon's SIGTERM stop)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _worker_task(units: list[_Unit]) -> list[tuple[str, str, list[str]]]:
    assert _WORKER_BUILD is not None
    return _render_task(_WORKER_BUILD, units)


def _render_task(build: _Build, units: list[_Unit]) -> list[tuple[str, str, list[str]]]:
    night_ids = [unit.spec[0].id for unit in units if unit.kind == "night"]
    nights = nightcontext.nights_context(night_ids, build.sources) if night_ids else {}
    done = []
    for unit in units:
        if unit.kind == "source":
            files = _make_source(build, *unit.spec)
        else:
            files = _make_night(build, *unit.spec, nights[unit.spec[0].id])
        done.append((unit.key, unit.digest, files))
    return done


def _copy_static(build: _Build) -> None:
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


def _copy_summaries(build: _Build) -> dict[str, str]:
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


def _plan_sources(build: _Build, pages, counts, source_changes) -> list[_Unit]:
    todo = []
    datadir = Path(build.config.paths.datadir)
    for source in pages:
        count = counts.get(source.id, 0)
        frame = sourcecontext.chart_frame(source, datadir) if count else None
        frame_key = (frame.reducedfit_id, frame.modified, len(frame.calibrators)) if frame else None
        changed = source_changes.get(source.id, 0)
        key = f"source:{source.page}"
        digest = build.wanted(key, ("source", source, count, changed, frame_key))
        if digest:
            todo.append(_Unit(key, digest, "source", (source, count, frame)))
    return todo


def _make_source(build: _Build, source: sourcecontext.SourceInfo, count, frame) -> list[str]:
    page = source.page
    stem = page[: -len(".html")]
    points = sourcecontext.source_points(source.id) if count else []
    plotted, bin_days = plots.bin_points(points)
    imported, _ = plots.bin_points(sourcecontext.imported_points(source.id))
    figure = plots.source_figure(
        plotted,
        literature_mags=source.literature_mags,
        standard_pol=source.standard_pol,
        imported=imported,
    )
    columns = list(sourcecontext.POINT_COLUMNS)
    rows = list(map(operator.itemgetter(*columns), plotted))  # tuples: JSON arrays
    files = [page]
    chart = None
    if frame is not None:
        try:
            target = (source.name, *frame.target_xy)
            png = charts.finding_chart_png(frame.path, target, frame.calibrators)
        except (OSError, ValueError) as exc:
            log.warning("finding chart of %s from %s failed: %s", source.name, frame.path, exc)
        else:
            chart = f"{stem}-chart.png"
            build.write(chart, png)
            files.append(chart)
    nights = sorted({(p["night"], p["telescope"], p["night_page"]) for p in points})
    build.page(
        page,
        "source.html",
        source=source,
        figure=figure,
        data={
            "source": source.name,
            "columns": columns,
            "rows": rows,
            "download": list(sourcecontext.DOWNLOAD_COLUMNS),
        },
        n_points=len(points),
        n_plotted=len(plotted),
        n_flagged=sum(1 for p in points if p["flagged"]),
        n_imported=sum(p["n_binned"] for p in imported),
        bin_days=bin_days,
        download_name=stem.rsplit("/", 1)[-1],
        bands=_ordered_bands({p["band"] for p in plotted}),
        instruments=sorted({p["instrument"] for p in plotted}),
        chart=chart,
        chart_frame=frame,
        nights=nights,
    )
    return files


#: Order of the band selector: the usual photometric bands blue to red, then any other.
BAND_ORDER = "UBVRI"


def _ordered_bands(bands: set[str]) -> list[str]:
    known = [band for band in BAND_ORDER if band in bands]
    return known + sorted(band for band in bands if band not in BAND_ORDER)


def _plan_nights(
    build: _Build, epochs, sources, summaries, epoch_changes: dict[int, int]
) -> tuple[list[_Unit], dict[int, list[int]]]:
    """The night pages to render, and the sources with results in each night.

    The sources of an unchanged night are taken from the manifest; the others are read.
    """
    build.sources = sources
    near = nightcontext.neighbours(epochs)
    names = _hash(sorted((s.id, s.name, s.page) for s in sources.values()))
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
            todo.append(_Unit(key, digest, "night", (epoch, before, after, summary)))
        kept = build.new.units.get(key) if not digest else None
        if kept is not None and "sources" in kept:
            night_sources[eid] = kept["sources"]
        else:
            unknown.append(eid)
    night_sources.update(sourcecontext.epoch_sources(unknown))
    return todo, night_sources


def _make_night(build: _Build, epoch, before, after, summary, night: dict) -> list[str]:
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


def _status_page(build: _Build) -> None:
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
