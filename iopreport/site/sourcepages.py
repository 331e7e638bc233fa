"""A source's page: whether it must be made again, and making it.

The page holds the figure of its light curve and polarization and its points as
JSON (the table and the CSV and JSON downloads are drawn from these); its
finding chart is written beside it.
"""

from __future__ import annotations

import logging
import operator
from pathlib import Path

from iopreport.site import charts, plots, sourcecontext
from iopreport.site.sitebuild import PageUnit, SiteBuild

log = logging.getLogger(__name__)


def plan_source_pages(build: SiteBuild, pages, counts, source_changes) -> list[PageUnit]:
    """The source pages whose inputs changed, as units to render (the others are kept)."""
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
            todo.append(PageUnit(key, digest, "source", (source, count, frame)))
    return todo


def make_source_page(build: SiteBuild, source: sourcecontext.SourceInfo, count, frame) -> list[str]:
    """Write a source's page and its finding chart; returns the files written."""
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
