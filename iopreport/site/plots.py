"""Plotly figure dicts of a source's light curves (no plotly.py objects: plain JSON).

One figure holds up to four panels on a shared time axis (magnitude, p, chi,
q and u); each panel has one trace per instrument and band, and flagged
points go into separate traces (open markers, ``meta.flagged``) so the page
can hide them. A data trace lists the indices of its data rows in
``customdata`` and names its columns in ``meta.y`` and ``meta.err``; the page
fills x (the row's ``date``), y and the error bars from the rows and builds
hover text and click targets from them, so each value is in the page once.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Sequence

from iopreport.site.flagmasks import flags_concern
from iopreport.stokes import angle_mean, mean_polarization, weighted_mean
from iopreport.store.columns import MJD_OFFSET, jd_to_datetime

#: A series (instrument, band, mode, flagged) longer than this is binned in time.
MAX_POINTS_PER_SERIES = 4000
#: Smallest bin width, days (one night); doubled until the series is short enough.
BIN_DAYS = 1.0
#: Shortest time axis, days: one night's results (or a single one) are shown over a
#: day, so the axis is labelled in hours rather than in fractions of a second.
MIN_SPAN_DAYS = 1.0
#: Margin left on each side of the results on the time axis, as a fraction of the span.
PAD_FRACTION = 0.05

#: Panels: (key, y column, error column, axis title, reversed axis).
PANELS = (
    ("mag", "mag", "mag_err", "magnitude", True),
    ("p", "p_pct", "p_pct_err", "p (%)", False),
    ("chi", "chi_deg", "chi_deg_err", "χ (deg)", False),
    ("q", "q_pct", "q_pct_err", "q, u (%)", False),
    ("u", "u_pct", "u_pct_err", "q, u (%)", False),
)
#: Qualitative colours (Plotly's default D3 cycle), one per instrument and band.
COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


#: Columns that describe one result and are left empty in a bin.
PER_RESULT_COLUMNS = (
    "airmass",
    "seeing",
    "mag_sys_err",
    "zero_point",
    "zero_point_err",
    "n_calibrators",
    "p_debiased_pct",
    "p_sys_err_pct",
    "chi_sys_err_deg",
    "mag_host_corrected",
    "mag_host_corrected_err",
    "p_host_corrected_pct",
    "p_host_corrected_pct_err",
)


def bin_points(points: list[dict]) -> tuple[list[dict], float]:
    """Bin long series in time; returns the (possibly binned) points and the bin width in days.

    Series are (telescope, instrument, band, mode, flagged). When none is longer than
    :data:`MAX_POINTS_PER_SERIES` the points are returned unchanged with width 0.
    Otherwise the width starts at one night and doubles until every series fits;
    a bin holds the inverse-variance weighted mean of magnitude, q and u (p and chi
    are computed from the mean q and u), the mean time, and ``n_binned``.
    """
    series: dict[tuple, list[dict]] = defaultdict(list)
    for point in points:
        key = (point["instrument"], point["band"], point["mode"], point["flagged"])
        series[key].append(point)
    if all(len(items) <= MAX_POINTS_PER_SERIES for items in series.values()):
        return points, 0.0
    width = BIN_DAYS
    while True:
        binned = []
        for items in series.values():
            groups: dict[int, list[dict]] = defaultdict(list)
            for point in items:
                groups[math.floor(point["mjd"] / width)].append(point)
            binned.append([_combine(group) for group in groups.values()])
        if all(len(items) <= MAX_POINTS_PER_SERIES for items in binned):
            merged = [point for items in binned for point in items]
            merged.sort(key=lambda p: p["mjd"])
            return merged, width
        width *= 2


def _weighted(group: list[dict], column: str) -> tuple[float | None, float | None]:
    """Weighted mean of a column over the points that have an error, else the plain mean."""
    values = [(p[column], p[f"{column}_err"]) for p in group if p[column] is not None]
    with_errors = [(v, e) for v, e in values if e]
    if with_errors:
        mean = weighted_mean([v for v, _ in with_errors], [e for _, e in with_errors])
        return mean.value, mean.error
    return (sum(v for v, _ in values) / len(values), None) if values else (None, None)


def _combine(group: list[dict]) -> dict:
    if len(group) == 1:
        return group[0]
    first = group[len(group) // 2]
    point = dict(first)
    point["mjd"] = round(sum(p["mjd"] for p in group) / len(group), 5)
    point["jd"] = round(point["mjd"] + MJD_OFFSET, 5)
    for column in PER_RESULT_COLUMNS:  # one result's conditions: no value for a bin
        point[column] = None
    point["n_binned"] = sum(p["n_binned"] for p in group)
    point["n_frames"] = sum(p["n_frames"] or 0 for p in group)
    mean, err = _weighted(group, "mag")
    point["mag"] = None if mean is None else round(mean, 4)
    point["mag_err"] = None if err is None else round(err, 4)
    with_qu = [p for p in group if p["q_pct"] is not None and p["u_pct"] is not None]
    if with_qu:
        # the same mean (in q and u) as the night summary's (iopreport.stokes)
        pol = mean_polarization(
            [p["q_pct"] for p in with_qu],
            [p["q_pct_err"] for p in with_qu],
            [p["u_pct"] for p in with_qu],
            [p["u_pct_err"] for p in with_qu],
        )
        point["q_pct"], point["u_pct"] = round(pol.stokes.q, 4), round(pol.stokes.u, 4)
        point["q_pct_err"] = round(pol.stokes.q_err, 4)
        point["u_pct_err"] = round(pol.stokes.u_err, 4)
        point["p_pct"], point["p_pct_err"] = round(pol.p.value, 3), round(pol.p.error, 3)
        point["chi_deg"], point["chi_deg_err"] = round(pol.chi.value, 2), round(pol.chi.error, 2)
    else:
        for column in ("q_pct", "u_pct"):
            point[column] = point[f"{column}_err"] = None
        mean, err = _weighted(group, "p_pct")
        point["p_pct"] = None if mean is None else round(mean, 3)
        point["p_pct_err"] = None if err is None else round(err, 3)
        angles = [p for p in group if p["chi_deg"] is not None]
        point["chi_deg"] = point["chi_deg_err"] = None
        if angles:
            chi = angle_mean([p["chi_deg"] for p in angles], [p["chi_deg_err"] for p in angles])
            point["chi_deg"] = round(chi.value, 2)
            point["chi_deg_err"] = None if chi.error is None else round(chi.error, 2)
    for column in ("auto_flags", "manual_flags", "flag_reasons", "members"):
        joined = []
        for p in group:
            for part in p[column].split("|" if column.endswith("flags") else " "):
                if part and part not in joined:
                    joined.append(part)
        point[column] = ("|" if column.endswith("flags") else " ").join(joined)
    point["members"] = f"{len(group)} results binned"
    point["date"] = jd_to_datetime(point["mjd"] + MJD_OFFSET).isoformat()
    return point


def time_range(points: Sequence[dict]) -> list[float] | None:
    """The time axis range (MJD) of the points: their span with a margin, at least a day."""
    mjds = [p["mjd"] for p in points if p.get("mjd") is not None]
    if not mjds:
        return None
    low, high = min(mjds), max(mjds)
    span = max(high - low, MIN_SPAN_DAYS / (1.0 + 2.0 * PAD_FRACTION))
    centre = (low + high) / 2.0
    half = span * (0.5 + PAD_FRACTION)
    return [round(centre - half, 5), round(centre + half, 5)]


def _axis_names(index: int) -> tuple[str, str]:
    """Trace axis reference and layout key of panel ``index`` (0 → y / yaxis)."""
    suffix = "" if index == 0 else str(index + 1)
    return f"y{suffix}", f"yaxis{suffix}"


def source_figure(
    points: Sequence[dict],
    *,
    literature_mags: dict[str, tuple[float, float | None]] | None = None,
    standard_pol: Sequence[dict] = (),
    imported: Sequence[dict] = (),
) -> dict:
    """The light-curve figure of one source.

    Parameters
    ----------
    points
        Rows as :func:`iopreport.site.sourcecontext.source_points` returns them (maybe binned).
    literature_mags
        Catalog magnitude by band; drawn as dashed reference lines for the bands plotted.
    standard_pol
        Literature polarization of a standard (p fraction, chi degrees) by band.
    imported
        Another pipeline's results (:func:`iopreport.site.sourcecontext.imported_points`),
        drawn as their own traces (``meta.kind = "imported"``, one legend group) that
        the page can hide.

    Returns
    -------
    dict
        ``{"data": [...], "layout": {...}, "time_range_mjd": [lo, hi], "shape_bands": [...]}``;
        data traces have ``meta = {"kind": "data", "panel": ..., "flagged": bool, "band":
        ..., "instrument": ...}``, where ``flagged`` means flags that concern the panel's
        quantity (:func:`iopreport.site.flagmasks.flags_concern`). Literature values are
        layout shapes spanning the whole time axis (``xref = "x domain"``), with the band
        of each in ``shape_bands``.
    """
    present = [
        panel for panel in PANELS if any(p[panel[1]] is not None for p in (*points, *imported))
    ] or [PANELS[0]]
    # q and u share a panel
    panel_keys = []
    for key, *_ in present:
        shared = "q" if key in ("q", "u") else key
        if shared not in panel_keys:
            panel_keys.append(shared)
    n = len(panel_keys)
    gap = 0.04
    height = (1.0 - gap * (n - 1)) / n
    layout: dict = {
        "height": 220 * n + 120,
        "margin": {"l": 70, "r": 20, "t": 30, "b": 50},
        "hovermode": "closest",
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        "xaxis": {
            "type": "date",
            "title": {"text": "date (UTC)"},
            "anchor": _axis_names(n - 1)[0],
            "hoverformat": "%Y-%m-%d %H:%M:%S",
        },
        "showlegend": True,
    }
    axis_of = {}
    for i, key in enumerate(panel_keys):
        ref, name = _axis_names(i)
        top = 1.0 - i * (height + gap)
        title = next(p[3] for p in PANELS if (p[0] == key or (key == "q" and p[0] == "q")))
        layout[name] = {
            "domain": [round(top - height, 4), round(top, 4)],
            "title": {"text": title},
            "anchor": "x",
            "zeroline": False,
        }
        if key == "mag":
            layout[name]["autorange"] = "reversed"
        axis_of[key] = ref
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, point in enumerate(points):
        groups[(point["instrument"], point["band"])].append(index)
    colours = {key: COLOURS[i % len(COLOURS)] for i, key in enumerate(sorted(groups))}
    data = []
    for key, y_col, err_col, _title, _rev in present:
        axis = axis_of["q" if key in ("q", "u") else key]
        for group in sorted(groups):
            instrument, band = group
            for flagged in (False, True):
                chosen = [
                    i
                    for i in groups[group]
                    if points[i][y_col] is not None and _flagged_for(points[i], key) == flagged
                ]
                if not chosen:
                    continue
                label = f"{instrument} {band}"
                if key in ("q", "u"):
                    label = f"{key} {label}"
                symbol = "circle" if key != "u" else "square"
                data.append(
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": f"{label} (flagged)" if flagged else label,
                        "legendgroup": f"{instrument}|{band}",
                        "showlegend": key == present[0][0] or key == "u",
                        # x, y and the error bars are filled in the browser from the
                        # data rows (static/source.js): the page carries each value once
                        "error_y": {"type": "data", "visible": True, "thickness": 1, "width": 0},
                        "customdata": chosen,
                        "hovertemplate": "%{text}<extra></extra>",
                        "marker": {
                            "color": colours[group],
                            "size": 6,
                            "symbol": f"{symbol}-open" if flagged else symbol,
                        },
                        "yaxis": axis,
                        "xaxis": "x",
                        "meta": {
                            "kind": "data",
                            "panel": key,
                            "flagged": flagged,
                            "y": y_col,
                            "err": err_col,
                            "band": band,
                            "instrument": instrument,
                        },
                    }
                )
    data.extend(_imported_traces(imported, present, axis_of))
    lines = _reference_lines(points, axis_of, literature_mags or {}, standard_pol)
    layout["shapes"] = [shape for _, shape in lines]
    return {
        "data": data,
        "layout": layout,
        "time_range_mjd": time_range(points),
        "shape_bands": [band for band, _ in lines],
    }


#: Marker colour of imported results (grey: another pipeline's, not this one's).
IMPORTED_COLOUR = "#555555"


def _imported_hover(point: dict) -> str:
    lines = [
        f"<b>{html.escape(point['date'])} UTC</b>",
        html.escape(f"{point['telescope']} {point['instrument']} {point['band']}")
        + html.escape(f" ({point['mode']}, {point['method']})"),
    ]
    if point["mag"] is not None:
        lines.append(f"mag {point['mag']:.3f} ± {point['mag_err'] or 0:.3f}")
    if point["p_pct"] is not None:
        lines.append(f"p {point['p_pct']:.2f} ± {point['p_pct_err'] or 0:.2f} %")
    if point["chi_deg"] is not None:
        lines.append(f"χ {point['chi_deg']:.1f} ± {point['chi_deg_err'] or 0:.1f}°")
    if point["n_binned"] > 1:
        lines.append(f"bin of {point['n_binned']} results")
    if point["flagged"]:
        lines.append("flagged in the imported database")
    return "<br>".join(lines)


def _imported_traces(imported: Sequence[dict], present, axis_of: dict) -> list[dict]:
    """One trace per panel, band and flag state of the imported results (x, y given)."""
    traces = []
    bands = sorted({p["band"] for p in imported})
    methods = sorted({p["method"] for p in imported})
    label = "IOP4" if methods == ["iop4-import"] else "imported"
    for key, y_col, err_col, _title, _rev in present:
        if key in ("q", "u"):
            continue  # the imported results carry corrected p and chi, not q and u
        for band in bands:
            for flagged in (False, True):
                chosen = [
                    p
                    for p in imported
                    if p["band"] == band and p[y_col] is not None and p["flagged"] == flagged
                ]
                if not chosen:
                    continue
                name = f"{label} {band}" + (" (flagged)" if flagged else "")
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": name,
                        "legendgroup": "imported",
                        "showlegend": key == present[0][0],
                        "x": [p["date"] for p in chosen],  # source.js: by the time axis
                        "y": [p[y_col] for p in chosen],
                        "error_y": {
                            "type": "data",
                            "array": [p[err_col] or 0 for p in chosen],
                            "visible": True,
                            "thickness": 1,
                            "width": 0,
                            "color": IMPORTED_COLOUR,
                        },
                        "text": [_imported_hover(p) for p in chosen],
                        "hovertemplate": "%{text}<extra></extra>",
                        "marker": {
                            "color": IMPORTED_COLOUR,
                            "size": 7,
                            "symbol": "diamond-open" if flagged else "diamond",
                        },
                        "yaxis": axis_of[key],
                        "xaxis": "x",
                        "meta": {
                            "kind": "imported",
                            "panel": key,
                            "flagged": flagged,
                            "band": band,
                            "date": [p["date"] for p in chosen],
                            "mjd": [p["mjd"] for p in chosen],
                        },
                    }
                )
    return traces


def _flagged_for(point: dict, panel: str) -> bool:
    """Whether the point's flags concern the quantity of ``panel`` (mag, or polarization)."""
    if not point["flagged"]:
        return False
    return flags_concern(panel, point["auto_flags"], point["manual_flags"])


def _reference_lines(points, axis_of, literature_mags, standard_pol) -> list[tuple[str, dict]]:
    """(band, shape) of every literature value: a dashed line across the whole time axis.

    The line is a layout shape on the x axis's domain (0 to 1), so it spans the axis
    whatever its range, a single epoch included; it has its own legend entry.
    """
    if not points:
        return []
    bands = {p["band"] for p in points if p["mag"] is not None}
    lines = []

    def line(band: str, name: str, value: float, axis: str) -> tuple[str, dict]:
        return band, {
            "type": "line",
            "name": name,
            "showlegend": True,
            "legendgroup": f"literature|{band}",
            "xref": "x domain",
            "x0": 0,
            "x1": 1,
            "yref": axis,
            "y0": value,
            "y1": value,
            "layer": "below",
            "line": {"dash": "dash", "width": 1.5, "color": "#555"},
        }

    if "mag" in axis_of:
        for band in sorted(bands & set(literature_mags)):
            value, error = literature_mags[band]
            text = f"{band} catalog {value:.3f}" + (f" ± {error:.3f}" if error else "")
            lines.append(line(band, text, value, axis_of["mag"]))
    pol_bands = {p["band"] for p in points if p["p_pct"] is not None}
    for standard in standard_pol:
        band = standard["band"]
        if band not in pol_bands:
            continue
        if "p" in axis_of:
            text = f"{band} literature p {standard['p'] * 100:.2f} %"
            lines.append(line(band, text, round(standard["p"] * 100, 3), axis_of["p"]))
        if "chi" in axis_of and standard.get("chi") is not None:
            text = f"{band} literature χ {standard['chi']:.1f}°"
            lines.append(line(band, text, standard["chi"], axis_of["chi"]))
    return lines


def sparkline(values: Sequence[float], *, width: int = 100, height: int = 24) -> str:
    """SVG polyline points of a small trend (magnitudes: brighter is up)."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    coords = (
        f"{i * step:.1f},{(value - low) / span * (height - 2) + 1:.1f}"
        for i, value in enumerate(values)
    )
    return " ".join(coords)
